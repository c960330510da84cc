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
use crate::builder::{Registered, open_registered};
use crate::config::Config;
use crate::content_api::ProxyContent;
use crate::content_service::ContentService;
use crate::handover::{Report, Successor};
use crate::listen::{Inherited, Socket};
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

/// How long opening the database waits for RocksDB's own lock. The root's lock passes on when a
/// predecessor's [`run`] returns (a hand-over, a restart), but its threads still ending (blocking
/// calls, background fills) may hold the database until that process exits; seen as the
/// successor's "While lock file: ... Resource temporarily unavailable" under load.
const DB_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Opens the database at `path`, waiting up to [`DB_LOCK_WAIT`] while an exiting process still
/// holds RocksDB's lock (the root's lock, held here, rules out a live one).
async fn open_db(
    path: &Path,
    cfs: &[&str],
) -> anyhow::Result<std::sync::Arc<strata_core::db::rocksdb::DB>> {
    let until = std::time::Instant::now() + DB_LOCK_WAIT;
    loop {
        match strata_core::db::open(path, cfs) {
            Err(e) if is_lock_held(&e) && std::time::Instant::now() < until => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await
            }
            res => return res.context("opening the database"),
        }
    }
}

/// Whether RocksDB refused to open because another process holds its LOCK file.
fn is_lock_held(e: &strata_core::db::rocksdb::Error) -> bool {
    e.kind() == strata_core::db::rocksdb::ErrorKind::IOError
        && AsRef::<str>::as_ref(e).contains("lock file")
}

/// Opens the database and every store under `root`: the built-in backends, then `registered`.
pub(crate) async fn open_stores(
    root: &Path,
    config: &Config,
    registered: Registered,
) -> anyhow::Result<Stores> {
    let cfs: Vec<&str> = strata_content::COLUMN_FAMILIES
        .iter()
        .chain(strata_snapshotters::COLUMN_FAMILIES)
        .chain(strata_runtime::COLUMN_FAMILIES)
        .copied()
        .collect();
    let db = open_db(&root.join("db"), &cfs).await?;
    let content = ContentStore::new(db.clone(), root.join("content")).context("opening content")?;
    clear_scratch(&root.join("tmp"));
    let dir = crate::backends::dir(root);
    let (mut backends, mut disabled) = crate::backends::open(db.clone(), &dir, config).await;
    open_registered(registered, &db, &dir, &mut backends, &mut disabled)?;
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
/// the Diff service; layers staged by an unpack). A directory that stays busy or non-empty is
/// left, logged.
fn clear_scratch(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        // Layers staged by an unpack (no mount is ever made there): removed whole.
        if e.file_name() == strata_runtime::STAGING_DIR {
            if let Err(err) = std::fs::remove_dir_all(&p) {
                tracing::warn!(path = %p.display(), error = %err, "staged layers left in place");
            }
            continue;
        }
        let _ = strata_snapshotters::mount::unmount_all(&p);
        if let Err(err) = std::fs::remove_dir(&p) {
            tracing::warn!(path = %p.display(), error = %err, "scratch entry left in place");
        }
    }
}

/// Binds the socket at `address`, 0660 from the moment it is reachable: it is bound in a
/// private (0700) directory beside `address`, chmodded there, then renamed into place. Creates
/// the folder, removes a stale socket, refuses a live one and anything that is not a socket
/// (a file or symlink at `address` is never deleted).
fn bind(address: &Path) -> anyhow::Result<UnixListener> {
    let dir = match address.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    remove_stale_socket(address)?;
    // A fresh 0700 directory on the same filesystem, for the rename.
    let private = tempfile::Builder::new()
        .prefix(".strata-")
        .suffix(".sock-tmp")
        .tempdir_in(dir)
        .with_context(|| format!("creating a private folder in {}", dir.display()))?;
    let res = bind_in(private.path(), address);
    let path = private.path().to_path_buf();
    if let Err(e) = private.close() {
        tracing::warn!(path = %path.display(), error = %e, "temporary socket folder left");
    }
    res
}

/// Binds `private/s`, sets 0660 and renames it to `address` without replacing anything.
fn bind_in(private: &Path, address: &Path) -> anyhow::Result<UnixListener> {
    let tmp = private.join("s");
    let listener =
        UnixListener::bind(&tmp).with_context(|| format!("binding {}", address.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o660))
        .with_context(|| format!("chmod {}", tmp.display()))?;
    nix::fcntl::renameat2(
        None,
        &tmp,
        None,
        address,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
    .with_context(|| format!("moving the socket to {}", address.display()))?;
    Ok(listener)
}

/// Removes a socket no server answers on at `address`; refuses a live one and anything that
/// is not a socket.
fn remove_stale_socket(address: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match std::fs::symlink_metadata(address) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("inspecting {}", address.display())),
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket; refusing to replace it",
            address.display()
        );
    }
    if std::os::unix::net::UnixStream::connect(address).is_ok() {
        bail!("{} is in use by a live server", address.display());
    }
    std::fs::remove_file(address)
        .with_context(|| format!("removing stale socket {}", address.display()))
}

/// Removes our socket at shutdown (only if a socket is still there).
fn remove_socket(address: &Path) {
    use std::os::unix::fs::FileTypeExt;
    if std::fs::symlink_metadata(address).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(address);
    }
}

/// The signals that stop or upgrade the daemon, taken at the very start of [`run`]: a signal
/// that arrives while the stores open (a SIGUSR2 sent as soon as the root lock names this
/// process) then waits for [`Signals::stop_requested`] instead of killing the process, which is
/// SIGUSR2's default action.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing the SIGINT handler")?,
            usr2: signal(SignalKind::user_defined2()).context("installing the SIGUSR2 handler")?,
        })
    }

    /// Resolves on SIGTERM or SIGINT (false), or once a successor started on SIGUSR2 has taken
    /// the sockets (true). A successor that fails leaves this process serving.
    async fn stop_requested(&mut self, successor: Option<&Successor>, sockets: &[Socket]) -> bool {
        loop {
            tokio::select! {
                _ = self.term.recv() => {
                    tracing::info!("SIGTERM: shutting down");
                    return false;
                }
                _ = self.int.recv() => {
                    tracing::info!("SIGINT: shutting down");
                    return false;
                }
                _ = self.usr2.recv() => {
                    let Some(s) = successor else {
                        tracing::error!("SIGUSR2: no successor can be started; still serving");
                        continue;
                    };
                    tracing::info!("SIGUSR2: starting a successor on the same sockets");
                    match tokio::task::block_in_place(|| s.start(sockets)) {
                        Ok(pid) => {
                            tracing::info!(successor = pid, "handed the sockets over; shutting down");
                            return true;
                        }
                        Err(e) => tracing::error!("SIGUSR2: upgrade failed, still serving: {e:#}"),
                    }
                }
            }
        }
    }
}

/// Concurrent streams (calls) one client connection may have open.
const MAX_STREAMS_PER_CONNECTION: u32 = 4096;
/// HTTP/2 pings on an idle connection, and how long an answer may take.
const KEEPALIVE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The HTTP/2 server settings both sockets share.
fn builder() -> tonic::transport::Server {
    tonic::transport::Server::builder()
        .initial_stream_window_size(Some(WINDOW))
        .initial_connection_window_size(Some(2 * WINDOW))
        // hyper GOAWAYs a connection after 1024 streams it had to reset (a guard against
        // hostile network peers): on these trusted 0660 sockets containerd keeps one
        // connection for every call of a node's lifetime, so the count must not be capped.
        .http2_max_local_error_reset_streams(None)
        // Bounds what one connection can hold open (containerd multiplexes every call of a node
        // on one connection; its Go server's default is unbounded).
        .max_concurrent_streams(Some(MAX_STREAMS_PER_CONNECTION))
        // A peer that stops answering pings (a frozen client) has its connection, and every
        // stream on it, closed.
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
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
        fetcher: runtime_fetcher(config),
    };
    strata_runtime::Runtime::open(parts).context("opening the runtime")
}

/// The runtime's fetcher of the layers it keeps remote (`[lazy] runtime_pull`).
fn runtime_fetcher(config: &Config) -> Option<Arc<dyn strata_runtime::BlobFetcher>> {
    if !(config.lazy.enabled && config.lazy.runtime_pull) {
        return None;
    }
    match strata_registry::Registry::new(config.registry.clone()) {
        Ok(registry) => {
            let activity = crate::backends::lazy_activity(&config.root);
            let fetcher =
                crate::runtime::RegistryFetcher::new(registry, tokio::runtime::Handle::current())
                    .with_activity(Arc::new(activity));
            Some(Arc::new(fetcher))
        }
        Err(e) => {
            tracing::warn!(error = %e, "layers pulled through the runtime socket are fetched by the client: the registry client");
            None
        }
    }
}

type ProxyServices = (
    ContentServer<ContentService<ProxyContent>>,
    SnapshotsServer<SnapshotsService<ProxySnapshots>>,
);

/// The Content and Snapshots services of a proxy socket serving `view`.
fn proxy_services(stores: &Stores, config: &Config, view: &str) -> ProxyServices {
    let offload = match config.offload.enabled {
        true => match strata_registry::Registry::new(config.registry.clone()) {
            Ok(registry) => Some(Offload::new(
                stores.content.clone(),
                registry,
                config.root.join("tmp"),
                config.unpack.clone(),
            )),
            Err(e) => {
                tracing::warn!(error = %e, "unpack offload off: the registry client");
                None
            }
        },
        false => None,
    };
    let mut proxy_content = ProxyContent::for_view(stores.content.clone(), view);
    if let Some(off) = &offload {
        let (off, v) = (off.clone(), view.to_string());
        proxy_content =
            proxy_content.with_commit_hook(Arc::new(move |d| off.blob_committed(&v, d)));
    }
    let content = ContentServer::new(ContentService::new(proxy_content))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let mut proxy_snapshots = ProxySnapshots::new(
        stores.backends.clone(),
        stores.disabled.clone(),
        &config.default_snapshotter,
    )
    .with_view(view);
    if let Some(off) = offload {
        proxy_snapshots = proxy_snapshots.with_offload(off);
    }
    let snapshots = SnapshotsServer::new(SnapshotsService::new(proxy_snapshots))
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    (content, snapshots)
}

/// What the process was handed when it started: sockets (systemd, a predecessor), the pipe a
/// predecessor waits on, and how to start a successor.
#[derive(Debug, Default)]
pub struct Start {
    pub inherited: Inherited,
    pub report: Report,
    pub successor: Option<Successor>,
}

impl Start {
    /// Reads the environment. Must run before any other thread starts.
    pub fn from_env() -> anyhow::Result<Start> {
        let successor = Successor::of_this_process()
            .inspect_err(|e| tracing::warn!("upgrades by SIGUSR2 are off: {e:#}"))
            .ok();
        Ok(Start {
            inherited: Inherited::from_env()?,
            report: Report::from_env()?,
            successor,
        })
    }
}

/// How long a hand-over's successor waits for its predecessor to finish its calls and release
/// the root (the predecessor's drain and exit timeouts, and some).
const HANDOVER_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(90);

/// The listening sockets: each proxy socket with its view, the runtime socket, and a record of
/// each for a hand-over and for removal at exit.
struct Listening {
    proxies: Vec<(UnixListener, String)>,
    runtime: UnixListener,
    sockets: Vec<Socket>,
}

/// Takes the inherited socket of each address, binds the others.
fn listen(config: &Config, start: &mut Start) -> anyhow::Result<Listening> {
    // A socket a predecessor handed over is this process's to remove at exit; one systemd
    // passed is systemd's.
    let from_systemd = !start.report.is_handover();
    let mut sockets = Vec::new();
    let mut one = |address: &Path| -> anyhow::Result<UnixListener> {
        let (listener, inherited) = match start.inherited.take(address)? {
            Some(l) => (l, from_systemd),
            None => (bind(address)?, false),
        };
        sockets.push(Socket::new(address, &listener, inherited)?);
        Ok(listener)
    };
    // The default proxy socket last: once a client can connect to it, every other one (the
    // runtime's too) is bound.
    let runtime = one(&config.runtime_address)?;
    let mut proxies = Vec::new();
    for p in config.proxies.iter().rev() {
        proxies.push((one(&p.address)?, p.view.clone()));
    }
    start.inherited.check_all_taken()?;
    Ok(Listening {
        proxies,
        runtime,
        sockets,
    })
}

/// Serves the built-in backends and `registered` until SIGTERM/SIGINT (or a hand-over to a
/// successor on SIGUSR2), then finishes in-flight calls, flushes and returns.
pub(crate) async fn run(
    config: Config,
    mut start: Start,
    registered: Registered,
) -> anyhow::Result<()> {
    let mut signals = Signals::install()?;
    std::fs::create_dir_all(&config.root)
        .with_context(|| format!("creating root {}", config.root.display()))?;
    // A hand-over's successor takes the sockets, tells its predecessor to stop, then waits for
    // the root; calls arriving meanwhile wait in the sockets' backlog.
    let early = match start.report.is_handover() {
        true => Some(listen(&config, &mut start)?),
        false => None,
    };
    let _lock = match early.is_some() {
        true => {
            start.report.send()?;
            RootLock::acquire_within(&config.root, HANDOVER_LOCK_WAIT)?
        }
        false => RootLock::acquire(&config.root)?,
    };
    let _state_lock = RootLock::acquire_state(&config.tasks.state)?;
    let stores = open_stores(&config.root, &config, registered).await?;
    let runtime = open_runtime(&stores, &config)?;
    let metrics = match &config.metrics_address {
        Some(a) => {
            let views = config.proxies.iter().map(|p| p.view.clone()).collect();
            Some(crate::metrics::serve(a, stores.backends.clone(), views).await?)
        }
        None => None,
    };
    let Listening {
        proxies: listeners,
        runtime: runtime_listener,
        sockets,
    } = match early {
        Some(l) => l,
        None => listen(&config, &mut start)?,
    };
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<ContentServer<ContentService<ProxyContent>>>()
        .await;
    health_reporter
        .set_serving::<SnapshotsServer<SnapshotsService<ProxySnapshots>>>()
        .await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopping = crate::stopping::Stopping::new(stop_rx.clone());
    let runtime_routes = crate::runtime::routes(&runtime, &config.root, stopping).await?;
    tracing::info!(
        root = %config.root.display(),
        address = %config.address.display(),
        views = ?config.proxies.iter().map(|p| (&p.view, &p.address)).collect::<Vec<_>>(),
        runtime_address = %config.runtime_address.display(),
        backends = ?stores.backends.keys().collect::<Vec<_>>(),
        "serving"
    );
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let serving: Vec<_> = listeners
        .into_iter()
        .map(|(listener, view)| {
            let (content, snapshots) = proxy_services(&stores, &config, &view);
            tokio::spawn(
                builder()
                    .layer(crate::metrics::RpcMetricsLayer)
                    .add_service(health.clone())
                    .add_service(content)
                    .add_service(snapshots)
                    .serve_with_incoming_shutdown(buffered(listener), stopped(stop_rx.clone())),
            )
        })
        .collect();
    let serving_runtime = tokio::spawn(
        builder()
            .layer(crate::metrics::RpcMetricsLayer)
            .add_routes(runtime_routes)
            .serve_with_incoming_shutdown(buffered(runtime_listener), stopped(stop_rx)),
    );
    let handed_over = signals
        .stop_requested(start.successor.as_ref(), &sockets)
        .await;
    let _ = stop_tx.send(true);
    let both = async {
        let (a, b) = tokio::join!(futures::future::join_all(serving), serving_runtime);
        for one in a {
            one.context("server task")?.context("serving")?;
        }
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
    // No background fill starts a registry fetch while this runtime goes away.
    runtime.stop_fills();
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
    // Not a socket a successor or systemd now serves.
    for s in sockets.iter().filter(|s| !s.inherited && !handed_over) {
        remove_socket(&s.address);
    }
    tracing::info!("stopped");
    Ok(())
}

/// The connections `listener` accepts, each read through a buffer ([`crate::conn`]).
fn buffered(
    listener: tokio::net::UnixListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<crate::conn::Conn>> {
    use tokio_stream::StreamExt;
    UnixListenerStream::new(listener).map(|r| r.map(crate::conn::Conn::new))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::FileTypeExt;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;

    /// Regression: a daemon stopped during an unpack left staged layers in its scratch
    /// directory, which the next start logged as a WARN and kept.
    #[test]
    fn staged_layers_left_by_a_previous_run_are_removed_and_other_entries_kept() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir
            .path()
            .join(strata_runtime::STAGING_DIR)
            .join("prestage-1/usr");
        std::fs::create_dir_all(&staged).unwrap();
        std::fs::write(staged.join("file"), b"x").unwrap();
        let busy = dir.path().join("m-1");
        std::fs::create_dir_all(&busy).unwrap();
        std::fs::write(busy.join("kept"), b"not a staged layer").unwrap();
        std::fs::create_dir(dir.path().join("m-2")).unwrap();
        clear_scratch(dir.path());
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["m-1"],
            "staging gone, an empty leftover gone, a non-empty one kept"
        );
        assert_eq!(
            std::fs::read(busy.join("kept")).unwrap(),
            b"not a staged layer"
        );
    }

    #[tokio::test]
    async fn a_regular_file_at_the_address_is_kept_and_refused() {
        let dir = tempfile::tempdir().unwrap();
        let address = dir.path().join("s.sock");
        std::fs::write(&address, b"precious").unwrap();
        let err = bind(&address).unwrap_err();
        assert!(format!("{err:#}").contains("not a socket"), "{err:#}");
        assert_eq!(std::fs::read(&address).unwrap(), b"precious");
        // A symlink is not followed nor removed either.
        let link = dir.path().join("l.sock");
        std::os::unix::fs::symlink(&address, &link).unwrap();
        assert!(bind(&link).is_err());
        assert!(std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }

    #[tokio::test]
    async fn a_stale_socket_is_replaced_and_the_mode_is_0660() {
        let dir = tempfile::tempdir().unwrap();
        let address = dir.path().join("s.sock");
        drop(std::os::unix::net::UnixListener::bind(&address).unwrap());
        let _l = bind(&address).unwrap();
        let m = std::fs::symlink_metadata(&address).unwrap();
        assert!(m.file_type().is_socket());
        assert_eq!(m.permissions().mode() & 0o777, 0o660);
        std::os::unix::net::UnixStream::connect(&address).unwrap();
        // Nothing but the socket is left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["s.sock"]);
        assert!(bind(&address).is_err(), "a live socket must be refused");
    }

    /// The socket must never be reachable with a wider mode than 0660, not even between its
    /// creation and a chmod: a watcher spinning on the path records every mode it sees.
    #[tokio::test]
    async fn the_socket_is_never_visible_with_a_wider_mode() {
        let dir = tempfile::tempdir().unwrap();
        let address = dir.path().join("s.sock");
        for _ in 0..300 {
            let done = Arc::new(AtomicBool::new(false));
            let watcher = {
                let (done, address) = (done.clone(), address.clone());
                std::thread::spawn(move || {
                    let mut seen = std::collections::BTreeSet::new();
                    while !done.load(Ordering::Relaxed) {
                        if let Ok(m) = std::fs::symlink_metadata(&address) {
                            seen.insert(m.permissions().mode() & 0o777);
                        }
                    }
                    seen
                })
            };
            std::thread::sleep(std::time::Duration::from_micros(200));
            let l = bind(&address).unwrap();
            done.store(true, Ordering::Relaxed);
            let seen = watcher.join().unwrap();
            let modes: Vec<String> = seen.iter().map(|m| format!("{m:o}")).collect();
            assert!(modes.iter().all(|m| m == "660"), "modes seen: {modes:?}");
            drop(l);
            std::fs::remove_file(&address).unwrap();
        }
    }
}
