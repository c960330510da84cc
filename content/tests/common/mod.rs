//! Helpers shared by the integration tests: a store in a tempdir and digests of byte strings.
#![allow(dead_code)]

use sha2::Digest as _;
use strata_content::ContentStore;
use strata_core::digest::Digest;
use strata_core::labels::Labels;

pub const VIEW: &str = strata_core::PROXY_VIEW;

pub fn store() -> (tempfile::TempDir, ContentStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    (tmp, store)
}

pub fn digest_of(data: &[u8]) -> Digest {
    Digest::sha256_from_bytes(&sha2::Sha256::digest(data).into())
}

pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// Writes and commits `data` under `r` in `view`.
pub fn put(store: &ContentStore, view: &str, r: &str, data: &[u8]) -> Digest {
    let mut w = store.writer(view, r, data.len() as u64, None).unwrap();
    w.write(data).unwrap();
    w.commit(data.len() as u64, Some(&digest_of(data)), None)
        .unwrap()
}

/// Reads the whole blob `d` as `view` sees it.
pub fn read_all(store: &ContentStore, view: &str, d: &Digest) -> Vec<u8> {
    let r = store.reader(view, d).unwrap();
    let buf = r.read_to_vec().unwrap();
    assert_eq!(buf.len() as u64, r.size());
    buf
}
