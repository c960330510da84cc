//! Interleaved measurement (A, B, A, B... after a warm-up) and the summary of each series.

use std::collections::BTreeMap;

use futures::future::BoxFuture;
use serde::Serialize;

use crate::client::Target;

/// One workload's results on every target.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub workload: String,
    pub backend: String,
    /// What the numbers count; higher is better for every unit used here.
    pub unit: &'static str,
    pub samples: BTreeMap<String, Vec<f64>>,
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
        let median = if s.len() % 2 == 0 {
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
    pub fn summary(&self, target: &str) -> Option<Summary> {
        self.samples.get(target).and_then(|v| Summary::of(v))
    }

    /// strata median / containerd median.
    pub fn ratio(&self) -> Option<f64> {
        Some(self.summary("strata")?.median / self.summary("containerd")?.median)
    }
}

/// Runs `once` on each target in turn, `warmup` rounds discarded then `rounds` kept.
pub async fn interleave<'t, F>(
    targets: &'t [Target],
    warmup: usize,
    rounds: usize,
    mut once: F,
) -> anyhow::Result<BTreeMap<String, Vec<f64>>>
where
    F: FnMut(&'t Target, usize) -> BoxFuture<'t, anyhow::Result<f64>>,
{
    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for round in 0..warmup + rounds {
        for t in targets {
            let v = once(t, round).await?;
            if round >= warmup {
                out.entry(t.name.to_string()).or_default().push(v);
            }
        }
    }
    Ok(out)
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
}
