//! What an active snapshot adds to its parent, as containerd's `fs.DiffUsage`: the unique
//! inodes (and their `st_blocks * 512`) of every entry of the upper tree that is new or differs
//! from the parent (continuity's `sameFile`: mode, owner, rdev, file capabilities; for
//! non-directories also size and mtime, and content when both mtimes lack nanoseconds).
//! Deleted entries count nothing. btrfs qgroups are not used (they need quota enabled fs-wide
//! and report asynchronously).
//!
//! Both trees are walked together through directory descriptors ([`crate::fsutil::at`]), one
//! name at a time with `O_NOFOLLOW`: a symlink of either tree (the parent's `etc -> /etc`) is
//! compared as a symlink and never looked through, so Usage never reads outside the snapshots.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::sys;
use crate::fsutil::at;
use crate::{Error, Result, Usage};

/// Usage of `upper` relative to its parent tree `lower` (the roots themselves excluded).
pub fn diff_usage(lower: &Path, upper: &Path) -> Result<Usage> {
    let mut acc = Acc::default();
    at::open_dir(lower)
        .and_then(|low| Ok((low, at::open_dir(upper)?)))
        .and_then(|(low, up)| walk(Some(&low), &up, upper, &mut acc))
        .map_err(|e| Error::io(format!("diff usage of {}", upper.display()), e))?;
    Ok(acc.usage)
}

/// Inodes counted so far.
#[derive(Default)]
struct Acc {
    seen: HashSet<(u64, u64)>,
    usage: Usage,
}

/// Counts what differs in the open directory `upper` (at `path`, for messages) from `lower`,
/// the same directory of the parent (`None`: absent or not a directory there).
fn walk(lower: Option<&File>, upper: &File, path: &Path, acc: &mut Acc) -> io::Result<()> {
    for name in at::names(upper)? {
        let here = path.join(&name);
        let ctx = |e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", here.display()));
        let up = at::lstat_at(upper, &name).map_err(ctx)?;
        let low = match lower {
            Some(l) => at::lstat_at_opt(l, &name).map_err(ctx)?.map(|md| (l, md)),
            None => None,
        };
        let differs = match &low {
            Some((l, md)) => changed(l, upper, &name, md, &up).map_err(ctx)?,
            None => true,
        };
        if differs && acc.seen.insert((up.dev(), up.ino())) {
            acc.usage.inodes += 1;
            acc.usage.size += up.blocks() as i64 * 512;
        }
        if up.is_dir() {
            let sub = at::open_dir_at(upper, &name).map_err(ctx)?;
            let lsub = match &low {
                Some((l, md)) if md.is_dir() => Some(at::open_dir_at(l, &name).map_err(ctx)?),
                _ => None,
            };
            walk(lsub.as_ref(), &sub, &here, acc)?;
        }
    }
    Ok(())
}

/// Whether entry `name` of `upper` (metadata `up`) differs from the same entry of `lower`
/// (metadata `low`).
fn changed(
    lower: &File,
    upper: &File,
    name: &OsStr,
    low: &Metadata,
    up: &Metadata,
) -> io::Result<bool> {
    let stat = |m: &Metadata| (m.mode(), m.uid(), m.gid(), m.rdev());
    if stat(low) != stat(up) {
        return Ok(true);
    }
    let cap = |dir: &File| sys::capability(&at::proc_path(dir, name));
    if cap(lower)? != cap(upper)? {
        return Ok(true);
    }
    if up.is_dir() {
        return Ok(false);
    }
    if low.size() != up.size() || low.mtime() != up.mtime() {
        return Ok(true);
    }
    match (low.mtime_nsec(), up.mtime_nsec()) {
        (0, 0) if up.is_symlink() => {
            Ok(at::read_link_at(lower, name)? != at::read_link_at(upper, name)?)
        }
        (0, 0) if up.size() == 0 || !up.is_file() => Ok(false),
        (0, 0) => Ok(!same_content(
            at::open_file_at(lower, name, low)?,
            at::open_file_at(upper, name, up)?,
        )?),
        (a, b) => Ok(a != b),
    }
}

fn same_content(mut fa: File, mut fb: File) -> io::Result<bool> {
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
        let u = diff_usage(&lower, &upper).unwrap();
        assert_eq!(u.inodes, 2, "a (now a directory) and a/f: {u:?}");
    }

    /// Regression: an absolute symlink of the parent (`etc -> <host>/etc`) that the child
    /// replaced by a directory made Usage stat and read the host's files through it (here the
    /// host file is identical, so the child's file was wrongly counted as unchanged).
    #[test]
    fn never_looks_through_a_symlink_of_the_parent() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let (lower, upper, host) = (
            d.path().join("lower"),
            d.path().join("upper"),
            d.path().join("host/etc"),
        );
        for dir in [&lower, &upper.join("etc"), &host] {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::os::unix::fs::symlink(&host, lower.join("etc")).unwrap();
        let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        for f in [host.join("passwd"), upper.join("etc/passwd")] {
            std::fs::write(&f, b"root:x:0:0::/root:/bin/sh").unwrap();
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
            std::fs::File::options()
                .write(true)
                .open(&f)
                .unwrap()
                .set_modified(when)
                .unwrap();
        }
        let u = diff_usage(&lower, &upper).unwrap();
        assert_eq!(u.inodes, 2, "etc and etc/passwd are both new: {u:?}");
    }
}
