//! Proto <-> runtime conversions shared by the runtime socket's services.

use std::time::SystemTime;

use strata_runtime::{AnyValue, Ctx, Descriptor};
use tonic::Status;
use tonic::metadata::MetadataMap;

use crate::api::types;
use crate::errors;

/// containerd's namespace header.
pub const NAMESPACE_HEADER: &str = "containerd-namespace";
/// containerd's lease header.
pub const LEASE_HEADER: &str = "containerd-lease";

fn header<'a>(md: &'a MetadataMap, name: &str) -> Option<&'a str> {
    md.get(name).and_then(|v| v.to_str().ok())
}

/// The call's namespace (required) and lease, from its headers.
pub fn ctx(md: &MetadataMap) -> Result<Ctx, Status> {
    Ctx::new(header(md, NAMESPACE_HEADER), header(md, LEASE_HEADER)).map_err(errors::runtime)
}

/// The call's namespace, when it names one (Events.Publish requires it; Subscribe does not).
pub fn namespace(md: &MetadataMap) -> Option<String> {
    header(md, NAMESPACE_HEADER)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

pub fn timestamp(t: SystemTime) -> Option<prost_types::Timestamp> {
    Some(t.into())
}

/// A proto timestamp as a system time (the epoch when absent or invalid).
pub fn system_time(t: Option<prost_types::Timestamp>) -> SystemTime {
    t.and_then(|t| SystemTime::try_from(t).ok())
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

pub fn any_to_proto(a: AnyValue) -> prost_types::Any {
    prost_types::Any {
        type_url: a.type_url,
        value: a.value,
    }
}

pub fn any_from_proto(a: prost_types::Any) -> AnyValue {
    AnyValue {
        type_url: a.type_url,
        value: a.value,
    }
}

pub fn descriptor_to_proto(d: Descriptor) -> types::Descriptor {
    types::Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        annotations: d.annotations.into_iter().collect(),
    }
}

pub fn descriptor_from_proto(d: Option<types::Descriptor>) -> Descriptor {
    let d = d.unwrap_or_default();
    Descriptor {
        media_type: d.media_type,
        digest: d.digest,
        size: d.size,
        annotations: d.annotations.into_iter().collect(),
    }
}

/// Runs blocking runtime work off the async threads, mapping its error.
pub async fn blocking<T, F>(f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> strata_runtime::Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(errors::join)?
        .map_err(errors::runtime)
}

/// Runs blocking runtime work that may wait without bound (a task's Wait) on a thread of its
/// own, never on tokio's blocking pool, whose threads the daemon's exit waits for.
pub async fn on_own_thread<T, F>(name: &str, f: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce() -> strata_runtime::Result<T> + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = tx.send(f());
        })
        .map_err(|e| Status::internal(format!("starting a thread for {name}: {e}")))?;
    rx.await
        .map_err(|_| Status::internal(format!("{name} thread ended without an answer")))?
        .map_err(errors::runtime)
}

/// Mounts of a request.
pub fn mounts(ms: Vec<types::Mount>) -> Vec<strata_snapshotters::Mount> {
    ms.into_iter()
        .map(|m| strata_snapshotters::Mount {
            kind: m.r#type,
            source: m.source,
            target: m.target,
            options: m.options,
        })
        .collect()
}

/// Mounts of a response or event.
pub fn mounts_to_proto(ms: Vec<strata_snapshotters::Mount>) -> Vec<types::Mount> {
    ms.into_iter()
        .map(|m| types::Mount {
            r#type: m.kind,
            source: m.source,
            target: m.target,
            options: m.options,
        })
        .collect()
}
