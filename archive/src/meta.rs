//! What a tar header and its PAX records say about an entry: owner, mode, times, extended
//! attributes (`SCHILY.xattr.*`) and the PAX sparse formats (GNU 0.0, 0.1 and 1.0), which the
//! `tar` crate leaves to us.

use std::io::Read;

use crate::sys::Time;
use crate::{Error, Result};

/// The attributes of one entry.
#[derive(Debug, Clone)]
pub(crate) struct Meta {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
    pub mtime: Time,
    pub atime: Time,
    pub xattrs: Vec<(String, Vec<u8>)>,
    /// The real name of a PAX sparse file (`GNU.sparse.name`).
    pub sparse_name: Option<Vec<u8>>,
    pub sparse: Option<Sparse>,
}

/// How a PAX sparse file's data maps onto the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sparse {
    /// The map is in the PAX records (format 0.0 or 0.1).
    Map { size: u64, chunks: Vec<(u64, u64)> },
    /// The map leads the data (format 1.0).
    InData { size: u64 },
}

fn number(key: &str, v: &str) -> Result<u64> {
    v.trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("PAX record {key}={v:?} is not a number")))
}

/// `secs[.fraction]` (PAX times).
fn pax_time(v: &str) -> Result<Time> {
    let (s, f) = v.split_once('.').unwrap_or((v, ""));
    let secs = s
        .parse()
        .map_err(|_| Error::Invalid(format!("PAX time {v:?} is not a number")))?;
    let digits: String = f.chars().take(9).collect();
    let nanos = if digits.is_empty() {
        0
    } else {
        let n: u32 = digits
            .parse()
            .map_err(|_| Error::Invalid(format!("PAX time {v:?} is not a number")))?;
        n * 10u32.pow(9 - digits.len() as u32)
    };
    Ok(Time { secs, nanos })
}

/// A numeric header field as Go's `archive/tar` reads it: all NULs or spaces is 0, a leading
/// 0x80 byte marks base-256, anything else is octal.
pub(crate) fn numeric(what: &str, field: &[u8]) -> Result<u64> {
    if field.iter().all(|b| *b == 0 || *b == b' ') {
        return Ok(0);
    }
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for b in &field[1..] {
            v = v
                .checked_mul(256)
                .map(|x| x + u64::from(*b))
                .ok_or_else(|| Error::Invalid(format!("{what} overflows")))?;
        }
        return Ok(v);
    }
    let text: String = field
        .iter()
        .map(|b| *b as char)
        .filter(|c| *c != '\0' && *c != ' ')
        .collect();
    u64::from_str_radix(&text, 8)
        .map_err(|_| Error::Invalid(format!("{what} {text:?} is not octal")))
}

fn small(what: &str, field: &[u8]) -> Result<u32> {
    let v = numeric(what, field)?;
    u32::try_from(v).map_err(|_| Error::Invalid(format!("{what} {v} is too large")))
}

impl Meta {
    /// Reads the header and the PAX records of `e`.
    pub fn of<R: Read>(e: &mut tar::Entry<'_, R>) -> Result<Meta> {
        let h = e.header().as_old();
        let mtime = Time {
            secs: numeric("mtime", &h.mtime)? as i64,
            nanos: 0,
        };
        let mut m = Meta {
            uid: small("uid", &h.uid)?,
            gid: small("gid", &h.gid)?,
            mode: small("mode", &h.mode)? & 0o7777,
            mtime,
            atime: mtime,
            xattrs: Vec::new(),
            sparse_name: None,
            sparse: None,
        };
        let mut sparse = SparseRecords::default();
        if let Some(pax) = e
            .pax_extensions()
            .map_err(|err| Error::Invalid(format!("bad PAX records: {err}")))?
        {
            for ext in pax {
                let ext = ext.map_err(|err| Error::Invalid(format!("bad PAX record: {err}")))?;
                let key = ext
                    .key()
                    .map_err(|_| Error::Invalid("PAX key is not UTF-8".into()))?;
                m.record(key, ext.value_bytes(), &mut sparse)?;
            }
        }
        m.sparse = sparse.finish()?;
        Ok(m)
    }

    fn record(&mut self, key: &str, value: &[u8], sparse: &mut SparseRecords) -> Result<()> {
        let text = || String::from_utf8_lossy(value).into_owned();
        if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
            self.xattrs.push((name.to_string(), value.to_vec()));
            return Ok(());
        }
        match key {
            "uid" => {
                self.uid = u32::try_from(number(key, &text())?)
                    .map_err(|_| Error::Invalid("uid too large".into()))?
            }
            "gid" => {
                self.gid = u32::try_from(number(key, &text())?)
                    .map_err(|_| Error::Invalid("gid too large".into()))?
            }
            "mtime" => self.mtime = pax_time(&text())?,
            "atime" => self.atime = pax_time(&text())?,
            "GNU.sparse.name" => self.sparse_name = Some(value.to_vec()),
            k if k.starts_with("GNU.sparse.") => sparse.record(k, &text())?,
            _ => {}
        }
        Ok(())
    }
}

/// The `GNU.sparse.*` records seen so far.
#[derive(Default)]
struct SparseRecords {
    major: Option<u64>,
    size: Option<u64>,
    map: Vec<u64>,
    pending_offset: Option<u64>,
}

impl SparseRecords {
    fn record(&mut self, key: &str, v: &str) -> Result<()> {
        match key {
            "GNU.sparse.major" => self.major = Some(number(key, v)?),
            "GNU.sparse.size" | "GNU.sparse.realsize" => self.size = Some(number(key, v)?),
            "GNU.sparse.map" => {
                for n in v.split(',').filter(|s| !s.is_empty()) {
                    self.map.push(number(key, n)?);
                }
            }
            "GNU.sparse.offset" => self.pending_offset = Some(number(key, v)?),
            "GNU.sparse.numbytes" => {
                let off = self.pending_offset.take().ok_or_else(|| {
                    Error::Invalid("GNU.sparse.numbytes without an offset".into())
                })?;
                self.map.extend([off, number(key, v)?]);
            }
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<Option<Sparse>> {
        let Some(size) = self.size else {
            return Ok(None);
        };
        if self.major == Some(1) {
            return Ok(Some(Sparse::InData { size }));
        }
        if self.map.len() % 2 != 0 {
            return Err(Error::Invalid(
                "GNU.sparse.map has an odd number of values".into(),
            ));
        }
        let chunks = self.map.chunks(2).map(|c| (c[0], c[1])).collect();
        Ok(Some(Sparse::Map { size, chunks }))
    }
}

/// Reads the map that leads a format 1.0 sparse file's data: decimal lines (the count, then
/// offset and length pairs), padded to 512 bytes.
pub(crate) fn read_map_in_data<R: Read>(r: &mut R) -> Result<Vec<(u64, u64)>> {
    let mut consumed = 0usize;
    let mut line = || -> Result<u64> {
        let mut text = Vec::new();
        loop {
            let mut b = [0u8; 1];
            r.read_exact(&mut b)
                .map_err(|e| Error::Invalid(format!("sparse map: {e}")))?;
            consumed += 1;
            if b[0] == b'\n' {
                break;
            }
            if text.len() > 20 {
                return Err(Error::Invalid("sparse map line too long".into()));
            }
            text.push(b[0]);
        }
        number("sparse map", &String::from_utf8_lossy(&text))
    };
    let count = line()?;
    if count > 1 << 20 {
        return Err(Error::Invalid(format!("sparse map of {count} chunks")));
    }
    let mut chunks = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let off = line()?;
        chunks.push((off, line()?));
    }
    let pad = (512 - consumed % 512) % 512;
    std::io::copy(&mut r.take(pad as u64), &mut std::io::sink())
        .map_err(|e| Error::Invalid(format!("sparse map padding: {e}")))?;
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_read_like_go() {
        assert_eq!(numeric("x", b"\0\0\0").unwrap(), 0);
        assert_eq!(numeric("x", b"   \0").unwrap(), 0);
        assert_eq!(numeric("x", b"0000755\0").unwrap(), 0o755);
        assert_eq!(numeric("x", &[0x80, 0, 0, 1, 0]).unwrap(), 256);
        assert!(numeric("x", b"9z").is_err());
    }

    #[test]
    fn pax_times_keep_nanoseconds() {
        assert_eq!(
            pax_time("1700000000.5").unwrap(),
            Time {
                secs: 1_700_000_000,
                nanos: 500_000_000
            }
        );
        assert_eq!(pax_time("12").unwrap(), Time { secs: 12, nanos: 0 });
        assert!(pax_time("x").is_err());
    }

    #[test]
    fn sparse_formats() {
        let mut s = SparseRecords::default();
        s.record("GNU.sparse.size", "100").unwrap();
        s.record("GNU.sparse.map", "0,10,50,5").unwrap();
        assert_eq!(
            s.finish().unwrap(),
            Some(Sparse::Map {
                size: 100,
                chunks: vec![(0, 10), (50, 5)]
            })
        );
        let mut s = SparseRecords::default();
        s.record("GNU.sparse.major", "1").unwrap();
        s.record("GNU.sparse.realsize", "4096").unwrap();
        assert_eq!(s.finish().unwrap(), Some(Sparse::InData { size: 4096 }));
        let mut data = b"2\n0\n3\n100\n2\n".to_vec();
        data.resize(512, 0);
        data.extend_from_slice(b"abcde");
        let mut r = &data[..];
        assert_eq!(read_map_in_data(&mut r).unwrap(), vec![(0, 3), (100, 2)]);
        assert_eq!(r, b"abcde");
    }
}
