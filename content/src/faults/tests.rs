//! Each seam failed once: the operation reports the errno with the ref or digest, nothing is
//! half-visible, an earlier blob still reads back, and a retry after the fault completes.

use sha2::Digest as _;
use strata_core::digest::Digest;

use super::{Point, inject};
use crate::{ContentStore, Error};

const VIEW: &str = "v";

fn digest_of(data: &[u8]) -> Digest {
    Digest::sha256_from_bytes(&sha2::Sha256::digest(data).into())
}

/// Deterministic, non-repeating bytes.
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(131) as u8) ^ (i >> 8) as u8 ^ seed)
        .collect()
}

fn open() -> (tempfile::TempDir, ContentStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = ContentStore::open(tmp.path()).unwrap();
    (tmp, store)
}

/// Commits `data` under `r` (an acknowledged blob).
fn put(store: &ContentStore, r: &str, data: &[u8]) -> Digest {
    let mut w = store.writer(VIEW, r, data.len() as u64, None).unwrap();
    w.write(data).unwrap();
    w.commit(data.len() as u64, Some(&digest_of(data)), None)
        .unwrap()
}

/// The view's blob `d`, read back whole.
fn read(store: &ContentStore, d: &Digest) -> Vec<u8> {
    let r = store.reader(VIEW, d).unwrap();
    let buf = r.read_to_vec().unwrap();
    assert_eq!(buf.len() as u64, r.size());
    buf
}

/// The error is an Io error carrying `errno` whose message names `what`.
fn assert_io(err: Error, errno: i32, what: &str) {
    let msg = err.to_string();
    match err {
        Error::Io { source, .. } => assert_eq!(source.raw_os_error(), Some(errno), "{msg}"),
        other => panic!("expected an io error, got {other:?}"),
    }
    assert!(msg.contains(what), "{msg:?} does not name {what:?}");
}

/// Nothing of `d` is visible: no info, no reader, no file at the blob path.
fn assert_absent(store: &ContentStore, d: &Digest) {
    assert!(matches!(store.info(VIEW, d), Err(Error::NotFound(_))));
    assert!(matches!(store.reader(VIEW, d), Err(Error::NotFound(_))));
    let blob = store.inner.blob_path(d);
    assert!(!blob.exists(), "{} left at the final path", blob.display());
}

/// Resumes ref `r` at `offset`, writes the rest of `data` and commits it; then the blob and
/// the `earlier` one read back byte-identical.
fn resume_and_finish(store: &ContentStore, r: &str, data: &[u8], offset: u64, earlier: &[u8]) {
    let mut w = store.writer(VIEW, r, data.len() as u64, None).unwrap();
    assert_eq!(w.offset(), offset, "resumed at the durable offset");
    assert_eq!(w.digest(), digest_of(&data[..offset as usize]));
    w.write(&data[offset as usize..]).unwrap();
    let d = w
        .commit(data.len() as u64, Some(&digest_of(data)), None)
        .unwrap();
    assert_eq!(store.info(VIEW, &d).unwrap().size, data.len() as u64);
    assert_eq!(read(store, &d), data);
    assert_eq!(read(store, &digest_of(earlier)), earlier);
}

/// Regression: ENOSPC in the middle of a write left its first bytes in the file; Status (and a
/// resumed writer) counted them although the write had failed, and a commit right after the
/// failure renamed a file longer than the blob into place.
#[test]
fn ingest_write_enospc_keeps_the_acknowledged_offset() {
    let (_tmp, store) = open();
    let earlier = bytes(3000, 1);
    put(&store, "earlier", &earlier);
    let data = bytes(5000, 2);

    let mut w = store.writer(VIEW, "r", data.len() as u64, None).unwrap();
    w.write(&data[..1000]).unwrap();
    let _armed = inject(Point::IngestWrite, libc::ENOSPC);
    let err = w.write(&data[1000..3000]).unwrap_err();
    assert_io(err, libc::ENOSPC, "ref r at offset 1000");
    assert_eq!(w.offset(), 1000);
    assert_eq!(store.status(VIEW, "r").unwrap().offset, 1000, "status");
    assert_absent(&store, &digest_of(&data));
    drop(w);

    assert_eq!(store.status(VIEW, "r").unwrap().offset, 1000);
    resume_and_finish(&store, "r", &data, 1000, &earlier);
}

/// Regression: a commit whose fsync failed with EIO kept the whole ingest, and its next fsync
/// (after the kernel had dropped the failed pages) succeeded, so bytes that never reached the
/// disk could be committed. The ingest now rolls back to its last checkpoint.
#[test]
fn ingest_commit_fsync_eio_rolls_back_to_the_last_checkpoint() {
    let (_tmp, store) = open();
    store.set_checkpoint_interval(1024);
    let earlier = bytes(3000, 3);
    put(&store, "earlier", &earlier);
    let data = bytes(4000, 4);

    let mut w = store.writer(VIEW, "r", data.len() as u64, None).unwrap();
    for chunk in data.chunks(500) {
        w.write(chunk).unwrap();
    }
    let _armed = inject(Point::IngestSync, libc::EIO);
    let err = w.commit(data.len() as u64, None, None).unwrap_err();
    assert_io(
        err,
        libc::EIO,
        "syncing ingest of ref r (rolled back to offset",
    );
    assert_absent(&store, &digest_of(&data));

    let offset = store.status(VIEW, "r").unwrap().offset;
    assert!(offset > 0 && offset < 4000 && offset % 64 == 0, "{offset}");
    resume_and_finish(&store, "r", &data, offset, &earlier);
}

/// EIO on a checkpoint's fsync inside a write: the write fails and the ingest is back at its
/// previous checkpoint.
#[test]
fn ingest_checkpoint_fsync_eio_fails_the_write() {
    let (_tmp, store) = open();
    store.set_checkpoint_interval(1024);
    let earlier = bytes(100, 5);
    put(&store, "earlier", &earlier);
    let data = bytes(4000, 6);

    let mut w = store.writer(VIEW, "r", data.len() as u64, None).unwrap();
    w.write(&data[..1500]).unwrap();
    let _armed = inject(Point::IngestSync, libc::EIO);
    let err = w.write(&data[1500..2500]).unwrap_err();
    assert_io(err, libc::EIO, "ref r");
    let offset = w.offset();
    assert!(offset > 0 && offset <= 1500, "{offset}");
    assert_eq!(store.status(VIEW, "r").unwrap().offset, offset);
    drop(w);
    resume_and_finish(&store, "r", &data, offset, &earlier);
}

/// A failed rename into `blobs/` leaves the ingest whole: no blob, Status at the full
/// offset, and a retried commit succeeds.
#[test]
fn commit_rename_failure_keeps_the_ingest() {
    let (_tmp, store) = open();
    let earlier = bytes(3000, 7);
    put(&store, "earlier", &earlier);
    let data = bytes(5000, 8);
    let d = digest_of(&data);

    let mut w = store.writer(VIEW, "r", data.len() as u64, None).unwrap();
    w.write(&data).unwrap();
    let _armed = inject(Point::CommitRename, libc::ENOSPC);
    let err = w.commit(data.len() as u64, Some(&d), None).unwrap_err();
    assert_io(
        err,
        libc::ENOSPC,
        d.to_string().trim_start_matches("sha256:"),
    );
    assert_absent(&store, &d);
    assert_eq!(store.status(VIEW, "r").unwrap().offset, 5000);
    resume_and_finish(&store, "r", &data, 5000, &earlier);
}

/// Regression: when the directory fsync after the rename failed, the commit reported the
/// error but left the renamed blob at its final path without records, and the ingest lost
/// its data (Status 0, the whole blob to send again). The rename is now undone.
#[test]
fn commit_dir_fsync_failure_puts_the_blob_back() {
    let (_tmp, store) = open();
    let earlier = bytes(3000, 9);
    put(&store, "earlier", &earlier);
    let data = bytes(5000, 10);
    let d = digest_of(&data);

    let mut w = store.writer(VIEW, "r", data.len() as u64, None).unwrap();
    w.write(&data).unwrap();
    let _armed = inject(Point::CommitDirSync, libc::EIO);
    let err = w.commit(data.len() as u64, Some(&d), None).unwrap_err();
    assert_io(err, libc::EIO, "syncing");
    assert_absent(&store, &d);
    assert_eq!(store.status(VIEW, "r").unwrap().offset, 5000);
    resume_and_finish(&store, "r", &data, 5000, &earlier);
}
