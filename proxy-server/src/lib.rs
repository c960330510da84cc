//! strata-proxy: the daemon. On one socket, containerd's `Content` and `Snapshots` gRPC
//! services over Strata's stores, wire-compatible with containerd's `proxy_plugins`; on a
//! second, containerd's own runtime services over `strata-runtime` ([`runtime`]). Thin by
//! design: proto <-> library types only; semantics live in `strata-content`,
//! `strata-snapshotters` and `strata-runtime`. [`Server`] runs the daemon with backends of
//! other crates beside the built-in ones.

pub mod api;
pub mod backends;
pub mod builder;
pub mod config;
pub mod conn;
pub mod content_api;
pub mod content_service;
pub mod errors;
pub mod handover;
pub mod listen;
pub mod metrics;
pub mod offload;
pub mod rootlock;
pub mod runtime;
pub mod server;
pub mod snapshots_api;
pub mod snapshots_service;
pub mod stopping;
pub mod write_stream;

pub use builder::{Host, Server};
