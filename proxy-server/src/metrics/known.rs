//! The gRPC methods the two sockets serve: the only paths that get series of their own. Any
//! other path (a made-up method or service) is counted under `unknown`, so the number of series
//! stays bounded whatever clients send.
//!
//! Service names come from the generated servers (`SERVICE_NAME`); the method lists are those of
//! the proto services (`proto/`, checked against them by a test) and of `grpc.health.v1.Health`.

use crate::api;

/// Every served service and its methods.
const KNOWN: &[(&str, &[&str])] = &[
    (
        tonic_health::pb::health_server::SERVICE_NAME,
        &["Check", "Watch"],
    ),
    (
        api::content::content_server::SERVICE_NAME,
        &[
            "Info",
            "Update",
            "List",
            "Delete",
            "Read",
            "Status",
            "ListStatuses",
            "Write",
            "Abort",
        ],
    ),
    (
        api::snapshots::snapshots_server::SERVICE_NAME,
        &[
            "Prepare", "View", "Mounts", "Commit", "Remove", "Stat", "Update", "List", "Usage",
            "Cleanup",
        ],
    ),
    (api::version::version_server::SERVICE_NAME, &["Version"]),
    (
        api::introspection::introspection_server::SERVICE_NAME,
        &["Plugins", "Server"],
    ),
    (
        api::namespaces::namespaces_server::SERVICE_NAME,
        &["Get", "List", "Create", "Update", "Delete"],
    ),
    (
        api::images::images_server::SERVICE_NAME,
        &["Get", "List", "Create", "Update", "Delete"],
    ),
    (
        api::leases::leases_server::SERVICE_NAME,
        &[
            "Create",
            "Delete",
            "List",
            "AddResource",
            "DeleteResource",
            "ListResources",
        ],
    ),
    (
        api::containers::containers_server::SERVICE_NAME,
        &["Get", "List", "ListStream", "Create", "Update", "Delete"],
    ),
    (
        api::events_service::events_server::SERVICE_NAME,
        &["Publish", "Forward", "Subscribe"],
    ),
    (api::diff::diff_server::SERVICE_NAME, &["Apply", "Diff"]),
    (
        api::tasks::tasks_server::SERVICE_NAME,
        &[
            "Create",
            "Start",
            "Delete",
            "DeleteProcess",
            "Get",
            "List",
            "Kill",
            "Exec",
            "ResizePty",
            "CloseIO",
            "Pause",
            "Resume",
            "ListPids",
            "Checkpoint",
            "Update",
            "Metrics",
            "Wait",
        ],
    ),
];

/// The label values of `path` (`/{service}/{method}`) if it is a served method: `'static`,
/// so a known call allocates no label strings either.
pub(super) fn lookup(path: &str) -> Option<(&'static str, &'static str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    let (service, methods) = KNOWN.iter().find(|(s, _)| *s == service)?;
    let method = methods.iter().find(|m| **m == method)?;
    Some((service, method))
}

/// How many methods are known (the most series a family can have, besides `unknown`).
#[cfg(test)]
pub(super) fn count() -> usize {
    KNOWN.iter().map(|(_, m)| m.len()).sum()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `(service, method)` of every `rpc` in the proto files under `dir`.
    fn proto_methods(dir: &std::path::Path, out: &mut BTreeSet<(String, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                proto_methods(&path, out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "proto") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let mut package = String::new();
            let mut service = String::new();
            for line in text.lines().map(str::trim) {
                let word = |l: &str, kw: &str| {
                    let rest = l.strip_prefix(kw)?;
                    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.'));
                    Some(rest[..end.unwrap_or(rest.len())].to_owned())
                };
                if let Some(p) = word(line, "package ") {
                    package = p;
                } else if let Some(s) = word(line, "service ") {
                    service = format!("{package}.{s}");
                } else if let Some(m) = word(line, "rpc ") {
                    out.insert((service.clone(), m));
                }
            }
        }
    }

    #[test]
    fn known_methods_are_the_proto_services() {
        let mut want = BTreeSet::new();
        // At run time, not env!(): the build-time path can be stale (see archive/tests/hostile.rs).
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        proto_methods(&dir.join("proto"), &mut want);
        want.insert(("grpc.health.v1.Health".into(), "Check".into()));
        want.insert(("grpc.health.v1.Health".into(), "Watch".into()));
        let got: BTreeSet<(String, String)> = KNOWN
            .iter()
            .flat_map(|(s, ms)| ms.iter().map(move |m| (s.to_string(), m.to_string())))
            .collect();
        assert_eq!(got, want);
        assert_eq!(count(), want.len(), "no duplicates");
    }

    #[test]
    fn lookup_takes_only_served_methods() {
        let write = "/containerd.services.content.v1.Content/Write";
        let want = ("containerd.services.content.v1.Content", "Write");
        assert_eq!(lookup(write), Some(want));
        assert_eq!(lookup("/grpc.health.v1.Health/Check").unwrap().1, "Check");
        for odd in [
            "/containerd.services.content.v1.Content/Nope",
            "/made.Up/Write",
            "/nomethod",
            "containerd.services.content.v1.Content/Write",
            "/containerd.services.content.v1.Content/Write/extra",
            "",
        ] {
            assert_eq!(lookup(odd), None, "{odd}");
        }
    }
}
