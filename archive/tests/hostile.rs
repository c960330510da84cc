//! The hostile layer corpus (`tests/hostile/`, made by `make.py`): every case fails with its
//! expected error kind and writes nothing outside the tree it is applied to — a sentinel
//! directory beside the tree is unchanged, and no `escaped` file appears where a naive
//! extractor would have put it.

mod common;

use std::path::Path;

use common::snapshot_of;
use strata_archive::{Error, Options, Whiteouts, apply};

struct Case {
    name: String,
    expected: String,
    options: String,
}

/// The package's folder as `cargo test` gives it when the test runs. `env!("CARGO_MANIFEST_DIR")`
/// is fixed at build time, and cargo does not rebuild when the same sources are checked out at
/// another path with the same target folder (CI's clean clone), so it can name a folder that is
/// gone; it is only the fallback for a test binary started by hand.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn cases() -> Vec<Case> {
    let dir = manifest_dir().join("tests/hostile");
    let text = std::fs::read_to_string(dir.join("cases.tsv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            Case {
                name: f[0].into(),
                expected: f[1].into(),
                options: f[2].into(),
            }
        })
        .collect()
}

fn options(spec: &str, whiteouts: Whiteouts) -> Options {
    let mut o = Options {
        whiteouts,
        ..Options::default()
    };
    for kv in spec.split(',').filter(|s| *s != "-") {
        match kv.split_once('=') {
            Some(("devices", "off")) => o.allow_devices = false,
            Some(("max_bytes", n)) => o.max_bytes = n.parse().unwrap(),
            _ => panic!("unknown option {kv}"),
        }
    }
    o
}

fn escaped_anywhere(tmp: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for p in [
        Path::new("/escaped"),
        Path::new("/tmp/escaped"),
        &tmp.join("escaped"),
    ] {
        if p.exists() {
            found.push(p.display().to_string());
        }
    }
    found
}

fn run(whiteouts: Whiteouts) {
    let corpus = manifest_dir().join("tests/hostile");
    let all = cases();
    assert!(all.len() >= 20, "the corpus has {} cases", all.len());
    for c in all {
        let tmp = tempfile::tempdir().unwrap();
        let (root, sentinel) = (tmp.path().join("root"), tmp.path().join("sentinel"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&sentinel).unwrap();
        std::fs::write(sentinel.join("file"), b"untouched").unwrap();
        let before = snapshot_of(&sentinel);
        let layer = std::fs::File::open(corpus.join(format!("{}.layer", c.name))).unwrap();
        let res = apply(layer, &root, &options(&c.options, whiteouts.clone()));
        let kind = match &res {
            Err(Error::Invalid(_)) => "invalid",
            Err(Error::Limit(_)) => "limit",
            Err(_) => "other",
            Ok(_) => "ok",
        };
        assert_eq!(kind, c.expected, "{}: {res:?}", c.name);
        assert_eq!(
            snapshot_of(&sentinel),
            before,
            "{}: the sentinel changed",
            c.name
        );
        let outside: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            outside.len(),
            2,
            "{}: something appeared beside the tree: {outside:?}",
            c.name
        );
        assert!(
            escaped_anywhere(tmp.path()).is_empty(),
            "{}: escaped",
            c.name
        );
        eprintln!("{:<26} {kind:<8} {}", c.name, res.unwrap_err());
    }
}

#[test]
fn every_hostile_layer_fails_cleanly_on_a_full_copy() {
    run(Whiteouts::Delete);
}

#[test]
fn every_hostile_layer_fails_cleanly_on_an_overlay_upper_dir() {
    run(Whiteouts::Overlay {
        opaque_xattr: "trusted.overlay.opaque".into(),
    });
}
