//! `containerd.services.diff.v1.Diff` over the runtime: layer application and generation.

use strata_runtime::Runtime;
use tonic::{Request, Response, Status};

use super::convert::{blocking, ctx, descriptor_from_proto, descriptor_to_proto, mounts};
use crate::api::diff::diff_server::Diff;
use crate::api::diff::*;

#[derive(Clone)]
pub struct DiffService {
    rt: Runtime,
}

impl DiffService {
    pub fn new(rt: Runtime) -> Self {
        DiffService { rt }
    }
}

#[tonic::async_trait]
impl Diff for DiffService {
    async fn apply(&self, req: Request<ApplyRequest>) -> Result<Response<ApplyResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let desc = descriptor_from_proto(r.diff);
        let ms = mounts(r.mounts);
        let applied = blocking(move || rt.diff().apply(&c, &desc, &ms)).await?;
        Ok(Response::new(ApplyResponse {
            applied: Some(descriptor_to_proto(applied)),
        }))
    }

    async fn diff(&self, req: Request<DiffRequest>) -> Result<Response<DiffResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let (left, right) = (mounts(r.left), mounts(r.right));
        let labels = r.labels.into_iter().collect();
        let d = blocking(move || {
            rt.diff()
                .compare(&c, &left, &right, &r.media_type, &r.r#ref, &labels)
        })
        .await?;
        Ok(Response::new(DiffResponse {
            diff: Some(descriptor_to_proto(d)),
        }))
    }
}
