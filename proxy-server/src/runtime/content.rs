//! The runtime socket's content: [`ContentApi`] over the runtime's namespaces.

use strata_content::{BlobReader, Info, Writer};
use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_runtime::{Ctx, Opened, Runtime, SharedIngest};
use tonic::Status;
use tonic::metadata::MetadataMap;

use super::convert::ctx;
use crate::content_api::ContentApi;
use crate::errors::runtime as err;

/// Content scoped by the `containerd-namespace` and `containerd-lease` headers.
#[derive(Clone)]
pub struct RuntimeContent {
    rt: Runtime,
}

impl RuntimeContent {
    pub fn new(rt: Runtime) -> Self {
        RuntimeContent { rt }
    }
}

impl ContentApi for RuntimeContent {
    type Scope = Ctx;

    fn scope(&self, md: &MetadataMap) -> Result<Ctx, Status> {
        ctx(md)
    }

    fn info(&self, c: &Ctx, d: &Digest) -> Result<Info, Status> {
        self.rt.content().info(c, d).map_err(err)
    }

    fn update(
        &self,
        c: &Ctx,
        d: &Digest,
        labels: &Labels,
        paths: &[String],
    ) -> Result<Info, Status> {
        self.rt.content().update(c, d, labels, paths).map_err(err)
    }

    fn list(&self, c: &Ctx, filters: &[String]) -> Result<Vec<Info>, Status> {
        self.rt.content().list(c, filters).map_err(err)
    }

    fn delete(&self, c: &Ctx, d: &Digest) -> Result<(), Status> {
        self.rt.content().delete(c, d).map_err(err)
    }

    fn reader(&self, c: &Ctx, d: &Digest) -> Result<BlobReader, Status> {
        self.rt.content().reader(c, d).map_err(err)
    }

    fn status(&self, c: &Ctx, r: &str) -> Result<strata_content::Status, Status> {
        self.rt.content().status(c, r).map_err(err)
    }

    fn list_statuses(
        &self,
        c: &Ctx,
        filters: &[String],
    ) -> Result<Vec<strata_content::Status>, Status> {
        self.rt.content().list_statuses(c, filters).map_err(err)
    }

    fn abort(&self, c: &Ctx, r: &str) -> Result<(), Status> {
        self.rt.content().abort(c, r).map_err(err)
    }

    fn abort_opened(&self, c: &Ctx, r: &str, opened: Opened) -> Result<(), Status> {
        self.rt.content().abort_opened(c, r, opened).map_err(err)
    }

    fn open(
        &self,
        c: &Ctx,
        r: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> Result<Opened, Status> {
        self.rt.content().open(c, r, total, expected).map_err(err)
    }

    fn exists(&self, c: &Ctx, d: &Digest) -> Result<bool, Status> {
        self.rt.content().exists(c, d).map_err(err)
    }

    fn unshare(
        &self,
        c: &Ctx,
        r: &str,
        shared: &SharedIngest,
        keep: u64,
    ) -> Result<Writer, Status> {
        self.rt.content().unshare(c, r, shared, keep).map_err(err)
    }

    fn commit(
        &self,
        c: &Ctx,
        w: &mut Writer,
        size: u64,
        expected: Option<&Digest>,
        labels: Option<&Labels>,
    ) -> Result<Digest, Status> {
        self.rt
            .content()
            .commit(c, w, size, expected, labels)
            .map_err(err)
    }

    fn claim(
        &self,
        c: &Ctx,
        r: &str,
        shared: &SharedIngest,
        size: u64,
        expected: Option<&Digest>,
        labels: Option<&Labels>,
    ) -> Result<Digest, Status> {
        self.rt
            .content()
            .claim(c, r, shared, size, expected, labels)
            .map_err(err)
    }
}
