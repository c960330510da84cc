//! Bytes shared between views: a view can take a blob another view already holds without
//! re-sending it (containerd's metadata "shared" content policy).

use std::time::SystemTime;

use rocksdb::WriteBatch;
use strata_core::db::sync_write;
use strata_core::digest::Digest;
use strata_core::labels::{Labels, validate, without_empty};
use strata_core::time::to_nanos;

use crate::error::{Error, Result};
use crate::records::{CF_HOLDERS, CF_INFO, Info, InfoRecord, key, prefix};
use crate::store::ContentStore;

impl ContentStore {
    /// The size of `d` when some view holds its bytes, `None` otherwise.
    pub fn held_size(&self, d: &Digest) -> Result<Option<u64>> {
        let ds = d.to_string();
        for (view, _) in self.inner.scan(CF_HOLDERS, &ds)? {
            if let Some(rec) = self.inner.get_info(&view, d)? {
                return Ok(Some(rec.size));
            }
        }
        Ok(None)
    }

    /// Makes `d`, whose bytes another view holds, a blob of `view` with `labels`.
    ///
    /// `AlreadyExists` when the view holds it, `NotFound` when no view does.
    pub fn claim(&self, view: &str, d: &Digest, labels: &Labels) -> Result<Info> {
        validate(labels).map_err(|e| Error::InvalidArgument(e.0))?;
        let _g = self.inner.meta();
        if self.inner.get_info(view, d)?.is_some() {
            return Err(Error::AlreadyExists(format!("content {d}: already exists")));
        }
        let size = self
            .held_size(d)?
            .filter(|_| self.inner.blob_path(d).exists())
            .ok_or_else(|| Error::NotFound(format!("content digest {d}: not found")))?;
        let now = to_nanos(SystemTime::now());
        let rec = InfoRecord {
            size,
            created: now,
            updated: now,
            labels: without_empty(labels.clone()),
        };
        let ds = d.to_string();
        let mut batch = WriteBatch::default();
        batch.put_cf(self.inner.cf(CF_INFO), key(view, &ds), rec.encode());
        batch.put_cf(self.inner.cf(CF_HOLDERS), key(&ds, view), b"");
        self.inner.db.write_opt(batch, &sync_write())?;
        Ok(rec.to_info(d.clone()))
    }

    /// Whether `view` holds any blob.
    pub fn has_any(&self, view: &str) -> Result<bool> {
        let p = prefix(view);
        let opts = strata_core::db::prefix_bounds(&p);
        let mut it = self.inner.db.iterator_cf_opt(
            self.inner.cf(CF_INFO),
            opts,
            rocksdb::IteratorMode::Start,
        );
        match it.next() {
            Some(item) => Ok(item?.0.starts_with(&p)),
            None => Ok(false),
        }
    }
}
