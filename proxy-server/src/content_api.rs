//! The seam between the Content gRPC service and what it serves: the proxy socket's flat view
//! ([`ProxyContent`]) or the runtime's namespaces (`crate::runtime::RuntimeContent`). The
//! service and the Write stream's state machine are written once, over this trait.
//!
//! Every method blocks (file and database I/O): the service calls them on blocking threads.

use std::sync::Arc;

use strata_content::{BlobReader, ContentStore, Info, Writer};
use strata_core::PROXY_VIEW;
use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_runtime::{Opened, SharedIngest};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::errors;

/// What the Content service needs from a store.
pub trait ContentApi: Send + Sync + 'static {
    /// Who a request acts for, from its metadata (the runtime's namespace and lease).
    type Scope: Clone + Send + Sync + 'static;

    fn scope(&self, md: &MetadataMap) -> Result<Self::Scope, Status>;
    fn info(&self, s: &Self::Scope, d: &Digest) -> Result<Info, Status>;
    fn update(
        &self,
        s: &Self::Scope,
        d: &Digest,
        labels: &Labels,
        paths: &[String],
    ) -> Result<Info, Status>;
    fn list(&self, s: &Self::Scope, filters: &[String]) -> Result<Vec<Info>, Status>;
    fn delete(&self, s: &Self::Scope, d: &Digest) -> Result<(), Status>;
    fn reader(&self, s: &Self::Scope, d: &Digest) -> Result<BlobReader, Status>;
    fn status(&self, s: &Self::Scope, r: &str) -> Result<strata_content::Status, Status>;
    fn list_statuses(
        &self,
        s: &Self::Scope,
        filters: &[String],
    ) -> Result<Vec<strata_content::Status>, Status>;
    fn abort(&self, s: &Self::Scope, r: &str) -> Result<(), Status>;
    /// Removes the ingest `r` this caller has open, releasing its ref only once it is gone.
    fn abort_opened(&self, s: &Self::Scope, r: &str, opened: Opened) -> Result<(), Status>;

    /// Opens (locks, resumes) the ingest of ref `r`; AlreadyExists when `expected` is held.
    fn open(
        &self,
        s: &Self::Scope,
        r: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> Result<Opened, Status>;
    /// Whether the scope holds `d` (a Write message naming an existing digest ends the stream).
    fn exists(&self, s: &Self::Scope, d: &Digest) -> Result<bool, Status>;
    /// Turns a shared ingest into a live one keeping `keep` bytes of the blob.
    fn unshare(
        &self,
        s: &Self::Scope,
        r: &str,
        shared: &SharedIngest,
        keep: u64,
    ) -> Result<Writer, Status>;
    /// Commits a live ingest.
    fn commit(
        &self,
        s: &Self::Scope,
        w: &mut Writer,
        size: u64,
        expected: Option<&Digest>,
        labels: Option<&Labels>,
    ) -> Result<Digest, Status>;
    /// Commits a shared ingest.
    fn claim(
        &self,
        s: &Self::Scope,
        r: &str,
        shared: &SharedIngest,
        size: u64,
        expected: Option<&Digest>,
        labels: Option<&Labels>,
    ) -> Result<Digest, Status>;
}

/// A proxy socket's content: one flat view (`view`: [`PROXY_VIEW`] for the default socket)
/// whatever the request's namespace header says; no sharing (containerd's metadata layer
/// above decides that). A blob another view holds is sent again, and its bytes are kept once.
#[derive(Clone)]
pub struct ProxyContent {
    store: ContentStore,
    view: Arc<str>,
    committed: Option<CommitHook>,
}

/// Called with each blob a proxy view commits (the unpack offload's early staging).
pub type CommitHook = Arc<dyn Fn(&Digest) + Send + Sync>;

impl ProxyContent {
    /// The content of the default proxy socket ([`PROXY_VIEW`]).
    pub fn new(store: ContentStore) -> Self {
        Self::for_view(store, PROXY_VIEW)
    }

    /// The content of a proxy socket serving `view`.
    pub fn for_view(store: ContentStore, view: &str) -> Self {
        ProxyContent {
            store,
            view: view.into(),
            committed: None,
        }
    }

    /// Calls `hook` after each commit.
    pub fn with_commit_hook(mut self, hook: CommitHook) -> Self {
        self.committed = Some(hook);
        self
    }
}

fn no_sharing() -> Status {
    Status::internal("the proxy view never shares ingests")
}

impl ContentApi for ProxyContent {
    type Scope = ();

    fn scope(&self, _: &MetadataMap) -> Result<(), Status> {
        Ok(())
    }

    fn info(&self, _: &(), d: &Digest) -> Result<Info, Status> {
        self.store.info(&self.view, d).map_err(errors::content)
    }

    fn update(
        &self,
        _: &(),
        d: &Digest,
        labels: &Labels,
        paths: &[String],
    ) -> Result<Info, Status> {
        self.store
            .update(&self.view, d, labels, paths)
            .map_err(errors::content)
    }

    fn list(&self, _: &(), filters: &[String]) -> Result<Vec<Info>, Status> {
        self.store
            .list(&self.view, filters)
            .map_err(errors::content)
    }

    fn delete(&self, _: &(), d: &Digest) -> Result<(), Status> {
        self.store.delete(&self.view, d).map_err(errors::content)
    }

    fn reader(&self, _: &(), d: &Digest) -> Result<BlobReader, Status> {
        self.store.reader(&self.view, d).map_err(errors::content)
    }

    fn status(&self, _: &(), r: &str) -> Result<strata_content::Status, Status> {
        self.store.status(&self.view, r).map_err(errors::content)
    }

    fn list_statuses(
        &self,
        _: &(),
        filters: &[String],
    ) -> Result<Vec<strata_content::Status>, Status> {
        self.store
            .list_statuses(&self.view, filters)
            .map_err(errors::content)
    }

    fn abort(&self, _: &(), r: &str) -> Result<(), Status> {
        self.store.abort(&self.view, r).map_err(errors::content)
    }

    fn abort_opened(&self, s: &(), r: &str, opened: Opened) -> Result<(), Status> {
        match opened {
            Opened::Live(w) => w.abort().map_err(errors::content),
            Opened::Shared(_) => self.abort(s, r),
        }
    }

    fn open(
        &self,
        _: &(),
        r: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> Result<Opened, Status> {
        self.store
            .writer(&self.view, r, total, expected)
            .map(Opened::Live)
            .map_err(errors::content)
    }

    fn exists(&self, _: &(), d: &Digest) -> Result<bool, Status> {
        Ok(self.store.info(&self.view, d).is_ok())
    }

    fn unshare(&self, _: &(), _: &str, _: &SharedIngest, _: u64) -> Result<Writer, Status> {
        Err(no_sharing())
    }

    fn commit(
        &self,
        _: &(),
        w: &mut Writer,
        size: u64,
        expected: Option<&Digest>,
        labels: Option<&Labels>,
    ) -> Result<Digest, Status> {
        let d = w.commit(size, expected, labels).map_err(errors::content)?;
        if let Some(hook) = &self.committed {
            hook(&d);
        }
        Ok(d)
    }

    fn claim(
        &self,
        _: &(),
        _: &str,
        _: &SharedIngest,
        _: u64,
        _: Option<&Digest>,
        _: Option<&Labels>,
    ) -> Result<Digest, Status> {
        Err(no_sharing())
    }
}
