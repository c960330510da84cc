//! strata-archive: container image layers applied to and generated from directory trees.
//!
//! * [`apply()`] — a layer stream (tar, gzip or zstd, detected) into a snapshot directory, with
//!   containerd's rules (`archive/tar.go`): whiteouts and opaque directories converted per
//!   backend ([`Whiteouts`]), hard links (also to lower layers, copied up), symlinks, devices,
//!   fifos, sparse files (GNU and PAX), extended attributes (`SCHILY.xattr.*`), numeric owners,
//!   set-id and sticky modes, times (directories after their children), long names.
//! * Safety: every name is checked ([`name::clean`]: no absolute names, `..` or NUL) and every
//!   path resolved by the kernel with `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)` from the
//!   tree's root ([`tree`]): a layer cannot write, link or read outside its tree, and a path
//!   through a symlink is an error (no layer writer emits one). Limits bound decompression
//!   bombs ([`Options::max_bytes`]).
//!
//! Independent of RocksDB and gRPC: the runtime's Diff service, the snapshotters' unpack
//! offload and the fuzz targets all call it.
//!
//! ```no_run
//! use strata_archive::{apply, Options, Whiteouts};
//! let layer = std::fs::File::open("layer.tar.gz")?;
//! let opts = Options { whiteouts: Whiteouts::Delete, ..Options::default() };
//! let applied = apply(layer, std::path::Path::new("/var/lib/x/snapshot/fs"), &opts)?;
//! println!("diff id {}", applied.uncompressed.digest);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod apply;
pub mod compression;
mod diff;
mod entries;
mod error;
mod hash;
mod meta;
pub mod name;
mod pipeline;
mod sys;
pub mod tree;
mod whiteout;

pub use apply::{Applied, Options, Whiteouts, apply};
pub use compression::{Compression, Encoder};
pub use diff::{DiffStats, write_diff};
pub use error::{Error, Result};
pub use hash::{Hashing, Stream};
