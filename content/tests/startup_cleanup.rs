//! Opening the store removes crash leftovers: unrecorded ingest dirs and unheld blobs.

mod common;

use common::*;
use strata_content::ContentStore;

#[test]
fn leftovers_are_removed_and_live_state_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let d = {
        let store = ContentStore::open(tmp.path()).unwrap();
        let mut w = store.writer(VIEW, "live", 0, None).unwrap();
        w.write(b"keep").unwrap();
        put(&store, VIEW, "r", b"held")
    };
    let content = tmp.path().join("content");
    std::fs::create_dir_all(content.join("ingest/deadbeef")).unwrap();
    std::fs::write(content.join("ingest/deadbeef/data"), b"junk").unwrap();
    let orphan = digest_of(b"orphan");
    std::fs::write(content.join("blobs/sha256").join(orphan.hex()), b"orphan").unwrap();

    let store = ContentStore::open(tmp.path()).unwrap();
    assert!(!content.join("ingest/deadbeef").exists());
    assert!(!content.join("blobs/sha256").join(orphan.hex()).exists());
    assert_eq!(read_all(&store, VIEW, &d), b"held");
    assert_eq!(store.status(VIEW, "live").unwrap().offset, 4);
}
