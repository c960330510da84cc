//! Garbage collection with containerd's semantics (`CONTAINERD.md` §3.4–3.8).
//!
//! A pass ([`pass`]) is:
//! 1. **mark**, with no lock held: [`scan`] reads every namespace's objects into a reference
//!    graph (roots: images, containers, unexpired leases and what they hold, `gc.root` objects,
//!    unexpired ingests) and [`mark::mark`] — a pure function — finds what the roots reach.
//!    Every mutation meanwhile records the nodes it created or changed in the [`barrier`];
//! 2. **sweep**, holding the gate exclusively (mutations wait, reads do not): whatever the
//!    barrier's nodes reach now is kept too, the rest loses its records in a few batches;
//! 3. **reclaim**, unlocked again: blob files and snapshot directories of removed records go.
//!
//! The [`scheduler`] runs passes as containerd's does (pause threshold, deletion and mutation
//! thresholds, a startup pass) and lets callers wait for one (`images rm --sync`).

pub mod barrier;
pub mod labels;
pub mod mark;
mod pass;
mod scan;
pub mod scheduler;
mod sweep;

use std::time::Duration;

/// The scheduler's settings (containerd's `io.containerd.gc.v1.scheduler` defaults).
#[derive(Debug, Clone, PartialEq)]
pub struct GcConfig {
    /// Largest fraction of time spent collecting (clamped to 0..=0.5).
    pub pause_threshold: f64,
    /// Deletions that trigger a pass at once (0: any deletion schedules one).
    pub deletion_threshold: usize,
    /// Mutations that schedule a pass.
    pub mutation_threshold: usize,
    /// Delay between a trigger and its pass.
    pub schedule_delay: Duration,
    /// Delay of the first pass after start.
    pub startup_delay: Duration,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig {
            pause_threshold: 0.02,
            deletion_threshold: 0,
            mutation_threshold: 100,
            schedule_delay: Duration::ZERO,
            startup_delay: Duration::from_millis(100),
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcStats {
    /// Objects scanned and reached.
    pub scanned: usize,
    pub marked: usize,
    /// Records removed, by kind.
    pub content: usize,
    pub snapshots: usize,
    pub ingests: usize,
    pub leases: usize,
    /// Time to scan and mark (no lock held).
    pub mark: Duration,
    /// Time mutations were held back.
    pub sweep: Duration,
    /// Time deleting files after the sweep.
    pub reclaim: Duration,
    /// The whole pass.
    pub total: Duration,
}
