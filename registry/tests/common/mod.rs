//! Test fixtures: Debian's `docker-registry` on 127.0.0.1, blob pushes with the distribution
//! API's monolithic upload, a self-signed CA made with the `openssl` CLI, a bcrypt htpasswd.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::Digest as _;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A port free on 127.0.0.1 a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `docker-registry`, killed on drop.
pub struct TestRegistry {
    child: Child,
    pub host: String,
    pub log: PathBuf,
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `docker-registry` with its storage in `storage`, on a free port, with
/// `http_extra` YAML under `http:` (indented two spaces) and `top` at the top level.
pub fn start_registry(
    dir: &Path,
    name: &str,
    storage: &Path,
    http_extra: &str,
    top: &str,
) -> TestRegistry {
    assert!(
        Path::new(REGISTRY_BIN).exists(),
        "{REGISTRY_BIN} is missing: install Debian's docker-registry package to run these tests"
    );
    // the free port may be taken by another test before the registry binds it: retry
    for _ in 0..3 {
        match try_start(dir, name, storage, http_extra, top) {
            Ok(reg) => return reg,
            Err(log) if log.contains("address already in use") => continue,
            Err(log) => panic!("docker-registry did not start: {log}"),
        }
    }
    panic!("docker-registry found no free port in 3 tries");
}

/// One try of [`start_registry`]; the log when it fails.
fn try_start(
    dir: &Path,
    name: &str,
    storage: &Path,
    http_extra: &str,
    top: &str,
) -> Result<TestRegistry, String> {
    let host = format!("127.0.0.1:{}", free_port());
    let config = dir.join(format!("{name}.yml"));
    let yaml = format!(
        "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
         delete:\n    enabled: true\nhttp:\n  addr: {host}\n  secret: strata-test-secret\n\
         {http_extra}{top}",
        storage.display()
    );
    std::fs::write(&config, yaml).unwrap();
    let log = dir.join(format!("{name}.log"));
    let out = std::fs::File::create(&log).unwrap();
    let child = Command::new(REGISTRY_BIN)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::from(out.try_clone().unwrap()))
        .stderr(Stdio::from(out))
        .spawn()
        .expect("cannot start docker-registry");
    let mut reg = TestRegistry { child, host, log };
    // ready once it says so (a connect alone could reach another test's listener)
    let ready = format!("listening on {}", reg.host);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = std::fs::read_to_string(&reg.log).unwrap_or_default();
        if let Ok(Some(status)) = reg.child.try_wait() {
            return Err(format!("exited ({status}): {log}"));
        }
        if log.contains(&ready) && TcpStream::connect(&reg.host).is_ok() {
            return Ok(reg);
        }
        if Instant::now() > deadline {
            return Err(format!("not listening on {} after 20 s: {log}", reg.host));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

/// Pushes `data` as a blob of `repo` to the plain-HTTP registry `host` (POST an upload, PUT
/// it with its digest); returns the digest.
pub async fn push_blob(host: &str, repo: &str, data: &[u8]) -> String {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let digest = digest_of(data);
    let post = Request::post(format!("http://{host}/v2/{repo}/blobs/uploads/"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = client.request(post).await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED, "start an upload");
    let loc = resp.headers()["location"].to_str().unwrap().to_string();
    let loc = if loc.starts_with('/') {
        format!("http://{host}{loc}")
    } else {
        loc
    };
    let sep = if loc.contains('?') { '&' } else { '?' };
    let put = Request::put(format!("{loc}{sep}digest={digest}"))
        .header("content-type", "application/octet-stream")
        .header("content-length", data.len())
        .body(Full::new(Bytes::copy_from_slice(data)))
        .unwrap();
    let resp = client.request(put).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, StatusCode::CREATED, "finish the upload: {body:?}");
    digest
}

/// `n` bytes that are not all alike.
pub fn pattern(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Runs `openssl` with `args` in `dir`, failing the test when it fails.
fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("cannot run openssl (install the openssl package)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`) and a server certificate for 127.0.0.1 signed by it (`server.pem`,
/// `server.key`) in `dir`.
pub fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=strata test ca",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-new"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// An htpasswd file with one bcrypt line for `user`.
pub fn write_htpasswd(path: &Path, user: &str, password: &str) {
    let hash = bcrypt::hash(password, 4).unwrap();
    std::fs::write(path, format!("{user}:{hash}\n")).unwrap();
}
