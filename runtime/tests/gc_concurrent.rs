//! Collection passes running while clients write (containerd blocks writes for a whole pass;
//! Strata marks without a lock and re-marks what changed meanwhile, `gc/barrier.rs`): what a
//! lease holds, including a blob a client found present and leased during a pass, is never
//! taken, while unheld objects still go.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use common::{Env, NATIVE, bytes_for, ctx, digest_for, lctx};

#[test]
fn leased_writes_survive_concurrent_passes() {
    let env = Env::new();
    let _g = env.enter();
    env.lease("busy", "l", &[]);
    let stop = AtomicBool::new(false);
    let passes = AtomicUsize::new(0);
    let mut found_and_leased = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                env.collect();
                passes.fetch_add(1, Ordering::Relaxed);
            }
        });
        let (l, plain) = (lctx("busy", "l"), ctx("busy"));
        for i in 0..150 {
            env.write_blob(&l, &bytes_for(i), &[]);
            env.committed(&l, NATIVE, &format!("s{i}"), "", &[]);
            // Unheld: garbage for the passes. A client then finds it and leases it; if it was
            // still there, it must stay.
            let g = env.write_blob(&plain, &bytes_for(1000 + i), &[]);
            if env.rt.content().exists(&l, &g).unwrap() {
                found_and_leased.push(g);
            }
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(passes.load(Ordering::Relaxed) > 0);
    env.collect();
    let c = ctx("busy");
    for i in 0..150 {
        assert!(env.has_blob(&c, &digest_for(i)), "leased blob {i} taken");
        assert!(
            env.has_snapshot(&c, NATIVE, &format!("s{i}")),
            "leased snapshot {i} taken"
        );
    }
    for d in &found_and_leased {
        assert!(
            env.has_blob(&c, d),
            "blob {d} leased during a pass was taken"
        );
    }
    // Everything else (the unheld blobs nobody leased in time) is gone.
    let all = env.rt.content().list(&c, &[]).unwrap();
    assert_eq!(all.len(), 150 + found_and_leased.len());
}
