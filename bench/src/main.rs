//! `strata-bench`: Strata against containerd 1.6 on the same machine, in one run, with the same
//! client. See bench/README.md.

mod client;
mod report;
mod servers;
mod stats;
mod workloads;

use std::path::{Path, PathBuf};

use clap::Parser;

use client::Target;
use workloads::suites;

/// Side-by-side benchmarks of strata-proxy and containerd 1.6.
#[derive(Debug, Parser)]
#[command(version, about)]
pub struct Args {
    /// Tiny sizes: checks every workload runs (CI smoke run); numbers are not meaningful.
    #[arg(long)]
    quick: bool,
    /// Every group and row asked for must run: what would otherwise be skipped with a note (a
    /// tool missing, a server that does not start, a group that fails) is an error, and the
    /// exit status is non-zero. CI's smoke run uses it.
    #[arg(long)]
    strict: bool,
    /// Large-blob ingest/read size in MiB.
    #[arg(long, default_value_t = 1024)]
    blob_mib: usize,
    /// Number of 4 KiB blobs.
    #[arg(long, default_value_t = 10_000)]
    small_blobs: usize,
    /// Number of random 64 KiB reads.
    #[arg(long, default_value_t = 2_000)]
    random_reads: usize,
    /// Number of 32 KiB Read calls (the size containerd's proxy reader asks for).
    #[arg(long, default_value_t = 5_000)]
    small_reads: usize,
    /// Snapshot cycles per round.
    #[arg(long, default_value_t = 500)]
    cycles: usize,
    /// Layers in the chain workload.
    #[arg(long, default_value_t = 128)]
    chain_layers: usize,
    /// Snapshots in the Walk workload.
    #[arg(long, default_value_t = 10_000)]
    walk_snapshots: usize,
    /// Size of the big parent snapshot in MiB.
    #[arg(long, default_value_t = 200)]
    parent_mib: usize,
    /// Files in the big parent snapshot (spread over 60 directories).
    #[arg(long, default_value_t = 6_000)]
    parent_files: usize,
    /// Timed Prepare + Commit children of the big parent per round.
    #[arg(long, default_value_t = 8)]
    parent_ops: usize,
    /// Concurrent client counts for the mixed workload.
    #[arg(long, value_delimiter = ',', default_value = "1,8,64")]
    clients: Vec<usize>,
    /// Loop iterations per client in the mixed workload (7 RPCs each).
    #[arg(long, default_value_t = 25)]
    client_iters: usize,
    /// runtime group: snapshots, and blobs, collected by the timed GC pass (Leases.Delete sync).
    #[arg(long, default_value_t = 10_000)]
    gc_objects: usize,
    /// runtime group: snapshots per chain in the GC set-up (all committed but the active top;
    /// 1 = independent active snapshots).
    #[arg(long, default_value_t = 10)]
    gc_chain: usize,
    /// runtime group: measured GC rounds per target (no warm-up; containerd's pass is slow).
    #[arg(long, default_value_t = 2)]
    gc_rounds: usize,
    /// runtime group: idle time in ms after `sync`, before the timed GC pass.
    #[arg(long, default_value_t = 2_000)]
    settle_ms: u64,
    /// deployed group: stock `ctr` clients started together for the concurrent import and
    /// pull rows (each into its own namespace, the first image only; 0: no such rows).
    #[arg(long, default_value_t = 8)]
    concurrent_clients: usize,
    /// runtime group: images (100 labels each) for the Images.List workload.
    #[arg(long, default_value_t = 10_000)]
    list_images: usize,
    /// runtime group: Images.List calls per round.
    #[arg(long, default_value_t = 20)]
    list_calls: usize,
    /// unpack group: approximate compressed (gzip) size of each generated image, MiB.
    #[arg(long, default_value_t = 150)]
    unpack_mib: usize,
    /// unpack group: layer counts of the generated images; the first count gets a gzip image
    /// and its zstd twin, every further count a gzip image.
    #[arg(long, value_delimiter = ',', default_value = "3,20")]
    unpack_layers: Vec<usize>,
    /// unpack group: measured rounds per image, operation and backend (no warm-up; order
    /// alternating; `--settle-ms` of idle after `sync` before each).
    #[arg(long, default_value_t = 3)]
    unpack_rounds: usize,
    /// tasks group: measured `ctr run --rm` runs per side for the latency rows (after
    /// `--warmup` runs each; one at a time, sides alternating).
    #[arg(long, default_value_t = 50)]
    task_runs: usize,
    /// tasks group: `ctr run --rm` started at once per side in a concurrent round.
    #[arg(long, default_value_t = 20)]
    task_concurrency: usize,
    /// tasks group: concurrent rounds per side (no warm-up; order alternating).
    #[arg(long, default_value_t = 5)]
    task_rounds: usize,
    /// tasks group: `ctr run -d` + `task kill` + `task delete` + `containers rm` cycles per
    /// side (0: none).
    #[arg(long, default_value_t = 20)]
    task_cycles: usize,
    /// lazy group: measured rounds (each: every variant once, fresh namespace, order rotating;
    /// no warm-up). The image is the unpack group's first `--unpack-layers` count at
    /// `--unpack-mib`, plus a busybox layer and a Python layer (the host's python3.11 and a 64 MiB
    /// random file), converted to eStargz.
    #[arg(long, default_value_t = 3)]
    lazy_rounds: usize,
    /// Measured rounds per workload and target (after the warm-up).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Warm-up rounds (discarded).
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Snapshot backends to compare (overlay, native, btrfs; btrfs needs --btrfs-dir).
    #[arg(long, value_delimiter = ',', default_value = "overlay,native,btrfs")]
    backends: Vec<String>,
    /// Workload groups to run (content, mixed, snapshots, direct, runtime, unpack, deployed,
    /// tasks; lazy only when named).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "content,mixed,snapshots,direct,runtime,unpack,deployed,tasks"
    )]
    only: Vec<String>,
    /// deployed and lazy groups: also against containerd 2.x, from this directory (`bin/containerd`,
    /// `bin/ctr`, `bin/containerd-shim-runc-v2`; `scripts/containerd2.sh` prints one).
    #[arg(long)]
    containerd2: Option<PathBuf>,
    /// lazy group: also stargz-snapshotter, served by this containerd-stargz-grpc binary
    /// (started with `--root`, `--address` and a `--config` that makes the loopback registry
    /// plain HTTP), a proxy snapshotter `stargz` of the same containerd, pulled with
    /// `ctr-remote image rpull --snapshotter stargz`.
    #[arg(long)]
    stargz_grpc: Option<PathBuf>,
    /// A directory on a btrfs mount: a second strata-proxy and containerd pair is started with
    /// roots under it for the btrfs backend (containerd's btrfs snapshotter needs its root there).
    #[arg(long)]
    btrfs_dir: Option<PathBuf>,
    /// strata-proxy binary [default: next to this binary].
    #[arg(long)]
    strata_bin: Option<PathBuf>,
    /// Use a running strata-proxy on this socket instead of starting one.
    #[arg(long)]
    attach_strata: Option<PathBuf>,
    /// With --attach-strata: that strata-proxy's runtime socket (--runtime-address), for the
    /// runtime group (skipped without it).
    #[arg(long)]
    attach_strata_runtime: Option<PathBuf>,
    /// Use a running containerd on this socket instead of starting one.
    #[arg(long)]
    attach_containerd: Option<PathBuf>,
    /// Scratch directory for the servers' roots and the bench's mountpoints.
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
    /// Records why a group or some of its rows did not run: a note in the report, or with
    /// `--strict` an error.
    pub fn skip(&self, notes: &mut Vec<String>, note: String) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.strict,
            "{note} (--strict: every group asked for must run)"
        );
        println!("note: {note}");
        notes.push(note);
        Ok(())
    }

    fn shrink(&mut self) {
        if self.quick {
            self.blob_mib = 8;
            self.small_blobs = 50;
            self.random_reads = 50;
            self.small_reads = 50;
            self.cycles = 20;
            self.chain_layers = 8;
            self.walk_snapshots = 150;
            self.parent_mib = 2;
            self.parent_files = 120;
            self.parent_ops = 2;
            self.client_iters = 2;
            self.gc_objects = 50;
            self.gc_rounds = 2;
            self.settle_ms = 200;
            self.list_images = 100;
            self.list_calls = 3;
            self.unpack_mib = 3;
            self.unpack_layers = vec![2, 5];
            self.unpack_rounds = 1;
            self.task_runs = 5;
            self.task_concurrency = 5;
            self.task_rounds = 1;
            self.task_cycles = 2;
            self.lazy_rounds = 1;
            self.rounds = 2;
            self.warmup = 0;
        }
    }

    fn wants(&self, group: &str) -> bool {
        self.only.iter().any(|o| o == group)
    }

    fn strata_bin(&self) -> anyhow::Result<PathBuf> {
        match &self.strata_bin {
            Some(b) => Ok(b.clone()),
            None => Ok(std::env::current_exe()?.with_file_name("strata-proxy")),
        }
    }
}

/// Servers under test (stopped on drop) and the clients that reach them.
struct Pair {
    targets: Vec<Target>,
    sockets: Vec<PathBuf>,
    /// Per target: the socket serving containerd's runtime services and where the server keeps
    /// its files (None when attached); Err says why the runtime group cannot run.
    runtime: Result<Vec<(PathBuf, Option<workloads::runtime::Disk>)>, String>,
    /// Per target: the root of the server the bench started (None when attached).
    roots: Vec<Option<PathBuf>>,
    /// Per target: the process id of the server the bench started (None when attached).
    pids: Vec<Option<u32>>,
    _servers: Vec<servers::Server>,
}

/// Starts (or attaches to) strata-proxy and containerd with roots under `dir`.
async fn pair(
    args: &Args,
    dir: &Path,
    strata: Option<&PathBuf>,
    ctd: Option<&PathBuf>,
) -> anyhow::Result<Pair> {
    let mut started = Vec::new();
    let mut runtime = Ok(Vec::new());
    let mut roots = Vec::new();
    let mut pids = Vec::new();
    for (name, attach) in [("strata", strata), ("containerd", ctd)] {
        roots.push(attach.is_none().then(|| dir.join(name)));
        let rt = if let Some(s) = attach {
            pids.push(None);
            if name == "containerd" {
                Ok((s.clone(), None))
            } else {
                args.attach_strata_runtime
                    .clone()
                    .map(|r| (r, None))
                    .ok_or_else(|| {
                        "runtime skipped: --attach-strata needs --attach-strata-runtime SOCK"
                            .to_string()
                    })
            }
        } else {
            let root = dir.join(name);
            std::fs::create_dir_all(&root)?;
            let server = match name {
                "strata" => servers::start_strata(&args.strata_bin()?, &root)?,
                _ => servers::start_containerd(&root)?,
            };
            let rt = match name {
                "strata" => (
                    server.runtime_socket.clone().unwrap_or_default(),
                    Some(workloads::runtime::Disk::strata(&server.root)),
                ),
                _ => (
                    server.socket.clone(),
                    Some(workloads::runtime::Disk::containerd(&server.root)),
                ),
            };
            pids.push(Some(server.pid()));
            started.push(server);
            Ok(rt)
        };
        runtime = match (runtime, rt) {
            (Ok(mut v), Ok(rt)) => {
                v.push(rt);
                Ok(v)
            }
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
    }
    let sockets = vec![
        strata.cloned().unwrap_or_else(|| started[0].socket.clone()),
        ctd.cloned()
            .unwrap_or_else(|| started[started.len() - 1].socket.clone()),
    ];
    let targets = targets(&sockets[0], &sockets[1]).await?;
    Ok(Pair {
        targets,
        sockets,
        runtime,
        roots,
        pids,
        _servers: started,
    })
}

/// Clients of the runtime sockets of `pair` (two connections each).
async fn runtime_targets(pair: &Pair) -> Result<Vec<workloads::runtime::Rt>, String> {
    let eps = pair.runtime.clone()?;
    let mut out = Vec::new();
    for ((name, sn), (socket, disk)) in [("strata", "strata-overlay"), ("containerd", "overlayfs")]
        .into_iter()
        .zip(eps)
    {
        let connect = || client::connect(socket.clone());
        let (channel, second) = match (connect().await, connect().await) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return Err(format!("runtime skipped: {e:#}")),
        };
        out.push(workloads::runtime::Rt {
            name,
            channel,
            second,
            snapshotter: sn.into(),
            disk,
        });
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    args.shrink();
    let scratch = tempfile::Builder::new()
        .prefix("strata-bench-")
        .tempdir_in(&args.workdir)?;
    let main_pair = pair(
        &args,
        scratch.path(),
        args.attach_strata.as_ref(),
        args.attach_containerd.as_ref(),
    )
    .await?;
    print_machine(&args);
    let mut results = Vec::new();
    let mut notes = Vec::new();
    let targets = &main_pair.targets;
    if args.wants("content") {
        suites::content::run(&args, targets, &main_pair.pids, &mut results).await?;
    }
    if args.wants("mixed") {
        suites::mixed::run(&args, targets, &main_pair.sockets, &mut results).await?;
    }
    let want_btrfs = args.backends.iter().any(|b| b == "btrfs");
    // The btrfs pair, started when first needed and kept for the snapshot and unpack groups.
    let mut btrfs: Option<Result<BtrfsPair, String>> = None;
    if args.wants("snapshots") {
        for b in args.backends.iter().filter(|b| *b != "btrfs") {
            suites::snapshots::run(&args, targets, b, scratch.path(), &mut results).await?;
        }
        if want_btrfs {
            let bp = btrfs_pair(&args).await?;
            match &bp {
                Ok(p) => {
                    let dir = p.dir.path();
                    suites::snapshots::run(&args, &p.pair.targets, "btrfs", dir, &mut results)
                        .await?
                }
                Err(note) => args.skip(&mut notes, note.clone())?,
            }
            btrfs = Some(bp);
        }
    }
    if args.wants("direct") {
        let dir = scratch.path().join("direct");
        std::fs::create_dir_all(&dir)?;
        suites::direct::run(&args, &dir, &mut results, &mut notes).await?;
    }
    if args.wants("runtime") {
        match runtime_targets(&main_pair).await {
            Ok(rts) => suites::runtime::run(&args, &rts, &mut results).await?,
            Err(note) => args.skip(&mut notes, note)?,
        }
    }
    let prep = match args.wants("unpack") || args.wants("deployed") {
        true => Some(suites::unpack::prepare(&args, scratch.path(), &mut notes).await?),
        false => None,
    };
    if let Some(prep) = prep.as_ref().filter(|_| args.wants("unpack")) {
        for b in args.backends.iter().filter(|b| *b != "btrfs") {
            match unpack_sides(&main_pair, b) {
                Ok(sides) => {
                    let group = format!("unpack: {b}");
                    suites::unpack::run(&args, &prep, &sides, b, &group, &mut results).await?
                }
                Err(note) => args.skip(&mut notes, note)?,
            }
        }
        if want_btrfs {
            let reported = btrfs.is_some();
            if btrfs.is_none() {
                btrfs = Some(btrfs_pair(&args).await?);
            }
            match btrfs
                .as_ref()
                .map(|b| b.as_ref().map(|p| unpack_sides(&p.pair, "btrfs")))
            {
                Some(Ok(Ok(sides))) => {
                    let group = "unpack: btrfs";
                    suites::unpack::run(&args, &prep, &sides, "btrfs", group, &mut results).await?
                }
                Some(Ok(Err(note))) => args.skip(&mut notes, note)?,
                Some(Err(note)) if !reported => args.skip(&mut notes, note.clone())?,
                _ => {}
            }
        }
    }
    drop(btrfs);
    // Last but the deployed group: it catches SIGINT/SIGTERM while it runs (to clean up), and
    // keeps them caught.
    if args.wants("tasks") {
        match task_sides(&main_pair) {
            Ok(sides) => {
                let (group, dir) = ("tasks", scratch.path());
                suites::tasks::run(&args, &sides, group, dir, &mut results, &mut notes).await?
            }
            Err(note) => args.skip(&mut notes, note)?,
        }
    }
    drop(main_pair);
    // After the tasks group, whose signal handlers it shares (its ctr run rows are the same).
    if let Some(prep) = prep.as_ref().filter(|_| args.wants("deployed")) {
        for ctd in &containerds(&args) {
            let dir = scratch.path().join(format!("deployed-{}", ctd.label()));
            let btrfs = args.btrfs_dir.as_deref().filter(|d| servers::on_btrfs(d));
            suites::deployed::run(&args, prep, ctd, &dir, btrfs, &mut results, &mut notes).await?;
        }
    }
    drop(prep);
    if args.wants("lazy") {
        for ctd in containerds(&args) {
            let dir = scratch.path().join(format!("lazy-{}", ctd.label()));
            if let Err(e) = suites::lazy::run(&args, &ctd, &dir, &mut results, &mut notes).await {
                let note = format!("lazy, containerd {} failed: {e:#}", ctd.label());
                args.skip(&mut notes, note)?;
            }
        }
    }
    report::write_all(&args, &results, &notes)
}

/// containerd 1.6 and, with `--containerd2`, the 2.x there.
fn containerds(args: &Args) -> Vec<servers::Containerd> {
    let mut versions = vec![servers::Containerd::default()];
    versions.extend(
        args.containerd2
            .clone()
            .map(|d| servers::Containerd { v2_dir: Some(d) }),
    );
    versions
}

/// The runtime sockets of `pair` and their snapshotter for `backend`, for `ctr`.
fn unpack_sides(pair: &Pair, backend: &str) -> Result<Vec<workloads::unpack::Side>, String> {
    let eps = pair
        .runtime
        .clone()
        .map_err(|e| e.replacen("runtime skipped", "unpack skipped", 1))?;
    pair.targets
        .iter()
        .zip(eps)
        .zip(&pair.pids)
        .map(|((t, (socket, _)), pid)| {
            let sn = t.snapshotter(backend).ok_or_else(|| {
                format!("unpack {backend} skipped: {} has no such backend", t.name)
            })?;
            Ok(workloads::unpack::Side {
                name: t.name,
                socket,
                snapshotter: sn.to_string(),
                ctr: PathBuf::from("ctr"),
                cri_pull: None,
                pids: pid.iter().copied().collect(),
            })
        })
        .collect()
}

/// The runtime sockets of `pair` for the tasks group (overlay backend), with where each
/// server keeps runc's state and its own root (for the last-resort clean-up).
fn task_sides(pair: &Pair) -> Result<Vec<workloads::tasks::Side>, String> {
    let eps = pair
        .runtime
        .clone()
        .map_err(|e| e.replacen("runtime skipped", "tasks skipped", 1))?;
    pair.targets
        .iter()
        .zip(eps)
        .zip(&pair.roots)
        .map(|((t, (socket, _)), root)| {
            let sn = t
                .snapshotter("overlay")
                .ok_or_else(|| format!("tasks skipped: {} has no overlay backend", t.name))?;
            let ns = workloads::tasks::NAMESPACE;
            let runc_root = match (t.name, root) {
                // strata-proxy --state <root>/state keeps runc's state in <state>/runc/<ns>.
                ("strata", Some(r)) => Some(servers::strata_state(r).join("runc").join(ns)),
                ("strata", None) => None,
                // containerd-shim-runc-v2's default runc root.
                _ => Some(Path::new("/run/containerd/runc").join(ns)),
            };
            Ok(workloads::tasks::Side {
                name: t.name,
                socket,
                snapshotter: sn.to_string(),
                ctr: PathBuf::from("ctr"),
                runc_root,
                server_root: root.clone(),
            })
        })
        .collect()
}

/// A second pair of servers with roots under `--btrfs-dir` (fields drop in order: the servers
/// stop before their directory goes).
struct BtrfsPair {
    pair: Pair,
    dir: tempfile::TempDir,
}

/// Starts the btrfs pair and probes both sides' btrfs backend; Err says why btrfs is skipped.
async fn btrfs_pair(args: &Args) -> anyhow::Result<Result<BtrfsPair, String>> {
    let Some(dir) = &args.btrfs_dir else {
        return Ok(Err(
            "btrfs skipped: give --btrfs-dir DIR (a directory on a btrfs mount)".into(),
        ));
    };
    if !servers::on_btrfs(dir) {
        return Ok(Err(format!(
            "btrfs skipped: {} is not on a btrfs mount",
            dir.display()
        )));
    }
    let scratch = tempfile::Builder::new()
        .prefix("strata-bench-btrfs-")
        .tempdir_in(dir)?;
    let btrfs = pair(args, scratch.path(), None, None).await?;
    if let Err(e) = suites::snapshots::probe(&btrfs.targets, "btrfs").await {
        return Ok(Err(format!("btrfs skipped: {e:#}")));
    }
    Ok(Ok(BtrfsPair {
        pair: btrfs,
        dir: scratch,
    }))
}

async fn targets(strata: &Path, ctd: &Path) -> anyhow::Result<Vec<Target>> {
    let (sc, ss) = client::clients(client::connect(strata.to_path_buf()).await?);
    let (cc, cs) = client::clients(client::connect(ctd.to_path_buf()).await?);
    Ok(vec![
        Target {
            name: "strata",
            content: sc,
            snapshots: ss,
            namespace: None,
            snapshotters: vec![
                ("overlay", "strata-overlay".into()),
                ("native", "strata-native".into()),
                ("btrfs", "strata-btrfs".into()),
            ],
        },
        Target {
            name: "containerd",
            content: cc,
            snapshots: cs,
            namespace: Some("strata-bench".into()),
            snapshotters: vec![
                ("overlay", "overlayfs".into()),
                ("native", "native".into()),
                ("btrfs", "btrfs".into()),
            ],
        },
    ])
}

/// One line describing the machine and the protocol.
pub fn machine_line(args: &Args) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    format!(
        "machine: {cpu}, {} cpus; rounds {} (+{} warm-up), interleaved strata/containerd{}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        args.rounds,
        args.warmup,
        if args.quick {
            "; --quick (sizes too small to mean anything)"
        } else {
            ""
        }
    )
}

fn print_machine(args: &Args) {
    println!("{}", machine_line(args));
}
