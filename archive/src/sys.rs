//! The filesystem calls layer application makes, all relative to directory file descriptors:
//! one small function per call, so the rest of the crate never builds a path from untrusted
//! input.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::fcntl::{OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};

fn err(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

/// Opens `rel` under `dir` without following any symlink and without leaving `dir`
/// (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`): ELOOP when a component is a
/// symlink, EXDEV on an escape.
pub fn open_beneath(dir: BorrowedFd<'_>, rel: &Path, flags: OFlag) -> io::Result<OwnedFd> {
    let how = OpenHow::new()
        .flags(flags | OFlag::O_CLOEXEC | OFlag::O_NOFOLLOW)
        .resolve(
            ResolveFlag::RESOLVE_BENEATH
                | ResolveFlag::RESOLVE_NO_SYMLINKS
                | ResolveFlag::RESOLVE_NO_MAGICLINKS,
        );
    let fd = nix::fcntl::openat2(dir.as_raw_fd(), rel, how).map_err(err)?;
    // SAFETY: openat2 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A directory as an `O_PATH` handle (for the `*at` calls).
pub fn open_dir(dir: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    open_beneath(dir, rel, OFlag::O_PATH | OFlag::O_DIRECTORY)
}

/// Opens a directory path given by the operator (trusted), as a readable directory.
pub fn open_root(path: &Path) -> io::Result<OwnedFd> {
    let f = std::fs::File::open(path)?;
    if !f.metadata()?.is_dir() {
        return Err(io::Error::from(io::ErrorKind::NotADirectory));
    }
    Ok(f.into())
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`; `None` when it does not exist.
pub fn lstat(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Option<libc::stat>> {
    match nix::sys::stat::fstatat(
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    ) {
        Ok(st) => Ok(Some(st)),
        Err(nix::errno::Errno::ENOENT) => Ok(None),
        Err(e) => Err(err(e)),
    }
}

pub fn is_dir(st: &libc::stat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

pub fn mkdir(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    nix::sys::stat::mkdirat(Some(dir.as_raw_fd()), name, Mode::from_bits_truncate(mode))
        .map_err(err)
}

/// A new regular file (fails if the name exists), opened for writing.
pub fn create_file(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW;
    let fd = nix::fcntl::openat(
        Some(dir.as_raw_fd()),
        name,
        flags | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(err)?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Opens an existing non-symlink entry for reading (to copy it or set its xattrs).
pub fn open_read(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<File> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = nix::fcntl::openat(Some(dir.as_raw_fd()), name, flags, Mode::empty()).map_err(err)?;
    // SAFETY: openat returned a new descriptor that nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

pub fn symlink(target: &OsStr, dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    nix::unistd::symlinkat(target, Some(dir.as_raw_fd()), name).map_err(err)
}

/// A hard link `dir/name` to `from_dir/from_name` (never following a symlink).
pub fn link(
    from_dir: BorrowedFd<'_>,
    from_name: &OsStr,
    dir: BorrowedFd<'_>,
    name: &OsStr,
) -> io::Result<()> {
    nix::unistd::linkat(
        Some(from_dir.as_raw_fd()),
        from_name,
        Some(dir.as_raw_fd()),
        name,
        nix::fcntl::AtFlags::empty(),
    )
    .map_err(err)
}

/// A device node, fifo or (kind `S_IFCHR`, dev 0) overlay whiteout.
pub fn mknod(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    kind: SFlag,
    mode: u32,
    dev: u64,
) -> io::Result<()> {
    nix::sys::stat::mknodat(
        Some(dir.as_raw_fd()),
        name,
        kind,
        Mode::from_bits_truncate(mode),
        dev,
    )
    .map_err(err)
}

pub fn unlink(dir: BorrowedFd<'_>, name: &OsStr, is_dir: bool) -> io::Result<()> {
    let flag = if is_dir {
        nix::unistd::UnlinkatFlags::RemoveDir
    } else {
        nix::unistd::UnlinkatFlags::NoRemoveDir
    };
    nix::unistd::unlinkat(Some(dir.as_raw_fd()), name, flag).map_err(err)
}

pub fn chown(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    nix::unistd::fchownat(
        Some(dir.as_raw_fd()),
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(err)
}

/// chmod of a non-symlink entry we just created (a directory or a node).
pub fn chmod(dir: BorrowedFd<'_>, name: &OsStr, mode: u32) -> io::Result<()> {
    nix::sys::stat::fchmodat(
        Some(dir.as_raw_fd()),
        name,
        Mode::from_bits_truncate(mode),
        nix::sys::stat::FchmodatFlags::FollowSymlink,
    )
    .map_err(err)
}

/// Access and modification times of an entry (a symlink itself, not its target).
pub fn set_times(dir: BorrowedFd<'_>, name: &OsStr, atime: Time, mtime: Time) -> io::Result<()> {
    nix::sys::stat::utimensat(
        Some(dir.as_raw_fd()),
        name,
        &atime.spec(),
        &mtime.spec(),
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(err)
}

/// Seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    pub secs: i64,
    pub nanos: u32,
}

impl Time {
    fn spec(self) -> nix::sys::time::TimeSpec {
        nix::sys::time::TimeSpec::new(self.secs, i64::from(self.nanos))
    }
}

/// Sets an extended attribute on `dir/name` without following a symlink, through
/// `/proc/self/fd/<dir>/<name>` (works for every file type, unlike `fsetxattr`).
pub fn set_xattr(dir: BorrowedFd<'_>, name: &OsStr, key: &str, value: &[u8]) -> io::Result<()> {
    let path = proc_path(dir.as_raw_fd(), name)?;
    let key = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: both strings are NUL-terminated and live across the call; the value pointer and
    // length describe a valid slice.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            key.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Every extended attribute of `dir/name` (not following a symlink).
pub fn xattrs(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<Vec<(String, Vec<u8>)>> {
    let path = proc_path(dir.as_raw_fd(), name)?;
    let names = xattr_call(|buf, len| {
        // SAFETY: `path` is NUL-terminated; `buf`/`len` describe a writable buffer (or null/0).
        unsafe { libc::llistxattr(path.as_ptr(), buf.cast(), len) }
    })?;
    let mut out = Vec::new();
    for key in names.split(|b| *b == 0).filter(|k| !k.is_empty()) {
        let ckey = CString::new(key).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let value = xattr_call(|buf, len| {
            // SAFETY: both strings are NUL-terminated; `buf`/`len` describe a writable buffer.
            unsafe { libc::lgetxattr(path.as_ptr(), ckey.as_ptr(), buf.cast(), len) }
        })?;
        out.push((String::from_utf8_lossy(key).into_owned(), value));
    }
    Ok(out)
}

/// Every extended attribute of the entry at `path` (not following a symlink), sorted.
pub fn xattrs_path(path: &Path) -> io::Result<Vec<(String, Vec<u8>)>> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    let name = path.file_name().unwrap_or(OsStr::new("."));
    let dir = open_root(parent)?;
    let mut all = xattrs(dir.as_fd(), name)?;
    all.sort();
    Ok(all)
}

/// Runs a size-probing xattr call twice: for the length, then into a buffer of that length.
fn xattr_call(f: impl Fn(*mut u8, usize) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let n = f(std::ptr::null_mut(), 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; n as usize];
        let got = f(buf.as_mut_ptr(), buf.len());
        if got >= 0 {
            buf.truncate(got as usize);
            return Ok(buf);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ERANGE) {
            return Err(e);
        }
    }
}

fn proc_path(dir: RawFd, name: &OsStr) -> io::Result<CString> {
    let mut p = format!("/proc/self/fd/{dir}/").into_bytes();
    p.extend_from_slice(name.as_bytes());
    CString::new(p).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

/// Names in directory `dir` (without `.` and `..`).
pub fn read_dir(dir: BorrowedFd<'_>) -> io::Result<Vec<std::ffi::OsString>> {
    let fd = open_beneath(dir, Path::new("."), OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
    let mut d = nix::dir::Dir::from_fd(fd.as_raw_fd()).map_err(err)?;
    std::mem::forget(fd); // the Dir owns (and closes) it now
    let mut out = Vec::new();
    for entry in d.iter() {
        let entry = entry.map_err(err)?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}

/// Removes `dir/name` and, for a directory, everything below it, never following symlinks.
pub fn remove_all(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    let Some(st) = lstat(dir, name)? else {
        return Ok(());
    };
    if is_dir(&st) {
        let sub = open_dir(dir, Path::new(name))?;
        for child in read_dir(sub.as_fd())? {
            remove_all(sub.as_fd(), &child)?;
        }
    }
    unlink(dir, name, is_dir(&st))
}
