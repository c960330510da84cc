//! Unpack suite: stock `ctr images import` and `ctr images pull --plain-http` (with unpack) of
//! generated images, Strata's runtime socket against containerd 1.6's own content store and
//! snapshotters, per backend; with the single-core limits of this CPU beside the rates.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::FutureExt;
use strata_archive::Compression;

use crate::Args;
use crate::stats::{Measurement, alternate_multi};
use crate::workloads::imagegen::{self, Image};
use crate::workloads::unpack::{self, Limits, Op, Registry, Side};

/// Goal of the issue on overlay: at least twice as fast as containerd.
const GOAL_RATIO: f64 = 2.0;
const MIB: f64 = (1 << 20) as f64;

/// What every backend's run shares: the images, the registry holding them, the limits.
pub struct Prepared {
    pub images: Vec<Image>,
    /// None when the registry could not be started or filled (pull rows skipped, with a note).
    pub registry: Option<Registry>,
    pub limits: Limits,
}

/// Generates (or finds in the cache under `--workdir`) the images, measures the single-core
/// limits on their bytes, and starts a loopback registry under `scratch` holding them. Lines
/// worth keeping go to `notes`.
pub async fn prepare(
    args: &Args,
    scratch: &Path,
    notes: &mut Vec<String>,
) -> anyhow::Result<Prepared> {
    let cache = args.workdir.join("strata-bench-images");
    let (mib, counts) = (args.unpack_mib.max(1), args.unpack_layers.clone());
    let start = Instant::now();
    let images = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Image>> {
        let mut all = Vec::new();
        for (i, layers) in counts.iter().enumerate() {
            let comps: &[Compression] = if i == 0 {
                &[Compression::Gzip, Compression::Zstd]
            } else {
                &[Compression::Gzip]
            };
            all.extend(imagegen::ensure(&cache, (*layers).max(1), mib, comps)?);
        }
        Ok(all)
    })
    .await??;
    println!(
        "unpack images ready in {:.1} s:",
        start.elapsed().as_secs_f64()
    );
    for img in &images {
        println!("  {}", img.meta.describe());
        notes.push(format!("unpack image {}", img.meta.describe()));
    }

    let pick = |c: &str| images.iter().find(|i| i.meta.compression == c).cloned();
    let (gz, zs) = (pick("gzip"), pick("zstd"));
    let limits = tokio::task::spawn_blocking(move || -> anyhow::Result<Limits> {
        let blobs = |i: Option<Image>| i.map(|i| imagegen::layer_blobs(&i)).transpose();
        let (g, z) = (
            blobs(gz)?.unwrap_or_default(),
            blobs(zs)?.unwrap_or_default(),
        );
        unpack::limits(&g, &z)
    })
    .await??;
    let line = format!(
        "single-core limits on this CPU, same run, on the images' layer bytes (best of 3): gzip \
         inflate (flate2 + zlib-rs, Strata's decoder) {:.0} MiB/s of tar out ({:.0} MiB/s in); \
         zstd decode (libzstd via zstd-safe) {:.0} MiB/s out ({:.0} in); sha256 (sha2, SHA-NI \
         {}) {:.0} MiB/s",
        limits.gzip_out,
        limits.gzip_in,
        limits.zstd_out,
        limits.zstd_in,
        if unpack::sha_ni() { "on" } else { "absent" },
        limits.sha256
    );
    println!("{line}");
    notes.push(line);

    if let Some(note) = unjournaled_ext4(scratch) {
        println!("note: {note}");
        notes.push(note);
    }
    let registry = match start_registry(&scratch.join("registry"), &images) {
        Ok(r) => Some(r),
        Err(e) => {
            args.skip(notes, format!("unpack pull rows skipped: {e:#}"))?;
            None
        }
    };
    Ok(Prepared {
        images,
        registry,
        limits,
    })
}

/// A warning when `dir` (the servers' roots) is on ext4 without a journal. There, allocating an
/// inode skips every free inode released less than 5 s ago (305 s while its inode-table block is
/// dirty), one buffer-cache lookup each (`recently_deleted` in ext4's `find_inode_bit`): after
/// a round's `images rm --sync` freed tens of thousands of inodes, the next unpack on either
/// side spends most of its time there (seen with perf: 65% of strata-proxy's samples under
/// `ext4_create`).
fn unjournaled_ext4(dir: &Path) -> Option<String> {
    let dir = std::fs::canonicalize(dir).ok()?;
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let mut best: Option<(usize, String, String)> = None;
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let (Some(point), Some(fstype), Some(source)) = (
            left.split(' ').nth(4),
            right.split(' ').next(),
            right.split(' ').nth(1),
        ) else {
            continue;
        };
        if dir.starts_with(point) && best.as_ref().is_none_or(|b| point.len() >= b.0) {
            best = Some((point.len(), fstype.into(), source.into()));
        }
    }
    let (_, fstype, source) = best?;
    let dev = Path::new(&source)
        .file_name()?
        .to_string_lossy()
        .into_owned();
    let task = std::fs::read_to_string(format!("/sys/fs/ext4/{dev}/journal_task")).ok()?;
    (fstype == "ext4" && task.trim() == "<none>").then(|| {
        format!(
            "the servers' roots ({}) are on ext4 without a journal ({source}): new inodes there \
             skip those freed in the last 5-305 s (ext4's recently_deleted), so each round after \
             the previous round's images rm --sync is slowed on both sides, unevenly; for \
             stable unpack numbers give --workdir on a journaled file system",
            dir.display()
        )
    })
}

fn start_registry(dir: &Path, images: &[Image]) -> anyhow::Result<Registry> {
    let start = Instant::now();
    let reg = Registry::start(dir)?;
    for img in images {
        reg.push(img)?;
    }
    println!(
        "docker-registry on {} holds the {} images (pushed with skopeo in {:.1} s, untimed)",
        reg.addr,
        images.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(reg)
}

/// Import and pull rows of every image on `backend`, `sides` being strata and containerd, in
/// report section `group`: per image and operation, the wall time, the daemons' CPU time and
/// disk writes during it, and the `images rm --sync` after it.
pub async fn run(
    args: &Args,
    prep: &Prepared,
    sides: &[Side],
    backend: &str,
    group: &str,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let group = group.to_string();
    // --quick: sync and a token pause, to stay within CI's smoke-run budget.
    let settle = Duration::from_millis(if args.quick { 50 } else { args.settle_ms });
    let mut ops = vec![Op::Import];
    if prep.registry.is_some() {
        ops.push(Op::Pull);
        if sides.iter().all(|s| s.cri_pull.is_some()) {
            ops.push(Op::CriPull);
        }
    }
    let registry = prep.registry.as_ref().map(|r| r.addr.clone());
    for op in ops {
        // --quick pulls only the first image (CI's smoke-run budget); the path is the same.
        let take = if args.quick && op != Op::Import {
            1
        } else {
            prep.images.len()
        };
        for img in prep.images.iter().take(take) {
            let registry = registry.as_deref();
            let label = &img.meta.label;
            let mut series = alternate_multi(sides, 0, args.unpack_rounds, |side, r| {
                async move {
                    let ns = format!("bench-unpack-{}-{label}-{backend}-{r}", op.label());
                    let got = unpack::round(side, op, img, registry, &ns, settle).await?;
                    let secs = got.secs;
                    println!(
                        "{}: {} {label} --snapshotter {} round {r}: {secs:.3} s \
                         ({:.1} MiB/s compressed, {:.1} MiB/s tar); daemons {:.2} s CPU, \
                         {:.1} MiB written; images rm --sync {:.3} s",
                        side.name,
                        op.command(),
                        side.snapshotter,
                        img.meta.compressed() as f64 / MIB / secs,
                        img.meta.uncompressed() as f64 / MIB / secs,
                        got.work.cpu_s,
                        got.work.written as f64 / MIB,
                        got.rm_secs
                    );
                    Ok(vec![
                        secs,
                        got.work.cpu_s,
                        got.work.written as f64 / MIB,
                        got.rm_secs,
                    ])
                }
                .boxed()
            })
            .await?
            .into_iter();
            let what = format!(
                "{} {label}, {} layers, {:.0} MiB",
                op.row(),
                img.meta.layers.len(),
                img.meta.compressed() as f64 / MIB
            );
            let mut m = Measurement::new(
                &group,
                what.clone(),
                backend,
                "s",
                false,
                series.next().unwrap_or_default(),
            );
            m.notes.push(rates(&m, img, &prep.limits));
            if !args.quick && backend == "overlay" && group.starts_with("unpack") {
                m.notes.push(goal(&m));
            }
            out.push(m);
            let measured = sides.iter().all(|s| !s.pids.is_empty());
            for (unit, label) in [
                ("CPU s", format!("{what}: daemons' CPU time")),
                ("MiB", format!("{what}: daemons' disk writes")),
                ("s", format!("ctr images rm --sync after {what}")),
            ] {
                let samples = series.next().unwrap_or_default();
                if unit != "s" && !measured {
                    continue;
                }
                out.push(Measurement::new(
                    &group, label, backend, unit, false, samples,
                ));
            }
        }
    }
    if let Some(first) = out.iter_mut().find(|m| m.group == group) {
        first.notes.push(format!(
            "timed: wall time of stock ctr (`ctr -a <runtime socket> -n <fresh ns> images import \
             --snapshotter S <oci archive>` / `images pull --plain-http --snapshotter S \
             127.0.0.1:<port>/bench/<image>:1` from a loopback docker-registry; the cri-pull \
             rows: integration/cri-pull, containerd's Go client `Pull` with unpack and the CRI \
             plugin's snapshotter labels, as kubelet's pulls run), unpack included; \
             {} rounds, no warm-up, order alternating (round 0 strata first); sync + {} ms idle \
             before each; the daemons' CPU time (utime + stime) and disk writes (write_bytes of \
             /proc/<pid>/io) counted over the command; after each: one committed snapshot per \
             layer checked, sync + idle, images rm --sync timed, no snapshot or blob left, \
             namespace removed",
            args.unpack_rounds,
            settle.as_millis()
        ));
    }
    Ok(())
}

/// The concurrent rows: `--concurrent-clients` stock `ctr` clients at once, each importing
/// (and pulling, with a registry) the first image into its own namespace; wall time until the
/// last exited, and the daemons' CPU time and disk writes over it. Rounds alternate the order.
pub async fn run_concurrent(
    args: &Args,
    prep: &Prepared,
    sides: &[Side],
    backend: &str,
    group: &str,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let (n, Some(img)) = (args.concurrent_clients, prep.images.first()) else {
        return Ok(());
    };
    if n == 0 {
        return Ok(());
    }
    let settle = Duration::from_millis(if args.quick { 50 } else { args.settle_ms });
    let registry = prep.registry.as_ref().map(|r| r.addr.clone());
    let mut ops = vec![Op::Import];
    if registry.is_some() {
        ops.push(Op::Pull);
    }
    let label = &img.meta.label;
    for op in ops {
        let registry = registry.as_deref();
        let mut series = alternate_multi(sides, 0, args.unpack_rounds, |side, r| {
            async move {
                let ns = format!("bench-many-{}-{label}-{backend}-{r}", op.label());
                let got = unpack::concurrent_round(side, op, img, registry, &ns, n, settle).await?;
                println!(
                    "{}: {n} x ctr images {} {label} --snapshotter {} at once, round {r}: all \
                     exited in {:.3} s (each {:.3}..{:.3} s); daemons {:.2} s CPU, {:.1} MiB \
                     written",
                    side.name,
                    op.label(),
                    side.snapshotter,
                    got.secs,
                    got.each.iter().copied().fold(f64::INFINITY, f64::min),
                    got.each.iter().copied().fold(0.0, f64::max),
                    got.work.cpu_s,
                    got.work.written as f64 / MIB
                );
                Ok(vec![
                    got.secs,
                    got.work.cpu_s,
                    got.work.written as f64 / MIB,
                ])
            }
            .boxed()
        })
        .await?
        .into_iter();
        let what = format!(
            "{n} x ctr {} {label} at once ({} layers, {:.0} MiB; a namespace each), all exited",
            op.label(),
            img.meta.layers.len(),
            img.meta.compressed() as f64 / MIB
        );
        let mut m = Measurement::new(
            group,
            what.clone(),
            backend,
            "s",
            false,
            series.next().unwrap_or_default(),
        );
        m.notes.push(format!(
            "timed: {n} stock ctr processes started together, `ctr -n <ns>-<i> images {}` with \
             unpack, until the last exited (each must exit 0); {} rounds, order alternating; \
             sync + {} ms idle before; after: one committed snapshot per layer checked in every \
             namespace, then images rm --sync in each, nothing left",
            op.label(),
            args.unpack_rounds,
            settle.as_millis()
        ));
        out.push(m);
        if sides.iter().all(|s| !s.pids.is_empty()) {
            for (unit, label) in [
                ("CPU s", format!("{what}: daemons' CPU time")),
                ("MiB", format!("{what}: daemons' disk writes")),
            ] {
                let samples = series.next().unwrap_or_default();
                out.push(Measurement::new(
                    group, label, backend, unit, false, samples,
                ));
            }
        }
    }
    Ok(())
}

/// "MiB/s (medians): strata C compressed / U tar, containerd ...; limit ..." for `m`.
fn rates(m: &Measurement, img: &Image, l: &Limits) -> String {
    let c = img.meta.compressed() as f64 / MIB;
    let u = img.meta.uncompressed() as f64 / MIB;
    let side = |t: &str| {
        m.summary(t).map_or("-".into(), |s| {
            format!("{t} {:.0} / {:.0}", c / s.median, u / s.median)
        })
    };
    let limit = if img.meta.compression == "zstd" {
        format!(
            "zstd decode {:.0} MiB/s of tar ({:.0} compressed)",
            l.zstd_out, l.zstd_in
        )
    } else {
        format!(
            "gzip inflate {:.0} MiB/s of tar ({:.0} compressed)",
            l.gzip_out, l.gzip_in
        )
    };
    format!(
        "MiB/s compressed / tar (medians): {}, {}; one core here: {limit}, sha256 {:.0} MiB/s",
        side("strata"),
        side("containerd"),
        l.sha256
    )
}

fn goal(m: &Measurement) -> String {
    match m.ratio() {
        Some(r) => format!(
            "goal: >= {GOAL_RATIO}x containerd on overlay: {} ({r:.2}x)",
            if r >= GOAL_RATIO { "met" } else { "NOT met" }
        ),
        None => "goal: no ratio".into(),
    }
}
