//! Generating a layer: the changes that turn one tree into another, as a tar (containerd's
//! walking differ, `archive.WriteDiff`). Both trees are walked side by side in name order;
//! added and changed entries are written with their attributes (owners, mode, times to the
//! second, extended attributes, device numbers, link targets), deleted ones as `.wh.` files,
//! parents of every change before it, and a second path of an inode already written as a hard
//! link. The trees are the daemon's own snapshots: nothing is followed, nothing written.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use crate::{Error, Result};

/// What [`write_diff`] wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiffStats {
    pub added_or_changed: u64,
    pub deleted: u64,
}

/// Writes the tar of the changes from `lower` to `upper` into `out` and returns it.
pub fn write_diff<W: Write>(lower: &Path, upper: &Path, out: W) -> Result<(W, DiffStats)> {
    let mut d = Differ {
        tar: tar::Builder::new(out),
        links: HashMap::new(),
        pending: Vec::new(),
        stats: DiffStats::default(),
        upper: upper.to_path_buf(),
    };
    d.tar.mode(tar::HeaderMode::Complete);
    d.tar.follow_symlinks(false);
    d.dir(Path::new(""), Some(lower), upper)?;
    let out = d
        .tar
        .into_inner()
        .map_err(|e| Error::io("finishing the diff", e))?;
    Ok((out, d.stats))
}

struct Differ<W: Write> {
    tar: tar::Builder<W>,
    /// (dev, inode) of multiply linked files already written, and their path.
    links: HashMap<(u64, u64), PathBuf>,
    /// Directories entered but not written yet (written when something below them changes).
    pending: Vec<PathBuf>,
    stats: DiffStats,
    upper: PathBuf,
}

fn io_at(p: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |e| Error::io(format!("reading {}", p.display()), e)
}

/// Names in `dir`, sorted (none when it is not a directory).
fn names(dir: Option<&Path>) -> Result<Vec<OsString>> {
    let Some(dir) = dir else {
        return Ok(Vec::new());
    };
    match fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        _ => return Ok(Vec::new()),
    }
    let mut out: Vec<OsString> = fs::read_dir(dir)
        .map_err(io_at(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()
        .map_err(io_at(dir))?;
    out.sort();
    Ok(out)
}

impl<W: Write> Differ<W> {
    /// Compares directory `rel` of both trees (`lower` absent below a new directory).
    fn dir(&mut self, rel: &Path, lower: Option<&Path>, upper: &Path) -> Result<()> {
        let (lo, up) = (names(lower)?, names(Some(upper))?);
        let (mut i, mut j) = (0, 0);
        while i < lo.len() || j < up.len() {
            let order = match (lo.get(i), up.get(j)) {
                (Some(a), Some(b)) => a.cmp(b),
                (Some(_), None) => std::cmp::Ordering::Less,
                _ => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => {
                    self.whiteout(&rel.join(&lo[i]))?;
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    self.entry(&rel.join(&up[j]), None, &upper.join(&up[j]))?;
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    let l = lower.map(|l| l.join(&lo[i]));
                    self.entry(&rel.join(&up[j]), l.as_deref(), &upper.join(&up[j]))?;
                    i += 1;
                    j += 1;
                }
            }
        }
        Ok(())
    }

    fn entry(&mut self, rel: &Path, lower: Option<&Path>, upper: &Path) -> Result<()> {
        let um = fs::symlink_metadata(upper).map_err(io_at(upper))?;
        let lm = match lower {
            Some(l) => Some(fs::symlink_metadata(l).map_err(io_at(l))?),
            None => None,
        };
        let changed = match &lm {
            Some(lm) => !same(lower.expect("lower path"), lm, upper, &um)?,
            None => true,
        };
        let both_dirs = um.is_dir() && lm.as_ref().is_some_and(|m| m.is_dir());
        if um.is_dir() {
            self.pending.push(rel.to_path_buf());
            if changed {
                self.flush_parents()?;
            }
            let below = if both_dirs { lower } else { None };
            self.dir(rel, below, upper)?;
            if self.pending.last().is_some_and(|p| p == rel) {
                self.pending.pop();
            }
            return Ok(());
        }
        if changed {
            self.flush_parents()?;
            self.write(rel, upper, &um)?;
        }
        Ok(())
    }

    /// Writes every pending directory (the parents of a change), outermost first.
    fn flush_parents(&mut self) -> Result<()> {
        for rel in std::mem::take(&mut self.pending) {
            let path = self.upper.join(&rel);
            let m = fs::symlink_metadata(&path).map_err(io_at(&path))?;
            self.write(&rel, &path, &m)?;
        }
        Ok(())
    }

    fn whiteout(&mut self, rel: &Path) -> Result<()> {
        self.flush_parents()?;
        let name = rel.file_name().map(OsStr::as_bytes).unwrap_or_default();
        let mut wh = b".wh.".to_vec();
        wh.extend_from_slice(name);
        let path = rel.with_file_name(std::ffi::OsStr::from_bytes(&wh));
        let mut h = Header::new_gnu();
        h.set_entry_type(EntryType::Regular);
        h.set_size(0);
        h.set_mode(0o644);
        h.set_mtime(0);
        self.tar
            .append_data(&mut h, &path, io::empty())
            .map_err(|e| Error::io(format!("writing whiteout {}", path.display()), e))?;
        self.stats.deleted += 1;
        Ok(())
    }

    fn write(&mut self, rel: &Path, path: &Path, m: &Metadata) -> Result<()> {
        let ft = m.file_type();
        let mut h = Header::new_gnu();
        h.set_mode(m.mode() & 0o7777);
        h.set_uid(u64::from(m.uid()));
        h.set_gid(u64::from(m.gid()));
        h.set_mtime(m.mtime().max(0) as u64);
        h.set_size(0);
        let xattrs = crate::sys::xattrs_path(path).map_err(io_at(path))?;
        if !xattrs.is_empty() {
            let records: Vec<(String, Vec<u8>)> = xattrs
                .into_iter()
                .map(|(k, v)| (format!("SCHILY.xattr.{k}"), v))
                .collect();
            self.tar
                .append_pax_extensions(records.iter().map(|(k, v)| (k.as_str(), v.as_slice())))
                .map_err(io_at(path))?;
        }
        let name = if ft.is_dir() {
            dir_name(rel)
        } else {
            rel.to_path_buf()
        };
        let res = if ft.is_symlink() {
            h.set_entry_type(EntryType::Symlink);
            let target = fs::read_link(path).map_err(io_at(path))?;
            self.tar.append_link(&mut h, &name, &target)
        } else if ft.is_dir() {
            h.set_entry_type(EntryType::Directory);
            self.tar.append_data(&mut h, &name, io::empty())
        } else if ft.is_file() {
            if m.nlink() > 1 {
                let key = (m.dev(), m.ino());
                if let Some(first) = self.links.get(&key).cloned() {
                    h.set_entry_type(EntryType::Link);
                    self.stats.added_or_changed += 1;
                    return self
                        .tar
                        .append_link(&mut h, &name, &first)
                        .map_err(io_at(path));
                }
                self.links.insert(key, rel.to_path_buf());
            }
            h.set_entry_type(EntryType::Regular);
            h.set_size(m.len());
            let f = fs::File::open(path).map_err(io_at(path))?;
            self.tar.append_data(&mut h, &name, f.take(m.len()))
        } else {
            let kind = if ft.is_char_device() {
                EntryType::Char
            } else if ft.is_block_device() {
                EntryType::Block
            } else if ft.is_fifo() {
                EntryType::Fifo
            } else {
                return Ok(()); // sockets are not part of a layer
            };
            h.set_entry_type(kind);
            let (major, minor) = (
                nix::sys::stat::major(m.rdev()),
                nix::sys::stat::minor(m.rdev()),
            );
            h.set_device_major(major as u32).map_err(io_at(path))?;
            h.set_device_minor(minor as u32).map_err(io_at(path))?;
            self.tar.append_data(&mut h, &name, io::empty())
        };
        self.stats.added_or_changed += 1;
        res.map_err(|e| Error::io(format!("writing {} to the diff", rel.display()), e))
    }
}

use std::ffi::OsStr;

/// A directory's name in a tar ends with `/`.
fn dir_name(rel: &Path) -> PathBuf {
    let mut s = rel.as_os_str().to_os_string();
    s.push("/");
    PathBuf::from(s)
}

/// Whether an entry is unchanged (containerd's `sameFile`): type, mode, owner, device, size,
/// modification time, link target and extended attributes; regular files whose times carry no
/// nanoseconds (a copy that kept only seconds) are compared by content.
fn same(lp: &Path, l: &Metadata, up: &Path, u: &Metadata) -> Result<bool> {
    if l.mode() != u.mode() || l.uid() != u.uid() || l.gid() != u.gid() || l.rdev() != u.rdev() {
        return Ok(false);
    }
    if !l.is_dir()
        && (l.size() != u.size() || l.mtime() != u.mtime() || l.mtime_nsec() != u.mtime_nsec())
    {
        return Ok(false);
    }
    if l.file_type().is_symlink()
        && fs::read_link(lp).map_err(io_at(lp))? != fs::read_link(up).map_err(io_at(up))?
    {
        return Ok(false);
    }
    let (lx, ux) = (
        crate::sys::xattrs_path(lp).map_err(io_at(lp))?,
        crate::sys::xattrs_path(up).map_err(io_at(up))?,
    );
    if lx != ux {
        return Ok(false);
    }
    if l.is_file() && u.mtime_nsec() == 0 {
        return same_content(lp, up);
    }
    Ok(true)
}

fn same_content(a: &Path, b: &Path) -> Result<bool> {
    let (mut fa, mut fb) = (
        fs::File::open(a).map_err(io_at(a))?,
        fs::File::open(b).map_err(io_at(b))?,
    );
    let (mut ba, mut bb) = (vec![0u8; 64 << 10], vec![0u8; 64 << 10]);
    loop {
        let n = read_full(&mut fa, &mut ba).map_err(io_at(a))?;
        let m = read_full(&mut fb, &mut bb).map_err(io_at(b))?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}
