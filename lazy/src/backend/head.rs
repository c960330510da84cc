//! A lazy layer's head: the bytes opening it reads (the blob's size, its footer and its TOC).
//! The daemon that opened and verified a layer keeps them beside the snapshot
//! ([`HEAD_FILE`]), so the layer's server (`strata-lazy-serve`, or the daemon after a restart)
//! opens it without asking the registry for them again. Only a cache: whoever opens the layer
//! still checks the TOC against its digest, and a missing or damaged file means the registry
//! is asked, as without it.

use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::RangeSource;

/// The head of a lazy snapshot's layer, in its directory.
pub const HEAD_FILE: &str = "head.bin";
const MAGIC: &[u8; 8] = b"STRLZH01";
/// Bound on a head file read back (a TOC is at most `toc::MAX_TOC_JSON` compressed).
const MAX_HEAD: u64 = 256 << 20;

/// Byte ranges of a blob: (offset, bytes), sorted, contiguous ones merged.
pub type Pieces = Vec<(u64, Vec<u8>)>;

type Opened = Arc<dyn RangeSource>;

/// Passes every read on to `inner`, and keeps a copy of what is read until [`Self::take`].
pub struct Recorder {
    inner: Opened,
    pieces: Mutex<Option<Pieces>>,
}

impl Recorder {
    pub fn new(inner: Opened) -> Arc<Self> {
        Arc::new(Recorder {
            inner,
            pieces: Mutex::new(Some(Vec::new())),
        })
    }

    /// Stops recording; what was read until now, sorted and merged.
    pub fn take(&self) -> Pieces {
        let taken = self
            .pieces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        merge(taken.unwrap_or_default())
    }
}

impl RangeSource for Recorder {
    fn size(&self) -> io::Result<u64> {
        self.inner.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read_at(offset, buf)?;
        if let Some(p) = self
            .pieces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            p.push((offset, buf[..n].to_vec()));
        }
        Ok(n)
    }
}

fn merge(mut pieces: Pieces) -> Pieces {
    pieces.sort_by_key(|p| p.0);
    let mut out: Pieces = Vec::new();
    for (off, bytes) in pieces {
        match out.last_mut() {
            Some((o, b)) if *o + b.len() as u64 >= off => {
                let end = *o + b.len() as u64;
                let skip = (end - off) as usize;
                if skip < bytes.len() {
                    b.extend_from_slice(&bytes[skip..]);
                }
            }
            _ => out.push((off, bytes)),
        }
    }
    out
}

/// A blob of known `size` whose reads inside the recorded pieces are answered from them;
/// any other read opens the source (once) with `open` and reads there.
pub struct Replay {
    size: u64,
    pieces: Pieces,
    open: Box<dyn Fn() -> io::Result<Opened> + Send + Sync>,
    inner: Mutex<Option<Opened>>,
}

impl Replay {
    pub fn new(
        size: u64,
        pieces: Pieces,
        open: impl Fn() -> io::Result<Opened> + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Replay {
            size,
            pieces,
            open: Box::new(open),
            inner: Mutex::new(None),
        })
    }

    fn inner(&self) -> io::Result<Opened> {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(s) = inner.as_ref() {
            return Ok(s.clone());
        }
        let s = (self.open)()?;
        if s.size()? != self.size {
            return Err(io::Error::other(format!(
                "the blob is {} bytes, its recorded head says {}",
                s.size()?,
                self.size
            )));
        }
        *inner = Some(s.clone());
        Ok(s)
    }
}

impl RangeSource for Replay {
    fn size(&self) -> io::Result<u64> {
        Ok(self.size)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.size.saturating_sub(offset) as usize);
        let end = offset + want as u64;
        for (o, b) in &self.pieces {
            if *o <= offset && end <= o + b.len() as u64 {
                let from = (offset - o) as usize;
                buf[..want].copy_from_slice(&b[from..from + want]);
                return Ok(want);
            }
        }
        self.inner()?.read_at(offset, buf)
    }
}

/// Writes the head (blob `size`, `pieces`) to `path` (through a temporary file and a rename;
/// not synced: it is a cache).
pub fn write(path: &Path, size: u64, pieces: &Pieces) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&size.to_le_bytes());
    out.extend_from_slice(&(pieces.len() as u64).to_le_bytes());
    for (off, bytes) in pieces {
        out.extend_from_slice(&off.to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    f.write_all(&out)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// The head written to `path`: `None` when there is none; an error when it is damaged.
pub fn read(path: &Path) -> io::Result<Option<(u64, Pieces)>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut data = Vec::new();
    f.take(MAX_HEAD).read_to_end(&mut data)?;
    let mut at = 0usize;
    let u64_at = |at: &mut usize| {
        take(&data, at, 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    };
    if take(&data, &mut at, 8)? != MAGIC {
        return Err(damaged());
    }
    let size = u64_at(&mut at)?;
    let count = u64_at(&mut at)?;
    let mut pieces = Vec::new();
    for _ in 0..count {
        let off = u64_at(&mut at)?;
        let len = usize::try_from(u64_at(&mut at)?).map_err(|_| damaged())?;
        let bytes = take(&data, &mut at, len)?.to_vec();
        if off.checked_add(len as u64).is_none_or(|end| end > size) {
            return Err(damaged());
        }
        pieces.push((off, bytes));
    }
    Ok(Some((size, pieces)))
}

fn damaged() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, "damaged lazy layer head")
}

/// The `n` bytes of `data` at `*at`, advancing it.
fn take<'a>(data: &'a [u8], at: &mut usize, n: usize) -> io::Result<&'a [u8]> {
    let end = at.checked_add(n).ok_or_else(damaged)?;
    let s = data.get(*at..end).ok_or_else(damaged)?;
    *at = end;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting {
        data: Vec<u8>,
        reads: AtomicUsize,
    }

    impl RangeSource for Counting {
        fn size(&self) -> io::Result<u64> {
            Ok(self.data.len() as u64)
        }
        fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let from = (offset as usize).min(self.data.len());
            let n = buf.len().min(self.data.len() - from);
            buf[..n].copy_from_slice(&self.data[from..from + n]);
            Ok(n)
        }
    }

    fn blob() -> Arc<Counting> {
        Arc::new(Counting {
            data: (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect(),
            reads: AtomicUsize::new(0),
        })
    }

    #[test]
    fn recorded_reads_are_replayed_without_the_source_and_others_open_it_once() {
        let src = blob();
        let rec = Recorder::new(src.clone());
        let mut a = [0u8; 100];
        rec.read_at(9_900, &mut a).unwrap();
        let mut b = [0u8; 50];
        rec.read_at(9_850, &mut b).unwrap();
        rec.read_at(2_000, &mut b).unwrap();
        let pieces = rec.take();
        assert_eq!(pieces.len(), 2, "adjacent reads merge: {:?}", pieces.len());
        rec.read_at(5_000, &mut b).unwrap();
        assert_eq!(rec.take().len(), 0, "nothing is recorded after take");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HEAD_FILE);
        write(&path, 10_000, &pieces).unwrap();
        let (size, back) = read(&path).unwrap().expect("a head");
        assert_eq!((size, &back), (10_000, &pieces));

        let opens = Arc::new(AtomicUsize::new(0));
        let (o, s2) = (opens.clone(), src.clone());
        let replay = Replay::new(size, back, move || {
            o.fetch_add(1, Ordering::SeqCst);
            Ok(s2.clone() as Opened)
        });
        let before = src.reads.load(Ordering::SeqCst);
        let mut got = [0u8; 150];
        replay.read_at(9_850, &mut got).unwrap();
        assert_eq!(&got[..], &src.data[9_850..]);
        assert_eq!(
            opens.load(Ordering::SeqCst),
            0,
            "a recorded range needs no source"
        );
        assert_eq!(src.reads.load(Ordering::SeqCst), before);
        let mut other = [0u8; 10];
        replay.read_at(7_000, &mut other).unwrap();
        replay.read_at(7_100, &mut other).unwrap();
        assert_eq!(&other[..], &src.data[7_100..7_110]);
        assert_eq!(opens.load(Ordering::SeqCst), 1, "the source is opened once");
    }

    #[test]
    fn a_damaged_or_foreign_head_is_an_error_and_a_missing_one_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(HEAD_FILE);
        assert!(read(&path).unwrap().is_none());
        write(&path, 100, &vec![(90, vec![1u8; 10])]).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 3);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
        // A piece beyond the blob's size.
        write(&path, 50, &vec![(45, vec![1u8; 10])]).unwrap();
        assert_eq!(read(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
        std::fs::write(&path, b"not a head at all").unwrap();
        assert_eq!(read(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_source_of_another_size_is_refused() {
        let src = blob();
        let replay = Replay::new(20_000, Vec::new(), move || Ok(src.clone() as Opened));
        let mut b = [0u8; 10];
        assert!(replay.read_at(0, &mut b).is_err());
    }
}
