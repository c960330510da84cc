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
//!   for them would be wasted), within [`BUDGET`] bytes of blobs.
//!
//! At most one layer per core is applied at once. The Prepare of a staged layer takes its tree:
//! it prepares the snapshot, moves the tree in as the upper directory and commits it once the
//! diff ID gives the chain ID asked for. A staging that fails (a layer that needs the ones
//! below it) or is not taken within [`KEEP`] is dropped, and the layer goes the usual way; the
//! early ones are stopped and dropped at once when the offload serves another backend or
//! containerd's own unpack begins, as no Prepare will take them then.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_registry::ImageRef;
use strata_runtime::staging::{
    self, PARALLEL_SNAPSHOTTER, Staged, StopFlag, Stoppable, looks_like_layer,
};
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use super::chains::ChainLayer;
use super::{CRI_IMAGE, Offload, STARGZ_IMAGE, Source};

/// How long a staged layer waits to be taken.
pub const KEEP: Duration = Duration::from_secs(120);
/// Most blob bytes staged early and not yet taken.
pub const BUDGET: u64 = 2 << 30;

/// The staged layers, by blob digest.
#[derive(Clone, Default)]
pub struct Staging {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    jobs: HashMap<Digest, Job>,
    /// Blob bytes of the early jobs.
    early_bytes: u64,
    /// Whether the offload's last Prepare went to [`PARALLEL_SNAPSHOTTER`], with no client
    /// unpack since.
    overlay_unpacks: bool,
}

struct Job {
    id: u64,
    /// The blob's size when staged early, else 0.
    early: u64,
    handle: JoinHandle<Result<Staged, String>>,
    stop: StopFlag,
}

pub type StageJob = JoinHandle<Result<Staged, String>>;

impl Staging {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The staging of `blob`, if any (the caller's from now on).
    pub fn take(&self, blob: &Digest) -> Option<StageJob> {
        let mut st = self.state();
        let job = st.jobs.remove(blob)?;
        st.early_bytes -= job.early;
        Some(job.handle)
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
        let jobs: Vec<Job> = {
            let mut st = self.state();
            st.early_bytes = 0;
            let early: Vec<Digest> = st
                .jobs
                .iter()
                .filter(|(_, j)| j.early > 0)
                .map(|(d, _)| d.clone())
                .collect();
            early.iter().filter_map(|d| st.jobs.remove(d)).collect()
        };
        let Ok(rt) = Handle::try_current() else {
            return;
        };
        for job in jobs {
            job.stop.store(true, Ordering::Relaxed);
            rt.spawn(discard(job.handle));
        }
    }
}

impl Offload {
    /// Starts staging each of `layers` not staged yet whose blob `view` holds, or that
    /// `image`'s registry serves.
    pub(super) fn stage_above(&self, view: &str, layers: &[ChainLayer], image: Option<&ImageRef>) {
        for layer in layers {
            if self.staging.state().jobs.contains_key(&layer.blob) {
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
            if !st.overlay_unpacks || st.jobs.contains_key(d) || st.early_bytes + size > BUDGET {
                return;
            }
        }
        let mut head = [0u8; 512];
        let n = reader.read_at(0, &mut head).unwrap_or(0);
        if !looks_like_layer(&head[..n]) {
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
        if st.jobs.contains_key(blob) {
            return;
        }
        let (this, view, b) = (self.clone(), view.to_string(), blob.clone());
        let stop = StopFlag::default();
        let flag = stop.clone();
        let handle = tokio::spawn(async move { this.stage(&view, &b, source, dir, flag).await });
        let job = Job {
            id,
            early,
            handle,
            stop,
        };
        st.jobs.insert(blob.clone(), job);
        st.early_bytes += early;
        drop(st);
        let (this, blob) = (self.clone(), blob.clone());
        tokio::spawn(async move {
            tokio::time::sleep(KEEP).await;
            this.expire(&blob, id).await;
        });
    }

    /// Applies `blob` into the new directory `dir` once a worker is free; it fails at its next
    /// read once `stop` is set.
    async fn stage(
        &self,
        view: &str,
        blob: &Digest,
        source: Source,
        dir: PathBuf,
        stop: StopFlag,
    ) -> Result<Staged, String> {
        let _worker = staging::workers()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (this, view, blob) = (self.clone(), view.to_string(), blob.clone());
        let rt = Handle::current();
        tokio::task::spawn_blocking(move || {
            if let Some(parent) = dir.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            let cfg = &this.unpack;
            match source {
                Source::Store => {
                    let r = this
                        .content
                        .reader(&view, &blob)
                        .map_err(|e| e.to_string())?;
                    let src = Stoppable {
                        inner: r.stream(),
                        stop,
                    };
                    staging::stage(src, &blob, &dir, true, cfg)
                }
                Source::Registry(image) => {
                    let body = this
                        .registry
                        .open_blob(&rt, &image, &blob.to_string())
                        .map_err(|e| e.to_string())?;
                    let src = Stoppable { inner: body, stop };
                    staging::stage(src, &blob, &dir, true, cfg)
                }
            }
            .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }

    /// Drops the staging `id` of `blob` when nobody took it. An early one left untaken stops
    /// early staging until the offload serves `strata-overlay` again.
    async fn expire(&self, blob: &Digest, id: u64) {
        let job = {
            let mut st = self.staging.state();
            if st.jobs.get(blob).is_none_or(|j| j.id != id) {
                return;
            }
            let job = st.jobs.remove(blob).expect("present");
            st.early_bytes -= job.early;
            if job.early > 0 {
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
