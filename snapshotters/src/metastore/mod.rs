//! The one snapshot metastore every backend shares, kept in the common RocksDB.
//!
//! Mirrors containerd's `snapshots/storage`: backends do filesystem work only and keep their
//! records here. Every key starts with `backend \0 view \0`, so backends and views never see
//! each other's snapshots. Column families:
//!
//! * `snap_info` — `backend\0view\0name` → the record (id, kind, parent name, created/updated
//!   nanos, labels, usage recorded at Commit), JSON;
//! * `snap_children` — `backend\0view\0<parent id BE>child` → `""`, the back-links that make
//!   Remove of a parent fail;
//! * `snap_meta` — `backend\0next_id` → the id counter (u64 BE). Ids are never reused.
//!
//! One mutex serialises every read-modify-write; each write is one `WriteBatch` written with
//! [`strata_core::db::sync_write`]. Reads return owned values, so callers never hold a lock.
//! Use one `Metastore` (cloned freely) per backend name.

mod record;
mod write;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use rocksdb::{ColumnFamily, DB, IteratorMode};
use strata_core::db::prefix_bounds;
use strata_core::filters::parse_all;
use strata_core::labels::Labels;

use crate::{Error, Info, Kind, Result, Usage};
use record::{InfoFields, Record, info_key, view_prefix};

/// Column families of the metastore.
pub const COLUMN_FAMILIES: &[&str] = &[CF_INFO, CF_CHILDREN, CF_META];

const CF_INFO: &str = "snap_info";
const CF_CHILDREN: &str = "snap_children";
const CF_META: &str = "snap_meta";

/// What a backend needs to build mounts: the directory id, the kind and the parents' ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Numeric id, unique per backend for ever (the directory name).
    pub id: u64,
    pub kind: Kind,
    /// Ids of the parent chain, immediate parent first, root last.
    pub parent_ids: Vec<u64>,
}

/// One snapshot as [`Metastore::stored`] lists it.
#[derive(Debug, Clone)]
pub struct Stored {
    pub view: String,
    pub key: String,
    pub id: u64,
    pub kind: Kind,
    pub parent: String,
    pub labels: Labels,
}

/// `view \0 key` (a key's bytes after the backend prefix) split in two (views never hold NUL;
/// [`Record::decode`] has already accepted the key).
fn split_view_key(rest: &[u8]) -> (String, String) {
    let at = rest.iter().position(|b| *b == 0).unwrap_or(rest.len());
    let key = rest.get(at + 1..).unwrap_or_default();
    (
        String::from_utf8_lossy(&rest[..at]).into_owned(),
        String::from_utf8_lossy(key).into_owned(),
    )
}

/// The shared snapshot metastore of one backend (see the module docs).
#[derive(Clone)]
pub struct Metastore {
    db: Arc<DB>,
    backend: String,
    lock: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Metastore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metastore")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Metastore {
    /// A metastore for `backend` (`native`, `overlay`, ...) in `db`, which must have been opened
    /// with [`COLUMN_FAMILIES`]. `backend` must not contain NUL.
    pub fn new(db: Arc<DB>, backend: &str) -> Self {
        Metastore {
            db,
            backend: backend.to_string(),
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// Info and recorded usage of any snapshot, with its id.
    pub fn get_info(&self, view: &str, key: &str) -> Result<(u64, Info, Usage)> {
        let rec = self.record(view, key)?.ok_or_else(|| not_found(key))?;
        Ok((rec.id, rec.info(key), rec.usage()))
    }

    /// The id, kind and parent chain of an active or view snapshot; committed snapshots are
    /// FailedPrecondition (they have no mounts).
    pub fn get_snapshot(&self, view: &str, key: &str) -> Result<Snapshot> {
        let rec = self.record(view, key)?.ok_or_else(|| not_found(key))?;
        if rec.kind() == Kind::Committed {
            return Err(Error::FailedPrecondition(format!(
                "requested snapshot {key} not active or view"
            )));
        }
        self.snapshot_of(view, &rec)
    }

    /// Every snapshot of `view` matching any of `filters`, in key byte order.
    pub fn walk_info(&self, view: &str, filters: &[String]) -> Result<Vec<Info>> {
        let filter = parse_all(filters)
            .map_err(|e| Error::InvalidArgument(format!("failed to parse filters: {e}")))?;
        let prefix = view_prefix(&self.backend, view);
        let mut out = Vec::new();
        for item in self.scan(CF_INFO, &prefix) {
            let (k, v) = item?;
            let name = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            let info = Record::decode(&k, &v)?.info(&name);
            if filter.matches(&InfoFields(&info)) {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// Every snapshot of this backend, in every view, as recorded (one scan; parent chains are
    /// not resolved: [`Metastore::get_snapshot`] does that for the one that needs it).
    pub fn stored(&self) -> Result<Vec<Stored>> {
        let mut prefix = self.backend.as_bytes().to_vec();
        prefix.push(0);
        let mut out = Vec::new();
        for item in self.scan(CF_INFO, &prefix) {
            let (k, v) = item?;
            let rec = Record::decode(&k, &v)?;
            let (view, key) = split_view_key(&k[prefix.len()..]);
            out.push(Stored {
                view,
                key,
                id: rec.id,
                kind: rec.kind(),
                parent: rec.parent,
                labels: rec.labels,
            });
        }
        Ok(out)
    }

    /// Ids of every snapshot of this backend, in every view (what Cleanup keeps).
    pub fn ids(&self) -> Result<HashSet<u64>> {
        Ok(self.stored()?.into_iter().map(|s| s.id).collect())
    }

    fn cf(&self, name: &str) -> Result<&ColumnFamily> {
        self.db.cf_handle(name).ok_or_else(|| {
            Error::io(
                format!("column family {name} missing"),
                std::io::ErrorKind::NotFound.into(),
            )
        })
    }

    fn guard(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, view: &str, name: &str) -> Result<Option<Record>> {
        let key = info_key(&self.backend, view, name);
        match self.db.get_cf(self.cf(CF_INFO)?, &key)? {
            Some(v) => Ok(Some(Record::decode(&key, &v)?)),
            None => Ok(None),
        }
    }

    /// Parent ids of `rec`, immediate parent first.
    fn parent_ids(&self, view: &str, rec: &Record) -> Result<Vec<u64>> {
        let mut ids = Vec::new();
        let mut parent = rec.parent.clone();
        while !parent.is_empty() {
            let p = self.record(view, &parent)?.ok_or_else(|| {
                Error::NotFound(format!("missing parent {parent:?} of a snapshot"))
            })?;
            ids.push(p.id);
            parent = p.parent;
        }
        Ok(ids)
    }

    fn snapshot_of(&self, view: &str, rec: &Record) -> Result<Snapshot> {
        Ok(Snapshot {
            id: rec.id,
            kind: rec.kind(),
            parent_ids: self.parent_ids(view, rec)?,
        })
    }

    /// Key/value pairs of `cf` starting with `prefix`.
    fn scan<'a>(
        &'a self,
        cf: &str,
        prefix: &'a [u8],
    ) -> Box<dyn Iterator<Item = Result<Pair>> + 'a> {
        let cf = match self.cf(cf) {
            Ok(cf) => cf,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let it = self
            .db
            .iterator_cf_opt(cf, prefix_bounds(prefix), IteratorMode::Start);
        Box::new(
            it.map(|r| r.map_err(Error::from))
                .take_while(move |r| r.as_ref().map_or(true, |(k, _)| k.starts_with(prefix))),
        )
    }
}

/// One raw key/value pair of a scan.
type Pair = (Box<[u8]>, Box<[u8]>);

fn not_found(key: &str) -> Error {
    Error::NotFound(format!("snapshot {key:?} does not exist"))
}
