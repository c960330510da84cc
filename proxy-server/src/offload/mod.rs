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
//! the layer the usual way. A Prepare labelled with the chain ID alone (containerd 2.x's
//! Transfer-service import) names its layer through the manifests and configs the view holds
//! ([`chains`]). Layer blobs fetched this way are not kept: containerd's metadata
//! does not know them, and its garbage collector would remove them.

mod chains;
mod staged;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use strata_content::ContentStore;
use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_registry::{ImageRef, Registry};
use strata_runtime::UnpackConfig;
use strata_runtime::chain_id;
use strata_runtime::staging::{PARALLEL_SNAPSHOTTER, move_in};
use strata_snapshotters::{Kind, Snapshotter};

use chains::Found;
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
    chains: chains::Chains,
    staging: staged::Staging,
}

/// The snapshot a Prepare asks for: its name (the chain ID), its parent's name and chain ID.
#[derive(Clone, Copy)]
struct Want<'a> {
    target: &'a str,
    parent: &'a str,
    parent_chain: &'a str,
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
            chains: chains::Chains::default(),
            staging: staged::Staging::default(),
        }
    }

    /// Serves a Prepare on backend `sn` of `view` carrying `containerd.io/snapshot.ref`;
    /// `Ok(true)` when the target now exists (the caller answers AlreadyExists), `Ok(false)`
    /// when containerd should unpack.
    pub async fn serve(
        &self,
        b: &Arc<dyn Snapshotter>,
        sn: &str,
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
        let want = Want {
            target,
            parent,
            parent_chain: &parent_chain,
        };
        let labelled = labels.get(CRI_LAYER).or_else(|| labels.get(STARGZ_LAYER));
        let parallel = sn == PARALLEL_SNAPSHOTTER && self.unpack.parallel;
        let image = match labelled.is_none() || parallel {
            true => self.image_of(view, target).await,
            false => None,
        };
        let registry = self.registry_image(labels);
        let blob = match labelled {
            Some(d) => Digest::parse(d).ok(),
            None => image.as_ref().map(|(layers, at)| layers[*at].blob.clone()),
        };
        if parallel {
            if let Some((layers, at)) = &image {
                self.stage_above(view, &layers[at + 1..], registry.as_ref());
            }
            if let Some(job) = blob.as_ref().and_then(|b| self.staging.take(b)) {
                match self.install(b, view, &want, job).await {
                    Ok(()) => {
                        self.staging.offload_target(sn, labels);
                        return Ok(true);
                    }
                    Err(e) => {
                        tracing::debug!(target, error = %e, "offload: the staged layer is not used")
                    }
                }
            }
        }
        let Some((digest, source)) = blob.and_then(|d| self.source(view, d, registry)) else {
            tracing::debug!(target, ?labels, "offload: no layer digest or source");
            // containerd applies this layer itself: no early staging for it.
            self.staging.client_unpack();
            return Ok(false);
        };
        tracing::debug!(target, %digest, parent, "offload: applying");
        self.staging.offload_target(sn, labels);
        self.apply_as(b, view, &want, &digest, source)
            .await
            .map(|()| true)
    }

    /// Applies layer `digest` and commits it as `want.target` when its diff ID gives that
    /// chain.
    async fn apply_as(
        &self,
        b: &Arc<dyn Snapshotter>,
        view: &str,
        want: &Want<'_>,
        digest: &Digest,
        source: Source,
    ) -> Result<(), String> {
        let Want {
            target,
            parent,
            parent_chain,
        } = *want;
        let key = format!("offload-{:016x} {target}", rand::random::<u64>());
        let mounts = b
            .prepare(view, &key, parent, Labels::new())
            .await
            .map_err(|e| e.to_string())?;
        let res = match self.apply(view, digest, source, mounts).await {
            Ok(diff_id) if chain_id(parent_chain, &diff_id) == *target => {
                self.commit(b, view, target, &key).await
            }
            Ok(diff_id) => Err(format!(
                "layer {digest} gives diff ID {diff_id}, not chain {target}"
            )),
            Err(e) => Err(e),
        };
        if res.is_err()
            && let Err(e) = b.remove(view, &key).await
        {
            tracing::warn!(key, error = %e, "cannot remove an unfinished offload snapshot");
        }
        res
    }

    /// Commits the active `key` as `target`, labelled with its chain ID.
    async fn commit(
        &self,
        b: &Arc<dyn Snapshotter>,
        view: &str,
        target: &str,
        key: &str,
    ) -> Result<(), String> {
        let labels: Labels = BTreeMap::from([(SNAPSHOT_REF.to_string(), target.to_string())]);
        match b.commit(view, target, key, labels).await {
            Ok(()) | Err(strata_snapshotters::Error::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(format!("commit {target}: {e}")),
        }
    }

    /// Starts staging blob `d` that `view` just committed when it looks like a layer
    /// ([`staged`]).
    pub fn blob_committed(&self, view: &str, d: &Digest) {
        self.prestage(view, d);
    }

    /// containerd's own unpack is about to apply a layer itself (a Prepare without a target):
    /// early staging stops, and what it staged is dropped, as that unpack applies every layer
    /// itself ([`staged`]).
    pub fn client_unpack(&self) {
        self.staging.client_unpack();
        self.staging.drop_early();
    }

    /// Makes `target` from a staged tree ([`staged`]) when its diff ID gives that chain.
    async fn install(
        &self,
        b: &Arc<dyn Snapshotter>,
        view: &str,
        want: &Want<'_>,
        job: staged::StageJob,
    ) -> Result<(), String> {
        let Want {
            target,
            parent,
            parent_chain,
        } = *want;
        let staged = job.await.map_err(|e| e.to_string())??;
        if chain_id(parent_chain, &staged.diff_id) != target {
            let msg = format!("staged diff ID {} is not chain {target}", staged.diff_id);
            staged::remove_tree(staged.dir).await;
            return Err(msg);
        }
        tracing::debug!(target, "offload: installing a staged layer");
        let key = format!("offload-{:016x} {target}", rand::random::<u64>());
        let mounts = match b.prepare(view, &key, parent, Labels::new()).await {
            Ok(m) => m,
            Err(e) => {
                staged::remove_tree(staged.dir).await;
                return Err(e.to_string());
            }
        };
        let moved = tokio::task::spawn_blocking(move || {
            let res = move_in(&staged, &mounts);
            if res.is_err() {
                let _ = std::fs::remove_dir_all(&staged.dir);
            }
            res
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|r| r.map_err(|e| e.to_string()));
        let res = match moved {
            Ok(()) => self.commit(b, view, target, &key).await,
            Err(e) => Err(e),
        };
        if res.is_err()
            && let Err(e) = b.remove(view, &key).await
        {
            tracing::warn!(key, error = %e, "cannot remove an unfinished offload snapshot");
        }
        res
    }

    /// The layers of the image whose chain `target` is, when the view holds its manifest
    /// and config.
    async fn image_of(&self, view: &str, target: &str) -> Option<Found> {
        let (this, view, target) = (self.clone(), view.to_string(), target.to_string());
        tokio::task::spawn_blocking(move || this.chains.find(&this.content, &view, &target))
            .await
            .ok()?
    }

    /// The image the Prepare's labels name, when its registry is one fetched from.
    fn registry_image(&self, labels: &Labels) -> Option<ImageRef> {
        let image = labels.get(CRI_IMAGE).or_else(|| labels.get(STARGZ_IMAGE))?;
        let image = ImageRef::parse(image)?;
        self.sources.contains(&image.host).then_some(image)
    }

    /// Where to read layer `digest`: the store when `view` holds it, else `registry`.
    fn source(
        &self,
        view: &str,
        digest: Digest,
        registry: Option<ImageRef>,
    ) -> Option<(Digest, Source)> {
        if self.content.info(view, &digest).is_ok() {
            return Some((digest, Source::Store));
        }
        registry.map(|image| (digest, Source::Registry(image)))
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
