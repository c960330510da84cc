//! containerd's snapshotter conformance suite (plus ours) against the native backend.

use std::path::{Path, PathBuf};

use strata_snapshotters::native::{NAME, Native};

/// Where `Native::open(root)` keeps one directory per snapshot.
fn data_dir(root: &Path) -> PathBuf {
    root.join("snapshots").join(NAME).join("snapshots")
}

strata_snapshot_testsuite::testsuite!(native, setup = |b| b.with_data_dir(data_dir), |root| {
    Native::open(root)
});
