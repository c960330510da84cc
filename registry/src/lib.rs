//! A client of the OCI distribution API (issue 12): blobs from the registry an image came
//! from, whole (the unpack offload) or by byte range (the lazy reader).
//!
//! HTTPS for every host, verified against the system's roots plus a per-host CA file; plain
//! HTTP only for the hosts the configuration lists. Basic auth and bearer tokens (the
//! distribution token protocol; tokens cached per host and repository until they expire);
//! redirects followed with the `Range` header kept; every wait (connect and headers, each
//! read of a body) bounded by the configured timeout. Errors are `io::Error`s naming the URL
//! and the digest.

mod auth;
mod blob;
mod body;
mod client;
mod config;
mod http;
mod reference;
mod tls;

pub use blob::BlobStream;
pub use body::{BlobBody, RemoteBlob};
pub use client::Registry;
pub use config::{HostConfig, RegistryConfig};
pub use reference::ImageRef;
