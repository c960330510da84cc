//! Update (`checkUpdate`, testsuite.go:592-734) and our label cases: Update masks, Commit
//! replacing labels, the 4096-byte pair limit.

use std::time::SystemTime;

use strata_core::labels::Labels;

use crate::harness::{Ctx, VIEW, opt};
use strata_snapshotters::{Error, Info, Kind, Snapshotter};

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn with_root(pairs: &[(&str, &str)]) -> Labels {
    let mut l = labels(pairs);
    l.extend(opt());
    l
}

fn paths(p: &[&str]) -> Vec<String> {
    p.iter().map(|s| s.to_string()).collect()
}

/// c1, c2 (committed), a1, a2 (active), v1, v2 (view); c2, a1, v1 on top of c1/c2.
async fn base_snapshots(sn: &dyn Snapshotter) {
    sn.prepare(VIEW, "c1-a", "", opt())
        .await
        .expect("prepare c1-a");
    sn.commit(VIEW, "c1", "c1-a", opt())
        .await
        .expect("commit c1");
    sn.prepare(VIEW, "c2-a", "c1", opt())
        .await
        .expect("prepare c2-a");
    sn.commit(VIEW, "c2", "c2-a", opt())
        .await
        .expect("commit c2");
    sn.prepare(VIEW, "a1", "c2", opt())
        .await
        .expect("prepare a1");
    sn.prepare(VIEW, "a2", "", opt()).await.expect("prepare a2");
    sn.view(VIEW, "v1", "c2", opt()).await.expect("view v1");
    sn.view(VIEW, "v2", "", opt()).await.expect("view v2");
}

fn check_identity(st: &Info, name: &str, kind: Kind, parent: &str) {
    assert_eq!(st.name, name);
    assert_eq!(st.kind, kind, "{name}: kind");
    assert_eq!(st.parent, parent, "{name}: parent");
}

/// Created within the creation window and equal to Updated; Update with no paths, with
/// `labels.l1,labels.l2`, with `labels`; Update `parent` is InvalidArgument.
pub async fn update(cx: Ctx) {
    let sn = cx.sn().as_ref();
    let t1 = SystemTime::now();
    base_snapshots(sn).await;
    let t2 = SystemTime::now();
    let cases = [
        ("c1", Kind::Committed, ""),
        ("c2", Kind::Committed, "c1"),
        ("a1", Kind::Active, "c2"),
        ("a2", Kind::Active, ""),
        ("v1", Kind::View, "c2"),
        ("v2", Kind::View, ""),
    ];
    for (name, kind, parent) in cases {
        let mut st = sn.stat(VIEW, name).await.expect("stat");
        assert!(
            st.created >= t1 && st.created <= t2,
            "{name}: created {:?} outside window",
            st.created
        );
        assert_eq!(
            st.created, st.updated,
            "{name}: fresh snapshot must have created == updated"
        );
        check_identity(&st, name, kind, parent);

        let created = st.created;
        let expected = with_root(&[("l1", "v1"), ("l2", "v2"), ("l3", "v3")]);
        st.parent = "doesnotexist".into();
        st.labels = expected.clone();
        let u1 = SystemTime::now();
        let mut st = sn.update(VIEW, st, &[]).await.expect("update all");
        let u2 = SystemTime::now();
        assert_eq!(st.created, created, "{name}: created must not change");
        assert!(
            st.updated >= u1 && st.updated <= u2,
            "{name}: updated outside call window"
        );
        check_identity(&st, name, kind, parent);
        assert_eq!(st.labels, expected);

        st.labels = labels(&[("l1", "updated"), ("l4", "v4")]);
        let mut st = sn
            .update(VIEW, st, &paths(&["labels.l1", "labels.l2"]))
            .await
            .expect("mask");
        assert_eq!(st.labels, with_root(&[("l1", "updated"), ("l3", "v3")]));

        let expected = with_root(&[("l4", "v4")]);
        st.labels = expected.clone();
        let mut st = sn
            .update(VIEW, st, &paths(&["labels"]))
            .await
            .expect("labels");
        assert_eq!(st.labels, expected);
        assert_eq!(
            sn.stat(VIEW, name).await.expect("stat").labels,
            expected,
            "{name}: persisted"
        );

        st.parent = "doesnotexist".into();
        let res = sn.update(VIEW, st, &paths(&["parent"])).await;
        crate::__assert_err!(res, Error::InvalidArgument(_), "{name}: update of parent");
    }
}

/// Keys with dots and slashes after `labels.`, empty values deleting, other paths rejected.
pub async fn update_masks(cx: Ctx) {
    let sn = cx.sn().as_ref();
    sn.prepare(VIEW, "a", "", labels(&[("keep", "1"), ("gone", "2")]))
        .await
        .expect("prepare");
    let mut st = sn.stat(VIEW, "a").await.expect("stat");
    st.labels = labels(&[("containerd.io/snapshot/x.y", "v"), ("other", "ignored")]);
    let paths1 = paths(&["labels.containerd.io/snapshot/x.y", "labels.gone"]);
    let st = sn
        .update(VIEW, st, &paths1)
        .await
        .expect("update dotted key");
    assert_eq!(
        st.labels,
        labels(&[("containerd.io/snapshot/x.y", "v"), ("keep", "1")])
    );

    let mut st2 = st.clone();
    st2.labels = labels(&[("keep", ""), ("new", "n")]);
    let st2 = sn.update(VIEW, st2, &[]).await.expect("replace");
    assert_eq!(st2.labels, labels(&[("new", "n")]), "empty values delete");

    for bad in ["kind", "name", "labelsx", "created_at"] {
        let res = sn.update(VIEW, st.clone(), &paths(&[bad])).await;
        crate::__assert_err!(res, Error::InvalidArgument(_), "update path {bad}");
    }
    assert_eq!(
        sn.stat(VIEW, "a").await.expect("stat").labels,
        labels(&[("new", "n")])
    );
    let mut missing = st.clone();
    missing.name = "missing".into();
    crate::__assert_err!(
        sn.update(VIEW, missing, &[]).await,
        Error::NotFound(_),
        "update unknown"
    );
}

/// Commit replaces the active's labels; it does not inherit them.
pub async fn commit_replaces_labels(cx: Ctx) {
    let sn = cx.sn().as_ref();
    sn.prepare(VIEW, "a", "", with_root(&[("x", "1")]))
        .await
        .expect("prepare");
    sn.commit(VIEW, "c", "a", labels(&[("y", "2")]))
        .await
        .expect("commit");
    assert_eq!(
        sn.stat(VIEW, "c").await.expect("stat").labels,
        labels(&[("y", "2")])
    );
    sn.prepare(VIEW, "b", "c", with_root(&[("x", "1")]))
        .await
        .expect("prepare");
    sn.commit(VIEW, "d", "b", Labels::new())
        .await
        .expect("commit");
    assert!(sn.stat(VIEW, "d").await.expect("stat").labels.is_empty());
}

/// A key+value pair of 4096 bytes is accepted, 4097 is InvalidArgument on Prepare, View,
/// Commit and Update, and a rejected call changes nothing.
pub async fn label_limits(cx: Ctx) {
    let sn = cx.sn().as_ref();
    let ok = labels(&[("k", &"v".repeat(4095))]);
    let big = labels(&[("k", &"v".repeat(4096))]);
    sn.prepare(VIEW, "ok", "", ok.clone())
        .await
        .expect("4096-byte pair accepted");
    assert_eq!(sn.stat(VIEW, "ok").await.expect("stat").labels, ok);
    crate::__assert_err!(
        sn.prepare(VIEW, "big", "", big.clone()).await,
        Error::InvalidArgument(_),
        "prepare"
    );
    crate::__assert_err!(
        sn.stat(VIEW, "big").await,
        Error::NotFound(_),
        "rejected prepare"
    );
    crate::__assert_err!(
        sn.view(VIEW, "bigv", "", big.clone()).await,
        Error::InvalidArgument(_),
        "view"
    );
    crate::__assert_err!(
        sn.commit(VIEW, "c", "ok", big.clone()).await,
        Error::InvalidArgument(_),
        "commit"
    );
    assert_eq!(
        sn.stat(VIEW, "ok").await.expect("active intact").kind,
        Kind::Active
    );
    crate::__assert_err!(
        sn.stat(VIEW, "c").await,
        Error::NotFound(_),
        "rejected commit"
    );
    let mut st = sn.stat(VIEW, "ok").await.expect("stat");
    st.labels = big;
    crate::__assert_err!(
        sn.update(VIEW, st.clone(), &[]).await,
        Error::InvalidArgument(_),
        "update"
    );
    let res = sn.update(VIEW, st, &paths(&["labels.k"])).await;
    crate::__assert_err!(res, Error::InvalidArgument(_), "update labels.k");
    assert_eq!(
        sn.stat(VIEW, "ok").await.expect("stat").labels,
        ok,
        "rejected update changes nothing"
    );
    sn.commit(VIEW, "c", "ok", ok.clone())
        .await
        .expect("commit with 4096-byte pair");
}
