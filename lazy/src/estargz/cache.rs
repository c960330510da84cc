//! A bounded cache of verified, decompressed chunks: a FUSE read asks for 128 KiB at a time,
//! while eStargz chunks are up to 4 MiB (the converter's default), so without it each chunk
//! would be fetched, inflated and hashed once per read that touches it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::{Error, Result};

/// Default budget: 64 MiB of decompressed chunks per layer.
pub const DEFAULT_BUDGET: usize = 64 << 20;

/// Chunks by their offset in the blob, evicted oldest-inserted-first (FIFO: reads of a layer
/// are mostly sequential; a hit does not reorder, which keeps a hit to one map lookup).
#[derive(Debug)]
pub struct ChunkCache {
    inner: Mutex<Inner>,
    budget: usize,
    /// Loads in progress, by blob offset: the kernel's readahead sends several 128 KiB reads
    /// of one chunk at once, and each would otherwise fetch, inflate and hash it.
    loading: Mutex<HashMap<u64, Slot>>,
}

/// One load in progress; holds its outcome for the reads that waited on it (a failure as its
/// message).
type Slot = Arc<Load>;

/// A load's outcome, once it is known.
type Outcome = Option<std::result::Result<Arc<Vec<u8>>, String>>;

/// A load in progress: its outcome (locked while it runs) and whether it is a read-ahead.
#[derive(Debug, Default)]
struct Load {
    outcome: Mutex<Outcome>,
    /// Started by [`ChunkCache::prefetch`]: its failure is not shared (the reads that waited
    /// on it load the chunk themselves).
    prefetch: bool,
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<u64, Arc<Vec<u8>>>,
    order: VecDeque<u64>,
    bytes: usize,
}

impl ChunkCache {
    /// A cache holding at most `budget` bytes (0 = no caching).
    pub fn new(budget: usize) -> Self {
        ChunkCache {
            inner: Mutex::new(Inner::default()),
            budget,
            loading: Mutex::new(HashMap::new()),
        }
    }

    pub fn get(&self, blob_offset: u64) -> Option<Arc<Vec<u8>>> {
        self.lock().map.get(&blob_offset).cloned()
    }

    /// Keeps `data` (already verified) for the chunk at `blob_offset`.
    pub fn put(&self, blob_offset: u64, data: Arc<Vec<u8>>) {
        if data.len() > self.budget {
            return;
        }
        let mut g = self.lock();
        if g.map.contains_key(&blob_offset) {
            return;
        }
        while g.bytes + data.len() > self.budget {
            let Some(old) = g.order.pop_front() else {
                break;
            };
            if let Some(d) = g.map.remove(&old) {
                g.bytes -= d.len();
            }
        }
        g.bytes += data.len();
        g.order.push_back(blob_offset);
        g.map.insert(blob_offset, data);
    }

    /// The chunk at `blob_offset`: from the cache, else from the one `load` running for it
    /// (waiting for it, and failing with it: readers of a chunk the registry cannot serve wait
    /// one timeout together, not one each in turn), else from `load`, kept. A read that comes
    /// after a failed load tries again; so does a read that waited on a read-ahead
    /// ([`ChunkCache::prefetch`]) that failed, once.
    pub fn get_or_load(
        &self,
        blob_offset: u64,
        load: impl FnOnce() -> Result<Arc<Vec<u8>>>,
    ) -> Result<Arc<Vec<u8>>> {
        let mut load = Some(load);
        let mut after_prefetch = false;
        loop {
            if let Some(data) = self.get(blob_offset) {
                return Ok(data);
            }
            let slot = self.loads().entry(blob_offset).or_default().clone();
            let mut loaded = slot.outcome.lock().unwrap_or_else(|p| p.into_inner());
            match loaded.as_ref() {
                Some(Ok(data)) => return Ok(data.clone()),
                Some(Err(_)) if slot.prefetch && !after_prefetch => {
                    after_prefetch = true;
                    continue;
                }
                Some(Err(e)) => {
                    return Err(Error::io(
                        format!("chunk at {blob_offset}"),
                        std::io::Error::other(e.clone()),
                    ));
                }
                None => {}
            }
            if let Some(data) = self.get(blob_offset) {
                return Ok(data);
            }
            let load = load.take().expect("a read loads at most once");
            return self.run(blob_offset, &slot, &mut loaded, load);
        }
    }

    /// Reads ahead: loads the chunk at `blob_offset` and keeps it, unless it is kept or being
    /// loaded already (it never waits for another load). Reads that come for the chunk while
    /// it loads wait for it and share its bytes; if it fails they load the chunk themselves
    /// (a failed read-ahead decides no read's outcome), and a later read tries again. Whether
    /// it loaded the chunk.
    pub fn prefetch(
        &self,
        blob_offset: u64,
        load: impl FnOnce() -> Result<Arc<Vec<u8>>>,
    ) -> Result<bool> {
        if self.get(blob_offset).is_some() {
            return Ok(false);
        }
        let slot = {
            let mut loads = self.loads();
            if loads.contains_key(&blob_offset) {
                return Ok(false);
            }
            let slot = Arc::new(Load {
                outcome: Mutex::new(None),
                prefetch: true,
            });
            loads.insert(blob_offset, slot.clone());
            slot
        };
        let mut loaded = slot.outcome.lock().unwrap_or_else(|p| p.into_inner());
        // A read that took the slot first has loaded it; or the chunk was kept meanwhile.
        if loaded.is_some() || self.get(blob_offset).is_some() {
            self.finish(blob_offset, &slot);
            return Ok(false);
        }
        self.run(blob_offset, &slot, &mut loaded, load)
            .map(|_| true)
    }

    /// Runs `load` for `slot` (whose outcome `loaded` is locked), keeps what it gives, records
    /// its outcome for the reads waiting on it and ends the slot.
    fn run(
        &self,
        blob_offset: u64,
        slot: &Slot,
        loaded: &mut Outcome,
        load: impl FnOnce() -> Result<Arc<Vec<u8>>>,
    ) -> Result<Arc<Vec<u8>>> {
        let res = load();
        *loaded = Some(match &res {
            Ok(data) => {
                self.put(blob_offset, data.clone());
                Ok(data.clone())
            }
            Err(e) => Err(e.to_string()),
        });
        self.finish(blob_offset, slot);
        res
    }

    /// Forgets `slot`, the load of the chunk at `blob_offset`, once it has an outcome.
    fn finish(&self, blob_offset: u64, slot: &Slot) {
        let mut loads = self.loads();
        if loads
            .get(&blob_offset)
            .is_some_and(|s| Arc::ptr_eq(s, slot))
        {
            loads.remove(&blob_offset);
        }
    }

    /// Whether the chunk at `blob_offset` is kept, or being loaded now.
    pub fn has_or_loads(&self, blob_offset: u64) -> bool {
        self.get(blob_offset).is_some() || self.loads().contains_key(&blob_offset)
    }

    /// The most bytes kept.
    pub fn budget(&self) -> usize {
        self.budget
    }

    fn loads(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Slot>> {
        self.loading.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_bounds_what_is_kept_and_the_oldest_go_first() {
        let c = ChunkCache::new(10);
        c.put(0, Arc::new(vec![0; 4]));
        c.put(4, Arc::new(vec![1; 4]));
        assert_eq!(c.bytes(), 8);
        c.put(8, Arc::new(vec![2; 4]));
        assert_eq!(c.bytes(), 8);
        assert!(c.get(0).is_none(), "the oldest is evicted");
        assert_eq!(c.get(4).unwrap()[0], 1);
        assert_eq!(c.get(8).unwrap()[0], 2);
        c.put(12, Arc::new(vec![3; 11]));
        assert!(c.get(12).is_none(), "a chunk over the budget is not kept");
        let off = ChunkCache::new(0);
        off.put(0, Arc::new(vec![1]));
        assert!(off.get(0).is_none());
    }

    /// Eight reads of one chunk at once, each with a load that takes 100 ms and succeeds or
    /// fails as `ok` says; returns how many loads ran and the results.
    fn eight_at_once(c: &ChunkCache, ok: bool) -> (usize, Vec<Result<Arc<Vec<u8>>>>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let loads = AtomicUsize::new(0);
        let start = std::sync::Barrier::new(8);
        let got = std::thread::scope(|s| {
            let readers: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        start.wait();
                        c.get_or_load(7, || {
                            loads.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            match ok {
                                true => Ok(Arc::new(vec![7; 16])),
                                false => Err(Error::Malformed("registry down".into())),
                            }
                        })
                    })
                })
                .collect();
            readers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        (loads.load(Ordering::SeqCst), got)
    }

    #[test]
    fn reads_of_one_chunk_at_once_load_it_once_even_with_no_budget() {
        for budget in [0, 1 << 20] {
            let c = ChunkCache::new(budget);
            let (loads, got) = eight_at_once(&c, true);
            assert_eq!(loads, 1, "budget {budget}");
            assert!(got.iter().all(|g| g.as_ref().unwrap()[0] == 7));
            assert!(c.loads().is_empty(), "no load left in progress");
        }
    }

    #[test]
    fn a_failed_load_fails_the_reads_that_waited_on_it_and_the_next_read_tries_again() {
        let c = ChunkCache::new(1 << 20);
        let t = std::time::Instant::now();
        let (loads, got) = eight_at_once(&c, false);
        assert_eq!(loads, 1, "the waiting reads share the failure");
        assert!(
            t.elapsed() < std::time::Duration::from_millis(700),
            "not one wait each"
        );
        for g in got {
            let e = g.unwrap_err().to_string();
            assert!(e.contains("registry down"), "{e}");
        }
        assert!(c.loads().is_empty());
        assert_eq!(c.get_or_load(7, || Ok(Arc::new(vec![1]))).unwrap()[0], 1);
    }

    /// A read-ahead that takes 100 ms and then does as `ok` says, with a read of the same chunk
    /// starting 30 ms into it (so it waits on the read-ahead) whose own load gives 9s; how many
    /// loads the read ran and what it got.
    fn read_during_read_ahead(c: &ChunkCache, ok: bool) -> (usize, Result<Arc<Vec<u8>>>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let loads = AtomicUsize::new(0);
        std::thread::scope(|s| {
            let ahead = s.spawn(|| {
                c.prefetch(7, || {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    match ok {
                        true => Ok(Arc::new(vec![7; 16])),
                        false => Err(Error::Malformed("registry hiccup".into())),
                    }
                })
            });
            std::thread::sleep(std::time::Duration::from_millis(30));
            let got = c.get_or_load(7, || {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(Arc::new(vec![9; 16]))
            });
            assert_eq!(ahead.join().unwrap().is_ok(), ok);
            (loads.load(Ordering::SeqCst), got)
        })
    }

    #[test]
    fn a_read_waits_for_a_read_ahead_of_its_chunk_and_shares_its_bytes() {
        let c = ChunkCache::new(1 << 20);
        let (loads, got) = read_during_read_ahead(&c, true);
        assert_eq!(loads, 0, "the read-ahead's bytes are used");
        assert_eq!(got.unwrap()[0], 7);
        assert!(c.loads().is_empty());
        assert!(c.has_or_loads(7));
        assert!(!c.prefetch(7, || panic!("kept already")).unwrap());
    }

    #[test]
    fn a_failed_read_ahead_fails_no_read() {
        let c = ChunkCache::new(1 << 20);
        let (loads, got) = read_during_read_ahead(&c, false);
        assert_eq!(loads, 1, "the waiting read loads the chunk itself");
        assert_eq!(got.unwrap()[0], 9);
        assert!(c.loads().is_empty());
        // Nothing of the failure stays: a later read-ahead and read of another chunk run.
        let e = c.prefetch(8, || Err(Error::Malformed("registry down".into())));
        assert!(e.unwrap_err().to_string().contains("registry down"));
        assert!(!c.has_or_loads(8));
        assert_eq!(c.get_or_load(8, || Ok(Arc::new(vec![8]))).unwrap()[0], 8);
    }

    #[test]
    fn a_read_ahead_never_waits_for_a_load_in_progress() {
        use std::sync::mpsc::channel;
        let c = ChunkCache::new(1 << 20);
        let (started_tx, started) = channel();
        let (release, released) = channel::<()>();
        std::thread::scope(|s| {
            // The read's load runs until the test releases it (or 10 s pass).
            let read = s.spawn(|| {
                c.get_or_load(7, move || {
                    started_tx.send(()).unwrap();
                    let _ = released.recv_timeout(std::time::Duration::from_secs(10));
                    Ok(Arc::new(vec![7]))
                })
            });
            started.recv().unwrap();
            assert!(!c.prefetch(7, || panic!("loaded by the read")).unwrap());
            // Had the read-ahead waited for the load, the load would have ended (timed out).
            assert!(
                !read.is_finished(),
                "the read-ahead waited for the read's load"
            );
            release.send(()).unwrap();
            assert_eq!(read.join().unwrap().unwrap()[0], 7);
        });
    }
}
