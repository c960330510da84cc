//! The runtime socket's Diff service over gRPC: every layer of the hostile corpus
//! (`archive/tests/hostile`) fails with InvalidArgument through Diff.Apply on overlay and
//! native snapshots and leaves a sentinel beside the daemon's root untouched; a real layer
//! applied and then regenerated with Diff.Diff gives the same tree.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::layers::*;
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

/// The directory of committed overlay snapshot `name`: what a View of it mounts on top.
async fn layer_dir(rt: &Rt, name: &str) -> std::path::PathBuf {
    static VIEWS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = VIEWS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let key = format!("view-{n}-{name}");
    let msg = strata_proxy::api::snapshots::ViewSnapshotRequest {
        snapshotter: "strata-overlay".into(),
        key: key.clone(),
        parent: name.into(),
        labels: HashMap::new(),
    };
    let m = rt
        .snapshots()
        .view(rt.req(msg, Some("l")))
        .await
        .unwrap()
        .into_inner()
        .mounts;
    top_layer(&m)
}

async fn stat(rt: &Rt, lease: Option<&str>, key: &str) -> Result<String, tonic::Status> {
    let msg = strata_proxy::api::snapshots::StatSnapshotRequest {
        snapshotter: "strata-overlay".into(),
        key: key.into(),
    };
    let info = rt.snapshots().stat(rt.req(msg, lease)).await?.into_inner();
    Ok(info.info.unwrap().parent)
}

/// Puts the image of `layers` into `rt`'s namespace under lease `l`: its blobs, config and
/// manifest, and the image record; returns the layers' digests, diff IDs and chain IDs.
async fn put_image(rt: &Rt, layers: &[Vec<u8>]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let mut blobs = Vec::new();
    let mut diffs = Vec::new();
    let mut chains: Vec<String> = Vec::new();
    for data in layers {
        blobs.push(rt.put(Some("l"), data, &[]).await);
        let mut tar = Vec::new();
        if data.starts_with(&[0x1f, 0x8b]) {
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[..]), &mut tar)
                .unwrap();
        } else {
            tar = data.clone();
        }
        let diff = digest_of(&tar);
        chains.push(strata_runtime::chain_id(
            chains.last().map_or("", |s| s.as_str()),
            &diff,
        ));
        diffs.push(diff);
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diffs},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let config_digest = rt.put(Some("l"), &config, &[]).await;
    let media = |d: &[u8]| {
        if d.starts_with(&[0x1f, 0x8b]) {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        }
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": layers.iter().zip(&blobs).map(|(d, b)| serde_json::json!({
            "mediaType": media(d), "digest": b, "size": d.len()})).collect::<Vec<_>>(),
    });
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let md = rt.put(Some("l"), &manifest, &[]).await;
    rt.create_image("test.local/four:1", &md, manifest.len() as i64)
        .await;
    (blobs, diffs, chains)
}

/// What containerd 1.6's client unpack does for one layer: Prepare, Diff.Apply, Commit.
async fn apply_layer(rt: &Rt, blob: &str, size: usize, parent: &str, chain: &str) {
    let key = format!("extract-test {chain}");
    rt.prepare(Some("l"), "strata-overlay", &key, parent).await;
    let req = ApplyRequest {
        diff: Some(desc(blob, size)),
        mounts: mounts(rt, "strata-overlay", &key).await,
        payloads: HashMap::new(),
    };
    DiffClient::new(rt.ch.clone())
        .apply(rt.req(req, Some("l")))
        .await
        .unwrap();
    rt.commit(Some("l"), "strata-overlay", chain, &key).await;
}

/// containerd 1.6's client unpack onto strata-overlay: layers start staging as their blobs are
/// written; the unpack's first Stat (under its lease) makes every layer it can at once; each
/// layer's tree is the one the client's own Prepare + Apply + Commit gives (checked against a
/// namespace unpacked that way, entry by entry), the blobs get their `containerd.io/uncompressed`
/// label, a layer that needs the ones below it is left to the client, and no staging directory
/// is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_unpack_on_overlay_gets_its_layers_applied_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let layers = four_layers();
    let (a, b) = (
        Rt::new(p.runtime_channel().await, "parallel"),
        Rt::new(p.runtime_channel().await, "serial"),
    );
    for rt in [&a, &b] {
        rt.create_lease("l").await;
    }
    let image = put_image(&a, &layers).await;
    // Layers start staging as their blobs are written (nothing unpacks them yet).
    let scratch = dir.path().join("root/tmp/staging");
    wait_for(
        || !scratch_dirs(&scratch, "prestage-").is_empty(),
        "an early staging",
    )
    .await;
    assert_eq!(put_image(&b, &layers).await, image);
    let (blobs, diffs, chains) = image;

    // Without the unpack's lease a Stat makes nothing.
    let e = stat(&a, None, &chains[0]).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    // The unpack's first Stat: layers 1-3 are made, the 4th is left to the client.
    assert_eq!(stat(&a, Some("l"), &chains[0]).await.unwrap(), "");
    for i in 1..3 {
        assert_eq!(
            stat(&a, Some("l"), &chains[i]).await.unwrap(),
            chains[i - 1]
        );
    }
    let e = stat(&a, Some("l"), &chains[3]).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    apply_layer(&a, &blobs[3], layers[3].len(), &chains[2], &chains[3]).await;
    for (i, blob) in blobs.iter().enumerate() {
        let msg = strata_proxy::api::content::InfoRequest {
            digest: blob.clone(),
        };
        let info = a.content().info(a.req(msg, None)).await.unwrap();
        let labels = info.into_inner().info.unwrap().labels;
        // The test's own Apply of the 4th layer sets none (containerd's client would).
        let want = (i < 3).then_some(&diffs[i]);
        assert_eq!(labels.get("containerd.io/uncompressed"), want, "layer {i}");
    }

    // The same image unpacked one layer after another, as the client would.
    for i in 0..4 {
        let parent = if i == 0 { "" } else { chains[i - 1].as_str() };
        apply_layer(&b, &blobs[i], layers[i].len(), parent, &chains[i]).await;
    }
    for (i, chain) in chains.iter().enumerate() {
        let (pa, pb) = (layer_dir(&a, chain).await, layer_dir(&b, chain).await);
        let (mut ea, mut eb) = (entries_of(&pa), entries_of(&pb));
        if i == 3 {
            // The parent directories the 4th layer's tar does not carry are made at unpack
            // time, which differs between the two namespaces.
            (ea, eb) = (without_dir_mtimes(ea), without_dir_mtimes(eb));
        }
        assert_eq!(ea, eb, "layer {chain}");
    }
    let top = entries_of(&layer_dir(&a, &chains[1]).await);
    assert!(
        top[0].starts_with(" mode=40750"),
        "the root entry's mode: {top:?}"
    );
    assert!(
        top.iter()
            .any(|e| e.starts_with("usr/lib mode=40700") && e.contains("trusted.overlay.opaque")),
        "{top:?}"
    );
    // Every staging directory was taken or removed.
    wait_for(
        || scratch_dirs(&scratch, "").is_empty(),
        "no staging directory left",
    )
    .await;
    for rt in [&a, &b] {
        rt.delete_lease("l", true).await.unwrap();
        assert!(rt.snapshots_of("strata-overlay").await.is_empty());
    }
}

/// A client unpack onto another backend than strata-overlay stops the layers staged early and
/// removes them at once: they used to run to the end, taking the cores and the disk from that
/// unpack, and wait 120 s for an overlay unpack that never came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_unpack_on_native_stops_the_early_stagings() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let rt = Rt::new(p.runtime_channel().await, "native");
    rt.create_lease("l").await;
    let (_, _, chains) = put_image(&rt, &four_layers()).await;
    let scratch = dir.path().join("root/tmp/staging");
    wait_for(
        || !scratch_dirs(&scratch, "prestage-").is_empty(),
        "an early staging",
    )
    .await;
    let msg = strata_proxy::api::snapshots::StatSnapshotRequest {
        snapshotter: "strata-native".into(),
        key: chains[0].clone(),
    };
    let e = rt
        .snapshots()
        .stat(rt.req(msg, Some("l")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound, "{e:?}");
    wait_for(
        || scratch_dirs(&scratch, "").is_empty(),
        "the early stagings removed",
    )
    .await;
    rt.delete_lease("l", true).await.unwrap();
}

/// The entries of the daemon's scratch directory whose names start with `prefix` and are
/// staging directories (`prestage-*`, `unpack-*`).
fn scratch_dirs(scratch: &Path, prefix: &str) -> Vec<String> {
    std::fs::read_dir(scratch)
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("prestage-") || n.starts_with("unpack-"))
                .filter(|n| n.starts_with(prefix))
                .collect()
        })
        .unwrap_or_default()
}
