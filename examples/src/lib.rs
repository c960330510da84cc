//! `strata-tmpfs`: a snapshot backend written outside Strata's crates, as a storage vendor
//! would write one, with only the public API ([`Layout`], [`Backend`], [`Metadata`]).
//!
//! Every snapshot lives in memory: the backend's directory is a tmpfs it mounts itself (the
//! [`Layout::open`] hook), holding both the snapshots and their records, so the two always
//! vanish together (at a reboot) and never disagree. A daemon restart finds the tmpfs still
//! mounted and everything in it. Snapshots are overlayfs layers, as containerd's `overlayfs`
//! snapshotter lays them out: `<id>/fs` (the layer) and `<id>/work` (an active one's workdir).
//! For CI runners and throw-away nodes, where a disk's durability buys nothing.
//!
//! Its tests run Strata's whole conformance suite with one macro line (`tests/suite.rs`);
//! `strata-tmpfs-proxy` serves it beside the built-in backends (`src/main.rs`).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{MsFlags, mount};
use strata_snapshotters::fsutil::Dirs;
use strata_snapshotters::metastore::Snapshot;
use strata_snapshotters::{Backend, Error, Kind, Layout, Metadata, Mount, NewSnapshot, Result};

/// The name containerd uses for it (`proxy_plugins."strata-tmpfs"`, `ctr --snapshotter`).
pub const NAME: &str = "strata-tmpfs";

/// The tmpfs snapshotter; cheap to clone.
pub type Tmpfs = Backend<TmpfsLayout>;

/// Overlay layers on a tmpfs the backend mounts itself.
#[derive(Debug, Clone)]
pub struct TmpfsLayout {
    /// The tmpfs `size=` option (`50%` of RAM by default).
    pub size: String,
}

impl Default for TmpfsLayout {
    fn default() -> Self {
        TmpfsLayout { size: "50%".into() }
    }
}

/// Opens the backend in `dir`: mounts the tmpfs there (unless a previous run did), then opens
/// the records on it.
pub fn open(dir: &Path) -> Result<Tmpfs> {
    let layout = TmpfsLayout::default();
    layout.open(dir)?;
    let meta = Metadata::open(&dir.join("db"))?;
    Backend::with_layout(&meta, NAME, dir, layout)
}

fn io(what: &str, path: &Path, e: impl Into<std::io::Error>) -> Error {
    Error::io(format!("{what} {}", path.display()), e.into())
}

fn mkdir(path: &Path, mode: u32) -> Result<()> {
    std::fs::create_dir(path).map_err(|e| io("mkdir", path, e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| io("chmod", path, e))
}

impl Layout for TmpfsLayout {
    /// Mounts a private (0700) tmpfs on `dir`; a tmpfs already there is kept (a restart).
    fn open(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| io("mkdir", dir, e))?;
        let fs = nix::sys::statfs::statfs(dir).map_err(|e| io("statfs", dir, e))?;
        if fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC {
            return Ok(());
        }
        let options = format!("mode=0700,size={}", self.size);
        let flags = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            flags,
            Some(options.as_str()),
        )
        .map_err(|e| io("mount tmpfs on", dir, e))
    }

    fn own_dir(&self, _kind: Kind, _has_parent: bool) -> bool {
        true
    }

    /// `fs` (owned like the parent's, as containerd's overlayfs does), and `work` when active.
    fn fill(&self, dirs: &Dirs, tmp: &Path, new: &NewSnapshot<'_>) -> Result<()> {
        let fs = tmp.join("fs");
        mkdir(&fs, 0o755)?;
        if new.kind == Kind::Active {
            mkdir(&tmp.join("work"), 0o711)?;
        }
        if let Some(parent) = new.parent_ids.first() {
            let pfs = dirs.path(*parent).join("fs");
            let md = std::fs::symlink_metadata(&pfs).map_err(|e| io("stat", &pfs, e))?;
            std::os::unix::fs::lchown(&fs, Some(md.uid()), Some(md.gid()))
                .map_err(|e| io("chown", &fs, e))?;
        }
        Ok(())
    }

    /// A bind mount without parents (or for a view of one parent), else an overlay.
    fn mounts(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Vec<Mount>> {
        let fs = |id: u64| dirs.path(id).join("fs").display().to_string();
        let ro = snap.kind != Kind::Active;
        let single = match snap.parent_ids.as_slice() {
            [] => Some(snap.id),
            [p] if ro => Some(*p),
            _ => None,
        };
        if let Some(id) = single {
            return Ok(vec![Mount {
                kind: "bind".into(),
                source: fs(id),
                target: String::new(),
                options: vec!["rbind".into(), if ro { "ro" } else { "rw" }.into()],
            }]);
        }
        let mut options = Vec::new();
        if !ro {
            let work = dirs.path(snap.id).join("work");
            options.push(format!("workdir={}", work.display()));
            options.push(format!("upperdir={}", fs(snap.id)));
        }
        let lower: Vec<String> = snap.parent_ids.iter().map(|id| fs(*id)).collect();
        options.push(format!("lowerdir={}", lower.join(":")));
        Ok(vec![Mount {
            kind: "overlay".into(),
            source: "overlay".into(),
            target: String::new(),
            options,
        }])
    }

    fn data_dir(&self, dirs: &Dirs, id: u64) -> PathBuf {
        dirs.path(id).join("fs")
    }
}
