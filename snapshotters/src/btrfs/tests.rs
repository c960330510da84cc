//! Unit tests on a real btrfs: `#[ignore]`d (a plain `cargo test` shows them as ignored); run
//! with `-- --ignored btrfs::` as root with `STRATA_BTRFS_ROOT` naming a directory on btrfs
//! (see `scripts/btrfs-loop.sh`). Run without either, they fail saying what is missing.

use std::path::PathBuf;

use strata_core::labels::Labels;

use super::*;
use crate::Snapshotter;

/// Why the tests below are ignored by default.
const NEEDS: &str = "needs root and STRATA_BTRFS_ROOT naming a directory on btrfs";

/// A fresh directory under `STRATA_BTRFS_ROOT`; panics (the test fails) when the variable is
/// unset or the process is not root.
fn btrfs_tmp(test: &str) -> tempfile::TempDir {
    let Some(root) = std::env::var_os("STRATA_BTRFS_ROOT").map(PathBuf::from) else {
        panic!("{test} cannot run: STRATA_BTRFS_ROOT is not set ({NEEDS})");
    };
    assert!(
        nix::unistd::geteuid().is_root(),
        "{test} cannot run: not root ({NEEDS})"
    );
    tempfile::tempdir_in(root).expect("tempdir on btrfs")
}

#[test]
fn refuses_a_directory_not_on_btrfs() {
    let d = tempfile::tempdir().unwrap();
    assert!(
        !sys::is_btrfs(d.path()).unwrap(),
        "needs a temp dir not on btrfs: set TMPDIR elsewhere than {}",
        d.path().display()
    );
    let err = Btrfs::open(d.path()).unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
    assert!(
        err.to_string().contains("not on a btrfs filesystem"),
        "{err}"
    );
}

#[test]
#[ignore = "needs root and STRATA_BTRFS_ROOT naming a directory on btrfs"]
fn subvolume_ops_round_trip() {
    let d = btrfs_tmp("subvolume_ops_round_trip");
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    sys::create_subvolume(&a).unwrap();
    std::fs::write(a.join("f"), b"x").unwrap();
    assert!(sys::is_subvolume(&a).unwrap());
    assert!(!sys::is_subvolume(d.path()).unwrap() || d.path() == std::path::Path::new("/"));
    sys::snapshot(&a, &b, true).unwrap();
    assert!(sys::is_readonly(&b).unwrap() && !sys::is_readonly(&a).unwrap());
    assert_ne!(
        sys::subvolume_id(&a).unwrap(),
        sys::subvolume_id(&b).unwrap()
    );
    assert_eq!(std::fs::read(b.join("f")).unwrap(), b"x");
    assert!(
        std::fs::write(b.join("g"), b"y").is_err(),
        "read-only snapshot"
    );
    sys::set_readonly(&a, true).unwrap();
    assert!(sys::is_readonly(&a).unwrap());
    delete_tree(&a).unwrap();
    delete_tree(&b).unwrap();
    assert!(!a.exists() && !b.exists());
    delete_tree(&a).unwrap();
}

#[test]
#[ignore = "needs root and STRATA_BTRFS_ROOT naming a directory on btrfs"]
fn nested_subvolumes_are_deleted_too() {
    let d = btrfs_tmp("nested_subvolumes_are_deleted_too");
    let a = d.path().join("a");
    sys::create_subvolume(&a).unwrap();
    std::fs::create_dir(a.join("dir")).unwrap();
    sys::create_subvolume(&a.join("dir/inner")).unwrap();
    delete_tree(&a).unwrap();
    assert!(!a.exists());
}

#[test]
#[ignore = "needs root and STRATA_BTRFS_ROOT naming a directory on btrfs"]
fn diff_usage_counts_only_changes() {
    let d = btrfs_tmp("diff_usage_counts_only_changes");
    let (p, c) = (d.path().join("p"), d.path().join("c"));
    sys::create_subvolume(&p).unwrap();
    std::fs::write(p.join("big"), vec![7u8; 1 << 20]).unwrap();
    std::fs::write(p.join("keep"), b"k").unwrap();
    sys::snapshot(&p, &c, false).unwrap();
    assert_eq!(diff_usage(&p, &c).unwrap(), Usage::default());
    std::fs::write(c.join("new"), vec![1u8; 8192]).unwrap();
    std::fs::remove_file(c.join("big")).unwrap();
    let u = diff_usage(&p, &c).unwrap();
    assert_eq!(u.inodes, 1, "only the new file: {u:?}");
    assert!(u.size >= 8192, "{u:?}");
    delete_tree(&p).unwrap();
    delete_tree(&c).unwrap();
}

#[tokio::test]
#[ignore = "needs root and STRATA_BTRFS_ROOT naming a directory on btrfs"]
async fn layers_and_mounts_follow_containerd() {
    let d = btrfs_tmp("layers_and_mounts_follow_containerd");
    let sn = Btrfs::open(d.path()).unwrap();
    let dir = d.path().join("snapshots/btrfs/snapshots");
    let l = Labels::new();
    let m = sn.prepare("v", "a", "", l.clone()).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].kind, "btrfs");
    assert!(m[0].source.starts_with("/dev/"), "{m:?}");
    let id = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let subvol = sys::subvolume_id(&id).unwrap();
    assert_eq!(m[0].options, vec![format!("subvolid={subvol}")]);
    std::fs::write(id.join("f"), vec![0u8; 4096]).unwrap();
    let active = sn.usage("v", "a").await.unwrap();
    sn.commit("v", "c", "a", l.clone()).await.unwrap();
    assert!(
        sys::is_readonly(&id).unwrap(),
        "committed subvolume is read-only"
    );
    assert_eq!(sn.usage("v", "c").await.unwrap(), active);
    let v = sn.view("v", "w", "c", l.clone()).await.unwrap();
    assert_eq!(v[0].options.last().map(String::as_str), Some("ro"));
    let child = sn.prepare("v", "b", "c", l.clone()).await.unwrap();
    assert_eq!(child[0].options.len(), 1, "active mounts are writable");
    assert_eq!(sn.usage("v", "b").await.unwrap(), Usage::default());
    for k in ["w", "b", "c"] {
        sn.remove("v", k).await.unwrap();
    }
    sn.cleanup().await.unwrap();
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[tokio::test]
#[ignore = "needs root and STRATA_BTRFS_ROOT naming a directory on btrfs"]
async fn cleanup_deletes_crash_leftovers() {
    let d = btrfs_tmp("cleanup_deletes_crash_leftovers");
    let sn = Btrfs::open(d.path()).unwrap();
    sn.prepare("v", "live", "", Labels::new()).await.unwrap();
    let dir = d.path().join("snapshots/btrfs/snapshots");
    let before: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    sys::create_subvolume(&dir.join("rm-77")).unwrap();
    sys::set_readonly(&dir.join("rm-77"), true).unwrap();
    sys::create_subvolume(&dir.join("78")).unwrap();
    std::fs::create_dir(dir.join("new-xyz")).unwrap();
    sn.cleanup().await.unwrap();
    let after: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(before, after);
    sn.remove("v", "live").await.unwrap();
}

/// Regression: the parent's absolute symlink `etc -> <host>/etc`, replaced by a directory in
/// the child, made Usage and Commit stat and read host files through it.
#[tokio::test]
#[ignore = "needs root and STRATA_BTRFS_ROOT naming a directory on btrfs"]
async fn usage_never_reads_through_a_symlink_of_the_parent() {
    use std::os::unix::fs::PermissionsExt;
    let root = std::env::var_os("STRATA_BTRFS_ROOT").expect("STRATA_BTRFS_ROOT is not set");
    assert!(nix::unistd::geteuid().is_root(), "needs root");
    let d = tempfile::tempdir_in(root).expect("tempdir on btrfs");
    let host = d.path().join("host/etc");
    std::fs::create_dir_all(&host).unwrap();
    let sn = Btrfs::open(&d.path().join("root")).unwrap();
    let dir = d.path().join("root/snapshots/btrfs/snapshots");
    let l = Labels::new();
    sn.prepare("v", "a", "", l.clone()).await.unwrap();
    std::os::unix::fs::symlink(&host, dir.join("1/etc")).unwrap();
    sn.commit("v", "p", "a", l.clone()).await.unwrap();
    sn.prepare("v", "c", "p", l.clone()).await.unwrap();
    let child = dir.join("2");
    std::fs::remove_file(child.join("etc")).unwrap();
    std::fs::create_dir(child.join("etc")).unwrap();
    let when = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    for f in [host.join("passwd"), child.join("etc/passwd")] {
        std::fs::write(&f, b"root:x:0:0::/root:/bin/sh").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let file = std::fs::File::options().write(true).open(&f).unwrap();
        file.set_modified(when).unwrap();
    }
    let live = sn.usage("v", "c").await.unwrap();
    sn.commit("v", "top", "c", l.clone()).await.unwrap();
    let recorded = sn.usage("v", "top").await.unwrap();
    for k in ["top", "p"] {
        sn.remove("v", k).await.unwrap();
    }
    sn.cleanup().await.unwrap();
    delete_tree(d.path()).unwrap();
    assert_eq!(live.inodes, 2, "etc and etc/passwd are new: {live:?}");
    assert_eq!(recorded, live);
}
