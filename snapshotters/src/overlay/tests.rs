//! Smoke tests of the overlay backend (root: they mount).

use std::fs;
use std::path::PathBuf;

use strata_core::labels::Labels;

use super::*;
use crate::mount::{mount_all, unmount_all};
use crate::{Error, Snapshotter};

const V: &str = "test";

#[tokio::test]
async fn prepare_mount_commit_view() {
    let d = tempfile::tempdir().unwrap();
    let sn = Overlay::open(d.path()).unwrap();
    let mnt = d.path().join("mnt");
    fs::create_dir(&mnt).unwrap();

    let m = sn.prepare(V, "extract 1", "", Labels::new()).await.unwrap();
    assert_eq!(
        (m[0].kind.as_str(), m[0].options.clone()),
        ("bind", vec!["rw".to_string(), "rbind".into()])
    );
    mount_all(&m, &mnt).unwrap();
    fs::create_dir(mnt.join("d")).unwrap();
    fs::write(mnt.join("d/a"), b"hello").unwrap();
    unmount_all(&mnt).unwrap();
    sn.commit(V, "base", "extract 1", Labels::new())
        .await
        .unwrap();
    let recorded = sn.usage(V, "base").await.unwrap();
    assert!(recorded.inodes >= 3, "{recorded:?}");

    let m = sn
        .prepare(V, "extract/2", "base", Labels::new())
        .await
        .unwrap();
    assert_eq!(m[0].kind, "overlay");
    mount_all(&m, &mnt).unwrap();
    assert_eq!(fs::read(mnt.join("d/a")).unwrap(), b"hello");
    fs::remove_file(mnt.join("d/a")).unwrap();
    fs::write(mnt.join("b"), b"world").unwrap();
    unmount_all(&mnt).unwrap();
    assert!(sn.usage(V, "extract/2").await.unwrap().inodes >= 3);
    sn.commit(V, "top", "extract/2", Labels::new())
        .await
        .unwrap();

    let m = sn.view(V, "v", "top", Labels::new()).await.unwrap();
    assert_eq!(
        m[0].kind, "overlay",
        "a view of two layers is a read-only overlay"
    );
    mount_all(&m, &mnt).unwrap();
    assert_eq!(fs::read(mnt.join("b")).unwrap(), b"world");
    assert!(!mnt.join("d/a").exists(), "whiteout hides the lower file");
    let err = fs::write(mnt.join("c"), b"x").unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    unmount_all(&mnt).unwrap();

    let err = sn.commit(V, "x", "v", Labels::new()).await.unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
    assert!(matches!(
        sn.remove(V, "base").await,
        Err(Error::FailedPrecondition(_))
    ));
    for key in ["v", "top", "base"] {
        sn.remove(V, key).await.unwrap();
    }
    sn.cleanup().await.unwrap();
    assert_eq!(
        fs::read_dir(d.path().join("snapshots/overlay/snapshots"))
            .unwrap()
            .count(),
        0
    );
}

#[tokio::test]
async fn root_is_0755_and_work_is_active_only() {
    let d = tempfile::tempdir().unwrap();
    let sn = Overlay::open(d.path()).unwrap();
    let m = sn.prepare(V, "a", "", Labels::new()).await.unwrap();
    let fs_dir = PathBuf::from(&m[0].source);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&fs_dir).unwrap().permissions().mode() & 0o7777,
        0o755
    );
    let work = fs_dir.parent().unwrap().join("work");
    assert_eq!(
        fs::metadata(&work).unwrap().permissions().mode() & 0o7777,
        0o711
    );
    let m = sn.view(V, "v", "", Labels::new()).await.unwrap();
    assert!(
        !PathBuf::from(&m[0].source)
            .parent()
            .unwrap()
            .join("work")
            .exists()
    );
}

/// 128 layers: the view's lowerdir list is longer than a page and must be compacted.
#[tokio::test]
async fn layers_128_mount() {
    let d = tempfile::tempdir().unwrap();
    let sn = Overlay::open(d.path()).unwrap();
    let mut parent = String::new();
    for i in 0..128 {
        let key = format!("prepare-layer-{i}");
        let m = sn.prepare(V, &key, &parent, Labels::new()).await.unwrap();
        let upper = match m[0].kind.as_str() {
            "bind" => PathBuf::from(&m[0].source),
            _ => PathBuf::from(
                m[0].options
                    .iter()
                    .find_map(|o| o.strip_prefix("upperdir="))
                    .unwrap(),
            ),
        };
        fs::write(upper.join(format!("f{i}")), format!("{i}")).unwrap();
        fs::write(upper.join("top"), format!("{i}")).unwrap();
        parent = format!("committed-{i}");
        sn.commit(V, &parent, &key, Labels::new()).await.unwrap();
    }
    let m = sn.view(V, "view", &parent, Labels::new()).await.unwrap();
    assert!(m[0].options.iter().map(String::len).sum::<usize>() > 4096);
    let mnt = d.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    mount_all(&m, &mnt).unwrap();
    let top = fs::read_to_string(mnt.join("top"));
    let f0 = fs::read_to_string(mnt.join("f0"));
    unmount_all(&mnt).unwrap();
    assert_eq!(
        (top.unwrap(), f0.unwrap()),
        ("127".to_string(), "0".to_string())
    );
}
