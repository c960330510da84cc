//! Unpack workloads with **stock `ctr`** as the client: `ctr images import` and `ctr images pull
//! --plain-http` (both with unpack) against a server's runtime socket, in a fresh namespace per
//! round; the wall time of the `ctr` command is the measurement. Around it, untimed: `sync` and
//! an idle pause before, then checks (one committed snapshot per layer), `images rm --sync`,
//! checks that nothing is left (no snapshot, no blob) and `namespaces rm`.
//!
//! Also here: a private loopback `docker-registry` to pull from, and the single-core limits
//! (gzip inflate, zstd decode, sha256) measured in-process on the images' own bytes.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use sha2::{Digest as _, Sha256};

use super::imagegen::Image;
use crate::stats::Named;

/// Longest a single `ctr` command may take.
const CTR_TIMEOUT: Duration = Duration::from_secs(900);

/// One server as `ctr` reaches it for one backend.
#[derive(Debug, Clone)]
pub struct Side {
    /// "strata" or "containerd".
    pub name: &'static str,
    /// The socket serving containerd's runtime services.
    pub socket: PathBuf,
    /// The backend's snapshotter name on this server ("strata-overlay", "overlayfs", ...).
    pub snapshotter: String,
    /// The `ctr` to run (Debian's on PATH, or a private containerd 2.x's).
    pub ctr: PathBuf,
    /// integration/cri-pull (containerd's Go client `Pull` as its CRI plugin runs it for
    /// kubelet), when built: the `cri-pull` rows run it.
    pub cri_pull: Option<PathBuf>,
    /// The daemons doing this side's work (containerd, strata-proxy), whose CPU time and disk
    /// writes each round reports; empty when attached to servers the bench did not start.
    pub pids: Vec<u32>,
}

impl Named for Side {
    fn name(&self) -> &'static str {
        self.name
    }
}

/// How the image gets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Import,
    Pull,
    /// integration/cri-pull from the registry: the Go client's `Pull` with unpack and the CRI
    /// plugin's snapshotter labels, the path by which containerd's unpacker asks the
    /// snapshotter first (on 1.6 as well as 2.x).
    CriPull,
}

impl Op {
    pub fn label(self) -> &'static str {
        match self {
            Op::Import => "import",
            Op::Pull => "pull",
            Op::CriPull => "cri-pull",
        }
    }

    /// The client and operation as the rows name them.
    pub fn row(self) -> &'static str {
        match self {
            Op::Import => "ctr import",
            Op::Pull => "ctr pull",
            Op::CriPull => "Go client cri-pull",
        }
    }

    /// The command as the progress lines name it.
    pub fn command(self) -> &'static str {
        match self {
            Op::Import => "ctr images import",
            Op::Pull => "ctr images pull",
            Op::CriPull => "cri-pull (Go client Pull, CRI labels)",
        }
    }
}

/// Runs `ctr -a <socket> -n <ns> <args>`; its stdout, or an error with its stderr.
pub async fn ctr(side: &Side, ns: &str, args: &[&str]) -> anyhow::Result<String> {
    client(side, &side.ctr, ns, args).await
}

/// Runs `<prog> -a <socket> -n <ns> <args>` (`ctr` or cri-pull) against `side`; its stdout, or
/// an error with its stderr.
async fn client(side: &Side, prog: &Path, ns: &str, args: &[&str]) -> anyhow::Result<String> {
    run_ctr(prog, &side.socket, ns, args)
        .await
        .with_context(|| side.name.to_string())
}

/// Runs `<prog> -a <socket> -n <ns> <args>` (`ctr`, `ctr-remote` or cri-pull); its stdout, or
/// an error with its stderr.
pub async fn run_ctr(
    prog: &Path,
    socket: &Path,
    ns: &str,
    args: &[&str],
) -> anyhow::Result<String> {
    let mut cmd = tokio::process::Command::new(prog);
    cmd.arg("-a")
        .arg(socket)
        .args(["-n", ns])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(CTR_TIMEOUT, cmd.output())
        .await
        .with_context(|| format!("{} {args:?} timed out", prog.display()))?
        .with_context(|| format!("running {} (apt-get install containerd)", prog.display()))?;
    if !out.status.success() {
        bail!(
            "{} -n {ns} {} failed ({}): {}",
            prog.display(),
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `sync(2)`, then `settle` of idle time.
pub async fn settle(settle: Duration) {
    // SAFETY: sync(2) has no preconditions.
    tokio::task::spawn_blocking(|| unsafe { libc::sync() })
        .await
        .ok();
    tokio::time::sleep(settle).await;
}

/// CPU time (user + system) and bytes written to storage of a set of processes, so far.
#[derive(Debug, Clone, Copy, Default)]
pub struct Work {
    pub cpu_s: f64,
    pub written: u64,
}

impl Work {
    /// The sum over `pids` (from `/proc/<pid>/stat` and `/proc/<pid>/io`); a process that is
    /// gone counts nothing.
    pub fn of(pids: &[u32]) -> Work {
        // SAFETY: sysconf(3) has no preconditions.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        let mut w = Work::default();
        for pid in pids {
            if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
                // Fields after the parenthesised command: utime and stime are the 12th and 13th.
                let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
                let f: Vec<&str> = rest.split_whitespace().collect();
                let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
                w.cpu_s += (t(11) + t(12)) / ticks;
            }
            if let Ok(io) = std::fs::read_to_string(format!("/proc/{pid}/io")) {
                w.written += io
                    .lines()
                    .find_map(|l| l.strip_prefix("write_bytes:"))
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        w
    }

    fn since(self, before: Work) -> Work {
        Work {
            cpu_s: self.cpu_s - before.cpu_s,
            written: self.written.saturating_sub(before.written),
        }
    }
}

/// What one round measured.
#[derive(Debug, Clone, Copy, Default)]
pub struct Round {
    /// Wall time of the `ctr images import|pull` command, s.
    pub secs: f64,
    /// The side's daemons' CPU time and disk writes during that command.
    pub work: Work,
    /// Wall time of `ctr images rm --sync` (containerd's GC included), s.
    pub rm_secs: f64,
}

/// The reference `op` gives `img`, the client to run (`ctr` or cri-pull) and its arguments
/// that import or pull it.
fn op_args(
    side: &Side,
    op: Op,
    img: &Image,
    registry: Option<&str>,
) -> anyhow::Result<(String, PathBuf, Vec<String>)> {
    let reference = match op {
        Op::Import => img.meta.reference.clone(),
        Op::Pull | Op::CriPull => format!(
            "{}/bench/{}:1",
            registry.context("pull without a registry")?,
            img.meta.label
        ),
    };
    let sn = side.snapshotter.clone();
    let args = match op {
        Op::Import => vec![
            "images".into(),
            "import".into(),
            "--snapshotter".into(),
            sn,
            img.archive.to_string_lossy().into_owned(),
        ],
        Op::Pull => vec![
            "images".into(),
            "pull".into(),
            "--plain-http".into(),
            "--snapshotter".into(),
            sn,
            reference.clone(),
        ],
        Op::CriPull => vec![
            "-plain-http".into(),
            "-snapshotter".into(),
            sn,
            reference.clone(),
        ],
    };
    let prog = match op {
        Op::CriPull => side
            .cri_pull
            .clone()
            .context("cri-pull rows without a cri-pull binary")?,
        Op::Import | Op::Pull => side.ctr.clone(),
    };
    Ok((reference, prog, args))
}

/// Checks that `ns` holds one committed snapshot per layer of `img` after `op`.
async fn check_committed(side: &Side, op: Op, img: &Image, ns: &str) -> anyhow::Result<()> {
    let committed = snapshots(side, ns)
        .await?
        .iter()
        .filter(|l| l.contains("Committed"))
        .count();
    ensure!(
        committed == img.meta.layers.len(),
        "{}: after {} of {} {} committed snapshots on {} in {ns}, expected {}",
        side.name,
        op.label(),
        img.meta.label,
        committed,
        side.snapshotter,
        img.meta.layers.len()
    );
    Ok(())
}

/// `images rm --sync` of `reference` in `ns` (its wall time), then checks that no snapshot and
/// no blob is left, and removes the namespace.
async fn remove(side: &Side, ns: &str, reference: &str) -> anyhow::Result<f64> {
    let start = Instant::now();
    ctr(side, ns, &["images", "rm", "--sync", reference]).await?;
    let rm_secs = start.elapsed().as_secs_f64();
    let left = snapshots(side, ns).await?;
    ensure!(
        left.is_empty(),
        "{}: images rm --sync left snapshots in {ns}: {left:?}",
        side.name
    );
    let blobs = ctr(side, ns, &["content", "ls", "-q"]).await?;
    ensure!(
        blobs.trim().is_empty(),
        "{}: images rm --sync left blobs in {ns}: {}",
        side.name,
        blobs.trim()
    );
    ctr(side, "default", &["namespaces", "rm", ns]).await?;
    Ok(rm_secs)
}

/// One timed round: settle, then `ctr images import|pull` of `img` into the fresh namespace
/// `ns` (timed, with the daemons' work counted), checks, then a timed `images rm --sync`; then
/// checks that nothing is left and the namespace is removed (untimed).
pub async fn round(
    side: &Side,
    op: Op,
    img: &Image,
    registry: Option<&str>,
    ns: &str,
    settle_for: Duration,
) -> anyhow::Result<Round> {
    let (reference, prog, args) = op_args(side, op, img, registry)?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    settle(settle_for).await;
    let before = Work::of(&side.pids);
    let start = Instant::now();
    client(side, &prog, ns, &args).await?;
    let secs = start.elapsed().as_secs_f64();
    let work = Work::of(&side.pids).since(before);
    check_committed(side, op, img, ns).await?;
    settle(settle_for).await;
    let rm_secs = remove(side, ns, &reference).await?;
    Ok(Round {
        secs,
        work,
        rm_secs,
    })
}

/// What one concurrent round measured.
#[derive(Debug, Clone, Default)]
pub struct Concurrent {
    /// Wall time until the last client exited, s.
    pub secs: f64,
    /// Each client's own wall time, s.
    pub each: Vec<f64>,
    /// The side's daemons' CPU time and disk writes while the clients ran.
    pub work: Work,
}

/// `n` stock `ctr` clients started together, each `ctr images import|pull` of `img` into a
/// fresh namespace of its own (`<ns>-<i>`): the wall time until the last one exited (the
/// daemons' work counted over it), every namespace checked (one committed snapshot per layer);
/// then (untimed) every namespace's `images rm --sync` at once, and nothing left.
pub async fn concurrent_round(
    side: &Side,
    op: Op,
    img: &Image,
    registry: Option<&str>,
    ns: &str,
    n: usize,
    settle_for: Duration,
) -> anyhow::Result<Concurrent> {
    let (reference, prog, args) = op_args(side, op, img, registry)?;
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let names: Vec<String> = (0..n).map(|i| format!("{ns}-{i}")).collect();
    settle(settle_for).await;
    let before = Work::of(&side.pids);
    let start = Instant::now();
    let each = futures::future::try_join_all(names.iter().map(|ns| {
        let (args, prog) = (&args, &prog);
        async move {
            let t = Instant::now();
            client(side, prog, ns, args).await?;
            anyhow::Ok(t.elapsed().as_secs_f64())
        }
    }))
    .await?;
    let secs = start.elapsed().as_secs_f64();
    let work = Work::of(&side.pids).since(before);
    for ns in &names {
        check_committed(side, op, img, ns).await?;
    }
    futures::future::try_join_all(names.iter().map(|ns| remove(side, ns, &reference))).await?;
    Ok(Concurrent { secs, each, work })
}

/// The rows of `ctr snapshots ls` (header dropped).
async fn snapshots(side: &Side, ns: &str) -> anyhow::Result<Vec<String>> {
    let out = ctr(
        side,
        ns,
        &["snapshots", "--snapshotter", &side.snapshotter, "ls"],
    )
    .await?;
    Ok(out
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect())
}

/// A private `docker-registry` on 127.0.0.1 with its own storage; stopped on drop.
pub struct Registry {
    /// `127.0.0.1:<port>`.
    pub addr: String,
    dir: PathBuf,
    child: std::process::Child,
}

impl Drop for Registry {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the registry we started; failure (already gone) is harmless.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /v2/` on `addr` answers 200.
fn registry_up(addr: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(format!("GET /v2/ HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

impl Registry {
    /// Starts `docker-registry serve` on a free port with storage under `dir`.
    pub fn start(dir: &Path) -> anyhow::Result<Registry> {
        std::fs::create_dir_all(dir)?;
        let mut last = String::new();
        for attempt in 0..3 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let addr = format!("127.0.0.1:{port}");
            let config = dir.join("registry.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\nstorage: {{filesystem: {{rootdirectory: {}}}}}\n\
                     http: {{addr: {addr}}}\nlog: {{level: warn}}\n",
                    dir.join("storage").display()
                ),
            )?;
            let log = std::fs::File::create(dir.join(format!("registry-{attempt}.log")))?;
            let child = std::process::Command::new("docker-registry")
                .arg("serve")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting docker-registry (apt-get install docker-registry)")?;
            let mut reg = Registry {
                addr,
                dir: dir.to_path_buf(),
                child,
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if registry_up(&reg.addr) {
                    return Ok(reg);
                }
                if reg.child.try_wait()?.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            last = std::fs::read_to_string(dir.join(format!("registry-{attempt}.log")))
                .unwrap_or_default();
        }
        bail!("docker-registry did not start: {}", last.trim())
    }

    /// Pushes `img` as `<addr>/bench/<label>:1` (skopeo, from its OCI archive).
    pub fn push(&self, img: &Image) -> anyhow::Result<()> {
        let dest = format!("docker://{}/bench/{}:1", self.addr, img.meta.label);
        let tmp = self.dir.join("skopeo-tmp");
        std::fs::create_dir_all(&tmp)?;
        let out = std::process::Command::new("skopeo")
            .args(["copy", "--quiet", "--dest-tls-verify=false"])
            .arg(format!("oci-archive:{}", img.archive.display()))
            .arg(&dest)
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .output()
            .context("running skopeo (apt-get install skopeo)")?;
        ensure!(
            out.status.success(),
            "skopeo copy to {dest} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Ok(())
    }
}

/// Single-core speeds on this CPU, MiB/s, each the best of a few passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Limits {
    /// gzip inflate (flate2 with zlib-rs, as Strata decodes): output and input rate.
    pub gzip_out: f64,
    pub gzip_in: f64,
    /// zstd decode (libzstd through zstd-safe): output and input rate.
    pub zstd_out: f64,
    pub zstd_in: f64,
    /// sha256 (sha2; SHA-NI when the CPU has it) over the compressed layers.
    pub sha256: f64,
}

const PASSES: usize = 3;
const MIB: f64 = (1 << 20) as f64;

/// Decodes every blob with Strata's decoder (compression detected from the magic); the best of
/// [`PASSES`] as (output MiB/s, input MiB/s).
fn decode_speed(blobs: &[Vec<u8>]) -> anyhow::Result<(f64, f64)> {
    let input: usize = blobs.iter().map(Vec::len).sum();
    let mut buf = vec![0u8; 1 << 20];
    let mut best = f64::INFINITY;
    let mut output = 0usize;
    for _ in 0..PASSES {
        let start = Instant::now();
        output = 0;
        for b in blobs {
            let mut d = strata_archive::compression::decoder(&b[..])?;
            loop {
                let n = d.read(&mut buf)?;
                if n == 0 {
                    break;
                }
                output += n;
            }
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    Ok((output as f64 / MIB / best, input as f64 / MIB / best))
}

/// Measures [`Limits`] on the layers of a gzip image and its zstd twin (either may be empty).
pub fn limits(gzip: &[Vec<u8>], zstd: &[Vec<u8>]) -> anyhow::Result<Limits> {
    let mut l = Limits::default();
    if !gzip.is_empty() {
        (l.gzip_out, l.gzip_in) = decode_speed(gzip)?;
    }
    if !zstd.is_empty() {
        (l.zstd_out, l.zstd_in) = decode_speed(zstd)?;
    }
    let bytes: usize = gzip.iter().map(Vec::len).sum();
    let mut best = f64::INFINITY;
    for _ in 0..PASSES {
        let start = Instant::now();
        for b in gzip {
            std::hint::black_box(Sha256::digest(b));
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    l.sha256 = bytes as f64 / MIB / best;
    Ok(l)
}

/// Whether the CPU has the SHA extensions (`sha_ni` in /proc/cpuinfo).
pub fn sha_ni() -> bool {
    std::fs::read_to_string("/proc/cpuinfo")
        .map(|c| c.split_whitespace().any(|w| w == "sha_ni"))
        .unwrap_or(false)
}
