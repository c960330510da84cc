//! Walk (testsuite.go:972-1102), StatInWalk (issues.go:174-195) and filter errors.

use std::time::Duration;

use strata_core::labels::Labels;

use crate::harness::{Ctx, VIEW, opt};
use strata_snapshotters::{Error, Snapshotter};

fn walk_labels(extra: Option<&str>) -> Labels {
    let mut l = Labels::from([(
        "containerd.io/gc.root".to_string(),
        "check-walk".to_string(),
    )]);
    if let Some(v) = extra {
        l.insert("l".into(), v.into());
    }
    l
}

async fn walk_snapshots(sn: &dyn Snapshotter) {
    let o = || walk_labels(None);
    sn.prepare(VIEW, "a-np", "", o()).await.expect("a-np");
    sn.prepare(VIEW, "p-tmp", "", o()).await.expect("p-tmp");
    sn.commit(VIEW, "p", "p-tmp", o()).await.expect("p");
    sn.prepare(VIEW, "a", "p", o()).await.expect("a");
    sn.view(VIEW, "v", "p", o()).await.expect("v");
    sn.prepare(VIEW, "p-wl-tmp", "", o())
        .await
        .expect("p-wl-tmp");
    sn.commit(VIEW, "p-wl", "p-wl-tmp", walk_labels(Some("1")))
        .await
        .expect("p-wl");
    sn.prepare(VIEW, "a-wl", "p-wl", walk_labels(Some("2")))
        .await
        .expect("a-wl");
    sn.view(VIEW, "v-wl", "p-wl", walk_labels(Some("3")))
        .await
        .expect("v-wl");
    sn.prepare(VIEW, "a-np-wl", "", walk_labels(Some("2")))
        .await
        .expect("a-np-wl");
}

/// The ten filter cases of containerd's Walk test.
pub async fn walk(cx: Ctx) {
    let sn = cx.sn().as_ref();
    walk_snapshots(sn).await;
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["a-np", "p", "a", "v", "p-wl", "a-wl", "v-wl", "a-np-wl"],
            &[r#"labels."containerd.io/gc.root"==check-walk"#],
        ),
        (
            &["a-np", "a", "a-wl", "a-np-wl"],
            &[r#"kind==active,labels."containerd.io/gc.root"==check-walk"#],
        ),
        (
            &["v", "v-wl"],
            &[r#"kind==view,labels."containerd.io/gc.root"==check-walk"#],
        ),
        (
            &["p", "p-wl"],
            &[r#"kind==committed,labels."containerd.io/gc.root"==check-walk"#],
        ),
        (&["p", "a-np-wl"], &["name==p", "name==a-np-wl"]),
        (&["a-wl"], &["name==a-wl,labels.l"]),
        (&["a", "v"], &["parent==p"]),
        (
            &["a", "v", "a-wl", "v-wl"],
            &[r#"parent!="",labels."containerd.io/gc.root"==check-walk"#],
        ),
        (&["p-wl", "a-wl", "v-wl", "a-np-wl"], &["labels.l"]),
        (&["a-wl", "a-np-wl"], &["labels.l==2"]),
    ];
    for (i, (matches, filters)) in cases.iter().enumerate() {
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let mut actual: Vec<String> = sn
            .list(VIEW, &filters)
            .await
            .unwrap_or_else(|e| panic!("[{i}] walk {filters:?}: {e}"))
            .into_iter()
            .map(|info| info.name)
            .collect();
        let mut expected: Vec<String> = matches.iter().map(|m| m.to_string()).collect();
        actual.sort();
        expected.sort();
        assert_eq!(actual, expected, "[{i}] filters {filters:?}");
    }
}

/// Stat of every walked snapshot returns the identical Info, also while other walks run.
pub async fn stat_in_walk(cx: Ctx) {
    let sn = cx.sn().clone();
    let p = "stats-in-walk-";
    sn.prepare(VIEW, &format!("{p}c1-a"), "", opt())
        .await
        .expect("prepare");
    sn.commit(VIEW, &format!("{p}c1"), &format!("{p}c1-a"), opt())
        .await
        .expect("commit");
    sn.prepare(VIEW, &format!("{p}c2-a"), &format!("{p}c1"), opt())
        .await
        .expect("prepare");
    sn.commit(VIEW, &format!("{p}c2"), &format!("{p}c2-a"), opt())
        .await
        .expect("commit");
    sn.prepare(VIEW, &format!("{p}a1"), &format!("{p}c2"), opt())
        .await
        .expect("prepare");
    sn.view(VIEW, &format!("{p}v1"), &format!("{p}c2"), opt())
        .await
        .expect("view");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let sn = sn.clone();
        tasks.push(tokio::spawn(async move {
            for info in sn.list(VIEW, &[]).await.expect("walk") {
                let again = sn.stat(VIEW, &info.name).await.expect("stat in walk");
                assert_eq!(info, again, "stat must equal the walked info");
            }
        }));
    }
    let all = futures::future::try_join_all(tasks);
    tokio::time::timeout(Duration::from_secs(30), all)
        .await
        .expect("walk and stat must not deadlock")
        .expect("walker task");
    assert_eq!(sn.list(VIEW, &[]).await.expect("walk").len(), 4);
}

/// Malformed filters are InvalidArgument (containerd wraps parse errors in it).
pub async fn filter_errors(cx: Ctx) {
    let sn = cx.sn().as_ref();
    sn.prepare(VIEW, "a", "", opt()).await.expect("prepare");
    for bad in [
        "name==/abs",
        r#"labels."unterminated"#,
        ",name==a",
        "name==a,",
        "name~=[invalid",
    ] {
        let res = sn.list(VIEW, &[bad.to_string()]).await;
        crate::__assert_err!(res, Error::InvalidArgument(_), "filter {bad:?}");
    }
    let res = sn
        .list(VIEW, &["name==a".to_string(), "name==/abs".to_string()])
        .await;
    crate::__assert_err!(
        res,
        Error::InvalidArgument(_),
        "one bad filter among several"
    );
    let ok = sn
        .list(VIEW, &[r#"name~="^a$""#.to_string()])
        .await
        .expect("regex filter");
    assert_eq!(ok.len(), 1);
}
