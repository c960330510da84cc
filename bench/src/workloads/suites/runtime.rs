//! Runtime suite: Strata's runtime socket against containerd's own services — a garbage
//! collection pass (`Leases.Delete{sync}`) with a concurrent reader, and Images.List over
//! many labelled images.

use std::time::{Duration, Instant};

use futures::FutureExt;

use crate::Args;
use crate::stats::{Measurement, Samples, alternate_multi};
use crate::workloads::runtime::{self, GC_BLOB, GcSizes, IMAGE_FILTER, IMAGE_LABELS, Rt};

const GROUP: &str = "runtime";
const BACKEND: &str = "overlay";
/// Goals of the issue: the pass at least twice as fast as containerd's, no concurrent Stat on
/// Strata longer than this.
const GOAL_RATIO: f64 = 2.0;
const GOAL_STAT_MS: f64 = 10.0;

/// Runs the GC pass and the Images.List workloads on every target.
pub async fn run(args: &Args, targets: &[Rt], out: &mut Vec<Measurement>) -> anyhow::Result<()> {
    gc(args, targets, out).await?;
    images(args, targets, out).await
}

async fn gc(args: &Args, targets: &[Rt], out: &mut Vec<Measurement>) -> anyhow::Result<()> {
    let sz = GcSizes {
        objects: args.gc_objects,
        chain: args.gc_chain.max(1),
        settle: Duration::from_millis(args.settle_ms),
    };
    let disk_notes = std::sync::Mutex::new(Vec::new());
    let counts = std::sync::Mutex::new(Vec::new());
    let mut series = alternate_multi(targets, 0, args.gc_rounds, |t, r| {
        let (sz, disk_notes, counts) = (&sz, &disk_notes, &counts);
        async move {
            let mut g = runtime::gc_round(t, sz, r).await?;
            let (max, p99) = runtime::stat_summary(&mut g.stats);
            println!(
                "{}: gc round {r}: Leases.Delete(sync) {:.3} s; {} concurrent Stats, max {max:.2} ms, p99 {p99:.2} ms",
                t.name,
                g.secs,
                g.stats.len()
            );
            counts
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(format!("{} r{r}: {}", t.name, g.stats.len()));
            if let Some(n) = g.disk_note {
                println!("note: {n}");
                disk_notes.lock().unwrap_or_else(|p| p.into_inner()).push(n);
            }
            Ok(vec![g.secs, max, p99])
        }
        .boxed()
    })
    .await?
    .into_iter();
    let mut next = |label: String, unit: &'static str| {
        Measurement::new(
            GROUP,
            label,
            BACKEND,
            unit,
            false,
            series.next().unwrap_or_default(),
        )
    };
    let n = args.gc_objects;
    let shape = if sz.chain == 1 {
        format!("{n} independent active snapshots")
    } else {
        format!(
            "{n} snapshots in chains of {} ({} committed layers + 1 active top each)",
            sz.chain,
            sz.chain - 1
        )
    };
    let mut pass = next(format!("GC pass: {n} snapshots + {n} blobs"), "s");
    pass.notes.push(format!(
        "timed: Leases.Delete{{sync: true}} of the lease holding {shape} and {n} blobs of \
         {GC_BLOB} B (fresh namespace per round); {} rounds, no warm-up, order alternating (round 0 strata first); sync + {} ms idle \
         before the timed delete",
        args.gc_rounds, args.settle_ms
    ));
    if !args.quick {
        pass.notes.push(goal(
            &pass,
            |r| r >= GOAL_RATIO,
            format!("wall time >= {GOAL_RATIO}x faster than containerd"),
        ));
    }
    out.push(pass);
    let mut max = next("GC pass: longest concurrent Stat".into(), "ms");
    max.notes.push(format!(
        "a second client on its own connection Stats a snapshot another lease keeps, 1 ms \
         apart, during the whole delete; Stats per round: {}",
        counts
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .join(", ")
    ));
    let worst = max.summary("strata").map_or(f64::NAN, |s| s.max);
    if !args.quick {
        max.notes.push(format!(
            "goal: longest Stat on strata < {GOAL_STAT_MS} ms in every round: {} (worst {worst:.2} ms)",
            if worst < GOAL_STAT_MS {
                "met"
            } else {
                "NOT met"
            }
        ));
    }
    out.push(max);
    let mut p99 = next("GC pass: concurrent Stat p99".into(), "ms");
    p99.notes
        .extend(disk_notes.into_inner().unwrap_or_else(|p| p.into_inner()));
    out.push(p99);
    Ok(())
}

/// "goal: <what>: met/NOT met" from the ratio of `m`.
fn goal(m: &Measurement, ok: impl Fn(f64) -> bool, what: String) -> String {
    match m.ratio() {
        Some(r) => format!(
            "goal: {what}: {} ({r:.2}x)",
            if ok(r) { "met" } else { "NOT met" }
        ),
        None => format!("goal: {what}: no ratio"),
    }
}

async fn images(args: &Args, targets: &[Rt], out: &mut Vec<Measurement>) -> anyhow::Result<()> {
    let count = args.list_images;
    for t in targets {
        let start = Instant::now();
        runtime::create_images(t, count).await?;
        println!(
            "{}: created {count} images x {IMAGE_LABELS} labels in {:.1} s (untimed)",
            t.name,
            start.elapsed().as_secs_f64()
        );
    }
    let matches = runtime::filter_matches(count);
    let cases = [
        (
            vec![IMAGE_FILTER.to_string()],
            matches,
            format!("Images.List {count} images, label filter"),
            format!("filter {IMAGE_FILTER:?} selects {matches} of {count} images"),
        ),
        (
            vec![],
            count,
            format!("Images.List {count} images, no filter"),
            format!("all {count} images"),
        ),
    ];
    for (filters, expect, label, what) in cases {
        let samples: Samples = alternate_multi(targets, args.warmup, args.rounds, |t, _| {
            let filters = &filters;
            async move {
                let v = runtime::list_images_round(t, filters, args.list_calls, expect).await?;
                Ok(vec![v])
            }
            .boxed()
        })
        .await?
        .pop()
        .unwrap_or_default();
        let mut m = Measurement::new(GROUP, label, BACKEND, "lists/s", true, samples);
        m.notes.push(format!(
            "{what}, {IMAGE_LABELS} labels each; {} calls per round, every call on both sides \
             returned {expect} images",
            args.list_calls
        ));
        out.push(m);
    }
    Ok(())
}
