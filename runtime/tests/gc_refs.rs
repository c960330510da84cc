//! Garbage collection references, ported from containerd 1.6 `metadata/gc_test.go` TestGCRefs.
//!
//! containerd's test lists the direct references of each node; here each node of the same
//! fixture is made the only root (held by a lease, flat for the flat cases) in a namespace of
//! its own, a pass runs, and what stays must be exactly what containerd's reference table
//! reaches from it. containerd's `overlay` snapshotter is the native backend here; its
//! cross-snapshotter case (`btrfs/sn1`) runs on overlay in its own test.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{Env, NATIVE, bytes_for, ctx, digest_for};
use strata_runtime::Ctx;

const CONTENT_REF: &str = "containerd.io/gc.ref.content";
const SNAP_REF: &str = "containerd.io/gc.ref.snapshot.native";
const FLAT: &str = "containerd.io/gc.flat";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum N {
    /// A blob, by its `bytes_for` index.
    C(u64),
    /// A native snapshot.
    S(&'static str),
    /// An ingest.
    I(&'static str),
}
use N::{C, I, S};

/// containerd's table, on this fixture: every node and the nodes it references directly.
fn refs() -> BTreeMap<N, Vec<N>> {
    [
        (C(1), vec![]),
        (C(2), vec![]),
        (C(3), vec![]),
        (C(4), vec![C(1)]),
        (C(5), vec![C(2), C(3)]),
        (C(6), vec![]), // `gc.ref.contentbad` is no reference
        (C(7), vec![C(2), C(3)]),
        (C(8), vec![]),
        (S("sn1"), vec![]),
        (S("sn2"), vec![S("sn1")]),
        (S("sn3"), vec![S("sn2")]),
        (S("sn4"), vec![S("sn1")]),
        (S("sn5"), vec![S("sn1"), S("sn2")]),
        (S("snc"), vec![C(1), C(6)]),
        (I("ingest-2"), vec![C(8)]),
    ]
    .into_iter()
    .collect()
}

/// What a flat root reaches: a snapshot keeps its parent chain only, a blob nothing.
fn flat_refs(n: N) -> Vec<N> {
    match n {
        S("sn2") => vec![S("sn1")],
        S("sn3") => vec![S("sn2")],
        _ => vec![],
    }
}

fn closure(root: N, flat: bool) -> BTreeSet<N> {
    let table = refs();
    let mut seen = BTreeSet::new();
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if seen.insert(n) {
            stack.extend(if flat {
                flat_refs(n)
            } else {
                table[&n].clone()
            });
        }
    }
    seen
}

fn ds(i: u64) -> String {
    digest_for(i).to_string()
}

/// Builds containerd's TestGCRefs fixture in the context's namespace; the shared ingest needs
/// `donor` to hold blob 8 already.
fn fixture(env: &Env, c: &Ctx) {
    assert!(
        env.orphan_ingest(&c.namespace, "ingest-2", Some(&digest_for(8))),
        "shared ingest"
    );
    let blob = |i: u64, labels: &[(&str, &str)]| drop(env.write_blob(c, &bytes_for(i), labels));
    for i in [1, 2, 3, 8] {
        blob(i, &[]);
    }
    blob(4, &[(CONTENT_REF, &ds(1))]);
    blob(
        5,
        &[
            (&format!("{CONTENT_REF}.anything-1"), &ds(2)),
            (&format!("{CONTENT_REF}.anything-2"), &ds(3)),
        ],
    );
    blob(6, &[(&format!("{CONTENT_REF}bad"), &ds(1))]);
    blob(
        7,
        &[
            (&format!("{CONTENT_REF}/anything-1"), &ds(2)),
            (&format!("{CONTENT_REF}/anything-2"), &ds(3)),
        ],
    );
    env.committed(c, NATIVE, "sn1", "", &[]);
    env.committed(c, NATIVE, "sn2", "sn1", &[]);
    env.committed(c, NATIVE, "sn3", "sn2", &[]);
    env.committed(c, NATIVE, "sn4", "", &[(SNAP_REF, "sn1")]);
    let (a1, a2) = (
        format!("{SNAP_REF}/anything-1"),
        format!("{SNAP_REF}/anything-2"),
    );
    env.committed(c, NATIVE, "sn5", "", &[(&a1, "sn1"), (&a2, "sn2")]);
    let keep_me = format!("{CONTENT_REF}.keep-me");
    env.committed(
        c,
        NATIVE,
        "snc",
        "",
        &[(CONTENT_REF, &ds(1)), (&keep_me, &ds(6))],
    );
}

/// Makes `n` the root of namespace `ns` through lease `root`.
fn root(env: &Env, ns: &str, n: N, flat: bool) {
    let flat_label = [(FLAT, "yes")];
    env.lease(ns, "root", if flat { &flat_label } else { &[] });
    match n {
        C(i) => env.hold(ns, "root", "content", &ds(i)),
        S(k) => env.hold(ns, "root", "snapshots/native", k),
        I(r) => env.hold(ns, "root", "ingests", r),
    }
}

fn present(env: &Env, c: &Ctx) -> BTreeSet<N> {
    let mut out = BTreeSet::new();
    for n in refs().keys() {
        let here = match *n {
            C(i) => env.has_blob(c, &digest_for(i)),
            S(k) => env.has_snapshot(c, NATIVE, k),
            // A shared ingest has no store status; it shows through the blob it keeps.
            I(_) => continue,
        };
        if here {
            out.insert(*n);
        }
    }
    out
}

#[test]
fn gc_refs() {
    let env = Env::new();
    let _g = env.enter();
    env.write_blob(
        &ctx("donor"),
        &bytes_for(8),
        &[("containerd.io/gc.root", "1")],
    );
    let mut cases: Vec<(N, bool)> = refs().keys().map(|n| (*n, false)).collect();
    for n in [S("sn2"), S("sn3"), S("sn4"), S("sn5"), S("snc"), C(4), C(5)] {
        cases.push((n, true));
    }
    let mut namespaces = Vec::new();
    for (i, (n, flat)) in cases.iter().enumerate() {
        let ns = format!("case-{i}");
        fixture(&env, &ctx(&ns));
        root(&env, &ns, *n, *flat);
        namespaces.push(ns);
    }
    fixture(&env, &ctx("no-root"));

    env.collect();

    for ((n, flat), ns) in cases.iter().zip(&namespaces) {
        let mut want = closure(*n, *flat);
        want.retain(|n| !matches!(n, I(_)));
        assert_eq!(
            present(&env, &ctx(ns)),
            want,
            "root {n:?} (flat: {flat}) in {ns}"
        );
        assert!(env.has_lease(&ctx(ns), "root"));
    }
    assert!(
        present(&env, &ctx("no-root")).is_empty(),
        "nothing is kept without a root"
    );
    assert!(env.has_blob(&ctx("donor"), &digest_for(8)));
}

/// A node reached both flat and not is expanded (containerd strips the flat bit when it marks).
#[test]
fn a_node_held_flat_and_normally_keeps_its_references() {
    let env = Env::new();
    let _g = env.enter();
    env.write_blob(
        &ctx("donor"),
        &bytes_for(8),
        &[("containerd.io/gc.root", "1")],
    );
    let c = ctx("both");
    fixture(&env, &c);
    env.lease("both", "flat", &[(FLAT, "1")]);
    env.lease("both", "normal", &[]);
    env.hold("both", "flat", "snapshots/native", "sn5");
    env.hold("both", "normal", "snapshots/native", "sn5");
    env.collect();
    assert_eq!(present(&env, &c), closure(S("sn5"), false));
}

/// Snapshot label references name any snapshotter, by containerd's names (aliases) or by the
/// backend's own name; an unknown snapshotter is a dead edge. Needs a second backend: overlay.
#[test]
fn cross_snapshotter_references() {
    let env = Env::new();
    let _g = env.enter();
    let overlay = env.require_overlay();
    let c = ctx("cross");
    env.committed(&c, NATIVE, "sn1", "", &[]);
    env.committed(&c, overlay, "sn1", "", &[]);
    env.committed(&c, overlay, "sn2", "", &[]);
    let refs = [
        ("containerd.io/gc.ref.snapshot.overlayfs", "sn1"),
        ("containerd.io/gc.ref.snapshot.strata-overlay/x", "sn2"),
        (SNAP_REF, "sn1"),
        ("containerd.io/gc.ref.snapshot.btrfs", "sn1"),
    ];
    env.committed(&c, NATIVE, "sn4", "", &refs);
    env.committed(&c, NATIVE, "garbage", "", &[]);
    env.committed(&c, overlay, "garbage", "", &[]);
    env.committed(&c, overlay, "leased", "", &[]);
    env.lease("cross", "root", &[]);
    env.hold("cross", "root", "snapshots/native", "sn4");
    env.hold("cross", "root", "snapshots/overlayfs", "leased");
    // A container names its snapshotter as containerd does.
    env.active(&c, overlay, "rootfs", "sn2", &[]);
    let ctr = common::container("ctr", "overlayfs", "rootfs", &[]);
    env.rt.containers().create(&c, ctr).unwrap();
    env.collect();
    assert!(env.has_snapshot(&c, NATIVE, "sn4"));
    assert!(env.has_snapshot(&c, NATIVE, "sn1"));
    for k in ["sn1", "sn2", "leased", "rootfs"] {
        assert!(env.has_snapshot(&c, overlay, k), "overlay {k}");
    }
    assert!(!env.has_snapshot(&c, NATIVE, "garbage"));
    assert!(!env.has_snapshot(&c, overlay, "garbage"));

    // Flat: the labels are not followed at all.
    let f = ctx("cross-flat");
    env.committed(&f, NATIVE, "sn1", "", &[]);
    env.committed(&f, overlay, "sn1", "", &[]);
    env.committed(&f, NATIVE, "sn4", "", &refs[..1]);
    env.lease("cross-flat", "root", &[(FLAT, "1")]);
    env.hold("cross-flat", "root", "snapshots/native", "sn4");
    env.collect();
    assert!(env.has_snapshot(&f, NATIVE, "sn4"));
    assert!(!env.has_snapshot(&f, NATIVE, "sn1"));
    assert!(!env.has_snapshot(&f, overlay, "sn1"));
}

/// A lease of one namespace holds nothing in another, and label references stay in their
/// namespace (nodes are per namespace).
#[test]
fn references_do_not_cross_namespaces() {
    let env = Env::new();
    let _g = env.enter();
    let (a, b) = (ctx("ref-a"), ctx("ref-b"));
    env.write_blob(&a, &bytes_for(1), &[]);
    env.write_blob(&b, &bytes_for(1), &[]);
    env.write_blob(&b, &bytes_for(2), &[]);
    env.write_blob(&a, &bytes_for(4), &[(CONTENT_REF, &ds(2))]);
    env.committed(&b, NATIVE, "s", "", &[]);
    env.lease("ref-a", "l", &[]);
    env.hold("ref-a", "l", "content", &ds(1));
    env.hold("ref-a", "l", "content", &ds(4));
    env.hold("ref-a", "l", "snapshots/native", "s");
    env.collect();
    assert!(env.has_blob(&a, &digest_for(1)) && env.has_blob(&a, &digest_for(4)));
    assert!(!env.has_blob(&b, &digest_for(1)));
    assert!(!env.has_blob(&b, &digest_for(2)));
    assert!(!env.has_snapshot(&b, NATIVE, "s"));
}
