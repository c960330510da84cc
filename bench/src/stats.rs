//! Interleaved measurement (A, B, A, B... after a warm-up) and the summary of each series.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::client::Target;

/// Samples per target name ("strata", "containerd"), one value per measured round.
pub type Samples = BTreeMap<String, Vec<f64>>;

/// One workload's results on every target.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// Section of the report ("content", "snapshots: overlay", "mixed clients", ...).
    pub group: String,
    pub workload: String,
    pub backend: String,
    /// What the numbers count ("MiB/s", "ms p99", ...).
    pub unit: &'static str,
    /// True for rates (ops/s, MiB/s), false for latencies: decides how [`Measurement::ratio`]
    /// is oriented.
    pub higher_is_better: bool,
    pub samples: Samples,
    pub notes: Vec<String>,
}

/// Median, min and max of a series.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Summary {
    pub fn of(v: &[f64]) -> Option<Summary> {
        if v.is_empty() {
            return None;
        }
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.total_cmp(b));
        let mid = s.len() / 2;
        let median = if s.len().is_multiple_of(2) {
            (s[mid - 1] + s[mid]) / 2.0
        } else {
            s[mid]
        };
        Some(Summary {
            median,
            min: s[0],
            max: s[s.len() - 1],
        })
    }
}

impl Measurement {
    /// A measurement with no notes.
    pub fn new(
        group: &str,
        workload: String,
        backend: &str,
        unit: &'static str,
        higher_is_better: bool,
        samples: Samples,
    ) -> Measurement {
        Measurement {
            group: group.to_string(),
            workload,
            backend: backend.to_string(),
            unit,
            higher_is_better,
            samples,
            notes: Vec::new(),
        }
    }

    pub fn summary(&self, target: &str) -> Option<Summary> {
        self.samples.get(target).and_then(|v| Summary::of(v))
    }

    /// Strata's advantage, > 1.0 when Strata is better: strata/containerd medians when higher is
    /// better (rates), containerd/strata medians when lower is better (latencies).
    pub fn ratio(&self) -> Option<f64> {
        let s = self.summary("strata")?.median;
        let c = self.summary("containerd")?.median;
        let r = if self.higher_is_better { s / c } else { c / s };
        r.is_finite().then_some(r)
    }

    /// "higher is better" or "lower is better".
    pub fn direction(&self) -> &'static str {
        if self.higher_is_better {
            "higher is better"
        } else {
            "lower is better"
        }
    }
}

/// The `p`-th percentile (0..=100, nearest rank) of `v`; `None` when empty.
pub fn percentile(v: &mut [f64], p: f64) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    Some(v[rank.clamp(1, v.len()) - 1])
}

/// Runs `once` on each target in turn, `warmup` rounds discarded then `rounds` kept.
pub async fn interleave<'t, F>(
    targets: &'t [Target],
    warmup: usize,
    rounds: usize,
    mut once: F,
) -> anyhow::Result<Samples>
where
    F: FnMut(&'t Target, usize) -> BoxFuture<'t, anyhow::Result<f64>>,
{
    let mut multi = interleave_multi(targets, warmup, rounds, |t, r| {
        let f = once(t, r);
        Box::pin(async move { Ok(vec![f.await?]) })
    })
    .await?;
    Ok(multi.pop().unwrap_or_default())
}

/// Like [`interleave`] for rounds that yield several numbers at once (throughput, p50, p99):
/// series `i` of the result holds value `i` of every round.
pub async fn interleave_multi<'t, F>(
    targets: &'t [Target],
    warmup: usize,
    rounds: usize,
    once: F,
) -> anyhow::Result<Vec<Samples>>
where
    F: FnMut(&'t Target, usize) -> BoxFuture<'t, anyhow::Result<Vec<f64>>>,
{
    run_rounds(targets, warmup, rounds, false, once).await
}

/// A server under test as the round runners see it: its name keys the samples.
pub trait Named {
    fn name(&self) -> &'static str;
}

impl Named for Target {
    fn name(&self) -> &'static str {
        self.name
    }
}

/// Like [`interleave_multi`], but the order of the targets alternates: even rounds (counting
/// the warm-up) run them in the given order, odd rounds in reverse. For workloads where going
/// second could help or hurt (a GC pass right after the other server's heavy set-up).
pub async fn alternate_multi<'t, T: Named, F>(
    targets: &'t [T],
    warmup: usize,
    rounds: usize,
    once: F,
) -> anyhow::Result<Vec<Samples>>
where
    F: FnMut(&'t T, usize) -> BoxFuture<'t, anyhow::Result<Vec<f64>>>,
{
    run_rounds(targets, warmup, rounds, true, once).await
}

async fn run_rounds<'t, T: Named, F>(
    targets: &'t [T],
    warmup: usize,
    rounds: usize,
    alternate: bool,
    mut once: F,
) -> anyhow::Result<Vec<Samples>>
where
    F: FnMut(&'t T, usize) -> BoxFuture<'t, anyhow::Result<Vec<f64>>>,
{
    let mut out: Vec<Samples> = Vec::new();
    for round in 0..warmup + rounds {
        for t in round_order(targets, round, alternate) {
            let values = once(t, round).await?;
            if round < warmup {
                continue;
            }
            out.resize_with(out.len().max(values.len()), Samples::new);
            for (series, v) in out.iter_mut().zip(values) {
                series.entry(t.name().to_string()).or_default().push(v);
            }
        }
    }
    Ok(out)
}

/// The targets in the order round `round` runs them.
fn round_order<T>(targets: &[T], round: usize, alternate: bool) -> Vec<&T> {
    if alternate && round % 2 == 1 {
        targets.iter().rev().collect()
    } else {
        targets.iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_odd_and_even_series() {
        let s = Summary::of(&[3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        let s = Summary::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Summary::of(&[]).is_none());
    }

    fn two(strata: f64, containerd: f64, higher_is_better: bool) -> Measurement {
        let samples = [
            ("strata".to_string(), vec![strata]),
            ("containerd".to_string(), vec![containerd]),
        ]
        .into();
        Measurement::new("g", "w".into(), "-", "u", higher_is_better, samples)
    }

    #[test]
    fn ratio_is_strata_advantage_in_both_directions() {
        // Rates: twice the throughput is 2x.
        assert_eq!(two(200.0, 100.0, true).ratio(), Some(2.0));
        // Latencies: half the latency is also 2x.
        assert_eq!(two(5.0, 10.0, false).ratio(), Some(2.0));
        assert_eq!(two(20.0, 10.0, false).ratio(), Some(0.5));
        assert_eq!(two(0.0, 10.0, false).ratio(), None);
    }

    #[test]
    fn alternating_order_flips_every_other_round() {
        let t = ["strata", "containerd"];
        assert_eq!(round_order(&t, 0, true), [&"strata", &"containerd"]);
        assert_eq!(round_order(&t, 1, true), [&"containerd", &"strata"]);
        assert_eq!(round_order(&t, 2, true), [&"strata", &"containerd"]);
        assert_eq!(round_order(&t, 1, false), [&"strata", &"containerd"]);
    }

    #[test]
    fn percentile_nearest_rank() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut v, 50.0), Some(50.0));
        assert_eq!(percentile(&mut v, 99.0), Some(99.0));
        assert_eq!(percentile(&mut v, 100.0), Some(100.0));
        assert_eq!(percentile(&mut [7.0], 99.0), Some(7.0));
        assert_eq!(percentile(&mut [], 50.0), None);
    }
}
