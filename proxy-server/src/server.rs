//! Wiring: one RocksDB under the root, the content store, the snapshot backends, the runtime,
//! the two sockets (proxy plugins; containerd's own APIs), graceful shutdown.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use strata_content::ContentStore;
use strata_snapshotters::Snapshotter;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::api::content::content_server::ContentServer;
use crate::api::snapshots::snapshots_server::SnapshotsServer;
use crate::config::Config;
use crate::content_api::ProxyContent;
use crate::content_service::ContentService;
use crate::offload::Offload;
use crate::rootlock::RootLock;
use crate::snapshots_api::{Disabled, ProxySnapshots};
use crate::snapshots_service::SnapshotsService;

/// How long SIGTERM waits for in-flight calls before exiting anyway.
const DRAIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// HTTP/2 flow-control window: a whole 16 MiB message can be in flight without waiting for
/// WINDOW_UPDATE round trips (the 64 KiB default costs a round trip per 64 KiB of ingest).
const WINDOW: u32 = 16 << 20;

/// containerd's gRPC message limit, each way.
pub const MAX_MESSAGE: usize = 16 << 20;

/// Everything the daemon serves, opened on one root.
pub struct Stores {
    pub db: Arc<strata_core::db::rocksdb::DB>,
    pub content: ContentStore,
    pub backends: BTreeMap<String, Arc<dyn Snapshotter>>,
    pub disabled: Disabled,
}

/// Opens the database and every store under `root`.
pub async fn open_stores(root: &Path) -> anyhow::Result<Stores> {
    let cfs: Vec<&str> = strata_content::COLUMN_FAMILIES
        .iter()
        .chain(strata_snapshotters::COLUMN_FAMILIES)
        .chain(strata_runtime::COLUMN_FAMILIES)
        .copied()
        .collect();
    let db = strata_core::db::open(&root.join("db"), &cfs).context("opening the database")?;
    let content = ContentStore::new(db.clone(), root.join("content")).context("opening content")?;
    clear_scratch(&root.join("tmp"));
    let (backends, disabled) = crate::backends::open(db.clone(), &root.join("snapshots")).await;
    // Directories no record references: left by a crash between a removal's record and its
    // files (a garbage collection sweep, a Remove). Nothing is being created yet.
    for (name, b) in &backends {
        if let Err(e) = b.cleanup().await {
            tracing::warn!(backend = %name, error = %e, "startup cleanup failed");
        }
    }
    Ok(Stores {
        db,
        content,
        backends,
        disabled,
    })
}

/// Unmounts and removes what a previous run left in the scratch directory (temporary mounts of
/// the Diff service). A directory that stays busy or non-empty is left, logged.
fn clear_scratch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let _ = strata_snapshotters::mount::unmount_all(&p);
        if let Err(err) = std::fs::remove_dir(&p) {
            tracing::warn!(path = %p.display(), error = %err, "scratch entry left in place");
        }
    }
}

/// Binds the socket: creates its folder, removes a stale socket, refuses a live one, 0660.
fn bind(address: &Path) -> anyhow::Result<UnixListener> {
    if let Some(dir) = address.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    if address.exists() {
        if std::os::unix::net::UnixStream::connect(address).is_ok() {
            bail!("{} is in use by a live server", address.display());
        }
        std::fs::remove_file(address)
            .with_context(|| format!("removing stale socket {}", address.display()))?;
    }
    let listener =
        UnixListener::bind(address).with_context(|| format!("binding {}", address.display()))?;
    std::fs::set_permissions(address, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing the SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing the SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
}

/// The HTTP/2 server settings both sockets share.
fn builder() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .initial_stream_window_size(Some(WINDOW))
        .initial_connection_window_size(Some(2 * WINDOW))
        // hyper GOAWAYs a connection after 1024 streams it had to reset (a guard against
        // hostile network peers): on these trusted 0660 sockets containerd keeps one
        // connection for every call of a node's lifetime, so the count must not be capped.
        .http2_max_local_error_reset_streams(None)
}

/// Opens the runtime over the stores (and starts its garbage collector).
fn open_runtime(stores: &Stores, config: &Config) -> anyhow::Result<strata_runtime::Runtime> {
    let parts = strata_runtime::Parts {
        db: stores.db.clone(),
        content: stores.content.clone(),
        backends: stores.backends.clone(),
        disabled: stores.disabled.clone(),
        default_snapshotter: config.default_snapshotter.clone(),
        gc: config.gc.clone(),
        unpack: config.unpack.clone(),
        scratch: config.root.join("tmp"),
        tasks: config.tasks.clone(),
    };
    strata_runtime::Runtime::open(parts).context("opening the runtime")
}

/// Serves until SIGTERM/SIGINT, then finishes in-flight calls, flushes and returns.
pub async fn run(config: Config) -> anyhow::Result<()> {
    std::fs::create_dir_all(&config.root)
        .with_context(|| format!("creating root {}", config.root.display()))?;
    let _lock = RootLock::acquire(&config.root)?;
    let stores = open_stores(&config.root).await?;
    let runtime = open_runtime(&stores, &config)?;
    let metrics = match &config.metrics_address {
        Some(a) => Some(crate::metrics::serve(a, stores.backends.clone()).await?),
        None => None,
    };
    let listener = bind(&config.address)?;
    let runtime_listener = bind(&config.runtime_address)?;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ContentServer<ContentService<ProxyContent>>>()
        .await;
    health_reporter
        .set_serving::<SnapshotsServer<SnapshotsService<ProxySnapshots>>>()
        .await;
    let content = ContentServer::new(ContentService::new(ProxyContent::new(
        stores.content.clone(),
    )))
    .max_decoding_message_size(MAX_MESSAGE)
    .max_encoding_message_size(MAX_MESSAGE);
    let mut proxy_snapshots = ProxySnapshots::new(
        stores.backends.clone(),
        stores.disabled.clone(),
        &config.default_snapshotter,
    );
    if config.offload.enabled {
        let scratch = config.root.join("tmp");
        let off = Offload::new(
            stores.content.clone(),
            &config.offload,
            scratch,
            config.unpack.clone(),
        );
        proxy_snapshots = proxy_snapshots.with_offload(off);
    }
    let snapshots = SnapshotsServer::new(SnapshotsService::new(proxy_snapshots))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = crate::stopping::Stopping::new(stop_rx.clone());
    let runtime_routes = crate::runtime::routes(&runtime, &config.root, stopping).await?;
    tracing::info!(
        root = %config.root.display(),
        address = %config.address.display(),
        runtime_address = %config.runtime_address.display(),
        backends = ?stores.backends.keys().collect::<Vec<_>>(),
        "serving"
    );
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let serving = tokio::spawn(
        builder()
            .layer(crate::metrics::RpcMetricsLayer)
            .add_service(health)
            .add_service(content)
            .add_service(snapshots)
            .serve_with_incoming_shutdown(
                UnixListenerStream::new(listener),
                stopped(stop_rx.clone()),
            ),
    );
    let serving_runtime = tokio::spawn(
        builder()
            .layer(crate::metrics::RpcMetricsLayer)
            .add_routes(runtime_routes)
            .serve_with_incoming_shutdown(
                UnixListenerStream::new(runtime_listener),
                stopped(stop_rx),
            ),
    );
    shutdown_signal().await;
    let _ = stop_tx.send(true);
    let both = async {
        let (a, b) = tokio::join!(serving, serving_runtime);
        a.context("server task")?.context("serving")?;
        b.context("runtime server task")?
            .context("serving the runtime")
    };
    match tokio::time::timeout(DRAIN_TIMEOUT, both).await {
        Ok(res) => res?,
        Err(_) => tracing::warn!(
            "in-flight calls still running after {}s; stopping anyway",
            DRAIN_TIMEOUT.as_secs()
        ),
    }
    if let Some(m) = metrics {
        m.abort();
    }
    for (name, b) in &stores.backends {
        if let Err(e) = b.close().await {
            tracing::warn!(backend = %name, error = %e, "closing backend");
        }
    }
    stores.db.flush_wal(true).context("syncing the WAL")?;
    stores.db.flush().context("flushing the database")?;
    // Threads that outlive this function (a task's exit watcher blocked on its shim) may keep
    // the database open past exit: with no background job left, RocksDB's static destructors
    // at exit find no compaction or flush thread using them (else: "pthread lock: Invalid
    // argument" and SIGABRT).
    stores.db.cancel_all_background_work(true);
    let _ = std::fs::remove_file(&config.address);
    let _ = std::fs::remove_file(&config.runtime_address);
    tracing::info!("stopped");
    Ok(())
}
