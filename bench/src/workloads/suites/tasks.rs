//! Tasks suite: stock `ctr run` of a minimal busybox image, Strata's runtime socket (strata-shim
//! + runc) against containerd 1.6 (containerd-shim-runc-v2 + runc), on the overlay backend
//! (`strata-overlay` vs `overlayfs`): start-to-exit latency of `ctr run --rm`, many of them at
//! once, and a detached run / kill / delete / rm cycle.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context as _, anyhow, bail};
use futures::FutureExt;

use crate::Args;
use crate::stats::{Measurement, Samples, Summary, alternate_multi, percentile};
use crate::workloads::tasks::{self, Guard, Side};

const BACKEND: &str = "overlay";
/// Goal of the issue: at least 1.5x containerd's.
const GOAL_RATIO: f64 = 1.5;
/// `ctr version` runs per side for the floor note.
const FLOOR_RUNS: usize = 10;

/// Runs the group on `sides` (strata, containerd), cleaning up after itself whatever happens.
/// Skipped, with a note, when the host lacks what it needs.
pub async fn run(
    args: &Args,
    sides: &[Side],
    group: &str,
    scratch: &Path,
    out: &mut Vec<Measurement>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mut missing: Vec<String> = ["runc", "containerd-shim-runc-v2"]
        .into_iter()
        .filter(|p| !tasks::on_path(p))
        .map(|p| format!("{p} not on PATH (apt-get install runc containerd)"))
        .collect();
    let busybox = match tasks::read_static_busybox() {
        Ok(b) => Some(b),
        Err(e) => {
            missing.push(format!("{e:#}"));
            None
        }
    };
    let Some(busybox) = busybox.filter(|_| missing.is_empty()) else {
        return args.skip(notes, format!("tasks skipped: {}", missing.join("; ")));
    };
    let archive = scratch.join("tasks-busybox.tar");
    let gz = {
        let archive = archive.clone();
        tokio::task::spawn_blocking(move || tasks::write_image(&busybox, &archive)).await??
    };
    // Container ids: unique to this bench process (containerd's runc root is shared host-wide).
    let tag = format!("sb{}", std::process::id());
    let guard = Guard::new(sides, &tag);
    let mut measured = Vec::new();
    let res = tokio::select! {
        r = body(args, sides, group, &archive, gz, &tag, &mut measured) => r,
        s = interrupted() => Err(anyhow!("tasks group interrupted by {s}")),
    };
    // Always, also after an error: nothing may be left running or mounted.
    let mut failed = Vec::new();
    for (name, r) in guard.finish().await {
        match r {
            Ok(removed) if removed.is_empty() => {}
            Ok(removed) => failed.push(format!("{name}: clean-up had to remove {removed:?}")),
            Err(e) => failed.push(format!("{name}: clean-up failed: {e:#}")),
        }
    }
    for s in sides {
        failed.extend(shims_gone(s).await);
    }
    if let Err(e) = res {
        for f in &failed {
            eprintln!("tasks: after the error: {f}");
        }
        return Err(e);
    }
    if !failed.is_empty() {
        bail!("tasks: {}", failed.join("; "));
    }
    out.extend(measured);
    Ok(())
}

/// SIGINT or SIGTERM (the clean-up still runs). Registered only while the group runs, the last
/// one; never resolves if the handlers cannot be installed.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut i), Ok(mut t)) => tokio::select! {
            _ = i.recv() => "SIGINT",
            _ = t.recv() => "SIGTERM",
        },
        _ => std::future::pending().await,
    }
}

/// Waits up to 5 s for the shims of a server the bench started to exit (they do once their
/// task is deleted); kills any still there and says so.
async fn shims_gone(side: &Side) -> Option<String> {
    let root = side.server_root.as_ref()?;
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let pids = tasks::shims(root);
        if pids.is_empty() {
            return None;
        }
        if Instant::now() >= deadline {
            for &pid in &pids {
                // SAFETY: kill(2) of a shim of a server this bench started, found by its pid.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            return Some(format!(
                "{}: shims still running 5 s after every task was deleted (killed): pids {pids:?}",
                side.name
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Between rounds: removes what is left in the namespace; an error if anything was.
async fn clean(side: &Side, after: &str) -> anyhow::Result<()> {
    let s = side.clone();
    let removed = tokio::task::spawn_blocking(move || tasks::clean(&s)).await??;
    if !removed.is_empty() {
        bail!("{}: {after} left {removed:?} (removed)", side.name);
    }
    Ok(())
}

async fn body(
    args: &Args,
    sides: &[Side],
    group: &str,
    archive: &Path,
    gz: u64,
    tag: &str,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    // Set-up, untimed: the image on both sides, then the proof that containers really run.
    for s in sides {
        clean(s, "an earlier run").await?;
        let secs = tasks::import(s, archive).await?;
        println!(
            "{}: ctr images import --snapshotter {} {} ({} KiB gzip, 1 layer): {secs:.3} s",
            s.name,
            s.snapshotter,
            tasks::REFERENCE,
            gz >> 10
        );
    }
    for s in sides {
        let id = |what: &str| format!("{tag}-{}-{what}", &s.name[..1]);
        tasks::sanity(s, &id("ok"), &id("exit")).await?;
        clean(s, "the sanity runs").await?;
        println!(
            "{}: ctr run --rm --snapshotter {} ... sh -c 'echo ok' printed ok; sh -c 'exit 3' \
             exited 3",
            s.name, s.snapshotter
        );
    }

    // The floor: a ctr process and one trivial RPC (Version), untimed for the rows.
    let floor = alternate_multi(sides, 0, FLOOR_RUNS, |s, _| {
        async move { Ok(vec![tasks::ctr_ok(s, &["version"]).await?.0 * 1e3]) }.boxed()
    })
    .await?
    .pop()
    .unwrap_or_default();
    let floor_of = |t: &str| {
        floor
            .get(t)
            .and_then(|v| Summary::of(v))
            .map_or("-".into(), |f| format!("{t} {:.1} ms", f.median))
    };

    // 1. Start-to-exit latency of `ctr run --rm IMG id true`, run by run, order alternating.
    let runs = args.task_runs.max(1);
    let lat = alternate_multi(sides, args.warmup, runs, |s, r| {
        async move {
            let id = format!("{tag}-{}-l{r}", &s.name[..1]);
            let (secs, _) = tasks::run_rm(s, &id, &["true"]).await?;
            Ok(vec![secs * 1e3])
        }
        .boxed()
    })
    .await?
    .pop()
    .unwrap_or_default();
    for s in sides {
        clean(s, "the latency runs").await?;
    }
    let mut p99 = Samples::new();
    for (name, v) in &lat {
        let mut v = v.clone();
        let p99v = percentile(&mut v, 99.0);
        let sum = Summary::of(&v).context("no latency runs")?;
        println!(
            "{name}: ctr run --rm ... true x{}: p50 {:.1} ms, p99 {:.1} ms (min {:.1}, max {:.1})",
            v.len(),
            sum.median,
            p99v.unwrap_or(f64::NAN),
            sum.min,
            sum.max
        );
        p99.insert(name.clone(), p99v.into_iter().collect());
    }
    let what = "ctr run --rm busybox true, start to exit";
    let mut m = Measurement::new(group, format!("{what}: p50"), BACKEND, "ms", false, lat);
    m.notes.push(format!(
        "timed: wall time of the whole stock ctr process, `ctr -a <runtime socket> -n {} run \
         --rm --snapshotter S {} <unique id> true` (container, snapshot, task, shim, runc \
         create/start, exit, delete, container removal); {runs} runs per side after {} warm-up \
         run(s), one at a time, sides alternating run by run (run 0 strata first); every run \
         must exit 0; p50 row: the median of the runs (even count: the mean of the middle two), \
         (min..max) over all of them",
        tasks::NAMESPACE,
        tasks::REFERENCE,
        args.warmup
    ));
    m.notes.push(format!(
        "floor, in every ctr command here: a `ctr version` (the ctr process and one trivial RPC) \
         takes {}, {} (median of {FLOOR_RUNS} each)",
        floor_of("strata"),
        floor_of("containerd")
    ));
    goal(args, &mut m);
    out.push(m);
    let mut m = Measurement::new(group, format!("{what}: p99"), BACKEND, "ms", false, p99);
    m.notes.push(format!(
        "p99: nearest rank over the {runs} runs (with fewer than 100 runs: the slowest)"
    ));
    goal(args, &mut m);
    out.push(m);

    // 2. N `ctr run --rm` at once; wall time until the last one exited, every one exit 0.
    let n = args.task_concurrency.max(1);
    let each = std::sync::Mutex::new(Samples::new());
    let all = alternate_multi(sides, 0, args.task_rounds.max(1), |s, r| {
        let each = &each;
        async move {
            let ids: Vec<String> = (0..n)
                .map(|i| format!("{tag}-{}-c{r}-{i}", &s.name[..1]))
                .collect();
            let (wall, mut secs) = tasks::concurrent(s, &ids).await?;
            clean(s, "a concurrent round").await?;
            println!(
                "{}: {n} x ctr run --rm ... true at once, round {r}: all {n} exited 0 in {wall:.3} \
                 s (each: p50 {:.0} ms, slowest {:.0} ms)",
                s.name,
                percentile(&mut secs, 50.0).unwrap_or(f64::NAN) * 1e3,
                percentile(&mut secs, 100.0).unwrap_or(f64::NAN) * 1e3
            );
            each.lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(s.name.to_string())
                .or_default()
                .extend(secs.iter().map(|v| v * 1e3));
            Ok(vec![wall])
        }
        .boxed()
    })
    .await?
    .pop()
    .unwrap_or_default();
    let mut m = Measurement::new(
        group,
        format!("{n} x ctr run --rm true at once: all exited"),
        BACKEND,
        "s",
        false,
        all,
    );
    let each = each.into_inner().unwrap_or_else(|p| p.into_inner());
    let p50_each = |t: &str| {
        each.get(t)
            .and_then(|v| percentile(&mut v.clone(), 50.0))
            .map_or("-".into(), |v| format!("{t} {v:.0} ms"))
    };
    m.notes.push(format!(
        "timed: {n} stock ctr processes started together (`ctr run --rm --snapshotter S {} \
         <unique id> true`), wall time until the last exited; every one must exit 0; {} round(s), \
         no warm-up, order alternating (round 0 strata first); nothing may be left after a round; \
         p50 of each command's own wall time: {}, {}",
        tasks::REFERENCE,
        args.task_rounds.max(1),
        p50_each("strata"),
        p50_each("containerd")
    ));
    goal(args, &mut m);
    out.push(m);

    // 3. Detached: run -d, task kill, task delete, containers rm.
    if args.task_cycles > 0 {
        let again = std::sync::Mutex::new(Vec::new());
        let cyc = alternate_multi(sides, 0, args.task_cycles, |s, r| {
            let again = &again;
            async move {
                let id = format!("{tag}-{}-d{r}", &s.name[..1]);
                let (secs, n) = tasks::cycle(s, &id).await?;
                again
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((s.name, n));
                Ok(vec![secs * 1e3])
            }
            .boxed()
        })
        .await?
        .pop()
        .unwrap_or_default();
        for s in sides {
            clean(s, "the detached cycles").await?;
        }
        let again = again.into_inner().unwrap_or_else(|p| p.into_inner());
        let repeats = |t: &str| {
            let v: Vec<usize> = again.iter().filter(|a| a.0 == t).map(|a| a.1).collect();
            format!(
                "{t} {} in {} cycles",
                v.iter().sum::<usize>(),
                v.iter().filter(|n| **n > 0).count()
            )
        };
        let mut m = Measurement::new(
            group,
            "ctr run -d + task kill + task delete + rm".into(),
            BACKEND,
            "ms",
            false,
            cyc,
        );
        m.notes.push(format!(
            "timed: four stock ctr processes in a row, `run -d --snapshotter S {} <unique id> \
             sleep 1000`, `tasks kill -s SIGKILL`, `tasks delete` (repeated while ctr says the \
             task must be stopped first: repeats {}, {}), `containers rm`; {} cycles per side, \
             order alternating; row: median (min..max)",
            tasks::REFERENCE,
            repeats("strata"),
            repeats("containerd"),
            args.task_cycles
        ));
        out.push(m);
    }
    Ok(())
}

fn goal(args: &Args, m: &mut Measurement) {
    if args.quick {
        return;
    }
    m.notes.push(match m.ratio() {
        Some(r) => format!(
            "goal: >= {GOAL_RATIO}x containerd: {} ({r:.2}x)",
            if r >= GOAL_RATIO { "met" } else { "NOT met" }
        ),
        None => "goal: no ratio".into(),
    });
}
