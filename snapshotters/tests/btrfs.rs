//! containerd's snapshotter conformance suite (plus ours) against the btrfs backend, with every
//! case root under `STRATA_BTRFS_ROOT` (a directory on btrfs, e.g. made by
//! `scripts/btrfs-loop.sh up /var/tmp/strata-btrfs`). Unset: each case prints why and passes.

use std::path::{Path, PathBuf};

use strata_snapshotters::btrfs::{Btrfs, delete_tree};

/// `STRATA_BTRFS_ROOT`, or why the cases cannot run.
fn btrfs_root() -> Result<PathBuf, String> {
    std::env::var_os("STRATA_BTRFS_ROOT")
        .map(PathBuf::from)
        .ok_or_else(|| "STRATA_BTRFS_ROOT (a directory on btrfs) is not set".to_string())
}

/// Deletes a case's temp dir, read-only subvolumes included.
fn purge(tmp: &Path) {
    if let Err(e) = delete_tree(tmp) {
        eprintln!("purge {}: {e}", tmp.display());
    }
}

strata_snapshotters::testsuite!(
    btrfs,
    setup = |b| b.with_place(btrfs_root).with_purge(purge),
    |root| Btrfs::open(root)
);
