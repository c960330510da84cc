//! Ingests: status, listing, abort, and opening (creating or resuming) a writer.

use std::collections::hash_map::RandomState;
use std::fs::{File, OpenOptions};
use std::hash::{BuildHasher, Hasher};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::SystemTime;

use strata_core::db::sync_write;
use strata_core::digest::Digest;
use strata_core::filters::parse_all;
use strata_core::time::to_nanos;

use crate::error::{Error, Result, io_err};
use crate::records::{CF_INGEST, IngestRecord, Status, key};
use crate::sha256::Sha256State;
use crate::store::{
    ContentStore, Inner, PRIVATE_DIR, PRIVATE_FILE, create_private_dir, remove_any,
};
use crate::writer::Writer;

const READ_CHUNK: usize = 1 << 20;

impl ContentStore {
    /// The status of the view's ingest `r`; `NotFound` when there is none.
    pub fn status(&self, view: &str, r: &str) -> Result<Status> {
        let not_found =
            || Error::NotFound(format!("could not get status for ref {r:?}: not found"));
        let rec = self.inner.load_ingest(view, r)?.ok_or_else(not_found)?;
        self.inner.flights.wait(&rec.id);
        Ok(rec.to_status(r, self.inner.data_len(&rec.id)?))
    }

    /// The view's ingests matching any of `filters` (field `ref`), by ref.
    pub fn list_statuses(&self, view: &str, filters: &[String]) -> Result<Vec<Status>> {
        let filter = parse_all(filters).map_err(|e| Error::InvalidArgument(e.0))?;
        let mut out = Vec::new();
        for (r, value) in self.inner.scan(CF_INGEST, view)? {
            let rec = IngestRecord::decode(view, &r, &value)?;
            self.inner.flights.wait(&rec.id);
            let status = rec.to_status(&r, self.inner.data_len(&rec.id)?);
            if filter.matches(&status) {
                out.push(status);
            }
        }
        Ok(out)
    }

    /// Removes the view's ingest `r` (OK when there is none); `Unavailable` while a writer
    /// holds it.
    pub fn abort(&self, view: &str, r: &str) -> Result<()> {
        self.inner.try_lock(view, r)?;
        let res = self.inner.load_ingest(view, r).and_then(|rec| match rec {
            Some(rec) => self.inner.remove_ingest(view, r, &rec.id),
            None => Ok(()),
        });
        self.inner.unlock(view, r);
        res
    }

    /// Opens a writer on the view's ingest `r`, resuming it when it exists.
    ///
    /// `AlreadyExists` when the view already holds `expected`; `Unavailable` while another
    /// writer holds the ref. The ref stays locked until the writer commits or is dropped.
    pub fn writer(
        &self,
        view: &str,
        r: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> Result<Writer> {
        if r.is_empty() {
            return Err(Error::InvalidArgument("ref must not be empty".into()));
        }
        if let Some(d) = &expected
            && self.inner.get_info(view, d)?.is_some()
        {
            return Err(Error::AlreadyExists(format!("content {d}: already exists")));
        }
        self.inner.lock_writer(view, r)?;
        let opened = self.inner.open_ingest(view, r, total, expected);
        match opened {
            Ok(o) => Ok(Writer::new(self.inner.clone(), view, r, o)),
            Err(e) => {
                self.inner.unlock(view, r);
                Err(e)
            }
        }
    }
}

/// An ingest ready to be written: its record, data file and the hash of the file's bytes.
pub(crate) struct Opened {
    pub record: IngestRecord,
    pub file: File,
    pub offset: u64,
    pub hash: Sha256State,
    /// Bytes hashed to recover the state (diagnostics: 0 when the checkpoint was at the end).
    pub rehashed: u64,
}

impl Inner {
    pub fn load_ingest(&self, view: &str, r: &str) -> Result<Option<IngestRecord>> {
        let raw = self.db.get_pinned_cf(self.cf(CF_INGEST), key(view, r))?;
        raw.map(|b| IngestRecord::decode(view, r, &b)).transpose()
    }

    /// Stores the record; `sync` when a later crash must not resurrect an older one.
    pub fn put_ingest(&self, view: &str, r: &str, rec: &IngestRecord, sync: bool) -> Result<()> {
        let opts = if sync {
            sync_write()
        } else {
            rocksdb::WriteOptions::default()
        };
        self.db
            .put_cf_opt(self.cf(CF_INGEST), key(view, r), rec.encode(), &opts)?;
        Ok(())
    }

    pub fn remove_ingest(&self, view: &str, r: &str, id: &str) -> Result<()> {
        self.db
            .delete_cf_opt(self.cf(CF_INGEST), key(view, r), &sync_write())?;
        remove_any(&self.ingest_dir(id));
        Ok(())
    }

    pub fn data_path(&self, id: &str) -> PathBuf {
        self.ingest_dir(id).join("data")
    }

    /// The length of the ingest's data file (0 when missing).
    fn data_len(&self, id: &str) -> Result<u64> {
        match std::fs::metadata(self.data_path(id)) {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(Error::Io {
                context: format!("stat ingest {id}"),
                source: e,
            }),
        }
    }

    fn open_ingest(
        &self,
        view: &str,
        r: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> Result<Opened> {
        let Some(mut rec) = self.load_ingest(view, r)? else {
            return self.create_ingest(view, r, total, expected);
        };
        if total > 0 && rec.total > 0 && total != rec.total {
            tracing::info!(
                reference = r,
                old = rec.total,
                new = total,
                "total differs, recreating ingest"
            );
            self.remove_ingest(view, r, &rec.id)?;
            return self.create_ingest(view, r, total, expected);
        }
        if rec.total == 0 {
            rec.total = total;
        }
        if let Some(d) = expected {
            rec.expected = Some(d.to_string());
        }
        create_private_dir(&self.ingest_dir(&rec.id))?;
        let file = open_data(&self.data_path(&rec.id))?;
        let len = file
            .metadata()
            .map_err(io_err(format!("stat ingest of ref {r}")))?
            .len();
        let (hash, rehashed) = recover_hash(self, view, r, &file, &mut rec, len)?;
        Ok(Opened {
            record: rec,
            file,
            offset: hash.len(),
            hash,
            rehashed,
        })
    }

    fn create_ingest(
        &self,
        view: &str,
        r: &str,
        total: u64,
        expected: Option<Digest>,
    ) -> Result<Opened> {
        let id = self.new_ingest_dir()?;
        let file = open_data(&self.data_path(&id))?;
        let now = to_nanos(SystemTime::now());
        let record = IngestRecord {
            id,
            total,
            expected: expected.map(|d| d.to_string()),
            started: now,
            updated: now,
            checkpoint: None,
        };
        // Not synced: it survives kill -9 (the WAL is in the page cache), and after a power loss
        // an ingest that lost its record is only an orphan folder that startup removes. The
        // commit batch is synced and carries every earlier WAL entry with it.
        self.put_ingest(view, r, &record, false)?;
        Ok(Opened {
            record,
            file,
            offset: 0,
            hash: Sha256State::new(),
            rehashed: 0,
        })
    }

    /// Creates `ingest/<random hex>` and returns its name.
    fn new_ingest_dir(&self) -> Result<String> {
        loop {
            let mut h = RandomState::new().build_hasher();
            h.write_u128(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            );
            let id = format!("{:016x}", h.finish());
            let dir = self.ingest_dir(&id);
            match std::fs::DirBuilder::new().mode(PRIVATE_DIR).create(&dir) {
                Ok(()) => return Ok(id),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::Io {
                        context: format!("creating {}", dir.display()),
                        source: e,
                    });
                }
            }
        }
    }
}

fn open_data(path: &std::path::Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .open(path)
        .map_err(io_err(format!("opening {}", path.display())))
}

/// Restores the hash of the first `len` bytes of the ingest's file, from the record's
/// checkpoint when it is not beyond `len` (a checkpoint past the end means the file lost data
/// or was truncated: re-hash from 0). A rejected checkpoint is dropped from the record, durably,
/// before any new byte can be written past it. Returns the state and the bytes re-hashed.
pub(crate) fn recover_hash(
    inner: &Inner,
    view: &str,
    r: &str,
    file: &File,
    rec: &mut IngestRecord,
    len: u64,
) -> Result<(Sha256State, u64)> {
    let restored = rec
        .checkpoint
        .filter(|cp| cp.offset <= len)
        .and_then(|cp| Sha256State::from_checkpoint(&cp));
    if restored.is_none() && rec.checkpoint.is_some() {
        rec.checkpoint = None;
        inner.put_ingest(view, r, rec, true)?;
    }
    let mut hash = restored.unwrap_or_default();
    let start = hash.len();
    let mut buf = vec![0u8; READ_CHUNK.min((len - start) as usize)];
    while hash.len() < len {
        let want = ((len - hash.len()) as usize).min(buf.len());
        let n = match file.read_at(&mut buf[..want], hash.len()) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            res => res.map_err(io_err(format!("reading ingest of ref {r}")))?,
        };
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok((hash, len - start))
}
