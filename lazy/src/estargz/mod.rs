//! eStargz layers (stargz-snapshotter's format): a gzip blob readable as an ordinary tar.gz,
//! whose files start gzip members listed in a TOC, so any file (any chunk of one) can be
//! decompressed alone; and their zstd twin, zstd:chunked (zstd frames, the same TOC JSON
//! compressed in a skippable frame, a 40-byte footer in another). [`Layer`] reads either
//! through a [`RangeSource`], telling them apart by the footer, verifying everything.

pub mod cache;
pub mod footer;
pub mod toc;
pub mod zstd;

use std::io::Read;
use std::sync::Arc;

use sha2::{Digest as _, Sha256};

pub use cache::ChunkCache;
pub use toc::{Chunk, Entry, Kind, Toc};

use crate::{Error, RangeSource, Result};

/// The layer annotation holding the TOC JSON's digest.
pub const TOC_DIGEST_ANNOTATION: &str = "containerd.io/snapshot/stargz/toc.digest";

/// An eStargz layer whose TOC has been read and verified.
pub struct Layer<S> {
    src: S,
    toc: Toc,
    cache: ChunkCache,
}

impl<S> std::fmt::Debug for Layer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer")
            .field("toc", &self.toc.digest)
            .field("entries", &self.toc.entries.len())
            .finish()
    }
}

pub(crate) fn read_exact_at<S: RangeSource>(
    src: &S,
    offset: u64,
    len: u64,
    what: &str,
) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    let n = src
        .read_at(offset, &mut buf)
        .map_err(|e| Error::io(format!("reading {what}"), e))?;
    if n as u64 != len {
        return Err(Error::Malformed(format!("{what} is truncated")));
    }
    Ok(buf)
}

impl<S: RangeSource> Layer<S> {
    /// Reads the footer and the TOC of `src` and checks the TOC against `toc_digest` (the
    /// layer's [`TOC_DIGEST_ANNOTATION`], `sha256:<hex>`) before using any of it.
    pub fn open(src: S, toc_digest: &str) -> Result<Self> {
        let size = src.size().map_err(|e| Error::io("layer size", e))?;
        let tail_len = size.min(footer::SIZE as u64);
        let tail = read_exact_at(&src, size - tail_len, tail_len, "the footer")?;
        let toc = match zstd::parse_footer(&tail) {
            Some(f) => zstd::read_toc(&src, size, f)?,
            None => Self::gzip_toc(&src, size, &tail)?,
        };
        if toc.digest != toc_digest {
            return Err(Error::Digest(format!(
                "toc json is {}, the layer's annotation says {toc_digest}",
                toc.digest
            )));
        }
        Ok(Layer {
            src,
            toc,
            cache: ChunkCache::new(cache::DEFAULT_BUDGET),
        })
    }

    /// Keeps at most `bytes` of decompressed chunks in memory (default
    /// [`cache::DEFAULT_BUDGET`]; 0 turns caching off).
    pub fn with_cache_budget(mut self, bytes: usize) -> Self {
        self.cache = ChunkCache::new(bytes);
        self
    }

    /// Where the compressed bytes come from.
    pub fn source(&self) -> &S {
        &self.src
    }

    /// The TOC of an eStargz (gzip) layer of `size` bytes ending with `tail`.
    fn gzip_toc(src: &S, size: u64, tail: &[u8]) -> Result<Toc> {
        let (toc_offset, footer_len) = footer::parse(tail)?;
        let toc_end = size - footer_len as u64;
        if toc_offset >= toc_end {
            return Err(Error::Malformed(format!(
                "toc offset {toc_offset} is not before the footer at {toc_end}"
            )));
        }
        if toc_end - toc_offset > toc::MAX_TOC_JSON {
            return Err(Error::TooLarge {
                what: format!("a compressed toc of {} bytes", toc_end - toc_offset),
                limit: toc::MAX_TOC_JSON,
            });
        }
        let member = read_exact_at(src, toc_offset, toc_end - toc_offset, "the toc")?;
        Toc::parse(&member, toc_offset)
    }

    /// The verified TOC.
    pub fn toc(&self) -> &Toc {
        &self.toc
    }

    /// The bytes of `chunk` (verified), from the cache or [`Layer::chunk`].
    fn cached_chunk(&self, name: &str, chunk: &Chunk) -> Result<Arc<Vec<u8>>> {
        self.cache
            .get_or_load(chunk.blob_offset, || self.chunk(name, chunk).map(Arc::new))
    }

    /// The bytes of `chunk`, decompressed from its gzip member or zstd frame and checked against
    /// its digest.
    pub fn chunk(&self, name: &str, chunk: &Chunk) -> Result<Vec<u8>> {
        let what = format!("{name:?} at {}", chunk.offset);
        let span = read_exact_at(
            &self.src,
            chunk.blob_offset,
            chunk.blob_end - chunk.blob_offset,
            &what,
        )?;
        let mut out = Vec::with_capacity(chunk.size as usize);
        strata_archive::compression::decoder(&span[..])
            .and_then(|d| d.take(chunk.size).read_to_end(&mut out))
            .map_err(|e| Error::Malformed(format!("{what}: {e}")))?;
        if out.len() as u64 != chunk.size {
            return Err(Error::Malformed(format!(
                "{what}: {} of {} bytes",
                out.len(),
                chunk.size
            )));
        }
        if Sha256::digest(&out)[..] != chunk.digest {
            return Err(Error::Digest(format!(
                "{what}: chunk is {}, the toc says {}",
                hex::encode(Sha256::digest(&out)),
                hex::encode(chunk.digest)
            )));
        }
        Ok(out)
    }

    /// Reads regular file `name` (a hard link: its target) from `offset` into `buf`, decompressing
    /// and verifying only the chunks the range touches; the count read (0 at or past the end).
    pub fn read(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut e = self.toc.get(name);
        if let Some(link) = e.filter(|e| e.kind == Kind::Hardlink) {
            e = self.toc.get(&link.link);
        }
        let e = e
            .filter(|e| e.kind == Kind::Reg)
            .ok_or_else(|| Error::NotFound(name.to_string()))?;
        let end = e.size.min(offset.saturating_add(buf.len() as u64));
        let mut done = 0usize;
        for c in e
            .chunks
            .iter()
            .filter(|c| c.offset < end && c.offset + c.size > offset)
        {
            let data = self.cached_chunk(&e.name, c)?;
            let from = offset.max(c.offset);
            let to = end.min(c.offset + c.size);
            let src = &data[(from - c.offset) as usize..(to - c.offset) as usize];
            let at = (from - offset) as usize;
            buf[at..at + src.len()].copy_from_slice(src);
            done = done.max(at + src.len());
        }
        Ok(done)
    }
}
