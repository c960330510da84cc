//! kill -9 during Prepare/Commit/Remove: the test binary re-executes this case as a child that
//! loops on the same root until SIGKILLed; the parent then reopens the root and checks that
//! every visible snapshot is consistent and that Cleanup leaves no orphaned directory. Nothing
//! here knows the backend's layout: snapshots are checked by mounting them (with the production
//! mounter) and orphans by counting the entries of the data dir the backend names
//! ([`Backend::with_data_dir`](crate::Backend::with_data_dir)).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::process::{Command, Stdio};
use std::time::Duration;

use rand::Rng;

use crate::harness::{CRASH_CHILD_ENV, Ctx, VIEW, opt};
use crate::mount::{TempMount, unmount_under};
use strata_snapshotters::{Kind, Mount};

const ROUNDS: usize = 4;

/// Parent: several rounds of spawn, random delay, SIGKILL, reopen and check.
pub async fn kill9_during_prepare_commit(mut cx: Ctx) {
    if cx.is_crash_child() {
        return child_loop(&cx).await;
    }
    cx.shutdown().await;
    let mut committed = 0;
    for round in 0..ROUNDS {
        let exe = std::env::current_exe().expect("current exe");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                &cx.test_name,
                // The case may be #[ignore]d (btrfs): the child runs it all the same.
                "--include-ignored",
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
        committed += check_consistent(&cx, round).await;
        if round + 1 == ROUNDS {
            remove_all_and_check_empty(&cx).await;
        }
        cx.shutdown().await;
    }
    assert!(
        committed > 0,
        "no committed snapshot survived any of the {ROUNDS} kills: the children were killed \
         before they made anything, so nothing was checked"
    );
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

/// After Cleanup, every listed snapshot stats and mounts (so Cleanup kept what it uses) and a
/// committed one holds the data its child wrote; the backend's data dir holds at most one
/// entry per live snapshot (Cleanup deleted what the killed child left half-made). Returns how
/// many committed snapshots it checked.
async fn check_consistent(cx: &Ctx, round: usize) -> usize {
    let sn = cx.sn();
    let infos = sn.list(VIEW, &[]).await.expect("list after crash");
    sn.cleanup().await.expect("cleanup");
    for (n, info) in infos.iter().enumerate() {
        assert_eq!(
            &sn.stat(VIEW, &info.name).await.expect("stat"),
            info,
            "round {round}"
        );
        if info.kind == Kind::Committed {
            let probe = format!("probe-view-{n}");
            let mounts = sn
                .view(VIEW, &probe, &info.name, opt())
                .await
                .expect("probe view");
            check_committed_data(cx, &info.name, &mounts, n);
            sn.remove(VIEW, &probe).await.expect("remove probe view");
        } else {
            let mounts = sn
                .mounts(VIEW, &info.name)
                .await
                .expect("mounts after crash");
            TempMount::new(&mounts, &cx.dir(&format!("probe-{n}")))
                .unwrap_or_else(|e| panic!("round {round}: mount {:?}: {e}", info.name));
        }
    }
    let entries = data_entries(cx);
    assert!(
        entries.len() <= infos.len(),
        "round {round}: after Cleanup {} holds {} entries for {} live snapshots: {entries:?}",
        cx.backend.data_dir(&cx.root).display(),
        entries.len(),
        infos.len()
    );
    let committed = infos.iter().filter(|i| i.kind == Kind::Committed).count();
    eprintln!(
        "crash round {round}: {} live snapshots ({committed} committed) consistent",
        infos.len()
    );
    committed
}

/// The entries of the backend's per-snapshot data dir.
fn data_entries(cx: &Ctx) -> Vec<OsString> {
    let dir = cx.backend.data_dir(&cx.root);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").file_name())
        .collect()
}

/// Removes every snapshot, children first; the data dir must then be empty (no directory a
/// crash left survived the rounds' Cleanups).
async fn remove_all_and_check_empty(cx: &Ctx) {
    let sn = cx.sn();
    let mut left = sn.list(VIEW, &[]).await.expect("list");
    while !left.is_empty() {
        let parents: BTreeSet<String> = left.iter().map(|i| i.parent.clone()).collect();
        let (leaves, rest): (Vec<_>, Vec<_>) =
            left.into_iter().partition(|i| !parents.contains(&i.name));
        assert!(!leaves.is_empty(), "snapshots form a cycle: {rest:?}");
        for leaf in leaves {
            sn.remove(VIEW, &leaf.name).await.expect("remove");
        }
        left = rest;
    }
    let entries = data_entries(cx);
    assert!(
        entries.is_empty(),
        "{} must be empty once every snapshot is removed: {entries:?}",
        cx.backend.data_dir(&cx.root).display()
    );
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
