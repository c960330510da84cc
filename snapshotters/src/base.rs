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
            self.build_dir(l, id, kind, &parents)
                .map_err(|e| self.lost_race(view, kind, key, parent, e))?;
        }
        let res = self
            .ms
            .create_snapshot_with_id(view, id, kind, key, parent, labels);
        if res.is_err()
            && let Err(e) = l.remove_dir(&self.dirs, id)
        {
            tracing::warn!(error = %e, id, "snapshot directory left for cleanup");
        }
        res
    }

    /// The error of a creation whose filesystem work failed: when the parent was removed (or
    /// the key created) meanwhile, that race's NotFound (or AlreadyExists), else `err`.
    fn lost_race(&self, view: &str, kind: Kind, key: &str, parent: &str, err: Error) -> Error {
        match self.ms.check_create(view, kind, key, parent) {
            Err(e @ (Error::NotFound(_) | Error::AlreadyExists(_))) => e,
            _ => err,
        }
    }

    /// Builds `new-*` with [`Layout::fill`] and installs it as `<id>`; on failure it is
    /// deleted (a failure to delete it is logged, and left to Cleanup).
    fn build_dir<L: Layout>(&self, l: &L, id: u64, kind: Kind, parents: &[u64]) -> Result<()> {
        let tmp = self.dirs.create_temp()?;
        let res = l
            .fill(&self.dirs, &tmp, kind, parents)
            .and_then(|()| self.dirs.install(&tmp, id).map(drop));
        if res.is_err()
            && let Err(e) = l.remove_tree(&tmp)
        {
            tracing::warn!(error = %e, path = %tmp.display(), "half-built directory left for cleanup");
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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::Barrier;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::Mount;
    use crate::native::NativeLayout;
    use crate::overlay::OverlayLayout;

    type Hook = Box<dyn Fn() + Send + Sync>;

    /// `inner`, with `hook` run at the start of every fill and, when `fail_remove`, a
    /// `remove_dir` that always fails.
    struct Hooked<L> {
        inner: L,
        hook: Hook,
        fail_remove: bool,
    }

    impl<L: std::fmt::Debug> std::fmt::Debug for Hooked<L> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Hooked")
                .field("inner", &self.inner)
                .finish()
        }
    }

    impl<L: Layout> Layout for Hooked<L> {
        fn own_dir(&self, kind: Kind, has_parent: bool) -> bool {
            self.inner.own_dir(kind, has_parent)
        }
        fn fill(&self, dirs: &Dirs, tmp: &Path, kind: Kind, parents: &[u64]) -> Result<()> {
            (self.hook)();
            self.inner.fill(dirs, tmp, kind, parents)
        }
        fn mounts(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Vec<Mount>> {
            self.inner.mounts(dirs, snap)
        }
        fn data_dir(&self, dirs: &Dirs, id: u64) -> PathBuf {
            self.inner.data_dir(dirs, id)
        }
        fn remove_dir(&self, dirs: &Dirs, id: u64) -> Result<()> {
            if self.fail_remove {
                let e = std::io::Error::other("injected cleanup failure");
                return Err(Error::io(format!("remove snapshot directory {id}"), e));
            }
            self.inner.remove_dir(dirs, id)
        }
    }

    fn open(root: &Path) -> (Arc<DB>, Base) {
        let db = strata_core::db::open(&root.join("db"), crate::COLUMN_FAMILIES).unwrap();
        let base = Base::new(db.clone(), "t", &root.join("dir")).unwrap();
        (db, base)
    }

    /// Regression: the losers of a race on one key got their cleanup's error (Unknown)
    /// instead of AlreadyExists when deleting their directory failed.
    fn racing_creates_of_one_key<L: Layout>(inner: L) {
        const N: usize = 6;
        let d = tempfile::tempdir().unwrap();
        let (_db, base) = open(d.path());
        let barrier = Arc::new(Barrier::new(N));
        let b = barrier.clone();
        let l = Hooked {
            inner,
            hook: Box::new(move || drop(b.wait())),
            fail_remove: true,
        };
        let results: Vec<Result<Snapshot>> = std::thread::scope(|s| {
            let create = || base.create(&l, "v", Kind::Active, "k", "", Labels::new());
            let handles: Vec<_> = (0..N).map(|_| s.spawn(create)).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|r| r.is_ok()).count(),
            1,
            "{results:?}"
        );
        for r in results.iter().filter(|r| r.is_err()) {
            assert!(matches!(r, Err(Error::AlreadyExists(_))), "{r:?}");
        }
    }

    #[test]
    fn racing_creates_of_one_key_native() {
        racing_creates_of_one_key(NativeLayout::default());
    }

    #[test]
    fn racing_creates_of_one_key_overlay() {
        racing_creates_of_one_key(OverlayLayout::default());
    }

    /// Regression: a Prepare whose parent was removed while its directory was being built
    /// failed with the filesystem's error (Unknown) instead of NotFound.
    fn prepare_losing_its_parent<L: Layout>(inner: L) {
        let d = tempfile::tempdir().unwrap();
        let (db, base) = open(d.path());
        let (ms, dirs) = (
            Metastore::new(db, "t"),
            Dirs::new(&d.path().join("dir")).unwrap(),
        );
        let armed = Arc::new(AtomicBool::new(false));
        let fire = armed.clone();
        let l = Hooked {
            inner,
            hook: Box::new(move || {
                if fire.swap(false, Ordering::SeqCst) {
                    let (id, _) = ms.remove("v", "p").expect("remove the parent");
                    dirs.remove(id).expect("remove the parent's directory");
                }
            }),
            fail_remove: false,
        };
        base.create(&l, "v", Kind::Active, "a", "", Labels::new())
            .unwrap();
        base.commit(&l, "v", "p", "a", Labels::new()).unwrap();
        armed.store(true, Ordering::SeqCst);
        let res = base.create(&l, "v", Kind::Active, "c", "p", Labels::new());
        assert!(matches!(res, Err(Error::NotFound(_))), "{res:?}");
        assert!(matches!(
            base.ms.get_info("v", "c"),
            Err(Error::NotFound(_))
        ));
        let left = std::fs::read_dir(d.path().join("dir/snapshots"))
            .unwrap()
            .count();
        assert_eq!(left, 0, "no directory left behind");
    }

    #[test]
    fn prepare_losing_its_parent_native() {
        prepare_losing_its_parent(NativeLayout::default());
    }

    #[test]
    fn prepare_losing_its_parent_overlay() {
        prepare_losing_its_parent(OverlayLayout::default());
    }
}
