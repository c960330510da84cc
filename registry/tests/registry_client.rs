//! The registry client against Debian's `docker-registry`: range reads, sizes, whole blobs,
//! wrong digests, plain HTTP refused, HTTPS with a CA file, Basic auth, timeouts.

mod common;

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read};
use std::time::{Duration, Instant};

use common::*;
use strata_registry::{HostConfig, ImageRef, Registry, RegistryConfig, RemoteBlob};
use tokio::io::AsyncWriteExt;

const REPO: &str = "t/img";

fn image(host: &str) -> ImageRef {
    ImageRef::parse(&format!("{host}/{REPO}:1")).unwrap()
}

fn plain(host: &str) -> Registry {
    Registry::new(RegistryConfig {
        plain_http: vec![host.to_string()],
        ..RegistryConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn range_reads_at_start_middle_end_and_past_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let reg = start_registry(dir.path(), "plain", &dir.path().join("storage"), "", "");
    let data = pattern(3 << 20);
    let digest = push_blob(&reg.host, REPO, &data).await;
    let client = plain(&reg.host);
    let img = image(&reg.host);
    let n = data.len() as u64;

    assert_eq!(client.blob_size(&img, &digest).await.unwrap(), n);
    let read = |off: u64, len: u64| client.read_range(&img, &digest, off, len);
    assert_eq!(read(0, 100).await.unwrap(), data[..100]);
    let mid = 1_500_001usize;
    assert_eq!(
        read(mid as u64, 70_000).await.unwrap(),
        data[mid..mid + 70_000]
    );
    assert_eq!(read(n - 10, 10).await.unwrap(), data[data.len() - 10..]);
    assert_eq!(read(0, n).await.unwrap(), data[..]);
    assert!(read(5, 0).await.unwrap().is_empty());

    let e = read(n - 5, 10).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
    assert!(e.to_string().contains(&digest), "{e}");
    assert!(
        e.to_string().contains(&n.to_string()),
        "names the size: {e}"
    );
    let e = read(n, 1).await.unwrap_err();
    assert!(e.to_string().contains(&digest), "{e}");
    let e = read(n + 100, 1).await.unwrap_err();
    assert!(e.to_string().contains(&digest), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_readers_read_at_offsets_and_whole_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let reg = start_registry(dir.path(), "plain", &dir.path().join("storage"), "", "");
    let data = pattern(1 << 20);
    let digest = push_blob(&reg.host, REPO, &data).await;
    let client = plain(&reg.host);
    let img = image(&reg.host);
    let rt = tokio::runtime::Handle::current();
    let got = tokio::task::spawn_blocking(move || {
        let blob = RemoteBlob::open(client.clone(), rt.clone(), img.clone(), &digest).unwrap();
        assert_eq!(blob.size(), data.len() as u64);
        let mut buf = vec![0u8; 4096];
        assert_eq!(blob.read_at(1000, &mut buf).unwrap(), 4096);
        assert_eq!(buf[..], data[1000..5096]);
        let tail = data.len() as u64 - 100;
        assert_eq!(blob.read_at(tail, &mut buf).unwrap(), 100);
        assert_eq!(buf[..100], data[data.len() - 100..]);
        assert_eq!(blob.read_at(data.len() as u64, &mut buf).unwrap(), 0);
        assert_eq!(blob.read_at(u64::MAX, &mut buf).unwrap(), 0);
        let mut whole = Vec::new();
        client
            .open_blob(&rt, &img, &digest)
            .unwrap()
            .read_to_end(&mut whole)
            .unwrap();
        assert!(whole == data, "the whole blob reads back");
        whole.len()
    })
    .await
    .unwrap();
    assert_eq!(got, 1 << 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_digest_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let reg = start_registry(dir.path(), "plain", &dir.path().join("storage"), "", "");
    push_blob(&reg.host, REPO, b"something").await;
    let client = plain(&reg.host);
    let img = image(&reg.host);
    let wrong = digest_of(b"nothing pushed");
    let e = client.read_range(&img, &wrong, 0, 4).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound, "{e}");
    assert!(e.to_string().contains(&wrong), "{e}");
    assert!(e.to_string().contains("blob_unknown"), "{e}");
    let e = client.blob_size(&img, &wrong).await.unwrap_err();
    assert!(e.to_string().contains(&wrong), "{e}");
    let e = client
        .read_range(&img, "sha256:../../x", 0, 4)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("sha256:../../x"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_is_refused_for_hosts_not_listed() {
    let dir = tempfile::tempdir().unwrap();
    let reg = start_registry(dir.path(), "plain", &dir.path().join("storage"), "", "");
    let digest = push_blob(&reg.host, REPO, b"plain only").await;
    let img = image(&reg.host);
    // not listed: spoken to over HTTPS, which a plain-HTTP server cannot answer
    let https_only = Registry::new(RegistryConfig::default()).unwrap();
    let e = https_only
        .read_range(&img, &digest, 0, 4)
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("https://"), "{e}");
    assert!(https_only.blob_size(&img, &digest).await.is_err());
    // listed under another name: refused as well
    let other = plain("localhost:1");
    assert!(other.read_range(&img, &digest, 0, 4).await.is_err());
    assert_eq!(
        plain(&reg.host)
            .read_range(&img, &digest, 0, 5)
            .await
            .unwrap(),
        b"plain"[..]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_ca_file_and_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path());
    write_htpasswd(&dir.path().join("htpasswd"), "puller", "s3cret");
    let storage = dir.path().join("storage");
    // an open plain instance on the same storage, to push through
    let admin = start_registry(dir.path(), "admin", &storage, "", "");
    let d = dir.path().display();
    let tls = format!("  tls:\n    certificate: {d}/server.pem\n    key: {d}/server.key\n");
    let auth = format!("auth:\n  htpasswd:\n    realm: strata-test\n    path: {d}/htpasswd\n");
    let reg = start_registry(dir.path(), "tls", &storage, &tls, &auth);
    let data = pattern(200_000);
    let digest = push_blob(&admin.host, REPO, &data).await;
    let img = image(&reg.host);
    let with = |ca: bool, user: Option<&str>, password: &str| {
        let host = HostConfig {
            ca_file: ca.then(|| dir.path().join("ca.pem")),
            username: user.map(str::to_string),
            password: Some(password.to_string()),
        };
        Registry::new(RegistryConfig {
            hosts: BTreeMap::from([(reg.host.clone(), host)]),
            ..RegistryConfig::default()
        })
        .unwrap()
    };

    let good = with(true, Some("puller"), "s3cret");
    assert_eq!(good.blob_size(&img, &digest).await.unwrap(), 200_000);
    for (off, len) in [(0usize, 10usize), (99_999, 5000), (199_990, 10)] {
        let got = good
            .read_range(&img, &digest, off as u64, len as u64)
            .await
            .unwrap();
        assert_eq!(got, data[off..off + len]);
    }

    let e = with(false, Some("puller"), "s3cret")
        .read_range(&img, &digest, 0, 10)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("https://"), "no CA file: {e}");
    let e = with(true, Some("puller"), "wrong")
        .read_range(&img, &digest, 0, 10)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "wrong password: {e}");
    let e = with(true, None, "")
        .read_range(&img, &digest, 0, 10)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("basic auth"), "no credentials: {e}");
    // a CA file that is not one
    std::fs::write(dir.path().join("bad.pem"), "not a certificate").unwrap();
    let bad = RegistryConfig {
        hosts: BTreeMap::from([(
            reg.host.clone(),
            HostConfig {
                ca_file: Some(dir.path().join("bad.pem")),
                ..HostConfig::default()
            },
        )]),
        ..RegistryConfig::default()
    };
    let e = Registry::new(bad).err().unwrap();
    assert!(e.to_string().contains("bad.pem"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_time_out_against_a_server_that_never_answers() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = silent.local_addr().unwrap().to_string();
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        loop {
            let (c, _) = silent.accept().await.unwrap();
            conns.push(c);
        }
    });
    let timeout = Duration::from_millis(300);
    let client = Registry::new(RegistryConfig {
        plain_http: vec![host.clone()],
        request_timeout_ms: 300,
        ..RegistryConfig::default()
    })
    .unwrap();
    let img = image(&host);
    let digest = digest_of(b"x");
    let t = Instant::now();
    let e = client.read_range(&img, &digest, 0, 10).await.unwrap_err();
    let took = t.elapsed();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(e.to_string().contains(&digest), "{e}");
    assert!(took >= timeout && took < timeout * 10, "took {took:?}");
    let t = Instant::now();
    assert!(client.blob_size(&img, &digest).await.is_err());
    assert!(t.elapsed() < timeout * 10, "took {:?}", t.elapsed());
    held.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stops_coming_times_out() {
    let stalling = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = stalling.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        let mut conns = Vec::new();
        loop {
            let (mut c, _) = stalling.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = tokio::io::AsyncReadExt::read(&mut c, &mut buf).await;
            let head = "HTTP/1.1 206 Partial Content\r\ncontent-range: bytes 0-99/1000\r\n\
                        content-length: 100\r\n\r\nonly a few bytes";
            c.write_all(head.as_bytes()).await.unwrap();
            conns.push(c);
        }
    });
    let client = Registry::new(RegistryConfig {
        plain_http: vec![host.clone()],
        request_timeout_ms: 300,
        ..RegistryConfig::default()
    })
    .unwrap();
    let t = Instant::now();
    let e = client
        .read_range(&image(&host), &digest_of(b"y"), 0, 100)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    server.abort();
}

/// A server answering every request on its connection with `response` (raw HTTP/1.1).
async fn canned(response: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        loop {
            let (mut c, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while tokio::io::AsyncReadExt::read(&mut c, &mut buf)
                    .await
                    .unwrap_or(0)
                    > 0
                {
                    if c.write_all(response.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    host
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_ignoring_ranges_is_sliced_and_short_bodies_are_errors() {
    let whole = canned("HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n0123456789").await;
    let client = Registry::new(RegistryConfig {
        plain_http: vec![whole.clone()],
        ..RegistryConfig::default()
    })
    .unwrap();
    let digest = digest_of(b"0123456789");
    let got = client
        .read_range(&image(&whole), &digest, 3, 4)
        .await
        .unwrap();
    assert_eq!(got, b"3456"[..]);
    let e = client
        .read_range(&image(&whole), &digest, 8, 5)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
    assert!(e.to_string().contains("short body"), "{e}");

    let short = canned(
        "HTTP/1.1 206 Partial Content\r\ncontent-range: bytes 0-9/10\r\n\
         content-length: 4\r\n\r\n0123",
    )
    .await;
    let client = Registry::new(RegistryConfig {
        plain_http: vec![short.clone()],
        ..RegistryConfig::default()
    })
    .unwrap();
    let e = client
        .read_range(&image(&short), &digest, 0, 10)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedEof, "{e}");
    assert!(e.to_string().contains(&digest), "{e}");
    let e = client
        .read_range(&image(&short), &digest, 2, 3)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("content-range"),
        "a wrong range: {e}"
    );
}
