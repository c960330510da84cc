//! Cases about the mounts themselves: ViewReadonly (testsuite.go:782-815), RootPermission
//! (861-874) and 128LayersMount (876-970).

use std::os::unix::fs::PermissionsExt;

use crate::fstest::{self, Op, create_dir, create_file, remove_all};
use crate::harness::{Ctx, VIEW, opt};
use crate::layers::prepare_mount;
use crate::mount::TempMount;

/// Writing into a mounted View fails with EROFS: views of "", of one and of two layers.
pub async fn view_readonly(cx: Ctx) {
    let sn = cx.sn();
    sn.prepare(VIEW, "preparing", "", opt())
        .await
        .expect("prepare");
    sn.commit(VIEW, "committed", "preparing", opt())
        .await
        .expect("commit");
    sn.prepare(VIEW, "preparing2", "committed", opt())
        .await
        .expect("prepare");
    sn.commit(VIEW, "committed2", "preparing2", opt())
        .await
        .expect("commit");
    for (view, parent) in [
        ("view", "committed"),
        ("view2", "committed2"),
        ("view0", ""),
    ] {
        let mounts = sn.view(VIEW, view, parent, opt()).await.expect("view");
        let target = cx.dir(&format!("{view}-mount"));
        let m = TempMount::new(&mounts, &target).expect("mount view");
        let err = std::fs::write(m.path().join("testfile"), b"testcontent")
            .expect_err("write into a mounted view must fail");
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{view}: {err}");
        drop(m);
        sn.remove(VIEW, view).await.expect("remove view");
    }
    sn.remove(VIEW, "committed2")
        .await
        .expect("remove committed2");
    sn.remove(VIEW, "committed")
        .await
        .expect("remove committed");
}

/// The root of a fresh Prepare("") is 0755.
pub async fn root_permission(cx: Ctx) {
    let m = prepare_mount(&cx, "preparing", "").await;
    let mode = std::fs::metadata(m.path())
        .expect("stat")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o755, "expected 0755, got {mode:o}");
}

fn layer_ops(i: usize) -> Vec<Op> {
    if i == 0 {
        return vec![
            create_file("/bottom", b"way at the bottom\n", 0o777),
            create_file("/overwriteme", b"FIRST!\n", 0o777),
            create_dir("/ADDHERE", 0o755),
            create_dir("/ONLYME", 0o755),
            create_file("/ONLYME/bottom", b"bye!\n", 0o777),
        ];
    }
    vec![
        create_file("/overwriteme", format!("{i} WAS HERE!\n").as_bytes(), 0o777),
        create_file(&format!("/ADDHERE/file-{i}"), b"same\n", 0o755),
        remove_all("/ONLYME"),
        create_dir("/ONLYME", 0o755),
        create_file(&format!("/ONLYME/file-{i}"), b"only me!\n", 0o777),
    ]
}

/// 128 layers: every Prepare mount equals a flat reference before and after its layer is
/// applied, and a View of the top equals it too (forces the long-lowerdir mount path).
pub async fn layers_128_mount(cx: Ctx) {
    let sn = cx.sn();
    let flat = cx.dir("flat");
    let mut parent = String::new();
    for i in 0..128 {
        let key = cx
            .work
            .join(format!("prepare-layer-{i}"))
            .to_string_lossy()
            .into_owned();
        let mounts = sn
            .prepare(VIEW, &key, &parent, opt())
            .await
            .expect("prepare");
        let m =
            TempMount::new(&mounts, &cx.dir(&key)).unwrap_or_else(|e| panic!("[layer {i}] {e}"));
        let ops = layer_ops(i);
        fstest::check_directory_equal(m.path(), &flat)
            .unwrap_or_else(|e| panic!("[layer {i}] before apply: {e}"));
        fstest::apply(&flat, &ops).expect("apply flat");
        fstest::apply(m.path(), &ops).expect("apply preparing");
        fstest::check_directory_equal(m.path(), &flat)
            .unwrap_or_else(|e| panic!("[layer {i}] after apply: {e}"));
        drop(m);
        parent = cx
            .work
            .join(format!("committed-{i}"))
            .to_string_lossy()
            .into_owned();
        sn.commit(VIEW, &parent, &key, opt()).await.expect("commit");
    }
    let view = cx.work.join("fullview").to_string_lossy().into_owned();
    let mounts = sn.view(VIEW, &view, &parent, opt()).await.expect("view");
    let m = TempMount::new(&mounts, &cx.dir(&view)).expect("mount fullview");
    fstest::check_directory_equal(m.path(), &flat).expect("fullview should equal flat");
}
