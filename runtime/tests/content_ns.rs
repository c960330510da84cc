//! Namespaced content, ported from containerd 1.6 `metadata/content_test.go` (TestContentLeased,
//! TestIngestLeased) and the cross-namespace cases it runs from `content/testsuite`
//! (CrossNamespaceShare, CrossNamespaceAppend under the default shared policy), plus the
//! isolation rules of `metadata/content.go` (`checkAccess`, Status, ListStatuses, Abort,
//! Commit).

mod common;

use std::time::SystemTime;

use common::{Env, ctx, digest_of, labels_of, lctx};
use strata_content::Info;
use strata_core::digest::Digest;
use strata_runtime::{Ctx, Opened, Resource, SharedIngest};

/// `size` deterministic bytes (containerd's `createContent`).
fn content(size: usize) -> (Vec<u8>, Digest) {
    let b: Vec<u8> = (0..size).map(|i| (i * 7 + i / 251) as u8).collect();
    let d = digest_of(&b);
    (b, d)
}

fn shared(o: Opened) -> SharedIngest {
    match o {
        Opened::Shared(s) => s,
        Opened::Live(_) => panic!("expected a shared ingest, got a live one"),
    }
}

fn live(o: Opened) -> strata_content::Writer {
    match o {
        Opened::Live(w) => w,
        Opened::Shared(s) => panic!("expected a live ingest, got a shared one: {s:?}"),
    }
}

/// containerd's `checkContent`: the namespace sees `d` with `size`, created and updated in the
/// window, and its bytes.
fn check_content(
    env: &Env,
    ctx: &Ctx,
    d: &Digest,
    size: u64,
    from: SystemTime,
    to: SystemTime,
) -> Info {
    let info = env.rt.content().info(ctx, d).unwrap();
    assert_eq!((&info.digest, info.size), (d, size));
    assert!(
        info.created_at >= from && info.created_at <= to,
        "created at out of range"
    );
    assert!(
        info.updated_at >= from && info.updated_at <= to,
        "updated at out of range"
    );
    let r = env.rt.content().reader(ctx, d).unwrap();
    assert_eq!(r.size(), size);
    let mut buf = vec![0; size as usize];
    let mut off = 0;
    while off < buf.len() {
        let n = r.read_at(off as u64, &mut buf[off..]).unwrap();
        assert!(n > 0, "short read");
        off += n;
    }
    assert_eq!(digest_of(&buf), *d);
    info
}

fn leased(env: &Env, ns: &str, lease: &str) -> Vec<Resource> {
    env.rt.leases().list_resources(&ctx(ns), lease).unwrap()
}

fn res(kind: &str, id: &str) -> Resource {
    Resource {
        id: id.into(),
        kind: kind.into(),
    }
}

#[test]
fn cross_namespace_share() {
    let env = Env::new();
    let _g = env.enter();
    let (ns1, ns2) = (ctx("share-n1"), ctx("share-n2"));
    let (b, d) = content(1000);
    let t1 = SystemTime::now();
    env.write_blob(&ns1, &b, &[]);

    let s = shared(
        env.rt
            .content()
            .open(&ns2, "ref-1000", 1000, Some(d.clone()))
            .unwrap(),
    );
    let t2 = SystemTime::now();
    assert_eq!((&s.digest, s.size), (&d, 1000));
    assert!(s.started >= t1 && s.started <= t2);
    let got = env
        .rt
        .content()
        .claim(&ns2, "ref-1000", &s, 1000, Some(&d), None)
        .unwrap();
    assert_eq!(got, d);
    let t3 = SystemTime::now();
    check_content(&env, &ns1, &d, 1000, t1, t3);
    check_content(&env, &ns2, &d, 1000, t1, t3);
}

#[test]
fn cross_namespace_append() {
    let env = Env::new();
    let _g = env.enter();
    let (ns1, ns2) = (ctx("append-n1"), ctx("append-n2"));
    let (b, d) = content(1000);
    let t1 = SystemTime::now();
    env.write_blob(&ns1, &b, &[]);

    let extra = b"appended bytes";
    let mut b2 = b.clone();
    b2.extend_from_slice(extra);
    let d2 = digest_of(&b2);
    let c = env.rt.content();
    let s = shared(c.open(&ns2, "ref-1000", 1000, Some(d.clone())).unwrap());
    assert_eq!(s.size, 1000);
    // The client writes: the shared ingest becomes a real one holding the bytes so far.
    let mut w = c.unshare(&ns2, "ref-1000", &s, s.size).unwrap();
    assert_eq!(w.offset(), 1000);
    assert_eq!(w.digest(), d);
    w.write(extra).unwrap();
    c.commit(&ns2, &mut w, b2.len() as u64, Some(&d2), None)
        .unwrap();
    let t3 = SystemTime::now();

    check_content(&env, &ns1, &d, 1000, t1, t3);
    check_content(&env, &ns2, &d2, b2.len() as u64, t1, t3);
    assert!(
        !env.has_blob(&ns1, &d2),
        "the appended blob is only in the writer's namespace"
    );
    assert!(
        !env.has_blob(&ns2, &d),
        "the original blob was not committed in ns2"
    );
}

/// Sharing needs the descriptor's size to be 0 or the held size (`metadata/content.go`
/// Writer); otherwise the namespace gets a real ingest.
#[test]
fn sharing_needs_a_matching_or_unknown_size() {
    let env = Env::new();
    let _g = env.enter();
    let (ns1, ns2) = (ctx("size-n1"), ctx("size-n2"));
    let (b, d) = content(1000);
    env.write_blob(&ns1, &b, &[]);
    let c = env.rt.content();
    let s = shared(c.open(&ns2, "any-size", 0, Some(d.clone())).unwrap());
    assert_eq!(s.size, 1000);
    // A shared ingest has no store status (as containerd's: its backend has no ingest).
    assert_kind!(c.status(&ns2, "any-size"), NotFound);
    assert_kind!(
        c.claim(&ns2, "any-size", &s, 999, Some(&d), None),
        FailedPrecondition
    );
    let (_, other) = content(10);
    assert_kind!(
        c.claim(&ns2, "any-size", &s, 1000, Some(&other), None),
        FailedPrecondition
    );
    c.abort(&ns2, "any-size").unwrap();
    assert!(!env.has_blob(&ns2, &d));

    let w = live(c.open(&ns2, "wrong-size", 999, Some(d.clone())).unwrap());
    assert_eq!(w.offset(), 0);
    drop(w);
    assert_eq!(c.status(&ns2, "wrong-size").unwrap().total, 999);
}

#[test]
fn blobs_are_visible_only_in_their_namespace() {
    let env = Env::new();
    let _g = env.enter();
    let (ns1, ns2) = (ctx("iso-n1"), ctx("iso-n2"));
    let (b, d) = content(300);
    env.write_blob(&ns1, &b, &[("k", "v")]);
    let c = env.rt.content();
    assert_kind!(c.info(&ns2, &d), NotFound);
    assert_kind!(c.reader(&ns2, &d), NotFound);
    assert!(c.list(&ns2, &[]).unwrap().is_empty());
    assert_kind!(c.delete(&ns2, &d), NotFound);
    assert_kind!(c.update(&ns2, &d, &labels_of(&[("x", "y")]), &[]), NotFound);
    assert!(!c.exists(&ns2, &d).unwrap());
    assert_eq!(c.list(&ns1, &[]).unwrap().len(), 1);

    // Labels are per namespace.
    env.write_blob(&ns2, &b, &[("other", "1")]);
    assert_eq!(c.info(&ns1, &d).unwrap().labels, labels_of(&[("k", "v")]));
    assert_eq!(
        c.info(&ns2, &d).unwrap().labels,
        labels_of(&[("other", "1")])
    );

    // Deleting in one namespace leaves the other's blob whole.
    let t0 = SystemTime::UNIX_EPOCH;
    c.delete(&ns1, &d).unwrap();
    assert_kind!(c.info(&ns1, &d), NotFound);
    check_content(&env, &ns2, &d, 300, t0, SystemTime::now());
}

#[test]
fn ingests_are_per_namespace() {
    let env = Env::new();
    let _g = env.enter();
    let (ns1, ns2) = (ctx("ingest-n1"), ctx("ingest-n2"));
    let c = env.rt.content();
    let mut w1 = live(c.open(&ns1, "same-ref", 0, None).unwrap());
    w1.write(b"from ns1").unwrap();
    drop(w1);
    assert_eq!(c.status(&ns1, "same-ref").unwrap().offset, 8);
    assert_kind!(c.status(&ns2, "same-ref"), NotFound);
    assert!(c.list_statuses(&ns2, &[]).unwrap().is_empty());
    assert_kind!(c.abort(&ns2, "same-ref"), NotFound);

    // The same ref in another namespace is another ingest.
    let mut w2 = live(c.open(&ns2, "same-ref", 0, None).unwrap());
    assert_eq!(w2.offset(), 0);
    w2.write(b"ns2").unwrap();
    let d2 = c.commit(&ns2, &mut w2, 3, None, None).unwrap();
    assert_eq!(d2, digest_of(b"ns2"));
    assert!(!env.has_blob(&ns1, &d2));
    let mut w1 = live(c.open(&ns1, "same-ref", 0, None).unwrap());
    assert_eq!(w1.offset(), 8);
    let d1 = c.commit(&ns1, &mut w1, 8, None, None).unwrap();
    assert_eq!(d1, digest_of(b"from ns1"));
    assert!(!env.has_blob(&ns2, &d1));
}

/// Commit in a namespace that already holds the digest: AlreadyExists, and the ingest is gone
/// (`metadata/content.go` Commit returns it after its transaction removed the ingest).
#[test]
fn committing_a_digest_the_namespace_holds_is_already_exists() {
    let env = Env::new();
    let _g = env.enter();
    let ns = ctx("dup");
    let c = env.rt.content();
    let (b, d) = content(64);
    env.write_blob(&ns, &b, &[]);
    let mut w = live(c.open(&ns, "second", 0, None).unwrap());
    w.write(&b).unwrap();
    assert_kind!(c.commit(&ns, &mut w, 64, Some(&d), None), AlreadyExists);
    assert_kind!(c.status(&ns, "second"), NotFound);
    // Opening with the digest as expected is AlreadyExists at once.
    assert_kind!(c.open(&ns, "third", 64, Some(d.clone())), AlreadyExists);
    // Size validation keeps the ingest.
    let mut w = live(c.open(&ns, "fourth", 0, None).unwrap());
    w.write(b"four").unwrap();
    assert_kind!(c.commit(&ns, &mut w, 5, None, None), FailedPrecondition);
    drop(w);
    assert_eq!(c.status(&ns, "fourth").unwrap().offset, 4);
}

/// TestContentLeased.
#[test]
fn content_leased() {
    let env = Env::new();
    let _g = env.enter();
    let ns = "testing";
    let blob = b"any content";
    let expected = digest_of(blob);
    env.rt
        .leases()
        .create(&ctx(ns), "lease-1", &labels_of(&[]))
        .unwrap();
    let l1 = lctx(ns, "lease-1");
    env.write_blob(&l1, blob, &[]);
    let r = leased(&env, ns, "lease-1");
    assert!(
        r.contains(&res("content", &expected.to_string())),
        "content not leased: {r:?}"
    );
    assert!(
        !r.iter().any(|r| r.kind == "ingests"),
        "ingest still leased after the write: {r:?}"
    );

    env.rt
        .leases()
        .create(&ctx(ns), "lease-2", &labels_of(&[]))
        .unwrap();
    let l2 = lctx(ns, "lease-2");
    let out = env
        .rt
        .content()
        .open(&l2, "test-2", blob.len() as u64, Some(expected.clone()));
    assert_kind!(out, AlreadyExists);
    let r = leased(&env, ns, "lease-2");
    assert_eq!(
        r,
        vec![res("content", &expected.to_string())],
        "lease-2 holds the content only"
    );
}

/// TestIngestLeased.
#[test]
fn ingest_leased() {
    let env = Env::new();
    let _g = env.enter();
    let ns = "testing";
    let blob = b"any content";
    let expected = digest_of(blob);
    env.rt
        .leases()
        .create(&ctx(ns), "lease-1", &labels_of(&[]))
        .unwrap();
    let l1 = lctx(ns, "lease-1");
    let w = live(
        env.rt
            .content()
            .open(&l1, "test-1", blob.len() as u64, Some(expected))
            .unwrap(),
    );
    assert_eq!(leased(&env, ns, "lease-1"), vec![res("ingests", "test-1")]);
    drop(w);
    env.rt.content().abort(&l1, "test-1").unwrap();
    assert!(
        leased(&env, ns, "lease-1").is_empty(),
        "test-1 should not be leased after abort"
    );
    // Aborting an ingest the namespace does not have is NotFound (`contentStore.Abort`).
    assert_kind!(env.rt.content().abort(&l1, "test-1"), NotFound);
}

/// A shared ingest under a lease is held by it too, and claiming moves the hold to the blob.
#[test]
fn shared_ingests_are_leased_and_claims_lease_the_blob() {
    let env = Env::new();
    let _g = env.enter();
    let (b, d) = content(100);
    env.write_blob(&ctx("donor"), &b, &[]);
    env.rt
        .leases()
        .create(&ctx("taker"), "l", &labels_of(&[]))
        .unwrap();
    let l = lctx("taker", "l");
    let s = shared(
        env.rt
            .content()
            .open(&l, "pull", 0, Some(d.clone()))
            .unwrap(),
    );
    assert_eq!(leased(&env, "taker", "l"), vec![res("ingests", "pull")]);
    env.rt
        .content()
        .claim(&l, "pull", &s, 0, None, Some(&labels_of(&[("a", "b")])))
        .unwrap();
    assert_eq!(
        leased(&env, "taker", "l"),
        vec![res("content", &d.to_string())]
    );
    assert_eq!(
        env.rt.content().info(&ctx("taker"), &d).unwrap().labels,
        labels_of(&[("a", "b")])
    );
}

/// Delete under a lease also drops the lease's hold on the blob (`contentStore.Delete` calls
/// `removeContentLease`), so a later write of the same bytes is not held by it.
#[test]
fn delete_under_a_lease_releases_the_blob() {
    let env = Env::new();
    let _g = env.enter();
    env.rt
        .leases()
        .create(&ctx("del"), "l", &labels_of(&[]))
        .unwrap();
    let l = lctx("del", "l");
    let d = env.write_blob(&l, b"short-lived", &[]);
    assert_eq!(
        leased(&env, "del", "l"),
        vec![res("content", &d.to_string())]
    );
    env.rt.content().delete(&l, &d).unwrap();
    assert!(
        leased(&env, "del", "l").is_empty(),
        "the lease still holds a deleted blob"
    );
    env.write_blob(&ctx("del"), b"short-lived", &[]);
    env.collect();
    assert!(
        !env.has_blob(&ctx("del"), &d),
        "nothing holds the rewritten blob"
    );
}
