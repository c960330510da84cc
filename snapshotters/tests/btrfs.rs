//! containerd's snapshotter conformance suite (plus ours) against the btrfs backend, with every
//! case root under `STRATA_BTRFS_ROOT` (a directory on btrfs, e.g. made by
//! `scripts/btrfs-loop.sh up /var/tmp/strata-btrfs`). The cases are `#[ignore]`d (shown as
//! ignored by a plain `cargo test`); run them with `-- --ignored btrfs::`. Run so without
//! `STRATA_BTRFS_ROOT`, each case fails saying so.

use std::path::{Path, PathBuf};

use strata_snapshotters::btrfs::{Btrfs, NAME, delete_tree};

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

/// Where `Btrfs::open(root)` keeps one subvolume per snapshot.
fn data_dir(root: &Path) -> PathBuf {
    root.join("snapshots").join(NAME).join("snapshots")
}

strata_snapshot_testsuite::testsuite!(
    #[ignore = "needs root and STRATA_BTRFS_ROOT naming a directory on btrfs; run with --ignored"]
    btrfs,
    setup = |b| b
        .with_data_dir(data_dir)
        .with_place(btrfs_root)
        .with_purge(purge),
    |root| Btrfs::open(root)
);
