//! Smoke tests of the native backend (root: they mount).

use std::fs;

use strata_core::labels::Labels;

use super::*;
use crate::mount::{mount_all, unmount_all};
use crate::{Error, Snapshotter};

const V: &str = "test";

#[tokio::test]
async fn prepare_mount_commit_view() {
    let d = tempfile::tempdir().unwrap();
    let sn = Native::open(d.path()).unwrap();
    let mnt = d.path().join("mnt");
    fs::create_dir(&mnt).unwrap();

    let m = sn.prepare(V, "extract 1", "", Labels::new()).await.unwrap();
    assert_eq!(m[0].options, ["rbind", "rw"]);
    mount_all(&m, &mnt).unwrap();
    fs::write(mnt.join("a"), b"hello").unwrap();
    unmount_all(&mnt).unwrap();
    sn.commit(V, "sha256:base", "extract 1", Labels::new())
        .await
        .unwrap();
    assert!(sn.usage(V, "sha256:base").await.unwrap().inodes >= 2);

    let m = sn
        .prepare(V, "extract/2", "sha256:base", Labels::new())
        .await
        .unwrap();
    mount_all(&m, &mnt).unwrap();
    assert_eq!(fs::read(mnt.join("a")).unwrap(), b"hello");
    fs::write(mnt.join("b"), b"world").unwrap();
    unmount_all(&mnt).unwrap();
    sn.commit(V, "top", "extract/2", Labels::new())
        .await
        .unwrap();

    let m = sn.view(V, "v", "top", Labels::new()).await.unwrap();
    assert_eq!(m[0].options, ["rbind", "ro"]);
    mount_all(&m, &mnt).unwrap();
    assert_eq!(fs::read(mnt.join("b")).unwrap(), b"world");
    let err = fs::write(mnt.join("c"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    unmount_all(&mnt).unwrap();

    let err = sn.commit(V, "x", "v", Labels::new()).await.unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
    let err = sn.mounts(V, "top").await.unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
    let err = sn.remove(V, "sha256:base").await.unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
    for key in ["v", "top", "sha256:base"] {
        sn.remove(V, key).await.unwrap();
    }
    sn.cleanup().await.unwrap();
    let left = fs::read_dir(d.path().join("snapshots/native/snapshots"))
        .unwrap()
        .count();
    assert_eq!(left, 0);
    sn.close().await.unwrap();
    sn.close().await.unwrap();
}

#[tokio::test]
async fn cleanup_removes_orphans_only() {
    let d = tempfile::tempdir().unwrap();
    let sn = Native::open(d.path()).unwrap();
    sn.prepare(V, "a", "", Labels::new()).await.unwrap();
    let root = d.path().join("snapshots/native/snapshots");
    for orphan in ["new-123", "rm-7", "99"] {
        fs::create_dir(root.join(orphan)).unwrap();
    }
    sn.cleanup().await.unwrap();
    let names: Vec<_> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["1"]);
}

#[tokio::test]
async fn empty_and_oversized_keys_are_invalid_argument() {
    let d = tempfile::tempdir().unwrap();
    let sn = Native::open(d.path()).unwrap();
    let long = "k".repeat(32 * 1024 + 1);
    for key in ["", long.as_str()] {
        let err = sn.prepare(V, key, "", Labels::new()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        let err = sn.view(V, key, "", Labels::new()).await.unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    }
    sn.prepare(V, "a", "", Labels::new()).await.unwrap();
    let err = sn.commit(V, "", "a", Labels::new()).await.unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    assert!(matches!(sn.stat(V, "").await, Err(Error::NotFound(_))));
    assert_eq!(sn.list(V, &[]).await.unwrap().len(), 1);
}

static SYNCS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn counting_sync(path: &std::path::Path) -> std::io::Result<()> {
    SYNCS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    crate::fsutil::syncfs(path)
}

fn failing_sync(_: &std::path::Path) -> std::io::Result<()> {
    Err(std::io::Error::from_raw_os_error(libc::EIO))
}

fn open_with_sync(root: &Path, syncfs: fn(&Path) -> std::io::Result<()>) -> Native {
    let meta = crate::Metadata::open(&root.join("db")).unwrap();
    let dir = root.join("snapshots").join(NAME);
    Native::with_layout(&meta, NAME, &dir, NativeLayout { syncfs }).unwrap()
}

/// Regression: Prepare fsynced only the directory entry, so a power loss could leave an
/// active snapshot with truncated files; the copy is now synced with its name by one syncfs
/// (and no directory fsync besides; an empty copy gets the plain install's fsync).
#[tokio::test]
async fn prepare_syncs_the_copy_once() {
    let d = tempfile::tempdir().unwrap();
    let sn = open_with_sync(d.path(), counting_sync);
    sn.prepare(V, "a", "", Labels::new()).await.unwrap();
    fs::write(d.path().join("snapshots/native/snapshots/1/f"), b"data").unwrap();
    sn.commit(V, "p", "a", Labels::new()).await.unwrap();
    let before = SYNCS.load(std::sync::atomic::Ordering::SeqCst);
    sn.prepare(V, "c", "p", Labels::new()).await.unwrap();
    assert_eq!(SYNCS.load(std::sync::atomic::Ordering::SeqCst), before + 1);
}

/// A failing sync fails Prepare before its record is written, and leaves no directory.
#[tokio::test]
async fn a_failed_sync_fails_prepare_and_leaves_no_record() {
    let d = tempfile::tempdir().unwrap();
    let sn = open_with_sync(d.path(), failing_sync);
    sn.prepare(V, "a", "", Labels::new()).await.unwrap();
    fs::write(d.path().join("snapshots/native/snapshots/1/f"), b"data").unwrap();
    sn.commit(V, "p", "a", Labels::new()).await.unwrap();
    let err = sn.prepare(V, "c", "p", Labels::new()).await.unwrap_err();
    match &err {
        Error::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(libc::EIO), "{err}"),
        other => panic!("expected the sync's error, got {other:?}"),
    }
    assert!(matches!(sn.stat(V, "c").await, Err(Error::NotFound(_))));
    let names: Vec<_> = fs::read_dir(d.path().join("snapshots/native/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["1"], "only the parent's directory");
}
