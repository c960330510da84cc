//! The error variants of CONTAINERD.md §1.3, Mounts recovery and Usage.

use crate::harness::{Ctx, VIEW, opt};
use crate::mount::TempMount;
use strata_snapshotters::Error;

/// Every situation of §1.3, and that failed calls change nothing.
pub async fn error_variants(cx: Ctx) {
    let sn = cx.sn();
    let a_mounts = sn.prepare(VIEW, "a", "", opt()).await.expect("prepare a");
    sn.commit(VIEW, "c", "a", opt()).await.expect("commit c");
    let a_mounts2 = sn
        .prepare(VIEW, "a2", "c", opt())
        .await
        .expect("prepare a2");
    let v_mounts = sn.view(VIEW, "v", "c", opt()).await.expect("view v");
    assert!(!a_mounts.is_empty());
    assert_eq!(
        sn.mounts(VIEW, "a2").await.expect("mounts a2"),
        a_mounts2,
        "mounts of active"
    );
    assert_eq!(
        sn.mounts(VIEW, "v").await.expect("mounts v"),
        v_mounts,
        "mounts of view"
    );

    for key in ["a2", "v", "c"] {
        crate::__assert_err!(
            sn.prepare(VIEW, key, "", opt()).await,
            Error::AlreadyExists(_),
            "prepare {key}"
        );
        crate::__assert_err!(
            sn.view(VIEW, key, "", opt()).await,
            Error::AlreadyExists(_),
            "view {key}"
        );
    }
    crate::__assert_err!(
        sn.prepare(VIEW, "x", "nope", opt()).await,
        Error::NotFound(_),
        "missing parent"
    );
    crate::__assert_err!(
        sn.view(VIEW, "x", "nope", opt()).await,
        Error::NotFound(_),
        "view missing parent"
    );
    for parent in ["a2", "v"] {
        let res = sn.prepare(VIEW, "x", parent, opt()).await;
        crate::__assert_err!(res, Error::InvalidArgument(_), "prepare on {parent}");
        let res = sn.view(VIEW, "x", parent, opt()).await;
        crate::__assert_err!(res, Error::InvalidArgument(_), "view on {parent}");
    }
    crate::__assert_err!(
        sn.stat(VIEW, "x").await,
        Error::NotFound(_),
        "failed prepares leave nothing"
    );

    crate::__assert_err!(sn.stat(VIEW, "nope").await, Error::NotFound(_), "stat");
    crate::__assert_err!(sn.usage(VIEW, "nope").await, Error::NotFound(_), "usage");
    crate::__assert_err!(sn.mounts(VIEW, "nope").await, Error::NotFound(_), "mounts");
    crate::__assert_err!(sn.remove(VIEW, "nope").await, Error::NotFound(_), "remove");
    crate::__assert_err!(
        sn.commit(VIEW, "n", "nope", opt()).await,
        Error::NotFound(_),
        "commit"
    );

    crate::__assert_err!(
        sn.mounts(VIEW, "c").await,
        Error::FailedPrecondition(_),
        "mounts of committed"
    );
    crate::__assert_err!(
        sn.commit(VIEW, "c", "a2", opt()).await,
        Error::AlreadyExists(_),
        "commit to c"
    );
    crate::__assert_err!(
        sn.commit(VIEW, "c", "nope", opt()).await,
        Error::AlreadyExists(_),
        "name first"
    );
    crate::__assert_err!(
        sn.commit(VIEW, "v", "a2", opt()).await,
        Error::AlreadyExists(_),
        "commit to view key"
    );
    crate::__assert_err!(
        sn.commit(VIEW, "cv", "v", opt()).await,
        Error::FailedPrecondition(_),
        "commit view"
    );
    crate::__assert_err!(
        sn.commit(VIEW, "cc", "c", opt()).await,
        Error::FailedPrecondition(_),
        "commit committed"
    );
    crate::__assert_err!(
        sn.remove(VIEW, "c").await,
        Error::FailedPrecondition(_),
        "remove with children"
    );

    assert_eq!(
        sn.stat(VIEW, "a2").await.expect("a2 intact").kind,
        crate::Kind::Active
    );
    assert_eq!(
        sn.stat(VIEW, "v").await.expect("v intact").kind,
        crate::Kind::View
    );
    for gone in ["cv", "cc", "n"] {
        crate::__assert_err!(
            sn.stat(VIEW, gone).await,
            Error::NotFound(_),
            "{gone} never created"
        );
    }
    check_usage(&cx).await;
}

/// Usage of an active counts what was written; a committed snapshot keeps that value.
async fn check_usage(cx: &Ctx) {
    let sn = cx.sn();
    let mounts = sn.prepare(VIEW, "u", "", opt()).await.expect("prepare u");
    {
        let m = TempMount::new(&mounts, &cx.dir("u")).expect("mount");
        std::fs::write(m.path().join("data"), vec![7u8; 64 * 1024]).expect("write");
    }
    let live = sn.usage(VIEW, "u").await.expect("usage of active");
    assert!(
        live.size >= 64 * 1024,
        "usage {live:?} must count the 64 KiB written"
    );
    assert!(live.inodes >= 1, "usage {live:?} must count the file");
    sn.commit(VIEW, "uc", "u", opt()).await.expect("commit u");
    assert_eq!(
        sn.usage(VIEW, "uc").await.expect("usage of committed"),
        live
    );
    sn.usage(VIEW, "v").await.expect("usage of a view");
}
