//! `--metrics-address`: after content writes and reads, a few snapshot operations and some
//! failing calls, `GET /metrics` reports the calls, the errors by code, the bytes in and out and
//! the snapshots per backend and kind.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use common::*;
use strata_proxy::api::content::{InfoRequest, ReadContentRequest};
use strata_proxy::api::snapshots::snapshots_client::SnapshotsClient;
use strata_proxy::api::snapshots::*;
use tonic::Code;

const CONTENT: &str = "containerd.services.content.v1.Content";
const SNAPSHOTS: &str = "containerd.services.snapshots.v1.Snapshots";

/// A port free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// GET `path` over plain HTTP/1.1: (status line, content-type, body).
fn get(port: u16, path: &str) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.lines().next().unwrap().to_string();
    let content_type = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-type: ")
                .map(str::to_string)
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// Samples by `name{labels}` as written.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.rsplit_once(' ').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

fn value(m: &HashMap<String, f64>, key: &str) -> f64 {
    *m.get(key).unwrap_or_else(|| panic!("no sample {key}"))
}

fn rpc(name: &str, service: &str, method: &str) -> String {
    format!("{name}{{service=\"{service}\",method=\"{method}\"}}")
}

fn rpc_error(service: &str, method: &str, code: &str) -> String {
    format!("strata_grpc_errors_total{{service=\"{service}\",method=\"{method}\",code=\"{code}\"}}")
}

fn snapshots(view: &str, backend: &str, kind: &str) -> String {
    format!("strata_snapshots{{view=\"{view}\",backend=\"{backend}\",kind=\"{kind}\"}}")
}

async fn content_traffic(p: &Proxy) {
    let mut c = p.content().await;
    let big = pseudo_random(100_000, 1);
    let d = put(&mut c, "big", &big).await;
    put(&mut c, "small", b"hello").await;
    let mut r = c
        .read(ReadContentRequest {
            digest: d,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let mut got = 0;
    while let Some(m) = r.message().await.unwrap() {
        got += m.data.len();
    }
    assert_eq!(got, big.len());
    // A unary error (Trailers-Only) and an error in the middle of a stream (trailers).
    let e = c
        .info(InfoRequest {
            digest: digest_of(b"missing"),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let (mut w, _) = WriteStream::open(&mut c, stat("bad", 10, ""))
        .await
        .unwrap();
    let e = w.send(write(5, b"x")).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange);
}

async fn snapshot_traffic(p: &Proxy) {
    let mut s = p.snapshots().await;
    let prepare = |backend: &str, key: &str, parent: &str| PrepareSnapshotRequest {
        snapshotter: backend.into(),
        key: key.into(),
        parent: parent.into(),
        ..Default::default()
    };
    s.prepare(prepare("strata-overlay", "a", "")).await.unwrap();
    s.commit(CommitSnapshotRequest {
        snapshotter: "strata-overlay".into(),
        name: "base".into(),
        key: "a".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    s.prepare(prepare("strata-overlay", "b", "base"))
        .await
        .unwrap();
    s.view(ViewSnapshotRequest {
        snapshotter: "strata-overlay".into(),
        key: "v".into(),
        parent: "base".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    s.prepare(prepare("strata-native", "n", "")).await.unwrap();
    let e = s
        .stat(StatSnapshotRequest {
            snapshotter: "strata-native".into(),
            key: "missing".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_endpoint_reports_calls_errors_bytes_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let address = format!("127.0.0.1:{port}");
    let b_socket = dir.path().join("b.sock");
    let b_flag = format!("b={}", b_socket.display());
    let p = Proxy::start_with(
        dir.path(),
        &["--metrics-address", &address, "--proxy", &b_flag],
    );
    content_traffic(&p).await;
    snapshot_traffic(&p).await;
    // One active snapshot in the second proxy socket's view.
    let mut b = SnapshotsClient::new(connect(b_socket).await);
    b.prepare(PrepareSnapshotRequest {
        snapshotter: "strata-native".into(),
        key: "in-b".into(),
        ..Default::default()
    })
    .await
    .unwrap();

    let (status, content_type, body) = tokio::task::spawn_blocking(move || get(port, "/metrics"))
        .await
        .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let m = samples(&body);

    let requests = |svc, method| value(&m, &rpc("strata_grpc_requests_total", svc, method));
    assert_eq!(requests(CONTENT, "Write"), 3.0);
    assert_eq!(requests(CONTENT, "Read"), 1.0);
    assert_eq!(requests(CONTENT, "Info"), 1.0);
    assert_eq!(requests(SNAPSHOTS, "Prepare"), 4.0);
    assert_eq!(requests(SNAPSHOTS, "Commit"), 1.0);
    assert_eq!(requests(SNAPSHOTS, "Stat"), 1.0);
    let count = rpc(
        "strata_grpc_request_duration_seconds_count",
        CONTENT,
        "Write",
    );
    assert_eq!(value(&m, &count), 3.0);
    let inf = format!(
        "strata_grpc_request_duration_seconds_bucket\
         {{service=\"{SNAPSHOTS}\",method=\"Prepare\",le=\"+Inf\"}}"
    );
    assert_eq!(value(&m, &inf), 4.0);

    assert_eq!(value(&m, &rpc_error(CONTENT, "Info", "NotFound")), 1.0);
    assert_eq!(value(&m, &rpc_error(CONTENT, "Write", "OutOfRange")), 1.0);
    assert_eq!(value(&m, &rpc_error(SNAPSHOTS, "Stat", "NotFound")), 1.0);
    let errors: Vec<&String> = m
        .keys()
        .filter(|k| k.starts_with("strata_grpc_errors_total"))
        .collect();
    assert_eq!(errors.len(), 3, "only the failed calls: {errors:?}");

    assert_eq!(
        value(&m, "strata_content_ingested_bytes_total"),
        100_000.0 + 5.0
    );
    assert_eq!(value(&m, "strata_content_read_bytes_total"), 100_000.0);

    // Every proxy socket's view is counted apart.
    let snap = |view, backend, kind| value(&m, &snapshots(view, backend, kind));
    assert_eq!(snap("proxy", "strata-overlay", "committed"), 1.0);
    assert_eq!(snap("proxy", "strata-overlay", "active"), 1.0);
    assert_eq!(snap("proxy", "strata-overlay", "view"), 1.0);
    assert_eq!(snap("proxy", "strata-native", "active"), 1.0);
    assert_eq!(snap("proxy", "strata-native", "committed"), 0.0);
    assert_eq!(snap("proxy/b", "strata-native", "active"), 1.0);
    assert_eq!(snap("proxy/b", "strata-overlay", "committed"), 0.0);

    let (status, _, _) = tokio::task::spawn_blocking(move || get(port, "/nope"))
        .await
        .unwrap();
    assert_eq!(status, "HTTP/1.1 404 Not Found");
}
