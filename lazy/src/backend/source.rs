//! [`BlobSource`]: a lazy layer's compressed bytes — from the registry until the background
//! fill has copied them, then from the local copy. Every byte is still checked where it is
//! used: the TOC against its digest when the layer opens, each chunk against its digest when
//! it is read ([`crate::estargz::Layer`]); the whole copy against the layer digest before it
//! is kept.

use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use sha2::{Digest as _, Sha256};

use super::activity::Activity;
use crate::RangeSource;

/// Where the layer blob is read from.
pub struct BlobSource {
    remote: Option<Arc<dyn RangeSource>>,
    size: u64,
    /// The local copy (complete, or being filled from the start).
    local: RwLock<Option<File>>,
    /// How many bytes from the start the local copy holds.
    filled: AtomicU64,
    /// Held by the one fill running; holds the hash of the first `filled` bytes when a fill
    /// stopped on an I/O error, so the next one resumes there.
    resume: Mutex<Option<Sha256>>,
    /// Marked by reads from `remote`; a fill yields to them.
    activity: Option<Arc<Activity>>,
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
            local: RwLock::new(None),
            filled: AtomicU64::new(0),
            resume: Mutex::new(None),
            activity: None,
        })
    }

    /// Reads from the registry mark `activity`, and a fill yields to recent marks (its own
    /// reads do not mark it).
    pub fn with_activity(mut self, activity: Option<Arc<Activity>>) -> Self {
        self.activity = activity;
        self
    }

    /// A blob whose complete, verified copy is `file`.
    pub fn local(file: File) -> io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(BlobSource {
            remote: None,
            size,
            local: RwLock::new(Some(file)),
            filled: AtomicU64::new(size),
            resume: Mutex::new(None),
            activity: None,
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

    /// Copies the blob from the registry into `part`, piece by piece, letting reads use each
    /// piece as soon as it is written, checks it against `digest` (`sha256:<hex>`), makes it
    /// durable and renames it to `done`. An I/O error (the registry down or slow) keeps what
    /// was copied: the next call resumes there. A copy that does not match `digest`
    /// (`InvalidData`) is deleted and not used. One fill at a time.
    pub fn fill(&self, part: &Path, done: &Path, digest: &str) -> io::Result<()> {
        if self.is_local() {
            return Ok(());
        }
        let Ok(mut resume) = self.resume.try_lock() else {
            return Err(io::Error::other("the layer is being filled already"));
        };
        let res = self.copy(part, digest, &mut resume).and_then(|()| {
            std::fs::rename(part, done)?;
            File::open(done.parent().unwrap_or(Path::new(".")))?.sync_all()
        });
        if res.is_err() && resume.is_none() {
            // Nothing to resume from (a mismatch, a failed rename): start again from nothing.
            self.filled.store(0, Ordering::Release);
            *self.local.write().unwrap_or_else(PoisonError::into_inner) = None;
            let _ = std::fs::remove_file(part);
        }
        res
    }

    /// Takes the layer from `from`, a complete copy another fetch made (the content store's),
    /// instead of the registry ([`link_verified`] to `done`), and reads from it from then on.
    pub fn adopt(&self, from: &Path, part: &Path, done: &Path, digest: &str) -> io::Result<()> {
        if self.is_local() {
            return Ok(());
        }
        let Ok(_one) = self.resume.try_lock() else {
            return Err(io::Error::other("the layer is being filled already"));
        };
        link_verified(from, part, done, digest)?;
        let file = File::open(done)?;
        if file.metadata()?.len() != self.size {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("layer {digest} has another size than its source"),
            ));
        }
        *self.local.write().unwrap_or_else(PoisonError::into_inner) = Some(file);
        self.filled.store(self.size, Ordering::Release);
        Ok(())
    }

    /// [`Self::fill`] until it succeeds: after an I/O error it waits `first_wait`, doubling up
    /// to [`MAX_FILL_WAIT`], and resumes; a copy that does not match its digest is fetched
    /// again at most [`FILL_MISMATCHES`] times in all. Returns the last error when it gives up.
    pub fn fill_retrying(
        &self,
        part: &Path,
        done: &Path,
        digest: &str,
        first_wait: Duration,
    ) -> io::Result<()> {
        let (mut wait, mut mismatches) = (first_wait, 0);
        loop {
            match self.fill(part, done, digest) {
                Ok(()) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    mismatches += 1;
                    if mismatches >= FILL_MISMATCHES {
                        return Err(e);
                    }
                }
                Err(e) => {
                    tracing::info!(%digest, error = %e, ?wait, "lazy layer fill stopped; resuming")
                }
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(MAX_FILL_WAIT);
        }
    }

    fn copy(&self, part: &Path, digest: &str, resume: &mut Option<Sha256>) -> io::Result<()> {
        let remote = self
            .remote
            .as_ref()
            .ok_or_else(|| io::Error::other("no source"))?;
        let (file, mut hash, mut at) = match resume.take() {
            Some(hash) => {
                let file = std::fs::OpenOptions::new().write(true).open(part)?;
                (file, hash, self.filled())
            }
            None => {
                let file = std::fs::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(part)?;
                *self.local.write().unwrap_or_else(PoisonError::into_inner) =
                    Some(file.try_clone()?);
                (file, Sha256::new(), 0)
            }
        };
        let mut buf = vec![0u8; super::FILL_PIECE];
        while at < self.size {
            if let Some(a) = &self.activity {
                a.yield_to_readers();
            }
            let want = buf.len().min((self.size - at) as usize);
            let piece = remote.read_at(at, &mut buf[..want]).and_then(|n| match n {
                0 => Err(io::Error::other(format!(
                    "blob ends at {at} of {}",
                    self.size
                ))),
                n => std::os::unix::fs::FileExt::write_all_at(&file, &buf[..n], at).map(|()| n),
            });
            let n = match piece {
                Ok(n) => n,
                Err(e) => {
                    *resume = Some(hash);
                    return Err(e);
                }
            };
            hash.update(&buf[..n]);
            at += n as u64;
            self.filled.store(at, Ordering::Release);
        }
        let got = format!("sha256:{}", hex::encode(hash.finalize()));
        if got != digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("layer {digest} downloaded as {got}"),
            ));
        }
        file.sync_data()
    }
}

/// Links (or, across filesystems, copies) `from` to `part`, checks it against `digest`
/// (`sha256:<hex>`), renames it to `done` and makes that durable. A copy that does not match is
/// deleted (`InvalidData`).
pub fn link_verified(from: &Path, part: &Path, done: &Path, digest: &str) -> io::Result<()> {
    let _ = std::fs::remove_file(part);
    if std::fs::hard_link(from, part).is_err() {
        std::fs::copy(from, part)?;
    }
    let res = sha256_of(part).and_then(|got| {
        if got != digest {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("copy {} of layer {digest} is {got}", from.display()),
            ));
        }
        std::fs::rename(part, done)?;
        File::open(done.parent().unwrap_or(Path::new(".")))?.sync_all()
    });
    if res.is_err() {
        let _ = std::fs::remove_file(part);
    }
    res
}

/// `sha256:<hex>` of the file at `path`.
fn sha256_of(path: &Path) -> io::Result<String> {
    let mut f = File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = io::Read::read(&mut f, &mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(format!("sha256:{}", hex::encode(hash.finalize())))
}

/// The longest wait between two attempts of a fill.
pub const MAX_FILL_WAIT: Duration = Duration::from_secs(60);
/// How many copies that do not match their digest a fill fetches before it gives up.
pub const FILL_MISMATCHES: u32 = 3;

impl RangeSource for BlobSource {
    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let end = offset.saturating_add(buf.len() as u64).min(self.size);
        if end <= self.filled() {
            let local = self.local.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(f) = local.as_ref() {
                return RangeSource::read_at(f, offset, buf);
            }
        }
        match &self.remote {
            Some(r) => {
                if let Some(a) = &self.activity {
                    a.reading();
                }
                r.read_at(offset, buf)
            }
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

    /// A registry that fails every read from `fail_at` on while `down` is set, and counts the
    /// bytes it served.
    struct Flaky {
        blob: Vec<u8>,
        fail_at: u64,
        down: std::sync::atomic::AtomicBool,
        served: AtomicU64,
    }

    impl RangeSource for Flaky {
        fn size(&self) -> io::Result<u64> {
            Ok(self.blob.len() as u64)
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            if self.down.load(Ordering::SeqCst) && offset + buf.len() as u64 > self.fail_at {
                // Serve up to the failing point first, as a connection cut mid-body does.
                if offset < self.fail_at {
                    let n = (self.fail_at - offset) as usize;
                    return self.read_at(offset, &mut buf[..n]).map(|_| n);
                }
                return Err(io::Error::new(io::ErrorKind::TimedOut, "registry down"));
            }
            let n = self.blob.read_at(offset, buf)?;
            self.served.fetch_add(n as u64, Ordering::SeqCst);
            Ok(n)
        }
    }

    fn flaky(size: u32, fail_at: u64) -> Arc<Flaky> {
        Arc::new(Flaky {
            blob: (0..size).map(|i| (i % 253) as u8).collect(),
            fail_at,
            down: std::sync::atomic::AtomicBool::new(true),
            served: AtomicU64::new(0),
        })
    }

    #[test]
    fn a_fill_the_registry_cuts_keeps_its_bytes_and_resumes_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let reg = flaky(9 << 20, 5 << 20);
        let want = digest(&reg.blob);
        let src = BlobSource::remote(reg.clone()).unwrap();
        let (part, done) = (dir.path().join("blob.part"), dir.path().join("blob"));
        let err = src.fill(&part, &done, &want).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert_eq!(src.filled(), 5 << 20, "the bytes before the cut are kept");
        let mut buf = [0u8; 64];
        let local = src.read_at(1 << 20, &mut buf).unwrap();
        assert_eq!((local, &buf[..]), (64, &reg.blob[1 << 20..(1 << 20) + 64]));
        assert!(part.exists() && !done.exists());

        reg.down.store(false, Ordering::SeqCst);
        let before = reg.served.load(Ordering::SeqCst);
        src.fill(&part, &done, &want).unwrap();
        assert_eq!(
            reg.served.load(Ordering::SeqCst) - before,
            4 << 20,
            "the second attempt fetched only the rest"
        );
        assert!(src.is_local() && done.exists() && !part.exists());
        assert_eq!(std::fs::read(&done).unwrap(), reg.blob);
    }

    #[test]
    fn fill_retrying_waits_out_a_registry_outage_and_gives_up_on_a_wrong_digest() {
        let dir = tempfile::tempdir().unwrap();
        let reg = flaky(3 << 20, 1 << 20);
        let want = digest(&reg.blob);
        let src = Arc::new(BlobSource::remote(reg.clone()).unwrap());
        let (part, done) = (dir.path().join("blob.part"), dir.path().join("blob"));
        let filler = {
            let (src, part, done, want) = (src.clone(), part.clone(), done.clone(), want.clone());
            std::thread::spawn(move || {
                src.fill_retrying(&part, &done, &want, Duration::from_millis(20))
            })
        };
        std::thread::sleep(Duration::from_millis(200));
        assert!(!src.is_local(), "not while the registry is down");
        reg.down.store(false, Ordering::SeqCst);
        filler.join().unwrap().unwrap();
        assert_eq!(std::fs::read(&done).unwrap(), reg.blob);

        let wrong = BlobSource::remote(Arc::new(reg.blob.clone())).unwrap();
        let (p2, d2) = (dir.path().join("p2"), dir.path().join("d2"));
        let err = wrong
            .fill_retrying(&p2, &d2, "sha256:00", Duration::from_millis(1))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        assert!(!p2.exists() && !d2.exists() && wrong.filled() == 0);
    }
}
