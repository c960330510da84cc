//! The `containerd.io/gc.*` labels (containerd 1.6 `metadata/gc.go`).

use std::time::SystemTime;

use strata_core::labels::Labels;

use super::mark::{Node, Resource};

/// Any value makes a blob or snapshot a root.
pub const ROOT: &str = "containerd.io/gc.root";
/// `…content`, `…content.<x>` or `…content/<x>` = a digest this object keeps.
pub const REF_CONTENT: &str = "containerd.io/gc.ref.content";
/// `…snapshot.<snapshotter>[/<x>]` = a snapshot key this object keeps.
pub const REF_SNAPSHOT: &str = "containerd.io/gc.ref.snapshot.";
/// RFC 3339 time after which a lease no longer holds anything.
pub const EXPIRE: &str = "containerd.io/gc.expire";
/// Any value: the lease holds its snapshots' parent chains only, and its blobs alone.
pub const FLAT: &str = "containerd.io/gc.flat";

/// The nodes `labels` reference in namespace `ns`; `snapshotter` maps a name as written in a
/// label to the backend it names (aliases).
pub fn refs(ns: &str, labels: &Labels, snapshotter: &dyn Fn(&str) -> String) -> Vec<Node> {
    let mut out = Vec::new();
    for (k, v) in labels.range(REF_CONTENT.to_string()..) {
        let Some(rest) = k.strip_prefix(REF_CONTENT) else {
            break;
        };
        if rest.is_empty() || rest.starts_with('.') || rest.starts_with('/') {
            out.push(Node::new(Resource::Content, ns, v.clone()));
        }
    }
    for (k, v) in labels.range(REF_SNAPSHOT.to_string()..) {
        let Some(rest) = k.strip_prefix(REF_SNAPSHOT) else {
            break;
        };
        let name = rest.split('/').next().unwrap_or_default();
        out.push(Node::snapshot(ns, &snapshotter(name), v));
    }
    out
}

/// Whether the labels make their object a root.
pub fn is_root(labels: &Labels) -> bool {
    labels.contains_key(ROOT)
}

/// Whether a lease with these labels has expired at `now` (an unparsable time never expires,
/// as containerd logs and ignores it).
pub fn expired(labels: &Labels, now: SystemTime) -> bool {
    let Some(v) = labels.get(EXPIRE) else {
        return false;
    };
    match v.parse::<prost_types::Timestamp>() {
        Ok(ts) => SystemTime::try_from(ts).is_ok_and(|t| t < now),
        Err(_) => {
            tracing::info!(value = %v, "ignoring invalid lease expiration");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn content_and_snapshot_refs_follow_containerd_separators() {
        let l = labels(&[
            ("containerd.io/gc.ref.content", "sha256:a"),
            ("containerd.io/gc.ref.content.l.0", "sha256:b"),
            ("containerd.io/gc.ref.content/x", "sha256:c"),
            ("containerd.io/gc.ref.contentx", "sha256:no"),
            ("containerd.io/gc.ref.snapshot.overlayfs", "chain"),
            ("containerd.io/gc.ref.snapshot.native/extra", "k2"),
            ("other", "sha256:no"),
        ]);
        let alias = |n: &str| {
            if n == "overlayfs" {
                "strata-overlay".into()
            } else {
                n.to_string()
            }
        };
        let got = refs("ns", &l, &alias);
        let keys: Vec<(Resource, &str)> = got.iter().map(|n| (n.kind, n.key.as_str())).collect();
        assert_eq!(
            keys,
            vec![
                (Resource::Content, "sha256:a"),
                (Resource::Content, "sha256:b"),
                (Resource::Content, "sha256:c"),
                (Resource::Snapshot, "native/k2"),
                (Resource::Snapshot, "strata-overlay/chain"),
            ]
        );
    }

    #[test]
    fn expiry_is_rfc3339_and_bad_values_never_expire() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(2_000_000_000);
        assert!(expired(&labels(&[(EXPIRE, "2020-01-01T00:00:00Z")]), now));
        assert!(!expired(
            &labels(&[(EXPIRE, "2040-01-01T00:00:00+02:00")]),
            now
        ));
        assert!(!expired(&labels(&[(EXPIRE, "tomorrow")]), now));
        assert!(!expired(&labels(&[]), now));
    }
}
