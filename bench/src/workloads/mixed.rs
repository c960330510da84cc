//! N concurrent clients mixing snapshot and content calls. Each client has its own connection
//! and loops a fixed number of times over seven RPCs: Prepare, Commit, Stat, Remove (overlay
//! backend), then ingest a 64 KiB blob (one Write stream), Read it, Delete it. Every RPC's
//! latency is recorded; a round yields [mixed ops/s, p50 ms, p99 ms].

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use strata_proxy::api::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, StatSnapshotRequest,
};
use tokio::sync::Barrier;

use super::content::{delete, digest_of, ingest, random_bytes, read};
use super::snapshots::{gc_root, remove};
use crate::client::{self, Target};
use crate::stats::percentile;

/// Size of each client's blob.
pub const BLOB: usize = 64 << 10;
/// RPCs per loop iteration.
pub const OPS_PER_ITER: usize = 7;

/// `n` clients of the same server as `base`, each on its own connection to `socket`.
pub async fn connect_pool(base: &Target, socket: &Path, n: usize) -> anyhow::Result<Vec<Target>> {
    let mut pool = Vec::with_capacity(n);
    for _ in 0..n {
        let (content, snapshots) = client::clients(client::connect(socket.to_path_buf()).await?);
        pool.push(Target {
            content,
            snapshots,
            ..base.clone()
        });
    }
    Ok(pool)
}

/// One round with every client of `pool` running `iters` iterations at once, released together.
pub async fn round(
    pool: &[Target],
    sn: &str,
    iters: usize,
    round: usize,
) -> anyhow::Result<Vec<f64>> {
    let barrier = Arc::new(Barrier::new(pool.len() + 1));
    let mut tasks = Vec::with_capacity(pool.len());
    for (c, t) in pool.iter().enumerate() {
        let blobs: Vec<(bytes::Bytes, String)> = (0..iters)
            .map(|i| {
                let seed = ((round * 1_000 + c) * 100_000 + i) as u64 ^ (t.name.len() as u64) << 56;
                let d = random_bytes(BLOB, seed);
                let g = digest_of(&d);
                (d.into(), g)
            })
            .collect();
        let prefix = format!("mixed-{}-{round}-{c}", pool.len());
        let (t, sn, barrier) = (t.clone(), sn.to_string(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            client_loop(&t, &sn, &prefix, &blobs).await
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    let mut lat = Vec::with_capacity(pool.len() * iters * OPS_PER_ITER);
    for task in tasks {
        lat.extend(task.await.context("client task panicked")??);
    }
    let secs = start.elapsed().as_secs_f64();
    let ops = lat.len() as f64 / secs;
    let p50 = percentile(&mut lat, 50.0).unwrap_or(0.0);
    let p99 = percentile(&mut lat, 99.0).unwrap_or(0.0);
    Ok(vec![ops, p50, p99])
}

/// Times one RPC in milliseconds.
async fn timed<T>(
    lat: &mut Vec<f64>,
    f: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    let v = f.await?;
    lat.push(start.elapsed().as_secs_f64() * 1e3);
    Ok(v)
}

/// One client's loop; returns the latency (ms) of every RPC it made.
async fn client_loop(
    t: &Target,
    sn: &str,
    prefix: &str,
    blobs: &[(bytes::Bytes, String)],
) -> anyhow::Result<Vec<f64>> {
    let mut lat = Vec::with_capacity(blobs.len() * OPS_PER_ITER);
    let mut s = t.snapshots.clone();
    for (i, (data, digest)) in blobs.iter().enumerate() {
        let (key, name) = (format!("{prefix}-{i}-a"), format!("{prefix}-{i}-c"));
        let prep = t.req(PrepareSnapshotRequest {
            snapshotter: sn.into(),
            key: key.clone(),
            parent: String::new(),
            labels: gc_root(),
        });
        timed(&mut lat, async { Ok(s.prepare(prep).await?) }).await?;
        let commit = t.req(CommitSnapshotRequest {
            snapshotter: sn.into(),
            name: name.clone(),
            key,
            labels: gc_root(),
        });
        timed(&mut lat, async { Ok(s.commit(commit).await?) }).await?;
        let stat = t.req(StatSnapshotRequest {
            snapshotter: sn.into(),
            key: name.clone(),
        });
        timed(&mut lat, async { Ok(s.stat(stat).await?) }).await?;
        timed(&mut lat, remove(t, sn, &name)).await?;
        timed(&mut lat, ingest(t, &format!("{prefix}-{i}"), data, digest)).await?;
        let n = timed(&mut lat, read(t, digest, 0, 0)).await?;
        if n as usize != data.len() {
            bail!("{}: read {n} bytes of {}", t.name, data.len());
        }
        timed(&mut lat, delete(t, digest)).await?;
    }
    Ok(lat)
}
