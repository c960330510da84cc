//! [`LazyLayout`]: overlay snapshots, except that a committed layer containerd's unpacker asks
//! for with eStargz labels is served from a FUSE mount of the remote layer instead of being
//! downloaded and unpacked (containerd's remote-snapshotter protocol, through
//! [`Layout::remote`]).
//!
//! A lazy snapshot's directory holds `lazy.json` (its [`LayerRef`]), `fs` (the FUSE mount
//! point, an overlay lower layer like any other layer's `fs`) and, once the background fill is
//! done, `blob` (the verified layer; `blob.part` while filling).
//!
//! Mounts are served in this process, or, with [`LazyLayout::with_server`] (what the daemon
//! does), each by a `strata-lazy-serve` process that outlives the daemon ([`Server`]).

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

use strata_snapshotters::fsutil::Dirs;
use strata_snapshotters::metastore::Snapshot;
use strata_snapshotters::overlay::OverlayLayout;
use strata_snapshotters::{Error, Kind, Labels, Layout, Mount, NewSnapshot, Result, Usage};
use tokio::runtime::Handle;

use super::labels::{LayerRef, SNAPSHOT_REF};
use super::serve::{self, LAZY_JSON, Server, is_served};
use super::source::{BlobSource, link_verified};
use crate::RangeSource;
use crate::estargz::Layer;
use crate::fs::Mounted;

/// Opens the remote blob a [`LayerRef`] names (the registry client; tests pass their own).
pub type Opener = Arc<dyn Fn(&LayerRef) -> io::Result<Arc<dyn RangeSource>> + Send + Sync>;

/// Tuning of the lazy backend.
#[derive(Debug, Clone)]
pub struct LazyConfig {
    /// Decompressed chunks kept in memory per layer.
    pub cache_bytes: usize,
    /// Whether each lazy layer is copied in the background, after which reads are local.
    pub background_fill: bool,
    /// The file on-demand registry reads mark so that fills yield to them
    /// ([`super::activity`]); None: fills never wait.
    pub activity: Option<PathBuf>,
}

impl Default for LazyConfig {
    fn default() -> Self {
        LazyConfig {
            cache_bytes: crate::estargz::cache::DEFAULT_BUDGET,
            background_fill: true,
            activity: None,
        }
    }
}

type LazyLayer = Arc<Layer<BlobSource>>;

/// The `strata-lazy` layout.
pub struct LazyLayout {
    overlay: OverlayLayout,
    opener: Opener,
    rt: Handle,
    config: LazyConfig,
    /// Mounted lazy layers by snapshot directory.
    served: Mutex<HashMap<PathBuf, Mounted>>,
    /// Layers opened by `fill`, mounted by `install`.
    pending: Mutex<HashMap<PathBuf, LazyLayer>>,
    /// Snapshot directories known not to be lazy (checked once each).
    plain: Mutex<HashSet<PathBuf>>,
    /// Held while a lazy layer is mounted again (after a restart).
    remounting: Mutex<()>,
    /// Serve each layer from a process of its own instead of this one.
    server: Option<Server>,
    /// Servers being started for new snapshots.
    starting: Arc<Starting>,
}

/// Snapshot directories whose server is being started. A new lazy snapshot is answered as
/// soon as its layer is opened and verified here; its server (a process that opens the layer
/// again from the recorded head and mounts it) starts meanwhile, so containerd's next layer
/// does not wait for it. Whatever needs the mount (Mounts, a remount, a removal) waits for that
/// start first.
#[derive(Default)]
struct Starting {
    dirs: Mutex<HashSet<PathBuf>>,
    done: Condvar,
}

impl Starting {
    fn begin(&self, dir: &Path) {
        lock(&self.dirs).insert(dir.to_path_buf());
    }

    fn end(&self, dir: &Path) {
        lock(&self.dirs).remove(dir);
        self.done.notify_all();
    }

    /// Waits until no server for `dir` is being started.
    fn wait(&self, dir: &Path) {
        let mut dirs = lock(&self.dirs);
        while dirs.contains(dir) {
            dirs = self.done.wait(dirs).unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl std::fmt::Debug for LazyLayout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyLayout")
            .field("config", &self.config)
            .field("served", &lock(&self.served).len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn io_err(what: impl std::fmt::Display, e: impl std::fmt::Display) -> Error {
    Error::io(format!("{what}"), io::Error::other(e.to_string()))
}

impl LazyLayout {
    /// Lazy layers opened through `opener`, mounted and filled on the tokio runtime `rt`.
    pub fn new(overlay: OverlayLayout, opener: Opener, rt: Handle, config: LazyConfig) -> Self {
        LazyLayout {
            overlay,
            opener,
            rt,
            config,
            served: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            plain: Mutex::new(HashSet::new()),
            remounting: Mutex::new(()),
            server: None,
            starting: Arc::default(),
        }
    }

    /// Serves every lazy layer from a `strata-lazy-serve` process of its own, which keeps the
    /// mount served across restarts and crashes of this process.
    pub fn with_server(mut self, server: Server) -> Self {
        self.server = Some(server);
        self
    }

    fn open_layer(&self, dir: &Path, r: &LayerRef) -> Result<LazyLayer> {
        serve::open_layer(dir, r, &self.opener, &self.config)
            .map_err(|e| Error::io(format!("lazy layer {}", r.digest), e))
    }

    /// Mounts the layer of `dir` (opened as `layer`) and starts its background fill: here, or
    /// in a server process of its own.
    fn serve(&self, dir: &Path, r: &LayerRef, layer: LazyLayer) -> Result<()> {
        if let Some(server) = &self.server {
            drop(layer);
            return server
                .start(dir, &self.config)
                .map_err(|e| Error::io(format!("lazy layer {}", r.digest), e));
        }
        let mounted = self
            .rt
            .block_on(serve::mount_and_fill(dir, r, layer, &self.config))
            .map_err(|e| Error::io(format!("lazy layer {}", r.digest), e))?;
        lock(&self.served).insert(dir.to_path_buf(), mounted);
        Ok(())
    }

    /// Whether the lazy layer of `dir` is being served.
    fn is_up(&self, dir: &Path) -> bool {
        match self.server {
            Some(_) => is_served(&dir.join("fs")),
            None => lock(&self.served).contains_key(dir),
        }
    }

    /// Starts the server of new snapshot `dir` (server mode) without waiting for its mount;
    /// a start that fails is logged, and [`Self::ensure`] tries again when the mount is needed.
    fn serve_soon(&self, server: &Server, dir: &Path, r: &LayerRef) {
        let (server, config, starting) =
            (server.clone(), self.config.clone(), self.starting.clone());
        let (dir, digest) = (dir.to_path_buf(), r.digest.clone());
        starting.begin(&dir);
        std::thread::spawn(move || {
            let t = Instant::now();
            match server.start(&dir, &config) {
                Ok(()) => {
                    tracing::info!(dir = %dir.display(), ms = t.elapsed().as_secs_f64() * 1e3, "lazy layer served")
                }
                Err(e) => {
                    tracing::warn!(%digest, error = %e, "lazy layer server did not start; started again when mounted");
                    detach(&dir.join("fs"));
                }
            }
            starting.end(&dir);
        });
    }

    /// Serves the lazy layer of `dir` if it is one and is not served (after a restart).
    fn ensure(&self, dir: &Path) -> Result<()> {
        self.starting.wait(dir);
        if lock(&self.plain).contains(dir) || self.is_up(dir) {
            return Ok(());
        }
        let Some(r) = read_ref(dir)? else {
            // Snapshot directories are never reused: a plain one stays plain.
            lock(&self.plain).insert(dir.to_path_buf());
            return Ok(());
        };
        // One remount at a time, so two Prepares on one layer cannot mount it twice.
        let _one = lock(&self.remounting);
        if self.is_up(dir) {
            return Ok(());
        }
        detach(&dir.join("fs"));
        let layer = self
            .open_layer(dir, &r)
            .map_err(|e| Error::Unavailable(format!("lazy layer {}: {e}", r.digest)))?;
        self.serve(dir, &r, layer)
    }

    /// Unmounts the lazy layer of `dir`, if any.
    fn unserve(&self, dir: &Path) {
        self.starting.wait(dir);
        lock(&self.plain).remove(dir);
        let served = lock(&self.served).remove(dir);
        if let Some(m) = served
            && let Err(e) = self.rt.block_on(m.unmount())
        {
            tracing::warn!(dir = %dir.display(), error = %e, "unmounting a lazy layer");
        }
        detach(&dir.join("fs"));
    }

    fn fill_lazy(&self, tmp: &Path, r: &LayerRef) -> Result<()> {
        let fs = tmp.join("fs");
        std::fs::create_dir(&fs).map_err(|e| Error::io(format!("mkdir {}", fs.display()), e))?;
        // A layer whose bytes are local already (the content store's copy) is read from there.
        if let Some(from) = r.store_blob.as_deref().filter(|p| p.exists())
            && let Err(e) =
                link_verified(from, &tmp.join("blob.part"), &tmp.join("blob"), &r.digest)
        {
            tracing::warn!(digest = %r.digest, error = %e, "lazy layer not taken from the content store");
        }
        let t = Instant::now();
        let layer = self.open_layer(tmp, r)?;
        tracing::debug!(digest = %r.digest, ms = t.elapsed().as_secs_f64() * 1e3, entries = layer.toc().entries.len(), "lazy layer opened");
        let json = serde_json::to_vec(r).map_err(|e| io_err("encode lazy.json", e))?;
        let path = tmp.join(LAZY_JSON);
        std::fs::File::create(&path)
            .and_then(|mut f| {
                io::Write::write_all(&mut f, &json)?;
                f.sync_all()
            })
            .map_err(|e| Error::io(format!("write {}", path.display()), e))?;
        lock(&self.pending).insert(tmp.to_path_buf(), layer);
        Ok(())
    }
}

/// The [`LayerRef`] of snapshot directory `dir`, if it is a lazy one.
fn read_ref(dir: &Path) -> Result<Option<LayerRef>> {
    serve::read_ref(dir)
        .map_err(|e| Error::io(format!("read {}", dir.join(LAZY_JSON).display()), e))
}

/// Detaches whatever is mounted on `path` (a FUSE mount a killed daemon left); nothing
/// mounted is fine.
fn detach(path: &Path) {
    if let Err(e) = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH)
        && !matches!(e, nix::errno::Errno::EINVAL | nix::errno::Errno::ENOENT)
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot detach a lazy mount");
    }
}

impl Layout for LazyLayout {
    fn own_dir(&self, kind: Kind, has_parent: bool) -> bool {
        self.overlay.own_dir(kind, has_parent)
    }

    fn fill(&self, dirs: &Dirs, tmp: &Path, new: &NewSnapshot<'_>) -> Result<()> {
        match LayerRef::from_labels(new.labels).filter(|_| new.kind == Kind::Committed) {
            Some(r) => self.fill_lazy(tmp, &r),
            None => self.overlay.fill(dirs, tmp, new),
        }
    }

    fn install(&self, dirs: &Dirs, tmp: &Path, id: u64) -> Result<()> {
        let layer = lock(&self.pending).remove(tmp);
        dirs.install(tmp, id)?;
        let Some(layer) = layer else {
            return Ok(());
        };
        let dir = dirs.path(id);
        let served = read_ref(&dir).and_then(|r| {
            let r = r.ok_or_else(|| io_err(dir.display(), "lazy.json is missing"))?;
            match &self.server {
                Some(server) => {
                    drop(layer);
                    self.serve_soon(server, &dir, &r);
                    Ok(())
                }
                None => self.serve(&dir, &r, layer),
            }
        });
        if served.is_err() {
            self.unserve(&dir);
            let _ = dirs.remove(id);
        }
        served
    }

    fn remote(&self, _key: &str, _parent: &str, labels: &Labels) -> Option<String> {
        LayerRef::from_labels(labels)?;
        labels.get(SNAPSHOT_REF).cloned()
    }

    fn mounts(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Vec<Mount>> {
        let own = (snap.kind == Kind::Committed).then_some(snap.id);
        for id in snap.parent_ids.iter().copied().chain(own) {
            self.ensure(&dirs.path(id))?;
        }
        self.overlay.mounts(dirs, snap)
    }

    fn data_dir(&self, dirs: &Dirs, id: u64) -> PathBuf {
        self.overlay.data_dir(dirs, id)
    }

    fn usage(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Usage> {
        let dir = dirs.path(snap.id);
        if read_ref(&dir)?.is_none() {
            return self.overlay.usage(dirs, snap);
        }
        let size = ["blob", "blob.part"]
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum::<u64>();
        Ok(Usage {
            size: size as i64,
            inodes: 1,
        })
    }

    fn remove_dir(&self, dirs: &Dirs, id: u64) -> Result<()> {
        self.unserve(&dirs.path(id));
        dirs.remove(id)
    }

    fn cleanup(&self, dirs: &Dirs, live: &HashSet<u64>) -> Result<()> {
        let root = dirs.path(0);
        let root = root.parent().unwrap_or(Path::new("/"));
        if let Ok(entries) = std::fs::read_dir(root) {
            for e in entries.flatten() {
                let id = e.file_name().to_str().and_then(|n| n.parse::<u64>().ok());
                if !id.is_some_and(|id| live.contains(&id)) {
                    self.unserve(&e.path());
                }
            }
        }
        dirs.cleanup(live)
    }

    fn open(&self, dir: &Path) -> Result<()> {
        // Mounts a killed daemon served itself are dead (ENOTCONN): detach them before anything
        // walks the directories; those layers are served again on first use. Mounts of server
        // processes that outlived the daemon answer, and stay.
        if let Ok(entries) = std::fs::read_dir(dir.join("snapshots")) {
            for e in entries.flatten() {
                let fs = e.path().join("fs");
                if e.path().join(LAZY_JSON).exists() && !is_served(&fs) {
                    detach(&fs);
                }
            }
        }
        self.overlay.open(dir)
    }
}
