//! Update replaces or patches labels like containerd, keeping created_at.

mod common;

use std::time::SystemTime;

use common::*;
use strata_content::Error;

#[test]
fn update_replaces_and_patches() {
    let (_tmp, store) = store();
    let mut w = store.writer(VIEW, "r", 0, None).unwrap();
    w.write(b"data").unwrap();
    let d = w
        .commit(0, None, Some(&labels(&[("k1", "v1"), ("k2", "v2")])))
        .unwrap();
    let created = store.info(VIEW, &d).unwrap().created_at;

    let pre = SystemTime::now();
    let info = store
        .update(VIEW, &d, &labels(&[("k3", "v3")]), &[])
        .unwrap();
    assert_eq!(info.labels, labels(&[("k3", "v3")]));
    assert_eq!(info.created_at, created);
    assert!(info.updated_at >= pre);

    let paths = ["labels.k3".to_string(), "labels.k1".to_string()];
    let info = store
        .update(
            VIEW,
            &d,
            &labels(&[("k1", "new"), ("k2", "ignored")]),
            &paths,
        )
        .unwrap();
    assert_eq!(info.labels, labels(&[("k1", "new")]));
    assert_eq!(store.info(VIEW, &d).unwrap(), info);

    let bad = store
        .update(VIEW, &d, &labels(&[]), &["size".to_string()])
        .unwrap_err();
    assert!(
        matches!(&bad, Error::InvalidArgument(m) if m.contains("\"size\"")),
        "{bad}"
    );
    let missing = digest_of(b"missing");
    assert!(matches!(
        store.update(VIEW, &missing, &labels(&[]), &[]),
        Err(Error::NotFound(_))
    ));
}
