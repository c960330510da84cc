//! Layers staged while their blobs are written: the start of a [`crate::parallel_unpack`].
//!
//! containerd 1.6's `ctr images import` writes every blob of the archive, then creates the
//! image, then unpacks; its writes leave the daemon's second core mostly idle. When a blob
//! committed on the runtime socket looks like a layer (gzip, zstd or tar), Strata starts
//! applying it at once into a staging directory, as an upper overlay layer whose place is not
//! known yet ([`strata_archive::Options::lower_unknown`]). The unpack's parallel stage takes
//! that tree instead of applying the blob again (its diff ID is checked against the chain
//! then); one not taken within [`KEEP`] is removed. Only while the daemon's last client
//! unpack (or, before any, its default snapshotter) was onto `strata-overlay`, and within
//! [`BUDGET`](crate::staging::BUDGET) bytes of blobs; a client unpack onto another backend
//! stops and removes them at its first `Stat`. `[unpack] parallel = false` turns it off with
//! the rest.

use std::sync::{Mutex, PoisonError};

use strata_core::digest::Digest;
use tokio::task::JoinHandle;

use crate::staging::{Job, Jobs, KEEP, PARALLEL_SNAPSHOTTER, Staged, StopFlag, is_layer};
use crate::{Ctx, Result, Runtime};

/// The layers staged early, by blob digest.
#[derive(Default)]
pub(crate) struct Prestaged {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Every one early.
    jobs: Jobs<Result<Staged>>,
    /// The backend of the last client unpack.
    last_target: Option<String>,
}

impl Prestaged {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Runtime {
    pub(crate) fn prestaged(&self) -> &Prestaged {
        &self.inner.prestaged
    }

    /// A client unpack is asking for a layer on backend `name`. When that is not
    /// `strata-overlay`, the layers staged early are for nobody: they stop at their next read
    /// and are removed, instead of taking the cores and the disk from this unpack.
    pub(crate) fn unpack_target(&self, name: &str) {
        let stopped = {
            let mut st = self.prestaged().state();
            st.last_target = Some(name.to_string());
            if self.canonical_snapshotter(name) == PARALLEL_SNAPSHOTTER {
                return;
            }
            st.jobs.stop_early()
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        for (blob, job) in stopped {
            let rt = self.clone();
            handle.spawn(async move { rt.remove_prestaged(&blob, job).await });
        }
    }

    /// Starts staging blob `d` of the namespace when it looks like a layer (see the module
    /// docs). Called after a commit, from within the tokio runtime.
    pub(crate) fn prestage(&self, ctx: &Ctx, d: &Digest) {
        if !self.unpack_config().parallel {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(reader) = self.store().reader(&ctx.view(), d) else {
            return;
        };
        let size = reader.size();
        {
            let st = self.prestaged().state();
            let target = st
                .last_target
                .as_deref()
                .unwrap_or(&self.inner.default_snapshotter);
            if self.canonical_snapshotter(target) != PARALLEL_SNAPSHOTTER
                || st.jobs.contains(d)
                || !st.jobs.fits(size)
            {
                return;
            }
        }
        if !is_layer(&reader) {
            return;
        }
        let id = rand::random::<u64>();
        let dir = self.staging_dir().join(format!("prestage-{id:016x}"));
        let (rt, c, blob) = (self.clone(), ctx.clone(), d.clone());
        let mut st = self.prestaged().state();
        if st.jobs.contains(d) {
            return;
        }
        let stop = StopFlag::default();
        let flag = stop.clone();
        let job = handle.spawn(async move { rt.stage_async(&c, &blob, &dir, true, flag).await });
        st.jobs.insert(d.clone(), id, size, job, stop);
        drop(st);
        let (rt, blob) = (self.clone(), d.clone());
        handle.spawn(async move {
            tokio::time::sleep(KEEP).await;
            rt.expire_prestaged(&blob, id).await;
        });
        tracing::debug!(digest = %d, size, "staging a layer early");
    }

    /// The early staging of `blob`, if any (it is the caller's from now on).
    pub(crate) fn take_prestaged(&self, blob: &Digest) -> Option<JoinHandle<Result<Staged>>> {
        self.prestaged().state().jobs.take(blob)
    }

    /// Removes the early staging `id` of `blob` when nobody took it.
    async fn expire_prestaged(&self, blob: &Digest, id: u64) {
        let job = self.prestaged().state().jobs.expire(blob, id);
        if let Some(job) = job {
            self.remove_prestaged(blob, job).await;
        }
    }

    /// Waits for `job` (of `blob`) to end and removes what it staged.
    async fn remove_prestaged(&self, blob: &Digest, job: Job<Result<Staged>>) {
        let dir = match job.handle.await {
            Ok(Ok(staged)) => staged.dir,
            _ => self.staging_dir().join(format!("prestage-{:016x}", job.id)),
        };
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
        tracing::debug!(digest = %blob, "an early staged layer was not taken");
    }
}
