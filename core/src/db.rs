//! The single RocksDB under a Strata root. Each crate names the column families it uses
//! (`strata_content::COLUMN_FAMILIES`, `strata_snapshotters::COLUMN_FAMILIES`); the daemon opens
//! one database with all of them.

use std::path::Path;
use std::sync::Arc;

pub use rocksdb;

/// Opens (creating if missing) the database at `path` with every column family in `cfs`.
/// Column families that exist on disk but are not named are opened too, so an older binary
/// never refuses a newer root.
pub fn open(path: &Path, cfs: &[&str]) -> Result<Arc<rocksdb::DB>, rocksdb::Error> {
    let mut opts = rocksdb::Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    let mut names: Vec<String> = cfs.iter().map(|s| s.to_string()).collect();
    if let Ok(existing) = rocksdb::DB::list_cf(&opts, path) {
        for name in existing {
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    names.retain(|n| n != rocksdb::DEFAULT_COLUMN_FAMILY_NAME);
    let db = rocksdb::DB::open_cf(&opts, path, names)?;
    Ok(Arc::new(db))
}

/// Write options for every mutation: the WAL is synced before the call returns, so a reply sent
/// after it survives kill -9 and power loss.
pub fn sync_write() -> rocksdb::WriteOptions {
    let mut w = rocksdb::WriteOptions::default();
    w.set_sync(true);
    w
}

/// Read options bounding an iterator to keys that start with `prefix`. Without an upper bound a
/// prefix scan keeps stepping over the tombstones of deleted keys after the prefix until it
/// meets a live key: after many deletes that turns a point lookup into a long scan.
pub fn prefix_bounds(prefix: &[u8]) -> rocksdb::ReadOptions {
    let mut opts = rocksdb::ReadOptions::default();
    opts.set_iterate_lower_bound(prefix.to_vec());
    if let Some(end) = prefix_successor(prefix) {
        opts.set_iterate_upper_bound(end);
    }
    opts
}

/// The smallest key greater than every key starting with `prefix` (none for all-0xff).
fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_successor_increments_the_last_byte_that_can() {
        assert_eq!(prefix_successor(b"a\0"), Some(b"a\x01".to_vec()));
        assert_eq!(prefix_successor(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_successor(b"\xff\xff"), None);
    }

    #[test]
    fn bounded_scans_see_only_their_prefix_after_many_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let db = open(&dir.path().join("db"), &["t"]).unwrap();
        let cf = db.cf_handle("t").unwrap();
        for i in 0..1000u32 {
            db.put_cf(cf, format!("b\0{i:04}"), b"x").unwrap();
            db.delete_cf(cf, format!("b\0{i:04}")).unwrap();
        }
        db.put_cf(cf, b"a\0k", b"v").unwrap();
        db.put_cf(cf, b"c\0k", b"v").unwrap();
        let keys = |p: &[u8]| -> Vec<Box<[u8]>> {
            db.iterator_cf_opt(cf, prefix_bounds(p), rocksdb::IteratorMode::Start)
                .map(|r| r.unwrap().0)
                .collect()
        };
        assert_eq!(keys(b"a\0"), vec![b"a\0k".to_vec().into_boxed_slice()]);
        assert!(keys(b"b\0").is_empty());
        assert_eq!(keys(b"c\0").len(), 1);
    }
}
