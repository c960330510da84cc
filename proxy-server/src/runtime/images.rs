//! `containerd.services.images.v1.Images` over the runtime.

use strata_runtime::{Image, Runtime};
use tonic::{Request, Response, Status};

use super::convert::{
    blocking, ctx, descriptor_from_proto, descriptor_to_proto, system_time, timestamp,
};
use crate::api::images::images_server::Images;
use crate::api::images::{self as api, *};
use crate::errors;

#[derive(Clone)]
pub struct ImagesService {
    rt: Runtime,
}

impl ImagesService {
    pub fn new(rt: Runtime) -> Self {
        ImagesService { rt }
    }
}

fn to_proto(i: Image) -> api::Image {
    api::Image {
        name: i.name,
        labels: i.labels.into_iter().collect(),
        target: Some(descriptor_to_proto(i.target)),
        created_at: timestamp(i.created),
        updated_at: timestamp(i.updated),
    }
}

fn from_proto(i: Option<api::Image>) -> Image {
    let i = i.unwrap_or_default();
    Image {
        name: i.name,
        labels: i.labels.into_iter().collect(),
        target: descriptor_from_proto(i.target),
        created: system_time(i.created_at),
        updated: system_time(i.updated_at),
    }
}

#[tonic::async_trait]
impl Images for ImagesService {
    async fn get(
        &self,
        req: Request<GetImageRequest>,
    ) -> Result<Response<GetImageResponse>, Status> {
        let (c, rt, name) = (ctx(req.metadata())?, self.rt.clone(), req.into_inner().name);
        let i = blocking(move || rt.images().get(&c, &name)).await?;
        Ok(Response::new(GetImageResponse {
            image: Some(to_proto(i)),
        }))
    }

    async fn list(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let (c, rt, filters) = (
            ctx(req.metadata())?,
            self.rt.clone(),
            req.into_inner().filters,
        );
        let all = blocking(move || rt.images().list(&c, &filters)).await?;
        Ok(Response::new(ListImagesResponse {
            images: all.into_iter().map(to_proto).collect(),
        }))
    }

    async fn create(
        &self,
        req: Request<CreateImageRequest>,
    ) -> Result<Response<CreateImageResponse>, Status> {
        let c = ctx(req.metadata())?;
        let image = from_proto(req.into_inner().image);
        if image.name.is_empty() {
            return Err(Status::invalid_argument("Image.Name required"));
        }
        let rt = self.rt.clone();
        let i = blocking(move || rt.images().create(&c, image)).await?;
        Ok(Response::new(CreateImageResponse {
            image: Some(to_proto(i)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateImageRequest>,
    ) -> Result<Response<UpdateImageResponse>, Status> {
        let c = ctx(req.metadata())?;
        let r = req.into_inner();
        let image = from_proto(r.image);
        if image.name.is_empty() {
            return Err(Status::invalid_argument("Image.Name required"));
        }
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let rt = self.rt.clone();
        let i = blocking(move || rt.images().update(&c, image, &paths)).await?;
        Ok(Response::new(UpdateImageResponse {
            image: Some(to_proto(i)),
        }))
    }

    async fn delete(&self, req: Request<DeleteImageRequest>) -> Result<Response<()>, Status> {
        let c = ctx(req.metadata())?;
        let r = req.into_inner();
        let rt = self.rt.clone();
        blocking(move || rt.images().delete(&c, &r.name)).await?;
        if r.sync {
            self.rt.collect().await.map_err(errors::runtime)?;
        }
        Ok(Response::new(()))
    }
}
