//! Mounting for the cases: what a snapshotter returns is performed by the production mounter
//! ([`strata_snapshotters::mount`], containerd's `mount.All`), so the suite checks the mounts the daemon's
//! own users (runtime, Diff service) would perform.

use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, umount2};

use strata_snapshotters::fsutil::unescape_mountinfo;
use strata_snapshotters::mount::{mount_all, unmount_all};
use strata_snapshotters::{Mount, Result};

/// Mounted on a target until dropped (then lazily unmounted).
#[derive(Debug)]
pub struct TempMount {
    target: PathBuf,
}

impl TempMount {
    /// Mounts `mounts` in order onto `target` with [`strata_snapshotters::mount::mount_all`].
    pub fn new(mounts: &[Mount], target: &Path) -> Result<Self> {
        if let Err(e) = mount_all(mounts, target) {
            let _ = unmount_all(target);
            return Err(e);
        }
        Ok(TempMount {
            target: target.to_path_buf(),
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Err(e) = unmount_all(&self.target) {
            eprintln!("unmount {}: {e}", self.target.display());
        }
    }
}

/// Lazily unmounts every mount point at or below `dir` (deepest first); errors are ignored.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = umount2(&p, MntFlags::MNT_DETACH);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), "/tmp/a b");
    }
}
