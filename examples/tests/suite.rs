//! Strata's snapshotter conformance suite (containerd's cases and more) against `strata-tmpfs`.

strata_snapshot_testsuite::testsuite!(
    tmpfs,
    setup = |b| b.with_data_dir(|root| root.join("tmpfs/snapshots")),
    |root: &std::path::Path| strata_example_tmpfs::open(&root.join("tmpfs"))
);
