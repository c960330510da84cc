//! [`BlobSource`]: a lazy layer's compressed bytes — from the registry until the background
//! fill has copied them, then from the local copy. Every byte is still checked where it is
//! used: the TOC against its digest when the layer opens, each chunk against its digest when
//! it is read ([`crate::estargz::Layer`]); the whole copy against the layer digest before it
//! is kept.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use sha2::{Digest as _, Sha256};

use crate::RangeSource;

/// Where the layer blob is read from.
pub struct BlobSource {
    remote: Option<Arc<dyn RangeSource>>,
    size: u64,
    /// The local copy (complete, or being filled from the start).
    local: OnceLock<File>,
    /// How many bytes from the start the local copy holds.
    filled: AtomicU64,
}

impl std::fmt::Debug for BlobSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobSource")
            .field("size", &self.size)
            .field("filled", &self.filled())
            .finish()
    }
}

impl BlobSource {
    /// A blob read from `remote` (the registry) until a fill makes it local.
    pub fn remote(remote: Arc<dyn RangeSource>) -> io::Result<Self> {
        let size = remote.size()?;
        Ok(BlobSource {
            remote: Some(remote),
            size,
            local: OnceLock::new(),
            filled: AtomicU64::new(0),
        })
    }

    /// A blob whose complete, verified copy is `file`.
    pub fn local(file: File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        let local = OnceLock::new();
        let _ = local.set(file);
        Ok(BlobSource {
            remote: None,
            size,
            local,
            filled: AtomicU64::new(size),
        })
    }

    /// Bytes available locally (the blob's size once filled).
    pub fn filled(&self) -> u64 {
        self.filled.load(Ordering::Acquire)
    }

    /// Whether every byte is local.
    pub fn is_local(&self) -> bool {
        self.filled() == self.size
    }

    /// Copies the blob from the registry into `part` (created), piece by piece, letting reads
    /// use each piece as soon as it is written, checks it against `digest` (`sha256:<hex>`),
    /// makes it durable and renames it to `done`. On any error the local copy is not used
    /// and `part` is deleted.
    pub fn fill(&self, part: &Path, done: &Path, digest: &str) -> io::Result<()> {
        if self.is_local() {
            return Ok(());
        }
        let res = self.copy(part, digest).and_then(|()| {
            std::fs::rename(part, done)?;
            File::open(done.parent().unwrap_or(Path::new(".")))?.sync_all()
        });
        if res.is_err() {
            self.filled.store(0, Ordering::Release);
            let _ = std::fs::remove_file(part);
        }
        res
    }

    fn copy(&self, part: &Path, digest: &str) -> io::Result<()> {
        let remote = self
            .remote
            .as_ref()
            .ok_or_else(|| io::Error::other("no source"))?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(part)?;
        let reader = file.try_clone()?;
        if self.local.set(reader).is_err() {
            return Err(io::Error::other("the layer is being filled already"));
        }
        let mut hash = Sha256::new();
        let mut buf = vec![0u8; 4 << 20];
        let mut at = 0u64;
        while at < self.size {
            let want = buf.len().min((self.size - at) as usize);
            let n = remote.read_at(at, &mut buf[..want])?;
            if n == 0 {
                return Err(io::Error::other(format!(
                    "blob ends at {at} of {}",
                    self.size
                )));
            }
            std::os::unix::fs::FileExt::write_all_at(&file, &buf[..n], at)?;
            hash.update(&buf[..n]);
            at += n as u64;
            self.filled.store(at, Ordering::Release);
        }
        let got = format!("sha256:{}", hex::encode(hash.finalize()));
        if got != digest {
            return Err(io::Error::other(format!(
                "layer {digest} downloaded as {got}"
            )));
        }
        file.sync_data()
    }
}

impl RangeSource for BlobSource {
    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let end = offset.saturating_add(buf.len() as u64).min(self.size);
        if end <= self.filled()
            && let Some(f) = self.local.get()
        {
            return RangeSource::read_at(f, offset, buf);
        }
        match &self.remote {
            Some(r) => r.read_at(offset, buf),
            None => Err(io::Error::other("the local layer copy is incomplete")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(b: &[u8]) -> String {
        format!("sha256:{}", hex::encode(Sha256::digest(b)))
    }

    #[test]
    fn a_fill_makes_reads_local_and_keeps_only_a_verified_copy() {
        let dir = tempfile::tempdir().unwrap();
        let blob: Vec<u8> = (0..(9u32 << 20)).map(|i| (i % 251) as u8).collect();
        let src = BlobSource::remote(Arc::new(blob.clone())).unwrap();
        assert!(!src.is_local());
        let (part, done) = (dir.path().join("blob.part"), dir.path().join("blob"));
        src.fill(&part, &done, &digest(&blob)).unwrap();
        assert!(src.is_local() && done.exists() && !part.exists());
        let mut buf = [0u8; 100];
        assert_eq!(src.read_at(5 << 20, &mut buf).unwrap(), 100);
        assert_eq!(buf[..], blob[5 << 20..(5 << 20) + 100]);
        let again = BlobSource::local(File::open(&done).unwrap()).unwrap();
        assert!(again.is_local());

        let bad = BlobSource::remote(Arc::new(blob.clone())).unwrap();
        let (p2, d2) = (dir.path().join("p2"), dir.path().join("d2"));
        let err = bad.fill(&p2, &d2, "sha256:00").unwrap_err();
        assert!(err.to_string().contains("sha256:00"), "{err}");
        assert!(!p2.exists() && !d2.exists() && bad.filled() == 0);
        assert_eq!(
            bad.read_at(0, &mut buf).unwrap(),
            100,
            "still served remotely"
        );
    }
}
