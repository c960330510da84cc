//! `containerd.services.containers.v1.Containers` over the runtime.

use std::pin::Pin;

use futures::Stream;
use strata_runtime::{Container, ContainerRuntime, Runtime};
use tonic::{Request, Response, Status};

use super::convert::{any_from_proto, any_to_proto, blocking, ctx, system_time, timestamp};
use crate::api::containers::containers_server::Containers;
use crate::api::containers::{self as api, *};

#[derive(Clone)]
pub struct ContainersService {
    rt: Runtime,
}

impl ContainersService {
    pub fn new(rt: Runtime) -> Self {
        ContainersService { rt }
    }
}

fn to_proto(c: Container) -> api::Container {
    api::Container {
        id: c.id,
        labels: c.labels.into_iter().collect(),
        image: c.image,
        runtime: Some(api::container::Runtime {
            name: c.runtime.name,
            options: c.runtime.options.map(any_to_proto),
        }),
        spec: c.spec.map(any_to_proto),
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created_at: timestamp(c.created),
        updated_at: timestamp(c.updated),
        extensions: c
            .extensions
            .into_iter()
            .map(|(k, v)| (k, any_to_proto(v)))
            .collect(),
        sandbox: c.sandbox,
    }
}

fn from_proto(c: Option<api::Container>) -> Container {
    let c = c.unwrap_or_default();
    let runtime = c.runtime.unwrap_or_default();
    Container {
        id: c.id,
        labels: c.labels.into_iter().collect(),
        image: c.image,
        runtime: ContainerRuntime {
            name: runtime.name,
            options: runtime.options.map(any_from_proto),
        },
        spec: c.spec.map(any_from_proto),
        snapshotter: c.snapshotter,
        snapshot_key: c.snapshot_key,
        created: system_time(c.created_at),
        updated: system_time(c.updated_at),
        extensions: c
            .extensions
            .into_iter()
            .map(|(k, v)| (k, any_from_proto(v)))
            .collect(),
        sandbox: c.sandbox,
    }
}

type ListStream = Pin<Box<dyn Stream<Item = Result<ListContainerMessage, Status>> + Send>>;

#[tonic::async_trait]
impl Containers for ContainersService {
    async fn get(
        &self,
        req: Request<GetContainerRequest>,
    ) -> Result<Response<GetContainerResponse>, Status> {
        let (c, rt, id) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner().id);
        let out = blocking(move || rt.containers().get(&c, &id)).await?;
        Ok(Response::new(GetContainerResponse {
            container: Some(to_proto(out)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListContainersRequest>,
    ) -> Result<Response<ListContainersResponse>, Status> {
        let (c, rt, filters) = (
            ctx(req.metadata())?,
            self.rt.clone(),
            req.into_inner().filters,
        );
        let all = blocking(move || rt.containers().list(&c, &filters)).await?;
        Ok(Response::new(ListContainersResponse {
            containers: all.into_iter().map(to_proto).collect(),
        }))
    }

    type ListStreamStream = ListStream;

    async fn list_stream(
        &self,
        req: Request<ListContainersRequest>,
    ) -> Result<Response<ListStream>, Status> {
        let (c, rt, filters) = (
            ctx(req.metadata())?,
            self.rt.clone(),
            req.into_inner().filters,
        );
        let all = blocking(move || rt.containers().list(&c, &filters)).await?;
        let msgs: Vec<Result<ListContainerMessage, Status>> = all
            .into_iter()
            .map(|c| {
                Ok(ListContainerMessage {
                    container: Some(to_proto(c)),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(msgs))))
    }

    async fn create(
        &self,
        req: Request<CreateContainerRequest>,
    ) -> Result<Response<CreateContainerResponse>, Status> {
        let (c, rt) = (ctx(req.metadata())?, self.rt.clone());
        let container = from_proto(req.into_inner().container);
        let out = blocking(move || rt.containers().create(&c, container)).await?;
        Ok(Response::new(CreateContainerResponse {
            container: Some(to_proto(out)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateContainerRequest>,
    ) -> Result<Response<UpdateContainerResponse>, Status> {
        let (c, rt, r) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner());
        let container = from_proto(r.container);
        if container.id.is_empty() {
            return Err(Status::invalid_argument("Container.ID required"));
        }
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let out = blocking(move || rt.containers().update(&c, container, &paths)).await?;
        Ok(Response::new(UpdateContainerResponse {
            container: Some(to_proto(out)),
        }))
    }

    async fn delete(&self, req: Request<DeleteContainerRequest>) -> Result<Response<()>, Status> {
        let (c, rt, id) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner().id);
        blocking(move || rt.containers().delete(&c, &id)).await?;
        Ok(Response::new(()))
    }
}
