//! strata-proxy: containerd's `Content` and `Snapshots` gRPC services over Strata's stores, on
//! one unix socket, wire-compatible with containerd's `proxy_plugins`. Thin by design: proto <->
//! library types only; semantics live in `strata-content` and `strata-snapshotters`.

pub mod api;
pub mod backends;
pub mod config;
pub mod content_service;
pub mod errors;
pub mod metrics;
pub mod rootlock;
pub mod server;
pub mod snapshots_service;
pub mod write_stream;
