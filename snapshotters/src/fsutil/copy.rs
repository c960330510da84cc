//! A faithful recursive copy (containerd's `fs.CopyDir`): owners, modes, timestamps (set on
//! directories after their children), xattrs, hard links, symlinks, devices, fifos, sockets
//! and sparse files.
//!
//! The source is read through directory descriptors ([`super::at`]), one name at a time with
//! `O_NOFOLLOW`: an entry swapped for a symlink during the copy is copied as a symlink or
//! fails the copy, and never pulls in what it points to.

use std::collections::HashMap;
use std::ffi::{CString, OsStr};
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::at;
use super::file::copy_data;
use super::xattr::copy_xattrs;
use crate::{Error, Result};

/// Paths already copied, by source (dev, ino), to recreate hard links.
type Inodes = HashMap<(u64, u64), PathBuf>;

/// Copies the contents and attributes of directory `src` into the existing directory `dst`.
pub fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    let mut inodes = Inodes::new();
    at::open_dir(src)
        .and_then(|dir| copy_tree(&dir, src, src, dst, &mut inodes))
        .map_err(|e| Error::io(format!("copy {} to {}", src.display(), dst.display()), e))
}

/// Copies the entries of the open directory `dir` (at `path`, for messages; `attrs` is a path
/// to it for its extended attributes), then its attributes.
fn copy_tree(
    dir: &File,
    path: &Path,
    attrs: &Path,
    dst: &Path,
    inodes: &mut Inodes,
) -> io::Result<()> {
    for name in at::names(dir)? {
        let src = path.join(&name);
        copy_entry(dir, &name, &src, &dst.join(&name), inodes)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", src.display())))?;
    }
    copy_metadata(dst, &dir.metadata()?, attrs)
}

/// Copies entry `name` of `dir` (at `src`, for messages) to `dst`.
fn copy_entry(
    dir: &File,
    name: &OsStr,
    src: &Path,
    dst: &Path,
    inodes: &mut Inodes,
) -> io::Result<()> {
    let md = at::lstat_at(dir, name)?;
    let ft = md.file_type();
    let attrs = at::proc_path(dir, name);
    if ft.is_dir() {
        let sub = at::open_dir_at(dir, name)?;
        fs::create_dir(dst)?;
        return copy_tree(&sub, src, &attrs, dst, inodes);
    }
    if md.nlink() > 1 {
        if let Some(first) = inodes.get(&(md.dev(), md.ino())) {
            return fs::hard_link(first, dst);
        }
        inodes.insert((md.dev(), md.ino()), dst.to_path_buf());
    }
    if ft.is_file() {
        copy_file(&at::open_file_at(dir, name, &md)?, dst, md.len())?;
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(at::read_link_at(dir, name)?, dst)?;
    } else {
        mknod(dst, md.mode(), md.rdev())?;
    }
    copy_metadata(dst, &md, &attrs)
}

fn copy_file(src: &File, dst: &Path, len: u64) -> io::Result<()> {
    let d = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)?;
    copy_data(src, &d, len)
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn mknod(path: &Path, mode: u32, rdev: u64) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a valid NUL-terminated path; mknod reads nothing else.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Owner, then mode (chown clears set-id bits), xattrs, then times of `dst` from `md`.
fn copy_metadata(dst: &Path, md: &Metadata, src: &Path) -> io::Result<()> {
    std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid()))?;
    if !md.file_type().is_symlink() {
        fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    }
    copy_xattrs(src, dst)?;
    set_times(dst, md)
}

fn set_times(dst: &Path, md: &Metadata) -> io::Result<()> {
    let c = cpath(dst)?;
    let times = [
        libc::timespec {
            tv_sec: md.atime(),
            tv_nsec: md.atime_nsec(),
        },
        libc::timespec {
            tv_sec: md.mtime(),
            tv_nsec: md.mtime_nsec(),
        },
    ];
    // SAFETY: `c` is a valid path and `times` points to two initialised timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileExt, FileTypeExt, symlink};

    use super::*;

    #[test]
    fn copies_tree_faithfully() {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (src, dst) = (s.path(), d.path());
        fs::create_dir(src.join("dir")).unwrap();
        fs::write(src.join("dir/f"), b"hello").unwrap();
        fs::set_permissions(src.join("dir/f"), fs::Permissions::from_mode(0o4751)).unwrap();
        fs::hard_link(src.join("dir/f"), src.join("link")).unwrap();
        symlink("dir/f", src.join("sym")).unwrap();
        let sparse = File::create(src.join("sparse")).unwrap();
        sparse.set_len(64 << 20).unwrap();
        sparse.write_all_at(b"tail", (64 << 20) - 4).unwrap();
        mknod(&src.join("fifo"), libc::S_IFIFO | 0o640, 0).unwrap();
        std::os::unix::fs::lchown(src.join("dir"), Some(7), Some(8)).unwrap();
        fs::set_permissions(src.join("dir"), fs::Permissions::from_mode(0o710)).unwrap();
        copy_dir(src, dst).unwrap();

        assert_eq!(fs::read(dst.join("dir/f")).unwrap(), b"hello");
        let (f, l) = (md(&dst.join("dir/f")), md(&dst.join("link")));
        assert_eq!((f.mode() & 0o7777, f.ino()), (0o4751, l.ino()));
        assert_eq!(fs::read_link(dst.join("sym")).unwrap(), Path::new("dir/f"));
        let d = md(&dst.join("dir"));
        assert_eq!((d.uid(), d.gid(), d.mode() & 0o7777), (7, 8, 0o710));
        assert_eq!(d.mtime_nsec(), md(&src.join("dir")).mtime_nsec());
        assert!(md(&dst.join("fifo")).file_type().is_fifo());
        let sp = md(&dst.join("sparse"));
        assert_eq!(sp.len(), 64 << 20);
        assert!(sp.blocks() * 512 < 1 << 20, "holes stay holes");
    }

    /// Regression: a regular file swapped for a symlink to a host file during the copy was
    /// opened by path (following the symlink) and the host file's data copied in.
    #[test]
    fn a_file_swapped_for_a_symlink_is_never_followed() {
        let base = tempfile::tempdir().unwrap();
        let (src, stage) = (base.path().join("src"), base.path().join("stage"));
        fs::create_dir(&src).unwrap();
        fs::create_dir(&stage).unwrap();
        let secret = base.path().join("secret");
        fs::write(&secret, b"host secret").unwrap();
        let names: Vec<String> = (0..16).map(|i| format!("f{i}")).collect();
        for n in &names {
            fs::write(src.join(n), b"own content").unwrap();
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        let followed = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for n in &names {
                        let (f, l) = (stage.join("file"), stage.join("link"));
                        fs::write(&f, b"own content").unwrap();
                        fs::rename(&f, src.join(n)).unwrap();
                        symlink(&secret, &l).unwrap();
                        fs::rename(&l, src.join(n)).unwrap();
                    }
                }
            });
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            let mut followed = Vec::new();
            while std::time::Instant::now() < deadline {
                let dst = tempfile::tempdir_in(base.path()).unwrap();
                if copy_dir(&src, dst.path()).is_err() {
                    continue;
                }
                for n in &names {
                    let p = dst.path().join(n);
                    if md(&p).is_file() && fs::read(&p).unwrap() != b"own content" {
                        followed.push(p.display().to_string());
                    }
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            followed
        });
        assert!(followed.is_empty(), "host file copied into {followed:?}");
    }

    fn md(p: &Path) -> Metadata {
        fs::symlink_metadata(p).unwrap()
    }
}
