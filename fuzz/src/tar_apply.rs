//! Layer application: arbitrary bytes applied as a layer into a fresh tree must fail or succeed
//! without panicking and without touching anything outside the tree — a sentinel folder beside
//! it keeps its one file, nothing else appears beside it, and no `/escaped` or `/tmp/escaped`
//! exists afterwards.
//!
//! The first input byte chooses how the rest is fed: bits 0-1 wrap it (0 and 3 as is, so a
//! stream that is already gzip or zstd is detected as such; 1 gzip; 2 zstd), bit 2 selects
//! overlay whiteouts instead of deleting ones, bit 3 forbids devices.

use std::io::Write;
use std::path::Path;

use strata_archive::{Compression, Encoder, Options, Whiteouts, apply};

/// A decompression bomb stops here (a few milliseconds of inflating), not at the daemon's limit.
const MAX_BYTES: u64 = 16 << 20;
const MAX_ENTRIES: u64 = 10_000;
const SENTINEL_FILE: &[u8] = b"untouched";

pub fn check(data: &[u8]) {
    let Some((&flags, layer)) = data.split_first() else {
        return;
    };
    let stream = wrap(flags & 3, layer);
    let opts = Options {
        whiteouts: if flags & 4 != 0 {
            Whiteouts::Overlay {
                opaque_xattr: "trusted.overlay.opaque".into(),
            }
        } else {
            Whiteouts::Delete
        },
        allow_devices: flags & 8 == 0,
        max_bytes: MAX_BYTES,
        max_entries: MAX_ENTRIES,
        ..Options::default()
    };
    let tmp = tempfile::tempdir().expect("a temporary folder");
    let (root, sentinel) = (tmp.path().join("root"), tmp.path().join("sentinel"));
    std::fs::create_dir(&root).unwrap();
    std::fs::create_dir(&sentinel).unwrap();
    std::fs::write(sentinel.join("file"), SENTINEL_FILE).unwrap();
    let _ = apply(stream.as_slice(), &root, &opts);
    assert_contained(tmp.path(), &root, &sentinel);
}

/// The layer bytes as the stream to apply: as given, or compressed with gzip or zstd.
fn wrap(how: u8, layer: &[u8]) -> Vec<u8> {
    let compression = match how {
        1 => Compression::Gzip,
        2 => Compression::Zstd,
        _ => return layer.to_vec(),
    };
    let mut enc = Encoder::new(compression, Vec::new()).expect("an encoder");
    enc.write_all(layer).expect("compressing to memory");
    enc.finish().expect("finishing the stream")
}

/// Panics when anything outside `root` changed.
fn assert_contained(tmp: &Path, root: &Path, sentinel: &Path) {
    let mut beside: Vec<_> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    beside.sort();
    assert_eq!(
        beside,
        ["root", "sentinel"],
        "something appeared beside the tree"
    );
    let meta = std::fs::symlink_metadata(root).unwrap();
    assert!(meta.is_dir(), "the tree's root is no longer a folder");
    let inside: Vec<_> = std::fs::read_dir(sentinel)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(inside, ["file"], "the sentinel folder changed");
    let meta = std::fs::symlink_metadata(sentinel.join("file")).unwrap();
    assert!(meta.is_file(), "the sentinel file was replaced");
    assert_eq!(std::fs::read(sentinel.join("file")).unwrap(), SENTINEL_FILE);
    for p in ["/escaped", "/tmp/escaped"] {
        assert!(
            std::fs::symlink_metadata(p).is_err(),
            "{p} exists: the layer escaped"
        );
    }
}
