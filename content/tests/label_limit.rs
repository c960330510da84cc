//! Labels whose key and value exceed 4096 bytes are rejected at commit and update.

mod common;

use common::*;
use strata_content::Error;

#[test]
fn oversized_labels_are_invalid() {
    let (_tmp, store) = store();
    let big = labels(&[("key", &"v".repeat(4096))]);
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    w.write(b"data").unwrap();
    assert!(matches!(
        w.commit(0, None, Some(&big)),
        Err(Error::InvalidArgument(_))
    ));
    // The writer is still usable after a label rejection.
    let ok = labels(&[("key", &"v".repeat(4093))]);
    let d = w.commit(0, None, Some(&ok)).unwrap();
    assert!(matches!(
        store.update(VIEW, &d, &big, &[]),
        Err(Error::InvalidArgument(_))
    ));
    assert_eq!(store.info(VIEW, &d).unwrap().labels, ok);
}
