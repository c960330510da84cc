//! The walking differ: the diff of two trees, applied to a copy of the first, gives the second.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use common::*;
use strata_archive::{Options, apply, write_diff};
use tar::EntryType;

fn copy_tree(from: &Path, to: &Path) {
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn a_diff_applied_to_the_lower_tree_gives_the_upper_tree() {
    let dir = tempfile::tempdir().unwrap();
    let (lower, upper, replay) = (
        dir.path().join("lower"),
        dir.path().join("upper"),
        dir.path().join("replay"),
    );
    std::fs::create_dir(&lower).unwrap();
    let base = Layer::default()
        .dir("etc/", 0o755)
        .file("etc/keep", 0o644, b"same")
        .file("etc/change", 0o644, b"old")
        .file("etc/gone", 0o644, b"bye")
        .dir("var/", 0o755)
        .dir("var/olddir/", 0o755)
        .file("var/olddir/x", 0o644, b"x")
        .symlink("link", "etc/keep")
        .tar();
    apply(&base[..], &lower, &Options::default()).unwrap();
    copy_tree(&lower, &upper);
    let change = Layer::default()
        .with("etc/change", EntryType::Regular, b"new!", |h| {
            h.set_mode(0o600);
            h.set_mtime(1_700_000_000);
        })
        .file(".wh.link", 0o644, b"")
        .file("var/.wh.olddir", 0o644, b"")
        .file("etc/.wh.gone", 0o644, b"")
        .dir("new/", 0o700)
        .file("new/file", 0o640, b"fresh")
        .hardlink("new/again", "new/file")
        .with("new/fifo", EntryType::Fifo, b"", |h| h.set_mode(0o600))
        .tar();
    apply(&change[..], &upper, &Options::default()).unwrap();

    let (diff, stats) = write_diff(&lower, &upper, Vec::new()).unwrap();
    assert_eq!(stats.deleted, 3, "link, var/olddir, etc/gone");
    copy_tree(&lower, &replay);
    apply(&diff[..], &replay, &Options::default()).unwrap();
    assert_eq!(describe(&replay), describe(&upper));
    let ino = |p: &str| std::fs::metadata(replay.join(p)).unwrap().ino();
    assert_eq!(ino("new/file"), ino("new/again"), "hard links survive");
    let listed = tar::Archive::new(&diff[..])
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect::<Vec<_>>();
    assert!(
        !listed.iter().any(|p| p.contains("keep")),
        "unchanged files are not in the diff: {listed:?}"
    );
}

#[test]
fn identical_trees_give_an_empty_diff() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir(&a).unwrap();
    apply(
        &Layer::default()
            .file("f", 0o644, b"x")
            .dir("d/", 0o755)
            .tar()[..],
        &a,
        &Options::default(),
    )
    .unwrap();
    copy_tree(&a, &b);
    let (diff, stats) = write_diff(&a, &b, Vec::new()).unwrap();
    assert_eq!(stats.added_or_changed + stats.deleted, 0);
    assert_eq!(tar::Archive::new(&diff[..]).entries().unwrap().count(), 0);
}
