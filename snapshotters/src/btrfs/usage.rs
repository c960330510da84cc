//! What an active snapshot adds to its parent, as containerd's `fs.DiffUsage`: the unique
//! inodes (and their `st_blocks * 512`) of every entry of the upper tree that is new or differs
//! from the parent (continuity's `sameFile`: mode, owner, rdev, file capabilities; for
//! non-directories also size and mtime, and content when both mtimes lack nanoseconds).
//! Deleted entries count nothing. Computed by walking the upper tree and `lstat`ing the same
//! path in the parent; btrfs qgroups are not used (they need quota enabled fs-wide and report
//! asynchronously).

use std::collections::HashSet;
use std::fs::Metadata;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::sys;
use crate::{Error, Result, Usage};

/// Usage of `upper` relative to its parent tree `lower` (the roots themselves excluded).
pub fn diff_usage(lower: &Path, upper: &Path) -> Result<Usage> {
    let mut seen = HashSet::new();
    let mut usage = Usage::default();
    for entry in walkdir::WalkDir::new(upper).min_depth(1) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(upper).display().to_string();
            Error::io(format!("diff usage of {path}"), e.into())
        })?;
        let md = entry
            .metadata()
            .map_err(|e| Error::io(format!("lstat {}", entry.path().display()), e.into()))?;
        let rel = entry.path().strip_prefix(upper).unwrap_or(entry.path());
        let other = lower.join(rel);
        let differs = changed(&other, entry.path(), &md)
            .map_err(|e| Error::io(format!("compare {}", entry.path().display()), e))?;
        if differs && seen.insert((md.dev(), md.ino())) {
            usage.inodes += 1;
            usage.size += md.blocks() as i64 * 512;
        }
    }
    Ok(usage)
}

/// Whether `upper` (with metadata `up`) is new or differs from `lower`.
fn changed(lower: &Path, upper: &Path, up: &Metadata) -> io::Result<bool> {
    let low = match std::fs::symlink_metadata(lower) {
        Ok(md) => md,
        // ENOTDIR: a parent path component is a file in the lower layer (file replaced by a dir).
        Err(e)
            if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR) =>
        {
            return Ok(true);
        }
        Err(e) => return Err(e),
    };
    let stat = |m: &Metadata| (m.mode(), m.uid(), m.gid(), m.rdev());
    if stat(&low) != stat(up) || sys::capability(lower)? != sys::capability(upper)? {
        return Ok(true);
    }
    if up.is_dir() {
        return Ok(false);
    }
    if low.size() != up.size() || low.mtime() != up.mtime() {
        return Ok(true);
    }
    match (low.mtime_nsec(), up.mtime_nsec()) {
        (0, 0) if up.is_symlink() => Ok(std::fs::read_link(lower)? != std::fs::read_link(upper)?),
        (0, 0) if up.size() == 0 => Ok(false),
        (0, 0) => Ok(!same_content(lower, upper)?),
        (a, b) => Ok(a != b),
    }
}

fn same_content(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression: a lower-layer file replaced by a directory made Commit fail with ENOTDIR
    /// (found by the containerd integration test).
    #[test]
    fn a_path_below_a_lower_file_counts_as_new() {
        let d = tempfile::tempdir().unwrap();
        let (lower, upper) = (d.path().join("lower"), d.path().join("upper"));
        std::fs::create_dir_all(&lower).unwrap();
        std::fs::write(lower.join("a"), "f").unwrap();
        std::fs::create_dir_all(upper.join("a")).unwrap();
        std::fs::write(upper.join("a/f"), "g").unwrap();
        let up = std::fs::symlink_metadata(upper.join("a/f")).unwrap();
        assert!(changed(&lower.join("a/f"), &upper.join("a/f"), &up).unwrap());
    }
}
