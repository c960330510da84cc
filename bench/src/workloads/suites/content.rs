//! Content suite: one big blob ingested and read, random 64 KiB reads inside it, many 4 KiB
//! blobs.

use futures::FutureExt;

use crate::Args;
use crate::client::Target;
use crate::stats::{Measurement, interleave};
use crate::workloads::content;

const GROUP: &str = "content";

/// Runs the content workloads on every target.
pub async fn run(
    args: &Args,
    targets: &[Target],
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let size = args.blob_mib << 20;
    let sha = content::sha256_speed(size.min(256 << 20));
    println!("sha256 single core: {sha:.0} MiB/s");
    let data = tokio::sync::Mutex::new(content::random_bytes(size, 1));
    let samples = interleave(targets, args.warmup, args.rounds, |t, r| {
        let data = &data;
        async move { content::ingest_round(t, &mut data.lock().await, r).await }.boxed()
    })
    .await?;
    let mut m = rate(format!("ingest {} MiB", args.blob_mib), "MiB/s", samples);
    if let Some(s) = m.summary("strata") {
        m.notes.push(format!(
            "strata ingest = {:.0}% of single-core sha256 ({sha:.0} MiB/s)",
            s.median / sha * 100.0
        ));
    }
    out.push(m);

    let data = data.into_inner();
    let digest = content::digest_of(&data);
    for t in targets {
        content::ingest(t, "bench-read", &data, &digest).await?;
    }
    let samples = interleave(targets, args.warmup, args.rounds, |t, _| {
        content::read_round(t, &digest, size).boxed()
    })
    .await?;
    out.push(rate(
        format!("read {} MiB", args.blob_mib),
        "MiB/s",
        samples,
    ));
    let samples = interleave(targets, args.warmup, args.rounds, |t, _| {
        content::random_reads_round(t, &digest, size, args.random_reads).boxed()
    })
    .await?;
    out.push(rate(
        format!(
            "{} random 64 KiB reads in {} MiB",
            args.random_reads, args.blob_mib
        ),
        "reads/s",
        samples,
    ));
    for t in targets {
        content::delete(t, &digest).await?;
    }
    let samples = interleave(targets, args.warmup, args.rounds, |t, r| {
        content::small_blobs_round(t, args.small_blobs, 4096, r).boxed()
    })
    .await?;
    out.push(rate(
        format!("ingest {} x 4 KiB blobs", args.small_blobs),
        "blobs/s",
        samples,
    ));
    Ok(())
}

fn rate(workload: String, unit: &'static str, samples: crate::stats::Samples) -> Measurement {
    Measurement::new(GROUP, workload, "-", unit, true, samples)
}
