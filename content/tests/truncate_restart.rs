//! truncate(0) restarts an ingest; the rewritten bytes commit.

mod common;

use common::*;
use strata_content::Error;

#[test]
fn truncate_zero_restarts() {
    let (_tmp, store) = store();
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    w.write(b"garbage garbage").unwrap();
    w.truncate(0).unwrap();
    assert_eq!(w.offset(), 0);
    assert_eq!(w.digest(), digest_of(b""));
    w.write(b"good").unwrap();
    let d = w.commit(4, Some(&digest_of(b"good")), None).unwrap();
    assert_eq!(read_all(&store, VIEW, &d), b"good");
}

#[test]
fn truncate_after_resume_and_beyond_offset() {
    let (_tmp, store) = store();
    store.set_checkpoint_interval(64);
    let data = pattern(5_000);
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    w.write(&data).unwrap();
    drop(w);
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    assert_eq!(w.offset(), 5_000);
    assert!(matches!(w.truncate(6_000), Err(Error::InvalidArgument(_))));
    w.truncate(100).unwrap();
    assert_eq!(w.digest(), digest_of(&data[..100]));
    w.truncate(0).unwrap();
    w.write(&data).unwrap();
    drop(w);
    // The checkpoint written before the truncation must not be trusted on resume.
    let w = store.writer(VIEW, "r", 0, None).unwrap();
    assert_eq!(w.digest(), digest_of(&data));
}
