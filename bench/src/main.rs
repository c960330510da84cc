//! `strata-bench`: Strata against containerd 1.6 on the same machine, in one run, with the same
//! client. See bench/README.md.

mod client;
mod report;
mod servers;
mod stats;
mod workloads;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use futures::FutureExt;

use client::Target;
use stats::{Measurement, interleave};
use workloads::{content, snapshots};

/// Side-by-side benchmarks of strata-proxy and containerd 1.6.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Tiny sizes: checks every workload runs (CI smoke run); numbers are not meaningful.
    #[arg(long)]
    quick: bool,
    /// Large-blob ingest/read size in MiB.
    #[arg(long, default_value_t = 1024)]
    blob_mib: usize,
    /// Number of 4 KiB blobs.
    #[arg(long, default_value_t = 10_000)]
    small_blobs: usize,
    /// Number of random 64 KiB reads.
    #[arg(long, default_value_t = 2_000)]
    random_reads: usize,
    /// Snapshot cycles per round.
    #[arg(long, default_value_t = 500)]
    cycles: usize,
    /// Layers in the chain workload.
    #[arg(long, default_value_t = 128)]
    chain_layers: usize,
    /// Snapshots in the Walk workload.
    #[arg(long, default_value_t = 10_000)]
    walk_snapshots: usize,
    /// Measured rounds per workload and target (after the warm-up).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Warm-up rounds (discarded).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Snapshot backends to compare (overlay, native).
    #[arg(long, value_delimiter = ',', default_value = "overlay,native")]
    backends: Vec<String>,
    /// Workload groups to run (content, snapshots).
    #[arg(long, value_delimiter = ',', default_value = "content,snapshots")]
    only: Vec<String>,
    /// strata-proxy binary [default: next to this binary].
    #[arg(long)]
    strata_bin: Option<PathBuf>,
    /// Use a running strata-proxy on this socket instead of starting one.
    #[arg(long)]
    attach_strata: Option<PathBuf>,
    /// Use a running containerd on this socket instead of starting one.
    #[arg(long)]
    attach_containerd: Option<PathBuf>,
    /// Scratch directory for the servers' roots.
    #[arg(long, default_value = "/var/tmp")]
    workdir: PathBuf,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an SVG chart of the ratios here.
    #[arg(long)]
    svg: Option<PathBuf>,
}

impl Args {
    fn shrink(&mut self) {
        if self.quick {
            self.blob_mib = 8;
            self.small_blobs = 50;
            self.random_reads = 50;
            self.cycles = 20;
            self.chain_layers = 8;
            self.walk_snapshots = 150;
            self.rounds = 2;
            self.warmup = 0;
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    args.shrink();
    let scratch = tempfile::Builder::new()
        .prefix("strata-bench-")
        .tempdir_in(&args.workdir)?;
    let mut servers = Vec::new();
    let strata_sock = match &args.attach_strata {
        Some(s) => s.clone(),
        None => {
            let bin = match &args.strata_bin {
                Some(b) => b.clone(),
                None => std::env::current_exe()?.with_file_name("strata-proxy"),
            };
            let dir = scratch.path().join("strata");
            std::fs::create_dir_all(&dir)?;
            servers.push(servers::start_strata(&bin, &dir)?);
            servers
                .last()
                .map(|s| s.socket.clone())
                .context("no strata")?
        }
    };
    let ctd_sock = match &args.attach_containerd {
        Some(s) => s.clone(),
        None => {
            let dir = scratch.path().join("containerd");
            std::fs::create_dir_all(&dir)?;
            servers.push(servers::start_containerd(&dir)?);
            servers
                .last()
                .map(|s| s.socket.clone())
                .context("no containerd")?
        }
    };
    let targets = targets(strata_sock, ctd_sock).await?;
    print_machine(&args);
    let mut results = Vec::new();
    if args.only.iter().any(|o| o == "content") {
        run_content(&args, &targets, &mut results).await?;
    }
    if args.only.iter().any(|o| o == "snapshots") {
        for b in &args.backends {
            run_snapshots(&args, &targets, b, &mut results).await?;
        }
    }
    println!("\n{}", report::table(&results));
    if let Some(p) = &args.json {
        std::fs::write(p, serde_json::to_string_pretty(&results)?)?;
        println!("json: {}", p.display());
    }
    if let Some(p) = &args.svg {
        std::fs::write(
            p,
            report::svg(&results, "Strata / containerd 1.6 (median ratio)"),
        )?;
        println!("svg: {}", p.display());
    }
    drop(servers);
    Ok(())
}

async fn targets(strata: PathBuf, ctd: PathBuf) -> anyhow::Result<Vec<Target>> {
    let (sc, ss) = client::clients(client::connect(strata).await?);
    let (cc, cs) = client::clients(client::connect(ctd).await?);
    Ok(vec![
        Target {
            name: "strata",
            content: sc,
            snapshots: ss,
            namespace: None,
            snapshotters: vec![
                ("overlay", "strata-overlay".into()),
                ("native", "strata-native".into()),
            ],
        },
        Target {
            name: "containerd",
            content: cc,
            snapshots: cs,
            namespace: Some("strata-bench".into()),
            snapshotters: vec![("overlay", "overlayfs".into()), ("native", "native".into())],
        },
    ])
}

fn print_machine(args: &Args) {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!(
        "machine: {cpu}, {} cpus; rounds {} (+{} warm-up), interleaved strata/containerd",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        args.rounds,
        args.warmup
    );
}

const DURABILITY_CONTENT: &str = "durability: both fsync the blob before Commit returns; strata also \
fsyncs the blob directory and syncs its RocksDB WAL (containerd 1.6 syncs the file and its bolt tx)";
const DURABILITY_SNAP: &str = "durability: both sync their metadata per mutation (strata: RocksDB WAL \
sync; containerd: bolt fsync per tx)";

async fn run_content(
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
        async move { content::ingest_round(t, &mut *data.lock().await, r).await }.boxed()
    })
    .await?;
    let mut m = measurement(
        format!("ingest {} MiB", args.blob_mib),
        "-",
        "MiB/s",
        samples,
    );
    if let Some(s) = m.summary("strata") {
        m.notes.push(format!(
            "strata ingest = {:.0}% of single-core sha256 ({sha:.0} MiB/s)",
            s.median / sha * 100.0
        ));
    }
    m.notes.push(DURABILITY_CONTENT.into());
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
    out.push(measurement(
        format!("read {} MiB", args.blob_mib),
        "-",
        "MiB/s",
        samples,
    ));
    let samples = interleave(targets, args.warmup, args.rounds, |t, _| {
        content::random_reads_round(t, &digest, size, args.random_reads).boxed()
    })
    .await?;
    out.push(measurement(
        format!("random 64 KiB reads in {} MiB", args.blob_mib),
        "-",
        "reads/s",
        samples,
    ));
    let samples = interleave(targets, args.warmup, args.rounds, |t, r| {
        content::small_blobs_round(t, args.small_blobs, 4096, r).boxed()
    })
    .await?;
    out.push(measurement(
        format!("ingest {} x 4 KiB blobs", args.small_blobs),
        "-",
        "blobs/s",
        samples,
    ));
    Ok(())
}

async fn run_snapshots(
    args: &Args,
    targets: &[Target],
    backend: &str,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let both: Vec<Target> = targets
        .iter()
        .filter(|t| t.snapshotter(backend).is_some())
        .cloned()
        .collect();
    let sn = |t: &Target| t.snapshotter(backend).unwrap_or_default().to_string();
    let samples = interleave(&both, args.warmup, args.rounds, |t, r| {
        let s = sn(t);
        async move { snapshots::cycle_round(t, &s, args.cycles, r).await }.boxed()
    })
    .await?;
    let mut m = measurement(
        "prepare>commit>stat>remove".into(),
        backend,
        "cycles/s",
        samples,
    );
    m.notes.push(DURABILITY_SNAP.into());
    out.push(m);
    let samples = interleave(&both, args.warmup, args.rounds, |t, r| {
        let s = sn(t);
        async move { snapshots::chain_round(t, &s, args.chain_layers, r).await }.boxed()
    })
    .await?;
    out.push(measurement(
        format!("{}-layer chain prepare+commit", args.chain_layers),
        backend,
        "layers/s",
        samples,
    ));
    for t in &both {
        snapshots::populate(t, &sn(t), args.walk_snapshots).await?;
    }
    let samples = interleave(&both, args.warmup, args.rounds, |t, _| {
        let s = sn(t);
        async move { snapshots::walk_round(t, &s, args.walk_snapshots).await }.boxed()
    })
    .await?;
    out.push(measurement(
        format!("walk {} snapshots", args.walk_snapshots),
        backend,
        "snapshots/s",
        samples,
    ));
    Ok(())
}

fn measurement(
    workload: String,
    backend: &str,
    unit: &'static str,
    samples: std::collections::BTreeMap<String, Vec<f64>>,
) -> Measurement {
    Measurement {
        workload,
        backend: backend.to_string(),
        unit,
        samples,
        notes: Vec::new(),
    }
}
