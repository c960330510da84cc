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
//! file only they have, a parent directory it does not carry: [`Options::lower_unknown`]), or
//! whose digests do not match, stops the run there, and the client applies it and the rest the
//! usual way. Off: `[unpack] parallel = false`.

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use strata_archive::{Options, Whiteouts};
use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_snapshotters::{Info, Mount};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::diff::UNCOMPRESSED;
use crate::lazy_stat::chain_id;
use crate::{Ctx, Error, Result, Runtime};

/// The backend whose layers are independent directories.
pub const PARALLEL_SNAPSHOTTER: &str = "strata-overlay";
/// What `strata-overlay`'s mounts honour for an opaque directory (it never mounts `userxattr`).
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// How many images (newest first) a lookup reads at most.
const MAX_IMAGES: usize = 64;

/// A layer to stage: its blob, its chain ID and that of the layers below it.
#[derive(Debug, Clone)]
struct Layer {
    blob: Digest,
    chain: String,
    parent: String,
}

/// A layer applied into a staging directory.
#[derive(Debug)]
pub(crate) struct Staged {
    pub(crate) dir: PathBuf,
    diff_id: String,
    root_entry: bool,
}

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

/// Where staging directories go, under the scratch directory (`<root>/tmp/staging`). Nothing is
/// ever mounted there: the daemon removes it whole at start.
pub const STAGING_DIR: &str = "staging";

/// Layers applied at once, process-wide: one per core (each application is itself a pipeline
/// of three threads).
fn workers() -> Arc<Semaphore> {
    static SEM: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SEM.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(n))
    })
    .clone()
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

    /// Starts applying every layer into `root/<i>`, at most [`workers`] at once, in order. A
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
                    let staged = rt.stage_async(&c, &l.blob, &dir, lower_unknown).await?;
                    checked(&l, staged)
                })
            })
            .collect()
    }

    /// [`Runtime::stage`] on a blocking thread once one of the [`workers`] is free.
    pub(crate) async fn stage_async(
        &self,
        ctx: &Ctx,
        blob: &Digest,
        dir: &Path,
        lower_unknown: bool,
    ) -> Result<Staged> {
        let _p = workers()
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(e.to_string()))?;
        let (rt, c, b, d) = (self.clone(), ctx.clone(), blob.clone(), dir.to_path_buf());
        tokio::task::spawn_blocking(move || rt.stage(&c, &b, &d, lower_unknown))
            .await
            .map_err(|e| Error::Internal(format!("staging: {e}")))?
    }

    /// Applies layer `blob` of the namespace into the new directory `dir` for an overlay upper
    /// directory (blocking), its blob digest checked.
    fn stage(&self, ctx: &Ctx, blob: &Digest, dir: &Path, lower_unknown: bool) -> Result<Staged> {
        let io = |e: std::io::Error| Error::Internal(format!("staging in {}: {e}", dir.display()));
        std::fs::create_dir(dir).map_err(io)?;
        let res = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
            .map_err(io)
            .and_then(|()| self.stage_into(ctx, blob, dir, lower_unknown));
        if res.is_err() {
            let _ = std::fs::remove_dir_all(dir);
        }
        res
    }

    fn stage_into(
        &self,
        ctx: &Ctx,
        blob: &Digest,
        dir: &Path,
        lower_unknown: bool,
    ) -> Result<Staged> {
        let whiteouts = Whiteouts::Overlay {
            opaque_xattr: OPAQUE_XATTR.into(),
        };
        let opts = Options {
            lower_unknown,
            ..self.unpack_config().options(whiteouts, Vec::new())
        };
        let reader = self.content().reader(ctx, blob)?;
        let applied = strata_archive::apply(reader.stream(), dir, &opts)?;
        if applied.compressed.digest != blob.to_string() {
            return Err(Error::FailedPrecondition(format!(
                "layer {blob} read as {}",
                applied.compressed.digest
            )));
        }
        Ok(Staged {
            dir: dir.to_path_buf(),
            diff_id: applied.uncompressed.digest,
            root_entry: applied.root_entry,
        })
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
        let layers = m.get("layers")?.as_array()?;
        if diffs.len() != layers.len() {
            return None;
        }
        let mut parent = String::new();
        let mut out = Vec::with_capacity(layers.len());
        for (diff, layer) in diffs.iter().zip(layers) {
            let chain = chain_id(&parent, diff.as_str()?);
            out.push(Layer {
                blob: layer.get("digest")?.as_str()?.parse().ok()?,
                chain: chain.clone(),
                parent,
            });
            parent = chain;
        }
        Some(out)
    }
}

/// The upper directory of an active overlay snapshot's mounts (a bind mount's source when it
/// has no parent).
fn upper_dir(mounts: &[Mount]) -> Result<PathBuf> {
    match mounts {
        [m] if m.kind == "bind" => Ok(PathBuf::from(&m.source)),
        [m] if m.kind == "overlay" => m
            .options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir="))
            .map(PathBuf::from)
            .ok_or_else(|| Error::Internal("an overlay mount without upperdir".into())),
        _ => Err(Error::Internal(format!(
            "unexpected mounts for an overlay snapshot: {mounts:?}"
        ))),
    }
}

/// Replaces the snapshot's empty upper directory with the staged tree (blocking). Unless the
/// layer set the root's attributes (a `./` entry), the root keeps those Prepare gave it.
fn move_in(staged: &Staged, mounts: &[Mount]) -> Result<()> {
    let upper = upper_dir(mounts)?;
    let io =
        |what: &str, e: std::io::Error| Error::Internal(format!("{what} {}: {e}", upper.display()));
    if !staged.root_entry {
        let md = std::fs::symlink_metadata(&upper).map_err(|e| io("stat", e))?;
        std::os::unix::fs::lchown(&staged.dir, Some(md.uid()), Some(md.gid()))
            .map_err(|e| io("chown for", e))?;
        std::fs::set_permissions(
            &staged.dir,
            std::fs::Permissions::from_mode(md.mode() & 0o7777),
        )
        .map_err(|e| io("chmod for", e))?;
    }
    // rename(2) replaces an empty directory in one step.
    std::fs::rename(&staged.dir, &upper).map_err(|e| io("moving a staged layer to", e))
}
