//! A Write message naming a digest the store already holds aborts the ingest and answers
//! AlreadyExists — also while another client keeps trying to open the same ref. Regression: the
//! stream released its ref before aborting, so a racing writer could take the ref in between
//! and the abort failed with Unavailable (or the racer's ingest was the one removed).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use tonic::Code;

const ROUNDS: usize = 150;
const RACERS: usize = 2;

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_digest_is_already_exists_under_a_racing_writer() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut c = p.content().await;
    let d = put(&mut c, "present", b"already here").await;
    let mut racers = Vec::new();
    for _ in 0..RACERS {
        racers.push(p.content().await);
    }
    let mut taken = 0;
    for round in 0..ROUNDS {
        let r = format!("ref-{round}");
        let (mut w, _) = WriteStream::open(&mut c, stat(&r, 0, "")).await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let tasks: Vec<_> = racers
            .iter()
            .cloned()
            .map(|mut rc| {
                let (r, stop) = (r.clone(), stop.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match WriteStream::open(&mut rc, stat(&r, 0, "")).await {
                            // The ref came free: this racer holds it now (until dropped).
                            Ok(held) => return Some(held),
                            Err(e) => assert_eq!(e.code(), Code::Unavailable, "racer: {e}"),
                        }
                    }
                    None
                })
            })
            .collect();
        tokio::task::yield_now().await;
        let res = w.send(stat(&r, 0, &d)).await;
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            taken += usize::from(t.await.unwrap().is_some());
        }
        let e = res.expect_err("a Write naming an existing digest fails");
        assert_eq!(
            e.code(),
            Code::AlreadyExists,
            "round {round}: {e} (a racer took the ref in between)"
        );
    }
    println!("{ROUNDS} rounds; racers got the freed ref {taken} times");
}
