//! CloseTwice (testsuite.go:839-859) and persistence across a close and reopen.

use std::collections::BTreeMap;

use strata_core::labels::Labels;

use crate::harness::{Ctx, VIEW, opt};
use crate::mount::TempMount;
use strata_snapshotters::{Info, Mount, Usage};

/// Close after some operations returns Ok, and again the second time.
pub async fn close_twice(mut cx: Ctx) {
    let sn = cx.sn();
    sn.prepare(VIEW, "closeTwice-prepare", "", opt())
        .await
        .expect("prepare");
    sn.commit(VIEW, "closeTwice", "closeTwice-prepare", opt())
        .await
        .expect("commit");
    sn.remove(VIEW, "closeTwice").await.expect("remove");
    sn.close().await.expect("first close");
    sn.close().await.expect("second close");
    cx.shutdown().await;
}

async fn write_active(cx: &Ctx, key: &str, parent: &str, file: &str) -> Vec<Mount> {
    let mounts = cx
        .sn()
        .prepare(VIEW, key, parent, opt())
        .await
        .expect("prepare");
    let m = TempMount::new(&mounts, &cx.dir(key)).expect("mount");
    std::fs::write(m.path().join(file), key.as_bytes()).expect("write");
    mounts
}

type State = (Vec<Info>, Vec<Info>, BTreeMap<String, Usage>);

async fn snapshot_state(cx: &Ctx) -> State {
    let mut infos = cx.sn().list(VIEW, &[]).await.expect("list");
    infos.sort_by(|a, b| a.name.cmp(&b.name));
    let other = cx.sn().list("other", &[]).await.expect("list other");
    let mut usage = BTreeMap::new();
    for i in &infos {
        usage.insert(
            i.name.clone(),
            cx.sn().usage(VIEW, &i.name).await.expect("usage"),
        );
    }
    (infos, other, usage)
}

/// Every snapshot, kind, parent, label, usage, timestamp and file survives close + reopen;
/// ids are not reused; new snapshots work on old parents.
pub async fn restart_persistence(mut cx: Ctx) {
    write_active(&cx, "c1-a", "", "one").await;
    let labels = Labels::from([("containerd.io/snapshot/x".to_string(), "y".to_string())]);
    cx.sn()
        .commit(VIEW, "c1", "c1-a", labels)
        .await
        .expect("commit c1");
    write_active(&cx, "c2-a", "c1", "two").await;
    cx.sn()
        .commit(VIEW, "c2", "c2-a", opt())
        .await
        .expect("commit c2");
    let a1 = write_active(&cx, "a1", "c2", "three").await;
    let v1 = cx.sn().view(VIEW, "v1", "c2", opt()).await.expect("view");
    cx.sn()
        .prepare("other", "o", "", opt())
        .await
        .expect("other view");
    let gone = write_active(&cx, "gone", "c2", "gone").await;
    cx.sn().remove(VIEW, "gone").await.expect("remove gone");
    cx.sn().cleanup().await.expect("cleanup");
    let before = snapshot_state(&cx).await;

    cx.reopen().await;
    let after = snapshot_state(&cx).await;
    assert_eq!(before, after, "state must survive a reopen");
    assert_eq!(cx.sn().mounts(VIEW, "a1").await.expect("mounts a1"), a1);
    assert_eq!(cx.sn().mounts(VIEW, "v1").await.expect("mounts v1"), v1);
    {
        let m = TempMount::new(&a1, &cx.dir("a1-again")).expect("mount a1");
        for f in ["one", "two", "three"] {
            assert!(m.path().join(f).exists(), "a1 lost {f}");
        }
    }
    let fresh = write_active(&cx, "fresh", "c2", "four").await;
    assert_ne!(
        fresh, gone,
        "ids (directories) must not be reused after a reopen"
    );
    assert_ne!(fresh, a1);
    cx.sn()
        .commit(VIEW, "c3", "fresh", opt())
        .await
        .expect("commit c3");
    let view = cx
        .sn()
        .view(VIEW, "v3", "c3", opt())
        .await
        .expect("view c3");
    let m = TempMount::new(&view, &cx.dir("v3")).expect("mount v3");
    for f in ["one", "two", "four"] {
        assert!(m.path().join(f).exists(), "c3 misses {f}");
    }
    assert!(!m.path().join("gone").exists());
}
