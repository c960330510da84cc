//! The block device a btrfs directory lives on (what `btrfs` mounts name as their source),
//! from `/proc/self/mountinfo`: the source of the deepest mount containing the directory.

use std::path::{Path, PathBuf};

use crate::fsutil::unescape_mountinfo;
use crate::{Error, Result};

/// The mount source (e.g. `/dev/loop0`) of the btrfs mount holding `dir`.
pub fn device_of(dir: &Path) -> Result<String> {
    let dir = dir
        .canonicalize()
        .map_err(|e| Error::io(format!("resolve {}", dir.display()), e))?;
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| Error::io("read /proc/self/mountinfo", e))?;
    let mut best: Option<(PathBuf, String)> = None;
    for (point, fstype, source) in info.lines().filter_map(parse_line) {
        let deeper = best.as_ref().is_none_or(|(b, _)| point.starts_with(b));
        if dir.starts_with(&point) && deeper {
            best = Some((
                point,
                if fstype == "btrfs" {
                    source
                } else {
                    String::new()
                },
            ));
        }
    }
    match best {
        Some((_, source)) if !source.is_empty() => Ok(source),
        _ => Err(Error::FailedPrecondition(format!(
            "no btrfs mount holds {}",
            dir.display()
        ))),
    }
}

/// `(mount point, fstype, source)` of one mountinfo line.
fn parse_line(line: &str) -> Option<(PathBuf, String, String)> {
    let (left, right) = line.split_once(" - ")?;
    let point = left.split(' ').nth(4)?;
    let mut right = right.split(' ');
    let fstype = right.next()?.to_string();
    let source = unescape_mountinfo(right.next()?);
    Some((PathBuf::from(unescape_mountinfo(point)), fstype, source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_btrfs_line() {
        let l = "43 27 0:39 / /var/tmp/a\\040b rw,relatime - btrfs /dev/loop0 rw,subvolid=5";
        let (p, t, s) = parse_line(l).unwrap();
        assert_eq!(p, PathBuf::from("/var/tmp/a b"));
        assert_eq!((t.as_str(), s.as_str()), ("btrfs", "/dev/loop0"));
    }
}
