//! Layers applied to real directories: every entry type, attributes, replacements, whiteouts in
//! both conversions, hard links to lower layers, sparse files, compression and digests.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;
use sha2::{Digest as _, Sha256};
use strata_archive::{Error, Options, Whiteouts, apply};
use tar::EntryType;

fn overlay() -> Options {
    Options {
        whiteouts: Whiteouts::Overlay {
            opaque_xattr: "trusted.overlay.opaque".into(),
        },
        ..Options::default()
    }
}

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

#[test]
fn every_entry_type_with_its_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let layer = Layer::default()
        .dir("etc/", 0o755)
        .file("etc/hosts", 0o644, b"127.0.0.1 localhost\n")
        .with("bin/suid", EntryType::Regular, b"x", |h| {
            h.set_mode(0o4755);
            h.set_uid(1000);
            h.set_gid(50);
        })
        .with("tmp/", EntryType::Directory, b"", |h| h.set_mode(0o1777))
        .symlink("etc/localtime", "/usr/share/zoneinfo/UTC")
        .hardlink("etc/hosts.bak", "etc/hosts")
        .with("dev/null", EntryType::Char, b"", |h| {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
            h.set_mode(0o666);
        })
        .with("run/fifo", EntryType::Fifo, b"", |h| h.set_mode(0o620))
        .pax(
            &[("SCHILY.xattr.user.note", b"hello")],
            "etc/noted",
            EntryType::Regular,
            b"n",
        )
        .tar();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let got = apply(&layer[..], &root, &Options::default()).unwrap();
    assert_eq!(got.uncompressed.digest, sha(&layer));
    assert_eq!(
        got.compressed.digest,
        sha(&layer),
        "an uncompressed layer is its own diff"
    );
    let md = |p: &str| std::fs::symlink_metadata(root.join(p)).unwrap();
    assert_eq!(md("bin/suid").permissions().mode() & 0o7777, 0o4755);
    assert_eq!((md("bin/suid").uid(), md("bin/suid").gid()), (1000, 50));
    assert_eq!(md("tmp").permissions().mode() & 0o7777, 0o1777);
    assert_eq!(
        std::fs::read_link(root.join("etc/localtime")).unwrap(),
        Path::new("/usr/share/zoneinfo/UTC")
    );
    assert_eq!(md("etc/hosts.bak").ino(), md("etc/hosts").ino());
    assert_eq!(md("dev/null").rdev(), nix::sys::stat::makedev(1, 3));
    assert!(md("run/fifo").file_type().is_dir() == false);
    assert_eq!(md("etc/hosts").mtime(), 1_600_000_000);
    assert_eq!(
        md("etc").mtime(),
        1_600_000_000,
        "directory times are set after their children"
    );
    let note = xattr_of(&root.join("etc/noted"), "user.note");
    assert_eq!(note.as_deref(), Some(&b"hello"[..]));
}

fn xattr_of(p: &Path, key: &str) -> Option<Vec<u8>> {
    xattr::get(p, key).unwrap()
}

#[test]
fn gzip_layers_report_both_digests_and_long_names_work() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("deep/{}", "n".repeat(200));
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(3);
    h.set_mode(0o600);
    h.set_entry_type(EntryType::Regular);
    b.append_data(&mut h, &long, &b"abc"[..]).unwrap();
    let raw = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &raw).unwrap();
    let gz = gz.finish().unwrap();
    let got = apply(&gz[..], dir.path(), &Options::default()).unwrap();
    assert_eq!(got.compressed.digest, sha(&gz));
    assert_eq!(got.uncompressed.digest, sha(&raw));
    assert_eq!(std::fs::read(dir.path().join(&long)).unwrap(), b"abc");
}

#[test]
fn replacements_go_both_ways() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("was-dir/child")).unwrap();
    std::fs::write(root.join("was-file"), b"old").unwrap();
    let layer = Layer::default()
        .file("was-dir", 0o644, b"now a file")
        .dir("was-file/", 0o755)
        .file("was-file/inside", 0o644, b"in")
        .tar();
    apply(&layer[..], root, &Options::default()).unwrap();
    assert_eq!(std::fs::read(root.join("was-dir")).unwrap(), b"now a file");
    assert_eq!(std::fs::read(root.join("was-file/inside")).unwrap(), b"in");
}

#[test]
fn delete_whiteouts_remove_and_opaque_keeps_only_this_layer() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("a/sub")).unwrap();
    std::fs::write(root.join("a/old"), b"").unwrap();
    std::fs::write(root.join("gone"), b"").unwrap();
    std::fs::create_dir_all(root.join("gonedir/x")).unwrap();
    let layer = Layer::default()
        .dir("a/", 0o755)
        .file("a/new", 0o644, b"new")
        .file("a/.wh..wh..opq", 0o644, b"")
        .file(".wh.gone", 0o644, b"")
        .file(".wh.gonedir", 0o644, b"")
        .tar();
    apply(&layer[..], root, &Options::default()).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(root.join("a"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["new"]);
    assert!(!root.join("gone").exists() && !root.join("gonedir").exists());
    assert!(!root.join(".wh.gone").exists());
}

#[test]
fn overlay_whiteouts_become_devices_and_opaque_xattrs() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let layer = Layer::default()
        .dir("a/", 0o755)
        .file("a/.wh..wh..opq", 0o644, b"")
        .file("b/.wh.gone", 0o644, b"")
        .tar();
    apply(&layer[..], root, &overlay()).unwrap();
    let wh = std::fs::symlink_metadata(root.join("b/gone")).unwrap();
    assert_eq!(wh.mode() & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(wh.rdev(), 0);
    assert_eq!(
        xattr_of(&root.join("a"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
}

#[test]
fn hard_links_to_a_lower_layer_copy_the_file_up() {
    let dir = tempfile::tempdir().unwrap();
    let (lower, upper) = (dir.path().join("lower"), dir.path().join("upper"));
    std::fs::create_dir_all(lower.join("usr/bin")).unwrap();
    std::fs::write(lower.join("usr/bin/tool"), b"binary").unwrap();
    std::fs::set_permissions(
        lower.join("usr/bin"),
        std::fs::Permissions::from_mode(0o711),
    )
    .unwrap();
    std::fs::create_dir(&upper).unwrap();
    let layer = Layer::default()
        .hardlink("usr/bin/alias", "usr/bin/tool")
        .tar();
    let opts = Options {
        lower: vec![lower.clone()],
        ..overlay()
    };
    apply(&layer[..], &upper, &opts).unwrap();
    let (a, t) = (upper.join("usr/bin/alias"), upper.join("usr/bin/tool"));
    assert_eq!(std::fs::read(&a).unwrap(), b"binary");
    assert_eq!(
        std::fs::metadata(&a).unwrap().ino(),
        std::fs::metadata(&t).unwrap().ino()
    );
    let bin = std::fs::metadata(upper.join("usr/bin")).unwrap();
    assert_eq!(
        bin.permissions().mode() & 0o7777,
        0o711,
        "implicit parents take the lower's attributes"
    );
}

#[test]
fn pax_sparse_1_0_files_are_rebuilt_with_holes() {
    let dir = tempfile::tempdir().unwrap();
    let mut data = b"2\n0\n4\n1048576\n3\n".to_vec();
    data.resize(512, 0);
    data.extend_from_slice(b"headEND");
    let records: [(&str, &[u8]); 4] = [
        ("GNU.sparse.major", b"1"),
        ("GNU.sparse.minor", b"0"),
        ("GNU.sparse.name", b"big/sparse"),
        ("GNU.sparse.realsize", b"1048579"),
    ];
    let layer = Layer::default()
        .pax(
            &records,
            "big/GNUSparseFile.0/sparse",
            EntryType::Regular,
            &data,
        )
        .tar();
    apply(&layer[..], dir.path(), &Options::default()).unwrap();
    let f = dir.path().join("big/sparse");
    let content = std::fs::read(&f).unwrap();
    assert_eq!(content.len(), 1_048_579);
    assert_eq!(&content[..4], b"head");
    assert_eq!(&content[1_048_576..], b"END");
    assert!(content[4..1_048_576].iter().all(|b| *b == 0));
    assert!(
        std::fs::metadata(&f).unwrap().blocks() < 64,
        "the hole is not written"
    );
}

#[test]
fn the_root_entry_sets_the_root_attributes() {
    let dir = tempfile::tempdir().unwrap();
    let layer = Layer::default()
        .with("./", EntryType::Directory, b"", |h| h.set_mode(0o750))
        .tar();
    apply(&layer[..], dir.path(), &Options::default()).unwrap();
    let m = std::fs::metadata(dir.path()).unwrap();
    assert_eq!(m.permissions().mode() & 0o7777, 0o750);
}

#[test]
fn a_limit_stops_a_bomb() {
    let dir = tempfile::tempdir().unwrap();
    let layer = Layer::default()
        .file("zeros", 0o644, &vec![0u8; 1 << 20])
        .gzip();
    let opts = Options {
        max_bytes: 64 << 10,
        ..Options::default()
    };
    let err = apply(&layer[..], dir.path(), &opts).unwrap_err();
    assert!(matches!(err, Error::Limit(_)), "{err}");
}

#[test]
fn overlay_refuses_to_write_through_a_lower_symlink() {
    let dir = tempfile::tempdir().unwrap();
    let (lower, upper) = (dir.path().join("lower"), dir.path().join("upper"));
    std::fs::create_dir_all(lower.join("usr/lib")).unwrap();
    std::os::unix::fs::symlink("usr/lib", lower.join("lib")).unwrap();
    std::fs::create_dir(&upper).unwrap();
    let opts = Options {
        lower: vec![lower],
        ..overlay()
    };
    let ok = Layer::default()
        .file("usr/lib/libok.so", 0o644, b"ok")
        .tar();
    apply(&ok[..], &upper, &opts).unwrap();
    let through = Layer::default().file("lib/libfoo.so", 0o644, b"x").tar();
    let err = apply(&through[..], &upper, &opts).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.contains("symlink in a lower layer")),
        "{err}"
    );
    assert!(
        !upper.join("lib").exists(),
        "the lower symlink is not shadowed by a directory"
    );
}

/// An upper layer applied apart from its lower layers (`lower_unknown`): what it carries whole
/// applies; a missing parent directory or a hard link to a file it did not write fails with
/// Unsupported (the caller applies it with its lowers instead); `root_entry` tells whether the
/// layer set the root's attributes.
#[test]
fn an_upper_layer_applied_apart_from_its_lowers_fails_where_it_needs_them() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        lower_unknown: true,
        ..overlay()
    };
    let whole = Layer::default()
        .dir("etc/", 0o755)
        .file("etc/.wh.gone", 0o644, b"")
        .file("etc/motd", 0o644, b"hi")
        .hardlink("etc/motd2", "etc/motd")
        .tar();
    let root = dir.path().join("whole");
    std::fs::create_dir(&root).unwrap();
    let got = apply(&whole[..], &root, &opts).unwrap();
    assert!(!got.root_entry);
    assert_eq!(std::fs::read(root.join("etc/motd2")).unwrap(), b"hi");
    let with_root = Layer::default()
        .dir("./", 0o700)
        .file("a", 0o644, b"a")
        .tar();
    let root = dir.path().join("with-root");
    std::fs::create_dir(&root).unwrap();
    assert!(apply(&with_root[..], &root, &opts).unwrap().root_entry);
    assert_eq!(std::fs::metadata(&root).unwrap().mode() & 0o7777, 0o700);

    let needs_parent = Layer::default().file("etc/deep/x", 0o644, b"x").tar();
    let needs_target = Layer::default()
        .dir("etc/", 0o755)
        .hardlink("etc/alias", "etc/motd")
        .tar();
    let whiteout_below = Layer::default().file("usr/.wh.gone", 0o644, b"").tar();
    for (name, layer) in [
        ("parent", needs_parent),
        ("target", needs_target),
        ("whiteout", whiteout_below),
    ] {
        let root = dir.path().join(name);
        std::fs::create_dir(&root).unwrap();
        let err = apply(&layer[..], &root, &opts).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)), "{name}: {err}");
        // Without lowers at all (a bottom layer) the same layers apply.
        let bottom = dir.path().join(format!("{name}-bottom"));
        std::fs::create_dir(&bottom).unwrap();
        let res = apply(&layer[..], &bottom, &overlay());
        assert_eq!(res.is_ok(), name != "target", "{name}: {res:?}");
    }
}
