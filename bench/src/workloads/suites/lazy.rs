//! Lazy-pull suite (issue 12): time from pull start to the first output of a container, with
//! strata-lazy (`ctr-remote image rpull --snapshotter strata-lazy`, and on 2.x stock `ctr
//! images pull` through the Transfer service) against full pulls (`ctr images pull` into
//! containerd's built-in overlayfs and into strata-overlay) of the same eStargz image, on the
//! same containerd with Strata as its content store and snapshotters; the bytes the registry
//! sent before the run finished (background fill off); and, with the fill on, how long until
//! every lazy layer is local.
//!
//! The image: the unpack group's generated gzip image (first `--unpack-layers` count,
//! `--unpack-mib`) with a busybox layer on top, converted once by `ctr-remote image convert
//! --estargz --oci` and pushed to a loopback docker-registry. Registry bytes are counted by a
//! TCP proxy in front of it ([`Counter`]): every byte the registry sent on any connection,
//! HTTP headers included.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail, ensure};
use serde_json::json;
use strata_archive::Compression;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::Args;
use crate::servers::{self, Containerd, Server};
use crate::stats::{Measurement, Samples};
use crate::workloads::imagegen::{self, Image, Meta};
use crate::workloads::suites::deployed::containerd_version;
use crate::workloads::tasks;
use crate::workloads::unpack::{self, Registry};

const MIB: f64 = (1 << 20) as f64;
/// Longest one `ctr` or `ctr-remote` command may take.
const CTR_TIMEOUT: Duration = Duration::from_secs(900);
/// Longest the background fill may take before the round fails.
const FILL_TIMEOUT: Duration = Duration::from_secs(600);
/// The converted image's repository in the registry.
const REPO: &str = "bench/lazy";

/// How a variant gets the image into the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Puller {
    /// `ctr-remote image rpull --plain-http --snapshotter strata-lazy`.
    Rpull,
    /// Stock `ctr images pull --plain-http --snapshotter <sn>` (2.x: Transfer service).
    Pull,
}

/// One way to reach the first run.
#[derive(Debug, Clone, Copy)]
struct Variant {
    /// Key of its samples.
    key: &'static str,
    puller: Puller,
    snapshotter: &'static str,
    /// Whether it runs on the stack whose strata-proxy has the background fill off.
    fill_off: bool,
}

impl Variant {
    fn lazy(&self) -> bool {
        self.snapshotter == "strata-lazy"
    }

    fn describe(&self) -> String {
        match self.puller {
            Puller::Rpull => format!("ctr-remote image rpull --snapshotter {}", self.snapshotter),
            Puller::Pull => format!("ctr images pull --snapshotter {}", self.snapshotter),
        }
    }
}

/// The variants on containerd `ctd`, in round 0's order.
fn variants(ctd: &Containerd) -> Vec<Variant> {
    let v = |key, puller, snapshotter, fill_off| Variant {
        key,
        puller,
        snapshotter,
        fill_off,
    };
    let mut out = vec![
        v("rpull", Puller::Rpull, "strata-lazy", false),
        v("overlayfs", Puller::Pull, "overlayfs", false),
        v("strata-overlay", Puller::Pull, "strata-overlay", false),
        v("rpull-nofill", Puller::Rpull, "strata-lazy", true),
    ];
    if ctd.v2_dir.is_some() {
        out.insert(1, v("transfer", Puller::Pull, "strata-lazy", false));
    }
    out
}

/// Counts the bytes a TCP upstream sends back through a loopback proxy.
#[derive(Debug, Clone)]
pub struct Counter {
    /// `127.0.0.1:<port>` of the proxy.
    pub addr: String,
    sent: Arc<AtomicU64>,
}

impl Counter {
    /// Listens on a free loopback port and forwards every connection to `upstream`.
    pub async fn start(upstream: String) -> anyhow::Result<Counter> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?.to_string();
        let sent = Arc::new(AtomicU64::new(0));
        let count = sent.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (up, count) = (upstream.clone(), count.clone());
                tokio::spawn(async move {
                    if let Ok(server) = tokio::net::TcpStream::connect(&up).await {
                        let _ = forward(client, server, count).await;
                    }
                });
            }
        });
        Ok(Counter { addr, sent })
    }

    /// Bytes sent by the upstream so far.
    pub fn get(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }
}

/// Copies both ways until either side closes, adding what `server` sends to `count`.
async fn forward(
    client: tokio::net::TcpStream,
    server: tokio::net::TcpStream,
    count: Arc<AtomicU64>,
) -> std::io::Result<()> {
    let (mut cr, mut cw) = client.into_split();
    let (mut sr, mut sw) = server.into_split();
    let up = async move {
        let r = tokio::io::copy(&mut cr, &mut sw).await;
        let _ = sw.shutdown().await;
        r
    };
    let down = async move {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = sr.read(&mut buf).await?;
            if n == 0 {
                let _ = cw.shutdown().await;
                return Ok::<_, std::io::Error>(());
            }
            count.fetch_add(n as u64, Ordering::Relaxed);
            cw.write_all(&buf[..n]).await?;
        }
    };
    let _ = tokio::join!(up, down);
    Ok(())
}

/// A strata-proxy and a containerd `ctd` using it (proxy plugins, strata-lazy included).
struct Stack {
    strata: Server,
    containerd: Server,
}

impl Stack {
    fn start(args: &Args, dir: &Path, ctd: &Containerd, config: &str) -> anyhow::Result<Stack> {
        let (s, c) = (dir.join("strata"), dir.join("containerd"));
        std::fs::create_dir_all(&s)?;
        std::fs::create_dir_all(&c)?;
        let strata = servers::start_strata_with(&args.strata_bin()?, &s, Some(config))?;
        let containerd = servers::start_containerd_on(&c, Some(&strata.socket), ctd)?;
        Ok(Stack { strata, containerd })
    }

    /// Where strata-lazy keeps its snapshots (`<root>/snapshots/lazy/snapshots`).
    fn lazy_dir(&self) -> PathBuf {
        self.strata.root.join("root/snapshots/lazy/snapshots")
    }
}

/// strata-proxy's config: plain HTTP to the loopback registry, fill on or off.
fn strata_config(registries: &[&str], fill: bool) -> String {
    let quoted: Vec<String> = registries.iter().map(|r| format!("\"{r}\"")).collect();
    format!(
        "[offload]\ninsecure_registries = [{}]\n[lazy]\nbackground_fill = {fill}\n",
        quoted.join(", ")
    )
}

/// Runs `prog -a <socket> -n <ns> <args>`; its stdout, or an error with its stderr.
async fn run_ctr(prog: &Path, socket: &Path, ns: &str, args: &[&str]) -> anyhow::Result<String> {
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
        .with_context(|| format!("running {}", prog.display()))?;
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

/// The lazy source image: `img`'s layers with a busybox layer on top, written as an OCI
/// archive to `out`; with a small regular file of `img`'s top layer (path, content) for the
/// container to read.
fn build_source(img: &Image, out: &Path) -> anyhow::Result<(Image, String, String)> {
    let busybox = tasks::read_static_busybox()?;
    let (bb_tar, bb_gz) = tasks::busybox_layer(&busybox)?;
    let blobs = imagegen::layer_blobs(img)?;
    let top = blobs.last().context("image without layers")?;
    let (probe, content) = small_file(top)?;
    let mut diff_ids: Vec<String> = img.meta.layers.iter().map(|l| l.diff_id.clone()).collect();
    diff_ids.push(imagegen::sha256(&bb_tar));
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin:/usr/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))?;
    let gzip = Compression::Gzip.oci_media_type();
    let mut layers: Vec<(&str, &[u8])> = blobs.iter().map(|b| (gzip, b.as_slice())).collect();
    layers.push((gzip, &bb_gz));
    let f = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let reference = "bench.local/lazy/src:1";
    let (w, manifest) =
        imagegen::write_oci_archive(std::io::BufWriter::new(f), reference, &config, &layers)?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    let meta = Meta {
        label: "lazy-src".into(),
        reference: reference.into(),
        manifest,
        ..img.meta.clone()
    };
    let src = Image {
        archive: out.to_path_buf(),
        meta,
    };
    Ok((src, probe, content))
}

/// The first regular file of 16 B..4 KiB with printable content in a compressed layer tar.
fn small_file(blob: &[u8]) -> anyhow::Result<(String, String)> {
    use std::io::Read as _;
    let mut a = tar::Archive::new(strata_archive::compression::decoder(blob)?);
    for e in a.entries()? {
        let mut e = e?;
        let size = e.size();
        if e.header().entry_type() != tar::EntryType::Regular || !(16..=4096).contains(&size) {
            continue;
        }
        let path = e.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        if let Ok(text) = String::from_utf8(data)
            && !path.contains("/.wh.")
        {
            return Ok((format!("/{}", path.trim_start_matches("./")), text));
        }
    }
    bail!("no small text file in the top layer")
}

/// The compressed size of the layers of `reference` in namespace `ns` (its manifest, or the
/// first manifest of its index), and their count.
async fn layer_sizes(
    ctr: &Path,
    socket: &Path,
    ns: &str,
    reference: &str,
) -> anyhow::Result<(u64, usize)> {
    let ls = run_ctr(ctr, socket, ns, &["images", "ls"]).await?;
    let digest = ls
        .lines()
        .find(|l| l.split_whitespace().next() == Some(reference))
        .and_then(|l| l.split_whitespace().find(|w| w.starts_with("sha256:")))
        .with_context(|| format!("image {reference} not listed: {ls}"))?
        .to_string();
    let mut doc: serde_json::Value =
        serde_json::from_str(&run_ctr(ctr, socket, ns, &["content", "get", &digest]).await?)?;
    if let Some(first) = doc["manifests"].get(0) {
        let d = first["digest"].as_str().context("index without digest")?;
        doc = serde_json::from_str(&run_ctr(ctr, socket, ns, &["content", "get", d]).await?)?;
    }
    let layers = doc["layers"]
        .as_array()
        .context("manifest without layers")?;
    let total = layers.iter().filter_map(|l| l["size"].as_u64()).sum();
    Ok((total, layers.len()))
}

/// Converts `src` (in the registry) to eStargz with ctr-remote on `stack` and pushes it as
/// `reference`; returns its layers' compressed size and count.
async fn convert(
    stack: &Stack,
    ctd: &Containerd,
    src: &str,
    reference: &str,
) -> anyhow::Result<(u64, usize)> {
    let (ctr, sock, ns) = (ctd.ctr(), &stack.containerd.socket, "bench-lazy-convert");
    let remote = Path::new("ctr-remote");
    run_ctr(&ctr, sock, ns, &["content", "fetch", "--plain-http", src]).await?;
    let args = ["image", "convert", "--estargz", "--oci", src, reference];
    run_ctr(remote, sock, ns, &args).await?;
    run_ctr(
        &ctr,
        sock,
        ns,
        &["images", "push", "--plain-http", reference],
    )
    .await?;
    let sizes = layer_sizes(&ctr, sock, ns, reference).await?;
    run_ctr(&ctr, sock, ns, &["images", "rm", "--sync", src, reference]).await?;
    run_ctr(&ctr, sock, "default", &["namespaces", "rm", ns]).await?;
    Ok(sizes)
}

/// What one variant's round measured.
#[derive(Debug, Clone, Copy, Default)]
struct Got {
    pull: f64,
    run: f64,
    /// Bytes the registry sent from pull start to the end of the run.
    bytes: u64,
    /// Seconds from pull start until every lazy layer was local (fill on, lazy only).
    fill: Option<f64>,
}

/// Everything a round needs.
struct Ctx<'a> {
    ctd: &'a Containerd,
    reference: String,
    probe: String,
    content: String,
    layers: usize,
    counter: Counter,
    settle: Duration,
}

/// Snapshot directories of strata-lazy now.
fn lazy_dirs(dir: &Path) -> HashSet<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default()
}

/// Polls until `want` snapshot directories not in `before` hold a `blob`; then the seconds
/// from `start` to the last blob's last write (its mtime: the fill writes `blob.part`, then
/// renames it), so a fill done before the first poll is not overstated.
async fn wait_filled(
    dir: &Path,
    before: &HashSet<PathBuf>,
    want: usize,
    start: (Instant, SystemTime),
) -> anyhow::Result<f64> {
    loop {
        let blobs: Vec<PathBuf> = lazy_dirs(dir)
            .iter()
            .filter(|d| !before.contains(*d))
            .map(|d| d.join("blob"))
            .filter(|b| b.is_file())
            .collect();
        if blobs.len() >= want {
            let last = blobs
                .iter()
                .filter_map(|b| std::fs::metadata(b).and_then(|m| m.modified()).ok())
                .max()
                .context("blob without mtime")?;
            return Ok(last
                .duration_since(start.1)
                .unwrap_or_default()
                .as_secs_f64());
        }
        ensure!(
            start.0.elapsed() < FILL_TIMEOUT,
            "background fill: {} of {want} layers local after {} s",
            blobs.len(),
            FILL_TIMEOUT.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One round of `v` on `stack` in the fresh namespace `ns`: settle, timed pull, timed `ctr run
/// --rm` reading the probe file (output checked), registry bytes, fill time; then `images rm
/// --sync`, no blob left, namespace removed.
async fn one(cx: &Ctx<'_>, stack: &Stack, v: Variant, ns: &str, id: &str) -> anyhow::Result<Got> {
    let (ctr, sock) = (cx.ctd.ctr(), &stack.containerd.socket);
    let reference = cx.reference.as_str();
    let (prog, mut args) = match v.puller {
        Puller::Rpull => (PathBuf::from("ctr-remote"), vec!["image", "rpull"]),
        Puller::Pull => (ctr.clone(), vec!["images", "pull"]),
    };
    args.extend(["--plain-http", "--snapshotter", v.snapshotter, reference]);
    unpack::settle(cx.settle).await;
    let before_dirs = lazy_dirs(&stack.lazy_dir());
    let before = cx.counter.get();
    let (start, wall) = (Instant::now(), SystemTime::now());
    run_ctr(&prog, sock, ns, &args).await?;
    let pull = start.elapsed().as_secs_f64();
    let t = Instant::now();
    let run = [
        "run",
        "--rm",
        "--snapshotter",
        v.snapshotter,
        reference,
        id,
        "/bin/busybox",
        "cat",
        &cx.probe,
    ];
    let out = run_ctr(&ctr, sock, ns, &run).await?;
    let run = t.elapsed().as_secs_f64();
    let bytes = cx.counter.get() - before;
    ensure!(
        out == cx.content,
        "{}: ctr run printed {} bytes, expected {} of {}",
        v.key,
        out.len(),
        cx.content.len(),
        cx.probe
    );
    if v.lazy() {
        // After the run (untimed): only the index, manifest and config; a layer containerd
        // fetched would be listed too.
        let blobs = run_ctr(&ctr, sock, ns, &["content", "ls", "-q"]).await?;
        let n = blobs.lines().filter(|l| !l.trim().is_empty()).count();
        ensure!(
            n <= 3,
            "{}: containerd fetched layers ({n} blobs in {ns})",
            v.key
        );
    }
    let fill = match v.lazy() && !v.fill_off {
        true => Some(wait_filled(&stack.lazy_dir(), &before_dirs, cx.layers, (start, wall)).await?),
        false => None,
    };
    run_ctr(&ctr, sock, ns, &["images", "rm", "--sync", reference]).await?;
    let blobs = run_ctr(&ctr, sock, ns, &["content", "ls", "-q"]).await?;
    ensure!(
        blobs.trim().is_empty(),
        "{}: images rm --sync left blobs in {ns}: {}",
        v.key,
        blobs.trim()
    );
    run_ctr(&ctr, sock, "default", &["namespaces", "rm", ns]).await?;
    Ok(Got {
        pull,
        run,
        bytes,
        fill,
    })
}

/// Why the group cannot run here, if it cannot.
fn missing_tools() -> Option<String> {
    if !tasks::on_path("ctr-remote") {
        return Some(
            "lazy skipped: ctr-remote not on PATH (apt-get install stargz-snapshotter)".into(),
        );
    }
    if !Path::new("/dev/fuse").exists() {
        return Some("lazy skipped: no /dev/fuse".into());
    }
    None
}

/// Runs the group on containerd `ctd` under `dir`; reasons to skip go to `notes`.
pub async fn run(
    args: &Args,
    ctd: &Containerd,
    dir: &Path,
    out: &mut Vec<Measurement>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    if let Some(note) = missing_tools() {
        println!("note: {note}");
        notes.push(note);
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    let cache = args.workdir.join("strata-bench-images");
    let (layers, mib) = (
        args.unpack_layers.first().copied().unwrap_or(3).max(1),
        args.unpack_mib.max(1),
    );
    let archive = dir.join("lazy-src.tar");
    let (src, probe, content) = tokio::task::spawn_blocking(move || {
        let img = imagegen::ensure(&cache, layers, mib, &[Compression::Gzip])?
            .pop()
            .context("no generated image")?;
        build_source(&img, &archive)
    })
    .await??;
    let registry = Registry::start(&dir.join("registry"))?;
    registry.push(&src)?;
    let counter = Counter::start(registry.addr.clone()).await?;
    let hosts = [counter.addr.as_str(), registry.addr.as_str()];
    let on = Stack::start(
        args,
        &dir.join("fill-on"),
        ctd,
        &strata_config(&hosts, true),
    )?;
    let off = Stack::start(
        args,
        &dir.join("fill-off"),
        ctd,
        &strata_config(&hosts, false),
    )?;
    let reference = format!("{}/{REPO}:estargz", counter.addr);
    let source = format!("{}/bench/{}:1", counter.addr, src.meta.label);
    let start = Instant::now();
    let (total, nlayers) = convert(&on, ctd, &source, &reference).await?;
    let version = containerd_version(ctd).await;
    let line = format!(
        "lazy image on containerd {version}: {} (+ busybox layer) converted by ctr-remote \
         --estargz --oci in {:.1} s: {nlayers} layers, {:.1} MiB compressed ({total} B); probe \
         file {probe} ({} B)",
        src.meta.describe(),
        start.elapsed().as_secs_f64(),
        total as f64 / MIB,
        content.len()
    );
    println!("{line}");
    notes.push(line);
    let cx = Ctx {
        ctd,
        reference,
        probe,
        content,
        layers: nlayers,
        counter,
        settle: Duration::from_millis(if args.quick { 50 } else { 500 }),
    };
    let vs = variants(ctd);
    let mut got: Vec<Vec<Got>> = vec![Vec::new(); vs.len()];
    for r in 0..args.lazy_rounds {
        // Alternating order: round r starts with variant r (mod count).
        for k in 0..vs.len() {
            let i = (k + r) % vs.len();
            let v = vs[i];
            let stack = if v.fill_off { &off } else { &on };
            let ns = format!("bench-lazy-{}-{r}", v.key);
            let g = one(&cx, stack, v, &ns, &format!("lazy-{}-{r}", v.key)).await?;
            println!(
                "lazy {version} {} round {r}: pull {:.3} s, run {:.3} s, total {:.3} s, \
                 registry sent {:.2} MiB{}",
                v.describe(),
                g.pull,
                g.run,
                g.pull + g.run,
                g.bytes as f64 / MIB,
                g.fill
                    .map_or(String::new(), |f| format!(", all layers local at {f:.3} s"))
            );
            got[i].push(g);
        }
    }
    let group = format!("lazy, containerd {}", ctd.label());
    report(&group, &vs, &got, total, &version, out);
    Ok(())
}

/// The rows: strata-lazy ("strata" column) against each full pull ("containerd" column).
fn report(
    group: &str,
    vs: &[Variant],
    got: &[Vec<Got>],
    total: u64,
    version: &str,
    out: &mut Vec<Measurement>,
) {
    let series = |key: &str, f: &dyn Fn(&Got) -> Option<f64>| -> Vec<f64> {
        vs.iter()
            .position(|v| v.key == key)
            .map(|i| got[i].iter().filter_map(f).collect())
            .unwrap_or_default()
    };
    let pair = |a: Vec<f64>, b: Vec<f64>| -> Samples {
        let mut s = Samples::new();
        if !a.is_empty() {
            s.insert("strata".into(), a);
        }
        if !b.is_empty() {
            s.insert("containerd".into(), b);
        }
        s
    };
    let lazies: Vec<&str> = vs
        .iter()
        .filter(|v| v.lazy() && !v.fill_off)
        .map(|v| v.key)
        .collect();
    let first = out.len();
    for lazy in &lazies {
        for full in ["overlayfs", "strata-overlay"] {
            type Pick = fn(&Got) -> Option<f64>;
            let picks: [(&str, Pick); 3] = [
                ("pull", |g| Some(g.pull)),
                ("run", |g| Some(g.run)),
                ("pull + run", |g| Some(g.pull + g.run)),
            ];
            for (what, f) in picks {
                let name = format!("{what}: {lazy} strata-lazy vs full pull {full}");
                out.push(Measurement::new(
                    group,
                    name,
                    "lazy",
                    "s",
                    false,
                    pair(series(lazy, &f), series(full, &f)),
                ));
            }
        }
        let fill = series(lazy, &|g| g.fill);
        out.push(Measurement::new(
            group,
            format!("{lazy}: pull start to every layer local (fill on; last blob mtime)"),
            "lazy",
            "s",
            false,
            pair(fill, Vec::new()),
        ));
    }
    let mib = |g: &Got| Some(g.bytes as f64 / MIB);
    let nofill = |f: &dyn Fn(&Got) -> Option<f64>| series("rpull-nofill", f);
    for (what, f) in [
        ("pull", (|g| Some(g.pull)) as fn(&Got) -> Option<f64>),
        ("pull + run", |g| Some(g.pull + g.run)),
    ] {
        out.push(Measurement::new(
            group,
            format!("{what}: rpull strata-lazy, fill off vs full pull overlayfs"),
            "lazy",
            "s",
            false,
            pair(nofill(&f), series("overlayfs", &f)),
        ));
    }
    out.push(Measurement::new(
        group,
        "registry bytes to first output: rpull, fill off vs full pull overlayfs".into(),
        "lazy",
        "MiB",
        false,
        pair(nofill(&mib), series("overlayfs", &mib)),
    ));
    if let Some(m) = out.get_mut(first) {
        m.notes.push(format!(
            "one containerd {version} with strata-proxy as its content store and snapshotters \
             (proxy_plugins incl. strata-lazy); \"strata\" = strata-lazy, \"containerd\" = the \
             full pull named in the row (stock ctr images pull --plain-http, unpack included, \
             into containerd's built-in overlayfs or strata-overlay), same eStargz image of \
             {:.1} MiB compressed; run = ctr run --rm <img> <id> /bin/busybox cat <small file>, \
             output checked; fresh namespace per round, images rm --sync after (no blob left); \
             order rotating per round; fill-off rows on a second strata-proxy with [lazy] \
             background_fill = false; registry bytes = all bytes docker-registry sent (HTTP \
             headers included) through a counting TCP proxy in front of it, from pull start to \
             the end of the run",
            total as f64 / MIB
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counting proxy forwards both ways and counts exactly what the upstream sent.
    #[tokio::test]
    async fn counter_counts_upstream_bytes() {
        let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let up_addr = upstream.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = upstream.accept().await.unwrap();
            let mut req = [0u8; 5];
            s.read_exact(&mut req).await.unwrap();
            assert_eq!(&req, b"hello");
            s.write_all(&vec![7u8; 100_000]).await.unwrap();
        });
        let c = Counter::start(up_addr).await.unwrap();
        let mut client = tokio::net::TcpStream::connect(&c.addr).await.unwrap();
        client.write_all(b"hello").await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got.len(), 100_000);
        assert_eq!(c.get(), 100_000);
    }

    #[test]
    fn config_names_registries_and_fill() {
        let c = strata_config(&["127.0.0.1:1", "127.0.0.1:2"], false);
        assert!(c.contains("insecure_registries = [\"127.0.0.1:1\", \"127.0.0.1:2\"]"));
        assert!(c.contains("[lazy]\nbackground_fill = false\n"));
    }

    #[test]
    fn variants_add_transfer_on_2x_only() {
        let keys = |c: &Containerd| variants(c).iter().map(|v| v.key).collect::<Vec<_>>();
        assert!(!keys(&Containerd::default()).contains(&"transfer"));
        let two = Containerd {
            v2_dir: Some("/x".into()),
        };
        assert!(keys(&two).contains(&"transfer"));
    }
}
