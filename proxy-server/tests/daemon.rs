//! The daemon's contract: socket handling, one server per root, graceful SIGTERM, routing.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::*;
use strata_proxy::api::snapshots::*;
use tonic::Code;

#[tokio::test]
async fn socket_is_0660_and_a_second_server_on_the_root_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mode = std::fs::metadata(&p.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o660);
    let out = Command::new(env!("CARGO_BIN_EXE_strata-proxy"))
        .arg("--root")
        .arg(&p.root)
        .arg("--address")
        .arg(dir.path().join("other.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already served by another process"), "{err}");
}

/// A daemon adopts every task it finds under its task state folder at start (and removes
/// unfinished creates there): a second daemon on the same `--state` would take over, or destroy,
/// the first one's containers. It is refused, whatever its root.
#[tokio::test]
async fn a_second_server_on_the_task_state_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let state = p.root.with_file_name("state");
    let other = dir.path().join("other");
    let mut second = Command::new(env!("CARGO_BIN_EXE_strata-proxy"))
        .arg("--root")
        .arg(other.join("root"))
        .arg("--address")
        .arg(other.join("s.sock"))
        .arg("--runtime-address")
        .arg(other.join("r.sock"))
        .arg("--state")
        .arg(&state)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while second.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("a second daemon started on {state:?} and kept serving");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = second.wait_with_output().unwrap();
    assert!(
        !out.status.success(),
        "a second daemon started on {state:?}"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("task state") && err.contains("another process"),
        "{err}"
    );
    assert!(!other.join("s.sock").exists(), "no socket left behind");
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_socket_is_replaced_and_sigterm_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join("s.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    let mut p = Proxy::start(dir.path());
    let mut c = p.content().await;
    put(&mut c, "r", b"x").await;
    // An open client connection must not keep the server from exiting.
    let status = tokio::task::spawn_blocking(move || {
        let st = p.terminate();
        (st, p)
    })
    .await
    .unwrap();
    let (status, p) = status;
    assert!(status.success(), "{status:?}");
    assert!(!p.socket.exists(), "socket removed on shutdown");
}

#[tokio::test]
async fn snapshotter_field_routes_requests() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut s = p.snapshots().await;
    let e = s
        .stat(StatSnapshotRequest {
            snapshotter: "nope".into(),
            key: "k".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(
        e.message().contains("strata-overlay"),
        "names the available: {}",
        e.message()
    );
    for name in ["strata-overlay", "strata-native", ""] {
        let key = format!("k-{name}");
        s.prepare(PrepareSnapshotRequest {
            snapshotter: name.into(),
            key: key.clone(),
            ..Default::default()
        })
        .await
        .unwrap();
        let info = s
            .stat(StatSnapshotRequest {
                snapshotter: name.into(),
                key: key.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .info
            .unwrap();
        assert_eq!(info.kind, Kind::Active as i32);
    }
    // The empty name is the default backend (overlay): its key is visible there only.
    s.stat(StatSnapshotRequest {
        snapshotter: "strata-overlay".into(),
        key: "k-".into(),
    })
    .await
    .unwrap();
    let e = s
        .stat(StatSnapshotRequest {
            snapshotter: "strata-native".into(),
            key: "k-".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
}
