//! Operations: `--version` prints the version, and grpc.health.v1.Health reports both services
//! as serving on the socket.

mod common;

use std::process::Command;

use common::*;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[test]
fn version_flag_prints_the_crate_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_strata-proxy"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("strata-proxy {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn health_check_reports_serving() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut h = HealthClient::new(p.channel().await);
    for service in [
        "",
        "containerd.services.content.v1.Content",
        "containerd.services.snapshots.v1.Snapshots",
    ] {
        let r = h
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let e = h
        .check(HealthCheckRequest {
            service: "no.such.Service".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
}
