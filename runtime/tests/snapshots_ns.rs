//! Namespaced snapshots (containerd 1.6 `metadata/snapshot.go` and the lease hooks in
//! `metadata/leases.go`): keys per namespace, snapshots created under a lease are held by it
//! (Prepare/View add the key, Commit adds the name and drops the key, Remove drops the key),
//! the `containerd.io/snapshot.ref` target check, snapshotter aliases, and what Strata does
//! differently by design: Remove deletes at once instead of leaving the backend snapshot to the
//! next collection.

mod common;

use common::{Env, NATIVE, ctx, labels_of, lctx};
use strata_runtime::Resource;
use strata_snapshotters::Kind;

fn snap_res(key: &str) -> Resource {
    Resource {
        id: key.into(),
        kind: format!("snapshots/{NATIVE}"),
    }
}

fn leased(env: &Env, ns: &str, lease: &str) -> Vec<Resource> {
    env.rt.leases().list_resources(&ctx(ns), lease).unwrap()
}

#[test]
fn snapshots_made_under_a_lease_are_held_by_it() {
    let env = Env::new();
    let _g = env.enter();
    env.lease("ns", "l", &[]);
    let l = lctx("ns", "l");
    env.active(&l, NATIVE, "extract", "", &[]);
    assert_eq!(leased(&env, "ns", "l"), vec![snap_res("extract")]);
    let s = env.rt.snapshots();
    env.block_on(s.commit(&l, NATIVE, "layer", "extract", labels_of(&[])))
        .unwrap();
    assert_eq!(
        leased(&env, "ns", "l"),
        vec![snap_res("layer")],
        "commit moves the hold"
    );
    env.block_on(s.view(&l, NATIVE, "inspect", "layer", labels_of(&[])))
        .unwrap();
    env.active(&l, NATIVE, "rootfs", "layer", &[]);
    let held = leased(&env, "ns", "l");
    assert_eq!(
        held,
        vec![snap_res("inspect"), snap_res("layer"), snap_res("rootfs")]
    );

    // Remove under the lease drops the hold (`removeSnapshotLease`).
    env.block_on(s.remove(&l, NATIVE, "inspect")).unwrap();
    assert_eq!(
        leased(&env, "ns", "l"),
        vec![snap_res("layer"), snap_res("rootfs")]
    );

    // Failed calls hold nothing new.
    let out = env.block_on(s.prepare(&l, NATIVE, "orphan", "missing-parent", labels_of(&[])));
    assert_kind!(out, NotFound);
    let out = env.block_on(s.prepare(&l, NATIVE, "rootfs", "", labels_of(&[])));
    assert_kind!(out, AlreadyExists);
    let out = env.block_on(s.commit(&l, NATIVE, "layer", "rootfs", labels_of(&[])));
    assert_kind!(out, AlreadyExists);
    assert_eq!(
        leased(&env, "ns", "l"),
        vec![snap_res("layer"), snap_res("rootfs")]
    );

    // The lease keeps them through a collection; without it they go.
    env.collect();
    for k in ["layer", "rootfs"] {
        assert!(env.has_snapshot(&ctx("ns"), NATIVE, k), "{k}");
    }
    env.rt.leases().delete(&ctx("ns"), "l").unwrap();
    env.collect();
    assert!(
        env.block_on(s.list(&ctx("ns"), NATIVE, &[]))
            .unwrap()
            .is_empty()
    );
}

/// Strata: Remove acts at once (containerd deletes the metadata record and leaves the backend
/// snapshot to the collector); children still block it, as in containerd.
#[test]
fn remove_is_immediate_and_refuses_parents() {
    let env = Env::new();
    let _g = env.enter();
    let c = ctx("rm");
    let s = env.rt.snapshots();
    env.committed(&c, NATIVE, "base", "", &[]);
    env.active(&c, NATIVE, "child", "base", &[]);
    assert_kind!(
        env.block_on(s.remove(&c, NATIVE, "base")),
        FailedPrecondition
    );
    env.block_on(s.remove(&c, NATIVE, "child")).unwrap();
    assert!(!env.has_snapshot(&c, NATIVE, "child"));
    env.block_on(s.remove(&c, NATIVE, "base")).unwrap();
    assert!(!env.has_snapshot(&c, NATIVE, "base"));
    assert_kind!(env.block_on(s.remove(&c, NATIVE, "base")), NotFound);
}

#[test]
fn keys_are_per_namespace() {
    let env = Env::new();
    let _g = env.enter();
    let (a, b) = (ctx("snap-a"), ctx("snap-b"));
    let s = env.rt.snapshots();
    env.committed(&a, NATIVE, "layer", "", &[("from", "a")]);
    assert!(!env.has_snapshot(&b, NATIVE, "layer"));
    assert!(env.block_on(s.list(&b, NATIVE, &[])).unwrap().is_empty());
    // A parent of another namespace does not exist here.
    assert_kind!(
        env.block_on(s.prepare(&b, NATIVE, "k", "layer", labels_of(&[]))),
        NotFound
    );
    assert_kind!(env.block_on(s.remove(&b, NATIVE, "layer")), NotFound);
    env.committed(&b, NATIVE, "layer", "", &[("from", "b")]);
    let info = env.block_on(s.stat(&a, NATIVE, "layer")).unwrap();
    assert_eq!(
        (info.kind, info.labels),
        (Kind::Committed, labels_of(&[("from", "a")]))
    );
    env.block_on(s.remove(&b, NATIVE, "layer")).unwrap();
    assert!(env.has_snapshot(&a, NATIVE, "layer"));
}

/// `containerd.io/snapshot.ref`: Prepare or View whose target already exists in the namespace
/// is AlreadyExists at once (`metadata/snapshot.go` createSnapshot), as the unpacker relies on
/// to skip layers; a target elsewhere does not count.
#[test]
fn an_existing_snapshot_ref_target_is_already_exists() {
    let env = Env::new();
    let _g = env.enter();
    let (a, b) = (ctx("ref-a"), ctx("ref-b"));
    let s = env.rt.snapshots();
    let target = labels_of(&[("containerd.io/snapshot.ref", "sha256:chain1")]);
    env.block_on(s.prepare(&a, NATIVE, "extract-1", "", target.clone()))
        .unwrap();
    env.block_on(s.commit(&a, NATIVE, "sha256:chain1", "extract-1", target.clone()))
        .unwrap();
    let again = env.block_on(s.prepare(&a, NATIVE, "extract-2", "", target.clone()));
    assert_kind!(again, AlreadyExists);
    assert_kind!(
        env.block_on(s.view(&a, NATIVE, "view-2", "", target.clone())),
        AlreadyExists
    );
    assert!(!env.has_snapshot(&a, NATIVE, "extract-2") && !env.has_snapshot(&a, NATIVE, "view-2"));
    // Another namespace does not have the target: it prepares normally.
    env.block_on(s.prepare(&b, NATIVE, "extract-1", "", target))
        .unwrap();
}

/// containerd's snapshotter names are aliases of the backends; an unknown one is NotFound.
#[test]
fn snapshotter_names() {
    let env = Env::new();
    let _g = env.enter();
    let c = ctx("names");
    let s = env.rt.snapshots();
    env.block_on(s.prepare(&c, "native", "k", "", labels_of(&[])))
        .unwrap();
    assert!(env.has_snapshot(&c, NATIVE, "k"));
    assert!(env.has_snapshot(&c, "", "k"), "empty = the default backend");
    assert_kind!(env.block_on(s.stat(&c, "zfs", "k")), NotFound);
    assert_kind!(
        env.block_on(s.prepare(&c, "zfs", "k2", "", labels_of(&[]))),
        NotFound
    );
}
