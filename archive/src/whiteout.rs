//! Whiteouts (`.wh.<name>`: the lower `<name>` is deleted) and opaque directories
//! (`.wh..wh..opq`: nothing below this directory comes from lower layers), converted to what
//! the target tree uses ([`crate::Whiteouts`]).

use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::os::fd::AsFd;
use std::path::{Component, Path};

use nix::sys::stat::SFlag;

use crate::apply::{Applier, Whiteouts};
use crate::entries::resolve_for_whiteout;
use crate::meta::Meta;
use crate::sys;
use crate::{Error, Result};

/// The opaque marker's name after `.wh.`.
const OPAQUE: &str = ".wh..opq";

impl Applier<'_> {
    /// A whiteout entry in directory `parent` naming `target` (after `.wh.`).
    pub(crate) fn whiteout(&mut self, parent: &Path, target: &str, meta: &Meta) -> Result<()> {
        if target.is_empty() || target == "." || target == ".." || target.contains('/') {
            return Err(Error::Invalid(format!(
                "bad whiteout .wh.{target} in {}",
                parent.display()
            )));
        }
        match (self.opts.whiteouts.clone(), target == OPAQUE) {
            (Whiteouts::Overlay { opaque_xattr }, true) => {
                self.overlay_opaque(parent, &opaque_xattr)
            }
            (Whiteouts::Overlay { .. }, false) => {
                self.overlay_whiteout(parent, OsStr::new(target), meta)
            }
            (Whiteouts::Delete, true) => self.delete_opaque(parent),
            (Whiteouts::Delete, false) => self.delete(parent, OsStr::new(target)),
        }
    }

    fn overlay_whiteout(&mut self, parent: &Path, target: &OsStr, meta: &Meta) -> Result<()> {
        let mut made = Vec::new();
        let dir = self.tree.dir(parent, &mut made)?;
        self.created.extend(made);
        let path = parent.join(target);
        sys::remove_all(dir.as_fd(), target)
            .map_err(|e| Error::io(format!("replacing {}", path.display()), e))?;
        sys::mknod(dir.as_fd(), target, SFlag::S_IFCHR, 0, 0)
            .map_err(|e| Error::io(format!("whiteout {}", path.display()), e))?;
        sys::chown(dir.as_fd(), target, meta.uid, meta.gid)
            .map_err(|e| Error::io(format!("whiteout {}", path.display()), e))?;
        self.created.insert(path);
        Ok(())
    }

    fn overlay_opaque(&mut self, parent: &Path, xattr: &str) -> Result<()> {
        let mut made = Vec::new();
        let dir = self.tree.dir(parent, &mut made)?;
        self.created.extend(made);
        sys::set_xattr(dir.as_fd(), OsStr::new("."), xattr, b"y")
            .map_err(|e| Error::io(format!("marking {} opaque", parent.display()), e))
    }

    fn delete(&mut self, parent: &Path, target: &OsStr) -> Result<()> {
        let Some(dir) = resolve_for_whiteout(self, parent)? else {
            return Ok(());
        };
        sys::remove_all(dir.as_fd(), target)
            .map_err(|e| Error::io(format!("deleting {}", parent.join(target).display()), e))
    }

    /// Removes every child of `parent` that this layer did not create (or create below).
    fn delete_opaque(&mut self, parent: &Path) -> Result<()> {
        let Some(dir) = resolve_for_whiteout(self, parent)? else {
            return Ok(());
        };
        let keep = self.children_created_under(parent);
        let names = sys::read_dir(dir.as_fd())
            .map_err(|e| Error::io(format!("reading {}", parent.display()), e))?;
        for name in names.into_iter().filter(|n| !keep.contains(n)) {
            sys::remove_all(dir.as_fd(), &name)
                .map_err(|e| Error::io(format!("deleting {}", parent.join(&name).display()), e))?;
        }
        Ok(())
    }

    fn children_created_under(&self, parent: &Path) -> HashSet<OsString> {
        let root = parent == Path::new(".");
        self.created
            .iter()
            .filter_map(|p| {
                if root {
                    Some(p.as_path())
                } else {
                    p.strip_prefix(parent).ok()
                }
            })
            .filter_map(|rest| match rest.components().next() {
                Some(Component::Normal(c)) => Some(c.to_os_string()),
                _ => None,
            })
            .collect()
    }
}
