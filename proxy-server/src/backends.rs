//! The snapshot backends this daemon serves, by the proxy plugin names containerd uses.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use strata_lazy::backend::{Lazy, LazyLayout};
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
    let layout = LazyLayout::new(
        OverlayLayout { index_off },
        strata_lazy::backend::registry_opener(registry, rt.clone()),
        rt,
        config.lazy.layer.clone(),
    );
    Lazy::with_layout(&Metadata::shared(db), "lazy", dir, layout)
}
