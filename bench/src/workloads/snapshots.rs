//! Snapshot workloads: the prepare→commit→stat→remove cycle, a 128-layer chain, Walk.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use strata_proxy::api::snapshots::{
    CleanupRequest, CommitSnapshotRequest, ListSnapshotsRequest, PrepareSnapshotRequest,
    RemoveSnapshotRequest, StatSnapshotRequest,
};

use crate::client::Target;

/// Labels that keep what the bench creates from containerd's garbage collector.
pub fn gc_root() -> HashMap<String, String> {
    [("containerd.io/gc.root".to_string(), "bench".to_string())].into()
}

/// Prepare `key` on `parent` then commit it as `name`.
pub async fn prepare_commit(
    t: &Target,
    sn: &str,
    key: &str,
    name: &str,
    parent: &str,
) -> anyhow::Result<()> {
    let mut c = t.snapshots.clone();
    c.prepare(t.req(PrepareSnapshotRequest {
        snapshotter: sn.into(),
        key: key.into(),
        parent: parent.into(),
        labels: gc_root(),
    }))
    .await
    .with_context(|| format!("{}: prepare {key}", t.name))?;
    c.commit(t.req(CommitSnapshotRequest {
        snapshotter: sn.into(),
        name: name.into(),
        key: key.into(),
        labels: gc_root(),
    }))
    .await
    .with_context(|| format!("{}: commit {name}", t.name))?;
    Ok(())
}

/// Removes `key`.
pub async fn remove(t: &Target, sn: &str, key: &str) -> anyhow::Result<()> {
    t.snapshots
        .clone()
        .remove(t.req(RemoveSnapshotRequest {
            snapshotter: sn.into(),
            key: key.into(),
        }))
        .await
        .with_context(|| format!("{}: remove {key}", t.name))?;
    Ok(())
}

/// Cycles/s of `count` prepare→commit→stat→remove cycles; with `cleanup`, one Cleanup call
/// at the end counts too (a snapshotter that removes asynchronously deletes the directories
/// there; one without Cleanup answers Unimplemented, which is fine).
pub async fn cycle_round(
    t: &Target,
    sn: &str,
    count: usize,
    round: usize,
    cleanup: bool,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    for i in 0..count {
        let (key, name) = (
            format!("cycle-a-{round}-{i}"),
            format!("cycle-c-{round}-{i}"),
        );
        prepare_commit(t, sn, &key, &name, "").await?;
        t.snapshots
            .clone()
            .stat(t.req(StatSnapshotRequest {
                snapshotter: sn.into(),
                key: name.clone(),
            }))
            .await?;
        remove(t, sn, &name).await?;
    }
    if cleanup {
        let done = t
            .snapshots
            .clone()
            .cleanup(t.req(CleanupRequest {
                snapshotter: sn.into(),
            }))
            .await;
        match done {
            // A snapshotter without Cleanup (containerd's native) defers nothing.
            Err(s) if s.code() == tonic::Code::Unimplemented => {}
            other => {
                other.with_context(|| format!("{}: cleanup", t.name))?;
            }
        }
    }
    Ok(count as f64 / start.elapsed().as_secs_f64())
}

/// Layers/s of Prepare + Commit along a chain of `layers`; removed afterwards (untimed).
pub async fn chain_round(t: &Target, sn: &str, layers: usize, round: usize) -> anyhow::Result<f64> {
    let names: Vec<String> = (0..layers).map(|i| format!("chain-{round}-{i}")).collect();
    let start = Instant::now();
    for i in 0..layers {
        let parent = if i == 0 { "" } else { names[i - 1].as_str() };
        prepare_commit(t, sn, &format!("{}-active", names[i]), &names[i], parent).await?;
    }
    let rate = layers as f64 / start.elapsed().as_secs_f64();
    for n in names.iter().rev() {
        remove(t, sn, n).await?;
    }
    Ok(rate)
}

/// Creates `count` committed snapshots for the Walk workload (untimed).
pub async fn populate(t: &Target, sn: &str, count: usize) -> anyhow::Result<()> {
    for i in 0..count {
        prepare_commit(t, sn, &format!("walk-a-{i}"), &format!("walk-c-{i}"), "").await?;
    }
    Ok(())
}

/// Snapshots listed per second by one full List (Walk).
pub async fn walk_round(t: &Target, sn: &str, expect_at_least: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut stream = t
        .snapshots
        .clone()
        .list(t.req(ListSnapshotsRequest {
            snapshotter: sn.into(),
            filters: vec![],
        }))
        .await?
        .into_inner();
    let mut n = 0usize;
    while let Some(m) = stream.message().await? {
        n += m.info.len();
    }
    let secs = start.elapsed().as_secs_f64();
    anyhow::ensure!(
        n >= expect_at_least,
        "{}: listed {n} < {expect_at_least}",
        t.name
    );
    Ok(n as f64 / secs)
}
