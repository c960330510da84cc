//! kill -9 during the runtime's garbage collection: whatever an image, a container or a live
//! lease references survives every kill point, and the pass after the restart finishes the
//! sweep — no record, blob file or snapshot directory of the garbage is left.

mod common;

use std::path::Path;
use std::time::Instant;

use common::rt::Rt;
use common::*;

const SN: &str = "strata-overlay";
/// Garbage per round: blobs and snapshots held only by a lease that is then deleted.
const GARBAGE: usize = 1500;

/// What must survive: an image (manifest -> layers), a container (-> snapshot chain), a lease.
struct Kept {
    blobs: Vec<(String, Vec<u8>)>,
    snapshots: Vec<String>,
}

/// Built under a lease, as containerd's clients do: an object nothing references yet is
/// garbage, and a pass may run at any moment (the startup pass does, during this setup).
async fn setup_kept(rt: &Rt) -> Kept {
    let setup = Some("setup");
    rt.create_lease("setup").await;
    let mut blobs = Vec::new();
    let mut labels = Vec::new();
    for i in 0..8u64 {
        let data = pseudo_random(4096 + i as usize, i);
        let d = rt.put(setup, &data, &[]).await;
        labels.push((format!("containerd.io/gc.ref.content.l.{i}"), d.clone()));
        blobs.push((d, data));
    }
    let label_refs: Vec<(&str, &str)> = labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let manifest = b"{\"manifest\": true}".to_vec();
    let m = rt.put(setup, &manifest, &label_refs).await;
    rt.create_image("kept:1", &m, manifest.len() as i64).await;
    blobs.push((m, manifest));
    rt.create_lease("kept").await;
    let leased = pseudo_random(10_000, 99);
    blobs.push((rt.put(Some("kept"), &leased, &[]).await, leased));
    rt.prepare(setup, SN, "l1-active", "").await;
    rt.commit(setup, SN, "l1", "l1-active").await;
    rt.prepare(setup, SN, "l2-active", "l1").await;
    rt.commit(setup, SN, "l2", "l2-active").await;
    rt.prepare(setup, SN, "ctr-rootfs", "l2").await;
    rt.create_container("ctr", SN, "ctr-rootfs").await;
    rt.prepare(Some("kept"), SN, "leased-snap", "").await;
    rt.delete_lease("setup", false).await.unwrap();
    let mut snapshots: Vec<String> = ["l1", "l2", "ctr-rootfs", "leased-snap"]
        .map(String::from)
        .into();
    snapshots.sort();
    blobs.sort();
    Kept { blobs, snapshots }
}

/// Eight clients at a time, as a busy node's would be (one at a time took most of this test's
/// minute: each call waits for its own sync).
async fn make_garbage(rt: &Rt, lease: &str, round: u64) {
    use futures::StreamExt as _;
    rt.create_lease(lease).await;
    futures::stream::iter(0..GARBAGE as u64)
        .for_each_concurrent(8, |i| async move {
            rt.put(Some(lease), &pseudo_random(512, round * 1_000_000 + i), &[])
                .await;
            rt.prepare(Some(lease), SN, &format!("{lease}-{i}"), "")
                .await;
        })
        .await;
}

async fn assert_kept(rt: &Rt, kept: &Kept, when: &str) {
    for (d, data) in &kept.blobs {
        let got = rt
            .read(d)
            .await
            .unwrap_or_else(|e| panic!("{when}: blob {d} lost: {e}"));
        assert_eq!(&got, data, "{when}: blob {d} changed");
    }
    let snaps = rt.snapshots_of(SN).await;
    for s in &kept.snapshots {
        assert!(snaps.contains(s), "{when}: snapshot {s} lost");
    }
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill9_during_gc_loses_nothing_referenced_and_the_next_pass_finishes_the_sweep() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = Proxy::start(dir.path());
    let mut rt = Rt::new(p.runtime_channel().await, "crash");
    let kept = setup_kept(&rt).await;

    // How long an undisturbed pass over this much garbage takes, to spread the kill points.
    make_garbage(&rt, "measure", 0).await;
    let t = Instant::now();
    rt.delete_lease("measure", true).await.unwrap();
    let pass = t.elapsed();
    let left = rt.blobs().await;
    let want: Vec<&String> = kept.blobs.iter().map(|(d, _)| d).collect();
    assert_eq!(
        left.len(),
        kept.blobs.len(),
        "the measured pass collected all: {left:?} vs {want:?}"
    );
    eprintln!("undisturbed pass over {GARBAGE}+{GARBAGE} objects: {pass:?}");

    let mut interrupted = 0;
    for (round, fraction) in [0.05f64, 0.3, 0.6, 0.9].into_iter().enumerate() {
        let lease = format!("garbage-{round}");
        make_garbage(&rt, &lease, round as u64 + 1).await;
        let deleter = rt.clone();
        let l2 = lease.clone();
        let pending = tokio::spawn(async move { deleter.delete_lease(&l2, true).await });
        tokio::time::sleep(pass.mul_f64(fraction)).await;
        p.kill9();
        // An error: the kill cut the delete (and its GC pass) short; Ok: the pass had ended.
        if !matches!(pending.await, Ok(Ok(_))) {
            interrupted += 1;
        }
        p.restart();
        rt = Rt::new(p.runtime_channel().await, "crash");
        assert_kept(
            &rt,
            &kept,
            &format!("after kill at {:.0}% of a pass", fraction * 100.0),
        )
        .await;
    }

    assert!(
        interrupted > 0,
        "every delete finished before its kill: no kill landed during a GC pass"
    );
    eprintln!("{interrupted} of 4 kills landed during a delete and its GC pass");

    rt.create_lease("tick").await;
    rt.delete_lease("tick", true).await.unwrap();
    assert_kept(&rt, &kept, "after the next pass").await;
    let want: Vec<String> = kept.blobs.iter().map(|(d, _)| d.clone()).collect();
    assert_eq!(rt.blobs().await, want, "only referenced blobs are left");
    assert_eq!(
        rt.snapshots_of(SN).await,
        kept.snapshots,
        "only referenced snapshots are left"
    );
    let blob_files = entries(&p.root.join("content/blobs/sha256"));
    assert_eq!(blob_files, kept.blobs.len(), "blob files on disk");
    let dirs = entries(&p.root.join("snapshots/overlay/snapshots"));
    assert_eq!(dirs, kept.snapshots.len(), "snapshot directories on disk");
}
