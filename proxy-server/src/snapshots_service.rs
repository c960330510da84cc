//! `containerd.services.snapshots.v1.Snapshots` over the [`Snapshotter`] backends: proto <->
//! trait only. Requests are routed by their `snapshotter` field (containerd fills it with the
//! proxy plugin's name); everything belongs to [`PROXY_VIEW`].

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use strata_core::PROXY_VIEW;
use strata_snapshotters::{Info, Kind, Mount, Snapshotter};
use tonic::{Request, Response, Status};

use crate::api::snapshots::Kind as ProtoKind;
use crate::api::snapshots::snapshots_server::Snapshots;
use crate::api::snapshots::*;
use crate::api::types;
use crate::errors;

/// Infos per List message, as containerd's snapshot service batches them.
const LIST_BATCH: usize = 100;

/// A backend that is configured but could not start, with the reason.
pub type Disabled = BTreeMap<String, String>;

/// The Snapshots service with its named backends.
#[derive(Clone)]
pub struct SnapshotsService {
    backends: Arc<BTreeMap<String, Arc<dyn Snapshotter>>>,
    disabled: Arc<Disabled>,
    default: String,
}

impl SnapshotsService {
    /// `default` serves requests with an empty snapshotter name.
    pub fn new(
        backends: BTreeMap<String, Arc<dyn Snapshotter>>,
        disabled: Disabled,
        default: &str,
    ) -> Self {
        SnapshotsService {
            backends: Arc::new(backends),
            disabled: Arc::new(disabled),
            default: default.to_string(),
        }
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

fn kind_to_proto(k: Kind) -> i32 {
    match k {
        Kind::View => ProtoKind::View as i32,
        Kind::Active => ProtoKind::Active as i32,
        Kind::Committed => ProtoKind::Committed as i32,
    }
}

fn info_to_proto(i: Info) -> crate::api::snapshots::Info {
    crate::api::snapshots::Info {
        name: i.name,
        parent: i.parent,
        kind: kind_to_proto(i.kind),
        created_at: Some(i.created.into()),
        updated_at: Some(i.updated.into()),
        labels: i.labels.into_iter().collect(),
    }
}

fn mounts_to_proto(ms: Vec<Mount>) -> Vec<types::Mount> {
    ms.into_iter()
        .map(|m| types::Mount {
            r#type: m.kind,
            source: m.source,
            target: m.target,
            options: m.options,
        })
        .collect()
}

/// The fields Update uses: name and labels. Kind, parent and times are ignored, as containerd's
/// proxy sends `COMMITTED` for every kind.
fn info_from_proto(i: crate::api::snapshots::Info) -> Info {
    let now = std::time::SystemTime::now();
    Info {
        name: i.name,
        parent: i.parent,
        kind: Kind::Active,
        created: now,
        updated: now,
        labels: i.labels.into_iter().collect(),
    }
}

type ListStream = Pin<Box<dyn Stream<Item = Result<ListSnapshotsResponse, Status>> + Send>>;

#[tonic::async_trait]
impl Snapshots for SnapshotsService {
    async fn prepare(
        &self,
        req: Request<PrepareSnapshotRequest>,
    ) -> Result<Response<PrepareSnapshotResponse>, Status> {
        let r = req.into_inner();
        let labels = r.labels.into_iter().collect();
        let mounts = self
            .backend(&r.snapshotter)?
            .prepare(PROXY_VIEW, &r.key, &r.parent, labels)
            .await
            .map_err(errors::snapshot)?;
        Ok(Response::new(PrepareSnapshotResponse {
            mounts: mounts_to_proto(mounts),
        }))
    }

    async fn view(
        &self,
        req: Request<ViewSnapshotRequest>,
    ) -> Result<Response<ViewSnapshotResponse>, Status> {
        let r = req.into_inner();
        let labels = r.labels.into_iter().collect();
        let mounts = self
            .backend(&r.snapshotter)?
            .view(PROXY_VIEW, &r.key, &r.parent, labels)
            .await
            .map_err(errors::snapshot)?;
        Ok(Response::new(ViewSnapshotResponse {
            mounts: mounts_to_proto(mounts),
        }))
    }

    async fn mounts(
        &self,
        req: Request<MountsRequest>,
    ) -> Result<Response<MountsResponse>, Status> {
        let r = req.into_inner();
        let mounts = self
            .backend(&r.snapshotter)?
            .mounts(PROXY_VIEW, &r.key)
            .await
            .map_err(errors::snapshot)?;
        Ok(Response::new(MountsResponse {
            mounts: mounts_to_proto(mounts),
        }))
    }

    async fn commit(&self, req: Request<CommitSnapshotRequest>) -> Result<Response<()>, Status> {
        let r = req.into_inner();
        let labels = r.labels.into_iter().collect();
        self.backend(&r.snapshotter)?
            .commit(PROXY_VIEW, &r.name, &r.key, labels)
            .await
            .map_err(errors::snapshot)?;
        Ok(Response::new(()))
    }

    async fn remove(&self, req: Request<RemoveSnapshotRequest>) -> Result<Response<()>, Status> {
        let r = req.into_inner();
        self.backend(&r.snapshotter)?
            .remove(PROXY_VIEW, &r.key)
            .await
            .map_err(errors::snapshot)?;
        Ok(Response::new(()))
    }

    async fn stat(
        &self,
        req: Request<StatSnapshotRequest>,
    ) -> Result<Response<StatSnapshotResponse>, Status> {
        let r = req.into_inner();
        let info = self
            .backend(&r.snapshotter)?
            .stat(PROXY_VIEW, &r.key)
            .await
            .map_err(errors::snapshot)?;
        Ok(Response::new(StatSnapshotResponse {
            info: Some(info_to_proto(info)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateSnapshotRequest>,
    ) -> Result<Response<UpdateSnapshotResponse>, Status> {
        let r = req.into_inner();
        let info = r
            .info
            .ok_or_else(|| Status::invalid_argument("update requires info"))?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let info = self
            .backend(&r.snapshotter)?
            .update(PROXY_VIEW, info_from_proto(info), &paths)
            .await
            .map_err(errors::snapshot)?;
        Ok(Response::new(UpdateSnapshotResponse {
            info: Some(info_to_proto(info)),
        }))
    }

    type ListStream = ListStream;

    async fn list(
        &self,
        req: Request<ListSnapshotsRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let r = req.into_inner();
        let infos = self
            .backend(&r.snapshotter)?
            .list(PROXY_VIEW, &r.filters)
            .await
            .map_err(errors::snapshot)?;
        let mut batches = Vec::with_capacity(infos.len() / LIST_BATCH + 1);
        let mut it = infos.into_iter().peekable();
        while it.peek().is_some() {
            let info = it.by_ref().take(LIST_BATCH).map(info_to_proto).collect();
            batches.push(Ok(ListSnapshotsResponse { info }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(batches))))
    }

    async fn usage(&self, req: Request<UsageRequest>) -> Result<Response<UsageResponse>, Status> {
        let r = req.into_inner();
        let u = self
            .backend(&r.snapshotter)?
            .usage(PROXY_VIEW, &r.key)
            .await
            .map_err(errors::snapshot)?;
        Ok(Response::new(UsageResponse {
            size: u.size,
            inodes: u.inodes,
        }))
    }

    async fn cleanup(&self, req: Request<CleanupRequest>) -> Result<Response<()>, Status> {
        let r = req.into_inner();
        self.backend(&r.snapshotter)?
            .cleanup()
            .await
            .map_err(errors::snapshot)?;
        Ok(Response::new(()))
    }
}
