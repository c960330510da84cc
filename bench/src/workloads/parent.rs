//! Prepare + Commit on top of a big parent (200 MB in 6,000 files by default): what a container
//! start costs on each backend (overlay: a new empty upper dir; native: a full copy of the
//! parent; btrfs: a subvolume snapshot).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use strata_proxy::api::snapshots::{CommitSnapshotRequest, PrepareSnapshotRequest};

use super::content::random_bytes;
use super::mount::{mount_all, unmount};
use super::snapshots::{gc_root, prepare_commit, remove};
use crate::client::Target;

/// Directories the parent's files are spread over.
pub const DIRS: usize = 60;

/// Writes `files` files totalling `bytes` bytes under `root`, in up to [`DIRS`] directories;
/// the content is deterministic (file `i` is seeded with `i`).
pub fn write_tree(root: &Path, bytes: usize, files: usize) -> std::io::Result<()> {
    let files = files.max(1);
    let dirs = DIRS.min(files);
    for d in 0..dirs {
        std::fs::create_dir_all(root.join(format!("d{d:02}")))?;
    }
    let each = bytes / files;
    for i in 0..files {
        let len = if i == files - 1 {
            bytes - each * (files - 1)
        } else {
            each
        };
        let path = root.join(format!("d{:02}/f{i:05}", i % dirs));
        std::fs::write(path, random_bytes(len, i as u64))?;
    }
    Ok(())
}

/// Builds committed snapshot `name` holding the tree (untimed): Prepare, mount the returned
/// mounts on `mountpoint`, write, unmount, sync, Commit.
pub async fn build_parent(
    t: &Target,
    sn: &str,
    name: &str,
    mountpoint: &Path,
    bytes: usize,
    files: usize,
) -> anyhow::Result<()> {
    let key = format!("{name}-active");
    let mounts = t
        .snapshots
        .clone()
        .prepare(t.req(PrepareSnapshotRequest {
            snapshotter: sn.into(),
            key: key.clone(),
            parent: String::new(),
            labels: gc_root(),
        }))
        .await
        .with_context(|| format!("{}: prepare {key}", t.name))?
        .into_inner()
        .mounts;
    let dir: PathBuf = mountpoint.to_path_buf();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        mount_all(&mounts, &dir)?;
        let written = write_tree(&dir, bytes, files).context("writing the parent tree");
        unmount(&dir)?;
        // SAFETY: sync(2) takes no arguments and cannot fail.
        unsafe { libc::sync() };
        written
    })
    .await??;
    t.snapshots
        .clone()
        .commit(t.req(CommitSnapshotRequest {
            snapshotter: sn.into(),
            name: name.into(),
            key: key.clone(),
            labels: gc_root(),
        }))
        .await
        .with_context(|| format!("{}: commit {name}", t.name))?;
    Ok(())
}

/// Ops/s of `ops` timed Prepare(child of `parent`) + Commit pairs; each child is removed after
/// its op (untimed).
pub async fn child_round(
    t: &Target,
    sn: &str,
    parent: &str,
    ops: usize,
    round: usize,
) -> anyhow::Result<f64> {
    let mut timed = Duration::ZERO;
    for i in 0..ops {
        let (key, name) = (
            format!("child-a-{round}-{i}"),
            format!("child-c-{round}-{i}"),
        );
        let start = Instant::now();
        prepare_commit(t, sn, &key, &name, parent).await?;
        timed += start.elapsed();
        remove(t, sn, &name).await?;
    }
    Ok(ops as f64 / timed.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_has_the_requested_files_and_bytes() {
        let dir = tempfile::tempdir().unwrap();
        write_tree(dir.path(), 100_003, 120).unwrap();
        let mut files = 0;
        let mut bytes = 0;
        for d in std::fs::read_dir(dir.path()).unwrap() {
            for f in std::fs::read_dir(d.unwrap().path()).unwrap() {
                files += 1;
                bytes += f.unwrap().metadata().unwrap().len();
            }
        }
        assert_eq!((files, bytes), (120, 100_003));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), DIRS);
        let again = tempfile::tempdir().unwrap();
        write_tree(again.path(), 100_003, 120).unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("d07/f00007")).unwrap(),
            std::fs::read(again.path().join("d07/f00007")).unwrap()
        );
    }
}
