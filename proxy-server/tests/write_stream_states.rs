//! What a client of the Write stream observes, as containerd's: every reply's offset is what was
//! accepted, STAT reports the exact offset, digest and updated time, a failed write (a real
//! EFBIG) fails the stream and commits nothing, and a resumed writer starts at what was written.
//! Each runs twice: with the total size (and digest) declared up front, as containerd's fetches
//! and imports do, where WRITEs short of the total are pipelined (answered before their chunk is
//! written, with no digest), and without, where every reply carries the running digest.

mod common;

use std::time::{Duration, Instant, SystemTime};

use common::*;
use strata_proxy::api::content::content_client::ContentClient;
use strata_proxy::api::content::{
    InfoRequest, ReadContentRequest, StatusRequest, WriteContentRequest, WriteContentResponse,
};
use tonic::Code;
use tonic::transport::Channel;

const CHUNK: usize = 1 << 20;

/// Opens a Write stream, retrying while the ref is still held (the previous stream's writer is
/// released in the background), as containerd's `content.OpenWriter` does.
async fn open_retrying(
    c: &mut ContentClient<Channel>,
    first: WriteContentRequest,
) -> (WriteStream, WriteContentResponse) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match WriteStream::open(c, first.clone()).await {
            Ok(opened) => return opened,
            Err(e) if e.code() == Code::Unavailable && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("opening ref {}: {e}", first.r#ref),
        }
    }
}

/// The ingest offset the Status RPC reports for `r`.
async fn status_offset(c: &mut ContentClient<Channel>, r: &str) -> usize {
    let st = c
        .status(StatusRequest { r#ref: r.into() })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    st.offset as usize
}

async fn read_all(c: &mut ContentClient<Channel>, d: &str) -> Vec<u8> {
    let req = ReadContentRequest {
        digest: d.into(),
        offset: 0,
        size: 0,
    };
    let mut s = c.read(req).await.unwrap().into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        out.extend(m.data);
    }
    out
}

/// Writes `data[from..]` in 1 MiB WRITEs on `w`, then COMMITs it with its size and digest, and
/// checks that the blob reads back whole.
async fn finish(c: &mut ContentClient<Channel>, mut w: WriteStream, data: &[u8], from: usize) {
    let mut off = from;
    for chunk in data[from..].chunks(CHUNK) {
        let r = w.send(write(off as i64, chunk)).await.unwrap();
        off += chunk.len();
        assert_eq!(r.offset as usize, off);
    }
    let d = digest_of(data);
    let len = data.len() as i64;
    let r = w.send(commit(len, len, &d)).await.unwrap();
    assert_eq!((r.offset, r.digest.as_str()), (len, d.as_str()));
    assert_eq!(read_all(c, &d).await, data, "committed blob {d}");
}

/// The first message of a stream for `data`: with its total and digest when `piped`.
fn open_req(piped: bool, r: &str, data: &[u8]) -> WriteContentRequest {
    match piped {
        true => stat(r, data.len() as i64, &digest_of(data)),
        false => stat(r, 0, ""),
    }
}

/// A WRITE reply's digest: empty when pipelined (short of the total), else the digest of what
/// was written.
fn check_write_digest(piped: bool, r: &WriteContentResponse, written: usize, data: &[u8]) {
    if piped && written < data.len() {
        assert_eq!(r.digest, "", "a pipelined WRITE reply has no digest yet");
    } else {
        let want = digest_of(&data[..written]);
        assert_eq!(
            r.digest, want,
            "a WRITE reply's running digest at {written}"
        );
    }
}

fn system_time(ts: Option<prost_types::Timestamp>) -> SystemTime {
    SystemTime::try_from(ts.expect("a timestamp")).unwrap()
}

/// Sets the daemon's file-size limit (RLIMIT_FSIZE): its writes past it fail with EFBIG.
fn limit_file_size(pid: u32, bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit(2) on our own child with a valid rlimit and no old-limit pointer.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[tokio::test(flavor = "multi_thread")]
async fn write_replies_carry_the_accepted_offset_and_stat_the_exact_state() {
    accepted_offsets_and_exact_stat(false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn pipelined_write_replies_carry_the_accepted_offset_and_stat_the_exact_state() {
    accepted_offsets_and_exact_stat(true).await
}

async fn accepted_offsets_and_exact_stat(piped: bool) {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut c = p.content().await;
    let data = pseudo_random(7 * CHUNK + 4321, 1);
    let d = digest_of(&data);
    let (mut w, r) = WriteStream::open(&mut c, open_req(piped, "r", &data))
        .await
        .unwrap();
    assert_eq!(r.offset, 0);
    let mut acked = 0;
    for (i, chunk) in data.chunks(CHUNK).enumerate() {
        let before = SystemTime::now();
        let r = w.send(write(acked as i64, chunk)).await.unwrap();
        let after = SystemTime::now();
        acked += chunk.len();
        assert_eq!(
            r.offset as usize, acked,
            "WRITE {i} answers the offset it reached"
        );
        check_write_digest(piped, &r, acked, &data);
        // The Status call right behind a WRITE reports the offset it was given (pipelined: the
        // call waits for the chunk in flight).
        assert_eq!(
            status_offset(&mut c, "r").await,
            acked,
            "Status right after WRITE {i}"
        );
        if i % 3 != 1 {
            continue;
        }
        // STAT right behind the WRITE: exactly the acknowledged bytes, updated in its window.
        let st = w.send(stat("", 0, "")).await.unwrap();
        assert_eq!(st.offset as usize, acked, "STAT after WRITE {i}");
        assert_eq!(st.digest, digest_of(&data[..acked]), "STAT after WRITE {i}");
        let updated = system_time(st.updated_at);
        assert!(
            before <= updated && updated <= after,
            "updated {updated:?} outside WRITE {i}'s window {before:?}..{after:?}"
        );
        assert_eq!(
            status_offset(&mut c, "r").await,
            acked,
            "Status after WRITE {i}"
        );
    }
    let len = data.len() as i64;
    let r = w.send(commit(len, len, &d)).await.unwrap();
    assert_eq!((r.offset, r.digest.as_str()), (len, d.as_str()));
    assert_eq!(read_all(&mut c, &d).await, data);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_right_behind_writes_checks_their_size_and_digest() {
    commit_checks_size_and_digest(false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_commit_right_behind_pipelined_writes_checks_their_size_and_digest() {
    commit_checks_size_and_digest(true).await
}

async fn commit_checks_size_and_digest(piped: bool) {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut c = p.content().await;
    let wrong_digest = digest_of(b"something else");
    for (seed, what) in [(2, "size"), (3, "digest")] {
        let data = pseudo_random(3 * CHUNK, seed);
        let (d, len) = (digest_of(&data), data.len() as i64);
        let (total, expected) = match what {
            "size" => (len + 1, d.as_str()),
            _ => (len, wrong_digest.as_str()),
        };
        let first = open_req(piped, what, &data);
        let (mut w, _) = WriteStream::open(&mut c, first).await.unwrap();
        for (i, chunk) in data.chunks(CHUNK).enumerate() {
            let r = w.send(write((i * CHUNK) as i64, chunk)).await.unwrap();
            check_write_digest(piped, &r, (i + 1) * CHUNK, &data);
        }
        let e = w.send(commit(len, total, expected)).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{what}: {e}");
        assert!(
            e.message().contains(&format!("unexpected commit {what}")),
            "{e}"
        );
        let info = c.info(InfoRequest { digest: d.clone() }).await.unwrap_err();
        assert_eq!(info.code(), Code::NotFound, "{what}: nothing committed");
        assert_eq!(
            status_offset(&mut c, what).await,
            data.len(),
            "{what}: ingest kept"
        );
        // The ingest survives whole: a new writer resumes at its end and commits it.
        let (mut w, r) = open_retrying(&mut c, stat(what, 0, "")).await;
        assert_eq!(
            (r.offset, r.digest.as_str()),
            (len, d.as_str()),
            "{what}: resumed"
        );
        let r = w.send(commit(len, len, &d)).await.unwrap();
        assert_eq!(r.digest, d);
        assert_eq!(read_all(&mut c, &d).await, data);
    }
}

/// A write that fails (here EFBIG from a file-size limit) fails the stream no later than the
/// next message (a pipelined one fails after its reply), commits nothing, and the ingest keeps
/// exactly the bytes that were written.
#[tokio::test(flavor = "multi_thread")]
async fn a_failed_write_fails_the_stream_and_commits_nothing() {
    failed_write_commits_nothing(false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_pipelined_write_fails_the_stream_and_commits_nothing() {
    failed_write_commits_nothing(true).await
}

async fn failed_write_commits_nothing(piped: bool) {
    // Inherited by the daemon: exceeding the limit fails its write instead of killing it.
    // SAFETY: setting a signal's disposition to SIG_IGN.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let pid = p.child.as_ref().unwrap().id();
    let mut c = p.content().await;
    let data = pseudo_random(5 * CHUNK, 3);
    let d = digest_of(&data);
    limit_file_size(pid, (2 * CHUNK + CHUNK / 2) as u64);

    let (mut w, _) = WriteStream::open(&mut c, open_req(piped, "r", &data))
        .await
        .unwrap();
    let mut acked = 0;
    let mut failure = None;
    for chunk in data.chunks(CHUNK) {
        match w.send(write(acked as i64, chunk)).await {
            Ok(r) => {
                acked += chunk.len();
                assert_eq!(r.offset as usize, acked);
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let e = failure.expect("writing past the limit fails the stream");
    // Pipelined, the failing 3rd chunk was acknowledged and its failure fails the 4th.
    let surfaced = if piped { 3 * CHUNK } else { 2 * CHUNK };
    assert_eq!(
        acked, surfaced,
        "the failure of the 3rd chunk surfaced after {acked} bytes were acknowledged"
    );
    assert_eq!(e.code(), Code::Unknown, "{e}");
    assert!(
        e.message().contains("ref r at offset 2097152") && e.message().contains("too large"),
        "{e}"
    );
    drop(w);

    let info = c.info(InfoRequest { digest: d.clone() }).await.unwrap_err();
    assert_eq!(info.code(), Code::NotFound, "nothing committed");
    assert_eq!(
        status_offset(&mut c, "r").await,
        2 * CHUNK,
        "only what was written"
    );

    limit_file_size(pid, libc::RLIM_INFINITY);
    let (w, r) = open_retrying(&mut c, open_req(piped, "r", &data)).await;
    assert_eq!(r.offset as usize, 2 * CHUNK, "resumed at what was written");
    assert_eq!(r.digest, digest_of(&data[..2 * CHUNK]));
    finish(&mut c, w, &data, 2 * CHUNK).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_leaving_right_after_a_write_resumes_at_its_offset() {
    leaving_client_resumes(false).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_leaving_right_after_a_pipelined_write_resumes_at_its_offset() {
    leaving_client_resumes(true).await
}

async fn leaving_client_resumes(piped: bool) {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut c = p.content().await;
    let data = pseudo_random(6 * CHUNK + 77, 4);
    for round in 1..=3 {
        let (mut w, r) = open_retrying(&mut c, open_req(piped, "r", &data)).await;
        let from = r.offset as usize;
        assert_eq!(
            from,
            (round - 1) * 2 * CHUNK,
            "round {round}: resumed offset"
        );
        assert_eq!(
            r.digest,
            digest_of(&data[..from]),
            "round {round}: resumed digest"
        );
        if round == 3 {
            return finish(&mut c, w, &data, from).await;
        }
        let mut acked = from;
        for chunk in data[from..from + 2 * CHUNK].chunks(CHUNK) {
            let r = w.send(write(acked as i64, chunk)).await.unwrap();
            acked += chunk.len();
            assert_eq!(r.offset as usize, acked);
            check_write_digest(piped, &r, acked, &data);
        }
        // Gone right after the last reply, while its chunk may still be being written.
        drop(w);
    }
}
