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
