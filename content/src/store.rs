//! The store handle: where blobs and ingests live, the shared RocksDB and the in-process locks.

use std::collections::HashSet;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rocksdb::{ColumnFamily, DB, IteratorMode};
use strata_core::db::prefix_bounds;
use strata_core::digest::{Algorithm, Digest};

use crate::error::{Error, Result, io_err};
use crate::records::{CF_HOLDERS, CF_INFO, CF_INGEST, InfoRecord, key, prefix};

/// The column families this crate uses in the shared database.
pub const COLUMN_FAMILIES: &[&str] = &[CF_INFO, CF_HOLDERS, CF_INGEST];

/// How many bytes a writer hashes between two persisted hash checkpoints by default.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 64 << 20;

/// A content-addressed blob store with containerd's Content semantics, partitioned in views.
///
/// Bytes live once per digest in `dir/blobs/<algo>/<hex>`; every view keeps its own info record
/// (size, timestamps, labels) and ingests in RocksDB. Cheap to clone.
#[derive(Clone)]
pub struct ContentStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub db: Arc<DB>,
    pub dir: PathBuf,
    /// `(view, ref)` pairs held by live writers (or by an abort in progress).
    locks: Mutex<HashSet<(String, String)>>,
    /// Serialises changes to records that decide whether blob files exist.
    meta: Mutex<()>,
    pub checkpoint_interval: AtomicU64,
    /// Acknowledged writes still landing, which an ingest's Status waits for.
    pub flights: Arc<crate::flights::Flights>,
}

impl ContentStore {
    /// Opens the store over `db` (which must have [`COLUMN_FAMILIES`]) with files under `dir`,
    /// removing crash leftovers: ingest directories without a record and blobs no view holds.
    pub fn new(db: Arc<DB>, dir: PathBuf) -> Result<ContentStore> {
        for cf in COLUMN_FAMILIES {
            if db.cf_handle(cf).is_none() {
                return Err(Error::InvalidArgument(format!(
                    "column family {cf} is missing"
                )));
            }
        }
        for sub in ["blobs", "ingest"] {
            create_private_dir(&dir.join(sub))?;
        }
        // Tighten what an older version created 0755: blobs and uploads are private.
        for p in [dir.clone(), dir.join("blobs"), dir.join("ingest")] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(PRIVATE_DIR))
                .map_err(io_err(format!("chmod {}", p.display())))?;
        }
        let inner = Inner {
            db,
            dir,
            locks: Mutex::default(),
            meta: Mutex::default(),
            checkpoint_interval: AtomicU64::new(DEFAULT_CHECKPOINT_INTERVAL),
            flights: Arc::default(),
        };
        inner.remove_orphan_ingests()?;
        inner.remove_orphan_blobs()?;
        Ok(ContentStore {
            inner: Arc::new(inner),
        })
    }

    /// Opens `root/db` with this crate's column families and keeps files in `root/content`.
    pub fn open(root: &Path) -> Result<ContentStore> {
        let db = strata_core::db::open(&root.join("db"), COLUMN_FAMILIES)?;
        ContentStore::new(db, root.join("content"))
    }

    /// Sets how many bytes a writer hashes between persisted hash checkpoints.
    pub fn set_checkpoint_interval(&self, bytes: u64) {
        self.inner
            .checkpoint_interval
            .store(bytes.max(64), Ordering::Relaxed);
    }
}

impl Inner {
    pub fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column family checked at open")
    }

    /// Every `(suffix, value)` in `cf` whose key starts with `first \0`.
    pub fn scan(&self, cf: &str, first: &str) -> Result<Vec<(String, Box<[u8]>)>> {
        let p = prefix(first);
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf_opt(self.cf(cf), prefix_bounds(&p), IteratorMode::Start)
        {
            let (k, v) = item?;
            let Some(rest) = k.strip_prefix(p.as_slice()) else {
                break;
            };
            out.push((String::from_utf8_lossy(rest).into_owned(), v));
        }
        Ok(out)
    }

    pub fn get_info(&self, view: &str, d: &Digest) -> Result<Option<InfoRecord>> {
        let raw = self
            .db
            .get_pinned_cf(self.cf(CF_INFO), key(view, &d.to_string()))?;
        raw.map(|b| InfoRecord::decode(view, &d.to_string(), &b))
            .transpose()
    }

    /// Whether any view holds `d`.
    pub fn held(&self, d: &Digest) -> Result<bool> {
        let p = prefix(&d.to_string());
        let mut it =
            self.db
                .iterator_cf_opt(self.cf(CF_HOLDERS), prefix_bounds(&p), IteratorMode::Start);
        match it.next() {
            Some(item) => Ok(item?.0.starts_with(&p)),
            None => Ok(false),
        }
    }

    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        self.dir
            .join("blobs")
            .join(algo_name(d.algorithm()))
            .join(d.hex())
    }

    pub fn ingest_dir(&self, id: &str) -> PathBuf {
        self.dir.join("ingest").join(id)
    }

    pub fn meta(&self) -> MutexGuard<'_, ()> {
        self.meta.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the ref lock of `(view, r)`, or fails `Unavailable`.
    pub fn try_lock(&self, view: &str, r: &str) -> Result<()> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        if !locks.insert((view.to_string(), r.to_string())) {
            return Err(Error::Unavailable(format!("ref {r} locked")));
        }
        Ok(())
    }

    /// Takes the ref lock, waiting up to about a second for a writer that is closing: a client
    /// may reopen a ref right after closing its stream, before the server has seen the close
    /// (containerd's local store retries the same way before answering `Unavailable`).
    pub fn lock_writer(&self, view: &str, r: &str) -> Result<()> {
        let mut wait = std::time::Duration::from_millis(1);
        for _ in 0..10 {
            match self.try_lock(view, r) {
                Err(Error::Unavailable(_)) => std::thread::sleep(wait),
                other => return other,
            }
            wait *= 2;
        }
        self.try_lock(view, r)
    }

    pub fn unlock(&self, view: &str, r: &str) {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.remove(&(view.to_string(), r.to_string()));
    }

    fn remove_orphan_ingests(&self) -> Result<()> {
        let mut ids = HashSet::new();
        for item in self.db.iterator_cf(self.cf(CF_INGEST), IteratorMode::Start) {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k);
            let (view, r) = key.split_once('\0').unwrap_or(("", &key));
            // A corrupt record (logged by decode) names no directory: its data is unreachable
            // and goes with the orphans; Status and List keep reporting the corruption.
            if let Ok(rec) = crate::records::IngestRecord::decode(view, r, &v) {
                ids.insert(rec.id);
            }
        }
        for entry in read_dir(&self.dir.join("ingest"))? {
            if !ids.contains(entry.file_name().to_string_lossy().as_ref()) {
                remove_any(&entry.path());
            }
        }
        Ok(())
    }

    /// Blobs renamed into place by a commit that crashed before its records were written, or
    /// left by a delete that crashed before removing the file.
    fn remove_orphan_blobs(&self) -> Result<()> {
        for algo in read_dir(&self.dir.join("blobs"))? {
            if !algo.path().is_dir() {
                continue;
            }
            let name = algo.file_name().to_string_lossy().into_owned();
            for blob in read_dir(&algo.path())? {
                let hex = blob.file_name().to_string_lossy().into_owned();
                let held = match Digest::parse(&format!("{name}:{hex}")) {
                    Ok(d) => self.held(&d)?,
                    Err(_) => false,
                };
                if !held {
                    tracing::info!(path = %blob.path().display(), "removing unreferenced blob");
                    remove_any(&blob.path());
                }
            }
        }
        Ok(())
    }
}

/// Mode of every directory of the store: only the daemon reads blobs and uploads.
pub(crate) const PRIVATE_DIR: u32 = 0o700;
/// Mode of ingest data files (a committed blob drops the write bit: 0400).
pub(crate) const PRIVATE_FILE: u32 = 0o600;

/// Creates `dir` and its missing parents with mode [`PRIVATE_DIR`] (before the umask).
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
        .map_err(io_err(format!("creating {}", dir.display())))
}

/// The directory name of an algorithm (as in the digest string).
pub(crate) fn algo_name(a: Algorithm) -> &'static str {
    match a {
        Algorithm::Sha256 => "sha256",
        Algorithm::Sha384 => "sha384",
        Algorithm::Sha512 => "sha512",
    }
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let rd = std::fs::read_dir(dir).map_err(io_err(format!("reading {}", dir.display())))?;
    rd.collect::<std::io::Result<Vec<_>>>()
        .map_err(io_err(format!("reading {}", dir.display())))
}

/// Removes a file or directory tree, logging (not failing) on error.
pub(crate) fn remove_any(path: &Path) {
    let res = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    if let Err(e) = res
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "cannot remove");
    }
}

/// fsyncs a directory so a rename or create inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir).map_err(io_err(format!("opening {}", dir.display())))?;
    f.sync_all()
        .map_err(io_err(format!("syncing {}", dir.display())))
}
