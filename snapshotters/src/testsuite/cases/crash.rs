//! kill -9 during Prepare/Commit/Remove: the test binary re-executes this case as a child that
//! loops on the same root until SIGKILLed; the parent then reopens the root and checks that
//! every visible snapshot is consistent and that Cleanup leaves no orphaned directory.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::Rng;

use crate::testsuite::harness::{CRASH_CHILD_ENV, Ctx, VIEW, opt};
use crate::testsuite::mount::{TempMount, unmount_under};
use crate::{Kind, Mount};

const ROUNDS: usize = 4;

/// Parent: several rounds of spawn, random delay, SIGKILL, reopen and check.
pub async fn kill9_during_prepare_commit(mut cx: Ctx) {
    if cx.is_crash_child() {
        return child_loop(&cx).await;
    }
    cx.shutdown().await;
    for round in 0..ROUNDS {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                &cx.test_name,
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CRASH_CHILD_ENV, &cx.root)
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn crash child");
        let delay = rand::thread_rng().gen_range(300..1500);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("round {round}: crash child exited by itself: {status}");
        }
        child.kill().expect("SIGKILL child");
        child.wait().expect("reap child");
        unmount_under(&cx.work);
        cx.reopen().await;
        check_consistent(&cx, round).await;
        cx.shutdown().await;
    }
}

/// Child: Prepare, write through the mount, Commit, in chains of 4; sometimes remove a chain.
async fn child_loop(cx: &Ctx) {
    let sn = cx.sn();
    let pid = std::process::id();
    let mut chain: Vec<String> = Vec::new();
    for i in 0..100_000u64 {
        let key = format!("crash-{pid}-{i}");
        let parent = chain.last().cloned().unwrap_or_default();
        let mounts = sn
            .prepare(VIEW, &key, &parent, opt())
            .await
            .expect("child prepare");
        {
            let m = TempMount::new(&mounts, &cx.dir(&key)).expect("child mount");
            let size = rand::thread_rng().gen_range(0..64 * 1024);
            std::fs::write(m.path().join(format!("data-{i}")), vec![b'x'; size]).expect("write");
            std::fs::write(m.path().join("name"), format!("crash-c-{pid}-{i}")).expect("write");
        }
        let name = format!("crash-c-{pid}-{i}");
        sn.commit(VIEW, &name, &key, opt())
            .await
            .expect("child commit");
        chain.push(name);
        if chain.len() == 4 {
            if rand::thread_rng().gen_bool(0.5) {
                while let Some(top) = chain.pop() {
                    sn.remove(VIEW, &top).await.expect("child remove");
                }
            }
            chain.clear();
        }
    }
}

/// The directories a snapshot's mounts use (bind source, upperdir, lowerdirs, the subvolume
/// of a `btrfs` mount found below `root`).
fn mount_dirs(root: &Path, mounts: &[Mount]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for m in mounts {
        if m.kind == "bind" {
            out.push(PathBuf::from(&m.source));
        }
        if m.kind == "btrfs" {
            out.extend(btrfs_dir(root, m));
        }
        for o in &m.options {
            if let Some(v) = o.strip_prefix("upperdir=") {
                out.push(v.into());
            }
            if let Some(v) = o.strip_prefix("lowerdir=") {
                out.extend(v.split(':').map(PathBuf::from));
            }
        }
    }
    out
}

/// The subvolume below `root` whose id a `btrfs` mount names in `subvolid=`.
fn btrfs_dir(root: &Path, m: &Mount) -> Option<PathBuf> {
    let id: u64 = m
        .options
        .iter()
        .find_map(|o| o.strip_prefix("subvolid="))?
        .parse()
        .ok()?;
    let mut it = walkdir::WalkDir::new(root).min_depth(1).into_iter();
    while let Some(Ok(e)) = it.next() {
        if !e.file_type().is_dir() {
            continue;
        }
        if let Ok(sub) = crate::btrfs::subvolume_id(e.path()) {
            if sub == id && std::fs::metadata(e.path()).ok()?.ino() == 256 {
                return Some(e.path().to_path_buf());
            }
            if std::fs::metadata(e.path()).ok()?.ino() == 256 {
                it.skip_current_dir();
            }
        }
    }
    None
}

/// The directory a snapshot owns: for an active its upperdir or bind source, for the view
/// of a committed snapshot its topmost lowerdir or bind source, or its btrfs subvolume.
fn own_dir(root: &Path, mounts: &[Mount]) -> PathBuf {
    let upper = mounts
        .iter()
        .flat_map(|m| &m.options)
        .find_map(|o| o.strip_prefix("upperdir="));
    upper
        .map(PathBuf::from)
        .unwrap_or_else(|| mount_dirs(root, mounts).remove(0))
}

/// The name of the entry of `snapdir` a snapshot owns.
fn own_id(root: &Path, snapdir: &Path, mounts: &[Mount]) -> OsString {
    let rel = own_dir(root, mounts)
        .strip_prefix(snapdir)
        .expect("under snapshots dir")
        .to_path_buf();
    rel.components()
        .next()
        .expect("id component")
        .as_os_str()
        .to_owned()
}

fn common_prefix(a: &Path, b: &Path) -> PathBuf {
    a.components()
        .zip(b.components())
        .take_while(|(x, y)| x == y)
        .map(|(x, _)| x)
        .collect()
}

/// Every listed snapshot stats and mounts; its dirs exist; a committed snapshot holds the data
/// its child wrote; after Cleanup the snapshots dir holds exactly the live snapshots' dirs.
async fn check_consistent(cx: &Ctx, round: usize) {
    let sn = cx.sn();
    let p1 = sn
        .prepare(VIEW, "probe-1", "", opt())
        .await
        .expect("probe-1");
    let p2 = sn
        .prepare(VIEW, "probe-2", "", opt())
        .await
        .expect("probe-2");
    let snapdir = common_prefix(&own_dir(&cx.root, &p1), &own_dir(&cx.root, &p2));
    let mut owned = BTreeSet::new();
    // Committed snapshots whose directory their mounts do not name (a btrfs view is a
    // subvolume of its own): only counted.
    let mut unresolved = 0;
    let infos = sn.list(VIEW, &[]).await.expect("list after crash");
    for (n, info) in infos.iter().enumerate() {
        assert_eq!(
            &sn.stat(VIEW, &info.name).await.expect("stat"),
            info,
            "round {round}"
        );
        let (mounts, probe) = match info.kind {
            Kind::Committed => {
                let probe = format!("probe-view-{n}");
                let mounts = sn
                    .view(VIEW, &probe, &info.name, opt())
                    .await
                    .expect("probe view");
                check_committed_data(cx, &info.name, &mounts, n);
                (mounts, Some(probe))
            }
            _ => (
                sn.mounts(VIEW, &info.name)
                    .await
                    .expect("mounts after crash"),
                None,
            ),
        };
        for d in mount_dirs(&cx.root, &mounts) {
            assert!(
                d.is_dir(),
                "round {round}: {} of {:?} is missing",
                d.display(),
                info.name
            );
        }
        if probe.is_some() && mounts.iter().any(|m| m.kind == "btrfs") {
            unresolved += 1;
        } else {
            owned.insert(own_id(&cx.root, &snapdir, &mounts));
        }
        if let Some(probe) = probe {
            sn.remove(VIEW, &probe).await.expect("remove probe view");
        }
    }
    sn.cleanup().await.expect("cleanup");
    let on_disk: BTreeSet<_> = std::fs::read_dir(&snapdir)
        .expect("read snapshots dir")
        .map(|e| e.expect("dir entry").file_name())
        .collect();
    let extra: Vec<_> = on_disk.difference(&owned).collect();
    let is_id = |n: &&OsString| n.to_str().is_some_and(|n| n.parse::<u64>().is_ok());
    assert!(
        owned.is_subset(&on_disk) && extra.len() == unresolved && extra.iter().all(is_id),
        "round {round}: {} must hold exactly the live ids: {on_disk:?} on disk, {owned:?} \
         + {unresolved} committed expected",
        snapdir.display()
    );
    let committed = infos.iter().filter(|i| i.kind == Kind::Committed).count();
    eprintln!(
        "crash round {round}: {} live snapshots ({committed} committed) consistent",
        infos.len()
    );
    sn.remove(VIEW, "probe-1").await.expect("remove probe");
    sn.remove(VIEW, "probe-2").await.expect("remove probe");
}

/// A committed `crash-c-*` snapshot carries the `name` file its child wrote before Commit.
fn check_committed_data(cx: &Ctx, name: &str, mounts: &[Mount], n: usize) {
    if !name.starts_with("crash-c-") {
        return;
    }
    let m = TempMount::new(mounts, &cx.dir(&format!("probe-{n}"))).expect("mount probe view");
    let written = std::fs::read_to_string(m.path().join("name")).expect("committed data");
    assert_eq!(written, name, "committed snapshot must hold its own data");
}
