//! Content suite: one big blob ingested and read, random 64 KiB reads inside it, many 4 KiB
//! blobs.

use futures::FutureExt;

use crate::Args;
use crate::client::Target;
use crate::stats::{Measurement, Samples, interleave, interleave_multi};
use crate::workloads::content;

/// Runs the content workloads on every target.
pub async fn run(
    args: &Args,
    targets: &[Target],
    pids: &[Option<u32>],
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    run_group(args, targets, pids, "content", out).await
}

/// [`run`] in report section `group`.
pub async fn run_group(
    args: &Args,
    targets: &[Target],
    pids: &[Option<u32>],
    group: &str,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let size = args.blob_mib << 20;
    let sha = content::sha256_speed(size.min(256 << 20));
    println!("sha256 single core: {sha}");
    let data = tokio::sync::Mutex::new(content::random_bytes(size, 1));
    let samples = interleave(targets, args.warmup, args.rounds, |t, r| {
        let data = &data;
        async move { content::ingest_round(t, &mut data.lock().await, r).await }.boxed()
    })
    .await?;
    let mut m = rate(
        group,
        format!("ingest {} MiB", args.blob_mib),
        "MiB/s",
        samples,
    );
    if let Some(s) = m.summary("strata") {
        m.notes.push(sha.share("strata ingest", s.median));
    }
    out.push(m);

    let data = bytes::Bytes::from(data.into_inner());
    let digest = content::digest_of(&data);
    for t in targets {
        content::ingest(t, "bench-read", &data, &digest).await?;
    }
    let samples = interleave(targets, args.warmup, args.rounds, |t, _| {
        content::read_round(t, &digest, size).boxed()
    })
    .await?;
    out.push(rate(
        group,
        format!("read {} MiB", args.blob_mib),
        "MiB/s",
        samples,
    ));
    let samples = interleave(targets, args.warmup, args.rounds, |t, _| {
        content::read_at_round(t, &digest, size, 1 << 20).boxed()
    })
    .await?;
    out.push(rate(
        group,
        format!("read {} MiB in 1 MiB Read calls", args.blob_mib),
        "MiB/s",
        samples,
    ));
    let samples = interleave(targets, args.warmup, args.rounds, |t, _| {
        content::random_reads_round(t, &digest, size, args.random_reads).boxed()
    })
    .await?;
    out.push(rate(
        group,
        format!(
            "{} random 64 KiB reads in {} MiB",
            args.random_reads, args.blob_mib
        ),
        "reads/s",
        samples,
    ));
    small_reads(args, targets, pids, &digest, size, group, out).await?;
    for t in targets {
        content::delete(t, &digest).await?;
    }
    let samples = interleave(targets, args.warmup, args.rounds, |t, r| {
        content::small_blobs_round(t, args.small_blobs, 4096, r).boxed()
    })
    .await?;
    out.push(rate(
        group,
        format!("ingest {} x 4 KiB blobs", args.small_blobs),
        "blobs/s",
        samples,
    ));
    Ok(())
}

/// 32 KiB Read calls one after another (what containerd's proxy content reader sends during an
/// unpack, one per ReadAt): reads/s, and the daemon's CPU time per call when the bench started it.
async fn small_reads(
    args: &Args,
    targets: &[Target],
    pids: &[Option<u32>],
    digest: &str,
    size: usize,
    group: &str,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let pid_of = |t: &Target| {
        let i = targets.iter().position(|x| x.name == t.name)?;
        pids.get(i).copied().flatten()
    };
    let mut series = interleave_multi(targets, args.warmup, args.rounds, |t, _| {
        let pid = pid_of(t);
        async move {
            let (rate, cpu_us) =
                content::small_reads_round(t, digest, size, args.small_reads, pid).await?;
            Ok(vec![rate, cpu_us])
        }
        .boxed()
    })
    .await?
    .into_iter();
    let (Some(rates), Some(cpu)) = (series.next(), series.next()) else {
        anyhow::bail!("small reads: no samples");
    };
    out.push(rate(
        group,
        format!(
            "{} x 32 KiB Read calls in {} MiB",
            args.small_reads, args.blob_mib
        ),
        "reads/s",
        rates,
    ));
    if pids.len() < targets.len() || pids.iter().any(Option::is_none) {
        println!("note: daemon CPU per Read not measured: a server was attached, not started");
        return Ok(());
    }
    let mut m = Measurement::new(
        group,
        "daemon CPU per 32 KiB Read call".to_string(),
        "-",
        "us",
        false,
        cpu,
    );
    let whose = match group {
        "content" => "containerd's includes its metadata layer",
        _ => "containerd's is refproxy's: its local store, no metadata layer",
    };
    m.notes.push(format!(
        "utime + stime of the server process (/proc/<pid>/stat, 10 ms ticks) over the calls \
         above, divided by their number; {whose}"
    ));
    out.push(m);
    Ok(())
}

/// A higher-is-better row of `group`.
fn rate(group: &str, workload: String, unit: &'static str, samples: Samples) -> Measurement {
    Measurement::new(group, workload, "-", unit, true, samples)
}
