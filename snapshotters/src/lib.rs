//! Immutable snapshots for container images, behind one trait with containerd's semantics.
//!
//! * [`Snapshotter`] — the trait every backend implements (lifecycle story on the trait).
//! * [`metastore`] — the one RocksDB metastore every backend shares: ids, kinds, parents,
//!   labels, timestamps and usage, per view.
//! * Backends: [`native`] (full copies), [`overlay`] (overlayfs layers), [`btrfs`] (subvolumes).
//! * [`Backend`] + [`Layout`] — how a backend is written, in this crate or outside it (see
//!   `README.md`, "Writing a backend"); the conformance suite every backend's tests call with
//!   one line is the `strata-snapshot-testsuite` crate.

mod backend;
mod base;
pub mod btrfs;
pub mod error;
mod faults;
pub mod fsutil;
mod metadata;
pub mod metastore;
pub mod mount;
pub mod native;
pub mod overlay;
pub mod snapshotter;

pub use backend::{Backend, Layout, NewSnapshot};
pub use btrfs::Btrfs;
pub use error::{DbError, Error, Result};
pub use metadata::Metadata;
pub use native::Native;
pub use overlay::Overlay;
pub use snapshotter::{Info, Kind, Mount, Snapshotter, Usage};
pub use strata_core::labels::Labels;

/// Column families the metastore keeps in the shared RocksDB.
pub const COLUMN_FAMILIES: &[&str] = metastore::COLUMN_FAMILIES;
