//! [`Metadata`]: a backend's handle on the database its snapshot records live in.

use std::path::Path;
use std::sync::Arc;

use rocksdb::DB;

use crate::Result;

/// The database the metastore keeps every backend's records in, shared by all the backends of
/// a daemon. Cheap to clone. A backend gets it from the daemon (`strata_proxy::Host`) or, in
/// tests and tools, opens one of its own with [`Metadata::open`]; it passes it to
/// [`Backend::with_layout`](crate::Backend::with_layout) and never reads it itself.
#[derive(Clone)]
pub struct Metadata {
    db: Arc<DB>,
}

impl std::fmt::Debug for Metadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metadata")
            .field("path", &self.db.path())
            .finish()
    }
}

impl Metadata {
    /// Opens (creating it if missing) a database of its own at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Metadata {
            db: strata_core::db::open(path, crate::COLUMN_FAMILIES)?,
        })
    }

    /// The daemon's database, opened with [`crate::COLUMN_FAMILIES`] among its column families.
    #[doc(hidden)]
    pub fn shared(db: Arc<DB>) -> Self {
        Metadata { db }
    }

    pub(crate) fn db(&self) -> Arc<DB> {
        self.db.clone()
    }
}
