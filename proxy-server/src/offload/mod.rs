//! Unpack offload for a stock containerd (proxy mode): containerd's remote-snapshotter protocol
//! (`CONTAINERD.md` §4.5) answered with Strata's own engine.
//!
//! When containerd's unpacker (the Go client's `Pull` with unpack — what its CRI plugin runs for
//! kubelet —, `ctr-remote image rpull`, containerd 2.x's Transfer service) prepares a layer with
//! `containerd.io/snapshot.ref = <chain ID>`, Strata applies the layer itself — from its content
//! store when the blob is there, else streamed from the registry the Prepare labels name
//! (`containerd.io/snapshot/cri.image-ref` + `cri.layer-digest`, or stargz's
//! `remote/stargz.reference` + `stargz.digest`) — verifies the blob digest and the chain ID the
//! applied diff ID gives, commits the snapshot under the chain ID with that label, and answers
//! AlreadyExists: containerd then skips fetching and applying the layer. Whenever Strata cannot
//! (no layer digest, no source, a digest mismatch), it answers as before and containerd unpacks
//! the layer the usual way. Layer blobs fetched this way are not kept: containerd's metadata
//! does not know them, and its garbage collector would remove them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use strata_content::ContentStore;
use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_registry::{ImageRef, Registry};
use strata_runtime::UnpackConfig;
use strata_snapshotters::{Kind, Snapshotter};
use tokio::runtime::Handle;

/// The label naming the snapshot a Prepare is meant to become.
pub const SNAPSHOT_REF: &str = "containerd.io/snapshot.ref";
const CRI_IMAGE: &str = "containerd.io/snapshot/cri.image-ref";
const CRI_LAYER: &str = "containerd.io/snapshot/cri.layer-digest";
const STARGZ_IMAGE: &str = "containerd.io/snapshot/remote/stargz.reference";
const STARGZ_LAYER: &str = "containerd.io/snapshot/remote/stargz.digest";

/// The `[offload]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffloadConfig {
    pub enabled: bool,
    /// Registries (`host:port`) fetched from over plain HTTP.
    pub insecure_registries: Vec<String>,
}

impl Default for OffloadConfig {
    fn default() -> Self {
        OffloadConfig {
            enabled: true,
            insecure_registries: Vec::new(),
        }
    }
}

/// What serving a Prepare needs.
#[derive(Clone)]
pub struct Offload {
    content: ContentStore,
    registry: Registry,
    /// The registries fetched from (`host[:port]`).
    sources: Vec<String>,
    scratch: PathBuf,
    unpack: UnpackConfig,
}

/// Where a layer's bytes come from.
enum Source {
    Store,
    Registry(ImageRef),
}

impl Offload {
    /// The offload over `content`, fetching with `registry` from the registries its
    /// configuration names (plain-HTTP hosts and `[registry.hosts]`): any other image's
    /// layers go containerd's own way.
    pub fn new(
        content: ContentStore,
        registry: Registry,
        scratch: PathBuf,
        unpack: UnpackConfig,
    ) -> Self {
        let c = registry.config();
        let sources = c.plain_http.iter().chain(c.hosts.keys()).cloned().collect();
        Offload {
            content,
            registry,
            sources,
            scratch,
            unpack,
        }
    }

    /// Serves a Prepare of `view` carrying `containerd.io/snapshot.ref`; `Ok(true)` when the
    /// target now exists (the caller answers AlreadyExists), `Ok(false)` when containerd
    /// should unpack.
    pub async fn serve(
        &self,
        b: &Arc<dyn Snapshotter>,
        view: &str,
        parent: &str,
        labels: &Labels,
    ) -> Result<bool, String> {
        let Some(target) = labels.get(SNAPSHOT_REF) else {
            return Ok(false);
        };
        if let Ok(info) = b.stat(view, target).await {
            let same = info.kind == Kind::Committed && info.parent == parent;
            tracing::debug!(target, same, "offload: the target exists");
            return Ok(same);
        }
        let Some((digest, source)) = self.locate(view, labels) else {
            tracing::debug!(target, ?labels, "offload: no layer digest or source");
            return Ok(false);
        };
        let parent_chain = match parent {
            "" => String::new(),
            p => match b
                .stat(view, p)
                .await
                .ok()
                .and_then(|i| i.labels.get(SNAPSHOT_REF).cloned())
            {
                Some(c) => c,
                None => {
                    tracing::debug!(target, parent = p, "offload: the parent has no chain ID");
                    return Ok(false);
                }
            },
        };
        tracing::debug!(target, %digest, parent, "offload: applying");
        let key = format!("offload-{:016x} {target}", rand::random::<u64>());
        let mounts = b
            .prepare(view, &key, parent, Labels::new())
            .await
            .map_err(|e| e.to_string())?;
        let applied = self.apply(view, &digest, source, mounts).await;
        let res = match applied {
            Ok(diff_id) if chain_id(&parent_chain, &diff_id) == *target => {
                let labels: Labels = BTreeMap::from([(SNAPSHOT_REF.to_string(), target.clone())]);
                match b.commit(view, target, &key, labels).await {
                    Ok(()) => return Ok(true),
                    Err(strata_snapshotters::Error::AlreadyExists(_)) => Ok(true),
                    Err(e) => Err(format!("commit {target}: {e}")),
                }
            }
            Ok(diff_id) => Err(format!(
                "layer {digest} gives diff ID {diff_id}, not chain {target}"
            )),
            Err(e) => Err(e),
        };
        if let Err(e) = b.remove(view, &key).await {
            tracing::warn!(key, error = %e, "cannot remove an unfinished offload snapshot");
        }
        res
    }

    /// The layer digest and where to read it (the store when `view` holds the blob).
    fn locate(&self, view: &str, labels: &Labels) -> Option<(Digest, Source)> {
        let digest = labels.get(CRI_LAYER).or_else(|| labels.get(STARGZ_LAYER))?;
        let digest = Digest::parse(digest).ok()?;
        if self.content.info(view, &digest).is_ok() {
            return Some((digest, Source::Store));
        }
        let image = labels.get(CRI_IMAGE).or_else(|| labels.get(STARGZ_IMAGE))?;
        let image = ImageRef::parse(image)?;
        self.sources
            .contains(&image.host)
            .then_some((digest, Source::Registry(image)))
    }

    /// Applies the layer to the snapshot `mounts` describe; returns its diff ID.
    async fn apply(
        &self,
        view: &str,
        digest: &Digest,
        source: Source,
        mounts: Vec<strata_snapshotters::Mount>,
    ) -> Result<String, String> {
        let this = self.clone();
        let digest = digest.clone();
        let view = view.to_string();
        let rt = Handle::current();
        tokio::task::spawn_blocking(move || {
            let applied = match source {
                Source::Store => {
                    let r = this
                        .content
                        .reader(&view, &digest)
                        .map_err(|e| e.to_string())?;
                    strata_runtime::diff::apply_to_mounts(
                        r.stream(),
                        &mounts,
                        &this.scratch,
                        &this.unpack,
                    )
                }
                Source::Registry(image) => {
                    let body = this
                        .registry
                        .open_blob(&rt, &image, &digest.to_string())
                        .map_err(|e| e.to_string())?;
                    strata_runtime::diff::apply_to_mounts(
                        body,
                        &mounts,
                        &this.scratch,
                        &this.unpack,
                    )
                }
            }
            .map_err(|e| e.to_string())?;
            if applied.compressed.digest != digest.to_string() {
                return Err(format!(
                    "layer {digest} read as {}",
                    applied.compressed.digest
                ));
            }
            Ok(applied.uncompressed.digest)
        })
        .await
        .map_err(|e| e.to_string())?
    }
}

/// The OCI chain ID of a layer with diff ID `diff` on the chain `parent` (empty for none).
pub fn chain_id(parent: &str, diff: &str) -> String {
    if parent.is_empty() {
        return diff.to_string();
    }
    use sha2::Digest as _;
    let h = sha2::Sha256::digest(format!("{parent} {diff}").as_bytes());
    format!("sha256:{}", hex::encode(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        assert_eq!(chain_id("", "sha256:aa"), "sha256:aa");
        // sha256("sha256:aa sha256:bb")
        assert_eq!(
            chain_id("sha256:aa", "sha256:bb"),
            format!(
                "sha256:{}",
                hex::encode(<sha2::Sha256 as sha2::Digest>::digest(
                    b"sha256:aa sha256:bb"
                ))
            )
        );
    }
}
