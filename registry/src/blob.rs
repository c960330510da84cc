//! Blobs: their size, byte ranges of them, and whole blobs as streams.

use std::io;

use bytes::{Bytes, BytesMut};
use hyper::body::Incoming;
use hyper::header;
use hyper::{Method, Response, StatusCode};

use crate::client::Registry;
use crate::http::header_str;
use crate::reference::ImageRef;

/// A whole blob being received; each wait for data is bounded by the request timeout.
pub struct BlobStream {
    url: String,
    body: Incoming,
    timeout: std::time::Duration,
}

impl BlobStream {
    /// The next bytes of the blob; `None` at its end.
    pub async fn next(&mut self) -> io::Result<Option<Bytes>> {
        crate::http::next_data(&self.url, &mut self.body, self.timeout).await
    }
}

impl Registry {
    /// The size of blob `digest` of `image` (`HEAD`, `Content-Length`).
    pub async fn blob_size(&self, image: &ImageRef, digest: &str) -> io::Result<u64> {
        let url = self.blob_url(image, digest)?;
        let resp = self.send(image, Method::HEAD, &url, None).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.status_error(&url, resp).await);
        }
        content_length(&resp)
            .ok_or_else(|| io::Error::other(format!("{url}: no content-length for blob {digest}")))
    }

    /// `len` bytes of blob `digest` of `image` from `offset` (`Range: bytes=a-b`, answered
    /// 206). A range reaching past the blob's end is an error, as is a shorter body. A
    /// registry that ignores ranges (200 and the whole blob) is accepted: the body is read up
    /// to the end of the range and the range sliced out of it.
    pub async fn read_range(
        &self,
        image: &ImageRef,
        digest: &str,
        offset: u64,
        len: u64,
    ) -> io::Result<Bytes> {
        if len == 0 {
            return Ok(Bytes::new());
        }
        let url = self.blob_url(image, digest)?;
        let end = offset.checked_add(len - 1).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{digest}: range at {offset} of {len} bytes overflows"),
            )
        })?;
        let range = format!("bytes={offset}-{end}");
        let resp = self.send(image, Method::GET, &url, Some(&range)).await?;
        let skip = match resp.status() {
            StatusCode::PARTIAL_CONTENT => {
                check_content_range(&url, digest, &resp, offset, end)?;
                0
            }
            StatusCode::OK => offset,
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let size = header_str(&resp, header::CONTENT_RANGE).unwrap_or_default();
                return Err(past_end(&url, digest, offset, end, &size));
            }
            _ => return Err(self.status_error(&url, resp).await),
        };
        self.read_exact(&url, digest, resp.into_body(), skip, len)
            .await
    }

    /// `len` bytes of `body` after skipping `skip`; fewer is an error.
    async fn read_exact(
        &self,
        url: &str,
        digest: &str,
        mut body: Incoming,
        mut skip: u64,
        len: u64,
    ) -> io::Result<Bytes> {
        let want = usize::try_from(len).map_err(io::Error::other)?;
        let mut out = BytesMut::with_capacity(want.min(16 << 20));
        while out.len() < want {
            let Some(mut d) = self.next_data(url, &mut body).await? else {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "{url}: short body for blob {digest}: {} of {want} bytes",
                        out.len()
                    ),
                ));
            };
            if skip > 0 {
                let n = skip.min(d.len() as u64);
                d = d.slice(n as usize..);
                skip -= n;
            }
            let n = d.len().min(want - out.len());
            out.extend_from_slice(&d[..n]);
        }
        Ok(out.freeze())
    }

    /// Blob `digest` of `image`, whole, as a stream.
    pub async fn blob_stream(&self, image: &ImageRef, digest: &str) -> io::Result<BlobStream> {
        let url = self.blob_url(image, digest)?;
        let resp = self.send(image, Method::GET, &url, None).await?;
        if resp.status() != StatusCode::OK {
            return Err(self.status_error(&url, resp).await);
        }
        Ok(BlobStream {
            url,
            body: resp.into_body(),
            timeout: self.timeout(),
        })
    }
}

/// Checks that a 206 answers `offset..=end` (`Content-Range: bytes a-b/size`).
fn check_content_range(
    url: &str,
    digest: &str,
    resp: &Response<Incoming>,
    offset: u64,
    end: u64,
) -> io::Result<()> {
    let cr = header_str(resp, header::CONTENT_RANGE).unwrap_or_default();
    let parsed = cr
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('/'))
        .and_then(|(range, _)| range.split_once('-'))
        .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)));
    match parsed {
        Some((a, b)) if a == offset && b == end => Ok(()),
        Some((a, b)) if a == offset && b < end => Err(past_end(url, digest, offset, end, &cr)),
        _ => Err(io::Error::other(format!(
            "{url}: asked blob {digest} for bytes {offset}-{end}, got content-range {cr:?}"
        ))),
    }
}

fn past_end(url: &str, digest: &str, offset: u64, end: u64, content_range: &str) -> io::Error {
    let size = content_range.rsplit_once('/').map_or("?", |(_, s)| s);
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("{url}: bytes {offset}-{end} reach past the end of blob {digest} ({size} bytes)"),
    )
}

fn content_length<B>(resp: &Response<B>) -> Option<u64> {
    header_str(resp, header::CONTENT_LENGTH)?
        .trim()
        .parse()
        .ok()
}
