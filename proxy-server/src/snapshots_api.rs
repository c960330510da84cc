//! The seam between the Snapshots gRPC service and what it serves: the proxy socket's backends
//! in one flat view ([`ProxySnapshots`]) or the runtime's namespaces
//! (`crate::runtime::RuntimeSnapshots`).

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_core::PROXY_VIEW;
use strata_core::labels::Labels;
use strata_snapshotters::{Info, Mount, Snapshotter, Usage};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::errors;
use crate::offload::{Offload, SNAPSHOT_REF};

/// A backend that is configured but could not start, with the reason.
pub type Disabled = BTreeMap<String, String>;

/// What the Snapshots service needs; `sn` is the request's `snapshotter` field.
#[tonic::async_trait]
pub trait SnapshotsApi: Send + Sync + 'static {
    /// Who a request acts for, from its metadata.
    type Scope: Clone + Send + Sync + 'static;

    fn scope(&self, md: &MetadataMap) -> Result<Self::Scope, Status>;
    async fn prepare(
        &self,
        s: &Self::Scope,
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>, Status>;
    async fn view(
        &self,
        s: &Self::Scope,
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>, Status>;
    async fn mounts(&self, s: &Self::Scope, sn: &str, key: &str) -> Result<Vec<Mount>, Status>;
    async fn commit(
        &self,
        s: &Self::Scope,
        sn: &str,
        name: &str,
        key: &str,
        labels: Labels,
    ) -> Result<(), Status>;
    async fn remove(&self, s: &Self::Scope, sn: &str, key: &str) -> Result<(), Status>;
    async fn stat(&self, s: &Self::Scope, sn: &str, key: &str) -> Result<Info, Status>;
    async fn update(
        &self,
        s: &Self::Scope,
        sn: &str,
        info: Info,
        paths: &[String],
    ) -> Result<Info, Status>;
    async fn list(
        &self,
        s: &Self::Scope,
        sn: &str,
        filters: &[String],
    ) -> Result<Vec<Info>, Status>;
    async fn usage(&self, s: &Self::Scope, sn: &str, key: &str) -> Result<Usage, Status>;
    async fn cleanup(&self, s: &Self::Scope, sn: &str) -> Result<(), Status>;
}

/// A proxy socket's snapshots: requests are routed by their `snapshotter` field (containerd
/// fills it with the proxy plugin's name); everything belongs to the socket's view
/// ([`PROXY_VIEW`] for the default socket).
#[derive(Clone)]
pub struct ProxySnapshots {
    view: Arc<str>,
    backends: Arc<BTreeMap<String, Arc<dyn Snapshotter>>>,
    disabled: Arc<Disabled>,
    default: String,
    offload: Option<Offload>,
}

impl ProxySnapshots {
    /// `default` serves requests with an empty snapshotter name.
    pub fn new(
        backends: BTreeMap<String, Arc<dyn Snapshotter>>,
        disabled: Disabled,
        default: &str,
    ) -> Self {
        ProxySnapshots {
            view: PROXY_VIEW.into(),
            backends: Arc::new(backends),
            disabled: Arc::new(disabled),
            default: default.to_string(),
            offload: None,
        }
    }

    /// Serves `view` instead of [`PROXY_VIEW`] (a `[[proxy]]` socket).
    pub fn with_view(mut self, view: &str) -> Self {
        self.view = view.into();
        self
    }

    /// Serves containerd's remote-snapshotter Prepares with Strata's own unpack.
    pub fn with_offload(mut self, offload: Offload) -> Self {
        self.offload = Some(offload);
        self
    }

    fn backend(&self, name: &str) -> Result<&Arc<dyn Snapshotter>, Status> {
        let name = if name.is_empty() { &self.default } else { name };
        if let Some(b) = self.backends.get(name) {
            return Ok(b);
        }
        let available: Vec<&str> = self.backends.keys().map(String::as_str).collect();
        let why = match self.disabled.get(name) {
            Some(reason) => format!("snapshotter {name:?} is disabled: {reason}"),
            None => format!("snapshotter {name:?} not found"),
        };
        Err(Status::not_found(format!(
            "{why}; available: {}",
            available.join(", ")
        )))
    }
}

#[tonic::async_trait]
impl SnapshotsApi for ProxySnapshots {
    type Scope = ();

    fn scope(&self, _: &MetadataMap) -> Result<(), Status> {
        Ok(())
    }

    async fn prepare(
        &self,
        _: &(),
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>, Status> {
        let b = self.backend(sn)?;
        if let Some(off) = &self.offload
            && !labels.contains_key(SNAPSHOT_REF)
            && key.contains("extract-")
        {
            // containerd's own unpack (`extract-<id> <chain ID>`): it applies the layer itself.
            off.client_unpack();
        }
        if let Some(off) = &self.offload
            && let Some(target) = labels.get(SNAPSHOT_REF)
            && !b.serves_remotely(key, parent, &labels)
        {
            let name = if sn.is_empty() { &self.default } else { sn };
            match off.serve(b, name, &self.view, parent, &labels).await {
                Ok(true) => {
                    return Err(Status::already_exists(format!(
                        "target snapshot {target:?}: already exists"
                    )));
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(target, error = %e, "unpack offload failed; containerd unpacks")
                }
            }
        }
        let res = b.prepare(&self.view, key, parent, labels).await;
        res.map_err(errors::snapshot)
    }

    async fn view(
        &self,
        _: &(),
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>, Status> {
        let b = self.backend(sn)?;
        let res = b.view(&self.view, key, parent, labels).await;
        res.map_err(errors::snapshot)
    }

    async fn mounts(&self, _: &(), sn: &str, key: &str) -> Result<Vec<Mount>, Status> {
        let b = self.backend(sn)?;
        b.mounts(&self.view, key).await.map_err(errors::snapshot)
    }

    async fn commit(
        &self,
        _: &(),
        sn: &str,
        name: &str,
        key: &str,
        labels: Labels,
    ) -> Result<(), Status> {
        let b = self.backend(sn)?;
        let res = b.commit(&self.view, name, key, labels).await;
        res.map_err(errors::snapshot)
    }

    async fn remove(&self, _: &(), sn: &str, key: &str) -> Result<(), Status> {
        let b = self.backend(sn)?;
        b.remove(&self.view, key).await.map_err(errors::snapshot)
    }

    async fn stat(&self, _: &(), sn: &str, key: &str) -> Result<Info, Status> {
        let b = self.backend(sn)?;
        b.stat(&self.view, key).await.map_err(errors::snapshot)
    }

    async fn update(&self, _: &(), sn: &str, info: Info, paths: &[String]) -> Result<Info, Status> {
        let b = self.backend(sn)?;
        let res = b.update(&self.view, info, paths).await;
        res.map_err(errors::snapshot)
    }

    async fn list(&self, _: &(), sn: &str, filters: &[String]) -> Result<Vec<Info>, Status> {
        let b = self.backend(sn)?;
        b.list(&self.view, filters).await.map_err(errors::snapshot)
    }

    async fn usage(&self, _: &(), sn: &str, key: &str) -> Result<Usage, Status> {
        let b = self.backend(sn)?;
        b.usage(&self.view, key).await.map_err(errors::snapshot)
    }

    async fn cleanup(&self, _: &(), sn: &str) -> Result<(), Status> {
        let b = self.backend(sn)?;
        b.cleanup().await.map_err(errors::snapshot)
    }
}
