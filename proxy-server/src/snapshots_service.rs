//! `containerd.services.snapshots.v1.Snapshots` over a [`SnapshotsApi`]: proto <-> trait only.
//! The proxy socket serves it over [`crate::snapshots_api::ProxySnapshots`] (one flat view,
//! routed by the `snapshotter` field), the runtime socket over the runtime's namespaces.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use strata_snapshotters::{Info, Kind, Mount};
use tonic::{Request, Response, Status};

use crate::api::snapshots::Kind as ProtoKind;
use crate::api::snapshots::snapshots_server::Snapshots;
use crate::api::snapshots::*;
use crate::api::types;
use crate::snapshots_api::SnapshotsApi;

/// Infos per List message, as containerd's snapshot service batches them.
const LIST_BATCH: usize = 100;

/// The Snapshots service over `A`.
pub struct SnapshotsService<A> {
    api: Arc<A>,
}

impl<A> Clone for SnapshotsService<A> {
    fn clone(&self) -> Self {
        SnapshotsService {
            api: self.api.clone(),
        }
    }
}

impl<A: SnapshotsApi> SnapshotsService<A> {
    pub fn new(api: A) -> Self {
        SnapshotsService { api: Arc::new(api) }
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

pub(crate) fn mounts_to_proto(ms: Vec<Mount>) -> Vec<types::Mount> {
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
impl<A: SnapshotsApi> Snapshots for SnapshotsService<A> {
    async fn prepare(
        &self,
        req: Request<PrepareSnapshotRequest>,
    ) -> Result<Response<PrepareSnapshotResponse>, Status> {
        let s = self.api.scope(req.metadata())?;
        let r = req.into_inner();
        let labels = r.labels.into_iter().collect();
        let mounts = (self.api)
            .prepare(&s, &r.snapshotter, &r.key, &r.parent, labels)
            .await?;
        Ok(Response::new(PrepareSnapshotResponse {
            mounts: mounts_to_proto(mounts),
        }))
    }

    async fn view(
        &self,
        req: Request<ViewSnapshotRequest>,
    ) -> Result<Response<ViewSnapshotResponse>, Status> {
        let s = self.api.scope(req.metadata())?;
        let r = req.into_inner();
        let labels = r.labels.into_iter().collect();
        let mounts = (self.api)
            .view(&s, &r.snapshotter, &r.key, &r.parent, labels)
            .await?;
        Ok(Response::new(ViewSnapshotResponse {
            mounts: mounts_to_proto(mounts),
        }))
    }

    async fn mounts(
        &self,
        req: Request<MountsRequest>,
    ) -> Result<Response<MountsResponse>, Status> {
        let s = self.api.scope(req.metadata())?;
        let r = req.into_inner();
        let mounts = self.api.mounts(&s, &r.snapshotter, &r.key).await?;
        Ok(Response::new(MountsResponse {
            mounts: mounts_to_proto(mounts),
        }))
    }

    async fn commit(&self, req: Request<CommitSnapshotRequest>) -> Result<Response<()>, Status> {
        let s = self.api.scope(req.metadata())?;
        let r = req.into_inner();
        let labels = r.labels.into_iter().collect();
        (self.api)
            .commit(&s, &r.snapshotter, &r.name, &r.key, labels)
            .await?;
        Ok(Response::new(()))
    }

    async fn remove(&self, req: Request<RemoveSnapshotRequest>) -> Result<Response<()>, Status> {
        let s = self.api.scope(req.metadata())?;
        let r = req.into_inner();
        self.api.remove(&s, &r.snapshotter, &r.key).await?;
        Ok(Response::new(()))
    }

    async fn stat(
        &self,
        req: Request<StatSnapshotRequest>,
    ) -> Result<Response<StatSnapshotResponse>, Status> {
        let s = self.api.scope(req.metadata())?;
        let r = req.into_inner();
        let info = self.api.stat(&s, &r.snapshotter, &r.key).await?;
        Ok(Response::new(StatSnapshotResponse {
            info: Some(info_to_proto(info)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateSnapshotRequest>,
    ) -> Result<Response<UpdateSnapshotResponse>, Status> {
        let s = self.api.scope(req.metadata())?;
        let r = req.into_inner();
        let info = r
            .info
            .ok_or_else(|| Status::invalid_argument("update requires info"))?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let info = (self.api)
            .update(&s, &r.snapshotter, info_from_proto(info), &paths)
            .await?;
        Ok(Response::new(UpdateSnapshotResponse {
            info: Some(info_to_proto(info)),
        }))
    }

    type ListStream = ListStream;

    async fn list(
        &self,
        req: Request<ListSnapshotsRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let s = self.api.scope(req.metadata())?;
        let r = req.into_inner();
        let infos = self.api.list(&s, &r.snapshotter, &r.filters).await?;
        let mut batches = Vec::with_capacity(infos.len() / LIST_BATCH + 1);
        let mut it = infos.into_iter().peekable();
        while it.peek().is_some() {
            let info = it.by_ref().take(LIST_BATCH).map(info_to_proto).collect();
            batches.push(Ok(ListSnapshotsResponse { info }));
        }
        Ok(Response::new(Box::pin(tokio_stream::iter(batches))))
    }

    async fn usage(&self, req: Request<UsageRequest>) -> Result<Response<UsageResponse>, Status> {
        let s = self.api.scope(req.metadata())?;
        let r = req.into_inner();
        let u = self.api.usage(&s, &r.snapshotter, &r.key).await?;
        Ok(Response::new(UsageResponse {
            size: u.size,
            inodes: u.inodes,
        }))
    }

    async fn cleanup(&self, req: Request<CleanupRequest>) -> Result<Response<()>, Status> {
        let s = self.api.scope(req.metadata())?;
        let r = req.into_inner();
        self.api.cleanup(&s, &r.snapshotter).await?;
        Ok(Response::new(()))
    }
}
