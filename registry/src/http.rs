//! HTTP helpers: redirects, headers, bodies read with a timeout, error texts.

use std::error::Error as StdError;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Response, StatusCode, Uri};

/// Waits for the next data frame of `body`, each wait bounded by `timeout`.
pub async fn next_data(
    url: &str,
    body: &mut Incoming,
    timeout: Duration,
) -> io::Result<Option<Bytes>> {
    loop {
        match tokio::time::timeout(timeout, body.frame()).await {
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{url}: no data within {} ms", timeout.as_millis()),
                ));
            }
            Ok(None) => return Ok(None),
            Ok(Some(Err(e))) => return Err(io::Error::other(format!("{url}: {}", chain(&e)))),
            Ok(Some(Ok(frame))) => {
                if let Ok(d) = frame.into_data()
                    && !d.is_empty()
                {
                    return Ok(Some(d));
                }
            }
        }
    }
}

/// The distribution API's error codes in an error body (`{"errors":[{"code":…}]}`).
pub fn error_codes(body: &[u8]) -> String {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return String::new();
    };
    let codes: Vec<&str> = v
        .get("errors")
        .and_then(|e| e.as_array())
        .map(|a| a.iter().filter_map(|e| e.get("code")?.as_str()).collect())
        .unwrap_or_default();
    codes.join(", ").to_lowercase()
}

pub fn is_redirect(s: StatusCode) -> bool {
    matches!(s.as_u16(), 301 | 302 | 303 | 307 | 308)
}

/// `host[:port]` of `url`.
pub fn authority(url: &str) -> io::Result<String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| io::Error::other(format!("invalid url {url}: {e}")))?;
    uri.authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| io::Error::other(format!("invalid url {url}: no host")))
}

/// Where a redirect from `url` points (its `Location`, resolved against `url`).
pub fn redirect_target<B>(url: &str, resp: &Response<B>) -> io::Result<String> {
    let loc = header_str(resp, header::LOCATION)
        .ok_or_else(|| io::Error::other(format!("{url}: redirect without a location")))?;
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return Ok(loc);
    }
    let uri: Uri = url
        .parse()
        .map_err(|e| io::Error::other(format!("invalid url {url}: {e}")))?;
    let base = format!(
        "{}://{}",
        uri.scheme_str().unwrap_or("https"),
        authority(url)?
    );
    if let Some(rest) = loc.strip_prefix("//") {
        return Ok(format!("{}://{rest}", uri.scheme_str().unwrap_or("https")));
    }
    if loc.starts_with('/') {
        return Ok(format!("{base}{loc}"));
    }
    let dir = uri.path().rsplit_once('/').map_or("", |(d, _)| d);
    Ok(format!("{base}{dir}/{loc}"))
}

pub fn header_str<B>(resp: &Response<B>, name: header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// An error with its sources, `a: b: c`.
pub fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_against_the_request() {
        let resp = |loc: &str| {
            Response::builder()
                .status(307)
                .header("location", loc)
                .body(())
                .unwrap()
        };
        let base = "https://r.example:5000/v2/a/blobs/sha256:00";
        let t = |loc: &str| redirect_target(base, &resp(loc)).unwrap();
        assert_eq!(t("http://s3.example/x?y=1"), "http://s3.example/x?y=1");
        assert_eq!(t("/b/c"), "https://r.example:5000/b/c");
        assert_eq!(t("//cdn.example/d"), "https://cdn.example/d");
        assert_eq!(t("e"), "https://r.example:5000/v2/a/blobs/e");
    }

    #[test]
    fn registry_error_codes_are_named() {
        let body = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#;
        assert_eq!(error_codes(body), "blob_unknown");
        assert_eq!(error_codes(b"<html>"), "");
    }
}
