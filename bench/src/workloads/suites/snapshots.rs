//! Snapshot suite for one backend: the prepare→commit→stat→remove cycle, a layer chain,
//! Prepare + Commit on a big parent, Walk.

use std::path::Path;

use futures::FutureExt;

use crate::Args;
use crate::client::Target;
use crate::stats::{Measurement, Samples, interleave};
use crate::workloads::{parent, snapshots};

/// Runs every snapshot workload on `backend` on the targets that have it; `scratch` holds the
/// mountpoints used to fill the parent.
pub async fn run(
    args: &Args,
    targets: &[Target],
    backend: &str,
    scratch: &Path,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let group = format!("snapshots: {backend}");
    run_group(args, targets, backend, scratch, &group, false, out).await
}

/// [`run`] in report section `group`; with `cleanup`, each cycle round ends with a timed
/// Cleanup call.
pub async fn run_group(
    args: &Args,
    targets: &[Target],
    backend: &str,
    scratch: &Path,
    group: &str,
    cleanup: bool,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let both: Vec<Target> = targets
        .iter()
        .filter(|t| t.snapshotter(backend).is_some())
        .cloned()
        .collect();
    let rate = |workload: String, unit: &'static str, samples: Samples| {
        Measurement::new(group, workload, backend, unit, true, samples)
    };
    let sn = |t: &Target| t.snapshotter(backend).unwrap_or_default().to_string();
    let samples = interleave(&both, args.warmup, args.rounds, |t, r| {
        let s = sn(t);
        async move { snapshots::cycle_round(t, &s, args.cycles, r, cleanup).await }.boxed()
    })
    .await?;
    let cycle = match cleanup {
        true => "prepare>commit>stat>remove, Cleanup at the round's end",
        false => "prepare>commit>stat>remove",
    };
    out.push(rate(cycle.into(), "cycles/s", samples));
    let samples = interleave(&both, args.warmup, args.rounds, |t, r| {
        let s = sn(t);
        async move { snapshots::chain_round(t, &s, args.chain_layers, r).await }.boxed()
    })
    .await?;
    out.push(rate(
        format!("{}-layer chain prepare+commit", args.chain_layers),
        "layers/s",
        samples,
    ));
    out.push(rate(
        format!(
            "prepare+commit on {} MiB / {}-file parent",
            args.parent_mib, args.parent_files
        ),
        "ops/s",
        parent_samples(args, &both, backend, scratch).await?,
    ));
    for t in &both {
        snapshots::populate(t, &sn(t), args.walk_snapshots).await?;
    }
    let samples = interleave(&both, args.warmup, args.rounds, |t, _| {
        let s = sn(t);
        async move { snapshots::walk_round(t, &s, args.walk_snapshots).await }.boxed()
    })
    .await?;
    out.push(rate(
        format!("walk {} snapshots", args.walk_snapshots),
        "snapshots/s",
        samples,
    ));
    Ok(())
}

/// Builds the parent on every target (untimed), times child Prepare + Commit, removes the parent.
async fn parent_samples(
    args: &Args,
    targets: &[Target],
    backend: &str,
    scratch: &Path,
) -> anyhow::Result<Samples> {
    let name = format!("parent-{backend}");
    let bytes = args.parent_mib << 20;
    for t in targets {
        let sn = t.snapshotter(backend).unwrap_or_default();
        let mnt = tempfile::Builder::new()
            .prefix("parent-mnt-")
            .tempdir_in(scratch)?;
        let start = std::time::Instant::now();
        parent::build_parent(t, sn, &name, mnt.path(), bytes, args.parent_files).await?;
        println!(
            "{}: built {name} ({} MiB, {} files) in {:.1} s (untimed)",
            t.name,
            args.parent_mib,
            args.parent_files,
            start.elapsed().as_secs_f64()
        );
    }
    let samples = interleave(targets, args.warmup, args.rounds, |t, r| {
        let (sn, name) = (t.snapshotter(backend).unwrap_or_default(), name.clone());
        async move { parent::child_round(t, sn, &name, args.parent_ops, r).await }.boxed()
    })
    .await?;
    for t in targets {
        snapshots::remove(t, t.snapshotter(backend).unwrap_or_default(), &name).await?;
    }
    Ok(samples)
}

/// Checks that every target serves `backend` with a Prepare and a Remove; the error names each
/// side that cannot.
pub async fn probe(targets: &[Target], backend: &str) -> anyhow::Result<()> {
    let mut failed = Vec::new();
    for t in targets {
        let Some(sn) = t.snapshotter(backend) else {
            failed.push(format!("{} has no {backend} backend", t.name));
            continue;
        };
        let mut ok = snapshots::prepare_commit(t, sn, "probe-a", "probe-c", "").await;
        if ok.is_ok() {
            ok = snapshots::remove(t, sn, "probe-c").await;
        }
        if let Err(e) = ok {
            failed.push(format!("{e:#}"));
        }
    }
    anyhow::ensure!(failed.is_empty(), "{}", failed.join("; "));
    Ok(())
}
