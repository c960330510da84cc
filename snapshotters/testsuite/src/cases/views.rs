//! Per-view isolation and races on one key.

use std::sync::Arc;

use crate::harness::{Ctx, opt};
use strata_snapshotters::{Error, Kind, Snapshotter};

/// A snapshot made in view "a" is invisible to every call in view "b"; one key works in both.
pub async fn view_isolation(cx: Ctx) {
    let sn = cx.sn();
    sn.prepare("a", "k", "", opt()).await.expect("prepare in a");
    sn.commit("a", "c", "k", opt()).await.expect("commit in a");
    sn.prepare("a", "k", "c", opt())
        .await
        .expect("prepare k on c in a");

    crate::__assert_err!(sn.stat("b", "k").await, Error::NotFound(_), "stat in b");
    crate::__assert_err!(sn.stat("b", "c").await, Error::NotFound(_), "stat c in b");
    crate::__assert_err!(sn.mounts("b", "k").await, Error::NotFound(_), "mounts in b");
    crate::__assert_err!(sn.usage("b", "k").await, Error::NotFound(_), "usage in b");
    crate::__assert_err!(sn.remove("b", "c").await, Error::NotFound(_), "remove in b");
    crate::__assert_err!(
        sn.commit("b", "x", "k", opt()).await,
        Error::NotFound(_),
        "commit in b"
    );
    crate::__assert_err!(
        sn.prepare("b", "y", "c", opt()).await,
        Error::NotFound(_),
        "parent in a"
    );
    assert!(
        sn.list("b", &[]).await.expect("list b").is_empty(),
        "b must see nothing"
    );

    sn.prepare("b", "c", "", opt())
        .await
        .expect("prepare c in b");
    sn.commit("b", "k", "c", opt())
        .await
        .expect("commit k in b");
    sn.prepare("b", "c", "k", opt())
        .await
        .expect("prepare c on k in b");
    let (ka, kb) = (
        sn.stat("a", "k").await.expect("a/k"),
        sn.stat("b", "k").await.expect("b/k"),
    );
    assert_eq!((ka.kind, ka.parent.as_str()), (Kind::Active, "c"));
    assert_eq!((kb.kind, kb.parent.as_str()), (Kind::Committed, ""));

    sn.remove("b", "c").await.expect("remove c in b");
    sn.remove("b", "k").await.expect("remove k in b");
    assert!(sn.list("b", &[]).await.expect("list b").is_empty());
    let names: Vec<String> = sn
        .list("a", &[])
        .await
        .expect("list a")
        .into_iter()
        .map(|i| i.name)
        .collect();
    assert_eq!(names.len(), 2, "a keeps its snapshots: {names:?}");
    sn.remove("a", "k").await.expect("remove k in a");
    sn.remove("a", "c").await.expect("remove c in a");
}

/// 16 concurrent Prepares of one key: exactly one wins, the rest get AlreadyExists; same for
/// 16 Commits of different keys to one name.
pub async fn concurrent_prepare(cx: Ctx) {
    let view = crate::VIEW;
    race_prepares(cx.sn(), "race", "").await;

    for i in 0..16 {
        cx.sn()
            .prepare(view, &format!("k{i}"), "", opt())
            .await
            .expect("prepare");
    }
    let commits = (0..16).map(|i| {
        let sn = cx.sn().clone();
        tokio::spawn(async move { sn.commit(view, "winner", &format!("k{i}"), opt()).await })
    });
    let results = futures::future::try_join_all(commits).await.expect("join");
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for r in results.into_iter().filter(|r| r.is_err()) {
        crate::__assert_err!(r, Error::AlreadyExists(_), "losing commit");
    }
    let infos = cx.sn().list(view, &[]).await.expect("list");
    assert_eq!(
        infos.len(),
        1 + 1 + 15,
        "race, winner and 15 uncommitted keys"
    );
}

/// Prepare on a parent racing the parent's Remove, 16 rounds: Prepare gives OK or NotFound
/// (never Unknown), Remove OK or FailedPrecondition, never both OK. Then 16 concurrent
/// Prepares of one key on a parent: exactly one OK, the rest AlreadyExists.
pub async fn prepare_remove_parent_race(cx: Ctx) {
    let view = crate::VIEW;
    let sn = cx.sn();
    for i in 0..16 {
        let (a, p, c) = (format!("a{i}"), format!("p{i}"), format!("c{i}"));
        sn.prepare(view, &a, "", opt()).await.expect("prepare");
        sn.commit(view, &p, &a, opt()).await.expect("commit");
        let (s1, s2, p1, p2, c1) = (sn.clone(), sn.clone(), p.clone(), p.clone(), c.clone());
        let prep = tokio::spawn(async move { s1.prepare(view, &c1, &p1, opt()).await });
        let rm = tokio::spawn(async move { s2.remove(view, &p2).await });
        let (prep, rm) = (prep.await.expect("join"), rm.await.expect("join"));
        match (&prep, &rm) {
            (Ok(_), Err(Error::FailedPrecondition(_))) => {
                sn.remove(view, &c).await.expect("remove child");
                sn.remove(view, &p).await.expect("remove parent");
            }
            (Err(Error::NotFound(_)), Ok(())) => {}
            other => panic!("round {i}: prepare and remove gave {other:?}"),
        }
    }
    assert!(sn.list(view, &[]).await.expect("list").is_empty());

    sn.prepare(view, "a", "", opt()).await.expect("prepare");
    sn.commit(view, "p", "a", opt()).await.expect("commit");
    race_prepares(sn, "race", "p").await;
}

/// 16 concurrent Prepares of `key` on `parent`: exactly one wins, the rest get AlreadyExists.
async fn race_prepares(sn: &Arc<dyn Snapshotter>, key: &'static str, parent: &'static str) {
    let view = crate::VIEW;
    let prepares = (0..16).map(|_| {
        let sn = sn.clone();
        tokio::spawn(async move { sn.prepare(view, key, parent, opt()).await })
    });
    let results = futures::future::try_join_all(prepares).await.expect("join");
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );
    for r in results.into_iter().filter(|r| r.is_err()) {
        crate::__assert_err!(r, Error::AlreadyExists(_), "losing prepare");
    }
}
