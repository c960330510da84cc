//! kill -9 during a large ingest and right after Commit: nothing acknowledged is lost.

mod common;

use common::*;
use strata_proxy::api::content::*;

const CHUNK: usize = 1 << 20;

#[tokio::test(flavor = "multi_thread")]
async fn kill9_during_large_ingest_then_resume_at_the_right_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proxy::start(dir.path());
    let data = pseudo_random(200 * CHUNK + 12345, 42);
    let digest = digest_of(&data);
    let total = data.len() as i64;

    let mut c = p.content().await;
    let (mut w, _) = WriteStream::open(&mut c, stat("big", total, &digest))
        .await
        .unwrap();
    let mut acked = 0usize;
    for chunk in data.chunks(CHUNK).take(150) {
        let r = w.send(write(acked as i64, chunk)).await.unwrap();
        acked += chunk.len();
        assert_eq!(r.offset as usize, acked);
    }
    p.kill9();
    drop(w);

    p.restart();
    let mut c = p.content().await;
    let st = c
        .status(StatusRequest {
            r#ref: "big".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
        .unwrap();
    assert_eq!(
        st.offset as usize, acked,
        "status reports the offset the ingest reached"
    );
    assert_eq!(st.total, total);
    assert_eq!(st.expected, digest);

    // Resume as containerd's client does: STAT, then WRITE from the offset it reports.
    let (mut w, r) = WriteStream::open(&mut c, stat("big", total, ""))
        .await
        .unwrap();
    assert_eq!(r.offset as usize, acked);
    assert_eq!(
        r.digest,
        digest_of(&data[..acked]),
        "digest state recovered"
    );
    let mut off = acked;
    for chunk in data[acked..].chunks(CHUNK) {
        w.send(write(off as i64, chunk)).await.unwrap();
        off += chunk.len();
    }
    let r = w.send(commit(total, total, &digest)).await.unwrap();
    assert_eq!(r.digest, digest);
    let info = c
        .info(InfoRequest {
            digest: digest.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(info.info.unwrap().size, total);
    assert_eq!(read_all(&mut c, &digest).await, data);
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

async fn read_all(
    c: &mut strata_proxy::api::content::content_client::ContentClient<tonic::transport::Channel>,
    d: &str,
) -> Vec<u8> {
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
