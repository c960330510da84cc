//! zstd:chunked: the footer (40 bytes in a zstd skippable frame at the end of the blob) and the
//! TOC it points to (the TOC JSON, zstd-compressed, in a skippable frame of its own).

use std::io::Read;

use super::read_exact_at;
use super::toc::{MAX_TOC_JSON, Toc};
use crate::{Error, RangeSource, Result};

/// The footer's last 8 bytes.
const MAGIC: &[u8; 8] = b"GnUlInUx";
/// The footer: TOC offset, compressed size, raw size, manifest type, magic; 8 bytes each.
const FOOTER: usize = 40;
/// A skippable frame's header (magic + size) before the footer and the TOC.
const FRAME_HEADER: u64 = 8;
/// The manifest type stargz-snapshotter writes (its own TOC format).
const MANIFEST_TYPE_CRFS: u64 = 1;

/// Where the TOC is, from a zstd:chunked footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    pub toc_offset: u64,
    pub compressed: u64,
    pub raw: u64,
}

/// The footer ending `tail`, when it is a zstd:chunked one.
pub fn parse_footer(tail: &[u8]) -> Option<Footer> {
    let f = tail.get(tail.len().checked_sub(FOOTER)?..)?;
    let word = |i: usize| u64::from_le_bytes(f[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    (&f[32..] == MAGIC && word(3) == MANIFEST_TYPE_CRFS).then(|| Footer {
        toc_offset: word(0),
        compressed: word(1),
        raw: word(2),
    })
}

/// Reads and decompresses the TOC `f` names in a blob of `size` bytes, and checks it.
pub fn read_toc<S: RangeSource>(src: &S, size: u64, f: Footer) -> Result<Toc> {
    let footer_start = size.saturating_sub(FOOTER as u64 + FRAME_HEADER);
    let end = f.toc_offset.checked_add(f.compressed);
    if f.toc_offset < FRAME_HEADER || end.is_none_or(|e| e > footer_start) {
        return Err(Error::Malformed(format!(
            "zstd:chunked toc at {} (+{}) is not before the footer",
            f.toc_offset, f.compressed
        )));
    }
    if f.raw > MAX_TOC_JSON || f.compressed > MAX_TOC_JSON {
        return Err(Error::TooLarge {
            what: format!("a toc of {} bytes ({} compressed)", f.raw, f.compressed),
            limit: MAX_TOC_JSON,
        });
    }
    let compressed = read_exact_at(src, f.toc_offset, f.compressed, "the toc")?;
    let mut json = Vec::with_capacity(f.raw as usize);
    strata_archive::compression::ZstdDecoder::new(&compressed[..])
        .and_then(|d| d.take(f.raw + 1).read_to_end(&mut json))
        .map_err(|e| Error::Malformed(format!("zstd:chunked toc: {e}")))?;
    if json.len() as u64 != f.raw {
        return Err(Error::Malformed(format!(
            "zstd:chunked toc is {} bytes, the footer says {}",
            json.len(),
            f.raw
        )));
    }
    // Data ends where the TOC's skippable frame begins.
    Toc::from_json(&json, f.toc_offset - FRAME_HEADER)
}
