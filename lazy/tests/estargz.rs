//! The eStargz reader against a layer stargz-snapshotter's converter made (tests/fixtures),
//! and against damaged and hostile variants of it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;

use strata_lazy::Error;
use strata_lazy::estargz::{Kind, Layer, Toc};

const TOC_DIGEST: &str = "sha256:d09cfbd18261a12a3f4502ae3bc68e3450bf6f55bb07e326da1ecf477e78db18";

const ZSTD_TOC_DIGEST: &str =
    "sha256:1e0b9fd0ba5b338e5c293080ce5f431e7e936e058d7a52264e31f327cbf17521";

fn read_fixture(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test"));
    std::fs::read(dir.join("tests/fixtures").join(name)).unwrap()
}

fn fixture() -> Vec<u8> {
    read_fixture("estargz-chunked.gz")
}

/// Every regular file's bytes, read the plain way: the layer as an ordinary tar.gz.
fn plain_files(blob: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let gz = flate2::read::MultiGzDecoder::new(blob);
    let mut out = BTreeMap::new();
    for e in tar::Archive::new(gz).entries().unwrap() {
        let mut e = e.unwrap();
        if e.header().entry_type().is_file() {
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            out.insert(name, data);
        }
    }
    out
}

#[test]
fn the_converters_layer_reads_back_as_its_tar_says() {
    let blob = fixture();
    let layer = Layer::open(blob.clone(), TOC_DIGEST).unwrap();
    let toc = layer.toc();
    let big = toc.get("etc/big.bin").unwrap();
    assert_eq!(
        (big.kind, big.size, big.mode, big.uid, big.gid),
        (Kind::Reg, 50_000, 0o600, 1000, 1000)
    );
    assert_eq!(big.chunks.len(), 7, "8 KiB chunks");
    assert_eq!(toc.get("empty").unwrap().mode, 0o4755);
    assert_eq!(toc.get("etc/link").unwrap().link, "hello.txt");
    let hard = toc.get("etc/hard").unwrap();
    assert_eq!(
        (hard.kind, hard.link.as_str()),
        (Kind::Hardlink, "etc/hello.txt")
    );
    assert_eq!(toc.get("etc/").unwrap().kind, Kind::Dir);
    assert!(
        toc.get("etc/.wh.gone").is_some(),
        "whiteouts are entries like any other"
    );

    let files = plain_files(&blob);
    assert!(files.contains_key("etc/big.bin") && files.contains_key("etc/hello.txt"));
    for (name, want) in &files {
        if name == "stargz.index.json" {
            continue;
        }
        let mut got = vec![0u8; want.len() + 10];
        let n = layer.read(name, 0, &mut got).unwrap();
        assert_eq!(&got[..n], &want[..], "{name}");
    }
    // Through the hard link, and ranges across chunk boundaries.
    let mut buf = [0u8; 13];
    assert_eq!(layer.read("etc/hard", 0, &mut buf).unwrap(), 13);
    assert_eq!(&buf, b"hello strata\n");
    let big = &files["etc/big.bin"];
    for (off, len) in [
        (8000, 500),
        (8192, 8192),
        (49_990, 100),
        (0, 50_000),
        (50_000, 5),
    ] {
        let mut got = vec![0u8; len];
        let n = layer.read("etc/big.bin", off as u64, &mut got).unwrap();
        let want = &big[off.min(big.len())..(off + len).min(big.len())];
        assert_eq!(&got[..n], want, "range {off}+{len}");
    }
    assert!(matches!(
        layer.read("etc", 0, &mut buf),
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        layer.read("nope", 0, &mut buf),
        Err(Error::NotFound(_))
    ));
}

/// The zstd:chunked twin made from the same layer reads back the same files.
#[test]
fn the_zstd_chunked_twin_reads_back_the_same_files() {
    let files = plain_files(&fixture());
    let zstd = Layer::open(read_fixture("zstdchunked.zst"), ZSTD_TOC_DIGEST).unwrap();
    assert_eq!(zstd.toc().get("etc/big.bin").unwrap().chunks.len(), 7);
    let mut checked = 0;
    for (name, want) in files.iter().filter(|(n, _)| *n != "stargz.index.json") {
        let mut got = vec![0u8; want.len() + 10];
        let n = zstd.read(name, 0, &mut got).unwrap();
        assert_eq!(&got[..n], &want[..], "{name}");
        checked += 1;
    }
    assert!(checked >= 4, "{checked} files");
    let err = Layer::open(read_fixture("zstdchunked.zst"), TOC_DIGEST).unwrap_err();
    assert!(matches!(err, Error::Digest(_)), "{err}");
    let mut blob = read_fixture("zstdchunked.zst");
    let c = zstd.toc().get("etc/big.bin").unwrap().chunks[0].clone();
    blob[(c.blob_offset + 20) as usize] ^= 0x10;
    let damaged = Layer::open(blob, ZSTD_TOC_DIGEST).unwrap();
    let mut buf = [0u8; 10];
    assert!(
        damaged.read("etc/big.bin", 0, &mut buf).is_err(),
        "a damaged frame is never served"
    );
}

#[test]
fn a_toc_that_is_not_the_annotated_one_is_refused() {
    let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let err = Layer::open(fixture(), other).unwrap_err();
    assert!(matches!(err, Error::Digest(_)), "{err}");
}

#[test]
fn a_damaged_chunk_is_never_served_and_spoils_only_itself() {
    let mut blob = fixture();
    let layer = Layer::open(blob.clone(), TOC_DIGEST).unwrap();
    let second = layer.toc().get("etc/big.bin").unwrap().chunks[1].clone();
    // A byte inside the second chunk's deflate data.
    blob[(second.blob_offset + 40) as usize] ^= 0x55;
    let layer = Layer::open(blob, TOC_DIGEST).unwrap();
    let mut buf = vec![0u8; 100];
    let err = layer.read("etc/big.bin", 8192 + 10, &mut buf).unwrap_err();
    assert!(
        matches!(err, Error::Digest(_) | Error::Malformed(_)),
        "{err}"
    );
    assert_eq!(
        layer.read("etc/big.bin", 0, &mut buf).unwrap(),
        100,
        "chunk 0 is fine"
    );
    assert_eq!(layer.read("etc/hello.txt", 0, &mut buf).unwrap(), 13);
}

#[test]
fn damaged_or_truncated_layers_do_not_open() {
    let blob = fixture();
    let toc_at = {
        let layer = Layer::open(blob.clone(), TOC_DIGEST).unwrap();
        layer
            .toc()
            .entries
            .iter()
            .flat_map(|e| &e.chunks)
            .map(|c| c.blob_end)
            .max()
            .unwrap()
    };
    let mut toc_flip = blob.clone();
    toc_flip[toc_at as usize + 30] ^= 1;
    assert!(
        Layer::open(toc_flip, TOC_DIGEST).is_err(),
        "a flipped toc byte"
    );
    for cut in [1, 20, 51, blob.len() / 2, blob.len()] {
        let short = blob[..blob.len() - cut].to_vec();
        assert!(Layer::open(short, TOC_DIGEST).is_err(), "cut {cut}");
    }
}

/// A TOC with one regular file `f` of `size` bytes at blob offset 100, then `extra` entries.
fn toc_json(size: i64, extra: &str) -> String {
    let d = format!("sha256:{}", "ab".repeat(32));
    format!(
        r#"{{"version":1,"entries":[{{"name":"f","type":"reg","size":{size},"offset":100,"chunkSize":10,"chunkDigest":"{d}"}}{extra}]}}"#
    )
}

#[test]
fn hostile_tocs_are_refused_with_the_entry_named() {
    let d = format!("sha256:{}", "ab".repeat(32));
    let cases = [
        (
            toc_json(5, r#",{"name":"../etc/passwd","type":"reg"}"#),
            "../etc/passwd",
        ),
        (toc_json(5, r#",{"name":"a/./b","type":"dir"}"#), "a/./b"),
        (toc_json(5, r#",{"name":"a//b","type":"dir"}"#), "a//b"),
        (
            toc_json(5, r#",{"name":"h","type":"hardlink","linkName":"../../x"}"#),
            "h",
        ),
        (
            toc_json(5, r#",{"name":"h","type":"hardlink","linkName":"missing"}"#),
            "h",
        ),
        (toc_json(5, r#",{"name":"s","type":"symlink"}"#), "s"),
        (toc_json(5, r#",{"name":"x","type":"socket"}"#), "x"),
        (toc_json(-1, ""), "f"),
        // A file whose chunks stop short, or a chunk that skips or overlaps.
        (toc_json(25, ""), "f"),
        (
            toc_json(
                25,
                &format!(
                    r#",{{"name":"f","type":"chunk","offset":200,"chunkOffset":12,"chunkDigest":"{d}"}}"#
                ),
            ),
            "f",
        ),
        (
            toc_json(
                25,
                &format!(
                    r#",{{"name":"g","type":"chunk","offset":200,"chunkOffset":10,"chunkDigest":"{d}"}}"#
                ),
            ),
            "g",
        ),
        // Data offsets that go backwards, or past the toc.
        (
            toc_json(
                25,
                &format!(
                    r#",{{"name":"f","type":"chunk","offset":50,"chunkOffset":10,"chunkDigest":"{d}"}}"#
                ),
            ),
            "f",
        ),
        (
            toc_json(
                25,
                &format!(
                    r#",{{"name":"f","type":"chunk","offset":5000,"chunkOffset":10,"chunkDigest":"{d}"}}"#
                ),
            ),
            "f",
        ),
        (
            toc_json(
                5,
                r#",{"name":"g","type":"reg","size":3,"offset":200,"digest":"md5:00"}"#,
            ),
            "g",
        ),
        (toc_json(5, r#",{"name":"g","type":"reg","size":3}"#), "g"),
        (toc_json(5, r#",{"name":"x","type":"dir","uid":-1}"#), "x"),
    ];
    for (json, name) in cases {
        match Toc::from_json(json.as_bytes(), 1000) {
            Err(Error::Entry { name: got, .. }) => assert_eq!(got, name, "{json}"),
            other => panic!("{json}: expected an entry error, got {other:?}"),
        }
    }
    for bad in ["", "{", "[]", r#"{"entries":[{"name":"a"}]}"#] {
        assert!(
            matches!(
                Toc::from_json(bad.as_bytes(), 1000),
                Err(Error::Malformed(_))
            ),
            "{bad}"
        );
    }
    let ok = toc_json(
        25,
        &format!(
            r#",{{"name":"f","type":"chunk","offset":200,"chunkOffset":10,"chunkSize":10,"chunkDigest":"{d}"}},{{"name":"f","type":"chunk","offset":300,"chunkOffset":20,"chunkDigest":"{d}"}}"#
        ),
    );
    let toc = Toc::from_json(ok.as_bytes(), 1000).unwrap();
    let sizes: Vec<_> = toc.entries[0]
        .chunks
        .iter()
        .map(|c| (c.offset, c.size, c.blob_end))
        .collect();
    assert_eq!(sizes, [(0, 10, 200), (10, 10, 300), (20, 5, 1000)]);
}
