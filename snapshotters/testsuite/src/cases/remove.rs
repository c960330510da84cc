//! Remove (testsuite.go:750-778) and RemoveIntermediateSnapshot (504-553).

use crate::harness::{Ctx, VIEW, opt};
use crate::layers::prepare_mount;
use strata_snapshotters::Error;

/// Removed keys and names can be reused, for any kind.
pub async fn remove(cx: Ctx) {
    let sn = cx.sn();
    sn.prepare(VIEW, "committed-a", "", opt())
        .await
        .expect("prepare");
    sn.commit(VIEW, "committed-1", "committed-a", opt())
        .await
        .expect("commit");
    sn.prepare(VIEW, "reuse-1", "committed-1", opt())
        .await
        .expect("prepare reuse-1");
    sn.remove(VIEW, "reuse-1").await.expect("remove active");
    sn.view(VIEW, "reuse-1", "committed-1", opt())
        .await
        .expect("view reuse-1");
    sn.remove(VIEW, "reuse-1").await.expect("remove view");
    sn.prepare(VIEW, "reuse-1", "", opt())
        .await
        .expect("prepare reuse-1 again");
    sn.remove(VIEW, "committed-1")
        .await
        .expect("remove committed");
    sn.commit(VIEW, "committed-1", "reuse-1", opt())
        .await
        .expect("commit to a reused name");
    let info = sn.stat(VIEW, "committed-1").await.expect("stat");
    assert_eq!(info.parent, "");
    crate::__assert_err!(
        sn.remove(VIEW, "reuse-1").await,
        Error::NotFound(_),
        "remove committed key"
    );
}

/// base <- inter <- top: removing inter fails while top exists; then top, inter, base go.
pub async fn remove_intermediate_snapshot(cx: Ctx) {
    let sn = cx.sn();
    let base = prepare_mount(&cx, "base", "").await;
    sn.commit(VIEW, "committed-base", "base", opt())
        .await
        .expect("commit base");
    sn.prepare(VIEW, "intermediate", "committed-base", opt())
        .await
        .expect("prepare");
    sn.commit(VIEW, "committed-inter", "intermediate", opt())
        .await
        .expect("commit");
    sn.prepare(VIEW, "toplayer", "committed-inter", opt())
        .await
        .expect("prepare top");
    let res = sn.remove(VIEW, "committed-inter").await;
    crate::__assert_err!(
        res,
        Error::FailedPrecondition(_),
        "remove of an intermediate layer"
    );
    sn.remove(VIEW, "toplayer").await.expect("remove top");
    sn.remove(VIEW, "committed-inter")
        .await
        .expect("remove inter");
    drop(base);
    sn.remove(VIEW, "committed-base")
        .await
        .expect("remove base");
    assert!(sn.list(VIEW, &[]).await.expect("list").is_empty());
}
