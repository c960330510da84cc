//! Creating one entry of each type in its (already resolved) parent directory, and setting its
//! attributes. An existing entry of the same name is replaced, except a directory by a
//! directory (which keeps its contents and takes the new attributes).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::sys::stat::SFlag;

use crate::apply::Applier;
use crate::meta::{Meta, Sparse, read_map_in_data};
use crate::name::{clean, split};
use crate::sys;
use crate::tree::{copy_attrs, resolve_error};
use crate::{Error, Result};

/// The buffer file data is copied through ([`Applier::copy_buffer`]).
pub(crate) const BUF: usize = 256 << 10;

fn io_err(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> Error {
    let context = format!("{what} {}", path.display());
    move |e| Error::io(context, e)
}

/// Removes whatever is at `dir/name` unless `keep_dir` and it is a directory; returns whether a
/// directory was kept.
fn clear(dir: BorrowedFd<'_>, name: &OsStr, path: &Path, keep_dir: bool) -> Result<bool> {
    let st = sys::lstat(dir, name).map_err(io_err("stat", path))?;
    match st {
        None => Ok(false),
        Some(st) if keep_dir && sys::is_dir(&st) => Ok(true),
        Some(_) => sys::remove_all(dir, name)
            .map(|()| false)
            .map_err(io_err("replacing", path)),
    }
}

/// Owner, mode (not for symlinks; after the owner, which clears set-id bits), extended
/// attributes and — unless deferred for a directory — times.
pub(crate) fn attributes(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    meta: &Meta,
    symlink: bool,
) -> Result<()> {
    sys::chown(dir, name, meta.uid, meta.gid).map_err(io_err("chown", path))?;
    if !symlink {
        sys::chmod(dir, name, meta.mode).map_err(io_err("chmod", path))?;
    }
    for (k, v) in &meta.xattrs {
        match sys::set_xattr(dir, name, k, v) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => {
                tracing::warn!(path = %path.display(), xattr = %k, "extended attribute not supported here; skipped");
            }
            Err(e) => return Err(Error::io(format!("setting {k} on {}", path.display()), e)),
        }
    }
    Ok(())
}

fn times(dir: BorrowedFd<'_>, name: &OsStr, path: &Path, meta: &Meta) -> Result<()> {
    sys::set_times(dir, name, meta.atime, meta.mtime).map_err(io_err("setting times of", path))
}

pub(crate) fn directory(
    a: &mut Applier<'_>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    meta: &Meta,
) -> Result<()> {
    if !clear(dir, name, path, true)? {
        sys::mkdir(dir, name, 0o700).map_err(io_err("mkdir", path))?;
    }
    attributes(dir, name, path, meta, false)?;
    a.defer_times(path, meta);
    Ok(())
}

pub(crate) fn file<R: Read>(
    a: &mut Applier<'_>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    e: &mut tar::Entry<'_, R>,
    meta: &Meta,
) -> Result<()> {
    clear(dir, name, path, false)?;
    let mut f = sys::create_file(dir, name).map_err(io_err("creating", path))?;
    let buf = a.copy_buffer();
    match &meta.sparse {
        None => {
            let size = e.size();
            copy_holes(e, &mut f, size, path, buf)?;
            f.set_len(size).map_err(io_err("sizing", path))?;
        }
        Some(Sparse::Map { size, chunks }) => write_chunks(e, &mut f, chunks, *size, path, buf)?,
        Some(Sparse::InData { size }) => {
            let chunks = read_map_in_data(e)?;
            write_chunks(e, &mut f, &chunks, *size, path, buf)?;
        }
    }
    drop(f);
    attributes(dir, name, path, meta, false)?;
    times(dir, name, path, meta)
}

/// Copies exactly `len` bytes through `buf`; all-zero blocks become holes (the caller sets the
/// length).
fn copy_holes<R: Read>(
    r: &mut R,
    f: &mut File,
    len: u64,
    path: &Path,
    buf: &mut [u8],
) -> Result<()> {
    let mut left = len;
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = r
            .read(&mut buf[..want])
            .map_err(|e| crate::error::from_stream(&format!("reading {}", path.display()), e))?;
        if n == 0 {
            return Err(Error::Invalid(format!(
                "{}: data ends {left} bytes early",
                path.display()
            )));
        }
        let chunk = &buf[..n];
        if chunk.iter().all(|b| *b == 0) {
            f.seek(SeekFrom::Current(n as i64))
                .map_err(io_err("seeking in", path))?;
        } else {
            f.write_all(chunk).map_err(io_err("writing", path))?;
        }
        left -= n as u64;
    }
    Ok(())
}

fn write_chunks<R: Read>(
    r: &mut R,
    f: &mut File,
    chunks: &[(u64, u64)],
    size: u64,
    path: &Path,
    buf: &mut [u8],
) -> Result<()> {
    let mut end = 0;
    for &(off, len) in chunks {
        if off < end || off.checked_add(len).is_none_or(|e| e > size) {
            return Err(Error::Invalid(format!(
                "{}: sparse map out of order or past the size",
                path.display()
            )));
        }
        f.seek(SeekFrom::Start(off))
            .map_err(io_err("seeking in", path))?;
        copy_holes(r, f, len, path, buf)?;
        end = off + len;
    }
    f.set_len(size).map_err(io_err("sizing", path))
}

pub(crate) fn symlink<R: Read>(
    _a: &mut Applier<'_>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    e: &mut tar::Entry<'_, R>,
    meta: &Meta,
) -> Result<()> {
    let target = e
        .link_name_bytes()
        .ok_or_else(|| Error::Invalid(format!("symlink {} has no target", path.display())))?;
    if target.contains(&0) || target.is_empty() {
        return Err(Error::Invalid(format!(
            "symlink {} has a bad target",
            path.display()
        )));
    }
    let target = OsStr::from_bytes(&target).to_os_string();
    clear(dir, name, path, false)?;
    sys::symlink(&target, dir, name).map_err(io_err("symlink", path))?;
    attributes(dir, name, path, meta, true)?;
    times(dir, name, path, meta)
}

/// A hard link to an entry of this tree (never a directory); under an overlay upper directory a
/// target only a lower layer has is copied up first.
pub(crate) fn hard_link<R: Read>(
    a: &mut Applier<'_>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    e: &mut tar::Entry<'_, R>,
) -> Result<()> {
    let raw = e
        .link_name_bytes()
        .ok_or_else(|| Error::Invalid(format!("hard link {} has no target", path.display())))?;
    let target = clean(&raw)?;
    let (tparent, tbase) = split(&target);
    let shown = || format!("hard link {} -> {}", path.display(), target.display());
    let mut made = Vec::new();
    let tdir = match a.tree.existing_dir(&tparent)? {
        Some(d) => d,
        None if a.tree.has_lower() => a.tree.dir(&tparent, &mut made)?,
        None => return Err(Error::Invalid(format!("{}: target missing", shown()))),
    };
    a.created.extend(made);
    match sys::lstat(tdir.as_fd(), tbase).map_err(io_err("stat", &target))? {
        Some(st) if sys::is_dir(&st) => {
            return Err(Error::Invalid(format!(
                "{}: target is a directory",
                shown()
            )));
        }
        Some(_) => {}
        None => copy_up(a, tdir.as_fd(), tbase, &target).map_err(|e| match e {
            Error::Invalid(m) => Error::Invalid(format!("{}: {m}", shown())),
            other => other,
        })?,
    }
    if target == path {
        return Ok(());
    }
    clear(dir, name, path, false)?;
    sys::link(tdir.as_fd(), tbase, dir, name).map_err(io_err("linking", path))
}

/// Copies `target` from the topmost lower layer that has it into the upper tree.
fn copy_up(a: &Applier<'_>, tdir: BorrowedFd<'_>, tbase: &OsStr, target: &Path) -> Result<()> {
    let Some((ldir, st)) = a.tree.lower_entry(target)? else {
        return Err(Error::Invalid("target missing".into()));
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Error::Invalid(
            "target in a lower layer is not a regular file".into(),
        ));
    }
    let mut src = sys::open_read(ldir.as_fd(), tbase).map_err(io_err("opening lower", target))?;
    let mut dst = sys::create_file(tdir, tbase).map_err(io_err("copying up", target))?;
    std::io::copy(&mut src, &mut dst).map_err(io_err("copying up", target))?;
    drop(dst);
    copy_attrs(ldir.as_fd(), tbase, &st, tdir, tbase).map_err(io_err("copying up", target))
}

/// A character or block device (if allowed) or a fifo.
pub(crate) fn node<R: Read>(
    a: &mut Applier<'_>,
    dir: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
    e: &mut tar::Entry<'_, R>,
    meta: &Meta,
) -> Result<()> {
    use tar::EntryType as T;
    let h = e.header();
    let kind = match h.entry_type() {
        T::Char => SFlag::S_IFCHR,
        T::Block => SFlag::S_IFBLK,
        _ => SFlag::S_IFIFO,
    };
    if kind != SFlag::S_IFIFO && !a.opts.allow_devices {
        return Err(Error::Invalid(format!(
            "device node {} is not allowed",
            path.display()
        )));
    }
    // devmajor and devminor sit at the same offsets in ustar and GNU headers.
    let raw = h.as_bytes();
    let major = crate::meta::numeric("device major", &raw[329..337])?;
    let minor = crate::meta::numeric("device minor", &raw[337..345])?;
    clear(dir, name, path, false)?;
    let dev = nix::sys::stat::makedev(major, minor);
    sys::mknod(dir, name, kind, meta.mode, dev).map_err(io_err("mknod", path))?;
    attributes(dir, name, path, meta, false)?;
    times(dir, name, path, meta)
}

/// The directory `rel` must resolve inside the tree; used by whiteouts.
pub(crate) fn resolve_for_whiteout(
    a: &Applier<'_>,
    rel: &Path,
) -> Result<Option<std::os::fd::OwnedFd>> {
    a.tree.existing_dir(rel).map_err(|e| match e {
        Error::Io { source, .. } => resolve_error(rel, source),
        other => other,
    })
}
