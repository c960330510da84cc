//! Committed content: info, label updates, listing, deletion and reading.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::SystemTime;

use rocksdb::WriteBatch;
use strata_core::db::sync_write;
use strata_core::digest::Digest;
use strata_core::filters::parse_all;
use strata_core::labels::{Labels, apply_update};
use strata_core::time::to_nanos;

use crate::error::{Error, Result, io_err};
use crate::records::{CF_HOLDERS, CF_INFO, Info, InfoRecord, key, stored_digest};
use crate::store::{ContentStore, remove_any};

fn not_found(d: &Digest) -> Error {
    Error::NotFound(format!("content digest {d}: not found"))
}

impl ContentStore {
    /// The file holding the bytes of `d` while any view holds it. Read-only for everyone but
    /// the store: other processes may read it (e.g. a lazy layer's server adopting a copy).
    pub fn blob_file(&self, d: &Digest) -> std::path::PathBuf {
        self.inner.blob_path(d)
    }

    /// The view's info for `d`; `NotFound` when the view does not hold it.
    pub fn info(&self, view: &str, d: &Digest) -> Result<Info> {
        let rec = self.inner.get_info(view, d)?.ok_or_else(|| not_found(d))?;
        Ok(rec.to_info(d.clone()))
    }

    /// Updates the labels of the view's info as containerd's Update does (only `labels` and
    /// `labels.<k>` paths); `updated_at` becomes now.
    pub fn update(
        &self,
        view: &str,
        d: &Digest,
        labels: &Labels,
        paths: &[String],
    ) -> Result<Info> {
        let _g = self.inner.meta();
        let mut rec = self.inner.get_info(view, d)?.ok_or_else(|| not_found(d))?;
        rec.labels = apply_update(&rec.labels, labels, paths, "content info")
            .map_err(|e| Error::InvalidArgument(e.0))?;
        rec.updated = to_nanos(SystemTime::now());
        let cf = self.inner.cf(CF_INFO);
        self.inner
            .db
            .put_cf_opt(cf, key(view, &d.to_string()), rec.encode(), &sync_write())?;
        Ok(rec.to_info(d.clone()))
    }

    /// The view's infos matching any of `filters` (fields `digest`, `labels.<k>`), by digest.
    pub fn list(&self, view: &str, filters: &[String]) -> Result<Vec<Info>> {
        let filter = parse_all(filters).map_err(|e| Error::InvalidArgument(e.0))?;
        let mut out = Vec::new();
        for (digest, value) in self.inner.scan(CF_INFO, view)? {
            let d = stored_digest(view, &digest)?;
            let info = InfoRecord::decode(view, &digest, &value)?.to_info(d);
            if filter.matches(&info) {
                out.push(info);
            }
        }
        Ok(out)
    }

    /// Removes the view's record of `d`; the bytes go when no view holds them any more.
    pub fn delete(&self, view: &str, d: &Digest) -> Result<()> {
        let _g = self.inner.meta();
        if self.inner.get_info(view, d)?.is_none() {
            return Err(not_found(d));
        }
        let ds = d.to_string();
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.inner.cf(CF_INFO), key(view, &ds));
        batch.delete_cf(self.inner.cf(CF_HOLDERS), key(&ds, view));
        self.inner.db.write_opt(batch, &sync_write())?;
        if !self.inner.held(d)? {
            remove_any(&self.inner.blob_path(d));
        }
        Ok(())
    }

    /// A positional reader over the blob `d` as the view sees it; `NotFound` when not held.
    pub fn reader(&self, view: &str, d: &Digest) -> Result<BlobReader> {
        let rec = self.inner.get_info(view, d)?.ok_or_else(|| not_found(d))?;
        self.open_reader(d, rec.size)
    }

    /// A reader over `d` whatever view holds it (to copy shared bytes); `NotFound` when none.
    pub fn shared_reader(&self, d: &Digest) -> Result<BlobReader> {
        let size = self.held_size(d)?.ok_or_else(|| not_found(d))?;
        self.open_reader(d, size)
    }

    fn open_reader(&self, d: &Digest, size: u64) -> Result<BlobReader> {
        let path = self.inner.blob_path(d);
        let file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => not_found(d),
            _ => Error::Io {
                context: format!("opening blob {d}"),
                source: e,
            },
        })?;
        Ok(BlobReader {
            file,
            size,
            digest: d.clone(),
        })
    }
}

/// Reads a committed blob at any offset; shareable between threads (`pread`).
#[derive(Debug)]
pub struct BlobReader {
    file: File,
    size: u64,
    digest: Digest,
}

impl BlobReader {
    /// Reads the blob from the start, as a stream.
    pub fn stream(self) -> BlobStream {
        BlobStream { r: self, pos: 0 }
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The whole blob in memory: for small ones (manifests, indexes, configs), whose size the
    /// caller checked.
    pub fn read_to_vec(&self) -> Result<Vec<u8>> {
        let mut bytes = vec![0u8; self.size as usize];
        let n = self.read_at(0, &mut bytes)?;
        bytes.truncate(n);
        Ok(bytes)
    }

    /// Fills `buf` from `offset`; returns fewer bytes only at the end of the blob (0 at or
    /// past it).
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            let n = match self.file.read_at(&mut buf[done..], offset + done as u64) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                res => res.map_err(io_err(format!("reading blob {}", self.digest)))?,
            };
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }
}

/// A committed blob read front to back ([`BlobReader::stream`]).
#[derive(Debug)]
pub struct BlobStream {
    r: BlobReader,
    pos: u64,
}

impl std::io::Read for BlobStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = buf
            .len()
            .min((self.r.size.saturating_sub(self.pos)) as usize);
        let n = self
            .r
            .read_at(self.pos, &mut buf[..want])
            .map_err(std::io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use sha2::Digest as _;

    use super::*;

    const VIEW: &str = "v";

    /// Commits `data` under ref `r` and returns its digest.
    fn put(store: &ContentStore, r: &str, data: &[u8]) -> Digest {
        let d = Digest::sha256_from_bytes(&sha2::Sha256::digest(data).into());
        let mut w = store.writer(VIEW, r, data.len() as u64, None).unwrap();
        w.write(data).unwrap();
        w.commit(data.len() as u64, Some(&d), None).unwrap()
    }

    #[test]
    fn unparsable_stored_digest_is_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path()).unwrap();
        let good = put(&store, "r", b"hello");
        // A record whose key holds no valid digest, written straight into the column family.
        let rec = InfoRecord {
            size: 1,
            created: 0,
            updated: 0,
            labels: Labels::new(),
        };
        let cf = store.inner.cf(CF_INFO);
        store
            .inner
            .db
            .put_cf(cf, key(VIEW, "sha256:not-hex"), rec.encode())
            .unwrap();
        let err = store.list(VIEW, &[]).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
        assert!(err.to_string().contains("sha256:not-hex"), "{err}");
        // Info of a good digest still works; the corruption is not hidden by a filter.
        assert_eq!(store.info(VIEW, &good).unwrap().size, 5);
        let f = [format!("digest=={good}")];
        assert!(matches!(store.list(VIEW, &f), Err(Error::Corrupt(_))));
    }

    #[test]
    fn undecodable_info_record_is_corruption() {
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path()).unwrap();
        let d = put(&store, "r", b"hello");
        let cf = store.inner.cf(CF_INFO);
        store
            .inner
            .db
            .put_cf(cf, key(VIEW, &d.to_string()), b"{not json")
            .unwrap();
        let err = store.info(VIEW, &d).unwrap_err();
        assert!(matches!(err, Error::Corrupt(_)), "{err:?}");
        assert!(err.to_string().contains(&d.to_string()), "{err}");
        assert!(matches!(store.list(VIEW, &[]), Err(Error::Corrupt(_))));
    }

    #[test]
    fn blobs_and_ingests_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let tmp = tempfile::tempdir().unwrap();
        let store = ContentStore::open(tmp.path()).unwrap();
        let d = put(&store, "r", b"hello");
        let mut w = store.writer(VIEW, "open", 0, None).unwrap();
        w.write(b"in progress").unwrap();
        let content = tmp.path().join("content");
        let ingests: Vec<_> = std::fs::read_dir(content.join("ingest"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(ingests.len(), 1);
        for dir in [
            content.clone(),
            content.join("blobs"),
            content.join("blobs/sha256"),
            content.join("ingest"),
            ingests[0].clone(),
        ] {
            assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        }
        assert_eq!(mode(&ingests[0].join("data")), 0o600);
        assert_eq!(mode(&store.inner.blob_path(&d)), 0o400);
        drop(w);
    }

    #[test]
    fn reopening_makes_existing_dirs_private() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let content = tmp.path().join("content");
        for sub in ["blobs/sha256", "ingest"] {
            std::fs::create_dir_all(content.join(sub)).unwrap();
        }
        for dir in [&content, &content.join("blobs"), &content.join("ingest")] {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let _store = ContentStore::open(tmp.path()).unwrap();
        for dir in [
            content.clone(),
            content.join("blobs"),
            content.join("ingest"),
        ] {
            let m = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(m, 0o700, "{}", dir.display());
        }
    }
}
