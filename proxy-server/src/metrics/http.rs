//! The `/metrics` endpoint: HTTP/1.1 on a TCP address, one task per connection.

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus_client::encoding::prometheus_text;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::{Backends, render};

/// Shared by the connections: the backends and views to count, and a lock so that concurrent
/// scrapes do not interleave their recount of the snapshot gauge.
struct Exporter {
    backends: Backends,
    views: Vec<String>,
    scrape: Mutex<()>,
}

/// Binds `address` (`HOST:PORT`) and serves `GET /metrics` on it until the task is aborted.
pub async fn serve(
    address: &str,
    backends: Backends,
    views: Vec<String>,
) -> anyhow::Result<JoinHandle<()>> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("binding the metrics address {address}"))?;
    tracing::info!(address = %listener.local_addr()?, "serving metrics");
    let exporter = Arc::new(Exporter {
        backends,
        views,
        scrape: Mutex::new(()),
    });
    Ok(tokio::spawn(accept_loop(listener, exporter)))
}

async fn accept_loop(listener: TcpListener, exporter: Arc<Exporter>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accepting a connection");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let exporter = exporter.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let exporter = exporter.clone();
                async move { Ok::<_, Infallible>(respond(&exporter, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "metrics: connection");
            }
        });
    }
}

async fn respond(exporter: &Exporter, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != "/metrics" {
        return plain(StatusCode::NOT_FOUND, "not found; try /metrics\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        r.headers_mut()
            .insert(ALLOW, hyper::header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let text = {
        let _one_at_a_time = exporter.scrape.lock().await;
        render(&exporter.backends, &exporter.views).await
    };
    let mut r = Response::new(Full::new(Bytes::from(text)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(prometheus_text::CONTENT_TYPE),
    );
    r
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
