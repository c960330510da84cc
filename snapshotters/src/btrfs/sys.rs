//! The btrfs ioctls the backend needs (`linux/btrfs.h` UAPI), behind safe functions that take
//! paths. This is the only file of the backend that talks to the kernel directly.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::sys::statfs::{BTRFS_SUPER_MAGIC, statfs};

const MAGIC: u8 = 0x94;
const PATH_NAME_MAX: usize = 4087;
const SUBVOL_NAME_MAX: usize = 4039;
const INO_LOOKUP_PATH_MAX: usize = 4080;
/// `BTRFS_SUBVOL_RDONLY`: the subvolume (or snapshot) is read-only.
const SUBVOL_RDONLY: u64 = 1 << 1;
/// `BTRFS_FIRST_FREE_OBJECTID`: the inode number of every subvolume's root directory.
const FIRST_FREE_OBJECTID: u64 = 256;

/// `struct btrfs_ioctl_vol_args`.
#[repr(C)]
struct VolArgs {
    fd: i64,
    name: [u8; PATH_NAME_MAX + 1],
}

/// `struct btrfs_ioctl_vol_args_v2` (the qgroup-inherit union left zero).
#[repr(C)]
struct VolArgsV2 {
    fd: i64,
    transid: u64,
    flags: u64,
    unused: [u64; 4],
    name: [u8; SUBVOL_NAME_MAX + 1],
}

/// `struct btrfs_ioctl_ino_lookup_args`.
#[repr(C)]
struct InoLookupArgs {
    treeid: u64,
    objectid: u64,
    name: [u8; INO_LOOKUP_PATH_MAX],
}

const _: () = assert!(std::mem::size_of::<VolArgs>() == 4096);
const _: () = assert!(std::mem::size_of::<VolArgsV2>() == 4096);
const _: () = assert!(std::mem::size_of::<InoLookupArgs>() == 4096);

nix::ioctl_write_ptr!(ioc_subvol_create, MAGIC, 14, VolArgs);
nix::ioctl_write_ptr!(ioc_snap_destroy, MAGIC, 15, VolArgs);
nix::ioctl_readwrite!(ioc_ino_lookup, MAGIC, 18, InoLookupArgs);
nix::ioctl_write_ptr!(ioc_snap_create_v2, MAGIC, 23, VolArgsV2);
nix::ioctl_read!(ioc_subvol_getflags, MAGIC, 25, u64);
nix::ioctl_write_ptr!(ioc_subvol_setflags, MAGIC, 26, u64);

/// Whether `path` lies on a btrfs filesystem (statfs magic).
pub fn is_btrfs(path: &Path) -> io::Result<bool> {
    Ok(statfs(path)?.filesystem_type() == BTRFS_SUPER_MAGIC)
}

/// Whether `path` is the root directory of a subvolume (inode 256 on btrfs).
pub fn is_subvolume(path: &Path) -> io::Result<bool> {
    let md = std::fs::symlink_metadata(path)?;
    Ok(md.is_dir() && md.ino() == FIRST_FREE_OBJECTID && is_btrfs(path)?)
}

/// `btrfs subvolume create <path>`.
pub fn create_subvolume(path: &Path) -> io::Result<()> {
    let (dir, name) = parent_and_name(path)?;
    let mut args = VolArgs {
        fd: 0,
        name: [0; PATH_NAME_MAX + 1],
    };
    copy_name(&mut args.name, name)?;
    // SAFETY: `dir` is an open directory fd and `args` a fully initialised struct of the size
    // and layout the ioctl number encodes; the kernel only reads it.
    unsafe { ioc_subvol_create(dir.as_raw_fd(), &args) }?;
    Ok(())
}

/// `btrfs subvolume snapshot [-r] <src> <dst>`: `dst` must not exist.
pub fn snapshot(src: &Path, dst: &Path, readonly: bool) -> io::Result<()> {
    let source = File::open(src)?;
    let (dir, name) = parent_and_name(dst)?;
    let mut args = VolArgsV2 {
        fd: i64::from(source.as_raw_fd()),
        transid: 0,
        flags: if readonly { SUBVOL_RDONLY } else { 0 },
        unused: [0; 4],
        name: [0; SUBVOL_NAME_MAX + 1],
    };
    copy_name(&mut args.name, name)?;
    // SAFETY: both fds are open for the duration of the call and `args` is a fully initialised
    // struct of the size and layout the ioctl number encodes; the kernel only reads it.
    unsafe { ioc_snap_create_v2(dir.as_raw_fd(), &args) }?;
    Ok(())
}

/// `btrfs subvolume delete <path>` (also read-only ones; the space is reclaimed in the
/// background by the kernel).
pub fn delete_subvolume(path: &Path) -> io::Result<()> {
    let (dir, name) = parent_and_name(path)?;
    let mut args = VolArgs {
        fd: 0,
        name: [0; PATH_NAME_MAX + 1],
    };
    copy_name(&mut args.name, name)?;
    // SAFETY: `dir` is an open directory fd and `args` a fully initialised struct of the size
    // and layout the ioctl number encodes; the kernel only reads it.
    unsafe { ioc_snap_destroy(dir.as_raw_fd(), &args) }?;
    Ok(())
}

/// The id of the subvolume whose root is `path` (what `subvolid=` mounts).
pub fn subvolume_id(path: &Path) -> io::Result<u64> {
    let dir = File::open(path)?;
    let mut args = InoLookupArgs {
        treeid: 0,
        objectid: FIRST_FREE_OBJECTID,
        name: [0; INO_LOOKUP_PATH_MAX],
    };
    // SAFETY: `dir` is open and `args` is a fully initialised struct of the size and layout
    // the ioctl number encodes; the kernel writes `treeid` and `name` within it.
    unsafe { ioc_ino_lookup(dir.as_raw_fd(), &mut args) }?;
    Ok(args.treeid)
}

/// Sets or clears the read-only flag of the subvolume at `path`.
pub fn set_readonly(path: &Path, readonly: bool) -> io::Result<()> {
    let dir = File::open(path)?;
    let mut flags = 0u64;
    // SAFETY: `dir` is open and `flags` a valid u64 the kernel writes.
    unsafe { ioc_subvol_getflags(dir.as_raw_fd(), &mut flags) }?;
    let new = if readonly {
        flags | SUBVOL_RDONLY
    } else {
        flags & !SUBVOL_RDONLY
    };
    if new != flags {
        // SAFETY: `dir` is open and `new` a valid u64 the kernel only reads.
        unsafe { ioc_subvol_setflags(dir.as_raw_fd(), &new) }?;
    }
    Ok(())
}

/// Whether the subvolume at `path` is read-only.
#[cfg(test)]
pub fn is_readonly(path: &Path) -> io::Result<bool> {
    let dir = File::open(path)?;
    let mut flags = 0u64;
    // SAFETY: `dir` is open and `flags` a valid u64 the kernel writes.
    unsafe { ioc_subvol_getflags(dir.as_raw_fd(), &mut flags) }?;
    Ok(flags & SUBVOL_RDONLY != 0)
}

/// The open parent directory of `path` and `path`'s last component.
fn parent_and_name(path: &Path) -> io::Result<(File, &[u8])> {
    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "path has no file name");
    let name = path.file_name().ok_or_else(invalid)?.as_bytes();
    let parent = path.parent().ok_or_else(invalid)?;
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    Ok((File::open(parent)?, name))
}

/// Copies `name` into a NUL-terminated fixed buffer.
fn copy_name(buf: &mut [u8], name: &[u8]) -> io::Result<()> {
    if name.len() >= buf.len() || name.contains(&0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "subvolume name too long or contains NUL",
        ));
    }
    buf[..name.len()].copy_from_slice(name);
    Ok(())
}

/// The `security.capability` xattr of `path` (not following symlinks), `None` when absent.
pub fn capability(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let cpath = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut buf = [0u8; 256];
    // SAFETY: both strings are NUL-terminated and `buf` is writable for `buf.len()` bytes.
    let n = unsafe {
        libc::lgetxattr(
            cpath.as_ptr(),
            c"security.capability".as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n >= 0 {
        return Ok(Some(buf[..n as usize].to_vec()));
    }
    match io::Error::last_os_error() {
        e if matches!(e.raw_os_error(), Some(libc::ENODATA | libc::ENOTSUP)) => Ok(None),
        e => Err(e),
    }
}
