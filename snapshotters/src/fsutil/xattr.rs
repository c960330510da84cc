//! Reading and writing extended attributes of one file, through an open descriptor or a path
//! (the path is never followed when it is a symlink).

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The attributes of one file: (name, value) pairs.
pub(crate) type Xattrs = Vec<(CString, Vec<u8>)>;

/// Where attributes are read or written: an open descriptor (`f*xattr`) or a path whose last
/// component is not followed (`l*xattr`).
#[derive(Clone, Copy)]
pub(crate) enum Node<'a> {
    /// An open descriptor (not `O_PATH`).
    Fd(RawFd),
    /// A path, never followed at its last component.
    Path(&'a CStr),
}

impl Node<'_> {
    fn list(self, buf: &mut [u8]) -> isize {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: `buf` is writable for `len` bytes; the path is a valid C string.
        unsafe {
            match self {
                Node::Fd(fd) => libc::flistxattr(fd, ptr, len),
                Node::Path(p) => libc::llistxattr(p.as_ptr(), ptr, len),
            }
        }
    }

    fn get(self, name: &CStr, buf: &mut [u8]) -> isize {
        let (ptr, len) = (buf.as_mut_ptr().cast(), buf.len());
        // SAFETY: valid C strings; `buf` is writable for `len` bytes.
        unsafe {
            match self {
                Node::Fd(fd) => libc::fgetxattr(fd, name.as_ptr(), ptr, len),
                Node::Path(p) => libc::lgetxattr(p.as_ptr(), name.as_ptr(), ptr, len),
            }
        }
    }

    fn set(self, name: &CStr, value: &[u8]) -> io::Result<()> {
        let (ptr, len) = (value.as_ptr().cast(), value.len());
        // SAFETY: valid C strings; `value` is readable for `len` bytes.
        let rc = unsafe {
            match self {
                Node::Fd(fd) => libc::fsetxattr(fd, name.as_ptr(), ptr, len, 0),
                Node::Path(p) => libc::lsetxattr(p.as_ptr(), name.as_ptr(), ptr, len, 0),
            }
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

/// `path` as a C string for [`Node::Path`].
pub(crate) fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Names of the extended attributes of `node`.
fn list(node: Node<'_>) -> io::Result<Vec<CString>> {
    let mut buf = vec![0u8; 1024];
    loop {
        let n = node.list(&mut buf);
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

/// The value of attribute `name` of `node`; `None` when it went away since it was listed.
fn get(node: Node<'_>, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; 256];
    loop {
        let n = node.get(name, &mut buf);
        if n >= 0 {
            buf.truncate(n as usize);
            return Ok(Some(buf));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) => buf.resize(buf.len() * 4, 0),
            Some(libc::ENODATA) => return Ok(None),
            _ => return Err(err),
        }
    }
}

/// Every extended attribute of `node`.
pub(crate) fn read(node: Node<'_>) -> io::Result<Xattrs> {
    let mut out = Vec::new();
    for name in list(node)? {
        if let Some(value) = get(node, &name)? {
            out.push((name, value));
        }
    }
    Ok(out)
}

/// Sets `attrs` on `node`. Failures to set `security.*` attributes (EPERM, ENOTSUP) are
/// ignored, as containerd does.
pub(crate) fn write(node: Node<'_>, attrs: &[(CString, Vec<u8>)]) -> io::Result<()> {
    for (name, value) in attrs {
        if let Err(e) = node.set(name, value) {
            let security = name.as_bytes().starts_with(b"security.");
            let ignorable = matches!(e.raw_os_error(), Some(libc::EPERM | libc::ENOTSUP));
            if !(security && ignorable) {
                return Err(e);
            }
        }
    }
    Ok(())
}
