//! [`Server`]: the daemon as a library, so a crate outside this workspace can serve its own
//! snapshot backend beside the built-in ones — same sockets, same flags, same containerd
//! compatibility — from a `main` of a few lines:
//!
//! ```no_run
//! use strata_proxy::{Host, Server};
//! use strata_snapshotters::{Backend, native::NativeLayout};
//!
//! fn main() -> std::process::ExitCode {
//!     Server::builder()
//!         .backend("my-native", |host: &Host| {
//!             Backend::with_layout(host.metadata(), "my-native", host.dir(), NativeLayout::default())
//!         })
//!         .main()
//! }
//! ```
//!
//! containerd then uses it as `proxy_plugins."my-native"` (type `snapshot`) on the daemon's
//! `--address`, and `ctr --snapshotter my-native` on its runtime socket.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Parser;
use strata_snapshotters::{Metadata, Snapshotter};
use tracing_subscriber::EnvFilter;

use crate::config::{Args, Config};
use crate::server::Start;

/// What the daemon hands a backend it opens.
#[derive(Debug, Clone)]
pub struct Host {
    meta: Metadata,
    dir: PathBuf,
}

impl Host {
    /// The daemon's database, for the backend's records ([`strata_snapshotters::Backend`]).
    pub fn metadata(&self) -> &Metadata {
        &self.meta
    }

    /// The backend's own directory, `<root>/snapshots/<name>` (may not exist yet).
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Opens one registered backend; an error disables it (logged, and answered to clients).
pub type Opener = Box<dyn FnOnce(&Host) -> Result<Arc<dyn Snapshotter>, String> + Send>;

/// The backends registered on a [`Server`], by the name containerd uses.
pub(crate) type Registered = Vec<(String, Opener)>;

/// Builds and runs the daemon: the built-in backends plus those registered here.
#[derive(Default)]
pub struct Server {
    backends: Registered,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.backends.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Server").field("backends", &names).finish()
    }
}

impl Server {
    /// The daemon with only the built-in backends.
    pub fn builder() -> Server {
        Server::default()
    }

    /// Registers backend `name` (the proxy plugin name containerd uses, e.g. `acme-zfs`): at
    /// start `open` gets the daemon's [`Host`] for it, after the built-in backends are open and
    /// before any socket serves; the daemon then runs its [`Snapshotter::cleanup`] (recovery).
    /// A name taken by a built-in or earlier backend stops the daemon from starting.
    pub fn backend<S, E, F>(mut self, name: &str, open: F) -> Self
    where
        S: Snapshotter,
        E: Display,
        F: FnOnce(&Host) -> Result<S, E> + Send + 'static,
    {
        let opener: Opener = Box::new(move |host: &Host| match open(host) {
            Ok(s) => Ok(Arc::new(s) as Arc<dyn Snapshotter>),
            Err(e) => Err(e.to_string()),
        });
        self.backends.push((name.to_string(), opener));
        self
    }

    /// Serves with `config` until SIGTERM/SIGINT or a hand-over (see [`crate::server::run`]).
    pub async fn serve(self, config: Config, start: Start) -> anyhow::Result<()> {
        crate::server::run(config, start, self.backends).await
    }

    /// The whole daemon: parses `strata-proxy`'s command line and config file, logs to stderr,
    /// serves, and returns the process's exit code.
    pub fn main(self) -> std::process::ExitCode {
        let config = match Config::resolve(Args::parse()) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("strata-proxy: {e:#}");
                return std::process::ExitCode::from(2);
            }
        };
        init_logs(&config);
        // Before any thread exists: it reads and clears the environment.
        let start = match Start::from_env() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("strata-proxy: {e:#}");
                return std::process::ExitCode::from(2);
            }
        };
        let tokio = match tokio::runtime::Runtime::new() {
            Ok(t) => t,
            Err(e) => {
                eprintln!("strata-proxy: starting tokio: {e}");
                return std::process::ExitCode::FAILURE;
            }
        };
        let code = match tokio.block_on(self.serve(config, start)) {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                eprintln!("strata-proxy: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
        // Everything is flushed. Short blocking work (a content read or write whose stream was
        // dropped) ends now: wait for it, as it may still be using the database. Threads blocked
        // on a task's shim (exit watchers, Waits) are not tokio's: they do not hold the exit,
        // and the shims live on to be found again.
        tokio.shutdown_timeout(SHUTDOWN_TIMEOUT);
        // Background fills (plain threads) end now that the registry client is gone; ending,
        // they still write to RocksDB, which must not run beside its static destructors at exit.
        let left = strata_runtime::wait_fill_threads(SHUTDOWN_TIMEOUT);
        if left > 0 {
            tracing::warn!(
                threads = left,
                "background fills did not end: exiting without running static destructors"
            );
            let status = if code == std::process::ExitCode::SUCCESS {
                0
            } else {
                1
            };
            // SAFETY: _exit(2) ends the process at once; everything durable was flushed above
            // and an unfinished fill resumes at the next start, as after a crash.
            unsafe { libc::_exit(status) };
        }
        code
    }
}

/// How long the exit waits for blocking work that was in flight when serving stopped.
const SHUTDOWN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn init_logs(config: &Config) {
    // fuse3 warns of every reply to a request the kernel already dropped (the reading process
    // was killed): ENOENT, which its own message says to ignore. Kept out of the daemon's log
    // unless the level names fuse3.
    let spec = match config.log_level.contains("fuse3") {
        true => config.log_level.clone(),
        false => format!("{},fuse3=error", config.log_level),
    };
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|e| {
        eprintln!(
            "strata-proxy: bad --log-level {:?}: {e}; using info",
            config.log_level
        );
        EnvFilter::new("info")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if config.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Opens the registered backends on `db` into `on` (a failure goes into `off`, logged).
pub(crate) fn open_registered(
    registered: Registered,
    db: &Arc<strata_core::db::rocksdb::DB>,
    dir: &Path,
    on: &mut std::collections::BTreeMap<String, Arc<dyn Snapshotter>>,
    off: &mut crate::snapshots_api::Disabled,
) -> anyhow::Result<()> {
    for (name, open) in registered {
        if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
            anyhow::bail!("backend name {name:?} is not a valid directory name");
        }
        if on.contains_key(&name) || off.contains_key(&name) {
            anyhow::bail!("backend name {name:?} is already taken");
        }
        let host = Host {
            meta: Metadata::shared(db.clone()),
            dir: dir.join(&name),
        };
        match open(&host) {
            Ok(b) => {
                on.insert(name, b);
            }
            Err(reason) => {
                tracing::warn!(backend = %name, %reason, "backend disabled");
                off.insert(name, reason);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use strata_snapshotters::native::{Native, NativeLayout};
    use strata_snapshotters::{Backend, Error};

    use super::*;

    fn native(host: &Host) -> strata_snapshotters::Result<Native> {
        Backend::with_layout(host.metadata(), "mine", host.dir(), NativeLayout::default())
    }

    /// What `Server::builder()` with `server`'s backends opens on a fresh database.
    fn open(server: Server) -> anyhow::Result<(Vec<String>, crate::snapshots_api::Disabled)> {
        let d = tempfile::tempdir().unwrap();
        let db = strata_core::db::open(&d.path().join("db"), strata_snapshotters::COLUMN_FAMILIES)
            .unwrap();
        let mut on = BTreeMap::new();
        on.insert(
            "strata-native".to_string(),
            Arc::new(Native::new(db.clone(), d.path().join("n")).unwrap()) as Arc<dyn Snapshotter>,
        );
        let mut off = BTreeMap::new();
        open_registered(
            server.backends,
            &db,
            &d.path().join("snapshots"),
            &mut on,
            &mut off,
        )?;
        Ok((on.keys().cloned().collect(), off))
    }

    #[test]
    fn a_registered_backend_is_served_in_its_own_directory() {
        let seen = Arc::new(std::sync::Mutex::new(PathBuf::new()));
        let s = seen.clone();
        let server = Server::builder().backend("mine", move |host: &Host| {
            *s.lock().unwrap() = host.dir().to_path_buf();
            native(host)
        });
        let (on, off) = open(server).unwrap();
        assert_eq!(on, ["mine", "strata-native"]);
        assert!(off.is_empty());
        assert!(seen.lock().unwrap().ends_with("snapshots/mine"));
    }

    #[test]
    fn a_failing_opener_disables_its_backend_with_the_reason() {
        let server = Server::builder().backend("zfs", |_: &Host| {
            Err::<Native, _>(Error::FailedPrecondition("no zpool \"tank\"".into()))
        });
        let (on, off) = open(server).unwrap();
        assert_eq!(on, ["strata-native"]);
        assert_eq!(off["zfs"], "no zpool \"tank\"");
    }

    #[test]
    fn taken_and_unusable_names_stop_the_daemon() {
        for name in ["strata-native", "", "a/b", ".."] {
            let server = Server::builder().backend(name, native);
            let err = open(server).unwrap_err();
            assert!(format!("{err}").contains(&format!("{name:?}")), "{err}");
        }
        let twice = Server::builder().backend("x", native).backend("x", native);
        assert!(
            open(twice)
                .unwrap_err()
                .to_string()
                .contains("already taken")
        );
    }
}
