//! What the directory-based backends share: the metastore, the `snapshots/<id>` layout and
//! the crash-safe order of filesystem and metastore steps.
//!
//! Creation builds `new-<random>`, renames it to `<id>` (an id reserved from the metastore's
//! counter), and only then writes the record; removal writes the metastore first and deletes
//! the directory after. A crash therefore leaves only orphan directories, which Cleanup deletes,
//! never a record without its directory. Cleanup takes the `gc` lock exclusively so it never
//! races a creation or removal in progress.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rocksdb::DB;
use strata_core::labels::{Labels, validate};

use crate::fsutil::{Dirs, disk_usage};
use crate::metastore::{Metastore, Snapshot};
use crate::{Error, Kind, Result, Usage};

/// Metastore + directories of one backend.
#[derive(Debug)]
pub(crate) struct Base {
    pub ms: Metastore,
    pub dirs: Dirs,
    gc: RwLock<()>,
}

impl Base {
    pub fn new(db: Arc<DB>, backend: &str, dir: &Path) -> Result<Self> {
        Ok(Base {
            ms: Metastore::new(db, backend),
            dirs: Dirs::new(dir)?,
            gc: RwLock::new(()),
        })
    }

    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gc.read().unwrap_or_else(|p| p.into_inner())
    }

    fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gc.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a snapshot. When `fill` is given, the directory `<id>` is built by it first
    /// (`fill(tmp_dir, parent_ids)`), then the record is written.
    pub fn create<F>(
        &self,
        view: &str,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: Labels,
        fill: Option<F>,
    ) -> Result<Snapshot>
    where
        F: FnOnce(&Path, &[u64]) -> Result<()>,
    {
        let _g = self.shared();
        validate(&labels).map_err(|e| Error::InvalidArgument(e.0))?;
        let parents = self.ms.check_create(view, kind, key, parent)?;
        let id = self.ms.reserve_id()?;
        if let Some(fill) = fill {
            self.build_dir(id, &parents, fill)?;
        }
        let res = self
            .ms
            .create_snapshot_with_id(view, id, kind, key, parent, labels);
        if res.is_err() {
            self.dirs.remove(id)?;
        }
        res
    }

    fn build_dir<F>(&self, id: u64, parents: &[u64], fill: F) -> Result<PathBuf>
    where
        F: FnOnce(&Path, &[u64]) -> Result<()>,
    {
        let tmp = self.dirs.create_temp()?;
        let res = fill(&tmp, parents).and_then(|()| self.dirs.install(&tmp, id));
        if res.is_err() {
            crate::fsutil::remove_all(&tmp)?;
        }
        res
    }

    /// Commits active `key` as `name`, recording the usage of `du_dir(id)`.
    pub fn commit(
        &self,
        view: &str,
        name: &str,
        key: &str,
        labels: Labels,
        du_dir: impl Fn(u64) -> PathBuf,
    ) -> Result<()> {
        validate(&labels).map_err(|e| Error::InvalidArgument(e.0))?;
        let snap = self.ms.check_commit(view, key, name)?;
        let usage = disk_usage(&du_dir(snap.id))?;
        self.ms.commit_active(view, key, name, usage, labels)?;
        Ok(())
    }

    /// Live usage of `du_dir(id)` for an active snapshot, the recorded one otherwise.
    pub fn usage(&self, view: &str, key: &str, du_dir: impl Fn(u64) -> PathBuf) -> Result<Usage> {
        let (id, info, usage) = self.ms.get_info(view, key)?;
        match info.kind {
            Kind::Active => disk_usage(&du_dir(id)),
            _ => Ok(usage),
        }
    }

    /// Removes the record, then the directory (a failure there is left to Cleanup).
    pub fn remove(&self, view: &str, key: &str) -> Result<()> {
        let _g = self.shared();
        let (id, _) = self.ms.remove(view, key)?;
        if let Err(e) = self.dirs.remove(id) {
            tracing::warn!(error = %e, id, "snapshot directory left for cleanup");
        }
        Ok(())
    }

    /// Deletes every directory that is not a live snapshot's.
    pub fn cleanup(&self) -> Result<()> {
        let _g = self.exclusive();
        let live = self.ms.ids()?;
        self.dirs.cleanup(&live)
    }
}
