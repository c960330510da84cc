//! Several writers in parallel threads (as the server's spawn_blocking calls run them).

mod common;

use common::*;
use strata_content::{BlobReader, ContentStore, Writer};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn types_are_thread_safe() {
    assert_send_sync::<ContentStore>();
    assert_send_sync::<BlobReader>();
    assert_send_sync::<Writer>();
}

#[test]
fn four_writers_in_parallel() {
    let (_tmp, store) = store();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                let data = pattern(100_000 + i);
                let mut w = store.writer(VIEW, &format!("ref-{i}"), 0, None).unwrap();
                for chunk in data.chunks(32) {
                    w.write(chunk).unwrap();
                }
                let d = w.commit(data.len() as u64, None, None).unwrap();
                (d, data)
            })
        })
        .collect();
    for h in handles {
        let (d, data) = h.join().unwrap();
        assert_eq!(d, digest_of(&data));
        assert_eq!(read_all(&store, VIEW, &d), data);
    }
    assert_eq!(store.list(VIEW, &[]).unwrap().len(), 4);
}
