//! Two views hold one blob: bytes stay until the last holder deletes it.

mod common;

use common::*;
use strata_content::Error;

#[test]
fn delete_through_both_views_removes_the_file() {
    let (tmp, store) = store();
    let d = put(&store, "one", "r", b"shared bytes");
    let mut w = store.writer("two", "r", 0, None).unwrap();
    w.write(b"shared bytes").unwrap();
    assert_eq!(
        w.commit(0, Some(&d), Some(&labels(&[("v", "two")])))
            .unwrap(),
        d
    );
    assert!(store.info("one", &d).unwrap().labels.is_empty());
    assert_eq!(
        store.info("two", &d).unwrap().labels,
        labels(&[("v", "two")])
    );
    let blob = tmp.path().join("content/blobs/sha256").join(d.hex());
    assert!(blob.exists());

    store.delete("one", &d).unwrap();
    assert!(matches!(store.info("one", &d), Err(Error::NotFound(_))));
    assert!(matches!(store.delete("one", &d), Err(Error::NotFound(_))));
    assert_eq!(read_all(&store, "two", &d), b"shared bytes");
    assert!(blob.exists());

    store.delete("two", &d).unwrap();
    assert!(!blob.exists());
    assert!(matches!(store.reader("two", &d), Err(Error::NotFound(_))));
    // Leftover ingest directories are empty once both commits are done.
    assert_eq!(
        std::fs::read_dir(tmp.path().join("content/ingest"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn reader_open_before_delete_keeps_reading() {
    let (_tmp, store) = store();
    let d = put(&store, VIEW, "r", b"bytes");
    let r = store.reader(VIEW, &d).unwrap();
    store.delete(VIEW, &d).unwrap();
    let mut buf = [0u8; 5];
    assert_eq!(r.read_at(0, &mut buf).unwrap(), 5);
    assert_eq!(&buf, b"bytes");
}
