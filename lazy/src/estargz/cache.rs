//! A bounded cache of verified, decompressed chunks: a FUSE read asks for 128 KiB at a time,
//! while eStargz chunks are up to 4 MiB (the converter's default), so without it each chunk
//! would be fetched, inflated and hashed once per read that touches it.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

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

/// One load in progress; holds the loaded chunk for the reads that waited on it.
type Slot = Arc<Mutex<Option<Arc<Vec<u8>>>>>;

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
    /// (waiting for it), else from `load`, kept. A failed load is not shared: each waiting read
    /// tries again.
    pub fn get_or_load<E>(
        &self,
        blob_offset: u64,
        load: impl FnOnce() -> Result<Arc<Vec<u8>>, E>,
    ) -> Result<Arc<Vec<u8>>, E> {
        if let Some(data) = self.get(blob_offset) {
            return Ok(data);
        }
        let slot = self.loads().entry(blob_offset).or_default().clone();
        let mut loaded = slot.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(data) = loaded.as_ref().cloned().or_else(|| self.get(blob_offset)) {
            return Ok(data);
        }
        let res = load();
        if let Ok(data) = &res {
            self.put(blob_offset, data.clone());
            *loaded = Some(data.clone());
        }
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

    #[test]
    fn reads_of_one_chunk_at_once_load_it_once_even_with_no_budget() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        for budget in [0, 1 << 20] {
            let c = ChunkCache::new(budget);
            let loads = AtomicUsize::new(0);
            let start = std::sync::Barrier::new(8);
            std::thread::scope(|s| {
                for _ in 0..8 {
                    s.spawn(|| {
                        start.wait();
                        let got = c.get_or_load(7, || {
                            loads.fetch_add(1, Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(100));
                            Ok::<_, ()>(Arc::new(vec![7; 16]))
                        });
                        assert_eq!(got.unwrap()[0], 7);
                    });
                }
            });
            assert_eq!(loads.load(Ordering::SeqCst), 1, "budget {budget}");
            assert!(c.loads().is_empty(), "no load left in progress");
        }
        let c = ChunkCache::new(1 << 20);
        assert_eq!(
            c.get_or_load(1, || Err::<Arc<Vec<u8>>, _>("down")),
            Err("down")
        );
        assert_eq!(
            c.get_or_load(1, || Ok::<_, ()>(Arc::new(vec![1]))).unwrap()[0],
            1
        );
    }
}
