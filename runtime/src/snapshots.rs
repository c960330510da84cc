//! Namespaced snapshots (containerd `metadata/snapshot.go`): every namespace is the view
//! `ns/<name>` of each backend, so keys are per namespace and map one to one to backend
//! snapshots. Snapshotters are named as on the proxy socket (`strata-overlay`, ...; containerd's
//! default names are aliases). A call under a lease adds what it creates to the lease before
//! creating it, so a collection running meanwhile never takes it.

use std::sync::Arc;

use strata_core::labels::Labels;
use strata_snapshotters::{Info, Kind, Mount, Snapshotter, Usage};

use crate::gc::mark::Node;
use crate::{Ctx, Error, Event, Result, Runtime};

/// The label naming the committed snapshot a Prepare or View is meant to become
/// (containerd's `labelSnapshotRef`).
pub(crate) const SNAPSHOT_REF: &str = "containerd.io/snapshot.ref";

/// The lease resource type of a snapshot of `sn` (as the client names it; the backend's name
/// when the client gave none), as containerd lists it back.
pub(crate) fn lease_kind(sn: &str, backend: &str) -> String {
    format!("snapshots/{}", if sn.is_empty() { backend } else { sn })
}

/// The runtime's namespaced snapshots.
pub struct NsSnapshots {
    rt: Runtime,
}

impl NsSnapshots {
    pub(crate) fn new(rt: Runtime) -> Self {
        NsSnapshots { rt }
    }

    fn backend(&self, sn: &str) -> Result<(String, Arc<dyn Snapshotter>)> {
        self.rt.snapshotter(sn)
    }

    /// The snapshot `key`. A missing chain ID of an image layer may be made on the spot: on
    /// `strata-lazy` a layer the namespace holds as a remote blob, served lazily (see
    /// `lazy_stat`); on `strata-overlay`, under a client unpack's lease, that layer and the
    /// ones above it, applied at once (see `parallel_unpack`).
    pub async fn stat(&self, ctx: &Ctx, sn: &str, key: &str) -> Result<Info> {
        let (name, b) = self.backend(sn)?;
        match b.stat(&ctx.view(), key).await {
            Err(strata_snapshotters::Error::NotFound(m)) if key.starts_with("sha256:") => {
                if ctx.lease.is_some() {
                    self.rt.unpack_target(&name);
                }
                let made = if name == crate::LAZY_SNAPSHOTTER {
                    self.rt.lazy_stat(ctx, sn, &name, key).await?
                } else {
                    self.rt.parallel_stat(ctx, sn, &name, key).await?
                };
                made.ok_or(Error::NotFound(m))
            }
            r => Ok(r?),
        }
    }

    pub async fn usage(&self, ctx: &Ctx, sn: &str, key: &str) -> Result<Usage> {
        Ok(self.backend(sn)?.1.usage(&ctx.view(), key).await?)
    }

    pub async fn mounts(&self, ctx: &Ctx, sn: &str, key: &str) -> Result<Vec<Mount>> {
        Ok(self.backend(sn)?.1.mounts(&ctx.view(), key).await?)
    }

    pub async fn list(&self, ctx: &Ctx, sn: &str, filters: &[String]) -> Result<Vec<Info>> {
        Ok(self.backend(sn)?.1.list(&ctx.view(), filters).await?)
    }

    pub async fn update(&self, ctx: &Ctx, sn: &str, info: Info, paths: &[String]) -> Result<Info> {
        let (name, b) = self.backend(sn)?;
        let _g = self.rt.hold_async().await;
        let key = info.name.clone();
        let out = b.update(&ctx.view(), info, paths).await?;
        self.rt
            .changed([Node::snapshot(&ctx.namespace, &name, &key)], false);
        Ok(out)
    }

    /// A writable snapshot on `parent` (`""` = empty), held by the call's lease.
    pub async fn prepare(
        &self,
        ctx: &Ctx,
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>> {
        self.create(ctx, sn, Kind::Active, key, parent, labels)
            .await
    }

    /// A read-only snapshot of `parent`, held by the call's lease.
    pub async fn view(
        &self,
        ctx: &Ctx,
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>> {
        self.create(ctx, sn, Kind::View, key, parent, labels).await
    }

    async fn create(
        &self,
        ctx: &Ctx,
        sn: &str,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>> {
        let (name, b) = self.backend(sn)?;
        let _g = self.rt.hold_async().await;
        // The unpacker's target: when the namespace has it, the layer is there already.
        if let Some(target) = labels.get(SNAPSHOT_REF)
            && b.stat(&ctx.view(), target).await.is_ok()
        {
            return Err(Error::AlreadyExists(format!(
                "target snapshot {target:?}: already exists"
            )));
        }
        self.rt.ensure_namespace(&ctx.namespace)?;
        let res_kind = lease_kind(sn, &name);
        let had = self.rt.leases().holds(ctx, &res_kind, key)?;
        self.rt.leases().attach(ctx, &res_kind, key)?;
        let view = ctx.view();
        let res = match kind {
            Kind::View => b.view(&view, key, parent, labels).await,
            _ => b.prepare(&view, key, parent, labels).await,
        };
        let mounts = match res {
            Ok(m) => m,
            Err(e) => {
                if !had {
                    self.rt.leases().detach(ctx, &res_kind, key)?;
                }
                return Err(e.into());
            }
        };
        self.rt
            .changed([Node::snapshot(&ctx.namespace, &name, key)], false);
        if kind == Kind::Active {
            let event = Event::SnapshotPrepare {
                key: key.into(),
                parent: parent.into(),
            };
            self.rt.publish(&ctx.namespace, event);
        }
        Ok(mounts)
    }

    /// Commits active `key` as `name`; the call's lease holds `name` instead of `key`.
    pub async fn commit(
        &self,
        ctx: &Ctx,
        sn: &str,
        name: &str,
        key: &str,
        labels: Labels,
    ) -> Result<()> {
        let (backend, b) = self.backend(sn)?;
        let _g = self.rt.hold_async().await;
        let res_kind = lease_kind(sn, &backend);
        let had = self.rt.leases().holds(ctx, &res_kind, name)?;
        self.rt.leases().attach(ctx, &res_kind, name)?;
        if let Err(e) = b.commit(&ctx.view(), name, key, labels).await {
            if !had {
                self.rt.leases().detach(ctx, &res_kind, name)?;
            }
            return Err(e.into());
        }
        self.rt.leases().detach(ctx, &res_kind, key)?;
        self.rt
            .changed([Node::snapshot(&ctx.namespace, &backend, name)], false);
        let event = Event::SnapshotCommit {
            key: key.into(),
            name: name.into(),
        };
        self.rt.publish(&ctx.namespace, event);
        Ok(())
    }

    /// Removes a snapshot without children.
    pub async fn remove(&self, ctx: &Ctx, sn: &str, key: &str) -> Result<()> {
        let (backend, b) = self.backend(sn)?;
        if let Some(task) = self
            .rt
            .task_manager()
            .using_snapshot(&ctx.namespace, &backend, key)
        {
            return Err(Error::FailedPrecondition(format!(
                "snapshot {key:?} is the rootfs of task {task:?}: delete the task first"
            )));
        }
        let _g = self.rt.hold_async().await;
        b.remove(&ctx.view(), key).await?;
        // The call's lease no longer holds it (containerd's `removeSnapshotLease`).
        self.rt
            .leases()
            .detach(ctx, &lease_kind(sn, &backend), key)?;
        self.rt.changed([], true);
        self.rt
            .publish(&ctx.namespace, Event::SnapshotRemove { key: key.into() });
        Ok(())
    }

    /// Deletes what no snapshot of any view references (crash leftovers, reclaimed data).
    pub async fn cleanup(&self, sn: &str) -> Result<()> {
        let (_, b) = self.backend(sn)?;
        b.reclaim().await?;
        Ok(b.cleanup().await?)
    }

    /// The backends on which namespace `ns` still has snapshots (blocking caller).
    pub(crate) fn nonempty_backends(&self, ns: &str) -> Result<Vec<String>> {
        let view = crate::view_of(ns);
        let (backends, _) = self.rt.backends();
        let mut out = Vec::new();
        for (name, b) in backends {
            let list = tokio::runtime::Handle::current().block_on(b.list(&view, &[]))?;
            if !list.is_empty() {
                out.push(name.clone());
            }
        }
        Ok(out)
    }
}
