//! containerd's snapshotter conformance suite (plus ours) against the overlay backend.

use std::path::{Path, PathBuf};

use strata_snapshotters::overlay::{NAME, Overlay};

/// Where `Overlay::open(root)` keeps one directory per snapshot.
fn data_dir(root: &Path) -> PathBuf {
    root.join("snapshots").join(NAME).join("snapshots")
}

strata_snapshot_testsuite::testsuite!(overlay, setup = |b| b.with_data_dir(data_dir), |root| {
    Overlay::open(root)
});
