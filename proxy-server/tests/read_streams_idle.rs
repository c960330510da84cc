//! Read streams that a client opens and never reads hold neither a thread nor a backlog of
//! chunks. Regression: each Read ran on a blocking thread that read 4 MiB ahead into a channel;
//! 600 unread streams of a 64 MiB blob grew the daemon from 26 MiB to ~2.5-3 GiB RSS and took
//! tokio's 512 blocking threads, so that Info (a blocking call) waited seconds or for ever.

mod common;

use std::time::{Duration, Instant};

use common::*;
use strata_proxy::api::content::{InfoRequest, ReadContentRequest};

/// Unread Read streams opened, over this many connections (several clients).
const STREAMS: usize = 600;
const CONNECTIONS: usize = 6;
const BLOB: usize = 64 << 20;

/// Resident set size of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib << 10
}

#[tokio::test(flavor = "multi_thread")]
async fn unread_read_streams_cost_little_and_calls_still_answer() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let pid = p.child.as_ref().unwrap().id();
    let mut c = p.content().await;
    let blob = pseudo_random(BLOB, 11);
    let d = digest_of(&blob);
    let (mut w, _) = WriteStream::open(&mut c, stat("big", BLOB as i64, ""))
        .await
        .unwrap();
    for (i, chunk) in blob.chunks(1 << 20).enumerate() {
        w.send(write((i << 20) as i64, chunk)).await.unwrap();
    }
    let r = w.send(commit(BLOB as i64, BLOB as i64, &d)).await.unwrap();
    assert_eq!(r.digest, d);

    let before = rss(pid);
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(p.content().await);
    }
    let mut held = Vec::new();
    for i in 0..STREAMS {
        let req = ReadContentRequest {
            digest: d.clone(),
            offset: 0,
            size: 0,
        };
        let opening = clients[i % CONNECTIONS].read(req);
        let s = tokio::time::timeout(Duration::from_secs(30), opening)
            .await
            .unwrap_or_else(|_| panic!("read stream {i} not opened within 30 s"))
            .unwrap_or_else(|e| panic!("opening read stream {i}: {e}"))
            .into_inner();
        held.push(s);
    }
    // Whatever the server reads ahead for these streams, it has read by now.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let grown = rss(pid).saturating_sub(before);

    let t = Instant::now();
    let info = tokio::time::timeout(
        Duration::from_secs(30),
        c.info(InfoRequest { digest: d.clone() }),
    )
    .await
    .expect("Info answered within 30 s beside the unread streams")
    .unwrap()
    .into_inner();
    let took = t.elapsed();
    assert_eq!(info.info.unwrap().size, BLOB as i64);
    println!(
        "{STREAMS} unread read streams: daemon RSS +{} MiB; Info took {took:?}",
        grown >> 20
    );
    assert!(
        grown < 512 << 20,
        "{STREAMS} unread streams grew the daemon by {} MiB",
        grown >> 20
    );
    assert!(took < Duration::from_secs(1), "Info took {took:?}");

    // The streams are intact: one of them, read now, gives the whole blob. The others go first:
    // what HTTP/2 delivered to them unread holds their connection's flow-control window.
    let mut s = held.swap_remove(0);
    drop(held);
    let reading = async {
        let mut got = Vec::with_capacity(BLOB);
        while let Some(m) = s.message().await.unwrap() {
            assert_eq!(m.offset as usize, got.len());
            got.extend_from_slice(&m.data);
        }
        got
    };
    let got = tokio::time::timeout(Duration::from_secs(60), reading)
        .await
        .expect("a held stream, read late, ends within 60 s");
    assert!(got == blob, "a held stream, read late, returns the blob");
}
