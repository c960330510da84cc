//! Fetching layer blobs from the registry an image came from, streaming: the distribution API's
//! `GET /v2/<repository>/blobs/<digest>`, with anonymous bearer tokens (`WWW-Authenticate:
//! Bearer realm=…`) and redirects. Plain HTTP only, for the registries the configuration names
//! (loopback mirrors); any other registry is not fetched from, and the layer goes containerd's
//! own way.

use std::io::{self, Read};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::runtime::Handle;

/// Where an image lives: `host[:port]` and repository (`library/busybox`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub host: String,
    pub repository: String,
}

impl ImageRef {
    /// Parses a reference as containerd writes it (`127.0.0.1:5000/x/y:tag`, `docker.io/x`,
    /// `busybox@sha256:…`), with Docker Hub's defaults.
    pub fn parse(r: &str) -> Option<ImageRef> {
        let name = r.split('@').next()?;
        let (first, rest) = name.split_once('/').unwrap_or(("", name));
        let registry_like = first.contains('.') || first.contains(':') || first == "localhost";
        let (host, path) = if registry_like {
            (first, rest)
        } else {
            ("docker.io", name)
        };
        let path = strip_tag(path);
        let host = if host == "docker.io" {
            "registry-1.docker.io"
        } else {
            host
        };
        let repository = if host == "registry-1.docker.io" && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        (!repository.is_empty()).then(|| ImageRef {
            host: host.to_string(),
            repository,
        })
    }
}

/// `name:tag` -> `name` (a `:` after the last `/` is a tag).
fn strip_tag(path: &str) -> &str {
    match path.rfind(':') {
        Some(i) if !path[i..].contains('/') => &path[..i],
        _ => path,
    }
}

/// A registry client limited to the hosts it may reach over plain HTTP.
#[derive(Clone)]
pub struct Registry {
    client: Client<HttpConnector, Empty<Bytes>>,
    insecure: Vec<String>,
}

impl Registry {
    pub fn new(insecure: Vec<String>) -> Registry {
        Registry {
            client: Client::builder(TokioExecutor::new()).build_http(),
            insecure,
        }
    }

    /// Whether blobs of `image` may be fetched.
    pub fn allows(&self, image: &ImageRef) -> bool {
        self.insecure.iter().any(|h| *h == image.host)
    }

    /// The blob `digest` of `image` as a stream, for a blocking reader (call from a blocking
    /// thread of the tokio runtime `rt`).
    pub fn open_blob(&self, rt: &Handle, image: &ImageRef, digest: &str) -> io::Result<BlobBody> {
        let url = format!(
            "http://{}/v2/{}/blobs/{digest}",
            image.host, image.repository
        );
        let this = self.clone();
        let body = rt.block_on(async move { this.get(url, None, 0).await })?;
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(64);
        rt.spawn(async move {
            let mut body = body;
            while let Some(frame) = body.frame().await {
                let item = frame
                    .map_err(io::Error::other)
                    .map(|f| f.into_data().unwrap_or_default());
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(BlobBody {
            rx,
            buf: Bytes::new(),
        })
    }

    async fn get(
        &self,
        url: String,
        token: Option<String>,
        hops: u32,
    ) -> io::Result<hyper::body::Incoming> {
        if hops > 5 {
            return Err(io::Error::other(format!(
                "too many redirects or retries for {url}"
            )));
        }
        if !url.starts_with("http://") {
            return Err(io::Error::other(format!(
                "{url}: only plain HTTP registries are fetched from"
            )));
        }
        let mut req = Request::get(&url).header("Accept", "*/*");
        if let Some(t) = &token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        let req = req.body(Empty::new()).map_err(io::Error::other)?;
        let resp = self.client.request(req).await.map_err(io::Error::other)?;
        match resp.status() {
            StatusCode::OK => Ok(resp.into_body()),
            s if s.is_redirection() => {
                let loc = header(&resp, "location")
                    .ok_or_else(|| io::Error::other("redirect without a location"))?;
                Box::pin(self.get(loc, None, hops + 1)).await
            }
            StatusCode::UNAUTHORIZED if token.is_none() => {
                let challenge = header(&resp, "www-authenticate").unwrap_or_default();
                let token = self.token(&challenge).await?;
                Box::pin(self.get(url, Some(token), hops + 1)).await
            }
            s => Err(io::Error::other(format!("GET {url}: {s}"))),
        }
    }

    /// An anonymous bearer token for a `Bearer realm=…,service=…,scope=…` challenge.
    async fn token(&self, challenge: &str) -> io::Result<String> {
        let params = challenge.strip_prefix("Bearer ").ok_or_else(|| {
            io::Error::other(format!("unsupported authentication: {challenge:?}"))
        })?;
        let field = |k: &str| {
            params.split(',').find_map(|p| {
                let (key, v) = p.trim().split_once('=')?;
                (key == k).then(|| v.trim_matches('"').to_string())
            })
        };
        let realm =
            field("realm").ok_or_else(|| io::Error::other("bearer challenge without a realm"))?;
        let mut url = format!("{realm}?");
        for k in ["service", "scope"] {
            if let Some(v) = field(k) {
                url.push_str(&format!("{k}={v}&"));
            }
        }
        let body = Box::pin(self.get(url, None, 4)).await?;
        let bytes = body.collect().await.map_err(io::Error::other)?.to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(io::Error::other)?;
        v.get("token")
            .or_else(|| v.get("access_token"))
            .and_then(|t| t.as_str())
            .map(str::to_string)
            .ok_or_else(|| io::Error::other("token response without a token"))
    }
}

fn header<B>(resp: &hyper::Response<B>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A response body read by a blocking thread.
pub struct BlobBody {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    buf: Bytes,
}

impl Read for BlobBody {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.buf = chunk?,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_docker_hub_defaults() {
        let r = |s: &str| ImageRef::parse(s).map(|i| (i.host, i.repository));
        assert_eq!(
            r("127.0.0.1:5000/t/img:1"),
            Some(("127.0.0.1:5000".into(), "t/img".into()))
        );
        assert_eq!(
            r("busybox"),
            Some(("registry-1.docker.io".into(), "library/busybox".into()))
        );
        assert_eq!(
            r("docker.io/library/busybox:latest"),
            Some(("registry-1.docker.io".into(), "library/busybox".into()))
        );
        assert_eq!(
            r("ghcr.io/a/b@sha256:00"),
            Some(("ghcr.io".into(), "a/b".into()))
        );
        assert_eq!(r("localhost/x:tag"), Some(("localhost".into(), "x".into())));
    }
}
