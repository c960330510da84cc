//! Descriptor-relative access that never resolves a symlink: every lookup is one name in a
//! directory held open, with `O_NOFOLLOW`, so a tree that changes under a walk (a directory
//! swapped for a symlink to `/etc`) cannot lead it outside the tree.

use std::ffi::{CString, OsStr, OsString};
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::dir::Dir;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;

fn cname(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
}

/// `openat(dir, name, flags | O_NOFOLLOW | O_CLOEXEC)`; `None` for `dir` is the cwd.
fn open_at(dir: Option<&File>, name: &OsStr, flags: libc::c_int) -> io::Result<File> {
    let c = cname(name)?;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let flags = flags | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: `c` is NUL-terminated and `dirfd` is open (or AT_FDCWD) for the call.
    let fd = unsafe { libc::openat(dirfd, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor nothing else owns.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// Opens the directory `path` (its last component must not be a symlink).
pub(crate) fn open_dir(path: &Path) -> io::Result<File> {
    open_at(None, path.as_os_str(), libc::O_RDONLY | libc::O_DIRECTORY)
}

/// Opens the directory `name` of `dir`; fails (ENOTDIR, ELOOP) for anything else.
pub(crate) fn open_dir_at(dir: &File, name: &OsStr) -> io::Result<File> {
    open_at(Some(dir), name, libc::O_RDONLY | libc::O_DIRECTORY)
}

/// `lstat` of `name` in `dir`.
pub(crate) fn lstat_at(dir: &File, name: &OsStr) -> io::Result<Metadata> {
    open_at(Some(dir), name, libc::O_PATH)?.metadata()
}

/// `lstat` of `name` in `dir`, `None` when there is no such entry.
pub(crate) fn lstat_at_opt(dir: &File, name: &OsStr) -> io::Result<Option<Metadata>> {
    match lstat_at(dir, name) {
        Ok(md) => Ok(Some(md)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens the regular file `name` of `dir` for reading, failing when it is not the inode `md`
/// describes (replaced since, by a symlink or anything else).
pub(crate) fn open_file_at(dir: &File, name: &OsStr, md: &Metadata) -> io::Result<File> {
    let f = open_at(Some(dir), name, libc::O_RDONLY | libc::O_NONBLOCK)?;
    let now = f.metadata()?;
    if !now.is_file() || (now.dev(), now.ino()) != (md.dev(), md.ino()) {
        return Err(io::Error::other(format!(
            "{} was replaced while being read",
            Path::new(name).display()
        )));
    }
    Ok(f)
}

/// The target of the symlink `name` of `dir`.
pub(crate) fn read_link_at(dir: &File, name: &OsStr) -> io::Result<PathBuf> {
    let target = nix::fcntl::readlinkat(Some(dir.as_raw_fd()), name)?;
    Ok(PathBuf::from(target))
}

/// The names in `dir` (without `.` and `..`).
pub(crate) fn names(dir: &File) -> io::Result<Vec<OsString>> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let mut d = Dir::openat(Some(dir.as_raw_fd()), ".", flags, Mode::empty())?;
    let mut out = Vec::new();
    for entry in d.iter() {
        let name = entry?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            out.push(OsString::from_vec(name));
        }
    }
    Ok(out)
}

/// `/proc/self/fd/<dir>/<name>`: a path to `name` of `dir` for the `l*` calls that have no
/// descriptor-relative form (extended attributes); only its last component is looked up, and
/// `l*` calls do not follow it.
pub(crate) fn proc_path(dir: &File, name: &OsStr) -> PathBuf {
    Path::new("/proc/self/fd")
        .join(dir.as_raw_fd().to_string())
        .join(name)
}

/// `syncfs(2)` of the filesystem holding `path`: makes everything written there durable.
pub fn syncfs(path: &Path) -> io::Result<()> {
    let dir = open_dir(path)?;
    nix::unistd::syncfs(dir.as_raw_fd())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_follows_a_symlink() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir(d.path().join("real")).unwrap();
        std::fs::write(d.path().join("real/f"), b"x").unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("dirlink")).unwrap();
        std::os::unix::fs::symlink(d.path().join("real/f"), d.path().join("filelink")).unwrap();
        let root = open_dir(d.path()).unwrap();
        let err = open_dir_at(&root, OsStr::new("dirlink")).unwrap_err();
        assert!(
            matches!(err.raw_os_error(), Some(libc::ENOTDIR | libc::ELOOP)),
            "{err}"
        );
        let md = lstat_at(&root, OsStr::new("filelink")).unwrap();
        assert!(md.is_symlink());
        assert!(open_file_at(&root, OsStr::new("filelink"), &md).is_err());
        let real = lstat_at(
            &open_dir_at(&root, OsStr::new("real")).unwrap(),
            OsStr::new("f"),
        );
        assert!(real.unwrap().is_file());
        assert!(lstat_at_opt(&root, OsStr::new("nope")).unwrap().is_none());
        let mut n = names(&root).unwrap();
        n.sort();
        assert_eq!(n, ["dirlink", "filelink", "real"]);
    }
}
