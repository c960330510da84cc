//! The snapshot backends this daemon serves, by the proxy plugin names containerd uses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::os::unix::fs::OpenOptionsExt as _;

use strata_lazy::backend::{Activity, Lazy, LazyLayout, Server};
use strata_snapshotters::Metadata;
use strata_snapshotters::Snapshotter;
use strata_snapshotters::btrfs::Btrfs;
use strata_snapshotters::native::Native;
use strata_snapshotters::overlay::{Overlay, OverlayLayout};

use crate::config::Config;
use crate::snapshots_api::Disabled;

/// Opens every backend under `dir` (`<root>/snapshots`); a backend that cannot start is logged
/// once and listed in the second map with the reason.
pub async fn open(
    db: Arc<strata_core::db::rocksdb::DB>,
    dir: &Path,
    config: &Config,
) -> (BTreeMap<String, Arc<dyn Snapshotter>>, Disabled) {
    let mut on: BTreeMap<String, Arc<dyn Snapshotter>> = BTreeMap::new();
    let mut off = Disabled::new();
    match Overlay::new(db.clone(), dir.join("overlay")) {
        Ok(b) => {
            on.insert("strata-overlay".into(), Arc::new(b));
        }
        Err(e) => disable(&mut off, "strata-overlay", e.to_string()),
    }
    match Native::new(db.clone(), dir.join("native")) {
        Ok(b) => {
            on.insert("strata-native".into(), Arc::new(b));
        }
        Err(e) => disable(&mut off, "strata-native", e.to_string()),
    }
    if config.lazy.enabled {
        match open_lazy(db.clone(), &dir.join("lazy"), config) {
            Ok(b) => {
                on.insert("strata-lazy".into(), Arc::new(b));
            }
            Err(e) => disable(&mut off, "strata-lazy", e.to_string()),
        }
    }
    // Only where `<root>/snapshots/btrfs` is on btrfs (a loop mount in CI).
    match Btrfs::new(db, dir.join("btrfs")) {
        Ok(b) => {
            on.insert("strata-btrfs".into(), Arc::new(b));
        }
        Err(e) => disable(&mut off, "strata-btrfs", e.to_string()),
    }
    (on, off)
}

fn disable(off: &mut Disabled, name: &str, reason: String) {
    tracing::warn!(backend = name, %reason, "backend disabled");
    off.insert(name.to_string(), reason);
}

/// Where the backends live under the daemon's `root`: `<root>/snapshots`, one directory each.
pub fn dir(root: &Path) -> PathBuf {
    root.join("snapshots")
}

/// The on-demand read mark of the daemon at `root`, in the lazy backend's directory: its
/// layers' servers and the runtime's fills yield to it (`strata_lazy::backend::Activity`).
pub fn lazy_activity(root: &Path) -> Activity {
    Activity::new(&activity_mark(&dir(root).join("lazy")))
}

/// The file [`lazy_activity`] marks, given the lazy backend's directory.
fn activity_mark(lazy_dir: &Path) -> PathBuf {
    lazy_dir.join("reading")
}

/// `strata-lazy`: overlay layers, eStargz and zstd:chunked ones served lazily from the registry
/// (`strata_lazy::backend`).
fn open_lazy(
    db: Arc<strata_core::db::rocksdb::DB>,
    dir: &Path,
    config: &Config,
) -> strata_snapshotters::Result<Lazy> {
    let index_off = Path::new("/sys/module/overlay/parameters/index").exists();
    let rt = tokio::runtime::Handle::current();
    let registry = strata_registry::Registry::new(config.registry.clone())
        .map_err(|e| strata_snapshotters::Error::io("registry client", e))?;
    let mut layout = LazyLayout::new(
        OverlayLayout { index_off },
        strata_lazy::backend::registry_opener(registry, rt.clone()),
        rt,
        strata_lazy::backend::LazyConfig {
            // Shared by every layer's server: fills yield to on-demand reads of any layer.
            activity: Some(activity_mark(dir)),
            ..config.lazy.layer.clone()
        },
    );
    match lazy_server(dir, config) {
        Ok(Some(server)) => layout = layout.with_server(server),
        Ok(None) => tracing::info!(
            "strata-lazy-serve is not beside this binary: lazy layers are served in process \
             (a restart of the daemon ends their mounts)"
        ),
        Err(e) => {
            return Err(strata_snapshotters::Error::io(
                "strata-lazy registry settings",
                e,
            ));
        }
    }
    Lazy::with_layout(&Metadata::shared(db), "lazy", dir, layout)
}

/// `strata-lazy-serve` beside this binary, with the registry settings written for it to read
/// (`<dir>/registry.json`, 0600: it may hold credentials); `None` when there is no such program.
fn lazy_server(dir: &Path, config: &Config) -> std::io::Result<Option<Server>> {
    let program = std::env::current_exe()?.with_file_name("strata-lazy-serve");
    if !program.is_file() {
        return Ok(None);
    }
    std::fs::create_dir_all(dir)?;
    let registry_json = dir.join("registry.json");
    let tmp = dir.join("registry.json.tmp");
    let json = serde_json::to_vec(&config.registry).map_err(std::io::Error::other)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    std::io::Write::write_all(&mut f, &json)?;
    f.sync_all()?;
    std::fs::rename(&tmp, &registry_json)?;
    Ok(Some(Server {
        program,
        registry_json,
        ready_timeout: std::time::Duration::from_secs(60),
    }))
}
