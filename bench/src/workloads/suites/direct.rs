//! Served directly: strata-proxy's Content and Snapshots APIs against containerd 1.6's own
//! local content store and overlay and native snapshotters served over the same APIs by
//! conformance/go/src/refproxy (containerd's `contentserver` and `contrib/snapshotservice`,
//! the conformance suite's baseline daemon), neither with containerd's metadata layer in
//! front: the stores' own speed, same client, same machine, fresh roots, alternating rounds.
//! The content suite's workloads, containerd's own proxy content reader (integration/proxy-read:
//! the Go code containerd's differ reads a layer with, 32 KiB per call) and writer (the same
//! tool's `-ingest`: `content.WriteBlob`, as containerd's fetches write a blob), then the
//! snapshots suite's per backend, each cycle round ending with a timed Cleanup call.

use std::path::{Path, PathBuf};

use anyhow::Context;
use futures::FutureExt;

use crate::Args;
use crate::client::{self, Target};
use crate::servers;
use crate::stats::{self, Measurement, Named, Samples};
use crate::workloads::suites::{self, snapshots};

/// The backends this group compares, and containerd's snapshotter for each.
const BACKENDS: [(&str, &str); 2] = [("overlay", "overlayfs"), ("native", "native")];

/// Runs the group (content, then each backend of `--backends` it has) on a fresh strata-proxy
/// and a fresh refproxy, both under `dir`. Reasons to skip go to `notes`.
pub async fn run(
    args: &Args,
    dir: &Path,
    out: &mut Vec<Measurement>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let bin = match servers::build_go_tool(dir, "conformance/go/src/refproxy").await {
        Ok(b) => b,
        Err(e) => {
            return args.skip(notes, format!("direct skipped: {e:#}"));
        }
    };
    let ours = servers::start_strata(&args.strata_bin()?, &dir.join("strata"))?;
    let theirs = servers::start_refproxy(&bin, &dir.join("refproxy"))?;
    let strata = target("strata", &ours, ["strata-overlay", "strata-native"]).await?;
    let containerd = target("containerd", &theirs, ["overlayfs", "native"]).await?;
    let targets = [strata, containerd];
    let pids = [Some(ours.pid()), Some(theirs.pid())];
    let group = "content served directly";
    suites::content::run_group(args, &targets, &pids, group, out).await?;
    note(
        out,
        group,
        "Content API; \"containerd\" = containerd's local content store",
    );
    let readers = [
        Reader::new("strata", &ours),
        Reader::new("containerd", &theirs),
    ];
    match servers::build_go_tool(dir, "integration/proxy-read").await {
        Ok(bin) => {
            proxy_reads(args, &bin, &readers, group, out).await?;
            proxy_ingests(args, &bin, &readers, group, out).await?;
        }
        Err(e) => args.skip(notes, format!("proxy-read rows skipped: {e:#}"))?,
    }
    for (backend, theirs) in BACKENDS {
        if !args.backends.iter().any(|b| b == backend) {
            continue;
        }
        let group = format!("snapshots served directly: {backend}");
        snapshots::run_group(args, &targets, backend, dir, &group, true, out).await?;
        let what = format!("Snapshots API; \"containerd\" = containerd's {theirs} snapshotter");
        note(out, &group, &what);
    }
    Ok(())
}

/// A server as integration/proxy-read reaches it.
struct Reader {
    name: &'static str,
    socket: PathBuf,
}

impl Reader {
    fn new(name: &'static str, server: &servers::Server) -> Self {
        Reader {
            name,
            socket: server.socket.clone(),
        }
    }
}

impl Named for Reader {
    fn name(&self) -> &'static str {
        self.name
    }
}

/// `--small-reads` 32 KiB ReadAt calls by containerd 1.6's proxy content reader (its Go code,
/// built from Debian's sources), one after another through a blob of up to 64 MiB, from each
/// server, the order alternating: wall time and the client's own CPU time per call.
async fn proxy_reads(
    args: &Args,
    bin: &Path,
    readers: &[Reader],
    group: &str,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let mib = args.blob_mib.clamp(1, 64);
    let calls = args.small_reads.max(1);
    let flags = |_| vec!["-calls".to_string(), calls.to_string()];
    let keys = ["wall_us_per_call", "client_cpu_us_per_call"];
    let [wall, cpu] = proxy_read_series(args, bin, readers, mib, flags, keys).await?;
    let what = format!("containerd's proxy reader (Go): {calls} x 32 KiB ReadAt in {mib} MiB");
    let mut m = Measurement::new(
        group,
        format!("{what}, wall per call"),
        "-",
        "us",
        false,
        wall,
    );
    m.notes.push(
        "integration/proxy-read: containerd 1.6's content/proxy client, dialled as containerd \
         dials a proxy plugin (grpc defaults), each ReadAt one Read RPC, as containerd's differ \
         reads a layer behind proxy_plugins; bytes compared with the blob's"
            .into(),
    );
    out.push(m);
    let mut m = Measurement::new(
        group,
        format!("{what}, client CPU per call"),
        "-",
        "us",
        false,
        cpu,
    );
    m.notes.push(
        "utime + stime of the proxy-read process over its calls, divided by their number: what \
         containerd itself spends per call"
            .into(),
    );
    out.push(m);
    Ok(())
}

/// `--blob-mib` (at most 1024) written through containerd 1.6's proxy content writer (its Go
/// code: `content.WriteBlob`, one 1 MiB WRITE at a time, with the blob's size and digest
/// declared as containerd's fetches declare them), a fresh blob each round, removed after it:
/// MiB/s and the client's own CPU.
async fn proxy_ingests(
    args: &Args,
    bin: &Path,
    readers: &[Reader],
    group: &str,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let mib = args.blob_mib.clamp(1, 1024);
    let sha = crate::workloads::content::sha256_speed((mib << 20).min(256 << 20));
    let flags = |round: usize| {
        let seed = (1000 + round).to_string();
        ["-ingest", "-seed", &seed].map(String::from).to_vec()
    };
    let keys = ["ingest_mib_per_s", "client_cpu_ms"];
    let [rate, cpu] = proxy_read_series(args, bin, readers, mib, flags, keys).await?;
    let what = format!("containerd's proxy writer (Go): content.WriteBlob of {mib} MiB");
    let mut m = Measurement::new(group, what.clone(), "-", "MiB/s", true, rate);
    m.notes.push(
        "integration/proxy-read -ingest: containerd 1.6's content/proxy writer: a STAT naming \
         the blob's size and digest, 1 MiB WRITE calls each answered before the next, COMMIT; \
         a fresh blob of random bytes each round, deleted after it (untimed)"
            .into(),
    );
    if let Some(s) = m.summary("strata") {
        m.notes.push(sha.share("strata", s.median));
    }
    out.push(m);
    let mut m = Measurement::new(group, format!("{what}, client CPU"), "-", "ms", false, cpu);
    m.notes.push(
        "utime + stime of the proxy-read process over the write: containerd's own share".into(),
    );
    out.push(m);
    Ok(())
}

/// Runs proxy-read with a blob of `mib` MiB and the flags `flags(round)` on each reader, rounds
/// alternating; the series of its output fields `keys`.
async fn proxy_read_series(
    args: &Args,
    bin: &Path,
    readers: &[Reader],
    mib: usize,
    flags: impl Fn(usize) -> Vec<String>,
    keys: [&'static str; 2],
) -> anyhow::Result<[Samples; 2]> {
    let mut series = stats::alternate_multi(readers, args.warmup, args.rounds, |r, round| {
        let (bin, flags) = (bin.to_path_buf(), flags(round));
        async move {
            let text = proxy_read_run(&bin, &r.socket, mib, &flags).await?;
            keys.iter().map(|k| field(&text, k)).collect()
        }
        .boxed()
    })
    .await?
    .into_iter();
    let (Some(a), Some(b)) = (series.next(), series.next()) else {
        anyhow::bail!("proxy-read {keys:?}: no samples");
    };
    Ok([a, b])
}

/// The `key=value` field `key` of proxy-read's output line.
fn field(text: &str, key: &str) -> anyhow::Result<f64> {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .with_context(|| format!("proxy-read printed no {key}: {text:?}"))?
        .parse()
        .with_context(|| format!("proxy-read's {key}: {text:?}"))
}

/// Runs proxy-read on `socket` with a blob of `mib` MiB and `more` flags; its output line.
async fn proxy_read_run(
    bin: &Path,
    socket: &Path,
    mib: usize,
    more: &[String],
) -> anyhow::Result<String> {
    let run = tokio::process::Command::new(bin)
        .arg("-a")
        .arg(socket)
        .args(["-mib", &mib.to_string()])
        .args(more)
        .output()
        .await
        .context("running proxy-read")?;
    anyhow::ensure!(
        run.status.success(),
        "proxy-read on {} failed ({}): {}",
        socket.display(),
        run.status,
        String::from_utf8_lossy(&run.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&run.stdout).into_owned())
}

/// A client of `server` with `names` as its overlay and native snapshotters.
async fn target(
    name: &'static str,
    server: &servers::Server,
    names: [&str; 2],
) -> anyhow::Result<Target> {
    let (content, snapshots) = client::clients(client::connect(server.socket.clone()).await?);
    Ok(Target {
        name,
        content,
        snapshots,
        namespace: None,
        snapshotters: vec![("overlay", names[0].into()), ("native", names[1].into())],
    })
}

/// The method note on the first row of `group`.
fn note(out: &mut [Measurement], group: &str, what: &str) {
    if let Some(first) = out.iter_mut().find(|m| m.group == group) {
        first.notes.push(format!(
            "served directly: \"strata\" = strata-proxy's {what} (containerd 1.6's own Go code, \
             built from Debian's sources) served over the same API by \
             conformance/go/src/refproxy (grpc defaults; content labels in memory; overlay \
             built with synchronous remove, as Strata removes); no metadata layer in front of \
             either; same client (Strata's Rust client), fresh roots on the same file system, \
             rounds alternating; the cycle rounds end with one timed Cleanup call"
        ));
    }
}
