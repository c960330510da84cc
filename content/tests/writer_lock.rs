//! A ref is locked while a writer lives; abort respects the lock.

mod common;

use common::*;
use strata_content::Error;

#[test]
fn second_writer_is_unavailable_until_drop() {
    let (_tmp, store) = store();
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    w.write(b"abc").unwrap();
    let err = store.writer(VIEW, "r", 0, None).unwrap_err();
    assert!(matches!(&err, Error::Unavailable(m) if m == "ref r locked"));
    assert!(matches!(store.abort(VIEW, "r"), Err(Error::Unavailable(_))));
    // Same ref in another view is independent.
    drop(store.writer("other", "r", 0, None).unwrap());
    drop(w);
    let w = store.writer(VIEW, "r", 0, None).unwrap();
    assert_eq!(w.offset(), 3);
}

#[test]
fn abort_removes_ingest_and_is_ok_when_missing() {
    let (_tmp, store) = store();
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    w.write(b"abc").unwrap();
    drop(w);
    store.abort(VIEW, "r").unwrap();
    assert!(matches!(store.status(VIEW, "r"), Err(Error::NotFound(_))));
    store.abort(VIEW, "r").unwrap();
    assert_eq!(store.writer(VIEW, "r", 0, None).unwrap().offset(), 0);
}

#[test]
fn commit_releases_the_lock() {
    let (_tmp, store) = store();
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    w.write(b"abc").unwrap();
    w.commit(0, None, None).unwrap();
    let w2 = store.writer(VIEW, "r", 0, None).unwrap();
    assert_eq!(w2.offset(), 0);
}
