//! Removal of every kind of collectable object, ported from containerd 1.6
//! `metadata/gc_test.go` TestGCRemove: blobs, snapshots, leases and ingests in two namespaces,
//! every other one unreachable; one pass removes exactly those (containerd's `remove` for
//! each node type) and leaves the rest, whatever namespace holds the same key.

mod common;

use std::collections::BTreeSet;

use common::{Env, NATIVE, bytes_for, ctx, digest_for, rfc3339_in};
use strata_runtime::Ctx;

const ROOT: (&str, &str) = ("containerd.io/gc.root", "always");

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Content(&'static str, u64),
    Snapshot(&'static str, &'static str),
    Lease(&'static str, &'static str),
    Ingest(&'static str, &'static str),
}
use Node::{Content, Ingest, Lease, Snapshot};

/// containerd's `all`, in its order: even positions are removed, odd ones remain.
const ALL: [Node; 14] = [
    Content("ns1", 1),
    Content("ns1", 2),
    Content("ns1", 3),
    Content("ns2", 1),
    Content("ns2", 2),
    Snapshot("ns1", "sn1"),
    Snapshot("ns1", "sn2"),
    Snapshot("ns1", "sn3"),
    Snapshot("ns1", "sn4"),
    Snapshot("ns2", "sn1"),
    Lease("ns1", "l1"),
    Lease("ns2", "l2"),
    Ingest("ns1", "ingest-1"),
    Ingest("ns2", "ingest-2"),
];

/// Creates `n`, reachable (a root by its own labels or expiry) when `keep`.
fn create(env: &Env, n: Node, keep: bool) {
    let root: &[(&str, &str)] = if keep { &[ROOT] } else { &[] };
    match n {
        Content(ns, i) => drop(env.write_blob(&ctx(ns), &bytes_for(i), root)),
        Snapshot(ns, key) => env.committed(&ctx(ns), NATIVE, key, "", root),
        Lease(ns, id) => {
            let expire = rfc3339_in(if keep { 3600 } else { -3600 });
            env.lease(ns, id, &[("containerd.io/gc.expire", &expire)]);
        }
        Ingest(ns, r) if keep => drop(env.ingest(&ctx(ns), r, None)),
        Ingest(ns, r) => drop(env.orphan_ingest(ns, r, None)),
    }
}

fn present(env: &Env) -> BTreeSet<Node> {
    let mut out = BTreeSet::new();
    for n in ALL {
        let c = |ns: &str| -> Ctx { ctx(ns) };
        let here = match n {
            Content(ns, i) => env.has_blob(&c(ns), &digest_for(i)),
            Snapshot(ns, key) => env.has_snapshot(&c(ns), NATIVE, key),
            Lease(ns, id) => env.has_lease(&c(ns), id),
            Ingest(ns, r) => env.has_ingest(&c(ns), r),
        };
        if here {
            out.insert(n);
        }
    }
    out
}

#[test]
fn gc_remove() {
    let env = Env::new();
    let _g = env.enter();
    for (i, n) in ALL.iter().enumerate() {
        create(&env, *n, i % 2 == 1);
    }
    assert_eq!(
        present(&env),
        ALL.into_iter().collect(),
        "scan all before the pass"
    );

    let stats = env.collect();

    let remaining: BTreeSet<Node> = ALL
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 2 == 1)
        .map(|(_, n)| *n)
        .collect();
    assert_eq!(present(&env), remaining, "scan all after the pass");
    assert_eq!(
        (stats.content, stats.snapshots, stats.leases, stats.ingests),
        (3, 2, 1, 1),
        "{stats:?}"
    );
    // Removing is idempotent: nothing more goes on the next pass.
    let again = env.collect();
    assert_eq!(
        (again.content, again.snapshots, again.leases, again.ingests),
        (0, 0, 0, 0)
    );
    assert_eq!(present(&env), remaining);
}
