//! The unpack offload on the proxy socket, as containerd 2.x's Transfer service drives it for
//! `ctr images import`: each layer's Prepare carries `containerd.io/snapshot.ref = <chain ID>`
//! and nothing else, after containerd wrote the image's blobs through the proxy's Content
//! service. Strata finds the layer through the manifest and config it holds, answers
//! AlreadyExists with the layer committed under the chain ID, stages the layers above at once
//! (strata-overlay), and stages the next import's layers while their blobs are written.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::layers::*;
use common::*;
use strata_proxy::api::content::content_client::ContentClient;
use strata_proxy::api::snapshots::snapshots_client::SnapshotsClient;
use strata_proxy::api::snapshots::{
    PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest, ViewSnapshotRequest,
};
use tonic::transport::Channel;

const SN: &str = "strata-overlay";
const REF: &str = "containerd.io/snapshot.ref";

/// Writes `layers`, their config and manifest through the proxy's Content service; returns
/// the chain IDs.
async fn put_image(c: &mut ContentClient<Channel>, layers: &[Vec<u8>]) -> Vec<String> {
    let mut blobs = Vec::new();
    let mut chains: Vec<String> = Vec::new();
    let mut diffs = Vec::new();
    for data in layers {
        let d = digest_of(data);
        blobs.push(put(c, &format!("layer-{d}"), data).await);
        let mut tar = Vec::new();
        match data.starts_with(&[0x1f, 0x8b]) {
            true => {
                std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&data[..]), &mut tar)
                    .unwrap();
            }
            false => tar = data.clone(),
        }
        let diff = digest_of(&tar);
        let parent = chains.last().map_or("", |s| s.as_str());
        chains.push(strata_runtime::chain_id(parent, &diff));
        diffs.push(diff);
    }
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diffs},
    });
    let config = serde_json::to_vec(&config).unwrap();
    let cd = put(c, "config", &config).await;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": cd, "size": config.len()},
        "layers": layers.iter().zip(&blobs).map(|(d, b)| serde_json::json!({
            "mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": b,
            "size": d.len()})).collect::<Vec<_>>(),
    });
    put(c, "manifest", &serde_json::to_vec(&manifest).unwrap()).await;
    chains
}

/// What containerd's unpacker sends for layer `chain`: a Prepare labelled with the chain ID.
async fn prepare_ref(
    s: &mut SnapshotsClient<Channel>,
    chain: &str,
    parent: &str,
) -> Result<(), tonic::Status> {
    let key = format!("default/{}/extract-{} {chain}", rand_u32(), rand_u32());
    let labels = HashMap::from([(REF.to_string(), chain.to_string())]);
    s.prepare(PrepareSnapshotRequest {
        snapshotter: SN.into(),
        key,
        parent: parent.into(),
        labels,
    })
    .await
    .map(|_| ())
}

fn rand_u32() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(1);
    N.fetch_add(1, Ordering::Relaxed)
}

/// Unpacks `chains` as containerd's unpacker would; each must be answered AlreadyExists and
/// then be committed under the chain ID with that parent and label.
async fn unpack(s: &mut SnapshotsClient<Channel>, chains: &[String]) {
    for (i, chain) in chains.iter().enumerate() {
        let parent = if i == 0 { "" } else { chains[i - 1].as_str() };
        let e = prepare_ref(s, chain, parent).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::AlreadyExists, "layer {i}: {e:?}");
        let info = s
            .stat(StatSnapshotRequest {
                snapshotter: SN.into(),
                key: chain.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .info
            .unwrap();
        assert_eq!(info.parent, parent, "layer {i}");
        assert_eq!(info.labels.get(REF), Some(chain), "layer {i}");
    }
}

/// The directory of committed snapshot `name` (what a View of it mounts on top).
async fn layer_dir(s: &mut SnapshotsClient<Channel>, name: &str) -> PathBuf {
    let key = format!("view-{}", rand_u32());
    let m = s
        .view(ViewSnapshotRequest {
            snapshotter: SN.into(),
            key: key.clone(),
            parent: name.into(),
            labels: HashMap::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .mounts;
    let dir = top_layer(&m);
    s.remove(RemoveSnapshotRequest {
        snapshotter: SN.into(),
        key,
    })
    .await
    .unwrap();
    dir
}

/// The offload's staging directories under the daemon's root.
fn staging(root: &Path) -> Vec<String> {
    std::fs::read_dir(root.join("tmp/staging"))
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with("offload-"))
                .collect()
        })
        .unwrap_or_default()
}

/// Layers with the four test layers' shapes but other bytes (a second image).
fn other_layers() -> Vec<Vec<u8>> {
    use tar::EntryType::{Directory as D, Regular as F};
    vec![
        gzip(&tar_of(&[
            ("etc/", D, 0o755, b""),
            ("etc/motd", F, 0o644, b"other"),
        ])),
        tar_of(&[("etc/", D, 0o755, b""), ("etc/.wh.motd", F, 0o644, b"")]),
    ]
}

/// The Transfer-service import: every layer found by its chain ID alone, applied by Strata (the
/// layers above the first staged at once, the one that needs the layers below it applied the
/// usual way), each layer's tree identical to a daemon's with the parallel stages off; then the
/// next image's layers are staged while their blobs are written and taken by its Prepares;
/// a client unpack (containerd applying a layer itself) drops what was staged early, and
/// nothing is staged early after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prepare_labelled_with_the_chain_id_alone_is_served_from_the_manifest_strata_holds() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("serial.toml");
    std::fs::write(&conf, "[unpack]\nparallel = false\n").unwrap();
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    let a = Proxy::start(&dir.path().join("a"));
    let b = Proxy::start_with(&dir.path().join("b"), &["--config", conf.to_str().unwrap()]);
    let layers = four_layers();
    let (mut ca, mut sa) = (a.content().await, a.snapshots().await);
    let (mut cb, mut sb) = (b.content().await, b.snapshots().await);
    let chains = put_image(&mut ca, &layers).await;
    assert_eq!(put_image(&mut cb, &layers).await, chains);
    // No offload Prepare on strata-overlay has come yet: nothing is staged early.
    assert!(staging(&a.root).is_empty());

    // A chain ID no manifest names goes containerd's way.
    let stray = strata_runtime::chain_id("", &digest_of(b"not a layer"));
    prepare_ref(&mut sa, &stray, "").await.unwrap();

    unpack(&mut sa, &chains).await;
    unpack(&mut sb, &chains).await;
    for (i, chain) in chains.iter().enumerate() {
        let (da, db) = (
            layer_dir(&mut sa, chain).await,
            layer_dir(&mut sb, chain).await,
        );
        let (mut ea, mut eb) = (entries_of(&da), entries_of(&db));
        if i == 3 {
            // The parent directories the 4th layer's tar does not carry are made at unpack
            // time, which differs between the two daemons.
            (ea, eb) = (without_dir_mtimes(ea), without_dir_mtimes(eb));
        }
        assert_eq!(ea, eb, "layer {i}");
    }
    wait_for(|| staging(&a.root).is_empty(), "the staged layers taken").await;

    // The offload served strata-overlay: the next image's layers stage as they are written.
    let other = other_layers();
    let chains2 = put_image(&mut ca, &other).await;
    wait_for(|| staging(&a.root).len() == 2, "two early stagings").await;
    unpack(&mut sa, &chains2).await;
    wait_for(|| staging(&a.root).is_empty(), "the early stagings taken").await;
    let top = entries_of(&layer_dir(&mut sa, &chains2[1]).await);
    assert!(
        top.iter()
            .any(|e| e.starts_with("etc/motd mode=20") && e.contains("rdev=0")),
        "the whiteout: {top:?}"
    );

    // The next image's layer stages early; then containerd applies a layer itself (1.6's
    // `ctr images import`): that staging is dropped at once (it used to wait 120 s), and
    // early staging stops.
    let one_file = |name: &str| {
        let file = (name, tar::EntryType::Regular, 0o644, name.as_bytes());
        vec![gzip(&tar_of(&[file]))]
    };
    put_image(&mut ca, &one_file("y")).await;
    wait_for(|| staging(&a.root).len() == 1, "an early staging").await;
    let key = format!("default/{}/extract-1 {stray}", rand_u32());
    sa.prepare(PrepareSnapshotRequest {
        snapshotter: SN.into(),
        key,
        parent: String::new(),
        labels: HashMap::new(),
    })
    .await
    .unwrap();
    wait_for(|| staging(&a.root).is_empty(), "the early staging dropped").await;
    put_image(&mut ca, &one_file("x")).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(staging(&a.root).is_empty(), "{:?}", staging(&a.root));
}
