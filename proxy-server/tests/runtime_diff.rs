//! The runtime socket's Diff service over gRPC: every layer of the hostile corpus
//! (`archive/tests/hostile`) fails with InvalidArgument through Diff.Apply on overlay and
//! native snapshots and leaves a sentinel beside the daemon's root untouched; a real layer
//! applied and then regenerated with Diff.Diff gives the same tree.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::rt::Rt;
use common::*;
use strata_proxy::api::diff::diff_client::DiffClient;
use strata_proxy::api::diff::{ApplyRequest, DiffRequest};
use strata_proxy::api::snapshots::MountsRequest;
use strata_proxy::api::types::{Descriptor, Mount};

/// The package's folder as `cargo test` gives it when the test runs. `env!("CARGO_MANIFEST_DIR")`
/// is fixed at build time, and cargo does not rebuild when the same sources are checked out at
/// another path with the same target folder (CI's clean clone), so it can name a folder that is
/// gone; it is only the fallback for a test binary started by hand.
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn corpus() -> Vec<(String, String, String)> {
    let dir = manifest_dir().join("../archive/tests/hostile");
    std::fs::read_to_string(dir.join("cases.tsv"))
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0].to_string(), f[1].to_string(), f[2].to_string())
        })
        .collect()
}

fn layer(name: &str) -> Vec<u8> {
    let dir = manifest_dir().join("../archive/tests/hostile");
    std::fs::read(dir.join(format!("{name}.layer"))).unwrap()
}

fn desc(digest: &str, size: usize) -> Descriptor {
    Descriptor {
        media_type: "application/vnd.oci.image.layer.v1.tar".into(),
        digest: digest.into(),
        size: size as i64,
        annotations: HashMap::new(),
    }
}

async fn mounts(rt: &Rt, sn: &str, key: &str) -> Vec<Mount> {
    let req = rt.req(
        MountsRequest {
            snapshotter: sn.into(),
            key: key.into(),
        },
        None,
    );
    rt.snapshots()
        .mounts(req)
        .await
        .unwrap()
        .into_inner()
        .mounts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_layers_fail_through_diff_apply_and_touch_nothing_outside() {
    let dir = tempfile::tempdir().unwrap();
    let sentinel = dir.path().join("sentinel");
    std::fs::create_dir_all(&sentinel).unwrap();
    std::fs::write(sentinel.join("file"), b"untouched").unwrap();
    let config = dir.path().join("strata.toml");
    std::fs::write(
        &config,
        "[unpack]\nallow_devices = false\nmax_layer_bytes = 67108864\n",
    )
    .unwrap();
    let p = Proxy::start_with(dir.path(), &["--config", config.to_str().unwrap()]);
    let rt = Rt::new(p.runtime_channel().await, "hostile");
    let cases = corpus();
    assert!(cases.len() >= 20);
    let mut diff = DiffClient::new(rt.ch.clone());
    for sn in ["strata-overlay", "strata-native"] {
        rt.create_lease("l").await;
        rt.prepare(Some("l"), sn, "base-a", "").await;
        rt.commit(Some("l"), sn, "base", "base-a").await;
        for (name, _, _) in &cases {
            let data = layer(name);
            let d = rt.put(Some("l"), &data, &[]).await;
            let key = format!("{sn}-{name}");
            rt.prepare(Some("l"), sn, &key, "base").await;
            let req = ApplyRequest {
                diff: Some(desc(&d, data.len())),
                mounts: mounts(&rt, sn, &key).await,
                payloads: HashMap::new(),
            };
            let err = diff.apply(rt.req(req, None)).await.expect_err(name);
            assert_eq!(
                err.code(),
                tonic::Code::InvalidArgument,
                "{sn} {name}: {err:?}"
            );
            let entries: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert!(
                !entries.iter().any(|e| e == "escaped"),
                "{sn} {name}: wrote beside the root"
            );
            assert!(
                !Path::new("/escaped").exists() && !Path::new("/tmp/escaped").exists(),
                "{sn} {name}"
            );
            assert_eq!(std::fs::read(sentinel.join("file")).unwrap(), b"untouched");
            assert_eq!(
                std::fs::read_dir(&sentinel).unwrap().count(),
                1,
                "{sn} {name}: sentinel"
            );
        }
        rt.delete_lease("l", true).await.unwrap();
    }
    assert!(rt.snapshots_of("strata-overlay").await.is_empty());
}

/// A tar with a file, a directory, a symlink and a hard link.
fn good_layer() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_mtime(1_650_000_000);
        h.set_size(data.len() as u64);
        match link {
            Some(l) => b.append_link(&mut h, name, l).unwrap(),
            None => b.append_data(&mut h, name, data).unwrap(),
        }
    };
    add("etc/", tar::EntryType::Directory, b"", None);
    add("etc/motd", tar::EntryType::Regular, b"hello", None);
    add("etc/link", tar::EntryType::Symlink, b"", Some("motd"));
    add("etc/motd2", tar::EntryType::Link, b"", Some("etc/motd"));
    b.into_inner().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_then_diff_round_trips_a_layer() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let rt = Rt::new(p.runtime_channel().await, "rt");
    let mut diff = DiffClient::new(rt.ch.clone());
    let data = good_layer();
    rt.create_lease("l").await;
    let d = rt.put(Some("l"), &data, &[]).await;
    for sn in ["strata-overlay", "strata-native"] {
        rt.prepare(Some("l"), sn, &format!("{sn}-empty-a"), "")
            .await;
        rt.commit(
            Some("l"),
            sn,
            &format!("{sn}-empty"),
            &format!("{sn}-empty-a"),
        )
        .await;
        let key = format!("{sn}-layer");
        rt.prepare(Some("l"), sn, &key, &format!("{sn}-empty"))
            .await;
        let m = mounts(&rt, sn, &key).await;
        let req = ApplyRequest {
            diff: Some(desc(&d, data.len())),
            mounts: m.clone(),
            payloads: HashMap::new(),
        };
        let applied = diff
            .apply(rt.req(req, None))
            .await
            .unwrap()
            .into_inner()
            .applied
            .unwrap();
        assert_eq!(
            applied.digest, d,
            "an uncompressed layer's diff ID is its digest"
        );
        assert_eq!(applied.media_type, "application/vnd.oci.image.layer.v1.tar");
        let view = format!("{sn}-empty-view");
        let msg = strata_proxy::api::snapshots::ViewSnapshotRequest {
            snapshotter: sn.into(),
            key: view.clone(),
            parent: format!("{sn}-empty"),
            labels: HashMap::new(),
        };
        let left = rt
            .snapshots()
            .view(rt.req(msg, Some("l")))
            .await
            .unwrap()
            .into_inner()
            .mounts;
        let req = DiffRequest {
            left,
            right: m,
            media_type: String::new(),
            r#ref: String::new(),
            labels: HashMap::new(),
        };
        let out = diff
            .diff(rt.req(req, Some("l")))
            .await
            .unwrap()
            .into_inner()
            .diff
            .unwrap();
        assert_eq!(
            out.media_type,
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let blob = rt.read(&out.digest).await.unwrap();
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar).unwrap();
        let names: Vec<String> = tar::Archive::new(&tar[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["etc/", "etc/link", "etc/motd", "etc/motd2"], "{sn}");
    }
    rt.delete_lease("l", true).await.unwrap();
}
