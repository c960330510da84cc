//! `containerd.services.leases.v1.Leases` over the runtime.

use strata_runtime::{Lease, Resource, Runtime};
use tonic::{Request, Response, Status};

use super::convert::{blocking, ctx, timestamp};
use crate::api::leases::leases_server::Leases;
use crate::api::leases::{self as api, *};
use crate::errors;

#[derive(Clone)]
pub struct LeasesService {
    rt: Runtime,
}

impl LeasesService {
    pub fn new(rt: Runtime) -> Self {
        LeasesService { rt }
    }
}

fn to_proto(l: Lease) -> api::Lease {
    api::Lease {
        id: l.id,
        created_at: timestamp(l.created),
        labels: l.labels.into_iter().collect(),
    }
}

fn resource(r: Option<api::Resource>) -> Resource {
    let r = r.unwrap_or_default();
    Resource {
        id: r.id,
        kind: r.r#type,
    }
}

#[tonic::async_trait]
impl Leases for LeasesService {
    async fn create(
        &self,
        req: Request<CreateRequest>,
    ) -> Result<Response<CreateResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let labels = r.labels.into_iter().collect();
        let l = blocking(move || rt.leases().create(&c, &r.id, &labels)).await?;
        Ok(Response::new(CreateResponse {
            lease: Some(to_proto(l)),
        }))
    }

    async fn delete(&self, req: Request<DeleteRequest>) -> Result<Response<()>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        blocking(move || rt.leases().delete(&c, &r.id)).await?;
        if r.sync {
            self.rt.collect().await.map_err(errors::runtime)?;
        }
        Ok(Response::new(()))
    }

    async fn list(&self, req: Request<ListRequest>) -> Result<Response<ListResponse>, Status> {
        let (c, rt, filters) = (
            ctx(req.metadata())?,
            self.rt.clone(),
            req.into_inner().filters,
        );
        let all = blocking(move || rt.leases().list(&c, &filters)).await?;
        Ok(Response::new(ListResponse {
            leases: all.into_iter().map(to_proto).collect(),
        }))
    }

    async fn add_resource(&self, req: Request<AddResourceRequest>) -> Result<Response<()>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let res = resource(r.resource);
        blocking(move || rt.leases().add_resource(&c, &r.id, &res)).await?;
        Ok(Response::new(()))
    }

    async fn delete_resource(
        &self,
        req: Request<DeleteResourceRequest>,
    ) -> Result<Response<()>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let res = resource(r.resource);
        blocking(move || rt.leases().delete_resource(&c, &r.id, &res)).await?;
        Ok(Response::new(()))
    }

    async fn list_resources(
        &self,
        req: Request<ListResourcesRequest>,
    ) -> Result<Response<ListResourcesResponse>, Status> {
        let (c, rt, id) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner().id);
        let all = blocking(move || rt.leases().list_resources(&c, &id)).await?;
        Ok(Response::new(ListResourcesResponse {
            resources: all
                .into_iter()
                .map(|r| api::Resource {
                    id: r.id,
                    r#type: r.kind,
                })
                .collect(),
        }))
    }
}
