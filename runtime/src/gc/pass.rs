//! One garbage collection pass: mark without a lock, sweep holding back mutations only,
//! reclaim files after (see the module docs of [`crate::gc`]).

use std::collections::HashSet;
use std::time::{Instant, SystemTime};

use super::GcStats;
use super::mark::{Node, mark};
use crate::{Error, Result, Runtime};

impl Runtime {
    /// Runs one pass on a blocking thread.
    pub(crate) async fn run_pass(&self) -> Result<GcStats> {
        let rt = self.clone();
        tokio::task::spawn_blocking(move || {
            rt.inner.barrier.begin();
            let res = rt.pass();
            rt.inner.barrier.end();
            res
        })
        .await
        .map_err(|e| Error::Internal(format!("garbage collection task failed: {e}")))?
    }

    fn pass(&self) -> Result<GcStats> {
        let start = Instant::now();
        let now = SystemTime::now();
        let mut stats = GcStats::default();
        let graph = self.scan(now)?;
        let marked = mark(graph.roots.iter().cloned(), |n| graph.refs.get(n).cloned());
        let candidates: Vec<&Node> = graph.all.iter().filter(|n| !marked.contains(*n)).collect();
        stats.scanned = graph.all.len();
        stats.marked = graph.all.len() - candidates.len();
        stats.mark = start.elapsed();
        let reclaim = if candidates.is_empty() {
            None
        } else {
            let swept = Instant::now();
            let _gate = self.inner.gate.blocking_write();
            let touched = self.inner.barrier.take();
            let kept: HashSet<Node> = if touched.is_empty() {
                HashSet::new()
            } else {
                mark(touched.into_iter().map(|n| (n, false)), |n| {
                    self.live_refs(n, now)
                })
            };
            let doomed: Vec<Node> = candidates
                .into_iter()
                .filter(|n| !kept.contains(*n))
                .cloned()
                .collect();
            let r = self.sweep(&doomed, &graph.refs, &mut stats)?;
            stats.sweep = swept.elapsed();
            Some(r)
        };
        if let Some(r) = reclaim {
            let t = Instant::now();
            self.reclaim(r)?;
            stats.reclaim = t.elapsed();
        }
        stats.total = start.elapsed();
        tracing::debug!(?stats, "garbage collected");
        Ok(stats)
    }
}
