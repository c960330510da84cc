//! What the directory-based backends share: the metastore, the `snapshots/<id>` layout and
//! the crash-safe order of filesystem and metastore steps.
//!
//! Creation builds `new-<random>`, renames it to `<id>` (an id reserved from the metastore's
//! counter), and only then writes the record; removal writes the metastore first and deletes
//! the directory after. A crash therefore leaves only orphan directories, which Cleanup deletes,
//! never a record without its directory. Cleanup takes the `gc` lock exclusively so it never
//! races a creation or removal in progress.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rocksdb::DB;
use strata_core::labels::{Labels, validate};

use crate::backend::Layout;
use crate::fsutil::Dirs;
use crate::metastore::{Metastore, Snapshot};
use crate::{Error, Kind, Result, Usage};

/// Metastore + directories of one backend.
#[derive(Debug)]
pub(crate) struct Base {
    pub ms: Metastore,
    pub dirs: Dirs,
    gc: RwLock<()>,
    /// Ids whose records [`Base::remove_many`] removed and whose directories are still there.
    unreclaimed: Mutex<Vec<u64>>,
}

impl Base {
    pub fn new(db: Arc<DB>, backend: &str, dir: &Path) -> Result<Self> {
        let base = Base {
            ms: Metastore::new(db, backend),
            dirs: Dirs::new(dir)?,
            gc: RwLock::new(()),
            unreclaimed: Mutex::default(),
        };
        base.ms.raise_counter(base.dirs.max_id()?)?;
        Ok(base)
    }

    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.gc.read().unwrap_or_else(|p| p.into_inner())
    }

    fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        self.gc.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a snapshot. When the layout wants a directory for it, `<id>` is built first
    /// (`new-*` filled by [`Layout::fill`], then renamed), then the record is written.
    pub fn create<L: Layout>(
        &self,
        l: &L,
        view: &str,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Snapshot> {
        let _g = self.shared();
        validate(&labels).map_err(|e| Error::InvalidArgument(e.0))?;
        let parents = self.ms.check_create(view, kind, key, parent)?;
        let id = self.ms.reserve_id()?;
        if l.own_dir(kind, !parent.is_empty()) {
            self.build_dir(l, id, kind, &parents)?;
        }
        let res = self
            .ms
            .create_snapshot_with_id(view, id, kind, key, parent, labels);
        if res.is_err() {
            l.remove_dir(&self.dirs, id)?;
        }
        res
    }

    fn build_dir<L: Layout>(&self, l: &L, id: u64, kind: Kind, parents: &[u64]) -> Result<()> {
        let tmp = self.dirs.create_temp()?;
        let res = l
            .fill(&self.dirs, &tmp, kind, parents)
            .and_then(|()| self.dirs.install(&tmp, id).map(drop));
        if res.is_err() {
            l.remove_tree(&tmp)?;
        }
        res
    }

    /// Commits active `key` as `name`, recording [`Layout::usage`] of the active snapshot.
    pub fn commit<L: Layout>(
        &self,
        l: &L,
        view: &str,
        name: &str,
        key: &str,
        labels: Labels,
    ) -> Result<()> {
        validate(&labels).map_err(|e| Error::InvalidArgument(e.0))?;
        let snap = self.ms.check_commit(view, key, name)?;
        let usage = l.usage(&self.dirs, &snap)?;
        self.ms.commit_active(view, key, name, usage, labels)?;
        if let Err(e) = l.committed(&self.dirs, snap.id) {
            tracing::warn!(error = %e, id = snap.id, "committed snapshot left writable");
        }
        Ok(())
    }

    /// Live [`Layout::usage`] for an active snapshot, the recorded one otherwise.
    pub fn usage<L: Layout>(&self, l: &L, view: &str, key: &str) -> Result<Usage> {
        let (_, info, usage) = self.ms.get_info(view, key)?;
        match info.kind {
            Kind::Active => l.usage(&self.dirs, &self.ms.get_snapshot(view, key)?),
            _ => Ok(usage),
        }
    }

    /// Removes the record, then the directory (a failure there is left to Cleanup).
    pub fn remove<L: Layout>(&self, l: &L, view: &str, key: &str) -> Result<()> {
        let _g = self.shared();
        let (id, _) = self.ms.remove(view, key)?;
        if let Err(e) = l.remove_dir(&self.dirs, id) {
            tracing::warn!(error = %e, id, "snapshot directory left for cleanup");
        }
        Ok(())
    }

    /// Removes the records of `keys` in one batch; their directories wait for [`Base::reclaim`]
    /// (ids are never reused, so an unreferenced directory can go at any later time).
    pub fn remove_many(&self, view: &str, keys: &[String]) -> Result<Vec<Result<()>>> {
        let results = self.ms.remove_many(view, keys)?;
        let mut pending = self.unreclaimed.lock().unwrap_or_else(|p| p.into_inner());
        Ok(results
            .into_iter()
            .map(|r| r.map(|id| pending.push(id)))
            .collect())
    }

    /// Deletes the directories of snapshots removed by [`Base::remove_many`].
    pub fn reclaim<L: Layout>(&self, l: &L) -> Result<()> {
        let _g = self.shared();
        let ids = std::mem::take(&mut *self.unreclaimed.lock().unwrap_or_else(|p| p.into_inner()));
        for id in ids {
            if let Err(e) = l.remove_dir(&self.dirs, id) {
                tracing::warn!(error = %e, id, "snapshot directory left for cleanup");
            }
        }
        Ok(())
    }

    /// Deletes every directory that is not a live snapshot's.
    pub fn cleanup<L: Layout>(&self, l: &L) -> Result<()> {
        let _g = self.exclusive();
        let live = self.ms.ids()?;
        l.cleanup(&self.dirs, &live)
    }
}
