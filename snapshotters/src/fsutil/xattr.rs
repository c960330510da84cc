//! Copying extended attributes of one path (not following symlinks).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Names of the extended attributes of `path`.
fn list(path: &CString) -> io::Result<Vec<CString>> {
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: `path` is a valid C string; `buf` is writable for `buf.len()` bytes.
        let n = unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if n >= 0 {
            buf.truncate(n as usize);
            break;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(err),
        }
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| CString::new(n).expect("split on NUL"))
        .collect())
}

/// The value of attribute `name` of `path`.
fn get(path: &CString, name: &CString) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: valid C strings; `buf` is writable for `buf.len()` bytes.
        let n = unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
        buf.resize(buf.len() * 4, 0);
    }
}

fn set(path: &CString, name: &CString, value: &[u8]) -> io::Result<()> {
    // SAFETY: valid C strings; `value` is readable for `value.len()` bytes.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
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

/// Copies every extended attribute of `src` to `dst`. Failures to copy `security.*`
/// attributes (EPERM, ENOTSUP) are ignored, as containerd does.
pub(crate) fn copy_xattrs(src: &Path, dst: &Path) -> io::Result<()> {
    let (s, d) = (cpath(src)?, cpath(dst)?);
    for name in list(&s)? {
        let value = match get(&s, &name) {
            Ok(v) => v,
            Err(e) if e.raw_os_error() == Some(libc::ENODATA) => continue,
            Err(e) => return Err(e),
        };
        if let Err(e) = set(&d, &name, &value) {
            let security = name.as_bytes().starts_with(b"security.");
            let ignorable = matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOTSUP));
            if !(security && ignorable) {
                return Err(e);
            }
        }
    }
    Ok(())
}
