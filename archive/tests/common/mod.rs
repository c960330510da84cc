//! Test support: layers built entry by entry (raw headers allowed, for hostile names), and
//! trees read back for comparison.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use tar::{EntryType, Header};

/// A layer under construction.
pub struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Default for Layer {
    fn default() -> Self {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }
}

fn header(name: &[u8], kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_600_000_000);
    h.set_size(size);
    let raw = &mut h.as_old_mut().name;
    raw.fill(0);
    raw[..name.len()].copy_from_slice(name);
    h
}

impl Layer {
    /// An entry with a raw name (no validation: hostile layers too).
    pub fn raw(
        mut self,
        name: &[u8],
        kind: EntryType,
        mode: u32,
        data: &[u8],
        link: Option<&[u8]>,
    ) -> Self {
        let mut h = header(name, kind, mode, data.len() as u64);
        if let Some(l) = link {
            let raw = &mut h.as_old_mut().linkname;
            raw.fill(0);
            raw[..l.len()].copy_from_slice(l);
        }
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    pub fn dir(self, name: &str, mode: u32) -> Self {
        self.raw(name.as_bytes(), EntryType::Directory, mode, b"", None)
    }

    pub fn file(self, name: &str, mode: u32, data: &[u8]) -> Self {
        self.raw(name.as_bytes(), EntryType::Regular, mode, data, None)
    }

    pub fn symlink(self, name: &str, target: &str) -> Self {
        self.raw(
            name.as_bytes(),
            EntryType::Symlink,
            0o777,
            b"",
            Some(target.as_bytes()),
        )
    }

    pub fn hardlink(self, name: &str, target: &str) -> Self {
        self.raw(
            name.as_bytes(),
            EntryType::Link,
            0o644,
            b"",
            Some(target.as_bytes()),
        )
    }

    /// An entry with a full header built by `f` (owners, times, device numbers).
    pub fn with(
        mut self,
        name: &str,
        kind: EntryType,
        data: &[u8],
        f: impl FnOnce(&mut Header),
    ) -> Self {
        let mut h = header(name.as_bytes(), kind, 0o644, data.len() as u64);
        f(&mut h);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    /// A PAX-extended entry (`SCHILY.xattr.*`, long `path`, sparse records...).
    pub fn pax(
        mut self,
        records: &[(&str, &[u8])],
        name: &str,
        kind: EntryType,
        data: &[u8],
    ) -> Self {
        self.b
            .append_pax_extensions(records.iter().map(|(k, v)| (*k, *v)))
            .unwrap();
        self.raw(name.as_bytes(), kind, 0o644, data, None)
    }

    pub fn tar(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }

    pub fn gzip(self) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&self.tar()).unwrap();
        e.finish().unwrap()
    }
}

/// One line per entry under `root`: path, type, mode, owner, size, content, link target, xattrs.
pub fn describe(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in walkdir(root) {
        let rel = e.strip_prefix(root).unwrap().display().to_string();
        let m = std::fs::symlink_metadata(&e).unwrap();
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            "d"
        } else if ft.is_symlink() {
            "l"
        } else if ft.is_file() {
            "f"
        } else {
            "o"
        };
        let extra = if ft.is_symlink() {
            std::fs::read_link(&e).unwrap().display().to_string()
        } else if ft.is_file() {
            String::from_utf8_lossy(&std::fs::read(&e).unwrap()).into_owned()
        } else if !ft.is_dir() {
            format!("rdev={:x}", m.rdev())
        } else {
            String::new()
        };
        out.push(format!(
            "{rel} {kind} {:o} {}:{} {extra}",
            m.permissions().mode() & 0o7777,
            m.uid(),
            m.gid()
        ));
    }
    out.sort();
    out
}

fn walkdir(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if std::fs::symlink_metadata(&p).unwrap().is_dir() {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// Every path under `dir`, to compare before and after (a sentinel tree).
pub fn snapshot_of(dir: &Path) -> Vec<String> {
    describe(dir)
}
