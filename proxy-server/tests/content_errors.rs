//! Bad input over the socket gets containerd's exact gRPC codes, and the server stays up.

mod common;

use common::*;
use strata_proxy::api::content::*;
use tonic::Code;

const BAD_DIGESTS: &[&str] = &[
    "",
    "sha256",
    "sha256:",
    "sha256:ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef0123456789",
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha256:abc",
    "../../etc/passwd",
];

#[tokio::test]
async fn bad_digests_are_invalid_argument_on_every_rpc() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut c = p.content().await;
    for d in BAD_DIGESTS {
        let e = c
            .info(InfoRequest {
                digest: d.to_string(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "info {d:?}: {e}");
        let e = c
            .delete(DeleteContentRequest {
                digest: d.to_string(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "delete {d:?}");
        let e = c
            .read(ReadContentRequest {
                digest: d.to_string(),
                offset: 0,
                size: 0,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "read {d:?}");
        let e = c
            .update(UpdateRequest {
                info: Some(Info {
                    digest: d.to_string(),
                    ..Default::default()
                }),
                update_mask: None,
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "update {d:?}");
    }
    // An invalid expected digest on the Write stream.
    let e = WriteStream::open(&mut c, stat("r", 3, "sha256:nothex"))
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::InvalidArgument);
    // Still serving.
    let d = put(&mut c, "ok", b"still up").await;
    assert!(c.info(InfoRequest { digest: d }).await.is_ok());
}

#[tokio::test]
async fn missing_blobs_and_refs_are_not_found_and_reads_past_the_end_out_of_range() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut c = p.content().await;
    let missing = digest_of(b"never written");
    let e = c
        .info(InfoRequest {
            digest: missing.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .read(ReadContentRequest {
            digest: missing,
            offset: 0,
            size: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let e = c
        .status(StatusRequest {
            r#ref: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    let d = put(&mut c, "r1", b"hello world").await;
    let read = |offset: i64, size: i64| {
        let mut c = c.clone();
        let d = d.clone();
        async move {
            let mut s = c
                .read(ReadContentRequest {
                    digest: d,
                    offset,
                    size,
                })
                .await?
                .into_inner();
            let mut out = Vec::new();
            let mut offsets = Vec::new();
            while let Some(m) = s.message().await? {
                offsets.push(m.offset);
                out.extend(m.data);
            }
            Ok::<_, tonic::Status>((out, offsets))
        }
    };
    assert_eq!(read(0, 0).await.unwrap().0, b"hello world");
    let (data, offsets) = read(6, 0).await.unwrap();
    assert_eq!(data, b"world");
    assert_eq!(offsets, vec![0], "offsets are relative to the read's start");
    assert_eq!(read(6, 100).await.unwrap().0, b"world");
    assert_eq!(read(-5, 2).await.unwrap().0, b"he");
    assert_eq!(read(11, 0).await.unwrap().0, b"");
    assert_eq!(read(12, 0).await.unwrap_err().code(), Code::OutOfRange);
}

#[tokio::test]
async fn write_stream_state_machine_codes() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut c = p.content().await;

    // First message without a ref.
    let e = WriteStream::open(&mut c, stat("", 0, ""))
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::InvalidArgument);

    // Wrong offset: OutOfRange; the ingest keeps what it had.
    let (mut w, r) = WriteStream::open(&mut c, stat("r1", 11, "")).await.unwrap();
    assert_eq!(r.offset, 0);
    assert_eq!(w.send(write(0, b"hello")).await.unwrap().offset, 5);
    let e = w.send(write(3, b"xx")).await.unwrap_err();
    assert_eq!(e.code(), Code::OutOfRange, "{e}");
    let st = c
        .status(StatusRequest { r#ref: "r1".into() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(st.status.unwrap().offset, 5);

    // A second writer on a locked ref: Unavailable.
    let (mut w1, _) = WriteStream::open(&mut c, stat("locked", 0, ""))
        .await
        .unwrap();
    let e = WriteStream::open(&mut c, stat("locked", 0, ""))
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::Unavailable, "{e}");
    // Offset 0 on a non-empty ingest truncates.
    w1.send(write(0, b"abcdef")).await.unwrap();
    let r = w1.send(write(0, b"xyz")).await.unwrap();
    assert_eq!(r.offset, 3);
    assert_eq!(r.digest, digest_of(b"xyz"));
    // Wrong digest at commit: FailedPrecondition, ingest kept with its data.
    let e = w1
        .send(commit(3, 3, &digest_of(b"other")))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e}");
    drop(w1);
    let sts = c
        .list_statuses(ListStatusesRequest {
            filters: vec!["ref==locked".into()],
        })
        .await
        .unwrap()
        .into_inner()
        .statuses;
    assert_eq!(sts.len(), 1);
    assert_eq!(sts[0].offset, 3);
    // Wrong size at commit: FailedPrecondition, resumable.
    let (mut w2, r) = WriteStream::open(&mut c, stat("locked", 0, ""))
        .await
        .unwrap();
    assert_eq!(r.offset, 3);
    let e = w2.send(commit(3, 5, "")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition);
    drop(w2);
    let (mut w3, r) = WriteStream::open(&mut c, stat("locked", 0, ""))
        .await
        .unwrap();
    assert_eq!(r.offset, 3);
    let ok = w3.send(commit(3, 3, &digest_of(b"xyz"))).await.unwrap();
    assert_eq!(ok.digest, digest_of(b"xyz"));

    // An existing expected digest: AlreadyExists on the first message and on a later one.
    let existing = digest_of(b"xyz");
    let e = WriteStream::open(&mut c, stat("again", 3, &existing))
        .await
        .err()
        .unwrap();
    assert_eq!(e.code(), Code::AlreadyExists);
    let (mut w4, _) = WriteStream::open(&mut c, stat("later", 0, ""))
        .await
        .unwrap();
    w4.send(write(0, b"x")).await.unwrap();
    let e = w4.send(stat("", 0, &existing)).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    drop(w4);
    let e = c
        .status(StatusRequest {
            r#ref: "later".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "the ingest was aborted");

    // AlreadyExists at commit (same bytes, no expected digest) drops the ingest.
    let (mut w5, _) = WriteStream::open(&mut c, stat("dup", 0, "")).await.unwrap();
    w5.send(write(0, b"xyz")).await.unwrap();
    let e = w5.send(commit(3, 3, "")).await.unwrap_err();
    assert_eq!(e.code(), Code::AlreadyExists);
    drop(w5);
    let e = c
        .status(StatusRequest {
            r#ref: "dup".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);

    // Still serving.
    assert!(c.info(InfoRequest { digest: existing }).await.is_ok());
}

#[tokio::test]
async fn labels_over_the_limit_and_bad_update_paths_are_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let p = Proxy::start(dir.path());
    let mut c = p.content().await;
    let big = "v".repeat(4096);
    let (mut w, _) = WriteStream::open(&mut c, stat("big", 0, "")).await.unwrap();
    w.send(write(0, b"data")).await.unwrap();
    let mut req = commit(4, 4, "");
    req.labels.insert("k".into(), big.clone());
    let e = w.send(req).await.unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument, "{e}");

    let d = put(&mut c, "small", b"labels").await;
    let mut labels = std::collections::HashMap::new();
    labels.insert("k".to_string(), big);
    let e = c
        .update(UpdateRequest {
            info: Some(Info {
                digest: d.clone(),
                labels,
                ..Default::default()
            }),
            update_mask: None,
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .update(UpdateRequest {
            info: Some(Info {
                digest: d.clone(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["size".into()],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = c
        .list(ListContentRequest {
            filters: vec!["labels.\"unterminated".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(c.info(InfoRequest { digest: d }).await.is_ok());
}
