//! A live ingest: appends bytes, tracks the running digest, commits into the store.

use std::fs::File;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::SystemTime;

use strata_core::digest::Digest;
use strata_core::labels::{Labels, validate, without_empty};
use strata_core::time::{from_nanos, to_nanos};

use crate::error::{Error, Result, io_err};
use crate::faults::{self, Point};
use crate::ingest::{Opened, recover_hash};
use crate::records::{IngestRecord, Status};
use crate::sha256::Sha256State;
use crate::store::Inner;

/// The writer of one ingest; holds the ref lock until it commits or is dropped.
///
/// Dropping it keeps the ingest (a later writer on the same ref resumes at its offset).
pub struct Writer {
    inner: Arc<Inner>,
    view: String,
    reference: String,
    record: IngestRecord,
    file: File,
    offset: u64,
    hash: Sha256State,
    rehashed: u64,
    closed: bool,
    /// The ingest was removed (committed or found already present).
    gone: bool,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("ref", &self.reference)
            .field("offset", &self.offset)
            .finish()
    }
}

impl Writer {
    pub(crate) fn new(inner: Arc<Inner>, view: &str, r: &str, o: Opened) -> Writer {
        Writer {
            inner,
            view: view.to_string(),
            reference: r.to_string(),
            record: o.record,
            file: o.file,
            offset: o.offset,
            hash: o.hash,
            rehashed: o.rehashed,
            closed: false,
            gone: false,
        }
    }

    /// The ingest's status as this writer sees it.
    pub fn status(&self) -> Status {
        self.record.to_status(&self.reference, self.offset)
    }

    /// Bytes written so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The sha256 digest of the bytes written so far.
    pub fn digest(&self) -> Digest {
        Digest::sha256_from_bytes(&self.hash.finalize())
    }

    /// How many bytes opening this writer had to re-hash to recover the digest (diagnostics).
    pub fn rehashed_on_open(&self) -> u64 {
        self.rehashed
    }

    /// Cuts the ingest to `size` bytes (0 restarts it); growing is `InvalidArgument`.
    pub fn truncate(&mut self, size: u64) -> Result<()> {
        self.check_open()?;
        if size > self.offset {
            let msg = format!(
                "cannot truncate ref {} to {size}: beyond offset {}",
                self.reference, self.offset
            );
            return Err(Error::InvalidArgument(msg));
        }
        let ctx = || format!("truncating ingest of ref {}", self.reference);
        self.file.set_len(size).map_err(io_err(ctx()))?;
        self.file.sync_all().map_err(io_err(ctx()))?;
        let (hash, _) = recover_hash(
            &self.inner,
            &self.view,
            &self.reference,
            &self.file,
            &mut self.record,
            size,
        )?;
        self.hash = hash;
        self.offset = size;
        self.record.updated = to_nanos(SystemTime::now());
        Ok(())
    }

    /// Appends `data` at the current offset.
    ///
    /// On failure (ENOSPC, EIO) the offset stays where it was and the bytes that did land are
    /// cut off, so the file, Status and a resumed writer agree with what was acknowledged.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.write_accepted(data, SystemTime::now())
    }

    /// A write this writer's transport acknowledges before making it: until the returned
    /// [`Flight`](crate::Flight) is dropped (once the write landed or failed), the Status of
    /// this ingest waits, and so reports the acknowledged offset.
    pub fn in_flight(&self) -> crate::Flight {
        self.inner.flights.enter(&self.record.id)
    }

    /// [`Writer::write`] of bytes a transport accepted (and acknowledged) at `accepted`, before
    /// writing them: the ingest's updated time is when its client saw the bytes taken.
    pub fn write_accepted(&mut self, data: &[u8], accepted: SystemTime) -> Result<()> {
        self.check_open()?;
        if let Err(e) = faults::write_all_at(&self.file, data, self.offset) {
            self.cut_to(self.offset);
            let context = format!(
                "writing ingest of ref {} at offset {}",
                self.reference, self.offset
            );
            return Err(Error::Io { context, source: e });
        }
        self.offset += data.len() as u64;
        self.hash.update(data);
        self.record.updated = to_nanos(accepted);
        let last = self.record.checkpoint.map_or(0, |cp| cp.offset);
        if self.hash.checkpoint().offset - last
            >= self.inner.checkpoint_interval.load(Ordering::Relaxed)
        {
            self.save_checkpoint()?;
        }
        Ok(())
    }

    /// Sets the total size the ingest expects.
    pub fn set_total(&mut self, total: u64) {
        self.record.total = total;
    }

    /// Sets the digest the ingest expects.
    pub fn set_expected(&mut self, expected: Digest) {
        self.record.expected = Some(expected.to_string());
    }

    /// Commits the bytes as a blob of this view and returns its digest.
    ///
    /// `size > 0` and `expected` are checked (`FailedPrecondition`, ingest kept); when the view
    /// already holds the digest the ingest is removed and the result is `AlreadyExists`. The
    /// writer is closed (and the ref unlocked) afterwards, whatever the outcome, except for
    /// invalid labels.
    pub fn commit(
        &mut self,
        size: u64,
        expected: Option<&Digest>,
        labels: Option<&Labels>,
    ) -> Result<Digest> {
        self.check_open()?;
        let labels = match labels {
            Some(l) => {
                validate(l).map_err(|e| Error::InvalidArgument(e.0))?;
                without_empty(l.clone())
            }
            None => Labels::new(),
        };
        let res = self.try_commit(size, expected, labels);
        self.close();
        res
    }

    fn try_commit(
        &mut self,
        size: u64,
        expected: Option<&Digest>,
        labels: Labels,
    ) -> Result<Digest> {
        self.sync(true)?;
        if size > 0 && size != self.offset {
            let msg = format!("unexpected commit size {}, expected {size}", self.offset);
            return Err(Error::FailedPrecondition(msg));
        }
        let digest = self.digest();
        if let Some(e) = expected
            && *e != digest
        {
            return Err(Error::FailedPrecondition(format!(
                "unexpected commit digest {digest}, expected {e}"
            )));
        }
        let res = self.inner.finalize_commit(
            &self.view,
            &self.reference,
            &self.record.id,
            &digest,
            self.offset,
            labels,
        );
        if matches!(res, Ok(()) | Err(Error::AlreadyExists(_))) {
            self.gone = true;
        }
        res.map(|()| digest)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed {
            let msg = format!("writer of ref {} is closed", self.reference);
            return Err(Error::FailedPrecondition(msg));
        }
        Ok(())
    }

    /// Checkpoints the hash state at the last block boundary, after making the bytes before
    /// it durable (so a surviving checkpoint never runs ahead of the data).
    fn save_checkpoint(&mut self) -> Result<()> {
        let cp = self.hash.checkpoint();
        if self
            .record
            .checkpoint
            .is_some_and(|old| old.offset >= cp.offset)
        {
            return self
                .inner
                .put_ingest(&self.view, &self.reference, &self.record, false);
        }
        self.sync(false)?;
        self.record.checkpoint = Some(cp);
        self.inner
            .put_ingest(&self.view, &self.reference, &self.record, false)
    }

    /// fsyncs the ingest's data (`all`: with its metadata). When that fails the kernel may have
    /// dropped the dirty pages, and a later fsync would succeed without them: only the bytes up
    /// to the last checkpoint (synced before it was recorded) are known durable, so the ingest
    /// rolls back there and a retry rewrites the rest.
    fn sync(&mut self, all: bool) -> Result<()> {
        let res = faults::check(Point::IngestSync).and_then(|()| match all {
            true => self.file.sync_all(),
            false => self.file.sync_data(),
        });
        let Err(e) = res else { return Ok(()) };
        let offset = self.roll_back();
        let context = format!(
            "syncing ingest of ref {} (rolled back to offset {offset})",
            self.reference
        );
        Err(Error::Io { context, source: e })
    }

    /// Resets the ingest to its last checkpoint (to 0 without a usable one) and returns the
    /// offset it is back at.
    fn roll_back(&mut self) -> u64 {
        let restored = self
            .record
            .checkpoint
            .and_then(|cp| Sha256State::from_checkpoint(&cp));
        if restored.is_none() {
            self.record.checkpoint = None;
        }
        self.hash = restored.unwrap_or_default();
        self.offset = self.hash.len();
        self.cut_to(self.offset);
        self.offset
    }

    /// Truncates the data file to `len` (best effort: a failure is logged, and a resumed
    /// writer then re-hashes whatever the file holds).
    fn cut_to(&self, len: u64) {
        if let Err(e) = self.file.set_len(len) {
            tracing::warn!(reference = %self.reference, len, error = %e, "cannot truncate ingest");
        }
    }

    /// Persists the record (offset info, updated_at, checkpoint) unless the ingest is gone,
    /// and releases the ref lock. Idempotent.
    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if !self.gone
            && let Err(e) = self.save_checkpoint()
        {
            tracing::warn!(reference = %self.reference, error = %e, "cannot persist ingest state");
        }
        self.inner.unlock(&self.view, &self.reference);
    }

    /// Removes the ingest and releases its ref, which it holds until the ingest is gone: no
    /// other writer can take the ref in between (releasing first, then aborting, let one and
    /// made this abort fail with Unavailable).
    pub fn abort(mut self) -> Result<()> {
        let res = self
            .inner
            .remove_ingest(&self.view, &self.reference, &self.record.id);
        self.gone = true;
        self.close();
        res
    }

    /// When the writer last wrote (or was opened).
    pub fn updated_at(&self) -> SystemTime {
        from_nanos(self.record.updated)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}
