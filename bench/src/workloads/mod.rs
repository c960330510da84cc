//! The workloads (one round of each, timed) and the suites that run them on every target.

pub mod content;
pub mod imagegen;
pub mod mixed;
pub mod mount;
pub mod parent;
pub mod runtime;
pub mod snapshots;
pub mod suites;
pub mod tasks;
pub mod unpack;
