//! The eStargz footer: the last gzip member of the blob, empty, whose header's Extra field says
//! where the TOC starts (`%016xSTARGZ`). 51 bytes (the `SG` subfield form eStargz writes), or 47
//! (the legacy stargz form, the string as the whole Extra field).

use crate::{Error, Result};

/// Size of the eStargz footer.
pub const SIZE: usize = 51;
/// Size of the legacy stargz footer.
pub const LEGACY_SIZE: usize = 47;

const MAGIC: &[u8] = b"STARGZ";

/// The TOC's offset from the footer that ends `tail` (the blob's last [`SIZE`] bytes, or all of
/// it when shorter), and the footer's size.
pub fn parse(tail: &[u8]) -> Result<(u64, usize)> {
    if let Some(f) = tail.len().checked_sub(SIZE).map(|i| &tail[i..])
        && let Ok(off) = parse_one(f, true)
    {
        return Ok((off, SIZE));
    }
    let f = tail
        .len()
        .checked_sub(LEGACY_SIZE)
        .map(|i| &tail[i..])
        .ok_or_else(|| Error::Malformed(format!("{} bytes cannot hold a footer", tail.len())))?;
    Ok((parse_one(f, false)?, LEGACY_SIZE))
}

/// One footer: a gzip header with FEXTRA, the offset string, an empty deflate body.
fn parse_one(f: &[u8], subfield: bool) -> Result<u64> {
    let bad = |why: &str| Error::Malformed(format!("footer: {why}"));
    if f[..3] != [0x1f, 0x8b, 8] || f[3] & 4 == 0 {
        return Err(bad("not a gzip header with an extra field"));
    }
    let xlen = u16::from_le_bytes([f[10], f[11]]) as usize;
    let extra = f
        .get(12..12 + xlen)
        .ok_or_else(|| bad("extra field past the end"))?;
    let payload = match subfield {
        true => {
            let ok = xlen == 26 && extra[..2] == *b"SG" && extra[2..4] == [22, 0];
            ok.then(|| &extra[4..])
                .ok_or_else(|| bad("no SG subfield"))?
        }
        false => extra,
    };
    if payload.len() != 16 + MAGIC.len() || &payload[16..] != MAGIC {
        return Err(bad("no STARGZ magic"));
    }
    let hex = std::str::from_utf8(&payload[..16]).map_err(|_| bad("offset is not hex"))?;
    let off = u64::from_str_radix(hex, 16).map_err(|_| bad("offset is not hex"))?;
    // The member must be a whole, empty gzip member.
    let mut out = Vec::new();
    let mut d = flate2::read::GzDecoder::new(f);
    std::io::Read::read_to_end(&mut d, &mut out).map_err(|e| bad(&e.to_string()))?;
    if !out.is_empty() {
        return Err(bad("footer member is not empty"));
    }
    Ok(off)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A footer as eStargz writes it (gzip header, `SG` subfield, empty deflate, trailer).
    fn footer(off: u64) -> Vec<u8> {
        let mut f = vec![
            0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 26, 0, b'S', b'G', 22, 0,
        ];
        f.extend(format!("{off:016x}STARGZ").bytes());
        f.extend([1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
        f
    }

    #[test]
    fn reads_the_toc_offset() {
        let mut blob = vec![7u8; 100];
        blob.extend(footer(0x1234));
        assert_eq!(blob.len() - 100, SIZE);
        assert_eq!(parse(&blob).unwrap(), (0x1234, SIZE));
    }

    #[test]
    fn rejects_damaged_footers() {
        let good = footer(5);
        for (i, why) in [
            (0, "magic"),
            (13, "subfield id"),
            (20, "hex"),
            (40, "magic str"),
        ] {
            let mut f = good.clone();
            f[i] ^= 0x40;
            assert!(parse(&f).is_err(), "{why}: {:?}", parse(&f));
        }
        assert!(parse(&good[1..]).is_err(), "truncated");
        assert!(parse(b"short").is_err());
    }
}
