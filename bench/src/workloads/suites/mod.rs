//! Suites: each runs a group of workloads interleaved on every target and appends one
//! [`crate::stats::Measurement`] per workload (and per latency percentile).

pub mod content;
pub mod deployed;
pub mod direct;
pub mod lazy;
pub mod mixed;
pub mod runtime;
pub mod snapshots;
pub mod tasks;
pub mod unpack;

/// What each side syncs before answering, printed with every report.
pub const DURABILITY: &[&str] = &[
    "Strata syncs at least as much as containerd 1.6 on every path measured here:",
    "content commit: both fsync the blob before Commit returns; Strata also fsyncs the blob \
     directory and syncs its RocksDB WAL (containerd: the file, then one bolt tx fsync)",
    "snapshot metadata: one RocksDB WAL sync per mutation (Strata) vs one bolt fsync per tx \
     (containerd), for Prepare, Commit and Remove alike",
];
