//! containerd's snapshotter conformance suite (plus ours) against the native backend.

use strata_snapshotters::native::Native;

strata_snapshotters::testsuite!(native, |root| Native::open(root));
