//! The tree a layer is applied to: its root and, for an overlay upper directory, the lower
//! layers below it (topmost first). Every path is resolved from a directory descriptor with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so the kernel guarantees that nothing
//! outside the tree is ever reached: a component that is a symlink or `..` is an error, not
//! followed.

use std::ffi::OsStr;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use crate::name::split;
use crate::sys;
use crate::{Error, Result};

pub(crate) struct Tree {
    root: OwnedFd,
    lower: Vec<OwnedFd>,
    /// Lower layers exist but were not given (`Options::lower_unknown`).
    lower_unknown: bool,
    path: PathBuf,
}

/// Why resolving `rel` failed, as a layer error.
pub(crate) fn resolve_error(rel: &Path, e: io::Error) -> Error {
    let shown = rel.display();
    match e.raw_os_error() {
        Some(libc::ELOOP) => Error::Invalid(format!("{shown}: a path component is a symlink")),
        Some(libc::EXDEV) => Error::Invalid(format!("{shown}: escapes the layer's root")),
        Some(libc::ENOTDIR) => Error::Invalid(format!("{shown}: a parent is not a directory")),
        _ => Error::io(format!("resolving {shown}"), e),
    }
}

/// Why `dir/name` (`rel`) cannot be entered: a symlink or a non-directory in the way.
fn in_the_way(dir: BorrowedFd<'_>, name: &OsStr, rel: &Path, e: io::Error) -> Error {
    match sys::lstat(dir, name) {
        Ok(Some(st)) if st.st_mode & libc::S_IFMT == libc::S_IFLNK => Error::Invalid(format!(
            "{} is a symlink: a layer may not write through one",
            rel.display()
        )),
        Ok(Some(_)) => Error::Invalid(format!("{} is not a directory", rel.display())),
        _ => resolve_error(rel, e),
    }
}

impl Tree {
    pub fn open(root: &Path, lower: &[PathBuf], lower_unknown: bool) -> Result<Tree> {
        let open = |p: &Path| {
            sys::open_root(p).map_err(|e| Error::io(format!("opening {}", p.display()), e))
        };
        Ok(Tree {
            root: open(root)?,
            lower: lower.iter().map(|p| open(p)).collect::<Result<_>>()?,
            lower_unknown,
            path: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> BorrowedFd<'_> {
        self.root.as_fd()
    }

    pub fn has_lower(&self) -> bool {
        !self.lower.is_empty() || self.lower_unknown
    }

    /// The existing directory `rel`, or `None` when it is missing.
    pub fn existing_dir(&self, rel: &Path) -> Result<Option<OwnedFd>> {
        match sys::open_dir(self.root(), rel) {
            Ok(fd) => Ok(Some(fd)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(resolve_error(rel, e)),
        }
    }

    /// The directory `rel`, creating missing components: with the attributes of the same
    /// directory in the topmost lower layer that has it, else root-owned 0755 (containerd's
    /// `mkparent`). `created` gets every directory made.
    pub fn dir(&self, rel: &Path, created: &mut Vec<PathBuf>) -> Result<OwnedFd> {
        match sys::open_dir(self.root(), rel) {
            Ok(fd) => return Ok(fd),
            // Walk the components to create what is missing or name what is in the way.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOENT | libc::ENOTDIR | libc::ELOOP)
                ) => {}
            Err(e) => return Err(resolve_error(rel, e)),
        }
        let mut cur =
            sys::open_dir(self.root(), Path::new(".")).map_err(|e| resolve_error(rel, e))?;
        let mut sofar = PathBuf::new();
        for comp in rel.components() {
            sofar.push(comp);
            let name = comp.as_os_str();
            cur = match sys::open_dir(cur.as_fd(), Path::new(name)) {
                Ok(fd) => fd,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.make_parent(cur.as_fd(), name, &sofar)?;
                    created.push(sofar.clone());
                    sys::open_dir(cur.as_fd(), Path::new(name))
                        .map_err(|e| resolve_error(&sofar, e))?
                }
                Err(e) => return Err(in_the_way(cur.as_fd(), name, &sofar, e)),
            };
        }
        Ok(cur)
    }

    /// Creates missing parent `rel`. Under an overlay upper directory the merged view must not
    /// change what a lower layer has there: a lower symlink or file in the way is an error, as
    /// it is when the tree is a full copy.
    fn make_parent(&self, dir: BorrowedFd<'_>, name: &OsStr, rel: &Path) -> Result<()> {
        let ctx = || {
            format!(
                "creating directory {} in {}",
                rel.display(),
                self.path.display()
            )
        };
        let lower = self.lower_entry(rel)?;
        if let Some((_, st)) = &lower {
            match st.st_mode & libc::S_IFMT {
                libc::S_IFDIR => {}
                libc::S_IFLNK => {
                    return Err(Error::Invalid(format!(
                        "{} is a symlink in a lower layer: a layer may not write through one",
                        rel.display()
                    )));
                }
                _ => {
                    return Err(Error::Invalid(format!(
                        "{} is not a directory in a lower layer",
                        rel.display()
                    )));
                }
            }
        }
        sys::mkdir(dir, name, 0o755).map_err(|e| Error::io(ctx(), e))?;
        match lower {
            Some((lower_dir, st)) => {
                copy_attrs(lower_dir.as_fd(), name, &st, dir, name).map_err(|e| Error::io(ctx(), e))
            }
            None => Ok(()),
        }
    }

    /// `rel` in the topmost lower layer that has it: the descriptor of its parent there and its
    /// stat. A lower path through a symlink does not count (overlay would not merge it).
    pub fn lower_entry(&self, rel: &Path) -> Result<Option<(OwnedFd, libc::stat)>> {
        if self.lower_unknown {
            return Err(Error::Unsupported(format!(
                "{} needs the lower layers, which are not given",
                rel.display()
            )));
        }
        let (parent, base) = split(rel);
        for lower in &self.lower {
            let dir = match sys::open_dir(lower.as_fd(), &parent) {
                Ok(fd) => fd,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT | libc::ELOOP | libc::ENOTDIR)
                    ) =>
                {
                    continue;
                }
                Err(e) => {
                    return Err(Error::io(
                        format!("resolving {} in a lower layer", rel.display()),
                        e,
                    ));
                }
            };
            let st = sys::lstat(dir.as_fd(), base)
                .map_err(|e| Error::io(format!("stat {}", rel.display()), e))?;
            if let Some(st) = st {
                return Ok(Some((dir, st)));
            }
        }
        Ok(None)
    }
}

/// Owner, mode, extended attributes (not overlay's own) and times of `from_dir/from` onto
/// `to_dir/to`.
pub(crate) fn copy_attrs(
    from_dir: BorrowedFd<'_>,
    from: &OsStr,
    st: &libc::stat,
    to_dir: BorrowedFd<'_>,
    to: &OsStr,
) -> io::Result<()> {
    sys::chown(to_dir, to, st.st_uid, st.st_gid)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFLNK {
        sys::chmod(to_dir, to, st.st_mode & 0o7777)?;
    }
    for (k, v) in sys::xattrs(from_dir, from)? {
        if !k.starts_with("trusted.overlay.") && !k.starts_with("user.overlay.") {
            sys::set_xattr(to_dir, to, &k, &v)?;
        }
    }
    let t = |s: i64, n: i64| sys::Time {
        secs: s,
        nanos: n as u32,
    };
    sys::set_times(
        to_dir,
        to,
        t(st.st_atime, st.st_atime_nsec),
        t(st.st_mtime, st.st_mtime_nsec),
    )
}
