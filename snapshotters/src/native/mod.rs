//! The `native` snapshotter: every active snapshot is a full copy of its parent
//! (containerd's `snapshots/native`). Works on any filesystem; reflinks when it can.
//!
//! Layout: `<dir>/snapshots/<id>`. A view with a parent has no directory of its own: it
//! mounts the parent read-only. Mounts are `bind` with `["rbind", "rw"|"ro"]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::DB;

use crate::backend::{Backend, Layout};
use crate::fsutil::{Dirs, copy_dir};
use crate::metastore::Snapshot;
use crate::{Kind, Mount, Result};

#[cfg(test)]
mod tests;

/// The backend name (metastore key prefix).
pub const NAME: &str = "native";

/// The native snapshotter; cheap to clone.
pub type Native = Backend<NativeLayout>;

/// Full-copy directories, bind-mounted.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeLayout;

impl Backend<NativeLayout> {
    /// A native snapshotter keeping directories under `dir` and records in the shared `db`
    /// (opened with [`crate::COLUMN_FAMILIES`]).
    pub fn new(db: Arc<DB>, dir: PathBuf) -> Result<Self> {
        Self::with_layout(db, NAME, &dir, NativeLayout)
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

    fn fill(&self, dirs: &Dirs, tmp: &Path, _kind: Kind, parents: &[u64]) -> Result<()> {
        match parents.first() {
            Some(p) => copy_dir(&dirs.path(*p), tmp),
            None => Ok(()),
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
