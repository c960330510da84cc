//! The runtime socket's snapshots: [`SnapshotsApi`] over the runtime's namespaces.

use strata_core::labels::Labels;
use strata_runtime::{Ctx, Runtime};
use strata_snapshotters::{Info, Mount, Usage};
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::convert::ctx;
use crate::errors::runtime as err;
use crate::snapshots_api::SnapshotsApi;

/// Snapshots scoped by the `containerd-namespace` and `containerd-lease` headers.
#[derive(Clone)]
pub struct RuntimeSnapshots {
    rt: Runtime,
}

impl RuntimeSnapshots {
    pub fn new(rt: Runtime) -> Self {
        RuntimeSnapshots { rt }
    }
}

#[tonic::async_trait]
impl SnapshotsApi for RuntimeSnapshots {
    type Scope = Ctx;

    fn scope(&self, md: &MetadataMap) -> Result<Ctx, Status> {
        ctx(md)
    }

    async fn prepare(
        &self,
        c: &Ctx,
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>, Status> {
        self.rt
            .snapshots()
            .prepare(c, sn, key, parent, labels)
            .await
            .map_err(err)
    }

    async fn view(
        &self,
        c: &Ctx,
        sn: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>, Status> {
        self.rt
            .snapshots()
            .view(c, sn, key, parent, labels)
            .await
            .map_err(err)
    }

    async fn mounts(&self, c: &Ctx, sn: &str, key: &str) -> Result<Vec<Mount>, Status> {
        self.rt.snapshots().mounts(c, sn, key).await.map_err(err)
    }

    async fn commit(
        &self,
        c: &Ctx,
        sn: &str,
        name: &str,
        key: &str,
        labels: Labels,
    ) -> Result<(), Status> {
        self.rt
            .snapshots()
            .commit(c, sn, name, key, labels)
            .await
            .map_err(err)
    }

    async fn remove(&self, c: &Ctx, sn: &str, key: &str) -> Result<(), Status> {
        self.rt.snapshots().remove(c, sn, key).await.map_err(err)
    }

    async fn stat(&self, c: &Ctx, sn: &str, key: &str) -> Result<Info, Status> {
        self.rt.snapshots().stat(c, sn, key).await.map_err(err)
    }

    async fn update(
        &self,
        c: &Ctx,
        sn: &str,
        info: Info,
        paths: &[String],
    ) -> Result<Info, Status> {
        self.rt
            .snapshots()
            .update(c, sn, info, paths)
            .await
            .map_err(err)
    }

    async fn list(&self, c: &Ctx, sn: &str, filters: &[String]) -> Result<Vec<Info>, Status> {
        self.rt.snapshots().list(c, sn, filters).await.map_err(err)
    }

    async fn usage(&self, c: &Ctx, sn: &str, key: &str) -> Result<Usage, Status> {
        self.rt.snapshots().usage(c, sn, key).await.map_err(err)
    }

    async fn cleanup(&self, _: &Ctx, sn: &str) -> Result<(), Status> {
        self.rt.snapshots().cleanup(sn).await.map_err(err)
    }
}
