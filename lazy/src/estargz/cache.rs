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
}
