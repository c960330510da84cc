//! The durable end of a commit: bytes into `blobs/`, records into RocksDB in one synced batch.

use std::path::Path;
use std::time::SystemTime;

use rocksdb::WriteBatch;
use strata_core::db::sync_write;
use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_core::time::to_nanos;

use crate::error::{Error, Result, io_err};
use crate::faults::{self, Point};
use crate::records::{CF_HOLDERS, CF_INFO, CF_INGEST, InfoRecord, key};
use crate::store::{Inner, PRIVATE_FILE, create_private_dir, remove_any, sync_dir};

impl Inner {
    /// Makes the (already fsynced) ingest `id` of `(view, r)` the view's blob `d`.
    ///
    /// `AlreadyExists` (ingest removed) when the view holds `d`; when another view holds it the
    /// bytes are shared and the ingest data dropped; otherwise the data file is renamed into
    /// place and its directory fsynced before the records are written.
    pub fn finalize_commit(
        &self,
        view: &str,
        r: &str,
        id: &str,
        d: &Digest,
        size: u64,
        labels: Labels,
    ) -> Result<()> {
        let _g = self.meta();
        if self.get_info(view, d)?.is_some() {
            self.remove_ingest(view, r, id)?;
            return Err(Error::AlreadyExists(format!("content {d}: already exists")));
        }
        let blob = self.blob_path(d);
        let placed = !(self.held(d)? && blob.exists());
        if placed {
            self.place_blob(id, &blob)?;
        }
        let now = to_nanos(SystemTime::now());
        let rec = InfoRecord {
            size,
            created: now,
            updated: now,
            labels,
        };
        let ds = d.to_string();
        let mut batch = WriteBatch::default();
        batch.put_cf(self.cf(CF_INFO), key(view, &ds), rec.encode());
        batch.put_cf(self.cf(CF_HOLDERS), key(&ds, view), b"");
        batch.delete_cf(self.cf(CF_INGEST), key(view, r));
        if let Err(e) = self.db.write_opt(batch, &sync_write()) {
            if placed {
                self.unplace_blob(id, &blob);
            }
            return Err(e.into());
        }
        remove_any(&self.ingest_dir(id));
        Ok(())
    }

    /// Renames the ingest's data to `blob` and makes that durable. When the directory fsync
    /// fails the rename is undone, so the ingest keeps its bytes.
    fn place_blob(&self, id: &str, blob: &Path) -> Result<()> {
        let parent = blob.parent().expect("blob path has a parent");
        create_private_dir(parent)?;
        let data = self.data_path(id);
        faults::check(Point::CommitRename)
            .and_then(|()| std::fs::rename(&data, blob))
            .map_err(io_err(format!(
                "moving {} to {}",
                data.display(),
                blob.display()
            )))?;
        make_read_only(blob);
        let synced = faults::check(Point::CommitDirSync)
            .map_err(io_err(format!("syncing {}", parent.display())))
            .and_then(|()| sync_dir(parent));
        if synced.is_err() {
            self.unplace_blob(id, blob);
        }
        synced
    }

    /// Puts a placed blob back as the ingest's data (best effort) after a later commit step
    /// failed: no blob without records is left at its final path, and the ingest resumes at
    /// its full offset instead of 0.
    fn unplace_blob(&self, id: &str, blob: &Path) {
        use std::os::unix::fs::PermissionsExt;
        let data = self.data_path(id);
        let res = std::fs::set_permissions(blob, std::fs::Permissions::from_mode(PRIVATE_FILE))
            .and_then(|()| std::fs::rename(blob, &data));
        if let Err(e) = res {
            tracing::warn!(blob = %blob.display(), error = %e, "blob left for startup cleanup");
        }
    }
}

/// Drops write and execute bits, as containerd does for committed blobs (best effort).
fn make_read_only(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        let mode = m.permissions().mode() & 0o777 & !0o333;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode));
    }
}
