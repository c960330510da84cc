//! Unit tests mirroring containerd's `snapshots/storage/metastore_test.go`.

use std::sync::Arc;

use strata_core::labels::Labels;

use super::*;
use crate::snapshotter::MAX_KEY_LEN;

const V: &str = "testview";

fn open() -> (tempfile::TempDir, Arc<DB>) {
    let dir = tempfile::tempdir().unwrap();
    let db = strata_core::db::open(&dir.path().join("db"), COLUMN_FAMILIES).unwrap();
    (dir, db)
}

fn store() -> (tempfile::TempDir, Metastore) {
    let (dir, db) = open();
    (dir, Metastore::new(db, "test"))
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn commit_as(ms: &Metastore, key: &str, name: &str) -> u64 {
    ms.commit_active(V, key, name, Usage::default(), Labels::new())
        .unwrap()
}

/// containerd's `basePopulate`: committed-1 ← committed-2; actives and views on top.
fn populate(ms: &Metastore) {
    let l = labels(&[("foo", "bar")]);
    ms.create_snapshot(V, Kind::Active, "committed-tmp-1", "", l.clone())
        .unwrap();
    commit_as(ms, "committed-tmp-1", "committed-1");
    ms.create_snapshot(V, Kind::Active, "committed-tmp-2", "committed-1", l.clone())
        .unwrap();
    commit_as(ms, "committed-tmp-2", "committed-2");
    ms.create_snapshot(V, Kind::Active, "active-1", "", l.clone())
        .unwrap();
    ms.create_snapshot(V, Kind::Active, "active-2", "committed-1", l.clone())
        .unwrap();
    ms.create_snapshot(V, Kind::Active, "active-3", "committed-2", l.clone())
        .unwrap();
    ms.create_snapshot(V, Kind::View, "view-1", "", l.clone())
        .unwrap();
    ms.create_snapshot(V, Kind::View, "view-2", "committed-2", l)
        .unwrap();
}

fn expected_infos() -> Vec<(&'static str, &'static str, Kind)> {
    vec![
        ("active-1", "", Kind::Active),
        ("active-2", "committed-1", Kind::Active),
        ("active-3", "committed-2", Kind::Active),
        ("committed-1", "", Kind::Committed),
        ("committed-2", "committed-1", Kind::Committed),
        ("view-1", "", Kind::View),
        ("view-2", "committed-2", Kind::View),
    ]
}

#[test]
fn get_info() {
    let (_d, ms) = store();
    populate(&ms);
    for (name, parent, kind) in expected_infos() {
        let (_, info, _) = ms.get_info(V, name).unwrap();
        assert_eq!(
            (info.name.as_str(), info.parent.as_str(), info.kind),
            (name, parent, kind)
        );
        assert_eq!(
            info.labels,
            labels(&[("foo", "bar")])
                .into_iter()
                .filter(|_| kind != Kind::Committed)
                .collect()
        );
    }
}

#[test]
fn get_info_not_exist() {
    let (_d, ms) = store();
    populate(&ms);
    assert!(matches!(
        ms.get_info(V, "active-not-exist"),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn get_info_empty_db() {
    let (_d, ms) = store();
    assert!(matches!(ms.get_info(V, "any"), Err(Error::NotFound(_))));
}

#[test]
fn walk() {
    let (_d, ms) = store();
    populate(&ms);
    let got: Vec<_> = ms.walk_info(V, &[]).unwrap();
    let got: Vec<_> = got
        .iter()
        .map(|i| (i.name.as_str(), i.parent.as_str(), i.kind))
        .collect();
    assert_eq!(got, expected_infos());
    for info in ms.walk_info(V, &[]).unwrap() {
        assert_eq!(ms.get_info(V, &info.name).unwrap().1, info);
    }
}

#[test]
fn walk_filters() {
    let (_d, ms) = store();
    populate(&ms);
    let names = |f: &[&str]| -> Vec<String> {
        let f: Vec<String> = f.iter().map(|s| s.to_string()).collect();
        ms.walk_info(V, &f)
            .unwrap()
            .into_iter()
            .map(|i| i.name)
            .collect()
    };
    assert_eq!(names(&["kind==committed"]), ["committed-1", "committed-2"]);
    assert_eq!(names(&["parent==committed-2"]), ["active-3", "view-2"]);
    assert_eq!(
        names(&["name==view-1", "name==active-1"]),
        ["active-1", "view-1"]
    );
    assert_eq!(names(&["kind==view,labels.foo==bar"]), ["view-1", "view-2"]);
    assert_eq!(
        names(&["parent!=\"\",kind==active"]),
        ["active-2", "active-3"]
    );
    assert_eq!(names(&["labels.foo"]).len(), 5);
    let bad = ms.walk_info(V, &["name==/abs".to_string()]);
    assert!(matches!(bad, Err(Error::InvalidArgument(_))), "{bad:?}");
}

#[test]
fn get_snapshot() {
    let (_d, ms) = store();
    populate(&ms);
    let c1 = ms.get_info(V, "committed-1").unwrap().0;
    let c2 = ms.get_info(V, "committed-2").unwrap().0;
    let cases = [
        ("active-1", Kind::Active, vec![]),
        ("active-2", Kind::Active, vec![c1]),
        ("active-3", Kind::Active, vec![c2, c1]),
        ("view-1", Kind::View, vec![]),
        ("view-2", Kind::View, vec![c2, c1]),
    ];
    for (key, kind, parents) in cases {
        let s = ms.get_snapshot(V, key).unwrap();
        assert_eq!((s.kind, s.parent_ids), (kind, parents), "{key}");
        assert_eq!(s.id, ms.get_info(V, key).unwrap().0);
    }
}

#[test]
fn get_snapshot_not_exist() {
    let (_d, ms) = store();
    populate(&ms);
    assert!(matches!(
        ms.get_snapshot(V, "active-not-exist"),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn get_snapshot_committed() {
    let (_d, ms) = store();
    populate(&ms);
    let err = ms.get_snapshot(V, "committed-1").unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
}

#[test]
fn get_snapshot_empty_db() {
    let (_d, ms) = store();
    assert!(matches!(
        ms.get_snapshot(V, "active-1"),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn create_active() {
    let (_d, ms) = store();
    let a = ms
        .create_snapshot(V, Kind::Active, "active-1", "", Labels::new())
        .unwrap();
    assert_eq!((a.kind, a.parent_ids.clone()), (Kind::Active, vec![]));
    let (_, info, _) = ms.get_info(V, "active-1").unwrap();
    assert_eq!(info.created, info.updated);
    let id = commit_as(&ms, "active-1", "committed-1");
    assert_eq!(id, a.id, "the id must not change on commit");
    let b = ms
        .create_snapshot(V, Kind::Active, "active-2", "committed-1", Labels::new())
        .unwrap();
    assert_eq!(b.parent_ids, vec![a.id]);
    assert_ne!(b.id, a.id);
    let v = ms
        .create_snapshot(V, Kind::View, "view-1", "committed-1", Labels::new())
        .unwrap();
    assert_eq!((v.kind, v.parent_ids), (Kind::View, vec![a.id]));
}

#[test]
fn create_active_not_exist() {
    let (_d, ms) = store();
    let err = ms.create_snapshot(V, Kind::Active, "active-1", "does-not-exist", Labels::new());
    assert!(matches!(err, Err(Error::NotFound(_))), "{err:?}");
}

#[test]
fn create_active_exist() {
    let (_d, ms) = store();
    populate(&ms);
    for key in ["active-1", "committed-1", "view-1"] {
        let err = ms.create_snapshot(V, Kind::Active, key, "", Labels::new());
        assert!(
            matches!(err, Err(Error::AlreadyExists(_))),
            "{key}: {err:?}"
        );
        let err = ms.create_snapshot(V, Kind::View, key, "", Labels::new());
        assert!(
            matches!(err, Err(Error::AlreadyExists(_))),
            "{key}: {err:?}"
        );
    }
}

#[test]
fn create_active_from_active() {
    let (_d, ms) = store();
    populate(&ms);
    for parent in ["active-1", "view-1"] {
        let err = ms
            .create_snapshot(V, Kind::Active, "new", parent, Labels::new())
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("parent {parent:?} is not committed snapshot")
        );
    }
}

#[test]
fn create_committed_kind_fails() {
    let (_d, ms) = store();
    let err = ms.create_snapshot(V, Kind::Committed, "c", "", Labels::new());
    assert!(matches!(err, Err(Error::InvalidArgument(_))));
}

#[test]
fn commit() {
    let (_d, ms) = store();
    populate(&ms);
    let before = ms.get_info(V, "active-1").unwrap().0;
    let usage = Usage {
        size: 4096,
        inodes: 3,
    };
    let id = ms
        .commit_active(
            V,
            "active-1",
            "committed-3",
            usage,
            labels(&[("y", "1"), ("z", "")]),
        )
        .unwrap();
    assert_eq!(id, before);
    assert!(matches!(
        ms.get_info(V, "active-1"),
        Err(Error::NotFound(_))
    ));
    let (cid, info, got) = ms.get_info(V, "committed-3").unwrap();
    assert_eq!((cid, info.kind, got), (id, Kind::Committed, usage));
    assert_eq!(
        info.labels,
        labels(&[("y", "1")]),
        "labels are replaced, empty dropped"
    );
    assert_eq!(info.created, info.updated);
}

#[test]
fn commit_not_exist() {
    let (_d, ms) = store();
    populate(&ms);
    let err = ms.commit_active(V, "active-not-exist", "c3", Usage::default(), Labels::new());
    assert!(matches!(err, Err(Error::NotFound(_))), "{err:?}");
}

#[test]
fn commit_exist() {
    let (_d, ms) = store();
    populate(&ms);
    let err = ms.commit_active(
        V,
        "active-1",
        "committed-1",
        Usage::default(),
        Labels::new(),
    );
    assert!(matches!(err, Err(Error::AlreadyExists(_))), "{err:?}");
    let err = ms.commit_active(V, "missing", "committed-1", Usage::default(), Labels::new());
    assert!(
        matches!(err, Err(Error::AlreadyExists(_))),
        "name is checked first: {err:?}"
    );
}

#[test]
fn commit_committed() {
    let (_d, ms) = store();
    populate(&ms);
    let err = ms.commit_active(V, "committed-1", "c3", Usage::default(), Labels::new());
    assert!(matches!(err, Err(Error::FailedPrecondition(_))), "{err:?}");
}

#[test]
fn commit_view_fails() {
    let (_d, ms) = store();
    populate(&ms);
    let err = ms
        .commit_active(V, "view-1", "c3", Usage::default(), Labels::new())
        .unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
    assert_eq!(err.to_string(), "snapshot \"view-1\" is not active");
}

#[test]
fn remove() {
    let (_d, ms) = store();
    populate(&ms);
    let (id, kind) = ms.remove(V, "active-1").unwrap();
    assert_eq!(kind, Kind::Active);
    assert!(!ms.ids().unwrap().contains(&id));
    assert!(matches!(
        ms.get_info(V, "active-1"),
        Err(Error::NotFound(_))
    ));
    // The child link of active-2 goes with it, then committed-1 can go once its children do.
    for key in [
        "active-2",
        "active-3",
        "view-2",
        "committed-2",
        "committed-1",
        "view-1",
    ] {
        ms.remove(V, key).unwrap();
    }
    assert!(ms.walk_info(V, &[]).unwrap().is_empty());
}

#[test]
fn remove_not_exist() {
    let (_d, ms) = store();
    populate(&ms);
    assert!(matches!(ms.remove(V, "missing"), Err(Error::NotFound(_))));
}

#[test]
fn remove_with_children() {
    let (_d, ms) = store();
    populate(&ms);
    let err = ms.remove(V, "committed-1").unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
    assert!(err.to_string().contains("remove"));
    ms.remove(V, "active-2").unwrap();
    assert!(matches!(
        ms.remove(V, "committed-1"),
        Err(Error::FailedPrecondition(_))
    ));
}

#[test]
fn remove_with_committed_child() {
    let (_d, ms) = store();
    populate(&ms);
    ms.create_snapshot(V, Kind::Active, "tmp", "committed-2", Labels::new())
        .unwrap();
    commit_as(&ms, "tmp", "committed-3");
    for key in ["active-3", "view-2"] {
        ms.remove(V, key).unwrap();
    }
    assert!(matches!(
        ms.remove(V, "committed-2"),
        Err(Error::FailedPrecondition(_))
    ));
    ms.remove(V, "committed-3").unwrap();
    ms.remove(V, "committed-2").unwrap();
}

#[test]
fn parent_ids() {
    let (_d, ms) = store();
    let mut parent = String::new();
    let mut ids = Vec::new();
    for i in 0..10 {
        let key = format!("active-{i}");
        let s = ms
            .create_snapshot(V, Kind::Active, &key, &parent, Labels::new())
            .unwrap();
        let mut want = ids.clone();
        want.reverse();
        assert_eq!(s.parent_ids, want, "immediate parent first");
        parent = format!("committed-{i}");
        commit_as(&ms, &key, &parent);
        ids.push(s.id);
    }
}

#[test]
fn ids_never_reused() {
    let (dir, db) = open();
    let ms = Metastore::new(db, "test");
    let a = ms
        .create_snapshot(V, Kind::Active, "a", "", Labels::new())
        .unwrap();
    ms.remove(V, "a").unwrap();
    drop(ms); // the last handle: the database closes
    let db = strata_core::db::open(&dir.path().join("db"), COLUMN_FAMILIES).unwrap();
    let ms = Metastore::new(db, "test");
    let b = ms
        .create_snapshot(V, Kind::Active, "a", "", Labels::new())
        .unwrap();
    assert!(b.id > a.id);
}

#[test]
fn views_and_backends_are_isolated() {
    let (_d, db) = open();
    let a = Metastore::new(db.clone(), "native");
    let b = Metastore::new(db, "overlay");
    a.create_snapshot(V, Kind::Active, "k", "", Labels::new())
        .unwrap();
    a.create_snapshot("other", Kind::Active, "k", "", Labels::new())
        .unwrap();
    b.create_snapshot(V, Kind::Active, "k", "", Labels::new())
        .unwrap();
    assert_eq!(a.walk_info(V, &[]).unwrap().len(), 1);
    assert_eq!(a.ids().unwrap().len(), 2);
    assert_eq!(b.ids().unwrap().len(), 1);
    assert!(matches!(b.get_info("other", "k"), Err(Error::NotFound(_))));
}

#[test]
fn update_labels() {
    let (_d, ms) = store();
    let l = labels(&[("l1", "v1"), ("l2", "v2"), ("l3", "v3")]);
    ms.create_snapshot(V, Kind::Active, "a", "", l).unwrap();
    let (_, before, _) = ms.get_info(V, "a").unwrap();
    let mut req = before.clone();
    req.labels = labels(&[("l1", "updated"), ("l4", "v4")]);
    req.parent = "ignored".into();
    let paths = ["labels.l1".to_string(), "labels.l2".to_string()];
    let got = ms.update_info(V, &req, &paths).unwrap();
    assert_eq!(got.labels, labels(&[("l1", "updated"), ("l3", "v3")]));
    assert_eq!((got.created, got.parent.as_str()), (before.created, ""));
    assert!(got.updated >= before.updated);
    assert_eq!(ms.get_info(V, "a").unwrap().1, got);
    let got = ms.update_info(V, &req, &[]).unwrap();
    assert_eq!(got.labels, labels(&[("l1", "updated"), ("l4", "v4")]));
    let err = ms.update_info(V, &req, &["parent".to_string()]);
    assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
    req.name = "missing".into();
    assert!(matches!(
        ms.update_info(V, &req, &[]),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn oversized_labels_rejected() {
    let (_d, ms) = store();
    let big = labels(&[("k", &"x".repeat(4096))]);
    let err = ms.create_snapshot(V, Kind::Active, "a", "", big.clone());
    assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
    ms.create_snapshot(V, Kind::Active, "a", "", Labels::new())
        .unwrap();
    let err = ms.commit_active(V, "a", "c", Usage::default(), big);
    assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
}

#[test]
fn raise_counter_skips_ids_a_crash_left_on_disk() {
    let (_d, ms) = store();
    let first = ms.reserve_id().unwrap();
    // A directory with a higher id survived a power loss that lost the counter's updates.
    ms.raise_counter(first + 41).unwrap();
    assert_eq!(ms.reserve_id().unwrap(), first + 42);
    // Never lowers it.
    ms.raise_counter(1).unwrap();
    assert_eq!(ms.reserve_id().unwrap(), first + 43);
}

/// Writes `json` as the raw `snap_info` value of `name`, bypassing every check.
fn put_raw(ms: &Metastore, name: &str, json: &str) {
    let cf = ms.db.cf_handle(CF_INFO).unwrap();
    ms.db
        .put_cf(cf, record::info_key(&ms.backend, V, name), json)
        .unwrap();
}

#[test]
fn unknown_kind_byte_is_corruption() {
    let (_d, ms) = store();
    ms.create_snapshot(V, Kind::Active, "good", "", Labels::new())
        .unwrap();
    put_raw(
        &ms,
        "bad",
        r#"{"id":99,"kind":7,"parent":"","created":0,"updated":0}"#,
    );
    let err = ms.get_info(V, "bad").unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    assert!(err.to_string().contains("\"bad\""), "{err}");
    let err = ms.walk_info(V, &[]).unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    let err = ms.get_snapshot(V, "bad").unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    // A record that is not JSON at all is the same corruption.
    put_raw(&ms, "garbage", "{not json");
    let err = ms.get_info(V, "garbage").unwrap_err();
    assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
    // The good record is still readable.
    assert_eq!(ms.get_info(V, "good").unwrap().1.kind, Kind::Active);
}

#[test]
fn empty_and_oversized_keys_rejected() {
    let (_d, ms) = store();
    let long = "k".repeat(MAX_KEY_LEN + 1);
    for key in ["", long.as_str()] {
        for kind in [Kind::Active, Kind::View] {
            let err = ms.create_snapshot(V, kind, key, "", Labels::new());
            assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
        }
    }
    // The longest key bolt accepts is fine.
    let max = "k".repeat(MAX_KEY_LEN);
    ms.create_snapshot(V, Kind::Active, &max, "", Labels::new())
        .unwrap();
    ms.create_snapshot(V, Kind::Active, "a", "", Labels::new())
        .unwrap();
    for name in ["", long.as_str()] {
        let err = ms.commit_active(V, "a", name, Usage::default(), Labels::new());
        assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
        let err = ms.check_commit(V, "a", name);
        assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
        let mut info = ms.get_info(V, "a").unwrap().1;
        info.name = name.to_string();
        let err = ms.update_info(V, &info, &[]);
        assert!(matches!(err, Err(Error::InvalidArgument(_))), "{err:?}");
    }
    // Lookups of a key that cannot exist are NotFound, as in containerd.
    assert!(matches!(ms.get_info(V, ""), Err(Error::NotFound(_))));
    assert!(matches!(ms.remove(V, ""), Err(Error::NotFound(_))));
    assert_eq!(ms.walk_info(V, &[]).unwrap().len(), 2);
}
