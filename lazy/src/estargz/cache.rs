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
type Slot = Arc<Mutex<Option<std::result::Result<Arc<Vec<u8>>, String>>>>;

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
    /// after a failed load tries again.
    pub fn get_or_load(
        &self,
        blob_offset: u64,
        load: impl FnOnce() -> Result<Arc<Vec<u8>>>,
    ) -> Result<Arc<Vec<u8>>> {
        if let Some(data) = self.get(blob_offset) {
            return Ok(data);
        }
        let slot = self.loads().entry(blob_offset).or_default().clone();
        let mut loaded = slot.lock().unwrap_or_else(|p| p.into_inner());
        match loaded.as_ref() {
            Some(Ok(data)) => return Ok(data.clone()),
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
        let res = load();
        *loaded = Some(match &res {
            Ok(data) => {
                self.put(blob_offset, data.clone());
                Ok(data.clone())
            }
            Err(e) => Err(e.to_string()),
        });
        let mut loads = self.loads();
        if loads
            .get(&blob_offset)
            .is_some_and(|s| Arc::ptr_eq(s, &slot))
        {
            loads.remove(&blob_offset);
        }
        res
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
}
