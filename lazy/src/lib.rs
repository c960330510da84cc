//! Lazy layers: the `strata-lazy` backend (issue 12), which serves a container's files before
//! its layers are downloaded. Layers converted by stargz-snapshotter's `ctr-remote` (eStargz or
//! zstd:chunked) are read by HTTP range requests from the registry the image came from, every
//! byte verified before it is served:
//!
//! * [`estargz::Layer::open`] reads the footer, then the TOC, and checks the TOC against the
//!   digest the image's manifest names (`containerd.io/snapshot/stargz/toc.digest`), before
//!   trusting any of it; then it checks every entry (names that stay inside the layer, known
//!   types, chunks that tile each file, offsets that increase and stay before the TOC);
//! * [`estargz::Layer::read`] decompresses only the chunks a read touches and checks each
//!   against its `chunkDigest` first (a bounded cache keeps recent chunks);
//! * [`fs::mount`] shows a layer through FUSE as an overlayfs lower layer (whiteouts as 0/0
//!   character devices, opaque directories by xattr), read-only;
//! * [`backend::LazyLayout`] is the snapshot backend: overlay snapshots, except that a layer
//!   containerd's unpacker prepares with eStargz labels becomes a committed snapshot served from
//!   such a mount (containerd's remote-snapshotter protocol), then copied in the background
//!   and served from the local, verified copy.
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

#[cfg(feature = "serve")]
pub mod backend;
mod error;
pub mod estargz;
#[cfg(feature = "serve")]
pub mod fs;
mod source;

pub use error::{Error, Result};
pub use source::RangeSource;
