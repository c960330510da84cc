//! Layers applied ahead of containerd's Prepares, on `strata-overlay` (whose layers are
//! independent directories), each into a staging directory ([`strata_runtime::staging`]).
//!
//! containerd's unpacker prepares an image's layers one after another, each once the one below
//! it exists. Two things start layers earlier:
//! - **Above**: when the offload serves a layer of an image whose manifest and config the view
//!   holds ([`super::chains`]), every layer above it not staged yet starts staging (from the
//!   store, or from the registry the Prepare names).
//! - **Early**: while containerd writes an import's blobs, each committed blob that looks like
//!   a layer starts staging at once — only while the last layer the offload served was an
//!   import's (not a pull's) onto `strata-overlay` and containerd applied none itself since
//!   (containerd 1.6's `ctr images import`, 2.x's `ctr images pull --local`: a tree staged
//!   for them would be wasted), within [`BUDGET`](staging::BUDGET) bytes of blobs.
//!
//! At most one layer per core is applied at once. The Prepare of a staged layer takes its tree:
//! it prepares the snapshot, moves the tree in as the upper directory and commits it once the
//! diff ID gives the chain ID asked for. A staging that fails (a layer that needs the ones
//! below it) or is not taken within [`KEEP`] is dropped, and the layer goes the usual way; the
//! early ones are stopped and dropped at once when the offload serves another backend or
//! containerd's own unpack begins, as no Prepare will take them then.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_registry::ImageRef;
use strata_runtime::staging::{self, Jobs, KEEP, PARALLEL_SNAPSHOTTER, Staged, StopFlag, is_layer};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::chains::ChainLayer;
use super::{CRI_IMAGE, Offload, STARGZ_IMAGE, Source};

/// The staged layers, by blob digest.
#[derive(Clone, Default)]
pub struct Staging {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    jobs: Jobs<Result<Staged, String>>,
    /// Whether the offload's last Prepare went to [`PARALLEL_SNAPSHOTTER`], with no client
    /// unpack since.
    overlay_unpacks: bool,
}

pub type StageJob = JoinHandle<Result<Staged, String>>;

impl Staging {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The staging of `blob`, if any (the caller's from now on).
    pub fn take(&self, blob: &Digest) -> Option<StageJob> {
        self.state().jobs.take(blob)
    }

    /// The offload serves a layer on backend `sn` for a Prepare labelled `labels`. Only an
    /// import's turns early staging on: in a pull (labels naming the image), the blobs
    /// containerd still fetches are layers the offload applies from the registry.
    /// On another backend the layers staged early are for nobody ([`Staging::drop_early`]).
    pub fn offload_target(&self, sn: &str, labels: &Labels) {
        let pull = labels.contains_key(CRI_IMAGE) || labels.contains_key(STARGZ_IMAGE);
        self.state().overlay_unpacks = sn == PARALLEL_SNAPSHOTTER && !pull;
        if sn != PARALLEL_SNAPSHOTTER {
            self.drop_early();
        }
    }

    /// containerd is applying a layer itself (a Prepare of its unpack without a target, or
    /// one the offload cannot serve).
    pub fn client_unpack(&self) {
        self.state().overlay_unpacks = false;
    }

    /// Stops the layers staged early at their next read and removes them: no Prepare will take
    /// them, and they would take the cores and the disk from the unpack under way.
    pub fn drop_early(&self) {
        let stopped = self.state().jobs.stop_early();
        let Ok(rt) = Handle::try_current() else {
            return;
        };
        for (_, job) in stopped {
            rt.spawn(discard(job.handle));
        }
    }
}

impl Offload {
    /// Starts staging each of `layers` not staged yet whose blob `view` holds, or that
    /// `image`'s registry serves.
    pub(super) fn stage_above(&self, view: &str, layers: &[ChainLayer], image: Option<&ImageRef>) {
        for layer in layers {
            if self.staging.state().jobs.contains(&layer.blob) {
                continue;
            }
            let source = match self.content.info(view, &layer.blob) {
                Ok(_) => Source::Store,
                Err(_) => match image {
                    Some(i) => Source::Registry(i.clone()),
                    None => continue,
                },
            };
            self.start(view, &layer.blob, source, 0);
            tracing::debug!(chain = %layer.chain, blob = %layer.blob, "offload: staging a layer above");
        }
    }

    /// Starts staging blob `d` of `view`, just committed, when it looks like a layer and
    /// the module docs' conditions hold (from within the tokio runtime).
    pub(super) fn prestage(&self, view: &str, d: &Digest) {
        if !self.unpack.parallel || Handle::try_current().is_err() {
            return;
        }
        let Ok(reader) = self.content.reader(view, d) else {
            return;
        };
        let size = reader.size();
        {
            let st = self.staging.state();
            if !st.overlay_unpacks || st.jobs.contains(d) || !st.jobs.fits(size) {
                return;
            }
        }
        if !is_layer(&reader) {
            return;
        }
        self.start(view, d, Source::Store, size);
        tracing::debug!(digest = %d, size, "offload: staging a layer early");
    }

    /// Starts the staging job of `blob` (`early`: its size when staged early, else 0), and
    /// its expiry.
    fn start(&self, view: &str, blob: &Digest, source: Source, early: u64) {
        let id = rand::random::<u64>();
        let dir = self
            .scratch
            .join(strata_runtime::STAGING_DIR)
            .join(format!("offload-{id:016x}"));
        let mut st = self.staging.state();
        if st.jobs.contains(blob) {
            return;
        }
        let (this, view, b) = (self.clone(), view.to_string(), blob.clone());
        let stop = StopFlag::default();
        let flag = stop.clone();
        let handle = tokio::spawn(async move { this.stage(view, b, source, dir, flag).await });
        st.jobs.insert(blob.clone(), id, early, handle, stop);
        drop(st);
        let (this, blob) = (self.clone(), blob.clone());
        tokio::spawn(async move {
            tokio::time::sleep(KEEP).await;
            this.expire(&blob, id).await;
        });
    }

    /// Applies `blob` into the new directory `dir` ([`staging::stage_on_worker`]); it fails
    /// at its next read once `stop` is set.
    async fn stage(
        &self,
        view: String,
        blob: Digest,
        source: Source,
        dir: PathBuf,
        stop: StopFlag,
    ) -> Result<Staged, String> {
        let (this, b) = (self.clone(), blob.clone());
        let rt = Handle::current();
        let open = move || -> strata_runtime::Result<Box<dyn std::io::Read + Send>> {
            let unavailable = |e: String| strata_runtime::Error::Unavailable(e);
            Ok(match source {
                Source::Store => Box::new(
                    this.content
                        .reader(&view, &b)
                        .map_err(|e| unavailable(e.to_string()))?
                        .stream(),
                ),
                Source::Registry(image) => Box::new(
                    this.registry
                        .open_blob(&rt, &image, &b.to_string())
                        .map_err(|e| unavailable(e.to_string()))?,
                ),
            })
        };
        let cfg = self.unpack.clone();
        staging::stage_on_worker(open, blob, dir, true, cfg, stop)
            .await
            .map_err(|e| e.to_string())
    }

    /// Drops the staging `id` of `blob` when nobody took it. An early one left untaken stops
    /// early staging until the offload serves `strata-overlay` again.
    async fn expire(&self, blob: &Digest, id: u64) {
        let job = {
            let mut st = self.staging.state();
            let Some(job) = st.jobs.expire(blob, id) else {
                return;
            };
            if job.is_early() {
                st.overlay_unpacks = false;
            }
            job
        };
        discard(job.handle).await;
        tracing::debug!(%blob, "offload: a staged layer was not taken");
    }
}

/// Waits for a staging and removes its tree.
async fn discard(job: StageJob) {
    if let Ok(Ok(staged)) = job.await {
        remove_tree(staged.dir).await;
    }
}

/// Removes a staged tree nobody will use.
pub async fn remove_tree(dir: PathBuf) {
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
}
