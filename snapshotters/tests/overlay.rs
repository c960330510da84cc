//! containerd's snapshotter conformance suite (plus ours) against the overlay backend.

use strata_snapshotters::overlay::Overlay;

strata_snapshotters::testsuite!(overlay, |root| Overlay::open(root));
