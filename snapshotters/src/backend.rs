//! [`Backend`]: the [`Snapshotter`] implementation shared by the directory-based backends,
//! which differ only in their [`Layout`] (what a snapshot directory holds and how it mounts).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_core::labels::Labels;

use crate::base::Base;
use crate::fsutil::{Dirs, blocking, disk_usage, remove_all};
use crate::metastore::Snapshot;
use crate::{Error, Info, Kind, Metadata, Mount, Result, Snapshotter, Usage};

/// What [`Layout::fill`] is told about the snapshot it fills.
#[derive(Debug, Clone, Copy)]
pub struct NewSnapshot<'a> {
    /// [`Kind::Committed`] only for [`Backend::create_committed`] and [`Layout::remote`].
    pub kind: Kind,
    /// The key (active, view) or name (committed) the snapshot is created under.
    pub key: &'a str,
    /// The parent's name, empty for none.
    pub parent: &'a str,
    /// Ids of the parent chain, immediate parent first (`dirs.path(id)` is a parent's directory).
    pub parent_ids: &'a [u64],
    /// The labels it is created with (already validated).
    pub labels: &'a Labels,
}

/// What distinguishes one directory-based backend from another: what a snapshot's directory
/// holds and how it mounts. [`Backend`] does the rest (records, keys, parents, labels, locking,
/// crash safety), so a layout is a few small functions; see `snapshotters/README.md`, "Writing
/// a backend".
///
/// # Lifecycle of a snapshot directory
///
/// ```text
/// open(dir)                         once, when the backend is constructed
/// create_temp -> fill -> install    a new snapshot: build `new-*`, then make it `<id>` (durably;
///                                   an active or view one with install_active, which may skip
///                                   the sync: a lost directory is rebuilt at open)
///   (then the record is written; a crash before it leaves an orphan for `cleanup`)
/// mounts / usage                    while it lives
/// committed(id)                     after its Commit is recorded
/// remove_dir(id)                    after its record is gone
/// cleanup(live)                     at daemon start (recovery) and on Cleanup: delete orphans
/// ```
///
/// The provided methods are the plain-directory behaviour; a backend whose snapshot
/// directories are something else (btrfs subvolumes, ZFS datasets) overrides them.
pub trait Layout: std::fmt::Debug + Send + Sync + 'static {
    /// Whether a new snapshot of `kind` gets a directory of its own (a committed one always does).
    fn own_dir(&self, kind: Kind, has_parent: bool) -> bool;
    /// Fills the fresh directory `tmp` (from [`Layout::create_temp`]) of a new snapshot.
    fn fill(&self, dirs: &Dirs, tmp: &Path, new: &NewSnapshot<'_>) -> Result<()>;
    /// The mounts of an active or view snapshot.
    fn mounts(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Vec<Mount>>;
    /// The directory whose disk usage is the snapshot's own.
    fn data_dir(&self, dirs: &Dirs, id: u64) -> PathBuf;

    /// Called once, before anything under `dir` (the backend's directory) is used: check or
    /// prepare the filesystem (its type, a mount). An error stops the backend from starting.
    fn open(&self, _dir: &Path) -> Result<()> {
        Ok(())
    }
    /// A fresh, empty directory for [`Layout::fill`] (plain: `snapshots/new-<random>`).
    fn create_temp(&self, dirs: &Dirs) -> Result<PathBuf> {
        dirs.create_temp()
    }
    /// Makes the filled `tmp` snapshot `id`'s directory, durably (plain: rename to `<id>` and
    /// fsync the parent directory). On error nothing named `<id>` may be left, and `tmp` is
    /// deleted with [`Layout::remove_tree`]. Override where rename(2) cannot install (a ZFS
    /// dataset is renamed with `zfs rename`).
    fn install(&self, dirs: &Dirs, tmp: &Path, id: u64) -> Result<()> {
        dirs.install(tmp, id).map(drop)
    }
    /// [`Layout::install`] for a new active or view snapshot (plain: the same). A layout whose
    /// [`Layout::fill`] of such a snapshot is cheap may skip the directory sync here: the
    /// record's sync after it makes the rename durable on a file system with one ordered
    /// journal (ext4, xfs), and elsewhere the backend rebuilds, at open, the directory of every
    /// active or view snapshot whose record outlived it (with `fill` and a durable `install`),
    /// which is the state the Prepare answered.
    fn install_active(&self, dirs: &Dirs, tmp: &Path, id: u64) -> Result<()> {
        self.install(dirs, tmp, id)
    }
    /// Prepare's remote-snapshot hook (containerd's remote snapshotter protocol): the name of a
    /// committed snapshot this layout can provide itself instead of letting the client unpack
    /// into `key` — typically the `containerd.io/snapshot.ref` label — or `None` (the default)
    /// to prepare as usual. For `Some(name)`, Prepare creates committed `name` on `parent` with
    /// `labels` (its [`Layout::fill`] sees [`Kind::Committed`]) and answers AlreadyExists, so
    /// the client skips the layer; when that creation fails other than with AlreadyExists, the
    /// Prepare goes ahead as usual.
    fn remote(&self, _key: &str, _parent: &str, _labels: &Labels) -> Option<String> {
        None
    }
    /// The resources of snapshot `snap` alone (live for an active one; recorded at Commit).
    fn usage(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Usage> {
        disk_usage(&self.data_dir(dirs, snap.id))
    }
    /// Called once the Commit of `id` is recorded (e.g. to make its directory read-only).
    fn committed(&self, _dirs: &Dirs, _id: u64) -> Result<()> {
        Ok(())
    }
    /// Deletes a half-built directory (a failed [`Layout::fill`] or install).
    fn remove_tree(&self, path: &Path) -> Result<()> {
        remove_all(path)
    }
    /// Deletes the directory of snapshot `id`; a missing one is fine.
    fn remove_dir(&self, dirs: &Dirs, id: u64) -> Result<()> {
        dirs.remove(id)
    }
    /// Deletes every entry of the snapshots directory that is not one of `live`: the recovery
    /// after a crash (the daemon calls it at start) and containerd's Cleanup.
    fn cleanup(&self, dirs: &Dirs, live: &HashSet<u64>) -> Result<()> {
        dirs.cleanup(live)
    }
}

/// A snapshotter made of the shared metastore, `snapshots/<id>` directories and a [`Layout`].
/// Cheap to clone.
#[derive(Debug)]
pub struct Backend<L: Layout> {
    inner: Arc<(Base, L)>,
}

impl<L: Layout> Clone for Backend<L> {
    fn clone(&self) -> Self {
        Backend {
            inner: self.inner.clone(),
        }
    }
}

impl<L: Layout> Backend<L> {
    /// A backend named `name` (the records' key prefix: unique per daemon, stable across
    /// restarts) keeping its directories under `dir` and its records in `meta`. Calls
    /// [`Layout::open`] first.
    ///
    /// ```no_run
    /// # use strata_snapshotters::{Backend, Metadata, native::NativeLayout};
    /// # fn main() -> strata_snapshotters::Result<()> {
    /// let root = std::path::Path::new("/var/lib/my-backend");
    /// let meta = Metadata::open(&root.join("db"))?;
    /// let b = Backend::with_layout(&meta, "mine", &root.join("snapshots"), NativeLayout::default())?;
    /// # Ok(()) }
    /// ```
    pub fn with_layout(meta: &Metadata, name: &str, dir: &Path, layout: L) -> Result<Self> {
        layout.open(dir)?;
        let base = Base::new(meta.db(), name, dir)?;
        base.rebuild_lost(&layout)?;
        Ok(Backend {
            inner: Arc::new((base, layout)),
        })
    }

    /// The layout this backend was built with.
    pub fn layout(&self) -> &L {
        &self.inner.1
    }

    /// Creates committed snapshot `name` on the committed `parent` (`""` = none) directly,
    /// filled by [`Layout::fill`] with [`Kind::Committed`]: what a remote snapshotter does when
    /// it can serve a layer without an unpack. AlreadyExists when `name` is taken.
    pub async fn create_committed(
        &self,
        view: &str,
        name: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<()> {
        let (view, name, parent) = (view.to_string(), name.to_string(), parent.to_string());
        self.run(move |b, l| b.create_committed(l, &view, &name, &parent, labels))
            .await
    }

    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Base, &L) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        blocking(move || f(&inner.0, &inner.1)).await
    }

    async fn create(
        &self,
        view: &str,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>> {
        let (view, key, parent) = (view.to_string(), key.to_string(), parent.to_string());
        self.run(move |b, l| {
            let snap = b.create(l, &view, kind, &key, &parent, labels)?;
            l.mounts(&b.dirs, &snap)
        })
        .await
    }
}

#[async_trait::async_trait]
impl<L: Layout> Snapshotter for Backend<L> {
    fn serves_remotely(&self, key: &str, parent: &str, labels: &Labels) -> bool {
        self.inner.1.remote(key, parent, labels).is_some()
    }

    async fn stat(&self, view: &str, key: &str) -> Result<Info> {
        let (view, key) = (view.to_string(), key.to_string());
        self.run(move |b, _| Ok(b.ms.get_info(&view, &key)?.1))
            .await
    }

    async fn update(&self, view: &str, info: Info, paths: &[String]) -> Result<Info> {
        let (view, paths) = (view.to_string(), paths.to_vec());
        self.run(move |b, _| b.ms.update_info(&view, &info, &paths))
            .await
    }

    async fn usage(&self, view: &str, key: &str) -> Result<Usage> {
        let (view, key) = (view.to_string(), key.to_string());
        self.run(move |b, l| b.usage(l, &view, &key)).await
    }

    async fn mounts(&self, view: &str, key: &str) -> Result<Vec<Mount>> {
        let (view, key) = (view.to_string(), key.to_string());
        self.run(move |b, l| l.mounts(&b.dirs, &b.ms.get_snapshot(&view, &key)?))
            .await
    }

    async fn prepare(
        &self,
        view: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>> {
        if let Some(name) = self.inner.1.remote(key, parent, &labels) {
            match self
                .create_committed(view, &name, parent, labels.clone())
                .await
            {
                Ok(()) => {
                    return Err(Error::AlreadyExists(format!(
                        "target snapshot {name:?}: already exists"
                    )));
                }
                Err(e @ Error::AlreadyExists(_)) => return Err(e),
                Err(e) => {
                    tracing::info!(key, target = %name, error = %e, "remote snapshot unavailable; preparing");
                }
            }
        }
        self.create(view, Kind::Active, key, parent, labels).await
    }

    async fn view(
        &self,
        view: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>> {
        self.create(view, Kind::View, key, parent, labels).await
    }

    async fn commit(&self, view: &str, name: &str, key: &str, labels: Labels) -> Result<()> {
        let (view, name, key) = (view.to_string(), name.to_string(), key.to_string());
        self.run(move |b, l| b.commit(l, &view, &name, &key, labels))
            .await
    }

    async fn remove(&self, view: &str, key: &str) -> Result<()> {
        let (view, key) = (view.to_string(), key.to_string());
        self.run(move |b, l| b.remove(l, &view, &key)).await
    }

    async fn list(&self, view: &str, filters: &[String]) -> Result<Vec<Info>> {
        let (view, filters) = (view.to_string(), filters.to_vec());
        self.run(move |b, _| b.ms.walk_info(&view, &filters)).await
    }

    async fn remove_many(&self, view: &str, keys: &[String]) -> Result<Vec<Result<()>>> {
        let (view, keys) = (view.to_string(), keys.to_vec());
        self.run(move |b, _| b.remove_many(&view, &keys)).await
    }

    async fn reclaim(&self) -> Result<()> {
        self.run(|b, l| b.reclaim(l)).await
    }

    async fn cleanup(&self) -> Result<()> {
        self.run(|b, l| b.cleanup(l)).await
    }

    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
