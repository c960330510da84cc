//! Images, ported from containerd 1.6 `metadata/images_test.go` (TestImagesList,
//! TestImagesCreateUpdateDelete), plus namespace scoping.

mod common;

use std::time::SystemTime;

use common::{Env, Kind, ctx, digest_of, expect, labels_of};
use strata_core::filters::{Adaptor, parse_all};
use strata_runtime::{Descriptor, Error, Image};

fn image(name: &str, labels: &[(&str, &str)], target: Descriptor) -> Image {
    Image {
        name: name.into(),
        labels: labels_of(labels),
        target,
        created: SystemTime::UNIX_EPOCH,
        updated: SystemTime::UNIX_EPOCH,
    }
}

fn target(size: i64, media_type: &str, annotations: &[(&str, &str)]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: String::new(),
        size,
        annotations: labels_of(annotations),
    }
}

/// containerd's `imageBase()`.
fn base() -> Image {
    image(
        "",
        &[("foo", "bar"), ("baz", "boo")],
        target(
            10,
            "application/vnd.oci.blab",
            &[("foo", "bar"), ("baz", "boo")],
        ),
    )
}

/// containerd's `checkImageTimestamps`.
fn check_timestamps(im: &Image, now: SystemTime, on_create: bool) {
    assert!(im.created > SystemTime::UNIX_EPOCH && im.updated > SystemTime::UNIX_EPOCH);
    if on_create {
        assert_eq!(
            im.created, im.updated,
            "timestamps should be equal on create"
        );
    } else {
        assert!(im.updated > im.created, "updated not after created");
    }
    assert!(
        im.updated >= now,
        "updated before the start of the operation"
    );
}

#[test]
fn images_list() {
    let env = Env::new();
    let _g = env.enter();
    let ctx = ctx("testing");
    let store = env.rt.images();
    let mut testset = Vec::new();
    for i in 0..4 {
        let id = format!("image-{i}");
        let even = (i % 2 == 0).to_string();
        let odd = (i % 2 != 0).to_string();
        let mut t = target(10, "application/vnd.containerd.test", &[("foo", "bar")]);
        t.digest = digest_of(id.as_bytes()).to_string();
        let want = image(
            &id,
            &[("namelabel", &id), ("even", &even), ("odd", &odd)],
            t,
        );
        let now = SystemTime::now();
        let got = store.create(&ctx, want.clone()).unwrap();
        check_timestamps(&got, now, true);
        assert_eq!(
            got,
            Image {
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
        ("ByName", &["name==image-0"]),
        (
            "ByNameLabelEven",
            &["labels.namelabel==image-0,labels.even==true"],
        ),
        ("ByMediaType", &["target.mediatype~=application/vnd.*"]),
    ];
    for (name, filters) in cases {
        let filters: Vec<String> = filters.iter().map(|f| f.to_string()).collect();
        let fs = parse_all(&filters).unwrap();
        let want: Vec<&Image> = testset.iter().filter(|im| fs.matches(*im)).collect();
        let got = store.list(&ctx, &filters).unwrap();
        assert!(!got.is_empty(), "{name}: no results");
        assert_eq!(got.len(), want.len(), "{name}: result length");
        for im in &got {
            let w = want.iter().find(|w| w.name == im.name);
            assert_eq!(Some(&im), w, "{name}: list results did not match");
        }
    }

    for im in &testset {
        store.delete(&ctx, &im.name).unwrap();
        assert_kind!(store.delete(&ctx, &im.name), NotFound);
    }
}

/// Filter fields of images, checked directly (the list oracle above relies on them).
#[test]
fn image_filter_fields() {
    let mut t = target(10, "application/vnd.x", &[("a", "b")]);
    t.digest = digest_of(b"x").to_string();
    let im = image("docker.io/x:1", &[("l.dotted", "v")], t.clone());
    let f = |p: &[&str]| im.field(&p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    assert_eq!(f(&["name"]).as_deref(), Some("docker.io/x:1"));
    assert_eq!(f(&["target", "digest"]), Some(t.digest));
    assert_eq!(
        f(&["target", "mediatype"]).as_deref(),
        Some("application/vnd.x")
    );
    assert_eq!(f(&["labels", "l", "dotted"]).as_deref(), Some("v"));
    assert_eq!(f(&["annotations", "a"]).as_deref(), Some("b"));
}

struct Case {
    name: &'static str,
    original: Image,
    create_err: Option<Kind>,
    input: Image,
    paths: &'static [&'static str],
    expected: Image,
    cause: Option<Kind>,
}

fn case(name: &'static str, original: Image) -> Case {
    let empty = image("", &[], Descriptor::default());
    Case {
        name,
        original,
        create_err: None,
        input: empty.clone(),
        paths: &[],
        expected: empty,
        cause: None,
    }
}

fn cases() -> Vec<Case> {
    let blab = "application/vnd.oci.blab";
    let ignored = "application/vnd.oci.blab+ignored";
    vec![
        Case {
            input: image(
                "",
                &[("foo", "bar"), ("baz", "boo")],
                target(10, blab, &[("foo", "bar")]),
            ),
            expected: image(
                "",
                &[("foo", "bar"), ("baz", "boo")],
                target(10, blab, &[("foo", "bar")]),
            ),
            ..case("Touch", base())
        },
        Case {
            create_err: Some(Error::InvalidArgument),
            ..case(
                "NoTarget",
                image("", &[("foo", "bar"), ("baz", "boo")], Descriptor::default()),
            )
        },
        Case {
            input: image(
                "",
                &[("for", "bar"), ("boo", "boo")],
                target(10, blab, &[("foo", "bar")]),
            ),
            expected: image(
                "",
                &[("for", "bar"), ("boo", "boo")],
                target(10, blab, &[("foo", "bar")]),
            ),
            ..case("ReplaceLabels", base())
        },
        Case {
            input: image(
                "",
                &[("for", "bar"), ("boo", "boo")],
                target(20, ignored, &[("not", "bar"), ("new", "boo")]),
            ),
            paths: &["labels"],
            expected: image(
                "",
                &[("for", "bar"), ("boo", "boo")],
                target(10, blab, &[("foo", "bar"), ("baz", "boo")]),
            ),
            ..case("ReplaceLabelsFieldPath", base())
        },
        Case {
            input: image(
                "",
                &[("for", "bar"), ("boo", "boo")],
                target(20, ignored, &[("foo", "boo")]),
            ),
            paths: &["annotations", "labels"],
            expected: image(
                "",
                &[("for", "bar"), ("boo", "boo")],
                target(10, blab, &[("foo", "boo")]),
            ),
            ..case("ReplaceLabelsAnnotationsFieldPath", base())
        },
        Case {
            input: image(
                "",
                &[("foo", "baz"), ("baz", "bunk")],
                target(20, ignored, &[("foo", "bar")]),
            ),
            paths: &["labels.foo"],
            expected: image(
                "",
                &[("foo", "baz"), ("baz", "boo")],
                target(10, blab, &[("foo", "bar"), ("baz", "boo")]),
            ),
            ..case("ReplaceLabel", base())
        },
        Case {
            input: image(
                "",
                &[("foo", "baz"), ("baz", "bunk")],
                target(20, ignored, &[("foo", "baz"), ("baz", "bunk")]),
            ),
            paths: &["annotations.foo"],
            expected: image(
                "",
                &[("foo", "bar"), ("baz", "boo")],
                target(10, blab, &[("foo", "baz"), ("baz", "boo")]),
            ),
            ..case("ReplaceAnnotation", base())
        },
        Case {
            input: image(
                "",
                &[],
                target(10, "application/vnd.oci.blab+replaced", &[("fox", "dog")]),
            ),
            paths: &["target"],
            expected: image(
                "",
                &[("foo", "bar"), ("baz", "boo")],
                target(10, "application/vnd.oci.blab+replaced", &[("fox", "dog")]),
            ),
            ..case("ReplaceTarget", base())
        },
        Case {
            input: image(
                "",
                &[("foo", "bar"), ("baz", "boo")],
                target(0, blab, &[("foo", "bar")]),
            ),
            cause: Some(Error::InvalidArgument),
            ..case("EmptySize", base())
        },
        Case {
            create_err: Some(Error::InvalidArgument),
            ..case(
                "EmptySizeOnCreate",
                image(
                    "",
                    &[("foo", "bar"), ("baz", "boo")],
                    target(0, blab, &[("foo", "bar")]),
                ),
            )
        },
        Case {
            input: image("", &[("foo", "bar"), ("baz", "boo")], target(10, "", &[])),
            cause: Some(Error::InvalidArgument),
            ..case("EmptyMediaType", base())
        },
        Case {
            create_err: Some(Error::InvalidArgument),
            ..case(
                "EmptyMediaTypeOnCreate",
                image("", &[("foo", "bar"), ("baz", "boo")], target(10, "", &[])),
            )
        },
        Case {
            input: image(
                "test should fail",
                &[("foo", "bar"), ("baz", "boo")],
                target(10, blab, &[("foo", "bar")]),
            ),
            cause: Some(Error::NotFound),
            ..case(
                "TryUpdateNameFail",
                image(
                    "",
                    &[("foo", "bar"), ("baz", "boo")],
                    target(10, blab, &[("foo", "bar")]),
                ),
            )
        },
    ]
}

#[test]
fn images_create_update_delete() {
    let env = Env::new();
    let _g = env.enter();
    let ctx = ctx("testing");
    let store = env.rt.images();
    for mut tc in cases() {
        let name = tc.name;
        tc.original.name = name.into();
        if tc.input.name.is_empty() {
            tc.input.name = name.into();
        }
        tc.expected.name = name.into();
        if tc.original.target.digest.is_empty() {
            let d = digest_of(name.as_bytes()).to_string();
            tc.original.target.digest = d.clone();
            tc.input.target.digest = d.clone();
            tc.expected.target.digest = d;
        }

        let now = SystemTime::now();
        let created = store.create(&ctx, tc.original.clone());
        let Some(created) = expect(&format!("{name}: create"), created, tc.create_err) else {
            continue;
        };
        check_timestamps(&created, now, true);
        let original = Image {
            created: created.created,
            updated: created.updated,
            ..tc.original
        };
        assert_eq!(created, original, "{name}: unexpected image on creation");

        let now = SystemTime::now();
        let paths: Vec<String> = tc.paths.iter().map(|p| p.to_string()).collect();
        let updated = store.update(&ctx, tc.input.clone(), &paths);
        let Some(updated) = expect(&format!("{name}: update"), updated, tc.cause) else {
            continue;
        };
        check_timestamps(&updated, now, false);
        let expected = Image {
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

#[test]
fn duplicate_names_unknown_paths_and_missing_images() {
    let env = Env::new();
    let _g = env.enter();
    let ctx = ctx("testing");
    let store = env.rt.images();
    let mut im = base();
    im.name = "dup".into();
    im.target.digest = digest_of(b"dup").to_string();
    store.create(&ctx, im.clone()).unwrap();
    assert_kind!(store.create(&ctx, im.clone()), AlreadyExists);
    assert_kind!(
        store.update(&ctx, im.clone(), &["name".into()]),
        InvalidArgument
    );
    assert_kind!(
        store.update(
            &ctx,
            Image {
                name: String::new(),
                ..im.clone()
            },
            &[]
        ),
        InvalidArgument
    );
    assert_kind!(store.get(&ctx, "missing"), NotFound);
    assert_kind!(
        store.update(
            &ctx,
            Image {
                name: "missing".into(),
                ..im.clone()
            },
            &[]
        ),
        NotFound
    );
    let mut bad = im.clone();
    bad.name = "bad-digest".into();
    bad.target.digest = "sha256:nothex".into();
    assert_kind!(store.create(&ctx, bad), InvalidArgument);
    let mut bad = im;
    bad.name = "bad-label".into();
    bad.labels.insert("k".into(), "v".repeat(4096));
    assert_kind!(store.create(&ctx, bad.clone()), InvalidArgument);
    // containerd's label rule is only the size: an empty key is accepted.
    bad.labels = common::labels_of(&[("", "v")]);
    store.create(&ctx, bad).unwrap();
}

#[test]
fn images_are_scoped_to_their_namespace() {
    let env = Env::new();
    let _g = env.enter();
    let (a, b) = (ctx("ns-a"), ctx("ns-b"));
    let store = env.rt.images();
    let mut im = base();
    im.name = "shared-name".into();
    im.target.digest = digest_of(b"a").to_string();
    store.create(&a, im.clone()).unwrap();
    assert_kind!(store.get(&b, "shared-name"), NotFound);
    assert!(store.list(&b, &[]).unwrap().is_empty());
    assert_kind!(store.delete(&b, "shared-name"), NotFound);
    // The same name in another namespace is another image.
    im.target.digest = digest_of(b"b").to_string();
    store.create(&b, im).unwrap();
    assert_eq!(
        store.get(&a, "shared-name").unwrap().target.digest,
        digest_of(b"a").to_string()
    );
    assert_eq!(
        store.get(&b, "shared-name").unwrap().target.digest,
        digest_of(b"b").to_string()
    );
}
