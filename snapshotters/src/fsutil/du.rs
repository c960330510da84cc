//! Disk usage as containerd's `fs.DiskUsage`: unique inodes, `st_blocks * 512`.

use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::{Error, Result, Usage};

/// Usage of the tree at `root` (root included), counting each hard-linked inode once.
pub fn disk_usage(root: &Path) -> Result<Usage> {
    let mut seen = HashSet::new();
    let mut usage = Usage::default();
    for entry in walkdir::WalkDir::new(root) {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(root).display().to_string();
            Error::io(format!("disk usage of {path}"), e.into())
        })?;
        let md = entry
            .metadata()
            .map_err(|e| Error::io(format!("lstat {}", entry.path().display()), e.into()))?;
        if seen.insert((md.dev(), md.ino())) {
            usage.inodes += 1;
            usage.size += md.blocks() as i64 * 512;
        }
    }
    Ok(usage)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hardlinks_once() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), vec![1u8; 10000]).unwrap();
        let one = disk_usage(d.path()).unwrap();
        std::fs::hard_link(d.path().join("a"), d.path().join("b")).unwrap();
        let two = disk_usage(d.path()).unwrap();
        assert_eq!(one.inodes, 2);
        assert_eq!(one, two);
        assert!(one.size >= 10000);
    }
}
