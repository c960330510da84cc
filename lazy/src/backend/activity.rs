//! Background fills yield to on-demand reads. A container starting from lazy layers reads a
//! few MiB from the registry while every layer's fill copies the whole layer; on a thin link or
//! a small machine the fills would delay those reads. Every on-demand read from a registry marks
//! one file shared by all layers on the host (its mtime, at most every [`MARK_EVERY`]); before
//! each piece, a fill waits while that mark is younger than [`QUIET`] (at most [`MAX_YIELD`] per
//! piece, so a reader that never stops cannot stall a fill for good). The layers' servers are
//! separate processes, hence a file rather than memory.

use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A background fill yields to on-demand reads before each piece of this size.
pub const FILL_PIECE: usize = 4 << 20;

/// How long after the last on-demand read a fill goes on.
pub const QUIET: Duration = Duration::from_millis(300);
/// The longest a fill waits before one piece.
pub const MAX_YIELD: Duration = Duration::from_secs(5);
/// The mark is refreshed at most this often.
const MARK_EVERY: Duration = Duration::from_millis(50);
const POLL: Duration = Duration::from_millis(50);

/// The host's on-demand read mark (a file).
#[derive(Debug)]
pub struct Activity {
    path: PathBuf,
    /// When this process last marked the file (ms since the epoch).
    marked_ms: AtomicU64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Activity {
    pub fn new(path: &Path) -> Self {
        Activity {
            path: path.to_path_buf(),
            marked_ms: AtomicU64::new(0),
        }
    }

    /// An on-demand read from a registry is starting.
    pub fn reading(&self) {
        let now = now_ms();
        let last = self.marked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < MARK_EVERY.as_millis() as u64
            || self
                .marked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let marked = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.path)
            .and_then(|f| f.set_modified(SystemTime::now()));
        if let Err(e) = marked {
            tracing::debug!(path = %self.path.display(), error = %e, "marking an on-demand read");
        }
    }

    /// How long ago an on-demand read was last marked (None: never, or unreadable).
    fn since_last_read(&self) -> Option<Duration> {
        let m = std::fs::metadata(&self.path).ok()?.modified().ok()?;
        Some(SystemTime::now().duration_since(m).unwrap_or_default())
    }

    /// Waits while an on-demand read was marked less than [`QUIET`] ago, at most
    /// [`MAX_YIELD`]; how long it waited.
    pub fn yield_to_readers(&self) -> Duration {
        self.yield_for(QUIET, MAX_YIELD, || true)
    }

    /// [`Activity::yield_to_readers`], ending early once `go_on` says false (checked every
    /// 50 ms: a fill whose daemon is stopping).
    pub fn yield_to_readers_while(&self, go_on: impl Fn() -> bool) -> Duration {
        self.yield_for(QUIET, MAX_YIELD, go_on)
    }

    fn yield_for(&self, quiet: Duration, max: Duration, go_on: impl Fn() -> bool) -> Duration {
        let start = Instant::now();
        while start.elapsed() < max && go_on() && self.since_last_read().is_some_and(|d| d < quiet)
        {
            std::thread::sleep(POLL);
        }
        start.elapsed()
    }
}

/// A whole-blob reader for a background fill: yields to on-demand reads before each
/// [`FILL_PIECE`] (the first one included), and fails there once `cancelled` is set (the daemon
/// is stopping). No read crosses a piece.
pub struct Yielding<R> {
    inner: R,
    activity: Arc<Activity>,
    cancelled: Arc<AtomicBool>,
    left: usize,
}

impl<R> Yielding<R> {
    pub fn new(inner: R, activity: Arc<Activity>, cancelled: Arc<AtomicBool>) -> Self {
        Yielding {
            inner,
            activity,
            cancelled,
            left: 0,
        }
    }
}

impl<R: Read> Read for Yielding<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 && !buf.is_empty() {
            let cancelled = || self.cancelled.load(Ordering::SeqCst);
            let waited = self.activity.yield_to_readers_while(|| !cancelled());
            if cancelled() {
                return Err(io::Error::other("fetch cancelled: the daemon is stopping"));
            }
            if !waited.is_zero() {
                tracing::trace!(?waited, "a fill yielded to on-demand reads");
            }
            self.left = FILL_PIECE;
        }
        let n = buf.len().min(self.left);
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got;
        Ok(got)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_waits_while_reads_are_recent_and_not_longer_than_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let a = Activity::new(&dir.path().join("reading"));
        assert!(
            a.yield_for(QUIET, MAX_YIELD, || true) < POLL,
            "no read ever: no wait"
        );
        a.reading();
        let waited = a.yield_for(Duration::from_millis(200), MAX_YIELD, || true);
        assert!(
            waited >= Duration::from_millis(100),
            "a recent read holds the fill back: waited {waited:?}"
        );
        // Another process's mark counts the same (the file is shared).
        let other = Activity::new(&dir.path().join("reading"));
        other.reading();
        let bounded = a.yield_for(
            Duration::from_secs(3600),
            Duration::from_millis(150),
            || true,
        );
        assert!(
            bounded >= Duration::from_millis(150) && bounded < Duration::from_secs(2),
            "the wait is bounded: {bounded:?}"
        );
        // A stopping fill does not wait at all.
        other.reading();
        let stopped = a.yield_for(Duration::from_secs(3600), MAX_YIELD, || false);
        assert!(stopped < POLL, "waited {stopped:?} though told to stop");
    }

    #[test]
    fn a_yielding_reader_returns_every_byte_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let activity = Arc::new(Activity::new(&dir.path().join("reading")));
        let data: Vec<u8> = (0..(FILL_PIECE * 2 + 1234))
            .map(|i| (i % 251) as u8)
            .collect();
        let cancelled = Arc::new(AtomicBool::new(false));
        let mut r = Yielding::new(&data[..], activity, cancelled.clone());
        let mut buf = vec![0u8; FILL_PIECE + 100];
        let mut sizes = Vec::new();
        let mut out = Vec::new();
        loop {
            let n = r.read(&mut buf).unwrap();
            if n == 0 {
                break;
            }
            sizes.push(n);
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
        assert_eq!(
            sizes,
            [FILL_PIECE, FILL_PIECE, 1234],
            "no read crosses a piece"
        );

        let mut again = Yielding::new(&data[..], r.activity.clone(), cancelled.clone());
        assert_eq!(again.read(&mut buf).unwrap(), FILL_PIECE);
        cancelled.store(true, Ordering::SeqCst);
        let err = again.read(&mut buf).unwrap_err();
        assert!(err.to_string().contains("cancelled"), "{err}");
    }
}
