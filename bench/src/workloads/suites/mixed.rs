//! Mixed suite: 1, 8 and 64 concurrent clients (by default) mixing snapshot and content calls
//! on the overlay backend; throughput plus p50 and p99 latency per RPC.

use std::collections::BTreeMap;
use std::path::PathBuf;

use futures::FutureExt;

use crate::Args;
use crate::client::Target;
use crate::stats::{Measurement, interleave_multi};
use crate::workloads::mixed;

const GROUP: &str = "mixed clients";
const BACKEND: &str = "overlay";

/// Runs the mixed workload at every client count; `sockets[i]` is the socket of `targets[i]`.
pub async fn run(
    args: &Args,
    targets: &[Target],
    sockets: &[PathBuf],
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    for &n in &args.clients {
        let mut pools: BTreeMap<&str, Vec<Target>> = BTreeMap::new();
        for (t, sock) in targets.iter().zip(sockets) {
            pools.insert(t.name, mixed::connect_pool(t, sock, n).await?);
        }
        let pools = &pools;
        let mut series = interleave_multi(targets, args.warmup, args.rounds, |t, r| {
            let sn = t.snapshotter(BACKEND).unwrap_or_default();
            async move { mixed::round(&pools[t.name], sn, args.client_iters, r).await }.boxed()
        })
        .await?
        .into_iter();
        let who = if n == 1 { "client" } else { "clients" };
        let what = format!("{n} {who} x {} iterations", args.client_iters);
        let mut next = |label: &str, unit: &'static str, higher: bool| {
            let samples = series.next().unwrap_or_default();
            Measurement::new(
                GROUP,
                format!("{what}: {label}"),
                BACKEND,
                unit,
                higher,
                samples,
            )
        };
        let mut ops = next("mixed ops", "ops/s", true);
        ops.notes.push(format!(
            "each iteration: prepare, commit, stat, remove, ingest {} KiB, read, delete",
            mixed::BLOB >> 10
        ));
        out.push(ops);
        out.push(next("p50 latency", "ms", false));
        out.push(next("p99 latency", "ms", false));
    }
    Ok(())
}
