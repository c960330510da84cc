//! A commit with the wrong size or digest fails FailedPrecondition and keeps the ingest.

mod common;

use common::*;
use strata_content::Error;

#[test]
fn wrong_size_and_digest_keep_the_ingest() {
    let (_tmp, store) = store();
    let data = pattern(1_000);
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    w.write(&data).unwrap();
    let err = w.commit(1_004, None, None).unwrap_err();
    assert!(
        matches!(&err, Error::FailedPrecondition(m) if m == "unexpected commit size 1000, expected 1004")
    );
    drop(w);

    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    assert_eq!(w.offset(), 1_000);
    assert_eq!(w.digest(), digest_of(&data));
    let wrong = digest_of(b"other");
    let err = w.commit(1_000, Some(&wrong), None).unwrap_err();
    assert!(
        matches!(&err, Error::FailedPrecondition(m) if m.starts_with("unexpected commit digest"))
    );
    // The failed commit released the lock even though `w` is still alive.
    let mut w2 = store.writer(VIEW, "r", 0, None).unwrap();
    assert!(matches!(w.write(b"x"), Err(Error::FailedPrecondition(_))));
    drop(w);
    assert_eq!(w2.offset(), 1_000);

    w2.write(b"more").unwrap();
    let mut all = data.clone();
    all.extend_from_slice(b"more");
    let d = w2.commit(1_004, None, None).unwrap();
    assert_eq!(d, digest_of(&all));
    assert_eq!(read_all(&store, VIEW, &d), all);
}
