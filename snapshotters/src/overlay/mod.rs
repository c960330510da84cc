//! The `overlay` snapshotter: each snapshot is one overlayfs layer (containerd's
//! `snapshots/overlay`, 1.6 behaviour). Commit is metadata only: the directory stays.
//!
//! Layout: `<dir>/snapshots/<id>/fs` (the layer, 0755, owned like the parent's `fs`) and
//! `<dir>/snapshots/<id>/work` (0711, active snapshots only). Mounts: see [`mounts`].

pub mod mounts;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rocksdb::DB;

use crate::backend::{Backend, Layout, NewSnapshot};
use crate::fsutil::{Dirs, chmod};
use crate::metastore::Snapshot;
use crate::{Error, Kind, Metadata, Mount, Result};

#[cfg(test)]
mod tests;

/// The backend name (metastore key prefix).
pub const NAME: &str = "overlay";

/// The overlay snapshotter; cheap to clone.
pub type Overlay = Backend<OverlayLayout>;

/// `fs` + `work` directories, mounted as overlayfs.
#[derive(Debug, Clone, Copy, Default)]
pub struct OverlayLayout {
    /// Whether mounts carry `index=off` (the kernel module has the `index` parameter).
    pub index_off: bool,
}

impl Backend<OverlayLayout> {
    /// An overlay snapshotter keeping layers under `dir` and records in the shared `db`
    /// (opened with [`crate::COLUMN_FAMILIES`]).
    pub fn new(db: Arc<DB>, dir: PathBuf) -> Result<Self> {
        let index_off = Path::new("/sys/module/overlay/parameters/index").exists();
        Self::with_layout(
            &Metadata::shared(db),
            NAME,
            &dir,
            OverlayLayout { index_off },
        )
    }

    /// A standalone snapshotter with its own database at `root/db` and layers under
    /// `root/snapshots/overlay` (for tests and tools).
    pub fn open(root: &Path) -> Result<Self> {
        let db = strata_core::db::open(&root.join("db"), crate::COLUMN_FAMILIES)?;
        Self::new(db, root.join("snapshots").join(NAME))
    }
}

impl Layout for OverlayLayout {
    fn own_dir(&self, _kind: Kind, _has_parent: bool) -> bool {
        true
    }

    fn fill(&self, dirs: &Dirs, tmp: &Path, new: &NewSnapshot<'_>) -> Result<()> {
        let fs = tmp.join("fs");
        mkdir(&fs, 0o755)?;
        if new.kind == Kind::Active {
            mkdir(&tmp.join("work"), 0o711)?;
        }
        if let Some(p) = new.parent_ids.first() {
            let pfs = dirs.path(*p).join("fs");
            let md = std::fs::symlink_metadata(&pfs)
                .map_err(|e| Error::io(format!("stat {}", pfs.display()), e))?;
            std::os::unix::fs::lchown(&fs, Some(md.uid()), Some(md.gid()))
                .map_err(|e| Error::io(format!("chown {}", fs.display()), e))?;
        }
        Ok(())
    }

    /// An active or view snapshot's directory is two empty directories: renamed into place
    /// without a directory fsync (the record's WAL sync that follows is the Prepare's one sync;
    /// see [`Layout::install_active`] for why that is crash-safe).
    fn install_active(&self, dirs: &Dirs, tmp: &Path, id: u64) -> Result<()> {
        dirs.install_with(tmp, id, |_| Ok(())).map(drop)
    }

    fn mounts(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Vec<Mount>> {
        Ok(mounts::mounts(dirs, snap, self.index_off))
    }

    fn data_dir(&self, dirs: &Dirs, id: u64) -> PathBuf {
        dirs.path(id).join("fs")
    }
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    std::fs::create_dir(path).map_err(|e| Error::io(format!("mkdir {}", path.display()), e))?;
    chmod(path, mode)
}
