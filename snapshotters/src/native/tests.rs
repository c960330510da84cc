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
