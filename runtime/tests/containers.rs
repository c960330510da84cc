//! Containers, ported from containerd 1.6 `metadata/containers_test.go` (TestContainersList,
//! TestContainersCreateUpdateDelete), plus the immutability rules of a full update.

mod common;

use std::collections::BTreeMap;
use std::time::SystemTime;

use common::{Env, Kind, ctx, expect, labels_of};
use strata_core::filters::parse_all;
use strata_runtime::{AnyValue, Container, ContainerRuntime, Error};

const SPEC_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";

fn spec(json: &str) -> Option<AnyValue> {
    Some(AnyValue {
        type_url: SPEC_URL.into(),
        value: json.as_bytes().to_vec(),
    })
}

/// The encoded empty spec, and the one with an annotation (containerd's `encoded`,
/// `encodedUpdated`).
fn encoded() -> Option<AnyValue> {
    spec("{}")
}
fn encoded_updated() -> Option<AnyValue> {
    spec(r#"{"annotations":{"updated":"true"}}"#)
}

fn ext(value: &str) -> AnyValue {
    AnyValue {
        type_url: "test.update.extensions".into(),
        value: value.as_bytes().to_vec(),
    }
}

fn exts(pairs: &[(&str, &str)]) -> BTreeMap<String, AnyValue> {
    pairs.iter().map(|(k, v)| (k.to_string(), ext(v))).collect()
}

fn runtime(name: &str) -> ContainerRuntime {
    ContainerRuntime {
        name: name.into(),
        options: None,
    }
}

/// An empty container (every field zero).
fn zero() -> Container {
    Container {
        id: String::new(),
        labels: BTreeMap::new(),
        image: String::new(),
        runtime: runtime(""),
        spec: None,
        snapshotter: String::new(),
        snapshot_key: String::new(),
        created: SystemTime::UNIX_EPOCH,
        updated: SystemTime::UNIX_EPOCH,
        extensions: BTreeMap::new(),
        sandbox: String::new(),
    }
}

/// The usual original: spec, snapshot, runtime and image set.
fn with_snapshot() -> Container {
    Container {
        spec: encoded(),
        snapshot_key: "test-snapshot-key".into(),
        snapshotter: "snapshotter".into(),
        runtime: runtime("testruntime"),
        image: "test image".into(),
        ..zero()
    }
}

/// containerd's `checkContainerTimestamps`.
fn check_timestamps(c: &Container, now: SystemTime, on_create: bool) {
    assert!(c.created > SystemTime::UNIX_EPOCH && c.updated > SystemTime::UNIX_EPOCH);
    if on_create {
        assert_eq!(c.created, c.updated, "timestamps should be equal on create");
    } else {
        assert!(c.updated > c.created, "updated not after created");
    }
    assert!(
        c.updated >= now,
        "updated before the start of the operation"
    );
}

#[test]
fn containers_list() {
    let env = Env::new();
    let _g = env.enter();
    let ctx = ctx("testing");
    let store = env.rt.containers();
    let mut testset = Vec::new();
    for i in 0..4 {
        let id = format!("container-{i}");
        let (even, odd) = ((i % 2 == 0).to_string(), (i % 2 != 0).to_string());
        let want = Container {
            id: id.clone(),
            labels: labels_of(&[("idlabel", &id), ("even", &even), ("odd", &odd)]),
            ..with_snapshot()
        };
        let now = SystemTime::now();
        let got = store.create(&ctx, want.clone()).unwrap();
        check_timestamps(&got, now, true);
        assert_eq!(
            got,
            Container {
                created: got.created,
                updated: got.updated,
                ..want
            }
        );
        testset.push(got);
    }

    let cases: &[(&str, &[&str])] = &[
        ("FullSet", &[]),
        (
            "FullSetFiltered",
            &["labels.even==true", "labels.odd==true"],
        ),
        ("Even", &["labels.even==true"]),
        ("Odd", &["labels.odd==true"]),
        ("ByID", &["id==container-0"]),
        (
            "ByIDLabelEven",
            &["labels.idlabel==container-0,labels.even==true"],
        ),
        ("ByRuntime", &["runtime.name==testruntime"]),
    ];
    for (name, filters) in cases {
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let fs = parse_all(&filters).unwrap();
        let want: Vec<&Container> = testset.iter().filter(|c| fs.matches(*c)).collect();
        let got = store.list(&ctx, &filters).unwrap();
        assert!(!got.is_empty(), "{name}: no results");
        assert_eq!(got.len(), want.len(), "{name}: result length");
        for c in &got {
            assert_eq!(
                Some(&c),
                want.iter().find(|w| w.id == c.id),
                "{name}: list results"
            );
        }
    }

    for c in &testset {
        store.delete(&ctx, &c.id).unwrap();
        assert_kind!(store.delete(&ctx, &c.id), NotFound);
    }
}

struct Case {
    name: &'static str,
    original: Container,
    create_err: Option<Kind>,
    input: Container,
    paths: &'static [&'static str],
    expected: Container,
    cause: Option<Kind>,
}

fn case(name: &'static str, original: Container) -> Case {
    Case {
        name,
        original,
        create_err: None,
        input: zero(),
        paths: &[],
        expected: zero(),
        cause: None,
    }
}

fn cases() -> Vec<Case> {
    let plain = || Container {
        spec: encoded(),
        runtime: runtime("testruntime"),
        ..zero()
    };
    let no_image = || Container {
        image: String::new(),
        ..with_snapshot()
    };
    let labelled = || Container {
        labels: labels_of(&[("foo", "one"), ("bar", "two")]),
        ..with_snapshot()
    };
    vec![
        Case {
            input: Container {
                id: "newid".into(),
                spec: encoded(),
                runtime: runtime("testruntime"),
                ..zero()
            },
            paths: &["id"],
            cause: Some(Error::NotFound),
            ..case("UpdateIDFail", no_image())
        },
        Case {
            input: Container {
                spec: encoded(),
                runtime: runtime("testruntimedifferent"),
                ..zero()
            },
            paths: &["runtime"],
            cause: Some(Error::InvalidArgument),
            ..case("UpdateRuntimeFail", no_image())
        },
        Case {
            input: Container {
                spec: encoded(),
                ..zero()
            },
            paths: &["runtime"],
            cause: Some(Error::InvalidArgument),
            ..case("UpdateRuntimeClearFail", no_image())
        },
        Case {
            input: Container {
                spec: encoded_updated(),
                ..zero()
            },
            paths: &["spec"],
            expected: Container {
                spec: encoded_updated(),
                ..with_snapshot()
            },
            ..case("UpdateSpec", with_snapshot())
        },
        Case {
            input: Container {
                snapshot_key: "test2-snapshot-key".into(),
                ..zero()
            },
            paths: &["snapshotkey"],
            expected: Container {
                snapshot_key: "test2-snapshot-key".into(),
                ..with_snapshot()
            },
            ..case("UpdateSnapshot", with_snapshot())
        },
        Case {
            input: Container {
                image: "test2 image".into(),
                ..zero()
            },
            paths: &["image"],
            expected: Container {
                image: "test2 image".into(),
                ..with_snapshot()
            },
            ..case("UpdateImage", with_snapshot())
        },
        Case {
            input: Container {
                labels: labels_of(&[("bar", "baz")]),
                ..zero()
            },
            paths: &["labels.bar"],
            expected: Container {
                labels: labels_of(&[("foo", "one"), ("bar", "baz")]),
                ..with_snapshot()
            },
            ..case("UpdateLabel", labelled())
        },
        Case {
            input: zero(),
            paths: &["labels"],
            expected: with_snapshot(),
            ..case("DeleteAllLabels", labelled())
        },
        Case {
            input: Container {
                labels: labels_of(&[("bar", "")]),
                ..zero()
            },
            paths: &["labels.bar"],
            expected: Container {
                labels: labels_of(&[("foo", "one")]),
                ..with_snapshot()
            },
            ..case("DeleteLabel", labelled())
        },
        Case {
            input: Container {
                snapshot_key: "something".into(),
                snapshotter: "something".into(),
                ..zero()
            },
            paths: &["snapshotkey", "snapshotter"],
            cause: Some(Error::InvalidArgument),
            ..case("UpdateSnapshotKeyImmutable", plain())
        },
        Case {
            create_err: Some(Error::InvalidArgument),
            ..case(
                "SnapshotKeyWithoutSnapshot",
                Container {
                    snapshot_key: "/nosnapshot".into(),
                    ..plain()
                },
            )
        },
        Case {
            input: Container {
                extensions: exts(&[("hello", "world")]),
                ..plain()
            },
            expected: Container {
                extensions: exts(&[("hello", "world")]),
                ..plain()
            },
            ..case(
                "UpdateExtensionsFull",
                Container {
                    extensions: exts(&[("hello", "hello")]),
                    ..plain()
                },
            )
        },
        Case {
            input: Container {
                extensions: exts(&[("hello", "world")]),
                ..plain()
            },
            paths: &["labels"],
            expected: Container {
                extensions: exts(&[("hello", "hello")]),
                ..plain()
            },
            ..case(
                "UpdateExtensionsNotInFieldpath",
                Container {
                    extensions: exts(&[("hello", "hello")]),
                    ..plain()
                },
            )
        },
        Case {
            input: Container {
                labels: labels_of(&[("foo", "one")]),
                extensions: exts(&[("hello", "world")]),
                ..zero()
            },
            paths: &["extensions"],
            expected: Container {
                extensions: exts(&[("hello", "world")]),
                ..plain()
            },
            ..case(
                "UpdateExtensionsFieldPath",
                Container {
                    extensions: exts(&[("hello", "hello")]),
                    ..plain()
                },
            )
        },
        Case {
            input: Container {
                extensions: exts(&[("hello", "universe"), ("bar", "foo")]),
                ..zero()
            },
            paths: &["extensions.bar"],
            expected: Container {
                extensions: exts(&[("hello", "hello"), ("bar", "foo")]),
                ..plain()
            },
            ..case(
                "UpdateExtensionsFieldPathIsolated",
                Container {
                    extensions: exts(&[("hello", "hello")]),
                    ..plain()
                },
            )
        },
    ]
}

#[test]
fn containers_create_update_delete() {
    let env = Env::new();
    let _g = env.enter();
    let ctx = ctx("testing");
    let store = env.rt.containers();
    for mut tc in cases() {
        let name = tc.name;
        tc.original.id = name.into();
        if tc.input.id.is_empty() {
            tc.input.id = name.into();
        }
        tc.expected.id = name.into();

        let now = SystemTime::now();
        let created = store.create(&ctx, tc.original.clone());
        let Some(created) = expect(&format!("{name}: create"), created, tc.create_err) else {
            continue;
        };
        check_timestamps(&created, now, true);
        let original = Container {
            created: created.created,
            updated: created.updated,
            ..tc.original
        };
        assert_eq!(
            created, original,
            "{name}: unexpected container on creation"
        );

        let now = SystemTime::now();
        let paths: Vec<String> = tc.paths.iter().map(|p| p.to_string()).collect();
        let updated = store.update(&ctx, tc.input.clone(), &paths);
        let Some(updated) = expect(&format!("{name}: update"), updated, tc.cause) else {
            continue;
        };
        check_timestamps(&updated, now, false);
        let expected = Container {
            created: created.created,
            updated: updated.updated,
            ..tc.expected
        };
        assert_eq!(
            updated, expected,
            "{name}: update did not give the expected result"
        );
        assert_eq!(
            store.get(&ctx, name).unwrap(),
            expected,
            "{name}: get after update"
        );
    }
}

/// A full update (no field paths) may not change the snapshotter or the runtime name
/// (containerd's `Update`), and what is invalid on create is invalid on update.
#[test]
fn full_updates_keep_immutable_fields_and_validate() {
    let env = Env::new();
    let _g = env.enter();
    let ctx = ctx("testing");
    let store = env.rt.containers();
    let c = Container {
        id: "c1".into(),
        ..with_snapshot()
    };
    store.create(&ctx, c.clone()).unwrap();
    assert_kind!(store.create(&ctx, c.clone()), AlreadyExists);
    let other_sn = Container {
        snapshotter: "other".into(),
        ..c.clone()
    };
    assert_kind!(store.update(&ctx, other_sn, &[]), InvalidArgument);
    let other_rt = Container {
        runtime: runtime("other"),
        ..c.clone()
    };
    assert_kind!(store.update(&ctx, other_rt, &[]), InvalidArgument);
    let no_spec = Container {
        spec: None,
        ..c.clone()
    };
    assert_kind!(store.update(&ctx, no_spec, &[]), InvalidArgument);
    let empty_ext = Container {
        extensions: exts(&[("", "x")]),
        ..c.clone()
    };
    assert_kind!(
        store.update(&ctx, empty_ext, &["extensions".into()]),
        InvalidArgument
    );
    assert_kind!(
        store.update(
            &ctx,
            Container {
                id: String::new(),
                ..c.clone()
            },
            &[]
        ),
        InvalidArgument
    );
    assert_kind!(
        store.create(
            &ctx,
            Container {
                id: "bad/id".into(),
                ..c.clone()
            }
        ),
        InvalidArgument
    );
    assert_kind!(
        store.create(
            &ctx,
            Container {
                id: "no-spec".into(),
                spec: None,
                ..c.clone()
            }
        ),
        InvalidArgument
    );
    assert_kind!(
        store.create(
            &ctx,
            Container {
                id: "no-runtime".into(),
                runtime: runtime(""),
                ..c.clone()
            }
        ),
        InvalidArgument
    );
    assert_kind!(store.get(&ctx, "missing"), NotFound);
    assert_kind!(
        store.update(
            &ctx,
            Container {
                id: "missing".into(),
                ..c.clone()
            },
            &[]
        ),
        NotFound
    );
    // Unchanged after the failures.
    let got = store.get(&ctx, "c1").unwrap();
    assert_eq!(
        got,
        Container {
            created: got.created,
            updated: got.updated,
            ..c
        }
    );
    assert_eq!(got.created, got.updated);
}

#[test]
fn containers_are_scoped_to_their_namespace() {
    let env = Env::new();
    let _g = env.enter();
    let (a, b) = (ctx("ns-a"), ctx("ns-b"));
    let store = env.rt.containers();
    let c = Container {
        id: "c1".into(),
        ..with_snapshot()
    };
    store.create(&a, c.clone()).unwrap();
    assert_kind!(store.get(&b, "c1"), NotFound);
    assert!(store.list(&b, &[]).unwrap().is_empty());
    assert_kind!(store.delete(&b, "c1"), NotFound);
    store.create(&b, c).unwrap();
    store.delete(&a, "c1").unwrap();
    store.get(&b, "c1").unwrap();
}
