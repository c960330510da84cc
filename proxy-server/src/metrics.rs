//! Prometheus metrics: per-RPC counts, errors and latencies, content bytes in and out, and
//! snapshots per backend and kind. Recorded always (a few atomics per call); exported only when
//! `--metrics-address` is set, as the Prometheus text format (0.0.4) on `GET /metrics`.
//!
//! Exported families (counters get `_total` on the wire):
//! * `strata_grpc_requests_total{service,method}`: calls received;
//! * `strata_grpc_errors_total{service,method,code}`: calls that ended with a non-OK status,
//!   by gRPC code name (`NotFound`, `AlreadyExists`, ...);
//! * `strata_grpc_request_duration_seconds{service,method}`: time from the request to the
//!   response headers. For unary calls that is the whole handler; for the streaming calls (List,
//!   Read, Write) it is the time to open the stream, each stream counts once;
//! * `strata_content_ingested_bytes_total`: Write data accepted;
//! * `strata_content_read_bytes_total`: Read data served;
//! * `strata_snapshots{view,backend,kind}`: snapshots of each proxy socket's view (`proxy` for
//!   `--address`, `proxy/<name>` for each `[[proxy]]`), listed at scrape time.
//!
//! Only the methods the sockets serve get their own `service`/`method` labels; every other path
//! is counted as `service="unknown",method="unknown"` (see [`known`]), so made-up method names
//! cannot grow the number of series (memory is spent even with the endpoint off).

mod http;
mod known;
mod layer;

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use strata_snapshotters::{Kind, Snapshotter};

pub use http::serve;
pub use layer::RpcMetricsLayer;

/// The snapshot backends whose contents the scrape reports, by name.
pub type Backends = BTreeMap<String, Arc<dyn Snapshotter>>;

/// One gRPC method: `/{service}/{method}`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    service: String,
    method: String,
}

/// A failed call: its method and gRPC code name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    service: String,
    method: String,
    code: String,
}

/// Snapshots of one kind in one backend, in one proxy socket's view.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SnapshotLabels {
    view: String,
    backend: String,
    kind: &'static str,
}

type LatencyFamily = Family<RpcLabels, Histogram, fn() -> Histogram>;

/// Every metric of the process and the registry that encodes them.
struct Metrics {
    registry: Registry,
    requests: Family<RpcLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    latency: LatencyFamily,
    ingested: Counter,
    read: Counter,
    snapshots: Family<SnapshotLabels, Gauge>,
}

/// 0.5 ms to ~16 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

impl Metrics {
    fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("strata"),
            requests: Family::default(),
            errors: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            ingested: Counter::default(),
            read: Counter::default(),
            snapshots: Family::default(),
        };
        let grpc = m.registry.sub_registry_with_prefix("grpc");
        grpc.register("requests", "gRPC calls received", m.requests.clone());
        grpc.register(
            "errors",
            "gRPC calls ended with a non-OK status, by code",
            m.errors.clone(),
        );
        grpc.register(
            "request_duration_seconds",
            "Time from a gRPC request to its response headers (streams: time to open)",
            m.latency.clone(),
        );
        let content = m.registry.sub_registry_with_prefix("content");
        content.register(
            "ingested_bytes",
            "Content bytes received by Write",
            m.ingested.clone(),
        );
        content.register("read_bytes", "Content bytes served by Read", m.read.clone());
        m.registry.register(
            "snapshots",
            "Snapshots of each proxy socket's view by backend and kind (listed at scrape time)",
            m.snapshots.clone(),
        );
        m
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// Counts `n` bytes of Write data accepted.
pub fn add_ingested(n: usize) {
    METRICS.ingested.inc_by(n as u64);
}

/// Counts `n` bytes of Read data served.
pub fn add_read(n: usize) {
    METRICS.read.inc_by(n as u64);
}

/// The label value of every path that is not a served method.
const UNKNOWN: &str = "unknown";

/// The labels of a gRPC path `/package.Service/Method`: its service and method if served,
/// else [`UNKNOWN`] for both.
fn rpc_labels(path: &str) -> RpcLabels {
    let (service, method) = known::lookup(path).unwrap_or((UNKNOWN, UNKNOWN));
    RpcLabels {
        service: service.to_string(),
        method: method.to_string(),
    }
}

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::View => "view",
        Kind::Active => "active",
        Kind::Committed => "committed",
    }
}

/// Recounts the snapshot gauge from the backends' `views`. A backend that fails to list keeps
/// no series for that view (and is logged).
async fn refresh_snapshots(backends: &Backends, views: &[String]) {
    let mut counts: Vec<(SnapshotLabels, i64)> = Vec::new();
    for view in views {
        for (name, b) in backends {
            let infos = match b.list(view, &[]).await {
                Ok(infos) => infos,
                Err(e) => {
                    tracing::warn!(%view, backend = %name, error = %e, "metrics: listing snapshots");
                    continue;
                }
            };
            for kind in [Kind::View, Kind::Active, Kind::Committed] {
                let n = infos.iter().filter(|i| i.kind == kind).count();
                let labels = SnapshotLabels {
                    view: view.clone(),
                    backend: name.clone(),
                    kind: kind_name(kind),
                };
                counts.push((labels, n as i64));
            }
        }
    }
    METRICS.snapshots.clear();
    for (labels, n) in counts {
        METRICS.snapshots.get_or_create(&labels).set(n);
    }
}

/// The text exposition of every metric, the snapshot gauge of `views` freshly counted.
pub async fn render(backends: &Backends, views: &[String]) -> String {
    refresh_snapshots(backends, views).await;
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &METRICS.registry)
        .expect("writing to a String cannot fail");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_paths_split_into_service_and_method() {
        let l = rpc_labels("/containerd.services.content.v1.Content/Write");
        assert_eq!(l.service, "containerd.services.content.v1.Content");
        assert_eq!(l.method, "Write");
        for odd in [
            "/nomethod",
            "/made.Up/Write",
            "/containerd.services.content.v1.Content/X",
        ] {
            let l = rpc_labels(odd);
            assert_eq!((l.service.as_str(), l.method.as_str()), (UNKNOWN, UNKNOWN));
        }
    }

    #[test]
    fn counters_get_total_and_histograms_their_buckets() {
        add_ingested(3);
        let labels = rpc_labels("/containerd.services.version.v1.Version/Version");
        METRICS.latency.get_or_create(&labels).observe(0.01);
        let mut out = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut out, &METRICS.registry).unwrap();
        assert!(
            out.contains("# TYPE strata_content_ingested_bytes_total counter"),
            "{out}"
        );
        let bucket = r#"strata_grpc_request_duration_seconds_bucket{service="containerd.services.version.v1.Version",method="Version",le="0.016"} 1"#;
        assert!(out.contains(bucket), "{out}");
    }
}
