//! Deleting many blobs of a view at once (a garbage collector's sweep): the records go in one
//! synced batch, the files afterwards, so a caller can hold its own locks only for the first.

use rocksdb::WriteBatch;
use strata_core::db::sync_write;
use strata_core::digest::Digest;

use crate::error::Result;
use crate::records::{CF_HOLDERS, CF_INFO, key};
use crate::store::{ContentStore, remove_any};

impl ContentStore {
    /// Removes the view's records of `digests` in one durable batch; returns the digests the
    /// view held (the others are ignored). Call [`ContentStore::reclaim`] with them afterwards.
    pub fn delete_many(&self, view: &str, digests: &[Digest]) -> Result<Vec<Digest>> {
        let _g = self.inner.meta();
        let mut batch = WriteBatch::default();
        let mut removed = Vec::with_capacity(digests.len());
        for d in digests {
            if self.inner.get_info(view, d)?.is_none() {
                continue;
            }
            let ds = d.to_string();
            batch.delete_cf(self.inner.cf(CF_INFO), key(view, &ds));
            batch.delete_cf(self.inner.cf(CF_HOLDERS), key(&ds, view));
            removed.push(d.clone());
        }
        if !removed.is_empty() {
            self.inner.db.write_opt(batch, &sync_write())?;
        }
        Ok(removed)
    }

    /// Deletes the files of those `digests` that no view holds any more. Safe at any time: a
    /// blob committed again meanwhile is held, and kept.
    pub fn reclaim(&self, digests: &[Digest]) -> Result<usize> {
        let _g = self.inner.meta();
        let mut n = 0;
        for d in digests {
            if !self.inner.held(d)? {
                remove_any(&self.inner.blob_path(d));
                n += 1;
            }
        }
        Ok(n)
    }
}
