//! Lazy-pull suite (issue 12): time from pull start to the first output of a container
//! (`python3.11 -c 'print(42)'`), with strata-lazy (`ctr-remote image rpull --snapshotter
//! strata-lazy`; containerd's Go client Pull with unpack and the CRI plugin's
//! `AppendInfoHandlerWrapper`, i.e. integration/cri-pull; and on 2.x stock `ctr images pull`
//! through the Transfer service; and stock 1.6 `ctr images pull` on Strata's own runtime socket,
//! no containerd involved) against full pulls (`ctr images pull` into containerd's
//! built-in overlayfs and into strata-overlay) of the same eStargz image, on the same
//! containerd with Strata as its content store and snapshotters; the bytes the registry sent
//! before the run finished (background fill off); with the fill on, how long until every lazy
//! layer is local; and the sequential read rate of a 64 MiB incompressible file of the image,
//! page cache dropped first, timed inside the container.
//!
//! The image: the unpack group's generated gzip image (first `--unpack-layers` count,
//! `--unpack-mib`) with a busybox layer and a Python layer (the host's python3.11, its standard
//! library, the shared libraries `ldd` names, the dynamic loader and the 64 MiB file) on top,
//! converted once by `ctr-remote image convert --estargz --oci` and pushed to a loopback
//! docker-registry. Registry bytes are counted by a TCP proxy in front of it ([`Counter`]):
//! every byte the registry sent on any connection, HTTP headers included.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
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
use crate::workloads::unpack::{self, Registry, run_ctr};

const MIB: f64 = (1 << 20) as f64;
/// Longest the background fill may take before the round fails.
const FILL_TIMEOUT: Duration = Duration::from_secs(600);
/// The converted image's repository in the registry.
const REPO: &str = "bench/lazy";
/// The host's Python interpreter, copied into the image at the same path.
const PYTHON: &str = "/usr/bin/python3.11";
/// Its standard library, copied likewise.
const PYTHON_LIB: &str = "/usr/lib/python3.11";
/// The first command's arguments after [`PYTHON`], and what it must print.
const FIRST: [&str; 2] = ["-c", "print(42)"];
const FIRST_OUT: &str = "42\n";
/// The incompressible file read sequentially, and its size.
const SEQ_FILE: &str = "/data/seq-64MiB.bin";
const SEQ_BYTES: usize = 64 << 20;
/// Its size in `--quick` runs, whose Python layer holds only what `print(42)` loads: ctr-remote
/// converted the full layer in ~2 min, too long for CI's smoke run on two containerd versions.
const QUICK_SEQ_BYTES: usize = 4 << 20;
/// Reads `argv[1]` in 1 MiB `read(2)`s and prints `<bytes> <seconds>` (`time.perf_counter`
/// around the loop only: open, interpreter start and container set-up are not counted).
const SEQ_SCRIPT: &str = concat!(
    "import os, sys, time\n",
    "f = os.open(sys.argv[1], os.O_RDONLY)\n",
    "t = time.perf_counter()\n",
    "n = 0\n",
    "while True:\n",
    "    b = os.read(f, 1 << 20)\n",
    "    if not b:\n",
    "        break\n",
    "    n += len(b)\n",
    "print(n, time.perf_counter() - t)\n",
);

/// How a variant gets the image into the namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Puller {
    /// `ctr-remote image rpull --plain-http --snapshotter strata-lazy`.
    Rpull,
    /// Stock `ctr images pull --plain-http --snapshotter <sn>` (2.x: Transfer service).
    Pull,
    /// integration/cri-pull: the Go client's Pull with unpack and
    /// `snapshotters.AppendInfoHandlerWrapper`, as the CRI plugin pulls for kubelet.
    CriPull,
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
    /// Whether it drives Strata's runtime socket with the stock 1.6 `ctr` (no containerd).
    runtime: bool,
}

impl Variant {
    fn lazy(&self) -> bool {
        self.snapshotter == "strata-lazy"
    }

    /// Whether containerd must fetch no layer (a lazy snapshotter behind containerd).
    fn remote(&self) -> bool {
        (self.lazy() || self.snapshotter == STARGZ) && !self.runtime
    }

    /// The `ctr` to run and the socket it talks to.
    fn endpoint(&self, cx: &Ctx<'_>, stack: &Stack) -> anyhow::Result<(PathBuf, PathBuf)> {
        if !self.runtime {
            return Ok((cx.ctd.ctr(), stack.containerd.socket.clone()));
        }
        let sock = stack.strata.runtime_socket.clone();
        Ok((
            PathBuf::from("ctr"),
            sock.context("strata-proxy has no runtime socket")?,
        ))
    }

    fn describe(&self) -> String {
        if self.runtime {
            return format!(
                "ctr images pull --snapshotter {} on Strata's runtime socket",
                self.snapshotter
            );
        }
        match self.puller {
            Puller::Rpull => format!("ctr-remote image rpull --snapshotter {}", self.snapshotter),
            Puller::Pull => format!("ctr images pull --snapshotter {}", self.snapshotter),
            Puller::CriPull => format!(
                "cri-pull (Go client Pull) --snapshotter {}",
                self.snapshotter
            ),
        }
    }
}

/// The proxy snapshotter name of stargz-snapshotter (`--stargz-grpc`).
const STARGZ: &str = "stargz";

/// The variants on containerd `ctd` (with stargz-snapshotter when `stargz`), in round 0's
/// order.
fn variants(ctd: &Containerd, stargz: bool) -> Vec<Variant> {
    let v = |key, puller, snapshotter, fill_off| Variant {
        key,
        puller,
        snapshotter,
        fill_off,
        runtime: false,
    };
    let mut out = vec![
        v("rpull", Puller::Rpull, "strata-lazy", false),
        v("cri-pull", Puller::CriPull, "strata-lazy", false),
        v("overlayfs", Puller::Pull, "overlayfs", false),
        v("strata-overlay", Puller::Pull, "strata-overlay", false),
        v("rpull-nofill", Puller::Rpull, "strata-lazy", true),
        Variant {
            runtime: true,
            ..v("runtime", Puller::Pull, "strata-lazy", false)
        },
    ];
    if ctd.v2_dir.is_some() {
        out.insert(1, v("transfer", Puller::Pull, "strata-lazy", false));
    }
    if stargz {
        out.insert(1, v(STARGZ, Puller::Rpull, STARGZ, false));
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
    /// stargz-snapshotter, when the stack has it (dropped after containerd).
    stargz: Option<std::sync::Mutex<Stargz>>,
}

/// stargz-snapshotter as a proxy snapshotter, restartable with an empty root.
struct Stargz {
    bin: PathBuf,
    dir: PathBuf,
    config: String,
    server: Option<Server>,
}

impl Stargz {
    /// Stops the running server, removes its root (its layer cache with it) and starts a new
    /// one on the same socket: each round starts cold, as strata-lazy's do (stargz keeps
    /// fetched layers in its cache after their snapshots are removed).
    fn restart(&mut self) -> anyhow::Result<()> {
        drop(self.server.take());
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(e).with_context(|| format!("removing {}", self.dir.display()));
            }
            _ => {}
        }
        self.server = Some(servers::start_proxy_snapshotter(
            &self.bin,
            &self.dir,
            &self.config,
        )?);
        Ok(())
    }
}

impl Stack {
    /// strata-proxy with `config` and a containerd using it; with `stargz` (a
    /// containerd-stargz-grpc binary and the registries to reach over plain HTTP), also
    /// stargz-snapshotter as proxy snapshotter [`STARGZ`].
    fn start(
        args: &Args,
        dir: &Path,
        ctd: &Containerd,
        config: &str,
        stargz: Option<(&Path, &[&str])>,
    ) -> anyhow::Result<Stack> {
        let (s, c) = (dir.join("strata"), dir.join("containerd"));
        std::fs::create_dir_all(&s)?;
        std::fs::create_dir_all(&c)?;
        let strata = servers::start_strata_with(&args.strata_bin()?, &s, Some(config))?;
        let stargz = match stargz {
            Some((bin, hosts)) => {
                let mut s = Stargz {
                    bin: bin.to_path_buf(),
                    dir: dir.join("stargz"),
                    config: stargz_config(hosts),
                    server: None,
                };
                s.restart()?;
                Some(s)
            }
            None => None,
        };
        let extra: Vec<(&str, &Path)> = stargz
            .iter()
            .filter_map(|s| s.server.as_ref())
            .map(|s| (STARGZ, s.socket.as_path()))
            .collect();
        let containerd = servers::start_containerd_with(&c, Some(&strata.socket), ctd, &extra)?;
        Ok(Stack {
            containerd,
            stargz: stargz.map(std::sync::Mutex::new),
            strata,
        })
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

/// containerd-stargz-grpc's config: `hosts` reached over plain HTTP (each its own insecure
/// mirror), everything else at its defaults (prefetch and background fetch on).
fn stargz_config(hosts: &[&str]) -> String {
    hosts
        .iter()
        .map(|h| format!("[[resolver.host.\"{h}\".mirrors]]\nhost = \"{h}\"\ninsecure = true\n"))
        .collect()
}

/// The lazy source image: `img`'s layers with a busybox layer and a [`python_layer`] on top,
/// written as an OCI archive to `out`; with the Python layer's file count and tar size.
fn build_source(img: &Image, out: &Path, quick: bool) -> anyhow::Result<(Image, usize, usize)> {
    let busybox = tasks::read_static_busybox()?;
    let (bb_tar, bb_gz) = tasks::busybox_layer(&busybox)?;
    let (py_tar, py_gz, py_files) = python_layer(seq_bytes(quick), quick)?;
    let blobs = imagegen::layer_blobs(img)?;
    let mut diff_ids: Vec<String> = img.meta.layers.iter().map(|l| l.diff_id.clone()).collect();
    diff_ids.push(imagegen::sha256(&bb_tar));
    diff_ids.push(imagegen::sha256(&py_tar));
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
    layers.push((gzip, &py_gz));
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
    Ok((src, py_files, py_tar.len()))
}

/// The shared objects `ldd` names in `out`: the libraries (`name => /path`) and the dynamic
/// loader (a line that is only an absolute path), as printed.
fn ldd_paths(out: &str) -> (Vec<String>, Option<String>) {
    let (mut libs, mut loader) = (Vec::new(), None);
    for line in out.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some(_), Some("=>"), Some(p)) if p.starts_with('/') => libs.push(p.to_string()),
            (Some(p), _, _) if p.starts_with('/') => loader = Some(p.to_string()),
            _ => {}
        }
    }
    (libs, loader)
}

/// Appends `host`'s content as the regular file `name` (mode kept, owner root), creating its
/// parent directories first; symlinks on the host are followed.
fn append_file(
    b: &mut tar::Builder<Vec<u8>>,
    dirs: &mut HashSet<String>,
    host: &Path,
    name: &str,
) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let data = std::fs::read(host).with_context(|| format!("reading {}", host.display()))?;
    let mode = std::fs::metadata(host)?.permissions().mode() & 0o7777;
    append_parents(b, dirs, name)?;
    let mut h = tasks::root_header(tar::EntryType::Regular, mode, data.len() as u64)?;
    b.append_data(&mut h, name, data.as_slice())?;
    Ok(())
}

/// Appends a directory entry (0755, root) for every parent of `name` not appended yet.
fn append_parents(
    b: &mut tar::Builder<Vec<u8>>,
    dirs: &mut HashSet<String>,
    name: &str,
) -> anyhow::Result<()> {
    let mut at = 0;
    while let Some(i) = name[at..].find('/') {
        let dir = &name[..at + i + 1];
        if dirs.insert(dir.to_string()) {
            let mut h = tasks::root_header(tar::EntryType::Directory, 0o755, 0)?;
            b.append_data(&mut h, dir, std::io::empty())?;
        }
        at += i + 1;
    }
    Ok(())
}

/// Appends the host tree `host` as `name` (sorted; symlinks kept when relative, skipped when
/// absolute: their targets are not in the image); returns the number of files appended.
fn append_tree(
    b: &mut tar::Builder<Vec<u8>>,
    dirs: &mut HashSet<String>,
    host: &Path,
    name: &str,
) -> anyhow::Result<usize> {
    let mut entries: Vec<_> = std::fs::read_dir(host)
        .with_context(|| format!("reading {}", host.display()))?
        .collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    let mut files = 0;
    for e in entries {
        let (path, kind) = (e.path(), e.file_type()?);
        let child = format!("{name}/{}", e.file_name().to_string_lossy());
        if kind.is_dir() {
            append_parents(b, dirs, &format!("{child}/"))?;
            files += append_tree(b, dirs, &path, &child)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&path)?;
            if target.is_relative() {
                let mut h = tasks::root_header(tar::EntryType::Symlink, 0o777, 0)?;
                b.append_link(&mut h, &child, &target)?;
                files += 1;
            }
        } else if kind.is_file() {
            append_file(b, dirs, &path, &child)?;
            files += 1;
        }
    }
    Ok(files)
}

/// The Python layer (tar, gzip, file count): the host's [`PYTHON`] (and `usr/bin/python3`
/// linking to it), [`PYTHON_LIB`], the libraries `ldd` names (under their directory's
/// canonical host path, which the loader searches by default, as the name `ldd` printed), the
/// dynamic loader at its `PT_INTERP` path, and [`SEQ_FILE`]: `seq_bytes` of seeded random bytes
/// (incompressible). With `startup_only`, of [`PYTHON_LIB`] only the modules the host's
/// interpreter loads to run `print(42)` ([`startup_modules`]) and the `lib-dynload` directory.
fn python_layer(seq_bytes: usize, startup_only: bool) -> anyhow::Result<(Vec<u8>, Vec<u8>, usize)> {
    use rand::{RngCore as _, SeedableRng as _};
    use std::io::Write as _;
    let ldd = std::process::Command::new("ldd")
        .arg(PYTHON)
        .output()
        .with_context(|| format!("running ldd {PYTHON}"))?;
    ensure!(
        ldd.status.success(),
        "ldd {PYTHON} failed ({}): {} (apt-get install python3.11)",
        ldd.status,
        String::from_utf8_lossy(&ldd.stderr).trim()
    );
    let (libs, loader) = ldd_paths(&String::from_utf8_lossy(&ldd.stdout));
    let loader = loader.with_context(|| format!("ldd {PYTHON} names no dynamic loader"))?;
    let mut b = tar::Builder::new(Vec::new());
    let mut dirs = HashSet::new();
    append_file(&mut b, &mut dirs, Path::new(PYTHON), &PYTHON[1..])?;
    let mut h = tasks::root_header(tar::EntryType::Symlink, 0o777, 0)?;
    b.append_link(&mut h, "usr/bin/python3", "python3.11")?;
    let mut files = 2;
    if startup_only {
        append_parents(
            &mut b,
            &mut dirs,
            &format!("{}/lib-dynload/x", &PYTHON_LIB[1..]),
        )?;
        for module in startup_modules()? {
            append_file(&mut b, &mut dirs, &module, &module.to_string_lossy()[1..])?;
            files += 1;
        }
    } else {
        files += append_tree(&mut b, &mut dirs, Path::new(PYTHON_LIB), &PYTHON_LIB[1..])?;
    }
    for lib in &libs {
        // The directory resolved (/lib -> usr/lib), the file name kept (the SONAME link).
        let (dir, file) = (Path::new(lib).parent(), Path::new(lib).file_name());
        let (Some(dir), Some(file)) = (dir, file) else {
            bail!("ldd named {lib:?}, not a file path");
        };
        let real = std::fs::canonicalize(dir).with_context(|| format!("resolving {lib}"))?;
        let name = real.join(file).to_string_lossy()[1..].to_string();
        append_file(&mut b, &mut dirs, Path::new(lib), &name)?;
        files += 1;
    }
    append_file(&mut b, &mut dirs, Path::new(&loader), &loader[1..])?;
    let mut seq = vec![0u8; seq_bytes];
    rand::rngs::StdRng::seed_from_u64(64).fill_bytes(&mut seq);
    append_parents(&mut b, &mut dirs, &SEQ_FILE[1..])?;
    let mut h = tasks::root_header(tar::EntryType::Regular, 0o644, seq.len() as u64)?;
    b.append_data(&mut h, &SEQ_FILE[1..], seq.as_slice())?;
    let layer = b.into_inner()?;
    let mut e = strata_archive::Encoder::new(Compression::Gzip, Vec::new())?;
    e.write_all(&layer)?;
    Ok((layer, e.finish()?, files + 2))
}

/// The files under [`PYTHON_LIB`] of the modules the host's [`PYTHON`] has loaded when it runs
/// a `-c` command (its start-up: `site`, `encodings`, `os`, ...).
fn startup_modules() -> anyhow::Result<Vec<PathBuf>> {
    let out = std::process::Command::new(PYTHON)
        .args([
            "-c",
            "import sys\nfor m in list(sys.modules.values()):\n    f = getattr(m, '__file__', None)\n    f and print(f)",
        ])
        .output()
        .with_context(|| format!("running {PYTHON}"))?;
    ensure!(out.status.success(), "{PYTHON} -c failed ({})", out.status);
    let mut files: Vec<PathBuf> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(PathBuf::from)
        .filter(|p| p.starts_with(PYTHON_LIB) && p.is_file() && !p.is_symlink())
        .collect();
    files.sort();
    files.dedup();
    ensure!(
        !files.is_empty(),
        "{PYTHON} loaded no module from {PYTHON_LIB}"
    );
    Ok(files)
}

/// The size of [`SEQ_FILE`]: 64 MiB, [`QUICK_SEQ_BYTES`] in `--quick` runs.
fn seq_bytes(quick: bool) -> usize {
    if quick { QUICK_SEQ_BYTES } else { SEQ_BYTES }
}

/// Drops the page cache (`sync; echo 3 > /proc/sys/vm/drop_caches`); needs root.
async fn drop_caches() -> anyhow::Result<()> {
    unpack::settle(Duration::ZERO).await;
    tokio::fs::write("/proc/sys/vm/drop_caches", b"3\n")
        .await
        .context("writing 3 to /proc/sys/vm/drop_caches (needs root)")
}

/// Parses [`SEQ_SCRIPT`]'s output into (bytes read, seconds).
fn parse_seq(out: &str) -> anyhow::Result<(u64, f64)> {
    let mut words = out.split_whitespace();
    let (Some(n), Some(s), None) = (words.next(), words.next(), words.next()) else {
        bail!("sequential read printed {out:?}, expected \"<bytes> <seconds>\"");
    };
    let (n, s): (u64, f64) = (
        n.parse().with_context(|| format!("byte count {n:?}"))?,
        s.parse().with_context(|| format!("seconds {s:?}"))?,
    );
    ensure!(s > 0.0, "sequential read took {s} s");
    Ok((n, s))
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
    /// MiB/s of the sequential read of [`SEQ_FILE`] (page cache dropped; after the fill when
    /// it is on).
    seq: f64,
}

/// Everything a round needs.
struct Ctx<'a> {
    ctd: &'a Containerd,
    reference: String,
    /// The cri-pull binary built from integration/cri-pull.
    cri_pull: PathBuf,
    layers: usize,
    counter: Counter,
    settle: Duration,
    /// The size of [`SEQ_FILE`] in the image.
    seq_bytes: usize,
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

/// The sequential read of [`SEQ_FILE`] in a `ctr run --rm` of `v`'s image (page cache
/// dropped first), in MiB/s; the byte count is checked.
async fn seq_read(
    cx: &Ctx<'_>,
    stack: &Stack,
    v: Variant,
    ns: &str,
    id: &str,
) -> anyhow::Result<f64> {
    let (ctr, sock) = v.endpoint(cx, stack)?;
    let sock = &sock;
    drop_caches().await?;
    let args = [
        "run",
        "--rm",
        "--snapshotter",
        v.snapshotter,
        &cx.reference,
        id,
        PYTHON,
        "-c",
        SEQ_SCRIPT,
        SEQ_FILE,
    ];
    let (n, secs) = parse_seq(&run_ctr(&ctr, sock, ns, &args).await?)?;
    ensure!(
        n == cx.seq_bytes as u64,
        "{}: read {n} B of {SEQ_FILE}, expected {}",
        v.key,
        cx.seq_bytes
    );
    Ok(n as f64 / MIB / secs)
}

/// One round of `v` on `stack` in the fresh namespace `ns`: settle, timed pull, timed `ctr run
/// --rm` of `python3.11 -c 'print(42)'` (output checked), registry bytes, fill time, then the
/// sequential read; then `images rm --sync`, no blob left, namespace removed.
async fn one(cx: &Ctx<'_>, stack: &Stack, v: Variant, ns: &str, id: &str) -> anyhow::Result<Got> {
    let (ctr, sock) = v.endpoint(cx, stack)?;
    let sock = &sock;
    let reference = cx.reference.as_str();
    let (prog, mut args) = match v.puller {
        Puller::Rpull => (PathBuf::from("ctr-remote"), vec!["image", "rpull"]),
        Puller::Pull => (ctr.clone(), vec!["images", "pull"]),
        Puller::CriPull => (cx.cri_pull.clone(), vec![]),
    };
    args.extend(["--plain-http", "--snapshotter", v.snapshotter, reference]);
    if v.snapshotter == STARGZ {
        let s = stack.stargz.as_ref().context("no stargz-snapshotter")?;
        s.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .restart()?;
        // containerd redials the new server after a backoff (untimed): a Prepare reaches it
        // (a List would not: containerd answers that from its own metadata).
        let probe = [
            "snapshots",
            "--snapshotter",
            STARGZ,
            "prepare",
            "bench-probe",
        ];
        let t = Instant::now();
        while run_ctr(&ctr, sock, ns, &probe).await.is_err() {
            ensure!(
                t.elapsed() < Duration::from_secs(30),
                "stargz-snapshotter did not come back"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let rm = ["snapshots", "--snapshotter", STARGZ, "rm", "bench-probe"];
        run_ctr(&ctr, sock, ns, &rm).await?;
    }
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
        PYTHON,
        FIRST[0],
        FIRST[1],
    ];
    let out = run_ctr(&ctr, sock, ns, &run).await?;
    let run = t.elapsed().as_secs_f64();
    let bytes = cx.counter.get() - before;
    ensure!(
        out == FIRST_OUT,
        "{}: {PYTHON} -c 'print(42)' printed {out:?}, expected {FIRST_OUT:?}",
        v.key
    );
    if v.remote() {
        // After the run (untimed): only the index, manifest and config; a layer containerd
        // fetched would be listed too. (On the runtime socket the layers are listed: Strata
        // keeps them as remote blobs while it fills them.)
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
    let seq = seq_read(cx, stack, v, ns, &format!("{id}-seq")).await?;
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
        seq,
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
        return args.skip(notes, note);
    }
    std::fs::create_dir_all(dir)?;
    let cache = args.workdir.join("strata-bench-images");
    let (layers, mib) = (
        args.unpack_layers.first().copied().unwrap_or(3).max(1),
        args.unpack_mib.max(1),
    );
    let cri_pull = servers::build_go_tool(dir, "integration/cri-pull").await?;
    let archive = dir.join("lazy-src.tar");
    let quick = args.quick;
    let (src, py_files, py_tar) = tokio::task::spawn_blocking(move || {
        let img = imagegen::ensure(&cache, layers, mib, &[Compression::Gzip])?
            .pop()
            .context("no generated image")?;
        build_source(&img, &archive, quick)
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
        args.stargz_grpc.as_deref().map(|b| (b, &hosts[..])),
    )?;
    let off = Stack::start(
        args,
        &dir.join("fill-off"),
        ctd,
        &strata_config(&hosts, false),
        None,
    )?;
    let reference = format!("{}/{REPO}:estargz", counter.addr);
    let source = format!("{}/bench/{}:1", counter.addr, src.meta.label);
    let start = Instant::now();
    let (total, nlayers) = convert(&on, ctd, &source, &reference).await?;
    let version = containerd_version(ctd).await;
    let line = format!(
        "lazy image on containerd {version}: {} + busybox layer + Python layer ({PYTHON}, \
         {PYTHON_LIB}{}, its shared libraries and loader, {SEQ_FILE} of {} random B: \
         {py_files} files, {:.1} MiB tar) converted by ctr-remote --estargz --oci in {:.1} s: \
         {nlayers} layers, {:.1} MiB compressed ({total} B)",
        src.meta.describe(),
        if quick {
            " (only the modules print(42) loads)"
        } else {
            ""
        },
        seq_bytes(quick),
        py_tar as f64 / MIB,
        start.elapsed().as_secs_f64(),
        total as f64 / MIB,
    );
    println!("{line}");
    notes.push(line);
    let cx = Ctx {
        ctd,
        reference,
        cri_pull,
        layers: nlayers,
        counter,
        settle: Duration::from_millis(if args.quick { 50 } else { 500 }),
        seq_bytes: seq_bytes(quick),
    };
    let vs = variants(ctd, args.stargz_grpc.is_some());
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
                 registry sent {:.2} MiB{}, sequential read {:.1} MiB/s",
                v.describe(),
                g.pull,
                g.run,
                g.pull + g.run,
                g.bytes as f64 / MIB,
                g.fill
                    .map_or(String::new(), |f| format!(", all layers local at {f:.3} s")),
                g.seq
            );
            got[i].push(g);
        }
    }
    let group = format!("lazy, containerd {}", ctd.label());
    report(&group, &vs, &got, total, &version, cx.seq_bytes, out);
    Ok(())
}

/// The rows: strata-lazy ("strata" column) against each full pull ("containerd" column).
fn report(
    group: &str,
    vs: &[Variant],
    got: &[Vec<Got>],
    total: u64,
    version: &str,
    seq_bytes: usize,
    out: &mut Vec<Measurement>,
) {
    let seq_mib = seq_bytes >> 20;
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
    let seq = |g: &Got| Some(g.seq);
    out.push(Measurement::new(
        group,
        format!(
            "sequential read {seq_mib} MiB: rpull strata-lazy, fill off (from the registry) vs \
             full pull overlayfs"
        ),
        "lazy",
        "MiB/s",
        true,
        pair(nofill(&seq), series("overlayfs", &seq)),
    ));
    for lazy in &lazies {
        out.push(Measurement::new(
            group,
            format!(
                "sequential read {seq_mib} MiB: {lazy} strata-lazy after the fill (local blob) vs full \
                 pull overlayfs"
            ),
            "lazy",
            "MiB/s",
            true,
            pair(series(lazy, &seq), series("overlayfs", &seq)),
        ));
    }
    let stargz_rows = out.len();
    stargz_report(group, &lazies, &series, out);
    if let Some(m) = out.get_mut(stargz_rows) {
        m.notes.push(
            "stargz = stargz-snapshotter (containerd-stargz-grpc given by --stargz-grpc, its \
             defaults: prefetch and background fetch on) as proxy snapshotter `stargz` of the \
             same containerd, pulled with ctr-remote image rpull --snapshotter stargz, restarted \
             with an empty root before each of its rounds (cold, as strata-lazy's), its \
             sequential read right after the first run (its background fetch may still run); \
             \"strata\" = strata-lazy through the client named in the row"
                .into(),
        );
    }
    if let Some(m) = out.get_mut(first) {
        m.notes.push(format!(
            "one containerd {version} with strata-proxy as its content store and snapshotters \
             (proxy_plugins incl. strata-lazy); \"strata\" = strata-lazy, \"containerd\" = the \
             full pull named in the row (stock ctr images pull --plain-http, unpack included, \
             into containerd's built-in overlayfs or strata-overlay), same eStargz image of \
             {:.1} MiB compressed; run = ctr run --rm <img> <id> /usr/bin/python3.11 -c \
             'print(42)', output checked to be \"42\"; cri-pull = containerd's Go client Pull \
             with unpack and snapshotters.AppendInfoHandlerWrapper (integration/cri-pull, the \
             CRI plugin's way); runtime = the stock 1.6 ctr images pull and ctr run on \
             Strata's own runtime socket, no containerd (Strata keeps the layers remote, \
             strata-lazy mounts them on the unpack's Stat, and its content store fills them in \
             the background from pull start: that fill is in its registry bytes); sequential read = {SEQ_FILE} ({SEQ_BYTES} random B, \
             {QUICK_SEQ_BYTES} in --quick runs, whose Python layer holds only the modules \
             print(42) loads) read in 1 \
             MiB read(2)s by python3.11 in a second ctr run --rm after echo 3 > \
             /proc/sys/vm/drop_caches, timed inside the container around the read loop only \
             (after the fill finished when it is on); fresh namespace per round, images rm --sync after (no blob left); \
             order rotating per round; fill-off rows on a second strata-proxy with [lazy] \
             background_fill = false; registry bytes = all bytes docker-registry sent (HTTP \
             headers included) through a counting TCP proxy in front of it, from pull start to \
             the end of the run",
            total as f64 / MIB
        ));
    }
}

/// The rows against stargz-snapshotter, when it ran: strata-lazy ("strata") through each
/// client vs stargz through rpull ("containerd").
fn stargz_report(
    group: &str,
    lazies: &[&str],
    series: &dyn Fn(&str, &dyn Fn(&Got) -> Option<f64>) -> Vec<f64>,
    out: &mut Vec<Measurement>,
) {
    let pull_run = |g: &Got| Some(g.pull + g.run);
    let stargz = series(STARGZ, &pull_run);
    if stargz.is_empty() {
        return;
    }
    let pair = |a: Vec<f64>, b: Vec<f64>| -> Samples {
        Samples::from([("strata".to_string(), a), ("containerd".to_string(), b)])
    };
    for lazy in lazies {
        out.push(Measurement::new(
            group,
            format!("pull + run: {lazy} strata-lazy vs rpull stargz-snapshotter"),
            "lazy",
            "s",
            false,
            pair(series(lazy, &pull_run), stargz.clone()),
        ));
    }
    let mib = |g: &Got| Some(g.bytes as f64 / MIB);
    out.push(Measurement::new(
        group,
        "registry bytes to first output: rpull strata-lazy vs rpull stargz-snapshotter (both \
         fetching in the background)"
            .into(),
        "lazy",
        "MiB",
        false,
        pair(series("rpull", &mib), series(STARGZ, &mib)),
    ));
    let seq = |g: &Got| Some(g.seq);
    out.push(Measurement::new(
        group,
        "sequential read: rpull strata-lazy after the fill vs rpull stargz-snapshotter".into(),
        "lazy",
        "MiB/s",
        true,
        pair(series("rpull", &seq), series(STARGZ, &seq)),
    ));
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
        let keys = |c: &Containerd| variants(c, false).iter().map(|v| v.key).collect::<Vec<_>>();
        assert!(!keys(&Containerd::default()).contains(&"transfer"));
        let two = Containerd {
            v2_dir: Some("/x".into()),
        };
        assert!(keys(&two).contains(&"transfer"));
    }

    #[test]
    fn stargz_runs_only_when_given_and_fetches_no_layer_through_containerd() {
        let c = Containerd::default();
        assert!(!variants(&c, false).iter().any(|v| v.key == STARGZ));
        let vs = variants(&c, true);
        let v = vs.iter().find(|v| v.key == STARGZ).expect("stargz variant");
        assert_eq!((v.puller, v.snapshotter), (Puller::Rpull, STARGZ));
        assert!(v.remote() && !v.lazy() && !v.fill_off);
        let conf = stargz_config(&["127.0.0.1:1", "127.0.0.1:2"]);
        assert!(conf.contains(
            "[[resolver.host.\"127.0.0.1:2\".mirrors]]\nhost = \"127.0.0.1:2\"\ninsecure = true"
        ));
        let parsed: toml::Value = toml::from_str(&conf).expect("stargz config is TOML");
        assert!(
            parsed["resolver"]["host"]["127.0.0.1:1"]["mirrors"][0]["insecure"].as_bool()
                == Some(true)
        );
    }

    /// cri-pull (the Kubernetes path) is a strata-lazy variant with the fill on, on 1.x and 2.x.
    #[test]
    fn variants_have_cri_pull_on_both_versions() {
        let two = Containerd {
            v2_dir: Some("/x".into()),
        };
        for c in [Containerd::default(), two] {
            let vs = variants(&c, false);
            let v = vs
                .iter()
                .find(|v| v.key == "cri-pull")
                .expect("cri-pull variant");
            assert_eq!(v.puller, Puller::CriPull);
            assert!(v.lazy() && !v.fill_off);
            assert!(v.describe().starts_with("cri-pull"));
        }
    }

    #[test]
    fn ldd_paths_names_libraries_and_loader() {
        let out = "\tlinux-vdso.so.1 (0x00007feffb920000)\n\
                   \tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007feffb82f000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007feffb603000)\n\
                   \tlibgone.so.1 => not found\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007feffb922000)\n";
        let (libs, loader) = ldd_paths(out);
        assert_eq!(
            libs,
            [
                "/lib/x86_64-linux-gnu/libm.so.6",
                "/lib/x86_64-linux-gnu/libc.so.6"
            ]
        );
        assert_eq!(loader.as_deref(), Some("/lib64/ld-linux-x86-64.so.2"));
    }

    #[test]
    fn parse_seq_reads_bytes_and_seconds() {
        let (n, s) = parse_seq("67108864 0.125\n").unwrap();
        assert_eq!(n, 67_108_864);
        assert!((s - 0.125).abs() < 1e-12);
        assert!(parse_seq("67108864").is_err());
        assert!(parse_seq("x 0.1").is_err());
        assert!(parse_seq("1 0").is_err());
        assert!(parse_seq("1 0.1 extra").is_err());
    }

    /// The entries of a gzip layer: path -> (entry type, size).
    fn entries(gz: &[u8]) -> std::collections::HashMap<String, (tar::EntryType, u64)> {
        let mut a = tar::Archive::new(strata_archive::compression::decoder(gz).unwrap());
        a.entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                (path, (e.header().entry_type(), e.size()))
            })
            .collect()
    }

    /// The Python layer built from the host's python3.11 (needs it installed) holds the
    /// interpreter, its library, the loader at its PT_INTERP path, libc and the random file.
    #[test]
    fn python_layer_holds_interpreter_libraries_and_file() {
        let (tar, gz, files) = python_layer(4096, false).unwrap();
        let got = entries(&gz);
        assert_eq!(
            got.len(),
            tar::Archive::new(tar.as_slice()).entries().unwrap().count()
        );
        let file = |p: &str| got.get(p).map(|e| e.0);
        assert_eq!(file("usr/bin/python3.11"), Some(tar::EntryType::Regular));
        assert_eq!(file("usr/bin/python3"), Some(tar::EntryType::Symlink));
        assert_eq!(
            file("usr/lib/python3.11/os.py"),
            Some(tar::EntryType::Regular)
        );
        assert_eq!(
            file("lib64/ld-linux-x86-64.so.2"),
            Some(tar::EntryType::Regular)
        );
        assert!(got.keys().any(|k| k.ends_with("/libc.so.6")));
        assert_eq!(
            got.get("data/seq-64MiB.bin"),
            Some(&(tar::EntryType::Regular, 4096))
        );
        assert!(!got.contains_key("usr/lib/python3.11/sitecustomize.py"));
        let regular_or_link = got
            .values()
            .filter(|e| e.0 != tar::EntryType::Directory)
            .count();
        assert_eq!(files, regular_or_link);
    }

    /// `--quick`'s layer holds the interpreter, the modules its start-up loads and no others.
    #[test]
    fn the_startup_only_python_layer_holds_what_print_42_loads() {
        let (_, gz, files) = python_layer(4096, true).unwrap();
        let got = entries(&gz);
        let file = |p: &str| got.get(p).map(|e| e.0);
        assert_eq!(file("usr/bin/python3.11"), Some(tar::EntryType::Regular));
        for m in [
            "os.py",
            "site.py",
            "encodings/__init__.py",
            "encodings/utf_8.py",
        ] {
            let path = format!("usr/lib/python3.11/{m}");
            assert_eq!(file(&path), Some(tar::EntryType::Regular), "{path}");
        }
        assert_eq!(
            file("usr/lib/python3.11/lib-dynload/"),
            Some(tar::EntryType::Directory)
        );
        assert!(!got.contains_key("usr/lib/python3.11/json/__init__.py"));
        let (_, _, all) = python_layer(4096, false).unwrap();
        assert!(files * 5 < all, "{files} files of {all}");
    }

    /// The layer alone runs `print(42)` and the read script, in full and as `--quick` builds it
    /// (chroot: needs root).
    #[test]
    #[ignore = "needs root (chroot)"]
    fn python_layer_runs_in_chroot() {
        for startup_only in [false, true] {
            runs_in_chroot(startup_only);
        }
    }

    fn runs_in_chroot(startup_only: bool) {
        let (tar, _, _) = python_layer(3 << 20, startup_only).unwrap();
        let dir = tempfile::tempdir().unwrap();
        tar::Archive::new(tar.as_slice())
            .unpack(dir.path())
            .unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("chroot")
                .arg(dir.path())
                .arg(PYTHON)
                .args(args)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        assert_eq!(run(&FIRST), FIRST_OUT);
        let (n, _) = parse_seq(&run(&["-c", SEQ_SCRIPT, SEQ_FILE])).unwrap();
        assert_eq!(n, 3 << 20);
    }
}
