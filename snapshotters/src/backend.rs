//! [`Backend`]: the [`Snapshotter`] implementation shared by the directory-based backends,
//! which differ only in their [`Layout`] (what a snapshot directory holds and how it mounts).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::DB;
use strata_core::labels::Labels;

use crate::base::Base;
use crate::fsutil::{Dirs, blocking, disk_usage, remove_all};
use crate::metastore::Snapshot;
use crate::{Info, Kind, Mount, Result, Snapshotter, Usage};

/// What distinguishes one directory-based backend from another.
///
/// The provided methods are the plain-directory behaviour; a backend whose snapshot
/// directories are something else (btrfs subvolumes) overrides them.
pub trait Layout: std::fmt::Debug + Send + Sync + 'static {
    /// Whether a new snapshot of `kind` gets a directory of its own.
    fn own_dir(&self, kind: Kind, has_parent: bool) -> bool;
    /// Fills the fresh directory `tmp` of a new snapshot (`parents`: immediate first).
    fn fill(&self, dirs: &Dirs, tmp: &Path, kind: Kind, parents: &[u64]) -> Result<()>;
    /// The mounts of an active or view snapshot.
    fn mounts(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Vec<Mount>>;
    /// The directory whose disk usage is the snapshot's own.
    fn data_dir(&self, dirs: &Dirs, id: u64) -> PathBuf;

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
    /// Deletes every entry of the snapshots directory that is not one of `live`.
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
    pub(crate) fn with_layout(db: Arc<DB>, name: &str, dir: &Path, layout: L) -> Result<Self> {
        Ok(Backend {
            inner: Arc::new((Base::new(db, name, dir)?, layout)),
        })
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
