//! The `native` snapshotter: every active snapshot is a full copy of its parent
//! (containerd's `snapshots/native`). Works on any filesystem; reflinks when it can.
//!
//! Layout: `<dir>/snapshots/<id>`. A view with a parent has no directory of its own: it
//! mounts the parent read-only. Mounts are `bind` with `["rbind", "rw"|"ro"]`.
//!
//! Prepare on a parent copies the parent's directory without ever following a symlink in it
//! ([`copy_dir`]), renames the copy to `<id>` and syncs the filesystem (one `syncfs`, which
//! makes the copy and its name durable together) before the record is written, so an active
//! snapshot never comes back truncated after a power loss. A crash before that sync leaves at
//! most an `<id>` without a record, which Cleanup deletes. An empty active directory is
//! installed without a sync; a crash that loses it is repaired at open (see
//! [`Layout::install_active`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::DB;

use crate::backend::{Backend, Layout, NewSnapshot};
use crate::fsutil::{Dirs, copy_dir};
use crate::metastore::Snapshot;
use crate::{Error, Kind, Metadata, Mount, Result};

#[cfg(test)]
mod tests;

/// The backend name (metastore key prefix).
pub const NAME: &str = "native";

/// The native snapshotter; cheap to clone.
pub type Native = Backend<NativeLayout>;

/// Full-copy directories, bind-mounted.
#[derive(Debug, Clone, Copy)]
pub struct NativeLayout {
    /// Makes a finished copy durable ([`crate::fsutil::syncfs`]; a seam for tests).
    syncfs: fn(&Path) -> std::io::Result<()>,
}

impl Default for NativeLayout {
    fn default() -> Self {
        NativeLayout {
            syncfs: crate::fsutil::syncfs,
        }
    }
}

impl Backend<NativeLayout> {
    /// A native snapshotter keeping directories under `dir` and records in the shared `db`
    /// (opened with [`crate::COLUMN_FAMILIES`]).
    pub fn new(db: Arc<DB>, dir: PathBuf) -> Result<Self> {
        Self::with_layout(&Metadata::shared(db), NAME, &dir, NativeLayout::default())
    }

    /// A standalone snapshotter with its own database at `root/db` and directories under
    /// `root/snapshots/native` (for tests and tools).
    pub fn open(root: &Path) -> Result<Self> {
        let db = strata_core::db::open(&root.join("db"), crate::COLUMN_FAMILIES)?;
        Self::new(db, root.join("snapshots").join(NAME))
    }
}

impl Layout for NativeLayout {
    fn own_dir(&self, kind: Kind, has_parent: bool) -> bool {
        kind == Kind::Active || !has_parent
    }

    fn fill(&self, dirs: &Dirs, tmp: &Path, new: &NewSnapshot<'_>) -> Result<()> {
        match new.parent_ids.first() {
            // Made durable by install, after the rename.
            Some(p) => copy_dir(&dirs.path(*p), tmp),
            None => Ok(()),
        }
    }

    /// A copy (not empty) is renamed in, then synced with its name by one `syncfs`: the
    /// directory fsync of the plain install would be a second sync. An empty directory gets
    /// the plain install.
    fn install(&self, dirs: &Dirs, tmp: &Path, id: u64) -> Result<()> {
        let copied = std::fs::read_dir(tmp)
            .map(|mut d| d.next().is_some())
            .map_err(|e| Error::io(format!("read {}", tmp.display()), e))?;
        if !copied {
            return dirs.install(tmp, id).map(drop);
        }
        dirs.install_with(tmp, id, |dst| {
            (self.syncfs)(dst).map_err(|e| Error::io(format!("syncfs {}", dst.display()), e))
        })
        .map(drop)
    }

    /// An empty active directory (no parent, or an empty one) is renamed in without a
    /// directory fsync: the record's WAL sync is the Prepare's one sync, and a directory a
    /// crash lost is rebuilt at open ([`Layout::install_active`]). A copy is synced as by
    /// [`Layout::install`]: its contents could not be rebuilt from a lost directory entry alone.
    fn install_active(&self, dirs: &Dirs, tmp: &Path, id: u64) -> Result<()> {
        let empty = std::fs::read_dir(tmp)
            .map(|mut d| d.next().is_none())
            .map_err(|e| Error::io(format!("read {}", tmp.display()), e))?;
        match empty {
            true => dirs.install_with(tmp, id, |_| Ok(())).map(drop),
            false => self.install(dirs, tmp, id),
        }
    }

    /// `bind` of the snapshot's own directory, or of its parent's for a view with a parent.
    fn mounts(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Vec<Mount>> {
        let (source, ro) = match (snap.kind, snap.parent_ids.first()) {
            (Kind::View, Some(p)) => (dirs.path(*p), true),
            (kind, _) => (dirs.path(snap.id), kind != Kind::Active),
        };
        Ok(vec![Mount {
            kind: "bind".into(),
            source: source.display().to_string(),
            target: String::new(),
            options: vec!["rbind".into(), if ro { "ro" } else { "rw" }.into()],
        }])
    }

    fn data_dir(&self, dirs: &Dirs, id: u64) -> PathBuf {
        dirs.path(id)
    }
}
