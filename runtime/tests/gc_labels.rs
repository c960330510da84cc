//! The `containerd.io/gc.*` labels as containerd 1.6 reads them (`metadata/gc.go`): lease
//! expiry (`gc.expire`, RFC 3339 as Go 1.19's `time.Parse(time.RFC3339, …)` accepts it; an
//! unparsable value is ignored, so the lease never expires), flat leases (`gc.flat`, any
//! value), `gc.root` (any value) on blobs and snapshots, and labels 1.6 does not interpret on
//! other objects. The accepted/rejected expiry strings were checked against Go 1.19 here.

mod common;

use std::time::{Duration, SystemTime};

use common::{Env, NATIVE, bytes_for, ctx, digest_for, image};

const EXPIRE: &str = "containerd.io/gc.expire";
const FLAT: &str = "containerd.io/gc.flat";
const ROOT: &str = "containerd.io/gc.root";
const CONTENT_REF: &str = "containerd.io/gc.ref.content";

#[test]
fn lease_expiry_values() {
    let env = Env::new();
    let _g = env.enter();
    let far = common::rfc3339_in(3600);
    // (value, expired now?)
    let cases: &[(&str, bool)] = &[
        ("2020-01-01T00:00:00Z", true),
        ("2020-01-01T00:00:00.5Z", true),
        ("2020-01-01T00:00:00.123456789Z", true),
        ("2020-01-01T00:00:00+02:00", true),
        ("2020-01-01T00:00:00-00:00", true),
        ("0001-01-01T00:00:00Z", true),
        ("0000-01-01T00:00:00Z", true),
        ("2020-01-01T0:00:00Z", true),
        ("2020-01-01T00:00:00,5Z", true),
        ("2020-01-01T00:00:00-01:30", true),
        ("2020-01-01T00:00:00+25:00", true),
        ("2020-01-01T00:00:00+99:99", true),
        ("2020-02-29T00:00:00Z", true),
        (&far, false),
        ("2999-12-31T23:59:59Z", false),
        // Go rejects these; containerd logs and keeps using the lease.
        ("2020-01-01 00:00:00Z", false),
        ("2020-01-01t00:00:00z", false),
        ("2020-01-01T00:00:00z", false),
        ("2020-01-01T00:00:00", false),
        ("2020-01-01", false),
        ("1577836800", false),
        ("tomorrow", false),
        ("2020-1-1T00:00:00Z", false),
        ("2020-01-01T24:00:00Z", false),
        ("2020-01-01T00:00:60Z", false),
        ("2020-01-01T00:00:00+0200", false),
        ("2020-01-01T00:00:00.Z", false),
        ("2020-01-01T00:00:00+2:00", false),
        ("+202-01-01T00:00:00Z", false),
        ("-202-01-01T00:00:00Z", false),
        ("2020-02-30T00:00:00Z", false),
        ("2019-02-29T00:00:00Z", false),
        ("2020-00-01T00:00:00Z", false),
        ("2020-13-01T00:00:00Z", false),
        ("2020-01-00T00:00:00Z", false),
        ("2020-01-32T00:00:00Z", false),
        ("2020-01-01T00:00:00Z ", false),
        (" 2020-01-01T00:00:00Z", false),
        ("2020-01-01T00:0:00Z", false),
        ("2020-01-01T00:00:0Z", false),
        ("2020-01-01T00:00:00+02:0x", false),
        ("2020-01-01T00:60:00Z", false),
        ("2020-01-01T00:00:00.5.5Z", false),
        ("2020-01-01T00:00:00ZZ", false),
        ("2020-01-01T00:00:00+00:00:00", false),
        ("2020-01-01T00:00:00Z07:00", false),
        ("", false), // an empty label is no label
    ];
    let ns = ctx("expiry");
    for (i, (value, _)) in cases.iter().enumerate() {
        let id = format!("lease-{i}");
        env.lease("expiry", &id, &[(EXPIRE, value)]);
        let d = env.write_blob(&ns, &bytes_for(i as u64), &[]);
        env.hold("expiry", &id, "content", &d.to_string());
    }
    let stats = env.collect();
    let mut wrong = Vec::new();
    for (i, (value, expired)) in cases.iter().enumerate() {
        let id = format!("lease-{i}");
        let gone = (
            !env.has_lease(&ns, &id),
            !env.has_blob(&ns, &digest_for(i as u64)),
        );
        if gone != (*expired, *expired) {
            wrong.push(format!(
                "gc.expire={value:?}: expired {expired}, (lease, blob) gone {gone:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    let n_expired = cases.iter().filter(|c| c.1).count();
    assert_eq!((stats.leases, stats.content), (n_expired, n_expired));
}

/// Expiry is judged at each pass: a lease that was live at one pass expires by a later one.
#[test]
fn a_lease_expires_between_passes() {
    let env = Env::new();
    let _g = env.enter();
    let ns = ctx("later");
    let soon = prost_types::Timestamp::from(SystemTime::now() + Duration::from_millis(1500));
    env.lease("later", "l", &[(EXPIRE, &soon.to_string())]);
    let d = env.write_blob(&ns, b"held until expiry", &[]);
    env.hold("later", "l", "content", &d.to_string());
    env.collect();
    assert!(env.has_lease(&ns, "l") && env.has_blob(&ns, &d));
    std::thread::sleep(Duration::from_millis(2000));
    env.collect();
    assert!(!env.has_lease(&ns, "l") && !env.has_blob(&ns, &d));
}

/// `gc.flat` with any value makes a lease flat; `gc.expire` and `gc.flat` combine.
#[test]
fn flat_leases() {
    let env = Env::new();
    let _g = env.enter();
    let flat_values = ["true", "false", "0", "2020-01-01T00:00:00Z"];
    for (i, value) in flat_values.iter().enumerate() {
        let name = format!("flat-{i}");
        let c = ctx(&name);
        let child = env.write_blob(&c, b"child", &[]);
        let parent = env.write_blob(&c, b"parent", &[(CONTENT_REF, &child.to_string())]);
        let target = env.write_blob(&c, b"snapshot target", &[]);
        env.committed(
            &c,
            NATIVE,
            "base",
            "",
            &[(CONTENT_REF, &target.to_string())],
        );
        env.committed(&c, NATIVE, "top", "base", &[]);
        let future = common::rfc3339_in(3600);
        env.lease(&name, "l", &[(FLAT, value), (EXPIRE, &future)]);
        env.hold(&name, "l", "content", &parent.to_string());
        env.hold(&name, "l", "snapshots/native", "top");
        env.collect();
        assert!(env.has_blob(&c, &parent), "{value}: the leased blob stays");
        assert!(
            !env.has_blob(&c, &child),
            "{value}: a flat blob keeps nothing"
        );
        assert!(env.has_snapshot(&c, NATIVE, "top") && env.has_snapshot(&c, NATIVE, "base"));
        assert!(
            !env.has_blob(&c, &target),
            "{value}: a flat snapshot chain keeps no labels"
        );
    }
}

/// `gc.root` with any value keeps a blob or snapshot (and what it references); removing the
/// label makes it collectable. `gc.expire` means nothing on blobs and snapshots in 1.6.
#[test]
fn gc_root_on_blobs_and_snapshots() {
    let env = Env::new();
    let _g = env.enter();
    let c = ctx("rooted");
    let values = ["always", "false", "2020-01-01T00:00:00Z"];
    let mut blobs = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let child = env.write_blob(&c, &bytes_for(100 + i as u64), &[]);
        let d = env.write_blob(
            &c,
            &bytes_for(i as u64),
            &[(ROOT, v), (CONTENT_REF, &child.to_string())],
        );
        blobs.push((d, child));
        env.committed(&c, NATIVE, &format!("base-{i}"), "", &[]);
        env.committed(
            &c,
            NATIVE,
            &format!("snap-{i}"),
            &format!("base-{i}"),
            &[(ROOT, v)],
        );
    }
    let unexpired = common::rfc3339_in(3600);
    let not_root = env.write_blob(
        &c,
        b"expire is not interpreted on blobs",
        &[(EXPIRE, &unexpired)],
    );
    env.committed(&c, NATIVE, "not-root", "", &[(EXPIRE, &unexpired)]);
    env.collect();
    for (i, (d, child)) in blobs.iter().enumerate() {
        assert!(
            env.has_blob(&c, d) && env.has_blob(&c, child),
            "{}",
            values[i]
        );
        assert!(
            env.has_snapshot(&c, NATIVE, &format!("snap-{i}")),
            "{}",
            values[i]
        );
        assert!(
            env.has_snapshot(&c, NATIVE, &format!("base-{i}")),
            "{}",
            values[i]
        );
    }
    assert!(!env.has_blob(&c, &not_root));
    assert!(!env.has_snapshot(&c, NATIVE, "not-root"));

    // Deleting the label (an update with an empty value) un-roots them.
    let paths = vec![format!("labels.{ROOT}")];
    let no_root = common::labels_of(&[(ROOT, "")]);
    env.rt
        .content()
        .update(&c, &blobs[0].0, &no_root, &paths)
        .unwrap();
    let mut info = env
        .block_on(env.rt.snapshots().stat(&c, NATIVE, "snap-0"))
        .unwrap();
    info.labels = no_root.clone();
    env.block_on(env.rt.snapshots().update(&c, NATIVE, info, &paths))
        .unwrap();
    env.collect();
    assert!(!env.has_blob(&c, &blobs[0].0) && !env.has_blob(&c, &blobs[0].1));
    assert!(!env.has_snapshot(&c, NATIVE, "snap-0") && !env.has_snapshot(&c, NATIVE, "base-0"));
    assert!(env.has_blob(&c, &blobs[1].0) && env.has_snapshot(&c, NATIVE, "snap-1"));
}

/// Label references added by an update count at the next pass (a manifest gets its
/// `gc.ref.content.*` labels after its children were written, as containerd's client does).
#[test]
fn references_added_by_updates() {
    let env = Env::new();
    let _g = env.enter();
    let c = ctx("updates");
    let layer = env.write_blob(&c, b"layer", &[]);
    let config = env.write_blob(&c, b"config", &[]);
    let manifest = env.write_blob(&c, b"manifest", &[]);
    env.committed(&c, NATIVE, "chain", "", &[]);
    env.rt
        .images()
        .create(&c, image("img", &manifest, &[]))
        .unwrap();
    let labels = common::labels_of(&[
        ("containerd.io/gc.ref.content.l.0", &layer.to_string()),
        ("containerd.io/gc.ref.content.config", &config.to_string()),
    ]);
    let paths: Vec<String> = labels.keys().map(|k| format!("labels.{k}")).collect();
    env.rt
        .content()
        .update(&c, &manifest, &labels, &paths)
        .unwrap();
    let snap_ref = common::labels_of(&[("containerd.io/gc.ref.snapshot.native", "chain")]);
    let paths = vec!["labels.containerd.io/gc.ref.snapshot.native".to_string()];
    env.rt
        .content()
        .update(&c, &config, &snap_ref, &paths)
        .unwrap();
    env.collect();
    for d in [&layer, &config, &manifest] {
        assert!(env.has_blob(&c, d));
    }
    assert!(env.has_snapshot(&c, NATIVE, "chain"));

    // Dropping the image drops the whole tree.
    env.rt.images().delete(&c, "img").unwrap();
    env.collect();
    assert!(env.rt.content().list(&c, &[]).unwrap().is_empty());
    assert!(!env.has_snapshot(&c, NATIVE, "chain"));
}
