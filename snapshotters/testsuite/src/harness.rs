//! Per-case setup: a fresh root and work dir, the backend opened on it, reopen for restarts.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use strata_core::labels::Labels;

use strata_snapshotters::Snapshotter;

/// A boxed `Send` future (what the opener and the cases return).
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// What an opener yields: the backend, or its error rendered with `Debug`.
pub type OpenResult = Result<Arc<dyn Snapshotter>, String>;

type OpenFn = dyn Fn(PathBuf) -> BoxFuture<OpenResult> + Send + Sync;

/// The view every case works in (containerd's suite uses the namespace `testsuite`).
pub const VIEW: &str = "testsuite";

/// Set (to a root path) when the crash case re-executes the test binary as its victim.
pub const CRASH_CHILD_ENV: &str = "STRATA_TESTSUITE_CRASH_ROOT";

/// The labels containerd's suite passes to every Prepare/View/Commit.
pub fn opt() -> Labels {
    Labels::from([(
        "containerd.io/gc.root".to_string(),
        "2024-01-01T00:00:00Z".to_string(),
    )])
}

/// Where a backend's case roots go: a directory, or why the cases cannot run here.
pub type PlaceFn = fn() -> Result<PathBuf, String>;

/// Given a backend's root, the directory holding its per-snapshot data (each entry owned by
/// one snapshot, e.g. `<root>/snapshots/overlay/snapshots`).
pub type DataDirFn = fn(&Path) -> PathBuf;

/// A named way to open the backend under test on a root directory.
#[derive(Clone)]
pub struct Backend {
    name: &'static str,
    open: Arc<OpenFn>,
    place: Option<PlaceFn>,
    purge: Option<fn(&Path)>,
    data_dir: Option<DataDirFn>,
}

impl Backend {
    /// Wraps an opener; `name` shows up in temp dir names and messages.
    pub fn new<F>(name: &'static str, open: F) -> Self
    where
        F: Fn(PathBuf) -> BoxFuture<OpenResult> + Send + Sync + 'static,
    {
        Backend {
            name,
            open: Arc::new(open),
            place: None,
            purge: None,
            data_dir: None,
        }
    }

    /// Puts each case's temp dir under the directory `place` returns (default: the system
    /// temp dir); when it returns `Err(reason)`, every case fails with the reason (a case that
    /// cannot run here must be `#[ignore]`d, never passed).
    pub fn with_place(mut self, place: PlaceFn) -> Self {
        self.place = Some(place);
        self
    }

    /// Deletes each case's temp dir with `purge` instead of `remove_dir_all` (for backends
    /// leaving trees that cannot be deleted file by file, e.g. read-only btrfs subvolumes).
    pub fn with_purge(mut self, purge: fn(&Path)) -> Self {
        self.purge = Some(purge);
        self
    }

    /// Names the directory (under the backend's root) whose entries are the snapshots' own
    /// data: the crash case checks that Cleanup leaves nothing else there and that removing
    /// every snapshot empties it. Without it the crash case fails, saying so.
    pub fn with_data_dir(mut self, data_dir: DataDirFn) -> Self {
        self.data_dir = Some(data_dir);
        self
    }

    /// The backend's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The per-snapshot data directory of the backend open on `root` (see
    /// [`Backend::with_data_dir`]); panics when the backend did not name one.
    pub fn data_dir(&self, root: &Path) -> PathBuf {
        let data_dir = self.data_dir.unwrap_or_else(|| {
            panic!(
                "backend {}: the crash case needs Backend::with_data_dir (where its snapshots' \
                 own directories live)",
                self.name
            )
        });
        data_dir(root)
    }

    /// Opens the backend on `root`, retrying for a few seconds (a previous instance may still
    /// be releasing its database lock).
    pub async fn open(&self, root: &Path) -> Arc<dyn Snapshotter> {
        let mut last = String::new();
        for _ in 0..50 {
            match (self.open)(root.to_path_buf()).await {
                Ok(sn) => return sn,
                Err(e) => last = e,
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("open {} on {}: {last}", self.name, root.display())
    }
}

/// Everything one case gets: the backend open on `root`, and a `work` dir for mount points.
pub struct Ctx {
    /// How to (re)open the backend.
    pub backend: Backend,
    /// The libtest name of the running case (`<module>::<case>`), for re-executing it.
    pub test_name: String,
    /// The backend's root.
    pub root: PathBuf,
    /// Scratch space for mount points and reference trees.
    pub work: PathBuf,
    sn: Option<Arc<dyn Snapshotter>>,
    tmp: PathBuf,
    /// False in a crash child: the temp dir belongs to the parent process.
    owned: bool,
}

impl Ctx {
    /// The backend under test.
    pub fn sn(&self) -> &Arc<dyn Snapshotter> {
        self.sn.as_ref().expect("snapshotter is open")
    }

    /// Closes and drops the backend, then opens a new instance on the same root.
    pub async fn reopen(&mut self) {
        self.shutdown().await;
        self.sn = Some(self.backend.open(&self.root).await);
    }

    /// Closes and drops the backend (releasing its root).
    pub async fn shutdown(&mut self) {
        if let Some(sn) = self.sn.take() {
            sn.close().await.expect("close");
        }
    }

    /// True in the re-executed child of the crash case ([`CRASH_CHILD_ENV`] set): the root and
    /// work dir are the parent's.
    pub fn is_crash_child(&self) -> bool {
        !self.owned
    }

    /// Creates (if needed) and returns `<work>/<name>`.
    pub fn dir(&self, name: &str) -> PathBuf {
        let dir = self.work.join(name);
        std::fs::create_dir_all(&dir).expect("create work dir");
        dir
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if !self.owned {
            return;
        }
        super::mount::unmount_under(&self.tmp);
        match self.backend.purge {
            Some(purge) => purge(&self.tmp),
            None => {
                let _ = std::fs::remove_dir_all(&self.tmp);
            }
        }
    }
}

/// Runs one case: fails without root or when the backend's place is unavailable (a case
/// never passes without running), else sets umask 0 (as containerd's suite), makes
/// `<tmp>/root` and `<tmp>/work`, opens the backend and awaits `case` on a multi-threaded runtime.
pub fn run(backend: Backend, test_path: &str, case: fn(Ctx) -> BoxFuture<()>) {
    assert!(
        nix::unistd::geteuid().is_root(),
        "{test_path}: the snapshotter testsuite mounts and needs root; run the tests as root"
    );
    let place = match backend.place.map(|place| place()).transpose() {
        Ok(place) => place,
        Err(reason) => panic!("{test_path} cannot run: {reason}"),
    };
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());
    let test_name = test_path
        .split_once("::")
        .map_or(test_path, |(_, rest)| rest);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async move {
        let parent = std::env::var_os(CRASH_CHILD_ENV).map(PathBuf::from);
        let owned = parent.is_none();
        let tmp = match parent.as_deref().and_then(Path::parent) {
            Some(tmp) => tmp.to_path_buf(),
            None => {
                let prefix = format!("snapshot-suite-{}-", backend.name);
                let mut b = tempfile::Builder::new();
                let b = b.prefix(&prefix);
                match &place {
                    Some(dir) => b.tempdir_in(dir),
                    None => b.tempdir(),
                }
                .expect("tempdir")
                .keep()
            }
        };
        let (root, work) = (tmp.join("root"), tmp.join("work"));
        std::fs::create_dir_all(&root).expect("create root");
        std::fs::create_dir_all(&work).expect("create work");
        let sn = Some(backend.open(&root).await);
        let cx = Ctx {
            backend,
            test_name: test_name.to_string(),
            root,
            work,
            sn,
            tmp,
            owned,
        };
        case(cx).await;
    });
}
