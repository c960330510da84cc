//! Parallel unpack onto `strata-overlay`, made on the client unpack's `Stat(chain ID)`.
//!
//! containerd 1.6's client unpack (`ctr images pull` and `import`: `image.Unpack`) applies an
//! image's layers one after another: for each, `Stat(chain ID)`, and when the snapshot is
//! missing, Prepare, Diff.Apply and Commit(chain ID), all under the unpack's lease. Overlay
//! layers are independent directories, so on the first `Stat` that misses (under a lease, the
//! chain ID of a layer of an image in the namespace whose blobs are all here, its parent
//! present) Strata applies that layer and every one above it at once, each into a staging
//! directory of its own, then in order prepares each snapshot, moves the staged tree in as its
//! upper directory and commits it under its chain ID — what the client's own calls would have
//! made — and labels each blob with `containerd.io/uncompressed` as the client would have. The
//! client then finds every layer and applies none.
//!
//! A staged layer cannot read the layers below it: one that would need them (a hard link to a
//! file only they have, a parent directory it does not carry: [`strata_archive::Options::lower_unknown`]), or
//! whose digests do not match, stops the run there, and the client applies it and the rest the
//! usual way. Off: `[unpack] parallel = false`.

use std::path::{Path, PathBuf};

use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_snapshotters::Info;
use tokio::task::JoinHandle;

use crate::chain::{ChainLayer, chain_id, chain_layers};
use crate::diff::UNCOMPRESSED;
use crate::staging::{self, PARALLEL_SNAPSHOTTER, STAGING_DIR, Staged, StopFlag, move_in};
use crate::{Ctx, Error, Result, Runtime};

/// How many images (newest first) a lookup reads at most.
const MAX_IMAGES: usize = 64;

/// A layer to stage.
type Layer = ChainLayer;

/// `staged` when its diff ID gives `layer`'s chain ID.
fn checked(layer: &Layer, staged: Staged) -> Result<Staged> {
    if chain_id(&layer.parent, &staged.diff_id) != layer.chain {
        return Err(Error::FailedPrecondition(format!(
            "layer {} has diff ID {}, which is not chain {}",
            layer.blob, staged.diff_id, layer.chain
        )));
    }
    Ok(staged)
}

/// The tree an early staging made, moved to `dir` (under the unpack's staging root, which is
/// removed whatever happens); `None` when it failed (the layer is staged again, e.g. a bottom
/// layer that an early staging, not knowing its place, applied as an upper one).
async fn taken(job: JoinHandle<Result<Staged>>, dir: &Path) -> Option<Staged> {
    let mut staged = match job.await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "early staging failed: staging again");
            return None;
        }
        Err(_) => return None,
    };
    let (from, to) = (staged.dir.clone(), dir.to_path_buf());
    let moved = tokio::task::spawn_blocking(move || std::fs::rename(&from, &to)).await;
    if !matches!(moved, Ok(Ok(()))) {
        let from = staged.dir.clone();
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(from)).await;
        return None;
    }
    staged.dir = dir.to_path_buf();
    Some(staged)
}

impl Runtime {
    /// The directory staged layers are applied in ([`STAGING_DIR`] under the scratch
    /// directory, on the same filesystem as the snapshots).
    pub(crate) fn staging_dir(&self) -> PathBuf {
        self.scratch().join(STAGING_DIR)
    }

    /// Unpacks `chain` and the layers above it on backend `sn` (canonical name `name`) when it
    /// is a layer of an image in the namespace as the module docs describe; its info when it
    /// now exists.
    pub(crate) async fn parallel_stat(
        &self,
        ctx: &Ctx,
        sn: &str,
        name: &str,
        chain: &str,
    ) -> Result<Option<Info>> {
        if !self.unpack_config().parallel || name != PARALLEL_SNAPSHOTTER || ctx.lease.is_none() {
            return Ok(None);
        }
        let (rt, c, ch) = (self.clone(), ctx.clone(), chain.to_string());
        let found = tokio::task::spawn_blocking(move || rt.layers_from(&c, &ch))
            .await
            .map_err(|e| Error::Internal(format!("layer lookup: {e}")))??;
        let Some(layers) = found else {
            return Ok(None);
        };
        let (_, b) = self.snapshotter(sn)?;
        let view = ctx.view();
        if !layers[0].parent.is_empty() && b.stat(&view, &layers[0].parent).await.is_err() {
            return Ok(None);
        }
        let root = self
            .staging_dir()
            .join(format!("unpack-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::Internal(format!("creating {}: {e}", root.display())))?;
        tracing::debug!(chain, layers = layers.len(), "parallel unpack");
        let mut jobs = self.stage_all(ctx, &layers, &root).into_iter();
        let mut labelled = Vec::new();
        for (layer, job) in layers.iter().zip(jobs.by_ref()) {
            let staged = job
                .await
                .map_err(|e| Error::Internal(format!("staging: {e}")))
                .and_then(|r| r);
            let res = match staged {
                Ok(s) => {
                    let diff_id = s.diff_id.clone();
                    self.install(ctx, sn, layer, s).await.map(|()| diff_id)
                }
                Err(e) => Err(e),
            };
            match res {
                Ok(diff_id) => labelled.push((layer.blob.clone(), diff_id)),
                Err(e) => {
                    tracing::info!(chain = %layer.chain, error = %e, "parallel unpack stops: the client applies this layer");
                    break;
                }
            }
        }
        // Staging jobs past a failure finish in the background; then the staging root goes.
        let rest: Vec<_> = jobs.collect();
        tokio::spawn(async move {
            for j in rest {
                let _ = j.await;
            }
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&root)).await;
        });
        if labelled.is_empty() {
            return Ok(None);
        }
        let (rt, c) = (self.clone(), ctx.clone());
        tokio::task::spawn_blocking(move || rt.label_uncompressed(&c, &labelled))
            .await
            .map_err(|e| Error::Internal(format!("labelling: {e}")))??;
        Ok(b.stat(&view, chain).await.ok())
    }

    /// Starts applying every layer into `root/<i>`, at most [`staging::workers`] at once, in order. A
    /// layer staged while its blob was written ([`crate::prestage`]) is taken as it is.
    fn stage_all(
        &self,
        ctx: &Ctx,
        layers: &[Layer],
        root: &Path,
    ) -> Vec<JoinHandle<Result<Staged>>> {
        layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let (rt, c, l) = (self.clone(), ctx.clone(), layer.clone());
                let dir = root.join(i.to_string());
                let early = self.take_prestaged(&layer.blob);
                tokio::spawn(async move {
                    if let Some(job) = early
                        && let Some(staged) = taken(job, &dir).await
                    {
                        return checked(&l, staged);
                    }
                    let lower_unknown = !l.parent.is_empty();
                    let staged = rt
                        .stage_async(&c, &l.blob, &dir, lower_unknown, StopFlag::default())
                        .await?;
                    checked(&l, staged)
                })
            })
            .collect()
    }

    /// Applies layer `blob` of the namespace into the new directory `dir` for an overlay upper
    /// directory, its blob digest checked ([`staging::stage_on_worker`]); it fails at its next
    /// read of the blob once `stop` is set.
    pub(crate) async fn stage_async(
        &self,
        ctx: &Ctx,
        blob: &Digest,
        dir: &Path,
        lower_unknown: bool,
        stop: StopFlag,
    ) -> Result<Staged> {
        let (rt, c, b) = (self.clone(), ctx.clone(), blob.clone());
        let open = move || Ok(rt.content().reader(&c, &b)?.stream());
        let cfg = self.unpack_config().clone();
        staging::stage_on_worker(
            open,
            blob.clone(),
            dir.to_path_buf(),
            lower_unknown,
            cfg,
            stop,
        )
        .await
    }

    /// Prepares `layer`'s snapshot, moves the staged tree in as its upper directory and
    /// commits it under the chain ID; the active snapshot goes again on any failure.
    async fn install(&self, ctx: &Ctx, sn: &str, layer: &Layer, staged: Staged) -> Result<()> {
        let snaps = self.snapshots();
        let key = format!(
            "extract-parallel-{:016x} {}",
            rand::random::<u64>(),
            layer.chain
        );
        let mounts = snaps
            .prepare(ctx, sn, &key, &layer.parent, Labels::new())
            .await?;
        let moved = tokio::task::spawn_blocking(move || move_in(&staged, &mounts))
            .await
            .map_err(|e| Error::Internal(format!("moving a staged layer: {e}")))
            .and_then(|r| r);
        let res = match moved {
            Ok(()) => {
                snaps
                    .commit(ctx, sn, &layer.chain, &key, Labels::new())
                    .await
            }
            Err(e) => Err(e),
        };
        match res {
            Ok(()) => Ok(()),
            Err(e) => {
                if let Err(r) = snaps.remove(ctx, sn, &key).await {
                    tracing::warn!(key, error = %r, "cannot remove an unfinished unpack snapshot");
                }
                // Another unpack of the same image committed it first: the layer is there.
                match e {
                    Error::AlreadyExists(_) => Ok(()),
                    e => Err(e),
                }
            }
        }
    }

    /// Sets `containerd.io/uncompressed` on each applied blob, as the client's unpack does for
    /// the layers it applies (blocking).
    fn label_uncompressed(&self, ctx: &Ctx, applied: &[(Digest, String)]) -> Result<()> {
        let path = [format!("labels.{UNCOMPRESSED}")];
        for (blob, diff_id) in applied {
            let labels: Labels = [(UNCOMPRESSED.to_string(), diff_id.clone())].into();
            self.content().update(ctx, blob, &labels, &path)?;
        }
        Ok(())
    }

    /// The layers from `chain` up of the newest image in the namespace that has that chain ID,
    /// when it has at least one more above it and the namespace holds every blob (blocking).
    fn layers_from(&self, ctx: &Ctx, chain: &str) -> Result<Option<Vec<Layer>>> {
        let mut images = self.images().list(ctx, &[])?;
        // The image being unpacked was just created or updated.
        images.sort_by(|a, b| b.updated.cmp(&a.updated));
        for img in images.iter().take(MAX_IMAGES) {
            let Ok(d) = img.target.digest.parse::<Digest>() else {
                continue;
            };
            let mut manifests = Vec::new();
            self.manifests_of(ctx, &d, &mut manifests);
            for (_, m) in manifests {
                let Some(all) = self.image_layers(ctx, &m) else {
                    continue;
                };
                let Some(at) = all.iter().position(|l| l.chain == chain) else {
                    continue;
                };
                let from = all[at..].to_vec();
                // A blob still being filled from its registry (a pull through this socket)
                // counts: its reader waits for the fill.
                let content = self.content();
                if from.len() >= 2 && from.iter().all(|l| content.info(ctx, &l.blob).is_ok()) {
                    return Ok(Some(from));
                }
            }
        }
        Ok(None)
    }

    /// Every layer of manifest `m` with its chain ID (config `rootfs.diff_ids`).
    fn image_layers(&self, ctx: &Ctx, m: &serde_json::Value) -> Option<Vec<Layer>> {
        let config: Digest = m.get("config")?.get("digest")?.as_str()?.parse().ok()?;
        let config = self.json_blob(ctx, &config)?;
        let diffs = config.get("rootfs")?.get("diff_ids")?.as_array()?;
        let diffs: Option<Vec<&str>> = diffs.iter().map(|d| d.as_str()).collect();
        let blobs: Option<Vec<Digest>> = m
            .get("layers")?
            .as_array()?
            .iter()
            .map(|l| l.get("digest")?.as_str()?.parse().ok())
            .collect();
        let (diffs, blobs) = (diffs?, blobs?);
        (diffs.len() == blobs.len()).then(|| chain_layers(&diffs, &blobs))
    }
}
