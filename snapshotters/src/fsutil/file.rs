//! Copying one regular file's data: a reflink when the filesystem can, otherwise the data
//! segments only (holes stay holes) with `copy_file_range`, falling back to read/write.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, Ordering};

/// Whether reflinks are worth trying for one tree copy: cleared at the first `FICLONE` that
/// fails because the filesystems cannot clone at all, so later files skip the attempt.
#[derive(Debug)]
pub(crate) struct Reflink(AtomicBool);

impl Default for Reflink {
    fn default() -> Self {
        Reflink(AtomicBool::new(true))
    }
}

impl Reflink {
    /// Clones `src` into `dst` when the filesystem can; false when the data must be copied.
    fn clone_into(&self, src: &File, dst: &File) -> bool {
        if !self.0.load(Ordering::Relaxed) {
            return false;
        }
        // SAFETY: FICLONE takes the source fd as its argument; both fds are open for the call.
        let rc = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
        if rc == 0 {
            return true;
        }
        let unsupported = matches!(
            io::Error::last_os_error().raw_os_error(),
            Some(libc::EOPNOTSUPP | libc::EXDEV | libc::ENOTTY | libc::ENOSYS)
        );
        if unsupported {
            self.0.store(false, Ordering::Relaxed);
        }
        false
    }
}

/// Copies all data of `src` (of `len` bytes) into the empty `dst`: a reflink when `reflink`
/// allows and the filesystem can, otherwise the data segments (holes stay holes).
pub(crate) fn copy_data(src: &File, dst: &File, len: u64, reflink: &Reflink) -> io::Result<()> {
    if len == 0 || reflink.clone_into(src, dst) {
        return Ok(());
    }
    let mut off = 0u64;
    while off < len {
        let Some(start) = seek(src, off, libc::SEEK_DATA)? else {
            break;
        };
        let end = seek(src, start, libc::SEEK_HOLE)?.unwrap_or(len).min(len);
        copy_range(src, dst, start, end)?;
        off = end;
    }
    if off < len {
        // A trailing hole: only the size is left to set.
        dst.set_len(len)?;
    }
    Ok(())
}

/// `lseek(fd, off, whence)`; `None` at ENXIO (no data after `off`).
fn seek(f: &File, off: u64, whence: libc::c_int) -> io::Result<Option<u64>> {
    // SAFETY: lseek on an open fd has no memory-safety requirements.
    let r = unsafe { libc::lseek(f.as_raw_fd(), off as libc::off_t, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENXIO) => Ok(None),
        // No SEEK_DATA support: treat everything from `off` as data.
        Some(libc::EINVAL) if whence == libc::SEEK_DATA => Ok(Some(off)),
        Some(libc::EINVAL) => Ok(None),
        _ => Err(err),
    }
}

/// Copies bytes `[start, end)` to the same offsets in `dst`.
fn copy_range(src: &File, dst: &File, mut start: u64, end: u64) -> io::Result<()> {
    while start < end {
        let mut si = start as libc::loff_t;
        let mut di = start as libc::loff_t;
        let want = (end - start).min(1 << 30) as usize;
        // SAFETY: both fds are open; the offsets point to valid, owned loff_t values.
        let n = unsafe {
            libc::copy_file_range(src.as_raw_fd(), &mut si, dst.as_raw_fd(), &mut di, want, 0)
        };
        match n {
            n if n > 0 => start += n as u64,
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {
                let err = io::Error::last_os_error();
                match err.raw_os_error() {
                    Some(libc::EXDEV | libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP) => {
                        return copy_rw(src, dst, start, end);
                    }
                    Some(libc::EINTR) => {}
                    _ => return Err(err),
                }
            }
        }
    }
    Ok(())
}

fn copy_rw(src: &File, dst: &File, mut start: u64, end: u64) -> io::Result<()> {
    let mut buf = vec![0u8; 1 << 20];
    while start < end {
        let want = ((end - start) as usize).min(buf.len());
        let n = src.read_at(&mut buf[..want], start)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        dst.write_all_at(&buf[..n], start)?;
        start += n as u64;
    }
    Ok(())
}
