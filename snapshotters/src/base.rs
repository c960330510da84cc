//! What the directory-based backends share: the metastore, the `snapshots/<id>` layout and
//! the crash-safe order of filesystem and metastore steps.
//!
//! Creation builds `new-<random>`, renames it to `<id>` (an id reserved from the metastore's
//! counter), and only then writes the record; removal writes the metastore first and deletes
//! the directory after. A crash therefore leaves orphan directories, which Cleanup deletes; a
//! record can outlive its directory only where a layout installs an active snapshot's
//! directory without a sync ([`Layout::install_active`]), and opening the backend rebuilds
//! those ([`Base::rebuild_lost`]). Cleanup takes the `gc` lock exclusively so it never races a
//! creation or removal in progress.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use rocksdb::DB;
use strata_core::labels::{Labels, validate};

use crate::backend::{Layout, NewSnapshot};
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
    /// ([`Layout::fill`] then [`Layout::install`]), then the record is written.
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
        let parent_ids = self.ms.check_create(view, kind, key, parent)?;
        let id = self.ms.reserve_id()?;
        if l.own_dir(kind, !parent.is_empty()) {
            let new = NewSnapshot {
                kind,
                key,
                parent,
                parent_ids: &parent_ids,
                labels: &labels,
            };
            let durable = kind == Kind::Committed;
            self.build_dir(l, id, &new, durable)
                .map_err(|e| self.lost_race(view, kind, key, parent, e.for_key(key)))?;
        }
        let res = self
            .ms
            .create_snapshot_with_id(view, id, kind, key, parent, labels);
        self.undo_dir_on_error(l, id, res)
    }

    /// Creates committed `name` directly: its directory is built and installed, its usage
    /// measured, then its record written; [`Layout::committed`] runs last.
    pub fn create_committed<L: Layout>(
        &self,
        l: &L,
        view: &str,
        name: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<()> {
        let _g = self.shared();
        validate(&labels).map_err(|e| Error::InvalidArgument(e.0))?;
        let parent_ids = self.ms.check_new(view, name, parent)?;
        let id = self.ms.reserve_id()?;
        let new = NewSnapshot {
            kind: Kind::Committed,
            key: name,
            parent,
            parent_ids: &parent_ids,
            labels: &labels,
        };
        let race = |e: Error| self.lost_race(view, Kind::Active, name, parent, e.for_key(name));
        self.build_dir(l, id, &new, true).map_err(race)?;
        let snap = Snapshot {
            id,
            kind: Kind::Committed,
            parent_ids,
        };
        let res = l.usage(&self.dirs, &snap).and_then(|usage| {
            self.ms
                .create_committed_with_id(view, id, name, parent, labels, usage)
        });
        self.undo_dir_on_error(l, id, res)?;
        if let Err(e) = l.committed(&self.dirs, id) {
            tracing::warn!(error = %e, id, "committed snapshot left writable");
        }
        Ok(())
    }

    /// `res`, having deleted directory `id` when it is an error (a record was not written).
    fn undo_dir_on_error<L: Layout, T>(&self, l: &L, id: u64, res: Result<T>) -> Result<T> {
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

    /// Builds a directory with [`Layout::fill`] and installs it as `<id>` ([`Layout::install`]
    /// when `durable`, else [`Layout::install_active`]); on failure it is deleted (a failure to
    /// delete it is logged, and left to Cleanup).
    fn build_dir<L: Layout>(
        &self,
        l: &L,
        id: u64,
        new: &NewSnapshot<'_>,
        durable: bool,
    ) -> Result<()> {
        let tmp = l.create_temp(&self.dirs)?;
        let res = l.fill(&self.dirs, &tmp, new).and_then(|()| match durable {
            true => l.install(&self.dirs, &tmp, id),
            false => l.install_active(&self.dirs, &tmp, id),
        });
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
        let usage = l.usage(&self.dirs, &snap).map_err(|e| e.for_key(key))?;
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

    /// Rebuilds, durably, the directory of every active or view snapshot whose record
    /// outlived it (a crash after a Prepare whose directory was installed without a sync, see
    /// [`Layout::install_active`]): the state that Prepare answered. A committed snapshot
    /// without its directory cannot be rebuilt; it is logged.
    pub fn rebuild_lost<L: Layout>(&self, l: &L) -> Result<()> {
        let _g = self.exclusive();
        for s in self.ms.stored()? {
            let has_parent = !s.parent.is_empty();
            if !l.own_dir(s.kind, has_parent) || self.dirs.path(s.id).exists() {
                continue;
            }
            if s.kind == Kind::Committed {
                tracing::error!(
                    key = s.key,
                    id = s.id,
                    "committed snapshot has no directory"
                );
                continue;
            }
            let snap = self.ms.get_snapshot(&s.view, &s.key)?;
            let new = NewSnapshot {
                kind: s.kind,
                key: &s.key,
                parent: &s.parent,
                parent_ids: &snap.parent_ids,
                labels: &s.labels,
            };
            self.build_dir(l, s.id, &new, true)?;
            tracing::warn!(key = s.key, id = s.id, "rebuilt a lost snapshot directory");
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
        fn fill(&self, dirs: &Dirs, tmp: &Path, new: &NewSnapshot<'_>) -> Result<()> {
            (self.hook)();
            self.inner.fill(dirs, tmp, new)
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

    /// Overlay installs an active snapshot's directory without a directory fsync; a crash
    /// that loses it (simulated: deleted) leaves a record without a directory, and opening the
    /// backend rebuilds it as Prepare made it (empty `fs` owned like the parent's, `work`).
    #[test]
    fn lost_active_directories_are_rebuilt_at_open() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let (db, base) = open(d.path());
        let l = OverlayLayout::default();
        let p = base
            .create(&l, "v", Kind::Active, "p-a", "", Labels::new())
            .unwrap();
        let pfs = base.dirs.path(p.id).join("fs");
        std::fs::write(pfs.join("f"), b"layer").unwrap();
        std::os::unix::fs::lchown(&pfs, Some(4242), Some(4343)).unwrap();
        base.commit(&l, "v", "p", "p-a", Labels::new()).unwrap();
        let a = base
            .create(&l, "v", Kind::Active, "a", "p", Labels::new())
            .unwrap();
        let w = base
            .create(&l, "other", Kind::View, "w", "", Labels::new())
            .unwrap();
        for id in [a.id, w.id] {
            std::fs::remove_dir_all(base.dirs.path(id)).unwrap();
        }
        drop(base);
        let base = Base::new(db.clone(), "t", &d.path().join("dir")).unwrap();
        base.rebuild_lost(&l).unwrap();
        let afs = base.dirs.path(a.id).join("fs");
        let md = std::fs::symlink_metadata(&afs).unwrap();
        assert_eq!((md.uid(), md.gid()), (4242, 4343));
        assert_eq!(std::fs::read_dir(&afs).unwrap().count(), 0);
        assert!(base.dirs.path(a.id).join("work").is_dir());
        assert!(base.dirs.path(w.id).join("fs").is_dir());
        assert_eq!(std::fs::read(pfs.join("f")).unwrap(), b"layer");
        let m = l.mounts(&base.dirs, &base.ms.get_snapshot("v", "a").unwrap());
        assert!(m.is_ok(), "{m:?}");
        // A committed snapshot without its directory cannot be rebuilt: logged, open goes on.
        std::fs::remove_dir_all(base.dirs.path(p.id)).unwrap();
        let base = Base::new(db, "t", &d.path().join("dir")).unwrap();
        base.rebuild_lost(&l).unwrap();
        assert!(!base.dirs.path(p.id).exists());
    }

    /// Native installs an empty active directory without a sync too; a lost one comes back.
    #[test]
    fn lost_empty_native_directory_is_rebuilt_at_open() {
        let d = tempfile::tempdir().unwrap();
        let (db, base) = open(d.path());
        let l = NativeLayout::default();
        let a = base
            .create(&l, "v", Kind::Active, "a", "", Labels::new())
            .unwrap();
        std::fs::remove_dir_all(base.dirs.path(a.id)).unwrap();
        let base = Base::new(db, "t", &d.path().join("dir")).unwrap();
        base.rebuild_lost(&l).unwrap();
        assert!(base.dirs.path(a.id).is_dir());
        assert_eq!(std::fs::read_dir(base.dirs.path(a.id)).unwrap().count(), 0);
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

    /// Fault injection: every step of Prepare, Commit and Remove failed once.
    mod faults {
        use std::collections::BTreeSet;

        use super::*;
        use crate::faults::{Point, inject};

        const V: &str = "v";

        /// A store with committed `base` (holding `f` = "kept") and returns its directory.
        fn store() -> (tempfile::TempDir, Base, NativeLayout) {
            let d = tempfile::tempdir().unwrap();
            let (_db, base) = open(d.path());
            let l = NativeLayout::default();
            let s = base
                .create(&l, V, Kind::Active, "base-a", "", Labels::new())
                .unwrap();
            std::fs::write(base.dirs.path(s.id).join("f"), b"kept").unwrap();
            base.commit(&l, V, "base", "base-a", Labels::new()).unwrap();
            (d, base, l)
        }

        /// Names in `snapshots/`.
        fn entries(base: &Base) -> BTreeSet<String> {
            let root = base.dirs.path(0).parent().unwrap().to_path_buf();
            std::fs::read_dir(root)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        }

        /// The ids of the live records, as directory names.
        fn live(base: &Base) -> BTreeSet<String> {
            base.ms.ids().unwrap().iter().map(u64::to_string).collect()
        }

        /// An Io error with `errno` naming `key`.
        fn assert_io<T: std::fmt::Debug>(res: Result<T>, errno: i32, key: &str) {
            let err = res.unwrap_err();
            let msg = err.to_string();
            match err {
                Error::Io { source, .. } => {
                    assert_eq!(source.raw_os_error(), Some(errno), "{msg}")
                }
                other => panic!("expected an io error, got {other:?}"),
            }
            assert!(
                msg.contains(&format!("{key:?}")),
                "{msg:?} does not name {key}"
            );
        }

        /// `base` still reads back, `key` has no record, and every directory is a live one.
        fn assert_consistent(base: &Base, key: &str) {
            let (id, info, _) = base.ms.get_info(V, "base").unwrap();
            assert_eq!(info.kind, Kind::Committed);
            assert_eq!(
                std::fs::read(base.dirs.path(id).join("f")).unwrap(),
                b"kept"
            );
            assert!(matches!(base.ms.get_info(V, key), Err(Error::NotFound(_))));
            assert_eq!(entries(base), live(base), "directories without a record");
        }

        /// The failed `key` can be prepared now, on `base`, and sees its file.
        fn assert_serving(base: &Base, l: &NativeLayout, key: &str) {
            let s = base
                .create(l, V, Kind::Active, key, "base", Labels::new())
                .unwrap();
            assert_eq!(
                std::fs::read(base.dirs.path(s.id).join("f")).unwrap(),
                b"kept"
            );
            assert_eq!(entries(base), live(base));
        }

        #[test]
        fn prepare_mkdir_enospc() {
            let (_d, base, l) = store();
            let _armed = inject(Point::Mkdir, libc::ENOSPC);
            let res = base.create(&l, V, Kind::Active, "a", "base", Labels::new());
            assert_io(res, libc::ENOSPC, "a");
            assert_consistent(&base, "a");
            assert_serving(&base, &l, "a");
        }

        #[test]
        fn prepare_rename_eio() {
            let (_d, base, l) = store();
            let _armed = inject(Point::InstallRename, libc::EIO);
            let res = base.create(&l, V, Kind::Active, "a", "base", Labels::new());
            assert_io(res, libc::EIO, "a");
            assert_consistent(&base, "a");
            assert_serving(&base, &l, "a");
        }

        /// Regression: when the fsync after `new-*` was renamed to `<id>` failed, `<id>` stayed
        /// behind without a record (the cleanup only deleted `new-*`, gone by then).
        #[test]
        fn prepare_fsync_eio_after_rename() {
            let (_d, base, l) = store();
            let _armed = inject(Point::InstallSync, libc::EIO);
            let res = base.create(&l, V, Kind::Active, "a", "base", Labels::new());
            assert_io(res, libc::EIO, "a");
            assert_consistent(&base, "a");
            assert_serving(&base, &l, "a");
        }

        #[test]
        fn prepare_record_write_fails() {
            let (_d, base, l) = store();
            let _armed = inject(Point::CreateRecord, libc::EIO);
            let res = base.create(&l, V, Kind::Active, "a", "base", Labels::new());
            assert_io(res, libc::EIO, "a");
            assert_consistent(&base, "a");
            assert_serving(&base, &l, "a");
        }

        #[test]
        fn commit_record_write_fails() {
            let (_d, base, l) = store();
            let s = base
                .create(&l, V, Kind::Active, "a", "base", Labels::new())
                .unwrap();
            std::fs::write(base.dirs.path(s.id).join("g"), b"new").unwrap();
            let _armed = inject(Point::CommitRecord, libc::ENOSPC);
            let res = base.commit(&l, V, "c", "a", Labels::new());
            assert_io(res, libc::ENOSPC, "a");
            assert_consistent(&base, "c");
            let (id, info, _) = base.ms.get_info(V, "a").unwrap();
            assert_eq!((id, info.kind), (s.id, Kind::Active), "still active");
            assert_eq!(std::fs::read(base.dirs.path(id).join("g")).unwrap(), b"new");

            base.commit(&l, V, "c", "a", Labels::new()).unwrap();
            let (_, info, _) = base.ms.get_info(V, "c").unwrap();
            assert_eq!((info.kind, info.parent.as_str()), (Kind::Committed, "base"));
            let child = base
                .create(&l, V, Kind::Active, "d", "c", Labels::new())
                .unwrap();
            assert_eq!(
                std::fs::read(base.dirs.path(child.id).join("g")).unwrap(),
                b"new"
            );
        }

        #[test]
        fn remove_record_write_fails() {
            let (_d, base, l) = store();
            let s = base
                .create(&l, V, Kind::Active, "a", "base", Labels::new())
                .unwrap();
            let _armed = inject(Point::RemoveRecord, libc::EIO);
            assert_io(base.remove(&l, V, "a"), libc::EIO, "a");
            let (id, info, _) = base.ms.get_info(V, "a").unwrap();
            assert_eq!((id, info.kind), (s.id, Kind::Active), "still there");
            assert_eq!(
                std::fs::read(base.dirs.path(id).join("f")).unwrap(),
                b"kept"
            );
            assert_eq!(entries(&base), live(&base));
            base.remove(&l, V, "a").unwrap();
            assert_consistent(&base, "a");
        }

        /// The record goes first: a failed rename or delete of the directory still removes the
        /// snapshot (Ok), leaves only an orphan Cleanup deletes, and never reuses its id.
        fn remove_dir_fails(point: Point, orphan: impl Fn(u64) -> String) {
            let (_d, base, l) = store();
            let s = base
                .create(&l, V, Kind::Active, "a", "base", Labels::new())
                .unwrap();
            let _armed = inject(point, libc::EIO);
            base.remove(&l, V, "a").unwrap();
            assert!(matches!(base.ms.get_info(V, "a"), Err(Error::NotFound(_))));
            let mut expected = live(&base);
            expected.insert(orphan(s.id));
            assert_eq!(entries(&base), expected, "the orphan is all that is left");

            let again = base
                .create(&l, V, Kind::Active, "a", "base", Labels::new())
                .unwrap();
            assert!(again.id > s.id, "id {} reused", s.id);
            base.cleanup(&l).unwrap();
            assert_consistent(&base, "none");
            assert_eq!(
                std::fs::read(base.dirs.path(again.id).join("f")).unwrap(),
                b"kept"
            );
        }

        #[test]
        fn remove_rename_fails() {
            remove_dir_fails(Point::RemoveRename, |id| id.to_string());
        }

        #[test]
        fn remove_delete_fails() {
            remove_dir_fails(Point::RemoveDelete, |id| format!("rm-{id}"));
        }
    }
}
