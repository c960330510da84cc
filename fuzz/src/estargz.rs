//! eStargz and zstd:chunked layers: the footer, TOC and chunk readers of `strata-lazy` on any bytes, as a whole
//! blob (opened with its own TOC's digest, then every file read) and as TOC JSON alone. Whatever
//! they accept keeps its promises: clean names, chunks that tile each file, data before the TOC.

use strata_lazy::estargz::{Kind, Layer, Toc, footer, zstd};

/// Where the TOC JSON alone is said to start.
const TOC_AT: u64 = 1 << 20;

pub fn check(data: &[u8]) {
    if let Ok(toc) = Toc::from_json(data, TOC_AT) {
        invariants(&toc, TOC_AT);
    }
    let tail = &data[data.len().saturating_sub(footer::SIZE)..];
    let toc = match zstd::parse_footer(tail) {
        Some(f) => zstd::read_toc(&data.to_vec(), data.len() as u64, f)
            .ok()
            .map(|t| (t, f.toc_offset.saturating_sub(8))),
        None => gzip_toc(data, tail),
    };
    let Some((toc, toc_offset)) = toc else {
        return;
    };
    invariants(&toc, toc_offset);
    let layer = Layer::open(data.to_vec(), &toc.digest).expect("the same toc opens");
    let mut buf = vec![0u8; 1 << 16];
    for e in &toc.entries {
        // Errors (corrupt data, digests) are fine; a panic or an overlong read is not.
        if let Ok(n) = layer.read(&e.name, 0, &mut buf) {
            assert!(n <= buf.len());
            assert!(e.kind != Kind::Reg || n as u64 == e.size.min(buf.len() as u64));
        }
    }
}

/// The TOC of an eStargz blob, and where its data ends.
fn gzip_toc(data: &[u8], tail: &[u8]) -> Option<(Toc, u64)> {
    let (toc_offset, len) = footer::parse(tail).ok()?;
    let member = data.get(toc_offset as usize..data.len() - len)?;
    Some((Toc::parse(member, toc_offset).ok()?, toc_offset))
}

fn invariants(toc: &Toc, toc_offset: u64) {
    for e in &toc.entries {
        assert!(!e.name.is_empty() && !e.name.starts_with('/'));
        assert!(
            e.name
                .split('/')
                .all(|c| !c.is_empty() && c != "." && c != "..")
        );
        let mut at = 0;
        for c in &e.chunks {
            assert_eq!(c.offset, at);
            assert!(c.blob_offset < c.blob_end && c.blob_end <= toc_offset);
            at += c.size;
        }
        assert_eq!(at, if e.kind == Kind::Reg { e.size } else { 0 });
    }
}
