//! The registry client: requests with HTTPS (or plain HTTP for the hosts configured so),
//! redirects, authentication and timeouts.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri};

use crate::auth::{self, AuthCache, Challenge};
use crate::config::RegistryConfig;
use crate::http::{authority, chain, error_codes, header_str, is_redirect, redirect_target};
use crate::reference::ImageRef;
use crate::tls::{self, HttpClient};

/// How many redirects and authentication retries one request may take.
const MAX_HOPS: u32 = 8;
/// The most of an error or token response body read.
const SMALL_BODY: usize = 1 << 20;

/// A registry client; cheap to clone (clones share connections and cached tokens).
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    config: RegistryConfig,
    /// The client trusting the system's roots.
    default: HttpClient,
    /// Clients for hosts with a CA file of their own.
    by_host: HashMap<String, HttpClient>,
    auth: AuthCache,
    /// Serializes authentication, so concurrent readers fetch one token, not one each.
    auth_lock: tokio::sync::Mutex<()>,
}

impl Registry {
    /// A client for `config`; fails when a CA file cannot be read.
    pub fn new(config: RegistryConfig) -> io::Result<Registry> {
        let system = tls::system_roots();
        let timeout = config.timeout();
        let default = tls::client(&system, timeout)?;
        let mut by_host = HashMap::new();
        for (host, h) in &config.hosts {
            if let Some(ca) = &h.ca_file {
                let mut roots = system.clone();
                roots.extend(tls::read_ca_file(ca)?);
                by_host.insert(host.clone(), tls::client(&roots, timeout)?);
            }
        }
        Ok(Registry {
            inner: Arc::new(Inner {
                config,
                default,
                by_host,
                auth: AuthCache::default(),
                auth_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The settings this client runs with.
    pub fn config(&self) -> &RegistryConfig {
        &self.inner.config
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.config.timeout()
    }

    /// `http(s)://host/v2/<repository>/blobs/<digest>`.
    pub fn blob_url(&self, image: &ImageRef, digest: &str) -> io::Result<String> {
        let valid = digest.split_once(':').is_some_and(|(a, h)| {
            !a.is_empty() && !h.is_empty() && h.bytes().all(|b| b.is_ascii_alphanumeric())
        });
        if !valid || digest.contains('/') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid digest {digest:?}"),
            ));
        }
        let scheme = if self.inner.config.is_plain_http(&image.host) {
            "http"
        } else {
            "https"
        };
        Ok(format!(
            "{scheme}://{}/v2/{}/blobs/{digest}",
            image.host, image.repository
        ))
    }

    /// Sends `method url` for `image`'s registry, following redirects (the `Range` header
    /// kept, credentials only sent to the registry itself) and answering one authentication
    /// challenge; returns the final response whatever its status.
    pub(crate) async fn send(
        &self,
        image: &ImageRef,
        method: Method,
        url: &str,
        range: Option<&str>,
    ) -> io::Result<Response<Incoming>> {
        let mut url = url.to_string();
        let mut challenged = false;
        for _ in 0..MAX_HOPS {
            let on_registry = authority(&url)? == image.host;
            let sent = on_registry
                .then(|| self.inner.auth.get(&image.host, &image.repository))
                .flatten();
            let resp = self.request(&method, &url, range, sent.as_deref()).await?;
            let status = resp.status();
            if is_redirect(status) {
                url = redirect_target(&url, &resp)?;
            } else if status == StatusCode::UNAUTHORIZED && on_registry && !challenged {
                challenged = true;
                let challenge = header_str(&resp, header::WWW_AUTHENTICATE).unwrap_or_default();
                self.authenticate(image, &challenge, sent).await?;
            } else {
                return Ok(resp);
            }
        }
        Err(io::Error::other(format!("{url}: too many redirects")))
    }

    /// Answers `challenge` from `image`'s registry: caches the `Authorization` value to send,
    /// unless another request did so since `sent` was sent.
    async fn authenticate(
        &self,
        image: &ImageRef,
        challenge: &str,
        sent: Option<String>,
    ) -> io::Result<()> {
        let _guard = self.inner.auth_lock.lock().await;
        let now = self.inner.auth.get(&image.host, &image.repository);
        if now.is_some() && now != sent {
            return Ok(());
        }
        let creds = self.inner.config.hosts.get(&image.host).and_then(|h| {
            Some(auth::basic(
                h.username.as_deref()?,
                h.password.as_deref().unwrap_or(""),
            ))
        });
        let parsed = auth::parse_challenge(challenge);
        let (value, life) = match parsed {
            Some(Challenge::Basic) => {
                let creds = creds.ok_or_else(|| {
                    io::Error::new(
                        io::ErrorKind::PermissionDenied,
                        format!(
                            "{} asks for basic auth: no credentials configured",
                            image.host
                        ),
                    )
                })?;
                (creds, None)
            }
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scope =
                    scope.unwrap_or_else(|| format!("repository:{}:pull", image.repository));
                let (token, life) = self
                    .fetch_token(&realm, service.as_deref(), &scope, creds.as_deref())
                    .await?;
                (format!("Bearer {token}"), Some(life))
            }
            None => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{}: unauthorized, unsupported challenge {challenge:?}",
                        image.host
                    ),
                ));
            }
        };
        self.inner
            .auth
            .put(&image.host, &image.repository, value, life);
        Ok(())
    }

    /// A bearer token from `realm` (the distribution token protocol), with Basic credentials
    /// when configured.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        creds: Option<&str>,
    ) -> io::Result<(String, Duration)> {
        let mut url = realm.to_string();
        url.push(if realm.contains('?') { '&' } else { '?' });
        if let Some(s) = service {
            url.push_str(&format!("service={}&", auth::query_escape(s)));
        }
        url.push_str(&format!("scope={}", auth::query_escape(scope)));
        let mut hops = 0;
        let resp = loop {
            let resp = self.request(&Method::GET, &url, None, creds).await?;
            if !is_redirect(resp.status()) || hops == MAX_HOPS {
                break resp;
            }
            url = redirect_target(&url, &resp)?;
            hops += 1;
        };
        if resp.status() != StatusCode::OK {
            return Err(self.status_error(&url, resp).await);
        }
        let body = self.read_small(&url, resp.into_body()).await?;
        auth::parse_token_response(&body)
            .ok_or_else(|| io::Error::other(format!("{url}: token response without a token")))
    }

    /// One HTTP request, bounded by the timeout until the response headers are in.
    async fn request(
        &self,
        method: &Method,
        url: &str,
        range: Option<&str>,
        auth: Option<&str>,
    ) -> io::Result<Response<Incoming>> {
        let uri: Uri = url
            .parse()
            .map_err(|e| io::Error::other(format!("invalid url {url}: {e}")))?;
        let host = authority(url)?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.inner.config.is_plain_http(&host) => {}
            Some("http") => {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{url}: plain http refused, {host} is not in plain_http"),
                ));
            }
            _ => return Err(io::Error::other(format!("{url}: unsupported scheme"))),
        }
        let mut req = Request::builder()
            .method(method.clone())
            .uri(uri)
            .header(header::ACCEPT, "*/*")
            .header(header::USER_AGENT, "strata-registry");
        if let Some(r) = range {
            req = req.header(header::RANGE, r);
        }
        if let Some(a) = auth {
            let mut v = HeaderValue::from_str(a).map_err(io::Error::other)?;
            v.set_sensitive(true);
            req = req.header(header::AUTHORIZATION, v);
        }
        let req = req.body(Empty::new()).map_err(io::Error::other)?;
        let client = self.inner.by_host.get(&host).unwrap_or(&self.inner.default);
        let timeout = self.timeout();
        match tokio::time::timeout(timeout, client.request(req)).await {
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{url}: no response within {} ms", timeout.as_millis()),
            )),
            Ok(Err(e)) => Err(io::Error::other(format!("{url}: {}", chain(&e)))),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// The next data of `body`, each wait bounded by the timeout; `None` at its end.
    pub(crate) async fn next_data(
        &self,
        url: &str,
        body: &mut Incoming,
    ) -> io::Result<Option<Bytes>> {
        crate::http::next_data(url, body, self.timeout()).await
    }

    /// A whole small body (at most 1 MiB).
    async fn read_small(&self, url: &str, mut body: Incoming) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(d) = self.next_data(url, &mut body).await? {
            if out.len() + d.len() > SMALL_BODY {
                return Err(io::Error::other(format!("{url}: response too large")));
            }
            out.extend_from_slice(&d);
        }
        Ok(out)
    }

    /// An error for an unexpected status, naming the URL and the registry's error codes.
    pub(crate) async fn status_error(&self, url: &str, resp: Response<Incoming>) -> io::Error {
        let status = resp.status();
        let kind = match status {
            StatusCode::NOT_FOUND => io::ErrorKind::NotFound,
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        };
        let body = self
            .read_small(url, resp.into_body())
            .await
            .unwrap_or_default();
        let codes = error_codes(&body);
        let detail = if codes.is_empty() {
            String::new()
        } else {
            format!(" ({codes})")
        };
        io::Error::new(kind, format!("{url}: status {status}{detail}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_urls_refuse_odd_digests() {
        let r = Registry::new(RegistryConfig {
            plain_http: vec!["127.0.0.1:5000".into()],
            ..RegistryConfig::default()
        })
        .unwrap();
        let image = ImageRef::parse("127.0.0.1:5000/a/b:1").unwrap();
        assert_eq!(
            r.blob_url(&image, "sha256:ab12").unwrap(),
            "http://127.0.0.1:5000/v2/a/b/blobs/sha256:ab12"
        );
        let other = ImageRef::parse("r.example/a").unwrap();
        assert!(
            r.blob_url(&other, "sha256:ab")
                .unwrap()
                .starts_with("https://")
        );
        let e = r.blob_url(&image, "sha256:../x").unwrap_err();
        assert!(e.to_string().contains("sha256:../x"), "{e}");
        assert!(r.blob_url(&image, "nodigest").is_err());
    }
}
