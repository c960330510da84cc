//! The eStargz TOC (`stargz.index.json`): decoded, checked entry by entry, and indexed. Nothing
//! in it is trusted until [`Toc::parse`] has checked it (the caller then checks its digest).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use base64::Engine as _;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// The name of the TOC's tar entry.
pub const TOC_NAME: &str = "stargz.index.json";
/// The largest TOC JSON accepted (a hostile TOC must not exhaust memory).
pub const MAX_TOC_JSON: u64 = 64 << 20;
/// The most entries a TOC may have.
pub const MAX_ENTRIES: usize = 2_000_000;
/// The largest chunk, uncompressed or compressed, accepted.
pub const MAX_CHUNK: u64 = 64 << 20;

/// What a TOC entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Dir,
    Reg,
    Symlink,
    Hardlink,
    Char,
    Block,
    Fifo,
}

/// One piece of a regular file: `size` bytes at `offset` in the file, compressed in the blob
/// from `blob_offset` (a gzip member's start) up to at most `blob_end`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub offset: u64,
    pub size: u64,
    pub blob_offset: u64,
    pub blob_end: u64,
    /// sha256 of the chunk's bytes.
    pub digest: [u8; 32],
}

/// A file of the layer, as the TOC describes it (checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative, clean (no `.`, `..` or empty components, no trailing `/`).
    pub name: String,
    pub kind: Kind,
    /// Regular files: the size; 0 otherwise.
    pub size: u64,
    /// Permission bits with setuid, setgid and sticky (`0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// RFC 3339, as written (empty when absent).
    pub modtime: String,
    /// Symlink target, or the hard link's target entry (a clean name).
    pub link: String,
    pub dev_major: u32,
    pub dev_minor: u32,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Regular files: the chunks tiling `[0, size)`, in order.
    pub chunks: Vec<Chunk>,
}

/// A checked TOC: its entries in layer order and the digest of its JSON.
#[derive(Debug, Clone)]
pub struct Toc {
    pub entries: Vec<Entry>,
    /// `sha256:<hex>` of the TOC JSON (what the `toc.digest` annotation must name).
    pub digest: String,
    by_name: HashMap<String, usize>,
}

#[derive(Deserialize)]
struct RawToc {
    #[allow(dead_code)]
    version: i64,
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawEntry {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    size: i64,
    #[serde(default)]
    modtime: String,
    #[serde(default)]
    link_name: String,
    #[serde(default)]
    mode: i64,
    #[serde(default)]
    uid: i64,
    #[serde(default)]
    gid: i64,
    #[serde(default)]
    offset: i64,
    #[serde(default)]
    dev_major: i64,
    #[serde(default)]
    dev_minor: i64,
    #[serde(default)]
    xattrs: BTreeMap<String, String>,
    #[serde(default)]
    digest: String,
    #[serde(default)]
    chunk_offset: i64,
    #[serde(default)]
    chunk_size: i64,
    #[serde(default)]
    chunk_digest: String,
}

impl Toc {
    /// Decodes the TOC's gzip member (`member`: the blob from the TOC offset to the footer) and
    /// checks it; `toc_offset` bounds every data offset.
    pub fn parse(member: &[u8], toc_offset: u64) -> Result<Toc> {
        let json = toc_json(member)?;
        Toc::from_json(&json, toc_offset)
    }

    /// Checks a TOC's JSON (what [`Toc::parse`] does after decompressing).
    pub fn from_json(json: &[u8], toc_offset: u64) -> Result<Toc> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(json)));
        let raw: RawToc =
            serde_json::from_slice(json).map_err(|e| Error::Malformed(format!("toc json: {e}")))?;
        if raw.entries.len() > MAX_ENTRIES {
            return Err(Error::TooLarge {
                what: format!("a toc of {} entries", raw.entries.len()),
                limit: MAX_ENTRIES as u64,
            });
        }
        let mut b = Builder::default();
        for e in raw.entries {
            b.add(e)?;
        }
        b.finish(toc_offset, digest)
    }

    /// The entry named `name` (cleaned first); the last one when the layer has several.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        let name = clean(name).ok()?;
        self.by_name.get(&name).map(|i| &self.entries[*i])
    }
}

/// The TOC JSON inside its gzip member: a tar whose first entry is [`TOC_NAME`].
fn toc_json(member: &[u8]) -> Result<Vec<u8>> {
    let bad = |e: std::io::Error| Error::Malformed(format!("toc member: {e}"));
    let gz = flate2::read::GzDecoder::new(member);
    let mut tar = tar::Archive::new(gz.take(MAX_TOC_JSON + 4096));
    let mut entries = tar.entries().map_err(bad)?;
    let mut first = entries
        .next()
        .ok_or_else(|| Error::Malformed("toc member holds no tar entry".into()))?
        .map_err(bad)?;
    let path = first.path_bytes().into_owned();
    if path != TOC_NAME.as_bytes() {
        let name = String::from_utf8_lossy(&path).into_owned();
        return Err(Error::Malformed(format!(
            "toc tar entry is {name:?}, not {TOC_NAME}"
        )));
    }
    let size = first.header().size().map_err(bad)?;
    if size > MAX_TOC_JSON {
        return Err(Error::TooLarge {
            what: format!("a toc json of {size} bytes"),
            limit: MAX_TOC_JSON,
        });
    }
    let mut json = Vec::with_capacity(size as usize);
    first.read_to_end(&mut json).map_err(bad)?;
    if json.len() as u64 != size {
        return Err(Error::Malformed("toc json is truncated".into()));
    }
    Ok(json)
}

/// A layer-relative name: leading `./` and `/`, and a trailing `/`, dropped; `.`, `..`, empty
/// components and NUL refused.
pub fn clean(name: &str) -> std::result::Result<String, String> {
    let trimmed = name.trim_start_matches("./").trim_matches('/');
    if name.contains('\0') {
        return Err("name holds NUL".into());
    }
    if trimmed
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("name is empty or has a '.', '..' or empty component".into());
    }
    Ok(trimmed.to_string())
}

/// Builds the entries in TOC order, checking each.
#[derive(Default)]
struct Builder {
    entries: Vec<Entry>,
    /// The regular file the next `chunk` entries continue.
    open_reg: Option<usize>,
    /// Every chunk's place, in TOC order, to give each its `blob_end`.
    chunks: Vec<(usize, usize)>,
}

fn entry_err(name: &str, reason: impl Into<String>) -> Error {
    Error::Entry {
        name: name.to_string(),
        reason: reason.into(),
    }
}

fn nonneg(name: &str, what: &str, v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| entry_err(name, format!("negative {what} {v}")))
}

fn small(name: &str, what: &str, v: i64) -> Result<u32> {
    u32::try_from(v).map_err(|_| entry_err(name, format!("{what} {v} out of range")))
}

fn sha256(name: &str, d: &str) -> Result<[u8; 32]> {
    let hex = d
        .strip_prefix("sha256:")
        .ok_or_else(|| entry_err(name, format!("digest {d:?} is not sha256")))?;
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex, &mut out)
        .map_err(|_| entry_err(name, format!("digest {d:?} is not 64 hex digits")))?;
    Ok(out)
}

impl Builder {
    fn add(&mut self, e: RawEntry) -> Result<()> {
        let raw = e.name.clone();
        if e.kind == "chunk" {
            return self.add_chunk(e);
        }
        self.open_reg = None;
        if matches!(raw.trim_start_matches("./").trim_matches('/'), "" | ".") {
            return Ok(()); // the layer's root directory ("./", "."): overlay gives it its own
        }
        let name = clean(&raw).map_err(|why| entry_err(&raw, why))?;
        let kind = match e.kind.as_str() {
            "dir" => Kind::Dir,
            "reg" => Kind::Reg,
            "symlink" => Kind::Symlink,
            "hardlink" => Kind::Hardlink,
            "char" => Kind::Char,
            "block" => Kind::Block,
            "fifo" => Kind::Fifo,
            other => return Err(entry_err(&raw, format!("unknown type {other:?}"))),
        };
        let link = match kind {
            Kind::Hardlink => clean(&e.link_name).map_err(|why| entry_err(&raw, why))?,
            Kind::Symlink if e.link_name.is_empty() => {
                return Err(entry_err(&raw, "symlink without a target"));
            }
            _ => e.link_name.clone(),
        };
        let mut xattrs = BTreeMap::new();
        for (k, v) in &e.xattrs {
            let v = base64::engine::general_purpose::STANDARD
                .decode(v)
                .map_err(|_| entry_err(&raw, format!("xattr {k:?} is not base64")))?;
            xattrs.insert(k.clone(), v);
        }
        let size = if kind == Kind::Reg {
            nonneg(&raw, "size", e.size)?
        } else {
            0
        };
        let mut entry = Entry {
            name,
            kind,
            size,
            mode: (nonneg(&raw, "mode", e.mode)? & 0o7777) as u32,
            uid: small(&raw, "uid", e.uid)?,
            gid: small(&raw, "gid", e.gid)?,
            modtime: e.modtime.clone(),
            link,
            dev_major: small(&raw, "devMajor", e.dev_major)?,
            dev_minor: small(&raw, "devMinor", e.dev_minor)?,
            xattrs,
            chunks: Vec::new(),
        };
        if kind == Kind::Reg && size > 0 {
            let digest = if e.chunk_digest.is_empty() {
                &e.digest
            } else {
                &e.chunk_digest
            };
            let first = chunk(&raw, &e, 0, size, digest)?;
            entry.chunks.push(first);
            self.chunks.push((self.entries.len(), 0));
            self.open_reg = Some(self.entries.len());
        }
        self.entries.push(entry);
        Ok(())
    }

    fn add_chunk(&mut self, e: RawEntry) -> Result<()> {
        let name = clean(&e.name).map_err(|why| entry_err(&e.name, why))?;
        let idx = self
            .open_reg
            .filter(|i| self.entries[*i].name == name)
            .ok_or_else(|| entry_err(&e.name, "chunk does not follow its regular file"))?;
        let file = &self.entries[idx];
        let last = file.chunks.last().expect("an open file has a chunk");
        let start = last.offset + last.size;
        if nonneg(&e.name, "chunkOffset", e.chunk_offset)? != start || start >= file.size {
            return Err(entry_err(
                &e.name,
                format!("chunk at {} does not continue at {start}", e.chunk_offset),
            ));
        }
        let c = chunk(&e.name, &e, start, file.size, &e.chunk_digest)?;
        self.entries[idx].chunks.push(c);
        self.chunks.push((idx, self.entries[idx].chunks.len() - 1));
        Ok(())
    }

    /// Gives each chunk its end (the next chunk's start, or the TOC), checks that the
    /// offsets increase and that every file is tiled, and indexes the names.
    fn finish(mut self, toc_offset: u64, digest: String) -> Result<Toc> {
        let mut ends: Vec<u64> = self.chunks[1.min(self.chunks.len())..]
            .iter()
            .map(|&(e, c)| self.entries[e].chunks[c].blob_offset)
            .collect();
        ends.push(toc_offset);
        for (&(e, c), end) in self.chunks.iter().zip(ends) {
            let entry = &mut self.entries[e];
            let chunk = &mut entry.chunks[c];
            if chunk.blob_offset >= end || end - chunk.blob_offset > MAX_CHUNK {
                return Err(entry_err(
                    &entry.name,
                    format!(
                        "data at {} does not end before the next at {end}",
                        chunk.blob_offset
                    ),
                ));
            }
            chunk.blob_end = end;
        }
        for e in self.entries.iter().filter(|e| e.kind == Kind::Reg) {
            let tiled: u64 = e.chunks.iter().map(|c| c.size).sum();
            if tiled != e.size {
                return Err(entry_err(
                    &e.name,
                    format!("chunks hold {tiled} of {} bytes", e.size),
                ));
            }
        }
        let by_name: HashMap<String, usize> = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.name.clone(), i))
            .collect();
        for e in self.entries.iter().filter(|e| e.kind == Kind::Hardlink) {
            let target = by_name.get(&e.link).map(|i| self.entries[*i].kind);
            if target != Some(Kind::Reg) {
                return Err(entry_err(
                    &e.name,
                    format!("hard link to {:?}, not a regular file", e.link),
                ));
            }
        }
        Ok(Toc {
            entries: self.entries,
            digest,
            by_name,
        })
    }
}

/// A chunk of `e` at `start` in a file of `file_size` bytes (a chunk size of 0: to the end).
fn chunk(name: &str, e: &RawEntry, start: u64, file_size: u64, digest: &str) -> Result<Chunk> {
    let size = match nonneg(name, "chunkSize", e.chunk_size)? {
        0 => file_size - start,
        n => n.min(file_size - start),
    };
    if size > MAX_CHUNK {
        return Err(Error::TooLarge {
            what: format!("chunk of {name:?} at {start}"),
            limit: MAX_CHUNK,
        });
    }
    let blob_offset = nonneg(name, "offset", e.offset)?;
    if blob_offset == 0 {
        return Err(entry_err(name, "data without an offset"));
    }
    Ok(Chunk {
        offset: start,
        size,
        blob_offset,
        blob_end: 0,
        digest: sha256(name, digest)?,
    })
}
