//! Deleting snapshot subvolumes, crash-safely: `<id>` is renamed `rm-<id>` before the
//! deletion, so a crash or a failed deletion leaves a name Cleanup recognises as garbage.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::sys;
use crate::fsutil::{Dirs, remove_all};
use crate::{Error, Result};

/// Attempts per subvolume deletion (a busy subvolume may free up a moment later).
const ATTEMPTS: u32 = 3;

/// Deletes snapshot `id` (already gone from the metastore): renames `<id>` to `rm-<id>`, then
/// deletes it. A leftover `rm-<id>` from an earlier failed attempt is deleted too.
pub fn remove_snapshot(dirs: &Dirs, id: u64) -> Result<()> {
    let path = dirs.path(id);
    let rm = path.with_file_name(format!("rm-{id}"));
    match std::fs::rename(&path, &rm) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(format!("rename {}", path.display()), e)),
    }
    delete_tree(&rm)
}

/// Deletes every entry of the snapshots directory whose name is not a live id.
pub fn cleanup(dirs: &Dirs, live: &HashSet<u64>) -> Result<()> {
    let root = snapshots_root(dirs);
    let ctx = || format!("read {}", root.display());
    let mut first_err = None;
    for entry in std::fs::read_dir(&root).map_err(|e| Error::io(ctx(), e))? {
        let entry = entry.map_err(|e| Error::io(ctx(), e))?;
        let id = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u64>().ok());
        if id.is_some_and(|id| live.contains(&id)) {
            continue;
        }
        tracing::debug!(path = %entry.path().display(), "cleanup deletes an orphan");
        if let Err(e) = delete_tree(&entry.path()) {
            tracing::warn!(error = %e, "cleanup");
            first_err.get_or_insert(e);
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// Deletes `path`, a subvolume or a plain tree (subvolumes inside it first); missing is fine.
pub fn delete_tree(path: &Path) -> Result<()> {
    match sys::is_subvolume(path) {
        Ok(true) => delete_subvolume(path),
        Ok(false) => {
            for nested in nested_subvolumes(path) {
                delete_subvolume(&nested)?;
            }
            remove_all(path)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(format!("stat {}", path.display()), e)),
    }
}

/// Deletes a subvolume, retrying a few times; subvolumes nested in it (e.g. made by a
/// container) are deleted first.
fn delete_subvolume(path: &Path) -> Result<()> {
    let mut last = None;
    for attempt in 0..ATTEMPTS {
        match sys::delete_subvolume(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                for nested in nested_subvolumes(path) {
                    delete_subvolume(&nested)?;
                }
                last = Some(e);
            }
            Err(e) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(50 << attempt));
            }
        }
    }
    let e = last.unwrap_or_else(|| io::Error::other("subvolume deletion failed"));
    Err(Error::io(format!("delete subvolume {}", path.display()), e))
}

/// Subvolumes below `path` (not descending into them).
fn nested_subvolumes(path: &Path) -> Vec<PathBuf> {
    let is_sub = |p: &Path| p != path && sys::is_subvolume(p).unwrap_or(false);
    let mut out = Vec::new();
    let mut it = walkdir::WalkDir::new(path).into_iter();
    while let Some(Ok(entry)) = it.next() {
        if entry.file_type().is_dir() && is_sub(entry.path()) {
            out.push(entry.path().to_path_buf());
            it.skip_current_dir();
        }
    }
    out
}

/// `<dir>/snapshots`, the parent of every snapshot directory.
fn snapshots_root(dirs: &Dirs) -> PathBuf {
    let any = dirs.path(0);
    any.parent().map_or(any.clone(), Path::to_path_buf)
}
