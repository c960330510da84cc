//! containerd's checker helpers (`helpers.go`): build a chain of layers from appliers and
//! verify each one through a mounted View against a flat reference directory.

use std::path::PathBuf;

use rand::Rng;

use super::fstest::{self, Op};
use super::harness::{Ctx, VIEW, opt};
use super::mount::TempMount;

/// Prepares `key` on `parent`, mounts it on `<work>/<key>` and returns the live mount.
pub async fn prepare_mount(cx: &Ctx, key: &str, parent: &str) -> TempMount {
    let target = cx.dir(key);
    let mounts = cx
        .sn()
        .prepare(VIEW, key, parent, opt())
        .await
        .expect("prepare");
    assert!(!mounts.is_empty(), "prepare {key}: expected mounts");
    TempMount::new(&mounts, &target).expect("mount prepared snapshot")
}

fn temp_dir_in(cx: &Ctx, prefix: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(&cx.work)
        .expect("tempdir")
        .keep()
}

/// Prepares `<name>-prepare` on `parent`, applies `ops` through a mount, commits `<name>`.
pub async fn create_snapshot(cx: &Ctx, parent: &str, ops: &[Op]) -> String {
    let name = format!("layer-{}", rand::thread_rng().r#gen::<u64>());
    let prepare = format!("{name}-prepare");
    let mounts = cx
        .sn()
        .prepare(VIEW, &prepare, parent, opt())
        .await
        .expect("prepare");
    let td = temp_dir_in(cx, "prepare");
    {
        let m = TempMount::new(&mounts, &td).expect("mount");
        fstest::apply(m.path(), ops).expect("apply to mounts");
    }
    std::fs::remove_dir(&td).expect("remove unmounted prepare dir");
    cx.sn()
        .commit(VIEW, &name, &prepare, opt())
        .await
        .expect("commit");
    name
}

/// Mounts a View `<name>-view` of `name` and compares it with the `check` directory.
pub async fn check_snapshot(cx: &Ctx, name: &str, check: &std::path::Path) {
    let view = format!("{name}-view");
    let mounts = cx.sn().view(VIEW, &view, name, opt()).await.expect("view");
    let td = temp_dir_in(cx, "check");
    let res = {
        let m = TempMount::new(&mounts, &td).expect("mount view");
        fstest::check_directory_equal(check, m.path())
    };
    std::fs::remove_dir(&td).expect("remove unmounted check dir");
    cx.sn().remove(VIEW, &view).await.expect("remove view");
    res.unwrap_or_else(|e| panic!("snapshot {name}: {e}"));
}

/// Builds one layer per applier, each on the previous, and checks every layer against the
/// appliers applied in order to a flat directory.
pub async fn check_snapshots(cx: &Ctx, appliers: &[Vec<Op>]) {
    let flat = temp_dir_in(cx, "flat");
    let mut parent = String::new();
    for (i, ops) in appliers.iter().enumerate() {
        let name = create_snapshot(cx, &parent, ops).await;
        fstest::apply(&flat, ops).unwrap_or_else(|e| panic!("apply layer {} to flat: {e}", i + 1));
        check_snapshot(cx, &name, &flat).await;
        parent = name;
    }
}
