//! Lazy layers: what the `strata-lazy` backend (issue 12) will serve a container's files from
//! before its layers are downloaded. This crate holds the part that takes outside input: the
//! format reader. It reads an **eStargz** layer through any [`RangeSource`] (a local file now;
//! HTTP range requests to a registry later) and never returns a byte it has not verified:
//!
//! * [`estargz::Layer::open`] reads the footer, then the TOC, and checks the TOC against the
//!   digest the image's manifest names (`containerd.io/snapshot/stargz/toc.digest`), before
//!   trusting any of it; then it checks every entry (names that stay inside the layer, known
//!   types, chunks that tile each file, offsets that increase and stay before the TOC);
//! * [`estargz::Layer::read`] decompresses only the chunks a read touches and checks each
//!   against its `chunkDigest` first.
//!
//! Not here yet: zstd:chunked, the FUSE file system, the registry fetcher and the background
//! fill; see issue 12.
//!
//! ```no_run
//! use strata_lazy::estargz::Layer;
//! # fn main() -> Result<(), strata_lazy::Error> {
//! let file = std::fs::File::open("layer.gz").map_err(|e| strata_lazy::Error::io("open", e))?;
//! let layer = Layer::open(file, "sha256:d09c...")?; // the toc.digest annotation
//! let mut buf = vec![0; 4096];
//! let n = layer.read("etc/hello.txt", 0, &mut buf)?;
//! # Ok(()) }
//! ```

mod error;
pub mod estargz;
mod source;

pub use error::{Error, Result};
pub use source::RangeSource;
