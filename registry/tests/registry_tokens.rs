//! Bearer tokens and redirects: a small token-checking front (a hyper server in the test) in
//! front of Debian's `docker-registry`, which serves the blobs.

mod common;

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::ErrorKind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use strata_registry::{HostConfig, ImageRef, Registry, RegistryConfig};

const REPO: &str = "t/img";
type Body = BoxBody<Bytes, hyper::Error>;

/// The front's state: what it saw and how it behaves.
struct Front {
    host: String,
    backend: String,
    expires_in: u64,
    /// Tokens issued are `tok-<generation>`; bumping it revokes the ones issued.
    generation: AtomicUsize,
    token_requests: AtomicUsize,
    challenges: AtomicUsize,
    token_queries: Mutex<Vec<(String, Option<String>)>>,
    /// Blob requests are redirected to this host.
    redirect_to: Mutex<Option<String>>,
    /// No token needed.
    open: AtomicBool,
    /// The `Range` headers of the blob requests forwarded.
    ranges: Mutex<Vec<Option<String>>>,
    client: Client<HttpConnector, Empty<Bytes>>,
}

fn full(status: u16, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()).map_err(|e| match e {}).boxed())
        .unwrap()
}

async fn handle(f: Arc<Front>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let auth = req
        .headers()
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string());
    let path = req.uri().path().to_string();
    if path == "/token" {
        f.token_requests.fetch_add(1, SeqCst);
        let query = req.uri().query().unwrap_or_default().to_string();
        f.token_queries.lock().unwrap().push((query, auth));
        let token = format!("tok-{}", f.generation.load(SeqCst));
        let body = format!(r#"{{"token":"{token}","expires_in":{}}}"#, f.expires_in);
        return Ok(full(200, body));
    }
    let authorized = auth == Some(format!("Bearer tok-{}", f.generation.load(SeqCst)));
    if !authorized && !f.open.load(SeqCst) {
        f.challenges.fetch_add(1, SeqCst);
        let mut r = full(401, r#"{"errors":[{"code":"UNAUTHORIZED"}]}"#);
        let challenge = format!(
            r#"Bearer realm="http://{}/token",service="front",scope="repository:{REPO}:pull""#,
            f.host
        );
        r.headers_mut()
            .insert("www-authenticate", challenge.parse().unwrap());
        return Ok(r);
    }
    let to = f.redirect_to.lock().unwrap().clone();
    if let Some(to) = to {
        let mut r = full(307, "");
        let loc = format!("http://{to}{path}");
        r.headers_mut().insert("location", loc.parse().unwrap());
        return Ok(r);
    }
    let range = req
        .headers()
        .get("range")
        .map(|r| r.to_str().unwrap().to_string());
    f.ranges.lock().unwrap().push(range);
    let mut fwd = Request::builder()
        .method(req.method())
        .uri(format!("http://{}{path}", f.backend));
    if let Some(range) = req.headers().get("range") {
        fwd = fwd.header("range", range);
    }
    let resp = f
        .client
        .request(fwd.body(Empty::new()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    Ok(Response::from_parts(parts, body.boxed()))
}

/// Starts the front for the registry `backend`; returns its state.
async fn start_front(backend: &str, expires_in: u64) -> Arc<Front> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let front = Arc::new(Front {
        host: listener.local_addr().unwrap().to_string(),
        backend: backend.to_string(),
        expires_in,
        generation: AtomicUsize::new(1),
        token_requests: AtomicUsize::new(0),
        challenges: AtomicUsize::new(0),
        token_queries: Mutex::new(Vec::new()),
        redirect_to: Mutex::new(None),
        open: AtomicBool::new(false),
        ranges: Mutex::new(Vec::new()),
        client: Client::builder(TokioExecutor::new()).build_http(),
    });
    let f = front.clone();
    tokio::spawn(async move {
        loop {
            let (s, _) = listener.accept().await.unwrap();
            let f = f.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req| handle(f.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(s), svc)
                    .await;
            });
        }
    });
    front
}

fn client_for(front: &Front, also_plain: &[&str], user: Option<(&str, &str)>) -> Registry {
    let mut plain = vec![front.host.clone()];
    plain.extend(also_plain.iter().map(|h| h.to_string()));
    let mut hosts = BTreeMap::new();
    if let Some((u, p)) = user {
        let h = HostConfig {
            username: Some(u.into()),
            password: Some(p.into()),
            ..HostConfig::default()
        };
        hosts.insert(front.host.clone(), h);
    }
    Registry::new(RegistryConfig {
        plain_http: plain,
        hosts,
        ..RegistryConfig::default()
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_cached_and_refreshed_once_on_401() {
    let dir = tempfile::tempdir().unwrap();
    let reg = start_registry(dir.path(), "plain", &dir.path().join("storage"), "", "");
    let data = pattern(100_000);
    let digest = push_blob(&reg.host, REPO, &data).await;
    let front = start_front(&reg.host, 300).await;
    let client = client_for(&front, &[], Some(("puller", "pw")));
    let img = ImageRef::parse(&format!("{}/{REPO}:1", front.host)).unwrap();

    assert_eq!(client.blob_size(&img, &digest).await.unwrap(), 100_000);
    for i in 0..10u64 {
        let off = i * 9000;
        let got = client.read_range(&img, &digest, off, 1000).await.unwrap();
        assert_eq!(got, data[off as usize..off as usize + 1000]);
    }
    assert_eq!(
        front.token_requests.load(SeqCst),
        1,
        "one token for 11 requests"
    );
    assert_eq!(front.challenges.load(SeqCst), 1);
    {
        let q = front.token_queries.lock().unwrap();
        let (query, auth) = &q[0];
        assert!(query.contains("service=front"), "{query}");
        assert!(
            query.contains(&format!("scope=repository:{REPO}:pull")),
            "{query}"
        );
        // puller:pw
        assert_eq!(auth.as_deref(), Some("Basic cHVsbGVyOnB3"));
    }

    // revoked: the next request meets a 401, gets a new token once, and succeeds
    front.generation.fetch_add(1, SeqCst);
    assert_eq!(
        client.read_range(&img, &digest, 5, 5).await.unwrap(),
        data[5..10]
    );
    assert_eq!(front.token_requests.load(SeqCst), 2);
    for _ in 0..3 {
        client.read_range(&img, &digest, 0, 1).await.unwrap();
    }
    assert_eq!(front.token_requests.load(SeqCst), 2);

    // concurrent readers on a fresh client share one token
    let fresh = client_for(&front, &[], None);
    let reads = (0..8u64).map(|i| {
        let (fresh, img, digest) = (fresh.clone(), img.clone(), digest.clone());
        tokio::spawn(async move { fresh.read_range(&img, &digest, i * 100, 100).await })
    });
    for r in reads {
        r.await.unwrap().unwrap();
    }
    assert_eq!(
        front.token_requests.load(SeqCst),
        3,
        "one token for 8 readers"
    );
    assert_eq!(front.token_queries.lock().unwrap()[2].1, None, "anonymous");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_tokens_are_fetched_again() {
    let dir = tempfile::tempdir().unwrap();
    let reg = start_registry(dir.path(), "plain", &dir.path().join("storage"), "", "");
    let digest = push_blob(&reg.host, REPO, b"0123456789").await;
    let front = start_front(&reg.host, 1).await;
    let client = client_for(&front, &[], None);
    let img = ImageRef::parse(&format!("{}/{REPO}", front.host)).unwrap();
    client.read_range(&img, &digest, 0, 2).await.unwrap();
    client.read_range(&img, &digest, 2, 2).await.unwrap();
    assert_eq!(front.token_requests.load(SeqCst), 1);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(
        client.read_range(&img, &digest, 4, 2).await.unwrap(),
        b"45"[..]
    );
    assert_eq!(front.token_requests.load(SeqCst), 2, "the token expired");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_keep_the_range_and_obey_plain_http() {
    let dir = tempfile::tempdir().unwrap();
    let reg = start_registry(dir.path(), "plain", &dir.path().join("storage"), "", "");
    let data = pattern(50_000);
    let digest = push_blob(&reg.host, REPO, &data).await;
    // the blob store the registry redirects to: another host, no token needed
    let store = start_front(&reg.host, 300).await;
    store.open.store(true, SeqCst);
    let front = start_front(&reg.host, 300).await;
    *front.redirect_to.lock().unwrap() = Some(store.host.clone());
    let img = ImageRef::parse(&format!("{}/{REPO}", front.host)).unwrap();

    let client = client_for(&front, &[&store.host], None);
    let got = client.read_range(&img, &digest, 40_000, 123).await.unwrap();
    assert_eq!(got, data[40_000..40_123]);
    assert_eq!(client.blob_size(&img, &digest).await.unwrap(), 50_000);
    assert_eq!(
        *store.ranges.lock().unwrap(),
        vec![Some("bytes=40000-40122".to_string()), None],
        "the range goes along the redirect"
    );
    assert_eq!(store.challenges.load(SeqCst), 0);

    // the redirect target is not a plain-HTTP host
    let strict = client_for(&front, &[], None);
    let e = strict.read_range(&img, &digest, 0, 10).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
    assert!(e.to_string().contains("plain http refused"), "{e}");
    assert!(e.to_string().contains(&store.host), "{e}");
}
