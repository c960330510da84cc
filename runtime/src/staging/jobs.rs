//! The stagings under way, by blob digest: one book for the runtime's early stagings
//! ([`crate::prestage`]) and the proxy offload's.
//!
//! A job is *early* when it was started for a blob just written, before any unpack asked for
//! it: those count against [`BUDGET`] and are the ones stopped when no unpack will take them.
//! Each job has an id, so that its expiry after [`KEEP`] never drops a later job of the same
//! blob.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use strata_core::digest::Digest;
use tokio::task::JoinHandle;

use super::StopFlag;

/// How long a staged layer waits to be taken.
pub const KEEP: Duration = Duration::from_secs(120);
/// Most blob bytes staged early and not yet taken.
pub const BUDGET: u64 = 2 << 30;

/// The stagings under way, each ending in a `T`.
pub struct Jobs<T> {
    jobs: HashMap<Digest, Job<T>>,
    /// Blob bytes of the early jobs.
    early_bytes: u64,
}

impl<T> Default for Jobs<T> {
    fn default() -> Self {
        Jobs {
            jobs: HashMap::new(),
            early_bytes: 0,
        }
    }
}

/// One staging: its task, and the flag that stops it.
pub struct Job<T> {
    /// Names the job (and its directory) among the jobs of its blob over time.
    pub id: u64,
    /// The blob's size when staged early, else 0.
    early: u64,
    pub handle: JoinHandle<T>,
    stop: StopFlag,
}

impl<T> Jobs<T> {
    /// Whether `blob` is being staged.
    pub fn contains(&self, blob: &Digest) -> bool {
        self.jobs.contains_key(blob)
    }

    /// Whether an early staging of `size` more blob bytes stays within [`BUDGET`].
    pub fn fits(&self, size: u64) -> bool {
        self.early_bytes + size <= BUDGET
    }

    /// Records the staging `id` of `blob`, stopped by `stop`; `early` is the blob's size for
    /// an early one, else 0.
    pub fn insert(
        &mut self,
        blob: Digest,
        id: u64,
        early: u64,
        handle: JoinHandle<T>,
        stop: StopFlag,
    ) {
        self.early_bytes += early;
        let job = Job {
            id,
            early,
            handle,
            stop,
        };
        if let Some(old) = self.jobs.insert(blob, job) {
            self.early_bytes -= old.early;
        }
    }

    /// The staging of `blob`, if any: the caller's from now on.
    pub fn take(&mut self, blob: &Digest) -> Option<JoinHandle<T>> {
        self.remove(blob).map(|j| j.handle)
    }

    /// The staging `id` of `blob` when it is still nobody's (its [`KEEP`] is over).
    pub fn expire(&mut self, blob: &Digest, id: u64) -> Option<Job<T>> {
        if self.jobs.get(blob).is_none_or(|j| j.id != id) {
            return None;
        }
        self.remove(blob)
    }

    /// Stops every early staging at its next read and hands them back, for removal: no
    /// unpack will take them.
    pub fn stop_early(&mut self) -> Vec<(Digest, Job<T>)> {
        let early: Vec<Digest> = self
            .jobs
            .iter()
            .filter(|(_, j)| j.early > 0)
            .map(|(d, _)| d.clone())
            .collect();
        early
            .into_iter()
            .filter_map(|d| {
                let job = self.remove(&d)?;
                job.stop.store(true, Ordering::Relaxed);
                Some((d, job))
            })
            .collect()
    }

    fn remove(&mut self, blob: &Digest) -> Option<Job<T>> {
        let job = self.jobs.remove(blob)?;
        self.early_bytes -= job.early;
        Some(job)
    }
}

impl<T> Job<T> {
    /// Whether it was started for a blob just written.
    pub fn is_early(&self) -> bool {
        self.early > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(c: char) -> Digest {
        format!("sha256:{}", c.to_string().repeat(64))
            .parse()
            .unwrap()
    }

    #[tokio::test]
    async fn the_budget_counts_early_jobs_until_they_leave() {
        let mut jobs = Jobs::<()>::default();
        let (a, b) = (digest('a'), digest('b'));
        jobs.insert(
            a.clone(),
            1,
            BUDGET - 10,
            tokio::spawn(async {}),
            StopFlag::default(),
        );
        jobs.insert(b.clone(), 2, 0, tokio::spawn(async {}), StopFlag::default());
        assert!(jobs.fits(10) && !jobs.fits(11));
        assert!(jobs.expire(&a, 7).is_none(), "another job's expiry");
        assert!(jobs.take(&a).is_some());
        assert!(jobs.fits(BUDGET) && !jobs.contains(&a) && jobs.contains(&b));
        assert!(jobs.expire(&b, 2).is_some_and(|j| !j.is_early()));
        assert!(jobs.take(&b).is_none());
    }

    #[tokio::test]
    async fn stopping_the_early_jobs_leaves_the_others() {
        let mut jobs = Jobs::<()>::default();
        let (a, b) = (digest('a'), digest('b'));
        let (fa, fb) = (StopFlag::default(), StopFlag::default());
        jobs.insert(a.clone(), 1, 100, tokio::spawn(async {}), fa.clone());
        jobs.insert(b.clone(), 2, 0, tokio::spawn(async {}), fb.clone());
        let stopped = jobs.stop_early();
        assert_eq!(stopped.len(), 1);
        assert_eq!(stopped[0].0, a);
        assert!(fa.load(Ordering::Relaxed) && !fb.load(Ordering::Relaxed));
        assert!(jobs.contains(&b) && !jobs.contains(&a) && jobs.fits(BUDGET));
    }
}
