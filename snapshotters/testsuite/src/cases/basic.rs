//! Basic, StatActive, StatComitted, TransitivityTest, PreareViewFailingtest
//! (`testsuite.go:127-483`). As containerd does, keys are absolute work-dir paths.

use std::collections::HashMap;

use crate::fstest::{self, create_dir, create_file, remove_all};
use crate::harness::{Ctx, VIEW, opt};
use crate::mount::TempMount;
use strata_snapshotters::Kind;

fn key(cx: &Ctx, name: &str) -> String {
    cx.dir(name).to_string_lossy().into_owned()
}

async fn prepare_mounted(cx: &Ctx, key: &str, parent: &str) -> TempMount {
    let mounts = cx
        .sn()
        .prepare(VIEW, key, parent, opt())
        .await
        .expect("prepare");
    assert!(!mounts.is_empty(), "expected mounts to have entries");
    TempMount::new(&mounts, std::path::Path::new(key)).expect("mount")
}

/// The basic workflow: Prepare, write, Commit, Prepare a child, View the top, Remove.
pub async fn basic(cx: Ctx) {
    let sn = cx.sn();
    let initial = vec![
        create_file("/foo", b"foo\n", 0o777),
        create_dir("/a", 0o755),
        create_dir("/a/b", 0o755),
        create_dir("/a/b/c", 0o755),
    ];
    let diff = vec![
        create_file("/bar", b"bar\n", 0o777),
        create_file("/foo", b"bar\n", 0o777),
        remove_all("/a/b"),
    ];
    let preparing = key(&cx, "preparing");
    {
        let m = prepare_mounted(&cx, &preparing, "").await;
        fstest::apply(m.path(), &initial).expect("apply initial");
    }
    let committed = key(&cx, "committed");
    sn.commit(VIEW, &committed, &preparing, opt())
        .await
        .expect("commit");
    let si = sn.stat(VIEW, &committed).await.expect("stat committed");
    assert_eq!(si.parent, "");
    assert_eq!(si.kind, Kind::Committed);
    assert!(
        sn.stat(VIEW, &preparing).await.is_err(),
        "{preparing} must be gone after commit"
    );

    let next = key(&cx, "nextlayer");
    {
        let m = prepare_mounted(&cx, &next, &committed).await;
        fstest::check_directory_equal_with_applier(m.path(), &initial).expect("child == parent");
        fstest::apply(m.path(), &diff).expect("apply diff");
    }
    let ni = sn.stat(VIEW, &next).await.expect("stat next");
    assert_eq!(ni.parent, committed);
    assert_eq!(ni.kind, Kind::Active);
    let next_committed = key(&cx, "committed-next");
    sn.commit(VIEW, &next_committed, &next, opt())
        .await
        .expect("commit next");
    let si2 = sn
        .stat(VIEW, &next_committed)
        .await
        .expect("stat committed-next");
    assert_eq!(si2.parent, committed);
    assert_eq!(si2.kind, Kind::Committed);
    assert!(
        sn.stat(VIEW, &next).await.is_err(),
        "{next} must be gone after commit"
    );

    let walked: HashMap<String, crate::Info> = sn
        .list(VIEW, &[])
        .await
        .expect("walk")
        .into_iter()
        .map(|i| (i.name.clone(), i))
        .collect();
    for expected in [&si, &si2] {
        assert_eq!(
            walked.get(&expected.name),
            Some(expected),
            "walk must equal stat"
        );
    }

    let nextnext = key(&cx, "nextnextlayer");
    let mounts = sn
        .view(VIEW, &nextnext, &next_committed, opt())
        .await
        .expect("view");
    {
        let m = TempMount::new(&mounts, std::path::Path::new(&nextnext)).expect("mount view");
        let all: Vec<_> = initial.iter().chain(&diff).cloned().collect();
        fstest::check_directory_equal_with_applier(m.path(), &all).expect("view == merged");
    }
    sn.remove(VIEW, &nextnext).await.expect("remove view");
    crate::__assert_err!(
        sn.remove(VIEW, &committed).await,
        crate::Error::FailedPrecondition(_),
        "remove of a parent"
    );
    sn.remove(VIEW, &next_committed).await.expect("remove top");
    sn.remove(VIEW, &committed).await.expect("remove base");
}

/// Stat of a prepared key: name, Kind Active, no parent.
pub async fn stat_active(cx: Ctx) {
    let preparing = key(&cx, "preparing");
    let m = prepare_mounted(&cx, &preparing, "").await;
    std::fs::write(m.path().join("foo"), b"foo\n").expect("write");
    let si = cx.sn().stat(VIEW, &preparing).await.expect("stat");
    assert_eq!(si.name, preparing);
    assert_eq!(si.kind, Kind::Active);
    assert_eq!(si.parent, "");
}

/// Stat of a committed snapshot: name, Kind Committed, no parent.
pub async fn stat_committed(cx: Ctx) {
    let preparing = key(&cx, "preparing");
    let m = prepare_mounted(&cx, &preparing, "").await;
    std::fs::write(m.path().join("foo"), b"foo\n").expect("write");
    drop(m);
    let committed = key(&cx, "committed");
    cx.sn()
        .commit(VIEW, &committed, &preparing, opt())
        .await
        .expect("commit");
    let si = cx.sn().stat(VIEW, &committed).await.expect("stat");
    assert_eq!(si.name, committed);
    assert_eq!(si.kind, Kind::Committed);
    assert_eq!(si.parent, "");
}

/// A <- B: B's parent is A, A has none.
pub async fn transitivity(cx: Ctx) {
    let sn = cx.sn();
    let preparing = key(&cx, "preparing");
    let m = prepare_mounted(&cx, &preparing, "").await;
    std::fs::write(m.path().join("foo"), b"foo\n").expect("write");
    drop(m);
    let snap_a = key(&cx, "snapA");
    sn.commit(VIEW, &snap_a, &preparing, opt())
        .await
        .expect("commit A");
    let next = key(&cx, "next");
    let m = prepare_mounted(&cx, &next, &snap_a).await;
    std::fs::write(m.path().join("foo"), b"foo bar\n").expect("write");
    drop(m);
    let snap_b = key(&cx, "snapB");
    sn.commit(VIEW, &snap_b, &next, opt())
        .await
        .expect("commit B");
    let si_a = sn.stat(VIEW, &snap_a).await.expect("stat A");
    let si_b = sn.stat(VIEW, &snap_b).await.expect("stat B");
    let si_parent_b = sn.stat(VIEW, &si_b.parent).await.expect("stat B's parent");
    assert_eq!(si_a.parent, "");
    assert_eq!(si_b.parent, snap_a);
    assert_eq!(si_parent_b.parent, "");
}

/// Prepare then View of one key fails, as do two Prepares or two Views of one key.
pub async fn prepare_view_failing(cx: Ctx) {
    let sn = cx.sn();
    let preparing = key(&cx, "preparing");
    drop(prepare_mounted(&cx, &preparing, "").await);
    let snap_a = key(&cx, "snapA");
    sn.commit(VIEW, &snap_a, &preparing, opt())
        .await
        .expect("commit");

    let new_layer = key(&cx, "newlayer");
    sn.prepare(VIEW, &new_layer, &snap_a, opt())
        .await
        .expect("prepare");
    let res = sn.view(VIEW, &new_layer, &snap_a, opt()).await;
    crate::__assert_err!(
        res,
        crate::Error::AlreadyExists(_),
        "view of a prepared key"
    );

    let prep = key(&cx, "prepLayer");
    sn.prepare(VIEW, &prep, &snap_a, opt())
        .await
        .expect("prepare");
    let res = sn.prepare(VIEW, &prep, &snap_a, opt()).await;
    crate::__assert_err!(res, crate::Error::AlreadyExists(_), "second prepare");

    let view = key(&cx, "viewLayer");
    sn.view(VIEW, &view, &snap_a, opt()).await.expect("view");
    let res = sn.view(VIEW, &view, &snap_a, opt()).await;
    crate::__assert_err!(res, crate::Error::AlreadyExists(_), "second view");
}
