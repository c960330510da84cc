//! An ingest survives dropping the store and resumes at its offset with the same digest,
//! re-hashing only the bytes after the last checkpoint.

mod common;

use std::sync::Arc;

use common::*;
use strata_content::{COLUMN_FAMILIES, ContentStore};

#[test]
fn resume_after_reopen_keeps_offset_digest_and_times() {
    let tmp = tempfile::tempdir().unwrap();
    let data = pattern(100_000);
    let before = {
        let store = ContentStore::open(tmp.path()).unwrap();
        store.set_checkpoint_interval(4_096);
        let mut w = store.writer(VIEW, "r", 100_000, None).unwrap();
        w.write(&data[..60_001]).unwrap();
        w.status()
    };
    let store = ContentStore::open(tmp.path()).unwrap();
    let st = store.status(VIEW, "r").unwrap();
    assert_eq!(st, before);
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    assert_eq!(w.status(), before);
    assert_eq!(w.offset(), 60_001);
    assert_eq!(w.digest(), digest_of(&data[..60_001]));
    // Drop checkpointed at the last block boundary (60_000 = 937 * 64 + 32).
    assert_eq!(w.rehashed_on_open(), 60_001 - 59_968);
    w.write(&data[60_001..]).unwrap();
    let d = w.commit(100_000, Some(&digest_of(&data)), None).unwrap();
    assert_eq!(read_all(&store, VIEW, &d), data);
}

#[test]
fn resume_after_crash_uses_periodic_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let db = strata_core::db::open(&tmp.path().join("db"), COLUMN_FAMILIES).unwrap();
    let dir = tmp.path().join("content");
    let data = pattern(200_000);
    let store = ContentStore::new(Arc::clone(&db), dir.clone()).unwrap();
    store.set_checkpoint_interval(65_536);
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    for chunk in data[..150_000].chunks(10_000) {
        w.write(chunk).unwrap();
    }
    // A crash: no Drop, so only the periodic checkpoints were persisted: the first after the
    // write ending at 70_000 (block boundary 69_952), the second at 140_000 (139_968).
    std::mem::forget(w);

    let store = ContentStore::new(Arc::clone(&db), dir).unwrap();
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    assert_eq!(w.offset(), 150_000);
    assert_eq!(w.digest(), digest_of(&data[..150_000]));
    assert_eq!(w.rehashed_on_open(), 150_000 - 139_968);
    w.write(&data[150_000..]).unwrap();
    assert_eq!(w.commit(0, None, None).unwrap(), digest_of(&data));
}

#[test]
fn checkpoint_beyond_file_falls_back_to_full_rehash() {
    let tmp = tempfile::tempdir().unwrap();
    let data = pattern(50_000);
    {
        let store = ContentStore::open(tmp.path()).unwrap();
        store.set_checkpoint_interval(1_024);
        let mut w = store.writer(VIEW, "r", 0, None).unwrap();
        w.write(&data).unwrap();
    }
    // Simulate lost data: cut the ingest file below the checkpoint.
    let ingest = std::fs::read_dir(tmp.path().join("content/ingest"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(ingest.path().join("data"))
        .unwrap();
    file.set_len(10_000).unwrap();
    drop(file);

    let store = ContentStore::open(tmp.path()).unwrap();
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    assert_eq!(w.offset(), 10_000);
    assert_eq!(w.rehashed_on_open(), 10_000);
    assert_eq!(w.digest(), digest_of(&data[..10_000]));
    w.write(&data[10_000..]).unwrap();
    drop(w);
    let w = store.writer(VIEW, "r", 0, None).unwrap();
    assert_eq!(w.digest(), digest_of(&data));
}

#[test]
fn large_ingest_checkpoints_at_default_interval() {
    let tmp = tempfile::tempdir().unwrap();
    let db = strata_core::db::open(&tmp.path().join("db"), COLUMN_FAMILIES).unwrap();
    let dir = tmp.path().join("content");
    let chunk = pattern(1 << 20);
    let mut all = sha2::Sha256::default();
    let store = ContentStore::new(Arc::clone(&db), dir.clone()).unwrap();
    let mut w = store.writer(VIEW, "big", 0, None).unwrap();
    for _ in 0..70 {
        w.write(&chunk).unwrap();
        sha2::Digest::update(&mut all, &chunk);
    }
    std::mem::forget(w);

    let store = ContentStore::new(db, dir).unwrap();
    let w = store.writer(VIEW, "big", 0, None).unwrap();
    assert_eq!(w.offset(), 70 << 20);
    assert_eq!(w.rehashed_on_open(), 6 << 20);
    let expected =
        strata_core::digest::Digest::sha256_from_bytes(&sha2::Digest::finalize(all).into());
    assert_eq!(w.digest(), expected);
}

#[test]
fn different_total_recreates_ingest() {
    let (_tmp, store) = store();
    let mut w = store.writer(VIEW, "r", 10, None).unwrap();
    w.write(b"abc").unwrap();
    drop(w);
    let w = store.writer(VIEW, "r", 20, None).unwrap();
    assert_eq!((w.offset(), w.status().total), (0, 20));
}

/// A transport that acknowledged bytes before writing them dates the ingest at the
/// acknowledgment, and the date survives a reopen.
#[test]
fn bytes_written_after_their_acknowledgment_keep_its_time() {
    let tmp = tempfile::tempdir().unwrap();
    let data = pattern(10_000);
    let accepted = std::time::SystemTime::now() - std::time::Duration::from_secs(5);
    {
        let store = ContentStore::open(tmp.path()).unwrap();
        let mut w = store.writer(VIEW, "r", 10_000, None).unwrap();
        w.write_accepted(&data, accepted).unwrap();
        assert_eq!(w.status().updated_at, accepted);
        assert_eq!(w.digest(), digest_of(&data));
    }
    let store = ContentStore::open(tmp.path()).unwrap();
    let st = store.status(VIEW, "r").unwrap();
    assert_eq!((st.offset, st.updated_at), (10_000, accepted));
}
