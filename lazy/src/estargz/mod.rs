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

    /// Regular file `name`'s entry (a hard link: its target's).
    fn regular(&self, name: &str) -> Result<&Entry> {
        let mut e = self.toc.get(name);
        if let Some(link) = e.filter(|e| e.kind == Kind::Hardlink) {
            e = self.toc.get(&link.link);
        }
        e.filter(|e| e.kind == Kind::Reg)
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// Reads regular file `name` (a hard link: its target) from `offset` into `buf`, decompressing
    /// and verifying only the chunks the range touches; the count read (0 at or past the end).
    pub fn read(&self, name: &str, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0usize;
        for p in self.read_pieces(name, offset, buf.len() as u64)? {
            buf[done..done + p.len()].copy_from_slice(p.bytes());
            done += p.len();
        }
        Ok(done)
    }

    /// The verified bytes of regular file `name` from `offset` on, at most `len` of them (none
    /// at or past the end), as pieces of the chunks holding them, in order, without copying:
    /// the chunks the range touches are decompressed and verified unless cached.
    pub fn read_pieces(&self, name: &str, offset: u64, len: u64) -> Result<Vec<Piece>> {
        let e = self.regular(name)?;
        let end = e.size.min(offset.saturating_add(len));
        e.chunks[touched(e, offset, end)]
            .iter()
            .map(|c| Ok(Piece::of(c, self.cached_chunk(&e.name, c)?, offset, end)))
            .collect()
    }

    /// What [`Layer::read_pieces`] gives when every chunk the range touches is cached (it then
    /// never blocks on the source), else `None`.
    pub fn read_cached(&self, name: &str, offset: u64, len: u64) -> Result<Option<Vec<Piece>>> {
        let e = self.regular(name)?;
        let end = e.size.min(offset.saturating_add(len));
        Ok(e.chunks[touched(e, offset, end)]
            .iter()
            .map(|c| Some(Piece::of(c, self.cache.get(c.blob_offset)?, offset, end)))
            .collect())
    }

    /// Read-ahead for a sequential reader of regular file `name` whose read of `len` bytes at
    /// `offset` reached the end of a chunk: the chunks after that one, up to `ahead` bytes of
    /// them (counting each chunk's compressed or decompressed size, the larger; and a quarter of
    /// the cache budget at most, so what is read ahead never pushes out what is being read),
    /// that are neither cached nor being loaded. None when the read ends
    /// no chunk (random reads rarely do), or when nothing is cached.
    pub fn chunks_ahead(&self, name: &str, offset: u64, len: u64, ahead: u64) -> Vec<Chunk> {
        let Ok(e) = self.regular(name) else {
            return Vec::new();
        };
        let end = e.size.min(offset.saturating_add(len));
        let Some(ended) = touched(e, offset, end)
            .rev()
            .find(|&i| e.chunks[i].offset + e.chunks[i].size <= end)
        else {
            return Vec::new();
        };
        let limit = ahead.min(self.cache.budget() as u64 / 4);
        let mut total = 0u64;
        e.chunks[ended + 1..]
            .iter()
            .take_while(|c| {
                total += c.size.max(c.blob_end - c.blob_offset);
                total <= limit
            })
            .filter(|c| !self.cache.has_or_loads(c.blob_offset))
            .cloned()
            .collect()
    }

    /// Loads `chunk` of regular file `name` into the cache, verified, unless it is cached or
    /// being loaded ([`ChunkCache::prefetch`]); whether it loaded it.
    pub fn prefetch(&self, name: &str, chunk: &Chunk) -> Result<bool> {
        self.cache
            .prefetch(chunk.blob_offset, || self.chunk(name, chunk).map(Arc::new))
    }
}

/// Where the chunks of `e` holding bytes of `[offset, end)` are in its list (they tile the file
/// in order).
fn touched(e: &Entry, offset: u64, end: u64) -> std::ops::Range<usize> {
    let first = e.chunks.partition_point(|c| c.offset + c.size <= offset);
    let stop = e.chunks.partition_point(|c| c.offset < end);
    first..stop.max(first)
}

/// Part of a verified chunk: the bytes of one read that it holds.
#[derive(Debug, Clone)]
pub struct Piece {
    data: Arc<Vec<u8>>,
    range: std::ops::Range<usize>,
}

impl Piece {
    /// The part of `chunk` (whose bytes are `data`) inside `[offset, end)` of the file.
    fn of(chunk: &Chunk, data: Arc<Vec<u8>>, offset: u64, end: u64) -> Piece {
        let from = offset.max(chunk.offset) - chunk.offset;
        let to = end.min(chunk.offset + chunk.size) - chunk.offset;
        Piece {
            data,
            range: from as usize..to as usize,
        }
    }

    /// The bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data[self.range.clone()]
    }

    /// How many bytes.
    pub fn len(&self) -> usize {
        self.range.len()
    }

    /// Whether it holds no byte.
    pub fn is_empty(&self) -> bool {
        self.range.is_empty()
    }

    /// The whole chunk the piece is part of, and where in it the piece lies.
    pub fn into_parts(self) -> (Arc<Vec<u8>>, std::ops::Range<usize>) {
        (self.data, self.range)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The converter's fixture (`etc/big.bin`: 50,000 bytes in 7 chunks of 8 KiB).
    fn fixture() -> Layer<Vec<u8>> {
        let dir = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
        let path = std::path::Path::new(&dir).join("tests/fixtures/estargz-chunked.gz");
        let toc = "sha256:d09cfbd18261a12a3f4502ae3bc68e3450bf6f55bb07e326da1ecf477e78db18";
        Layer::open(std::fs::read(path).unwrap(), toc).unwrap()
    }

    /// The file offsets of `chunks`.
    fn at(chunks: &[Chunk]) -> Vec<u64> {
        chunks.iter().map(|c| c.offset).collect()
    }

    const BIG: &str = "etc/big.bin";

    #[test]
    fn reads_that_end_a_chunk_read_ahead_the_next_ones_up_to_the_limit() {
        let layer = fixture();
        let all: Vec<u64> = (1..7).map(|i| i * 8192).collect();
        assert_eq!(at(&layer.chunks_ahead(BIG, 0, 8192, 1 << 20)), all);
        assert_eq!(at(&layer.chunks_ahead(BIG, 8000, 500, 1 << 20)), all);
        assert_eq!(
            at(&layer.chunks_ahead("./etc/big.bin", 0, 8192, 1 << 20)),
            all
        );
        assert!(
            layer.chunks_ahead(BIG, 0, 4096, 1 << 20).is_empty(),
            "ends no chunk"
        );
        assert!(
            layer.chunks_ahead(BIG, 49_990, 100, 1 << 20).is_empty(),
            "the last chunk"
        );
        assert!(layer.chunks_ahead(BIG, 0, 8192, 0).is_empty());
        assert!(layer.chunks_ahead("nope", 0, 8192, 1 << 20).is_empty());
        // The limit counts the larger of a chunk's sizes (the first of these is random bytes:
        // its gzip member is a little larger than the chunk).
        let c1 = &layer.toc().get(BIG).unwrap().chunks[1];
        let weight = c1.size.max(c1.blob_end - c1.blob_offset);
        assert!(weight > 8192);
        assert_eq!(at(&layer.chunks_ahead(BIG, 0, 8192, weight)), [8192]);
        assert!(layer.chunks_ahead(BIG, 0, 8192, weight - 1).is_empty());
        // A quarter of the cache budget at most; nothing without a cache.
        let small = fixture().with_cache_budget(4 * weight as usize - 4);
        assert!(small.chunks_ahead(BIG, 0, 8192, 1 << 20).is_empty());
        let none = fixture().with_cache_budget(0);
        assert!(none.chunks_ahead(BIG, 0, 8192, 1 << 20).is_empty());
    }

    #[test]
    fn read_ahead_chunks_are_verified_cached_and_not_read_ahead_again() {
        let layer = fixture();
        let mut want = vec![0u8; 50_000];
        assert_eq!(layer.read(BIG, 0, &mut want).unwrap(), 50_000);
        let fresh = fixture();
        assert!(fresh.read_cached(BIG, 8192, 100).unwrap().is_none());
        let ahead = fresh.chunks_ahead(BIG, 0, 8192, 1 << 20);
        assert!(fresh.prefetch(BIG, &ahead[0]).unwrap(), "loaded");
        assert!(!fresh.prefetch(BIG, &ahead[0]).unwrap(), "kept already");
        assert!(fresh.prefetch(BIG, &ahead[1]).unwrap());
        assert_eq!(
            at(&fresh.chunks_ahead(BIG, 0, 8192, 1 << 20)),
            [24_576, 32_768, 40_960, 49_152]
        );
        let pieces = fresh.read_cached(BIG, 8000, 16_000).unwrap();
        assert!(pieces.is_none(), "chunk 0 was never loaded");
        let pieces = fresh.read_cached(BIG, 9000, 12_000).unwrap().unwrap();
        assert_eq!(pieces.len(), 2);
        let got: Vec<u8> = pieces.iter().flat_map(|p| p.bytes().to_vec()).collect();
        assert_eq!(got, want[9000..21_000]);
        assert!(matches!(
            fresh.read_cached("etc", 0, 1),
            Err(Error::NotFound(_))
        ));
        assert!(
            fresh
                .read_cached(BIG, 50_000, 10)
                .unwrap()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_damaged_chunk_read_ahead_is_an_error_and_never_cached() {
        let clean = fixture();
        let c1 = clean.toc().get(BIG).unwrap().chunks[1].clone();
        let mut blob = clean.source().clone();
        blob[c1.blob_offset as usize + 40] ^= 0x55;
        let layer = Layer::open(blob, &clean.toc().digest).unwrap();
        assert!(layer.prefetch(BIG, &c1).is_err());
        assert!(layer.read_cached(BIG, 8192, 10).unwrap().is_none());
        assert_eq!(at(&layer.chunks_ahead(BIG, 0, 8192, 1 << 20))[0], 8192);
        let mut buf = vec![0u8; 100];
        assert!(layer.read(BIG, 8192, &mut buf).is_err(), "still refused");
    }
}
