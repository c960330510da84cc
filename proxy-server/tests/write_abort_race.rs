//! A Write message naming a digest the store already holds aborts the ingest and answers
//! AlreadyExists — also while another client keeps trying to open the same ref. Regression: the
//! stream released its ref before aborting, so a racing writer could take the ref in between
//! and the abort failed with Unavailable (or the racer's ingest was the one removed).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use strata_proxy::api::content::content_client::ContentClient;
use tonic::Code;
use tonic::transport::Channel;

const ROUNDS: usize = 150;
const RACERS: usize = 2;
/// Rounds run in this many groups at once, each on refs of its own: a racer that finds its ref
/// locked waits up to a second in the daemon before it hears Unavailable, so one round takes
/// about half a second, mostly waiting.
const GROUPS: usize = 6;

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_digest_is_already_exists_under_a_racing_writer() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut c = p.content().await;
    let d = put(&mut c, "present", b"already here").await;
    let mut groups = Vec::new();
    for g in 0..GROUPS {
        let mut racers = Vec::new();
        for _ in 0..RACERS {
            racers.push(p.content().await);
        }
        let rounds: Vec<usize> = (g..ROUNDS).step_by(GROUPS).collect();
        groups.push(tokio::spawn(race(
            p.content().await,
            racers,
            d.clone(),
            rounds,
        )));
    }
    let mut taken = 0;
    for g in groups {
        taken += g.await.unwrap();
    }
    println!("{ROUNDS} rounds; racers got the freed ref {taken} times");
}

/// Runs `rounds`, each on a ref of its own; returns how often a racer got the freed ref.
async fn race(
    mut c: ContentClient<Channel>,
    racers: Vec<ContentClient<Channel>>,
    d: String,
    rounds: Vec<usize>,
) -> usize {
    let mut taken = 0;
    for round in rounds {
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
    taken
}
