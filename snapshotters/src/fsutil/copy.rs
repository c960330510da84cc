//! A faithful recursive copy (containerd's `fs.CopyDir`): owners, modes, timestamps (set on
//! directories after their children), xattrs, hard links, symlinks, devices, fifos, sockets
//! and sparse files.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::file::copy_data;
use super::xattr::copy_xattrs;
use crate::{Error, Result};

/// Paths already copied, by source (dev, ino), to recreate hard links.
type Inodes = HashMap<(u64, u64), PathBuf>;

/// Copies the contents and attributes of directory `src` into the existing directory `dst`.
pub fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    let mut inodes = Inodes::new();
    copy_tree(src, dst, &mut inodes)
        .map_err(|e| Error::io(format!("copy {} to {}", src.display(), dst.display()), e))
}

fn copy_tree(src: &Path, dst: &Path, inodes: &mut Inodes) -> io::Result<()> {
    for entry in fs::read_dir(src)? {
        let entry = entry?;
        let s = entry.path();
        let md = fs::symlink_metadata(&s)?;
        copy_entry(&s, &dst.join(entry.file_name()), &md, inodes)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", s.display())))?;
    }
    copy_metadata(dst, &fs::symlink_metadata(src)?, src)
}

fn copy_entry(src: &Path, dst: &Path, md: &Metadata, inodes: &mut Inodes) -> io::Result<()> {
    let ft = md.file_type();
    if ft.is_dir() {
        fs::create_dir(dst)?;
        return copy_tree(src, dst, inodes);
    }
    if md.nlink() > 1 {
        if let Some(first) = inodes.get(&(md.dev(), md.ino())) {
            return fs::hard_link(first, dst);
        }
        inodes.insert((md.dev(), md.ino()), dst.to_path_buf());
    }
    if ft.is_file() {
        copy_file(src, dst, md.len())?;
    } else if ft.is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)?;
    } else {
        mknod(dst, md.mode(), md.rdev())?;
    }
    copy_metadata(dst, md, src)
}

fn copy_file(src: &Path, dst: &Path, len: u64) -> io::Result<()> {
    let s = File::open(src)?;
    let d = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)?;
    copy_data(&s, &d, len)
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

    fn md(p: &Path) -> Metadata {
        fs::symlink_metadata(p).unwrap()
    }
}
