//! Namespaces, ported from containerd 1.6 `metadata/namespaces_test.go` (TestCreateDelete),
//! with each kind of object that keeps a namespace from being deleted
//! (`namespaces.go` `listNs`), and Strata's implicit creation on first write (containerd
//! creates the namespace's bucket on first write too; Strata gives it a record).

mod common;

use common::{Env, NATIVE, ctx, labels_of};
use strata_runtime::{Container, ContainerRuntime, Ctx, Descriptor, Image};

fn container(id: &str) -> Container {
    Container {
        id: id.into(),
        labels: Default::default(),
        image: String::new(),
        runtime: ContainerRuntime {
            name: "rt".into(),
            options: None,
        },
        spec: Some(Default::default()),
        snapshotter: String::new(),
        snapshot_key: String::new(),
        created: std::time::SystemTime::UNIX_EPOCH,
        updated: std::time::SystemTime::UNIX_EPOCH,
        extensions: Default::default(),
        sandbox: String::new(),
    }
}

fn image(name: &str) -> Image {
    Image {
        name: name.into(),
        labels: Default::default(),
        target: Descriptor {
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            digest: common::digest_of(name.as_bytes()).to_string(),
            size: 10,
            annotations: Default::default(),
        },
        created: std::time::SystemTime::UNIX_EPOCH,
        updated: std::time::SystemTime::UNIX_EPOCH,
    }
}

type Fill = fn(&Env, &Ctx);

#[test]
fn create_delete() {
    let env = Env::new();
    let _g = env.enter();
    let cases: &[(&str, Fill, bool)] = &[
        ("empty", |_, _| {}, true),
        (
            "not-empty",
            |env, ctx| {
                env.rt.containers().create(ctx, container("c1")).unwrap();
                env.active(ctx, NATIVE, "key", "", &[]);
            },
            false,
        ),
    ];
    for (name, fill, deletable) in cases {
        let ns = env.rt.namespaces();
        ns.create(name, &labels_of(&[])).unwrap();
        fill(&env, &ctx(name));
        let out = ns.delete(name);
        if *deletable {
            out.unwrap();
            assert_kind!(ns.get(name), NotFound);
        } else {
            assert_kind!(out, FailedPrecondition);
            ns.get(name).unwrap();
        }
    }
}

/// Each kind containerd's `listNs` checks keeps the namespace; once it is gone, delete works.
#[test]
fn every_kind_of_object_keeps_its_namespace() {
    let env = Env::new();
    let _g = env.enter();
    type Remove = fn(&Env, &Ctx);
    let cases: &[(&str, Fill, Remove)] = &[
        (
            "images",
            |env, ctx| drop(env.rt.images().create(ctx, image("i")).unwrap()),
            |env, ctx| env.rt.images().delete(ctx, "i").unwrap(),
        ),
        (
            "blobs",
            |env, ctx| drop(env.write_blob(ctx, b"blob", &[])),
            |env, ctx| {
                env.rt
                    .content()
                    .delete(ctx, &common::digest_of(b"blob"))
                    .unwrap()
            },
        ),
        (
            "containers",
            |env, ctx| drop(env.rt.containers().create(ctx, container("c")).unwrap()),
            |env, ctx| env.rt.containers().delete(ctx, "c").unwrap(),
        ),
        (
            "snapshots",
            |env, ctx| env.committed(ctx, NATIVE, "s", "", &[]),
            |env, ctx| {
                env.block_on(env.rt.snapshots().remove(ctx, NATIVE, "s"))
                    .unwrap()
            },
        ),
    ];
    for (name, fill, remove) in cases {
        let c = ctx(name);
        fill(&env, &c);
        let ns = env.rt.namespaces();
        ns.get(name).expect("a write creates its namespace");
        assert_kind!(ns.delete(name), FailedPrecondition);
        remove(&env, &c);
        ns.delete(name).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_kind!(ns.get(name), NotFound);
    }
}

/// Leases and ingests do not keep a namespace (containerd's `listNs` ignores them and deletes
/// the whole bucket): they go with it.
#[test]
fn leases_and_ingests_go_with_their_namespace() {
    let env = Env::new();
    let _g = env.enter();
    let c = ctx("transient");
    env.rt.leases().create(&c, "l1", &labels_of(&[])).unwrap();
    let lc = common::lctx("transient", "l1");
    drop(env.rt.content().open(&lc, "ingest-1", 0, None).unwrap());
    drop(env.rt.content().open(&c, "ingest-2", 0, None).unwrap());
    assert!(env.has_ingest(&c, "ingest-1") && env.has_ingest(&c, "ingest-2"));
    env.rt.namespaces().delete("transient").unwrap();
    assert!(env.rt.leases().list(&c, &[]).unwrap().is_empty());
    assert!(!env.has_ingest(&c, "ingest-1") && !env.has_ingest(&c, "ingest-2"));
    assert!(env.rt.content().list_statuses(&c, &[]).unwrap().is_empty());
}

#[test]
fn create_get_list_update_errors() {
    let env = Env::new();
    let _g = env.enter();
    let ns = env.rt.namespaces();
    let created = ns
        .create("ns1", &labels_of(&[("a", "1"), ("empty", "")]))
        .unwrap();
    assert_eq!(created.labels, labels_of(&[("a", "1")]));
    assert_kind!(ns.create("ns1", &labels_of(&[])), AlreadyExists);
    assert_kind!(ns.create("bad/name", &labels_of(&[])), InvalidArgument);
    assert_kind!(ns.create("", &labels_of(&[])), InvalidArgument);
    assert_kind!(
        ns.create("ns2", &labels_of(&[("k", &"v".repeat(4096))])),
        InvalidArgument
    );
    assert_kind!(ns.delete("missing"), NotFound);
    assert_kind!(ns.get("missing"), NotFound);
    ns.create("ns0", &labels_of(&[])).unwrap();
    let names: Vec<String> = ns.list().unwrap().into_iter().map(|n| n.name).collect();
    assert_eq!(names, ["ns0", "ns1"]);

    // SetLabel semantics: a value sets, an empty value deletes.
    let paths = ["labels.b".to_string(), "labels.a".to_string()];
    let updated = ns.update("ns1", &labels_of(&[("b", "2")]), &paths).unwrap();
    assert_eq!(updated.labels, labels_of(&[("b", "2")]));
    assert_eq!(ns.get("ns1").unwrap().labels, labels_of(&[("b", "2")]));
    assert_kind!(
        ns.update("ns1", &labels_of(&[]), &["name".into()]),
        InvalidArgument
    );
}

/// A call needs a namespace (FailedPrecondition, containerd's `NamespaceRequired`) with a valid
/// name (InvalidArgument).
#[test]
fn a_namespace_is_required_and_validated() {
    assert_kind!(Ctx::new(None, None), FailedPrecondition);
    assert_kind!(Ctx::new(Some(""), Some("l")), FailedPrecondition);
    assert_kind!(Ctx::new(Some("a b"), None), InvalidArgument);
    assert_kind!(Ctx::new(Some(&"x".repeat(77)), None), InvalidArgument);
    Ctx::new(Some(&"x".repeat(76)), None).unwrap();
    Ctx::new(Some("k8s.io"), None).unwrap();
}
