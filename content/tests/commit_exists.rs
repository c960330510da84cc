//! Committing bytes the view already holds is AlreadyExists and drops the ingest.

mod common;

use common::*;
use strata_content::Error;

#[test]
fn commit_of_held_digest_drops_ingest() {
    let (_tmp, store) = store();
    let d = put(&store, VIEW, "first", b"same bytes");
    for (r, expected) in [("second", Some(&d)), ("third", None)] {
        let mut w = store.writer(VIEW, r, 0, None).unwrap();
        w.write(b"same bytes").unwrap();
        let err = w.commit(10, expected, None).unwrap_err();
        assert!(
            matches!(&err, Error::AlreadyExists(m) if m.contains(&d.to_string())),
            "{err}"
        );
        drop(w);
        assert!(matches!(store.status(VIEW, r), Err(Error::NotFound(_))));
        // The ref is free and starts over.
        assert_eq!(store.writer(VIEW, r, 0, None).unwrap().offset(), 0);
    }
    assert_eq!(read_all(&store, VIEW, &d), b"same bytes");
}

#[test]
fn writer_with_held_expected_is_already_exists() {
    let (_tmp, store) = store();
    let d = put(&store, VIEW, "first", b"abc");
    let err = store.writer(VIEW, "again", 3, Some(d.clone())).unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists(m) if *m == format!("content {d}: already exists"))
    );
    // Another view does not hold it yet.
    assert!(store.writer("other", "again", 3, Some(d)).is_ok());
}
