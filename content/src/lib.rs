//! strata-content: a content-addressed blob store with containerd 1.6's Content semantics.
//!
//! Blob bytes are files beside RocksDB (`<dir>/blobs/<algo>/<hex>`, once per digest); every
//! other fact — per-view info and labels, who holds which bytes, ingests in progress with
//! their hash checkpoints — is in the shared RocksDB ([`COLUMN_FAMILIES`]). Records belong to a
//! *view* (`strata_core::PROXY_VIEW` for containerd); bytes go only when no view holds them.
//!
//! Lifecycle: [`ContentStore::writer`] opens (or resumes) the ingest of a ref and locks it;
//! [`Writer::write`] appends; [`Writer::commit`] verifies size and digest and makes the blob
//! durable (fsync data, rename, fsync directory, one synced RocksDB batch); dropping a writer
//! keeps its ingest for a later resume, which re-hashes only the bytes after the last
//! checkpoint.

mod blobs;
mod bulk;
mod commit;
mod error;
mod faults;
mod flights;
mod ingest;
mod records;
pub mod sha256;
mod shared;
mod store;
mod writer;

pub use blobs::{BlobReader, BlobStream};
pub use error::{Error, Result};
pub use flights::Flight;
pub use records::{Info, Status};
pub use store::{COLUMN_FAMILIES, ContentStore, DEFAULT_CHECKPOINT_INTERVAL};
pub use writer::Writer;
