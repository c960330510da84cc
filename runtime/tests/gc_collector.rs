//! A whole collection, ported from containerd 1.6 `metadata/db_test.go` TestMetadataCollector:
//! blobs, snapshot chains, a container, an image, a lease and a flat lease in one namespace on
//! the native backend; after one pass exactly the objects containerd keeps remain, and the
//! bytes of removed blobs are gone.

mod common;

use std::collections::BTreeSet;

use common::{Env, NATIVE, bytes_for, container, ctx, digest_for, image};
use strata_core::digest::Digest;
use strata_runtime::Ctx;

enum Obj {
    /// A blob (`bytes_for(i)`), its labels, and whether the pass removes it.
    Blob(u64, Vec<(String, String)>, bool),
    /// A committed snapshot: key, parent, labels, removed.
    Snap(&'static str, &'static str, Vec<(String, String)>, bool),
    Container(&'static str, &'static str),
    Image(&'static str, u64),
    /// A lease: id, content it holds, snapshots it holds, labels.
    Lease(
        &'static str,
        Vec<u64>,
        Vec<&'static str>,
        Vec<(String, String)>,
    ),
}
use Obj::{Blob, Container, Image, Lease, Snap};

fn l(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn ref0(i: u64) -> Vec<(String, String)> {
    l(&[("containerd.io/gc.ref.content.0", digest_for(i).to_string())])
}

fn objects() -> Vec<Obj> {
    let now = common::rfc3339_in(0);
    vec![
        Blob(1, vec![], true),
        Blob(2, vec![], false),
        Blob(3, vec![], true),
        Blob(4, l(&[("containerd.io/gc.root", now.clone())]), false),
        Snap("1", "", vec![], false),
        Snap("2", "1", vec![], false),
        Snap("3", "2", vec![], false),
        Snap("4", "3", vec![], false),
        Snap("5", "3", vec![], true),
        Container("1", "4"),
        Image("image-1", 2),
        // Test lease preservation
        Blob(5, ref0(6), false),
        Blob(6, vec![], false),
        Blob(7, vec![], false),
        Snap("6", "", ref0(7), false),
        Lease("lease-1", vec![5], vec!["6"], vec![]),
        // Test flat lease
        Blob(8, ref0(9), false),
        Blob(9, vec![], true),
        Blob(10, vec![], true),
        Snap("7", "", ref0(10), false),
        Snap("8", "7", vec![], false),
        Snap("9", "8", vec![], false),
        Lease(
            "lease-2",
            vec![8],
            vec!["9"],
            l(&[("containerd.io/gc.flat", now)]),
        ),
    ]
}

fn labels(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

fn create(env: &Env, c: &Ctx, obj: &Obj) {
    match obj {
        Blob(i, lb, _) => drop(env.write_blob(c, &bytes_for(*i), &labels(lb))),
        Snap(key, parent, lb, _) => env.committed(c, NATIVE, key, parent, &labels(lb)),
        Container(id, key) => drop(
            env.rt
                .containers()
                .create(c, container(id, "native", key, &[]))
                .unwrap(),
        ),
        Image(name, i) => drop(
            env.rt
                .images()
                .create(c, image(name, &digest_for(*i), &[]))
                .unwrap(),
        ),
        Lease(id, blobs, snaps, lb) => {
            env.lease(&c.namespace, id, &labels(lb));
            for i in blobs {
                env.hold(&c.namespace, id, "content", &digest_for(*i).to_string());
            }
            for k in snaps {
                env.hold(&c.namespace, id, "snapshots/native", k);
            }
        }
    }
}

#[test]
fn metadata_collector() {
    let env = Env::new();
    let _g = env.enter();
    let c = ctx("test");
    let objects = objects();
    for obj in &objects {
        create(&env, &c, obj);
    }
    let (mut blobs, mut snaps, mut leases) = (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    let mut removed_blobs = Vec::new();
    for obj in &objects {
        match obj {
            Blob(i, _, false) => drop(blobs.insert(digest_for(*i))),
            Blob(i, _, true) => removed_blobs.push(digest_for(*i)),
            Snap(k, _, _, false) => drop(snaps.insert(k.to_string())),
            Lease(id, ..) => drop(leases.insert(id.to_string())),
            _ => {}
        }
    }

    let stats = env.collect();

    let got_blobs: BTreeSet<Digest> = env
        .rt
        .content()
        .list(&c, &[])
        .unwrap()
        .into_iter()
        .map(|i| i.digest)
        .collect();
    assert_eq!(got_blobs, blobs);
    let infos = env
        .block_on(env.rt.snapshots().list(&c, NATIVE, &[]))
        .unwrap();
    let got_snaps: BTreeSet<String> = infos.into_iter().map(|i| i.name).collect();
    assert_eq!(got_snaps, snaps);
    let got_leases: BTreeSet<String> = env
        .rt
        .leases()
        .list(&c, &[])
        .unwrap()
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert_eq!(got_leases, leases);
    assert!(env.rt.content().list_statuses(&c, &[]).unwrap().is_empty());
    assert_eq!(
        (stats.content, stats.snapshots, stats.leases),
        (removed_blobs.len(), 1, 0)
    );

    // The removed blobs' bytes are gone: no namespace can share them any more.
    let other = ctx("other");
    for d in &removed_blobs {
        assert!(
            !env.ingest(&other, &format!("probe-{d}"), Some(d)),
            "bytes of {d} kept"
        );
    }
    for d in &blobs {
        assert!(
            env.ingest(&other, &format!("probe-{d}"), Some(d)),
            "bytes of {d} lost"
        );
    }
}
