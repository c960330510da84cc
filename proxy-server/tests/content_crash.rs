//! kill -9 during a large ingest and right after Commit: nothing committed is lost, and an
//! interrupted ingest resumes where its bytes end. A pipelined WRITE (the stream declared its
//! total) is acknowledged before its chunk lands, so the kill may cut the last acknowledged
//! chunk short, as a power loss does with containerd's own store (which syncs nothing before
//! Commit either); a STAT settles it, after which the offset it reported survives.

mod common;

use common::*;
use strata_proxy::api::content::*;

const CHUNK: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread")]
async fn kill9_during_large_ingest_then_resume_at_the_right_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proxy::start(dir.path());
    let data = pseudo_random(200 * CHUNK + 12345, 42);
    let mut c = p.content().await;
    let (w, acked) = write_chunks(&mut c, "big", &data, 150).await;
    p.kill9();
    drop(w);

    p.restart();
    let mut c = p.content().await;
    let st = status(&mut c, "big").await;
    let held = st.offset as usize;
    assert!(
        acked - CHUNK <= held && held <= acked,
        "status reports {held}: what landed, at most the last pipelined chunk short of {acked}"
    );
    assert_eq!(st.total, data.len() as i64);
    assert_eq!(st.expected, digest_of(&data));
    resume_and_commit(&mut c, "big", &data, held).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_after_a_stat_keeps_the_offset_it_reported() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proxy::start(dir.path());
    let data = pseudo_random(40 * CHUNK, 43);
    let mut c = p.content().await;
    let (mut w, acked) = write_chunks(&mut c, "r", &data, 25).await;
    let r = w.send(stat("", 0, "")).await.unwrap();
    assert_eq!(r.offset as usize, acked);
    p.kill9();
    drop(w);

    p.restart();
    let mut c = p.content().await;
    let st = status(&mut c, "r").await;
    assert_eq!(
        st.offset as usize, acked,
        "the offset STAT reported survives"
    );
    resume_and_commit(&mut c, "r", &data, acked).await;
}

type Client = content_client::ContentClient<tonic::transport::Channel>;

/// Opens ingest `r` of `data` declaring its size and digest (so its WRITEs are pipelined) and
/// sends its first `chunks` WRITEs; the stream and the bytes acknowledged.
async fn write_chunks(c: &mut Client, r: &str, data: &[u8], chunks: usize) -> (WriteStream, usize) {
    let first = stat(r, data.len() as i64, &digest_of(data));
    let (mut w, _) = WriteStream::open(c, first).await.unwrap();
    let mut acked = 0usize;
    for chunk in data.chunks(CHUNK).take(chunks) {
        let r = w.send(write(acked as i64, chunk)).await.unwrap();
        acked += chunk.len();
        assert_eq!(
            (r.offset as usize, r.digest.as_str()),
            (acked, ""),
            "pipelined"
        );
    }
    (w, acked)
}

/// Resumes ingest `r` as containerd's client does (STAT, then WRITEs from the offset it
/// reports), which must be `held` with the digest of those bytes, commits it and reads the blob
/// back whole.
async fn resume_and_commit(c: &mut Client, r: &str, data: &[u8], held: usize) {
    let (digest, total) = (digest_of(data), data.len() as i64);
    let (mut w, st) = WriteStream::open(c, stat(r, total, "")).await.unwrap();
    assert_eq!(st.offset as usize, held);
    assert_eq!(
        st.digest,
        digest_of(&data[..held]),
        "digest state recovered"
    );
    let mut off = held;
    for chunk in data[held..].chunks(CHUNK) {
        w.send(write(off as i64, chunk)).await.unwrap();
        off += chunk.len();
    }
    let reply = w.send(commit(total, total, &digest)).await.unwrap();
    assert_eq!(reply.digest, digest);
    let info = c
        .info(InfoRequest {
            digest: digest.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.info.unwrap().size, total);
    assert_eq!(read_all(c, &digest).await, data);
}

async fn status(c: &mut Client, r: &str) -> strata_proxy::api::content::Status {
    c.status(StatusRequest { r#ref: r.into() })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn kill9_right_after_commit_returns_keeps_the_blob() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proxy::start(dir.path());
    let mut c = p.content().await;
    let mut digests = Vec::new();
    for i in 0..5u64 {
        let data = pseudo_random(3 * CHUNK + i as usize, i);
        digests.push((put(&mut c, &format!("r{i}"), &data).await, data));
    }
    let mut labels = std::collections::HashMap::new();
    labels.insert("containerd.io/gc.root".to_string(), "yes".to_string());
    c.update(UpdateRequest {
        info: Some(Info {
            digest: digests[0].0.clone(),
            labels: labels.clone(),
            ..Default::default()
        }),
        update_mask: None,
    })
    .await
    .unwrap();
    p.kill9();

    p.restart();
    let mut c = p.content().await;
    for (d, data) in &digests {
        assert_eq!(&read_all(&mut c, d).await, data, "{d} intact after kill -9");
    }
    let info = c
        .info(InfoRequest {
            digest: digests[0].0.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.info.unwrap().labels, labels, "label update survived");
    let listed = c
        .list(ListContentRequest { filters: vec![] })
        .await
        .unwrap()
        .into_inner()
        .message()
        .await
        .unwrap()
        .unwrap()
        .info;
    assert_eq!(listed.len(), 5);
}

async fn read_all(c: &mut Client, d: &str) -> Vec<u8> {
    let mut s = c
        .read(ReadContentRequest {
            digest: d.into(),
            offset: 0,
            size: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(m) = s.message().await.unwrap() {
        assert!(m.data.len() <= CHUNK, "read messages are at most 1 MiB");
        out.extend(m.data);
    }
    out
}
