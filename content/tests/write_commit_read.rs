//! A blob written in chunks, committed with labels, then described and read back.

mod common;

use std::time::SystemTime;

use common::*;
use strata_content::Error;

#[test]
fn write_commit_info_read() {
    let (_tmp, store) = store();
    let data = pattern(10_000);
    let before_open = SystemTime::now();
    let mut w = store.writer(VIEW, "ref1", data.len() as u64, None).unwrap();
    let st = w.status();
    assert_eq!(
        (st.reference.as_str(), st.offset, st.total),
        ("ref1", 0, 10_000)
    );
    assert!(st.started_at >= before_open && st.started_at == st.updated_at);
    assert_eq!(
        w.digest().to_string(),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    for chunk in data.chunks(32) {
        w.write(chunk).unwrap();
        assert_eq!(w.digest(), digest_of(&data[..w.offset() as usize]));
    }
    assert_eq!(store.status(VIEW, "ref1").unwrap().offset, 10_000);

    let pre = SystemTime::now();
    let l = labels(&[
        ("containerd.io/gc.root", "2024-01-01T00:00:00Z"),
        ("empty", ""),
    ]);
    let d = w.commit(0, None, Some(&l)).unwrap();
    let post = SystemTime::now();
    assert_eq!(d, digest_of(&data));

    let info = store.info(VIEW, &d).unwrap();
    assert_eq!(info.size, 10_000);
    assert_eq!(
        info.labels,
        labels(&[("containerd.io/gc.root", "2024-01-01T00:00:00Z")])
    );
    assert!(info.created_at >= pre && info.created_at <= post);
    assert_eq!(info.created_at, info.updated_at);

    assert_eq!(read_all(&store, VIEW, &d), data);
    let r = store.reader(VIEW, &d).unwrap();
    let mut buf = [0u8; 100];
    assert_eq!(r.read_at(9_950, &mut buf).unwrap(), 50);
    assert_eq!(&buf[..50], &data[9_950..]);
    assert_eq!(r.read_at(10_000, &mut buf).unwrap(), 0);

    assert!(matches!(
        store.status(VIEW, "ref1"),
        Err(Error::NotFound(_))
    ));
    assert!(store.list_statuses(VIEW, &[]).unwrap().is_empty());
    assert!(matches!(store.info("other", &d), Err(Error::NotFound(_))));
}

#[test]
fn empty_ref_is_invalid() {
    let (_tmp, store) = store();
    assert!(matches!(
        store.writer(VIEW, "", 0, None),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn empty_blob_commits() {
    let (_tmp, store) = store();
    let mut w = store.writer(VIEW, "empty", 0, None).unwrap();
    let d = w.commit(0, Some(&digest_of(b"")), None).unwrap();
    assert_eq!(store.info(VIEW, &d).unwrap().size, 0);
    assert!(read_all(&store, VIEW, &d).is_empty());
}

#[test]
fn committed_blob_survives_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let d = {
        let store = strata_content::ContentStore::open(tmp.path()).unwrap();
        put(&store, VIEW, "r", b"hello world")
    };
    let store = strata_content::ContentStore::open(tmp.path()).unwrap();
    assert_eq!(read_all(&store, VIEW, &d), b"hello world");
}
