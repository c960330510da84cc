//! Records kept as JSON in a column family, keyed by NUL-joined parts (`ns \0 name`).

use std::sync::Arc;

use rocksdb::{DB, IteratorMode, WriteBatch};
use serde::Serialize;
use serde::de::DeserializeOwned;
use strata_core::db::{prefix_bounds, sync_write};

use crate::error::corrupt;
use crate::{Error, Result};

/// `a \0 b \0 ...`.
pub(crate) fn key(parts: &[&str]) -> Vec<u8> {
    let mut k = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(p.as_bytes());
    }
    k
}

/// `a \0 b \0 ... \0`: the prefix of every key under these parts.
pub(crate) fn prefix(parts: &[&str]) -> Vec<u8> {
    let mut k = key(parts);
    k.push(0);
    k
}

/// One column family of JSON records.
#[derive(Clone)]
pub(crate) struct Table {
    db: Arc<DB>,
    cf: &'static str,
    what: &'static str,
}

impl Table {
    pub fn new(db: Arc<DB>, cf: &'static str, what: &'static str) -> Table {
        Table { db, cf, what }
    }

    fn handle(&self) -> Result<&rocksdb::ColumnFamily> {
        self.db
            .cf_handle(self.cf)
            .ok_or_else(|| Error::Internal(format!("column family {} missing", self.cf)))
    }

    pub fn get<T: DeserializeOwned>(&self, k: &[u8]) -> Result<Option<T>> {
        match self.db.get_pinned_cf(self.handle()?, k)? {
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| corrupt(self.what, k, e)),
            None => Ok(None),
        }
    }

    pub fn put<T: Serialize>(&self, k: &[u8], v: &T) -> Result<()> {
        let mut b = WriteBatch::default();
        self.batch_put(&mut b, k, v)?;
        self.write(b)
    }

    pub fn delete(&self, k: &[u8]) -> Result<()> {
        let mut b = WriteBatch::default();
        self.batch_delete(&mut b, k)?;
        self.write(b)
    }

    pub fn batch_put<T: Serialize>(&self, b: &mut WriteBatch, k: &[u8], v: &T) -> Result<()> {
        let bytes = serde_json::to_vec(v).expect("records serialise");
        b.put_cf(self.handle()?, k, bytes);
        Ok(())
    }

    pub fn batch_delete(&self, b: &mut WriteBatch, k: &[u8]) -> Result<()> {
        b.delete_cf(self.handle()?, k);
        Ok(())
    }

    /// Writes a batch durably (the WAL is synced before it returns).
    pub fn write(&self, b: WriteBatch) -> Result<()> {
        self.db.write_opt(b, &sync_write())?;
        Ok(())
    }

    /// Every record whose key starts with `prefix`, with the rest of its key.
    pub fn scan<T: DeserializeOwned>(&self, prefix: &[u8]) -> Result<Vec<(String, T)>> {
        let mut out = Vec::new();
        for (k, v) in self.raw_scan(prefix)? {
            let rec = serde_json::from_slice(&v).map_err(|e| corrupt(self.what, &k, e))?;
            out.push((
                String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                rec,
            ));
        }
        Ok(out)
    }

    /// Every key (whole) starting with `prefix`.
    pub fn keys(&self, prefix: &[u8]) -> Result<Vec<Vec<u8>>> {
        Ok(self.raw_scan(prefix)?.into_iter().map(|(k, _)| k).collect())
    }

    /// Whether any key starts with `prefix`.
    pub fn any(&self, prefix: &[u8]) -> Result<bool> {
        let mut it =
            self.db
                .iterator_cf_opt(self.handle()?, prefix_bounds(prefix), IteratorMode::Start);
        match it.next() {
            Some(item) => Ok(item?.0.starts_with(prefix)),
            None => Ok(false),
        }
    }

    fn raw_scan(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Box<[u8]>)>> {
        let mut out = Vec::new();
        let it =
            self.db
                .iterator_cf_opt(self.handle()?, prefix_bounds(prefix), IteratorMode::Start);
        for item in it {
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_prefixes_are_nul_joined() {
        assert_eq!(key(&["ns", "img"]), b"ns\0img");
        assert_eq!(prefix(&["ns"]), b"ns\0");
        assert!(key(&["ns", "x"]).starts_with(&prefix(&["ns"])));
        assert!(!key(&["ns2", "x"]).starts_with(&prefix(&["ns"])));
    }
}
