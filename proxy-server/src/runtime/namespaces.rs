//! `containerd.services.namespaces.v1.Namespaces` over the runtime.

use strata_runtime::{Namespace, Runtime};
use tonic::{Request, Response, Status};

use super::convert::blocking;
use crate::api::namespaces::namespaces_server::Namespaces;
use crate::api::namespaces::{self as api, *};

#[derive(Clone)]
pub struct NamespacesService {
    rt: Runtime,
}

impl NamespacesService {
    pub fn new(rt: Runtime) -> Self {
        NamespacesService { rt }
    }
}

fn to_proto(n: Namespace) -> api::Namespace {
    api::Namespace {
        name: n.name,
        labels: n.labels.into_iter().collect(),
    }
}

#[tonic::async_trait]
impl Namespaces for NamespacesService {
    async fn get(
        &self,
        req: Request<GetNamespaceRequest>,
    ) -> Result<Response<GetNamespaceResponse>, Status> {
        let (rt, name) = (self.rt.clone(), req.into_inner().name);
        let n = blocking(move || rt.namespaces().get(&name)).await?;
        Ok(Response::new(GetNamespaceResponse {
            namespace: Some(to_proto(n)),
        }))
    }

    async fn list(
        &self,
        _: Request<ListNamespacesRequest>,
    ) -> Result<Response<ListNamespacesResponse>, Status> {
        let rt = self.rt.clone();
        let all = blocking(move || rt.namespaces().list()).await?;
        Ok(Response::new(ListNamespacesResponse {
            namespaces: all.into_iter().map(to_proto).collect(),
        }))
    }

    async fn create(
        &self,
        req: Request<CreateNamespaceRequest>,
    ) -> Result<Response<CreateNamespaceResponse>, Status> {
        let n = req.into_inner().namespace.unwrap_or_default();
        let rt = self.rt.clone();
        let labels = n.labels.into_iter().collect();
        let n = blocking(move || rt.namespaces().create(&n.name, &labels)).await?;
        Ok(Response::new(CreateNamespaceResponse {
            namespace: Some(to_proto(n)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateNamespaceRequest>,
    ) -> Result<Response<UpdateNamespaceResponse>, Status> {
        let r = req.into_inner();
        let n = r.namespace.unwrap_or_default();
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let rt = self.rt.clone();
        let labels = n.labels.into_iter().collect();
        let n = blocking(move || rt.namespaces().update(&n.name, &labels, &paths)).await?;
        Ok(Response::new(UpdateNamespaceResponse {
            namespace: Some(to_proto(n)),
        }))
    }

    async fn delete(&self, req: Request<DeleteNamespaceRequest>) -> Result<Response<()>, Status> {
        let (rt, name) = (self.rt.clone(), req.into_inner().name);
        blocking(move || rt.namespaces().delete(&name)).await?;
        Ok(Response::new(()))
    }
}
