//! Several proxy sockets on one daemon, each its own view: two containerds sharing one
//! strata-proxy never see, nor collect, each other's content and snapshots, while the bytes of
//! a blob both write are stored once.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use strata_proxy::api::content::Info;
use strata_proxy::api::content::content_client::ContentClient;
use strata_proxy::api::content::*;
use strata_proxy::api::snapshots::snapshots_client::SnapshotsClient;
use strata_proxy::api::snapshots::*;
use tonic::Code;
use tonic::transport::Channel;

const SN: &str = "strata-native";

/// Files under `dir` (recursively); 0 when it does not exist.
fn files_under(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// Entries directly in `dir`; 0 when it does not exist.
fn entries_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

fn blob_path(p: &Proxy, d: &str) -> PathBuf {
    let hex = d.strip_prefix("sha256:").unwrap();
    p.root.join("content/blobs/sha256").join(hex)
}

async fn read_all(c: &mut ContentClient<Channel>, d: &str) -> Result<Vec<u8>, tonic::Status> {
    let mut s = c
        .read(ReadContentRequest {
            digest: d.into(),
            offset: 0,
            size: 0,
        })
        .await?
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await? {
        out.extend(m.data);
    }
    Ok(out)
}

async fn info(c: &mut ContentClient<Channel>, d: &str) -> Result<Info, tonic::Status> {
    let r = c.info(InfoRequest { digest: d.into() }).await?;
    Ok(r.into_inner().info.unwrap())
}

async fn list_content(c: &mut ContentClient<Channel>) -> Vec<String> {
    let mut s = c
        .list(ListContentRequest { filters: vec![] })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        out.extend(m.info.into_iter().map(|i| i.digest));
    }
    out
}

async fn list_snapshots(s: &mut SnapshotsClient<Channel>) -> Vec<String> {
    let mut st = s
        .list(ListSnapshotsRequest {
            snapshotter: SN.into(),
            filters: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = st.message().await.unwrap() {
        out.extend(m.info.into_iter().map(|i| i.name));
    }
    out.sort();
    out
}

/// Prepares `key` on `parent`, writes `file` = `data` into it and commits it as `name`
/// (containerd's unpack of one layer: the same keys in every containerd).
async fn layer(
    s: &mut SnapshotsClient<Channel>,
    key: &str,
    name: &str,
    parent: &str,
    file: &str,
    data: &[u8],
) {
    let mounts = s
        .prepare(PrepareSnapshotRequest {
            snapshotter: SN.into(),
            key: key.into(),
            parent: parent.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mounts;
    std::fs::write(Path::new(&mounts[0].source).join(file), data).unwrap();
    s.commit(CommitSnapshotRequest {
        snapshotter: SN.into(),
        name: name.into(),
        key: key.into(),
        ..Default::default()
    })
    .await
    .unwrap();
}

async fn stat(s: &mut SnapshotsClient<Channel>, key: &str) -> Result<Info2, tonic::Status> {
    let r = s
        .stat(StatSnapshotRequest {
            snapshotter: SN.into(),
            key: key.into(),
        })
        .await?;
    Ok(r.into_inner().info.unwrap())
}

type Info2 = strata_proxy::api::snapshots::Info;

async fn remove(s: &mut SnapshotsClient<Channel>, key: &str) {
    s.remove(RemoveSnapshotRequest {
        snapshotter: SN.into(),
        key: key.into(),
    })
    .await
    .unwrap();
}

/// The bytes of `file` in a read-only view of `parent`.
async fn read_through_view(s: &mut SnapshotsClient<Channel>, parent: &str, file: &str) -> Vec<u8> {
    let key = format!("check {parent}");
    let mounts = s
        .view(ViewSnapshotRequest {
            snapshotter: SN.into(),
            key: key.clone(),
            parent: parent.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .mounts;
    let data = std::fs::read(Path::new(&mounts[0].source).join(file)).unwrap();
    remove(s, &key).await;
    data
}

async fn clients(p: &Proxy, b: &Path) -> [(ContentClient<Channel>, SnapshotsClient<Channel>); 2] {
    let bch = connect(b.to_path_buf()).await;
    [
        (p.content().await, p.snapshots().await),
        (
            ContentClient::new(bch.clone()).max_decoding_message_size(16 << 20),
            SnapshotsClient::new(bch),
        ),
    ]
}

/// Two "containerds" (sockets A, the default, and B) write the same blob and unpack the same
/// layers under the same keys; A deletes everything; B still has all of it; B deletes too and
/// nothing is left on disk.
async fn two_views_share_bytes_but_not_records(p: &Proxy, b_socket: &Path) {
    let [(mut ca, mut sa), (mut cb, mut sb)] = clients(p, b_socket).await;
    let data = pseudo_random(300_000, 7);
    let d = put(&mut ca, "layer-ref", &data).await;
    assert!(info(&mut cb, &d).await.is_err(), "B must not see A's blob");
    assert!(list_content(&mut cb).await.is_empty());
    assert_eq!(put(&mut cb, "layer-ref", &data).await, d);
    assert_eq!(
        files_under(&p.root.join("content/blobs")),
        1,
        "bytes stored once"
    );
    let labels = std::collections::HashMap::from([("b-label".to_string(), "kept".to_string())]);
    cb.update(UpdateRequest {
        info: Some(Info {
            digest: d.clone(),
            labels: labels.clone(),
            ..Default::default()
        }),
        update_mask: None,
    })
    .await
    .unwrap();
    assert!(
        info(&mut ca, &d).await.unwrap().labels.is_empty(),
        "labels are per view"
    );

    // Same keys and names in both views (as two containerds unpacking one image).
    layer(&mut sa, "default/1/extract l1", "l1", "", "f", b"from A").await;
    layer(&mut sb, "default/1/extract l1", "l1", "", "f", b"from B").await;
    layer(&mut sa, "default/2/extract l2", "l2", "l1", "g", b"A2").await;
    layer(&mut sb, "default/2/extract l2", "l2", "l1", "g", b"B2").await;
    layer(&mut sa, "a-only key", "a-only", "", "h", b"A only").await;
    assert_eq!(
        stat(&mut sb, "a-only").await.unwrap_err().code(),
        Code::NotFound
    );
    assert_eq!(list_snapshots(&mut sb).await, ["l1", "l2"]);
    assert_eq!(list_snapshots(&mut sa).await, ["a-only", "l1", "l2"]);

    // A's garbage collection: everything A holds goes.
    ca.delete(DeleteContentRequest { digest: d.clone() })
        .await
        .unwrap();
    for key in ["l2", "l1", "a-only"] {
        remove(&mut sa, key).await;
    }
    assert!(list_content(&mut ca).await.is_empty());
    assert!(list_snapshots(&mut sa).await.is_empty());

    // B is intact: records, labels, bytes, snapshot data.
    let i = info(&mut cb, &d).await.unwrap();
    assert_eq!((i.size, i.labels), (data.len() as i64, labels));
    assert_eq!(read_all(&mut cb, &d).await.unwrap(), data);
    assert_eq!(list_content(&mut cb).await, [d.clone()]);
    let l2 = stat(&mut sb, "l2").await.unwrap();
    assert_eq!(
        (l2.parent.as_str(), l2.kind),
        ("l1", Kind::Committed as i32)
    );
    assert_eq!(read_through_view(&mut sb, "l2", "f").await, b"from B");
    assert_eq!(read_through_view(&mut sb, "l2", "g").await, b"B2");
    assert_eq!(list_snapshots(&mut sb).await, ["l1", "l2"]);

    // B removes too: no bytes, no snapshot left.
    cb.delete(DeleteContentRequest { digest: d.clone() })
        .await
        .unwrap();
    assert!(!blob_path(p, &d).exists(), "blob bytes freed");
    assert_eq!(files_under(&p.root.join("content/blobs")), 0);
    for key in ["l2", "l1"] {
        remove(&mut sb, key).await;
    }
    assert!(list_snapshots(&mut sb).await.is_empty());
    assert_eq!(entries_in(&p.root.join("snapshots/native/snapshots")), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_proxy_table_serves_a_second_view() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b.sock");
    let config = dir.path().join("c.toml");
    let toml = format!(
        "[[proxy]]\naddress = {:?}\nview = \"b\"\n",
        b.to_str().unwrap()
    );
    std::fs::write(&config, toml).unwrap();
    let p = Proxy::start_with(dir.path(), &["--config", config.to_str().unwrap()]);
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(&b).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode, 0o660, "the extra socket is handled as the first");
    two_views_share_bytes_but_not_records(&p, &b).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_flag_serves_a_second_view_and_sigterm_removes_its_socket() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("b.sock");
    let flag = format!("b={}", b.display());
    let mut p = Proxy::start_with(dir.path(), &["--proxy", &flag]);
    two_views_share_bytes_but_not_records(&p, &b).await;
    let (status, _p) = tokio::task::spawn_blocking(move || (p.terminate(), p))
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!b.exists(), "the extra socket is removed on shutdown");
}

#[tokio::test]
async fn data_of_the_default_socket_is_the_proxy_view_after_a_restart_with_views() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proxy::start(dir.path());
    let mut c = p.content().await;
    let d = put(&mut c, "r", b"kept").await;
    p.kill9();
    let b = dir.path().join("b.sock");
    p.extra_args = vec!["--proxy".into(), format!("b={}", b.display())];
    p.restart();
    let [(mut ca, _), (mut cb, _)] = clients(&p, &b).await;
    assert_eq!(read_all(&mut ca, &d).await.unwrap(), b"kept");
    let e = info(&mut cb, &d).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}
