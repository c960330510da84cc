//! The tower layer on the gRPC server that counts and times every call.
//!
//! A call is counted when its request arrives and timed to its response headers. Its final
//! status is the `grpc-status` of the response headers (Trailers-Only: every error a handler
//! returns before streaming) or else of the trailers ending the body (success, or an error in
//! the middle of a stream). A body that ends without a status is `Unknown`. A body dropped
//! before its trailers records no error: the client went away, typically right after the last
//! message of a stream it had finished with (containerd's writer after Commit).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::body::{Body, Frame, SizeHint};
use hyper::{HeaderMap, Request, Response};
use tonic::Code;
use tower::{Layer, Service};

use super::{ErrorLabels, METRICS, RpcLabels, rpc_labels};

/// Adds [`RpcMetrics`] around the gRPC routes: `Server::builder().layer(RpcMetricsLayer)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RpcMetricsLayer;

impl<S> Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

/// Records every call through `inner` in the process metrics.
#[derive(Clone, Debug)]
pub struct RpcMetrics<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, B, RB> Service<Request<B>> for RpcMetrics<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = Response<MeteredBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let call = Call::start(req.uri().path());
        let fut = self.inner.call(req);
        Box::pin(async move {
            let mut call = call;
            let res = fut.await;
            call.headers();
            match res {
                Ok(resp) => {
                    if let Some(code) = grpc_status(resp.headers()) {
                        call.finish(code);
                    }
                    Ok(resp.map(|body| MeteredBody { body, call }))
                }
                Err(e) => {
                    call.finish(Code::Unknown);
                    Err(e)
                }
            }
        })
    }
}

/// The `grpc-status` header, if present (an unparsable one is `Unknown`).
fn grpc_status(headers: &HeaderMap) -> Option<Code> {
    let v = headers.get("grpc-status")?;
    let code = v
        .to_str()
        .ok()
        .and_then(|s| s.parse::<i32>().ok())
        .map(Code::from)
        .unwrap_or(Code::Unknown);
    Some(code)
}

/// One call in flight: its labels, start time and whether its status is recorded.
struct Call {
    labels: RpcLabels,
    start: Instant,
    finished: bool,
}

impl Call {
    fn start(path: &str) -> Call {
        let labels = rpc_labels(path);
        METRICS.requests.get_or_create(&labels).inc();
        Call {
            labels,
            start: Instant::now(),
            finished: false,
        }
    }

    /// The response headers are out: the call's latency.
    fn headers(&self) {
        let secs = self.start.elapsed().as_secs_f64();
        METRICS.latency.get_or_create(&self.labels).observe(secs);
    }

    /// Records the final status, once.
    fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.finished, true) || code == Code::Ok {
            return;
        }
        let labels = ErrorLabels {
            service: self.labels.service.clone(),
            method: self.labels.method.clone(),
            code: format!("{code:?}"),
        };
        METRICS.errors.get_or_create(&labels).inc();
    }
}

/// A response body that records the call's status from its trailers.
pub struct MeteredBody<B> {
    body: B,
    call: Call,
}

impl<B: Body + Unpin> Body for MeteredBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    this.call.finish(code);
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => this.call.finish(Code::Unknown),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{Layer, ServiceExt};

    use super::*;

    /// Calls `path` through the layer around a handler that answers `grpc-status: 12`.
    async fn call(path: &str) {
        let inner = tower::service_fn(|_req: Request<()>| async {
            let resp = Response::builder()
                .header("grpc-status", "12")
                .body(String::new())
                .unwrap();
            Ok::<_, Infallible>(resp)
        });
        let req = Request::builder().uri(path).body(()).unwrap();
        let resp = RpcMetricsLayer.layer(inner).oneshot(req).await.unwrap();
        drop(resp);
    }

    /// The series of the process registry whose line starts with `family{`.
    fn series(family: &str) -> Vec<String> {
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &METRICS.registry).unwrap();
        let prefix = format!("{family}{{");
        out.lines()
            .filter(|l| l.starts_with(&prefix))
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn made_up_paths_share_one_series() {
        for i in 0..20_000 {
            call(&format!("/made.up.Service{i}/Method{i}")).await;
        }
        call("/containerd.services.content.v1.Content/Write").await;
        call("/containerd.services.content.v1.Content/NoSuchMethod").await;
        call("/nomethod").await;
        // Known methods (at most every one, as other tests share the registry) plus `unknown`.
        let bound = super::super::known::count() + 1;
        let requests = series("strata_grpc_requests_total");
        assert!(requests.len() <= bound, "{} request series", requests.len());
        let errors = series("strata_grpc_errors_total");
        assert!(errors.len() <= bound, "{} error series", errors.len());
        let latency = series("strata_grpc_request_duration_seconds_count");
        assert!(latency.len() <= bound, "{} latency series", latency.len());
        let known = r#"service="containerd.services.content.v1.Content",method="Write""#;
        assert!(requests.iter().any(|l| l.contains(known)), "{requests:?}");
        let unknown = r#"{service="unknown",method="unknown"}"#;
        let line = requests.iter().find(|l| l.contains(unknown));
        let n: u64 = line
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0);
        assert!(n >= 20_002, "unknown: {line:?}");
        let code = r#"{service="unknown",method="unknown",code="Unimplemented"}"#;
        assert!(errors.iter().any(|l| l.contains(code)), "{errors:?}");
    }
}
