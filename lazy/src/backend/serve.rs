//! Serving one lazy snapshot directory: open its layer (the local copy once filled, else the
//! registry), mount it on `<dir>/fs`, fill it in the background. The daemon does this in
//! process ([`serve_dir`]) or hands it to a `strata-lazy-serve` process per layer
//! ([`Server`]), which outlives the daemon: a restart, an upgrade or a `kill -9` of the daemon
//! leaves every mount served, so running containers never see their lower layers go away.

use std::io::{self, BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use super::activity::Activity;
use super::head;
use super::labels::LayerRef;
use super::layout::{LazyConfig, Opener};
use super::source::BlobSource;
use crate::RangeSource as _;
use crate::estargz::Layer;
use crate::fs::{MountOptions, Mounted};

/// A lazy snapshot's record of where its layer came from.
pub const LAZY_JSON: &str = "lazy.json";

/// `FUSE_SUPER_MAGIC` (`linux/magic.h`).
const FUSE_MAGIC: i64 = 0x6573_5546;

/// The [`LayerRef`] of snapshot directory `dir`, if it is a lazy one.
pub fn read_ref(dir: &Path) -> io::Result<Option<LayerRef>> {
    match std::fs::read(dir.join(LAZY_JSON)) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens the layer of `dir`: its verified local copy (`blob`) when there is one, else the
/// registry through `opener`; checks the TOC against `r.toc_digest`. The footer and TOC read
/// from the registry are kept beside (`head.bin`, [`super::head`]), so the next open of this
/// directory (the layer's server, a remount) reads them from there instead (verified again).
pub fn open_layer(
    dir: &Path,
    r: &LayerRef,
    opener: &Opener,
    config: &LazyConfig,
) -> io::Result<Arc<Layer<BlobSource>>> {
    let cache_bytes = config.cache_bytes;
    let activity = config
        .activity
        .as_deref()
        .map(|p| Arc::new(Activity::new(p)));
    let context =
        |e: io::Error| io::Error::other(format!("open layer {} of {}: {e}", r.digest, r.image));
    let open = |src: BlobSource| {
        Layer::open(src, &r.toc_digest)
            .map(|l| Arc::new(l.with_cache_budget(cache_bytes)))
            .map_err(|e| io::Error::other(format!("layer {}: {e}", r.digest)))
    };
    if let Ok(f) = std::fs::File::open(dir.join("blob")) {
        return open(BlobSource::local(f).map_err(context)?);
    }
    let head_path = dir.join(head::HEAD_FILE);
    match head::read(&head_path) {
        Ok(Some((size, pieces))) => {
            let (opener, r2) = (opener.clone(), r.clone());
            let replay = head::Replay::new(size, pieces, move || opener(&r2));
            let src = BlobSource::remote(replay).map_err(context)?;
            match open(src.with_activity(activity.clone())) {
                Ok(layer) => return Ok(layer),
                Err(e) => {
                    tracing::warn!(digest = %r.digest, error = %e, "lazy layer head not used");
                    let _ = std::fs::remove_file(&head_path);
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            tracing::warn!(digest = %r.digest, error = %e, "lazy layer head not used");
            let _ = std::fs::remove_file(&head_path);
        }
    }
    let rec = head::Recorder::new(opener(r).map_err(context)?);
    let src = BlobSource::remote(rec.clone()).map_err(context)?;
    let layer = open(src.with_activity(activity))?;
    let size = layer.source().size().map_err(context)?;
    if let Err(e) = head::write(&head_path, size, &rec.take()) {
        tracing::info!(digest = %r.digest, error = %e, "lazy layer head not kept");
    }
    Ok(layer)
}

/// The wait before a fill that stopped (the registry down) resumes; it doubles after each.
const FIRST_FILL_WAIT: Duration = Duration::from_secs(1);

/// Mounts `layer` on `<dir>/fs` and, when `config` says so and it is not local yet, starts
/// copying it beside (`blob`, verified against the layer digest), resuming after errors.
pub async fn mount_and_fill(
    dir: &Path,
    r: &LayerRef,
    layer: Arc<Layer<BlobSource>>,
    config: &LazyConfig,
) -> io::Result<Mounted> {
    let fs = dir.join("fs");
    let mounted = crate::fs::mount(layer.clone(), &fs, &MountOptions::default())
        .await
        .map_err(|e| io::Error::other(format!("mount {}: {e}", fs.display())))?;
    if config.background_fill
        && !layer.source().is_local()
        && let Some(from) = r.store_blob.clone()
    {
        let dir = dir.to_path_buf();
        let digest = r.digest.clone();
        std::thread::spawn(move || adopt_when_there(&dir, &from, &layer, &digest));
    } else if config.background_fill && !layer.source().is_local() {
        let (part, done, digest) = (dir.join("blob.part"), dir.join("blob"), r.digest.clone());
        tokio::task::spawn_blocking(move || {
            match layer
                .source()
                .fill_retrying(&part, &done, &digest, FIRST_FILL_WAIT)
            {
                Ok(()) => tracing::info!(%digest, "lazy layer filled; reads are local"),
                Err(e) => tracing::warn!(%digest, error = %e, "lazy layer fill failed"),
            }
        });
    }
    Ok(mounted)
}

/// How often a layer filled elsewhere is looked for.
const ADOPT_POLL: Duration = Duration::from_secs(1);

/// Waits until `from` (the content store's copy of the layer) exists, then reads the layer
/// from a verified link of it; gives up when the snapshot `dir` is removed.
fn adopt_when_there(dir: &Path, from: &Path, layer: &Layer<BlobSource>, digest: &str) {
    while dir.join(LAZY_JSON).exists() {
        if from.exists() {
            match layer
                .source()
                .adopt(from, &dir.join("blob.part"), &dir.join("blob"), digest)
            {
                Ok(()) => {
                    tracing::info!(%digest, "lazy layer taken from the content store; reads are local")
                }
                Err(e) => {
                    tracing::warn!(%digest, error = %e, "lazy layer not taken from the content store")
                }
            }
            return;
        }
        std::thread::sleep(ADOPT_POLL);
    }
}

/// Whether `fs` is a FUSE mount that answers (a session a killed server left answers ENOTCONN).
pub fn is_served(fs: &Path) -> bool {
    nix::sys::statfs::statfs(fs).is_ok_and(|s| s.filesystem_type().0 == FUSE_MAGIC)
}

/// The `strata-lazy-serve` program and what it is started with.
#[derive(Debug, Clone)]
pub struct Server {
    /// The program (default: beside the daemon's own binary).
    pub program: PathBuf,
    /// The registry settings, as JSON, for it to read (`--registry`).
    pub registry_json: PathBuf,
    /// How long it may take to mount (it reads the footer and TOC from the registry first).
    pub ready_timeout: Duration,
}

impl Server {
    /// Starts a server for `dir` in a process group of its own (it survives the daemon) and
    /// waits until its mount is up: it prints `ready` once mounted. Its log goes to
    /// `<dir>/serve.log`.
    pub fn start(&self, dir: &Path, config: &LazyConfig) -> io::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))?;
        let mut cmd = Command::new(&self.program);
        // SAFETY: the closure runs in the child between fork and exec and only makes one
        // async-signal-safe syscall. It closes every descriptor above stdio: the server must not
        // keep the daemon's sockets (inherited from systemd without CLOEXEC) or locks alive after
        // the daemon is gone.
        unsafe {
            cmd.pre_exec(|| {
                libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
                Ok(())
            });
        }
        let mut child = cmd
            .arg("--dir")
            .arg(dir)
            .arg("--registry")
            .arg(&self.registry_json)
            .arg("--cache-bytes")
            .arg(config.cache_bytes.to_string())
            .arg("--fill")
            .arg(config.background_fill.to_string())
            .args(
                config
                    .activity
                    .iter()
                    .flat_map(|p| [std::ffi::OsStr::new("--activity"), p.as_os_str()]),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| io::Error::other(format!("start {}: {e}", self.program.display())))?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let ready = rx.recv_timeout(self.ready_timeout);
        if ready.as_deref().map(str::trim) != Ok("ready") {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(dir.join("serve.log")).unwrap_or_default();
            let last = log.lines().last().unwrap_or("no output").to_string();
            return Err(io::Error::other(format!(
                "strata-lazy-serve for {} did not mount: {last}",
                dir.display()
            )));
        }
        // Reaped when it ends (its mount is removed); a daemon that dies first leaves it to init.
        std::thread::spawn(move || child.wait());
        Ok(())
    }
}
