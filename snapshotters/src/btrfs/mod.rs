//! The `btrfs` snapshotter: every snapshot is a btrfs subvolume (containerd's
//! `snapshots/btrfs`), so Prepare on a parent is a writable snapshot of the parent's subvolume
//! whose cost does not depend on the parent's size. See `README.md` for the choices made.
//!
//! Layout: `<dir>/snapshots/<id>`, one subvolume per snapshot (built as `new-*`, renamed).
//! * Prepare: new subvolume (0755), or writable snapshot of the parent's.
//! * View: read-only snapshot of the parent's (a new, read-only subvolume without parent).
//! * Commit: the usage is recorded, then the subvolume is flagged read-only in place; the id
//!   (directory and subvolume id) stays, as with the other backends.
//! * Remove: record first, then `<id>` is renamed `rm-<id>` and deleted; Cleanup deletes any
//!   `new-*`, `rm-*` or unrecorded subvolume left by a crash or a failed deletion.
//!
//! Mounts: `{type: "btrfs", source: <block device>, options: ["subvolid=<id>", "ro"?]}`, with
//! `ro` for everything but an active snapshot. Usage of an active snapshot with a parent is
//! what differs from the parent ([`usage`]). Enabled only when the directory is on btrfs.

mod device;
mod remove;
mod sys;
mod usage;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::DB;

use crate::backend::{Backend, Layout, NewSnapshot};
use crate::fsutil::{Dirs, chmod, disk_usage};
use crate::metastore::Snapshot;
use crate::{Error, Kind, Metadata, Mount, Result, Usage};

pub use usage::diff_usage;

/// The backend name (metastore key prefix).
pub const NAME: &str = "btrfs";

/// The btrfs snapshotter; cheap to clone.
pub type Btrfs = Backend<BtrfsLayout>;

/// One subvolume per snapshot, mounted by subvolume id from the filesystem's device.
#[derive(Debug, Clone)]
pub struct BtrfsLayout {
    /// The mount source of the btrfs filesystem (e.g. `/dev/loop0`).
    device: String,
}

impl Backend<BtrfsLayout> {
    /// A btrfs snapshotter keeping subvolumes under `dir` and records in the shared `db`
    /// (opened with [`crate::COLUMN_FAMILIES`]). FailedPrecondition when `dir` is not on btrfs.
    pub fn new(db: Arc<DB>, dir: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("mkdir {}", dir.display()), e))?;
        let on_btrfs =
            sys::is_btrfs(&dir).map_err(|e| Error::io(format!("statfs {}", dir.display()), e))?;
        if !on_btrfs {
            return Err(Error::FailedPrecondition(format!(
                "{} is not on a btrfs filesystem",
                dir.display()
            )));
        }
        let device = device::device_of(&dir)?;
        Self::with_layout(&Metadata::shared(db), NAME, &dir, BtrfsLayout { device })
    }

    /// A standalone snapshotter with its own database at `root/db` and subvolumes under
    /// `root/snapshots/btrfs` (for tests and tools).
    pub fn open(root: &Path) -> Result<Self> {
        let db = strata_core::db::open(&root.join("db"), crate::COLUMN_FAMILIES)?;
        Self::new(db, root.join("snapshots").join(NAME))
    }
}

/// The id of the subvolume rooted at `path` (what a `subvolid=` mount option names).
pub fn subvolume_id(path: &Path) -> std::io::Result<u64> {
    sys::subvolume_id(path)
}

/// Deletes `path`: a subvolume (nested subvolumes first, read-only ones too) or a plain tree.
/// A missing path is fine. Tests use it to clean roots the suite leaves behind.
pub fn delete_tree(path: &Path) -> Result<()> {
    remove::delete_tree(path)
}

impl Layout for BtrfsLayout {
    fn own_dir(&self, _kind: Kind, _has_parent: bool) -> bool {
        true
    }

    /// Replaces the empty `tmp` by a subvolume: new (0755) or a snapshot of the parent's.
    fn fill(&self, dirs: &Dirs, tmp: &Path, new: &NewSnapshot<'_>) -> Result<()> {
        let ctx = || format!("create subvolume {}", tmp.display());
        std::fs::remove_dir(tmp).map_err(|e| Error::io(ctx(), e))?;
        match new.parent_ids.first() {
            Some(p) => sys::snapshot(&dirs.path(*p), tmp, new.kind == Kind::View)
                .map_err(|e| Error::io(ctx(), e)),
            None => {
                sys::create_subvolume(tmp).map_err(|e| Error::io(ctx(), e))?;
                chmod(tmp, 0o755)?;
                if new.kind == Kind::View {
                    sys::set_readonly(tmp, true).map_err(|e| Error::io(ctx(), e))?;
                }
                Ok(())
            }
        }
    }

    fn mounts(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Vec<Mount>> {
        let path = dirs.path(snap.id);
        let id = sys::subvolume_id(&path)
            .map_err(|e| Error::io(format!("subvolume id of {}", path.display()), e))?;
        let mut options = vec![format!("subvolid={id}")];
        if snap.kind != Kind::Active {
            options.push("ro".into());
        }
        Ok(vec![Mount {
            kind: "btrfs".into(),
            source: self.device.clone(),
            target: String::new(),
            options,
        }])
    }

    fn data_dir(&self, dirs: &Dirs, id: u64) -> PathBuf {
        dirs.path(id)
    }

    /// What differs from the parent's subvolume, or the whole subvolume without a parent.
    fn usage(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Usage> {
        let dir = dirs.path(snap.id);
        match snap.parent_ids.first() {
            Some(p) => diff_usage(&dirs.path(*p), &dir),
            None => disk_usage(&dir),
        }
    }

    fn committed(&self, dirs: &Dirs, id: u64) -> Result<()> {
        let path = dirs.path(id);
        sys::set_readonly(&path, true)
            .map_err(|e| Error::io(format!("make {} read-only", path.display()), e))
    }

    fn remove_tree(&self, path: &Path) -> Result<()> {
        remove::delete_tree(path)
    }

    fn remove_dir(&self, dirs: &Dirs, id: u64) -> Result<()> {
        remove::remove_snapshot(dirs, id)
    }

    fn cleanup(&self, dirs: &Dirs, live: &HashSet<u64>) -> Result<()> {
        remove::cleanup(dirs, live)
    }
}
