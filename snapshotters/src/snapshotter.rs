//! The [`Snapshotter`] trait and its value types.

use std::time::SystemTime;

use strata_core::labels::Labels;

use crate::{Error, Result};

/// The longest key or name a snapshot may have: bolt's `MaxKeySize` (32 KiB), which caps
/// containerd's keys.
pub const MAX_KEY_LEN: usize = 32 * 1024;

/// Checks a key or name that is about to name a snapshot (Prepare, View, Commit's name,
/// Update): InvalidArgument when empty or longer than [`MAX_KEY_LEN`] bytes, which containerd
/// (bolt) cannot store either. Lookups need no check: such a key never exists, so they are
/// NotFound as in containerd, and a record an older version let in can still be removed.
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(Error::InvalidArgument(
            "snapshot key must not be empty".into(),
        ));
    }
    if key.len() > MAX_KEY_LEN {
        let head: String = key.chars().take(64).collect();
        return Err(Error::InvalidArgument(format!(
            "snapshot key {head:?}... is {} bytes, longer than {MAX_KEY_LEN}",
            key.len()
        )));
    }
    Ok(())
}

/// What a snapshot is. Only a committed snapshot can be a parent; a view cannot be committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Read-only, made by [`Snapshotter::view`].
    View,
    /// Writable, made by [`Snapshotter::prepare`]; may be committed.
    Active,
    /// Immutable, made by [`Snapshotter::commit`]; the only valid parent.
    Committed,
}

impl Kind {
    /// The name containerd's filters use: `view`, `active`, `committed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::View => "view",
            Kind::Active => "active",
            Kind::Committed => "committed",
        }
    }
}

/// What Stat, Update and Walk return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    /// The key (active/view) or name (committed).
    pub name: String,
    /// The parent's name, empty for none.
    pub parent: String,
    pub kind: Kind,
    pub created: SystemTime,
    pub updated: SystemTime,
    pub labels: Labels,
}

/// Disk resources a snapshot uses, excluding its parents.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes allocated (unique inodes, `st_blocks * 512`).
    pub size: i64,
    pub inodes: i64,
}

/// A mount the client performs to get the snapshot's filesystem (containerd.types.Mount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `bind`, `overlay`, `btrfs`, ...
    pub kind: String,
    pub source: String,
    pub target: String,
    pub options: Vec<String>,
}

/// A snapshotter with containerd's semantics, scoped per *view*.
///
/// # Lifecycle
///
/// Unpacking an image layer by layer:
///
/// ```text
/// prepare(v, "extract-1 sha256:l1", "")        -> mounts of an empty, writable dir
///   (mount, apply layer 1, unmount)
/// commit(v, "sha256:l1", "extract-1 sha256:l1") -> committed "sha256:l1"; the key is gone
/// prepare(v, "extract-2 sha256:l2", "sha256:l1") -> writable on top of l1
/// commit(v, "sha256:l2", "extract-2 sha256:l2")
/// prepare(v, "container-rootfs", "sha256:l2")   -> what a container runs on
/// view(v, "inspect", "sha256:l2")               -> read-only, never committable
/// remove(v, "sha256:l1") -> FailedPrecondition while "sha256:l2" is its child
/// ```
///
/// Keys and names share one key space per view and are opaque strings (spaces, slashes,
/// `sha256:`): never derive a path from one. Every record belongs to the view passed in
/// (`strata_core::PROXY_VIEW` for everything arriving over the proxy socket); Stat, List and
/// Remove see only that view's snapshots.
///
/// Error variants follow containerd (`CONTAINERD.md` §1.3): AlreadyExists for a taken key,
/// NotFound for an unknown key or parent, InvalidArgument for a non-committed parent or a bad
/// Update path, FailedPrecondition for Mounts of a committed snapshot, Commit of a view and
/// Remove of a snapshot with children.
#[async_trait::async_trait]
pub trait Snapshotter: Send + Sync + 'static {
    /// Info of any snapshot (active, view or committed).
    async fn stat(&self, view: &str, key: &str) -> Result<Info>;
    /// Updates labels only (`paths` as containerd: none or `labels` = replace all, `labels.<k>`
    /// = set or delete one); kind, parent and timestamps in `info` are ignored.
    async fn update(&self, view: &str, info: Info, paths: &[String]) -> Result<Info>;
    /// Resources of this snapshot alone (live for active, recorded at Commit for committed).
    async fn usage(&self, view: &str, key: &str) -> Result<Usage>;
    /// Mounts of an active or view snapshot.
    async fn mounts(&self, view: &str, key: &str) -> Result<Vec<Mount>>;
    /// Whether a Prepare of `key` with `labels` would be answered by this backend itself as a
    /// remote snapshotter ([`crate::Layout::remote`]): the daemon then leaves it to the backend
    /// instead of unpacking the layer for containerd.
    fn serves_remotely(&self, _key: &str, _parent: &str, _labels: &Labels) -> bool {
        false
    }
    /// A writable snapshot on top of the committed `parent` (`""` = empty).
    async fn prepare(
        &self,
        view: &str,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Vec<Mount>>;
    /// A read-only snapshot of the committed `parent`.
    async fn view(&self, view: &str, key: &str, parent: &str, labels: Labels)
    -> Result<Vec<Mount>>;
    /// Turns active `key` into committed `name` (same parent); labels are replaced, not inherited.
    async fn commit(&self, view: &str, name: &str, key: &str, labels: Labels) -> Result<()>;
    /// Removes a snapshot without children.
    async fn remove(&self, view: &str, key: &str) -> Result<()>;
    /// Every snapshot of the view matching any of `filters` (containerd's grammar; fields
    /// `name`, `parent`, `kind`, `labels.<k>`). Must not hold locks that Stat needs.
    async fn list(&self, view: &str, filters: &[String]) -> Result<Vec<Info>>;
    /// Removes many snapshots of a view in one step, as a garbage collector's sweep does:
    /// `keys` are ordered children before parents; one result per key (a key with a child that
    /// is not removed before it is FailedPrecondition). The records are gone when this returns;
    /// a backend may delete the data later, in [`Snapshotter::reclaim`].
    async fn remove_many(&self, view: &str, keys: &[String]) -> Result<Vec<Result<()>>> {
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            out.push(self.remove(view, key).await);
        }
        Ok(out)
    }
    /// Deletes the data of snapshots [`Snapshotter::remove_many`] removed (nothing by default).
    async fn reclaim(&self) -> Result<()> {
        Ok(())
    }
    /// Removes resources no snapshot references (orphaned directories after a crash).
    async fn cleanup(&self) -> Result<()>;
    /// Releases resources; idempotent.
    async fn close(&self) -> Result<()>;
}
