//! strata-runtime: containerd's runtime metadata on Strata's stores.
//!
//! What containerd keeps in its bolt database (`metadata/`) Strata keeps in the shared RocksDB:
//! namespaces, images, containers and leases ([`COLUMN_FAMILIES`]); namespaced blobs and
//! snapshots are the content store's and the snapshotters' own records in the view
//! `ns/<namespace>` ([`Ctx::view`]), so the proxy socket's view (`proxy`) and the runtime never
//! see or delete each other's records while blob bytes are stored once.
//!
//! Lifecycle of a pull, as containerd's client drives it through the runtime socket:
//!
//! ```text
//! leases.create("l1", gc.expire=+24h)               // every call below carries lease l1
//! content.write(manifest, config, layers)            // blobs of the namespace, held by l1
//! content.update(manifest, gc.ref.content.l.0=...)   // the manifest keeps its children
//! snapshots.prepare / commit (unpack)                // snapshots of the namespace, held by l1
//! images.create("docker.io/x:1", target=manifest)    // a root: keeps the manifest and all below
//! leases.delete("l1")                                // what the image does not keep is garbage
//! images.delete("docker.io/x:1", sync=true)          // a GC pass removes the rest before replying
//! ```
//!
//! Garbage collection ([`gc`]) is containerd's tricolor mark and sweep with the
//! `containerd.io/gc.*` label semantics; the mark is a pure function over the reference graph
//! ([`gc::mark`]) and runs without blocking any API call; only the sweep's final step holds
//! back mutations, never reads.

mod chain;
mod containers;
mod content;
mod ctx;
pub mod diff;
mod error;
pub mod events;
pub mod gc;
mod images;
mod lazy_stat;
mod leases;
mod namespaces;
mod parallel_unpack;
mod prestage;
mod remote;
mod snapshots;
pub mod staging;
mod table;
pub mod tasks;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use rocksdb::DB;
use strata_content::ContentStore;
use strata_snapshotters::Snapshotter;

pub use chain::{ChainLayer, chain_id, chain_layers};
pub use containers::{Container, ContainerRuntime, Containers};
pub use content::{NsContent, Opened, SharedIngest};
pub use ctx::{Ctx, view_of};
pub use diff::{NsDiff, UnpackConfig};
pub use error::{Error, Result};
pub use events::{AnyValue, Envelope, Event, Exchange};
pub use gc::{GcConfig, GcStats};
pub use images::{Descriptor, Image, Images};
pub use lazy_stat::LAZY_SNAPSHOTTER;
pub use leases::{Lease, Leases, Resource};
pub use namespaces::{Namespace, Namespaces};
pub use remote::{BlobFetcher, FILL_VIEW, RemoteRecord, wait_fill_threads};
pub use snapshots::NsSnapshots;
pub use staging::STAGING_DIR;
pub use tasks::{CreateTask, Exit, Process, Status, Stdio, TaskConfig, TaskEvent, Tasks};

use gc::barrier::Barrier;
use gc::mark::Node;
use gc::scheduler::Scheduler;

/// Column families of the runtime's own records.
pub const COLUMN_FAMILIES: &[&str] = &[
    namespaces::CF,
    images::CF,
    containers::CF,
    leases::CF,
    leases::CF_RESOURCES,
    content::CF_INGESTS,
    remote::CF_REMOTE,
];

/// Snapshotter names containerd's clients use by default, and the backends they mean here.
pub const SNAPSHOTTER_ALIASES: &[(&str, &str)] = &[
    ("overlayfs", "strata-overlay"),
    ("native", "strata-native"),
    ("btrfs", "strata-btrfs"),
];

/// What the runtime is built on.
pub struct Parts {
    pub db: Arc<DB>,
    pub content: ContentStore,
    /// Snapshot backends by name (`strata-overlay`, ...).
    pub backends: BTreeMap<String, Arc<dyn Snapshotter>>,
    /// Backends configured but not running, with the reason.
    pub disabled: BTreeMap<String, String>,
    /// Backend for an empty snapshotter name.
    pub default_snapshotter: String,
    pub gc: GcConfig,
    /// Limits of layer application (the Diff service).
    pub unpack: UnpackConfig,
    /// Where temporary mounts go (`<root>/tmp`).
    pub scratch: std::path::PathBuf,
    /// Where tasks live and what runs them.
    pub tasks: TaskConfig,
    /// Fetches the layers kept remote (`None`: every layer is fetched by the client).
    pub fetcher: Option<Arc<dyn BlobFetcher>>,
}

/// The runtime: cheap to clone, all clones share one state.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    db: Arc<DB>,
    content: ContentStore,
    backends: BTreeMap<String, Arc<dyn Snapshotter>>,
    disabled: BTreeMap<String, String>,
    default_snapshotter: String,
    events: Exchange,
    /// Mutations hold it shared; the sweep's final step holds it exclusively.
    gate: tokio::sync::RwLock<()>,
    barrier: Barrier,
    scheduler: Scheduler,
    /// Namespaces known to have a record (every write creates its namespace implicitly).
    known: Mutex<HashSet<String>>,
    unpack: UnpackConfig,
    scratch: std::path::PathBuf,
    tasks: tasks::Manager,
    remote: remote::Remote,
    prestaged: prestage::Prestaged,
}

impl Runtime {
    /// Opens the runtime over `parts` and starts its garbage collector. Needs a tokio runtime.
    pub fn open(parts: Parts) -> Result<Runtime> {
        for cf in COLUMN_FAMILIES {
            if parts.db.cf_handle(cf).is_none() {
                return Err(Error::Internal(format!("column family {cf} is missing")));
            }
        }
        let remote = remote::Remote::new(parts.db.clone(), parts.fetcher);
        let inner = Arc::new(Inner {
            db: parts.db,
            content: parts.content,
            backends: parts.backends,
            disabled: parts.disabled,
            default_snapshotter: parts.default_snapshotter,
            events: Exchange::default(),
            gate: tokio::sync::RwLock::new(()),
            barrier: Barrier::default(),
            scheduler: Scheduler::new(parts.gc),
            known: Mutex::default(),
            unpack: parts.unpack,
            scratch: parts.scratch,
            tasks: tasks::Manager::new(parts.tasks),
            remote,
            prestaged: prestage::Prestaged::default(),
        });
        let rt = Runtime { inner };
        rt.inner.tasks.recover(&rt);
        rt.inner.scheduler.start(rt.clone());
        rt.resume_fills()?;
        Ok(rt)
    }

    /// The event exchange (subscribe here; the runtime publishes every change).
    pub fn events(&self) -> &Exchange {
        &self.inner.events
    }

    /// The backends by name, and the disabled ones with their reasons.
    pub fn backends(
        &self,
    ) -> (
        &BTreeMap<String, Arc<dyn Snapshotter>>,
        &BTreeMap<String, String>,
    ) {
        (&self.inner.backends, &self.inner.disabled)
    }

    pub fn namespaces(&self) -> Namespaces {
        Namespaces::new(self.clone())
    }

    pub fn images(&self) -> Images {
        Images::new(self.clone())
    }

    pub fn containers(&self) -> Containers {
        Containers::new(self.clone())
    }

    pub fn leases(&self) -> Leases {
        Leases::new(self.clone())
    }

    pub fn content(&self) -> NsContent {
        NsContent::new(self.clone())
    }

    pub fn snapshots(&self) -> NsSnapshots {
        NsSnapshots::new(self.clone())
    }

    pub fn diff(&self) -> NsDiff {
        NsDiff::new(self.clone())
    }

    pub fn tasks(&self) -> Tasks {
        Tasks::new(self.clone())
    }

    pub(crate) fn task_manager(&self) -> &tasks::Manager {
        &self.inner.tasks
    }

    pub(crate) fn unpack_config(&self) -> &UnpackConfig {
        &self.inner.unpack
    }

    pub(crate) fn scratch(&self) -> std::path::PathBuf {
        self.inner.scratch.clone()
    }

    /// Runs a garbage collection pass now (or joins the one scheduled) and waits for it.
    pub async fn collect(&self) -> Result<GcStats> {
        self.inner.scheduler.schedule_and_wait().await
    }

    /// The backend a snapshotter name means (empty = default, containerd's default names are
    /// aliases): its canonical name and handle. NotFound names the available ones.
    pub fn snapshotter(&self, name: &str) -> Result<(String, Arc<dyn Snapshotter>)> {
        let name = self.canonical_snapshotter(name);
        if let Some(b) = self.inner.backends.get(&name) {
            return Ok((name, b.clone()));
        }
        let available: Vec<&str> = self.inner.backends.keys().map(String::as_str).collect();
        let why = match self.inner.disabled.get(&name) {
            Some(reason) => format!("snapshotter {name:?} is disabled: {reason}"),
            None => format!("snapshotter {name:?} not found"),
        };
        Err(Error::NotFound(format!(
            "{why}; available: {}",
            available.join(", ")
        )))
    }

    /// The backend name `name` stands for (itself when it is no alias).
    pub fn canonical_snapshotter(&self, name: &str) -> String {
        if name.is_empty() {
            return self.inner.default_snapshotter.clone();
        }
        SNAPSHOTTER_ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .map_or(name, |(_, real)| real)
            .to_string()
    }

    /// Records a successful mutation: `nodes` it created or changed (kept by a GC pass in
    /// progress) and whether it deleted something (a reason to collect).
    pub(crate) fn changed(&self, nodes: impl IntoIterator<Item = Node>, deletion: bool) {
        self.inner.barrier.touch(nodes);
        self.inner.scheduler.mutated(deletion);
    }

    /// Makes sure namespace `ns` has a record (containerd creates it on first write).
    pub(crate) fn ensure_namespace(&self, ns: &str) -> Result<()> {
        if self
            .inner
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(ns)
        {
            return Ok(());
        }
        self.namespaces().ensure(ns)?;
        self.inner
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(ns.to_string());
        Ok(())
    }

    pub(crate) fn forget_namespace(&self, ns: &str) {
        self.inner
            .known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(ns);
    }

    pub(crate) fn db(&self) -> &Arc<DB> {
        &self.inner.db
    }

    pub(crate) fn store(&self) -> &ContentStore {
        &self.inner.content
    }

    pub(crate) fn publish(&self, ns: &str, event: Event) {
        self.inner.events.publish(ns, event);
    }

    /// Shared hold on the gate, for blocking code.
    pub(crate) fn hold(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.inner.gate.blocking_read()
    }

    /// Shared hold on the gate, for async code.
    pub(crate) async fn hold_async(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.inner.gate.read().await
    }
}
