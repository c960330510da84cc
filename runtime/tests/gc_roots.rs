//! Garbage collection roots, ported from containerd 1.6 `metadata/gc_test.go` TestGCRoots.
//!
//! containerd's test checks the root set `scanRoots` emits; here the same fixture is built
//! through the runtime's API and a pass is run: every root and what it references stays,
//! everything else goes. containerd's `overlay` snapshotter is the native backend here, named
//! as containerd's clients name it (`native`) in labels and container records. Not portable:
//! an ingest whose expiry is already past (`ingest-2`; expiry is always now + 24 h here).

mod common;

use common::{Env, NATIVE, bytes_for, container, ctx, digest_for, image, rfc3339_in};
use strata_core::digest::Digest;
use strata_runtime::Ctx;

const SNAP_REF: &str = "containerd.io/gc.ref.snapshot.native";
const CONTENT_REF: &str = "containerd.io/gc.ref.content";
const ROOT: &str = "containerd.io/gc.root";
const EXPIRE: &str = "containerd.io/gc.expire";
const FLAT: &str = "containerd.io/gc.flat";

fn d(i: u64) -> Digest {
    digest_for(i)
}

fn ds(i: u64) -> String {
    digest_for(i).to_string()
}

#[test]
fn gc_roots() {
    let env = Env::new();
    let _g = env.enter();
    let (ns1, ns2, ns3) = (ctx("ns1"), ctx("ns2"), ctx("ns3"));
    let blob =
        |c: &Ctx, i: u64, labels: &[(&str, &str)]| drop(env.write_blob(c, &bytes_for(i), labels));
    let snap =
        |c: &Ctx, key: &str, labels: &[(&str, &str)]| env.committed(c, NATIVE, key, "", labels);

    // ns1: images and containers are roots, with their label references.
    for i in [1, 2, 3, 7, 8, 9] {
        blob(&ns1, i, &[]);
    }
    for i in 1..=9 {
        let key = format!("sn{i}");
        snap(&ns1, &key, if i == 3 { &[(ROOT, "always")] } else { &[] });
    }
    let images = env.rt.images();
    let containers = env.rt.containers();
    images.create(&ns1, image("image1", &d(1), &[])).unwrap();
    images
        .create(&ns1, image("image2", &d(2), &[(SNAP_REF, "sn2")]))
        .unwrap();
    containers
        .create(&ns1, container("container1", "native", "sn4", &[]))
        .unwrap();
    containers
        .create(
            &ns1,
            container("container2", "native", "sn5", &[(SNAP_REF, "sn6")]),
        )
        .unwrap();
    let (any1, any2) = (
        format!("{SNAP_REF}/anything-1"),
        format!("{SNAP_REF}/anything-2"),
    );
    let refs3 = [
        (any1.as_str(), "sn8"),
        (any2.as_str(), "sn9"),
        (CONTENT_REF, &ds(7)),
    ];
    containers
        .create(&ns1, container("container3", "native", "sn7", &refs3))
        .unwrap();
    let (c0, c1) = (format!("{CONTENT_REF}.0"), format!("{CONTENT_REF}.1"));
    let refs4 = [(c0.as_str(), &*ds(8)), (c1.as_str(), &*ds(9))];
    containers
        .create(&ns1, container("container4", "", "", &refs4))
        .unwrap();
    env.orphan_ingest("ns1", "ingest-1", None); // no expiry and no lease: not a root
    env.ingest(&ns1, "ingest-3", None); // unleased: expires in 24 hours, a root until then

    // ns2: leases. l4 has expired; ingest-5 and ingest-7 are shared ingests expecting d8, d9.
    env.lease("ns2", "l1", &[]);
    env.lease("ns2", "l2", &[]);
    env.lease("ns2", "l3", &[(EXPIRE, &rfc3339_in(3600))]);
    env.lease("ns2", "l4", &[(EXPIRE, &rfc3339_in(-3600))]);
    assert!(env.ingest(&common::lctx("ns2", "l3"), "ingest-5", Some(&d(8))));
    assert!(env.ingest(&common::lctx("ns2", "l4"), "ingest-7", Some(&d(9))));
    env.ingest(&common::lctx("ns2", "l3"), "ingest-4", None);
    env.ingest(&common::lctx("ns2", "l4"), "ingest-6", None);
    blob(&ns2, 1, &[]);
    blob(&ns2, 2, &[(ROOT, "always")]);
    for i in [4, 5, 6, 7, 8, 9, 10, 11] {
        blob(&ns2, i, &[]);
    }
    for key in ["sn5", "sn6", "sn7", "sn8"] {
        snap(&ns2, key, &[]);
    }
    images
        .create(&ns2, image("image3", &d(10), &[(CONTENT_REF, &ds(11))]))
        .unwrap();
    let content = |lease, i| env.hold("ns2", lease, "content", &ds(i));
    let snapshot = |lease, key| env.hold("ns2", lease, "snapshots/native", key);
    snapshot("l1", "sn5");
    snapshot("l2", "sn6");
    content("l1", 4);
    content("l2", 5);
    content("l3", 6);
    snapshot("l3", "sn7");
    content("l4", 7);
    snapshot("l4", "sn8");

    // ns3: a flat lease. Its blob and snapshot keep nothing through labels (the snapshot keeps
    // its parent); its ingest is an ordinary root and keeps its expected blob.
    env.lease("ns3", "l1", &[(FLAT, &rfc3339_in(3600))]);
    assert!(env.ingest(&common::lctx("ns3", "l1"), "ingest-1", Some(&d(4))));
    blob(&ns3, 1, &[(&format!("{CONTENT_REF}.0"), &ds(2))]);
    for i in [2, 3, 4] {
        blob(&ns3, i, &[]);
    }
    env.committed(&ns3, NATIVE, "sn0", "", &[]);
    env.committed(&ns3, NATIVE, "sn1", "sn0", &[(CONTENT_REF, &ds(3))]);
    env.hold("ns3", "l1", "content", &ds(1));
    env.hold("ns3", "l1", "snapshots/native", "sn1");

    let stats = env.collect();

    let blobs = |c: &Ctx, kept: &[u64], gone: &[u64]| {
        for i in kept {
            assert!(env.has_blob(c, &d(*i)), "{c:?}: blob {i} should be kept");
        }
        for i in gone {
            assert!(
                !env.has_blob(c, &d(*i)),
                "{c:?}: blob {i} should be collected"
            );
        }
    };
    let snaps = |c: &Ctx, kept: &[&str], gone: &[&str]| {
        for k in kept {
            assert!(
                env.has_snapshot(c, NATIVE, k),
                "{c:?}: snapshot {k} should be kept"
            );
        }
        for k in gone {
            assert!(
                !env.has_snapshot(c, NATIVE, k),
                "{c:?}: snapshot {k} should be collected"
            );
        }
    };
    blobs(&ns1, &[1, 2, 7, 8, 9], &[3]);
    snaps(
        &ns1,
        &["sn2", "sn3", "sn4", "sn5", "sn6", "sn7", "sn8", "sn9"],
        &["sn1"],
    );
    assert!(
        env.has_ingest(&ns1, "ingest-3"),
        "an unexpired ingest is a root"
    );
    assert!(
        !env.has_ingest(&ns1, "ingest-1"),
        "an ingest without expiry or lease goes"
    );

    blobs(&ns2, &[2, 4, 5, 6, 8, 10, 11], &[1, 7, 9]);
    snaps(&ns2, &["sn5", "sn6", "sn7"], &["sn8"]);
    for l in ["l1", "l2", "l3"] {
        assert!(env.has_lease(&ns2, l), "lease {l} should be kept");
    }
    assert!(!env.has_lease(&ns2, "l4"), "an expired lease is collected");
    assert!(
        env.has_ingest(&ns2, "ingest-4"),
        "ingest of an unexpired lease"
    );
    assert!(
        !env.has_ingest(&ns2, "ingest-6"),
        "ingest of an expired lease"
    );

    assert!(env.has_lease(&ns3, "l1"));
    blobs(&ns3, &[1, 4], &[2, 3]);
    snaps(&ns3, &["sn0", "sn1"], &[]);

    assert_eq!(stats.leases, 1, "{stats:?}");
    assert_eq!(stats.content, 1 + 3 + 2, "{stats:?}");
    assert_eq!(stats.snapshots, 2, "{stats:?}");
    assert_eq!(
        stats.ingests, 3,
        "ns1 ingest-1, ns2 ingest-6 and ingest-7: {stats:?}"
    );

    // A second pass finds nothing more.
    let again = env.collect();
    assert_eq!(
        (again.content, again.snapshots, again.ingests, again.leases),
        (0, 0, 0, 0)
    );
}

/// Images and containers stay roots whatever their labels say (1.6 interprets `gc.expire`
/// on leases only), and a container's snapshot keeps its whole parent chain.
#[test]
fn images_and_containers_are_always_roots() {
    let env = Env::new();
    let _g = env.enter();
    let ns = ctx("roots");
    env.write_blob(&ns, &bytes_for(1), &[]);
    env.rt
        .images()
        .create(
            &ns,
            image("expired", &d(1), &[(EXPIRE, &rfc3339_in(-3600))]),
        )
        .unwrap();
    env.committed(&ns, NATIVE, "base", "", &[]);
    env.committed(&ns, NATIVE, "mid", "base", &[]);
    env.active(&ns, NATIVE, "rootfs", "mid", &[]);
    env.rt
        .containers()
        .create(
            &ns,
            container("c", "native", "rootfs", &[(EXPIRE, &rfc3339_in(-3600))]),
        )
        .unwrap();
    env.collect();
    assert!(env.has_blob(&ns, &d(1)));
    for k in ["base", "mid", "rootfs"] {
        assert!(env.has_snapshot(&ns, NATIVE, k), "{k}");
    }

    // Without them, all of it goes; the bytes too once no namespace holds them.
    env.rt.images().delete(&ns, "expired").unwrap();
    env.rt.containers().delete(&ns, "c").unwrap();
    let stats = env.collect();
    assert!(!env.has_blob(&ns, &d(1)));
    for k in ["base", "mid", "rootfs"] {
        assert!(!env.has_snapshot(&ns, NATIVE, k), "{k}");
    }
    assert_eq!((stats.content, stats.snapshots), (1, 3));
    let other = ctx("other");
    assert!(
        !env.ingest(&other, "probe", Some(&d(1))),
        "no namespace holds the bytes any more"
    );
}
