//! Layer-content cases (`issues.go` and testsuite.go:486-501, 819-837): every layer, mounted
//! through a View, must equal the appliers applied in order to a flat directory.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::fstest::{self as fs, create_dir, create_file, link, remove_all};
use crate::harness::Ctx;
use crate::layers::check_snapshots;

/// A file modified and chmodded (same content) in a child layer; 5 times on second boundaries.
pub async fn layer_file_update(cx: Ctx) {
    let l1 = vec![
        create_dir("/etc", 0o700),
        create_file("/etc/hosts", b"mydomain 10.0.0.1", 0o644),
        create_file("/etc/profile", b"PATH=/usr/bin", 0o644),
    ];
    let l2 = vec![
        create_file("/etc/hosts", b"mydomain 10.0.0.2", 0o644),
        create_file("/etc/profile", b"PATH=/usr/bin", 0o666),
        create_dir("/root", 0o700),
        create_file("/root/.bashrc", b"PATH=/usr/sbin:/usr/bin", 0o644),
    ];
    for i in 0..5 {
        if i > 0 {
            let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
            tokio::time::sleep(Duration::from_secs(now.as_secs() + 1) - now).await;
        }
        check_snapshots(&cx, &[l1.clone(), l2.clone()]).await;
    }
}

/// A directory removed and recreated in l2 is opaque: its old child stays hidden.
pub async fn remove_directory_in_lower_layer(cx: Ctx) {
    let l1 = vec![
        create_dir("/lib", 0o700),
        create_file("/lib/hidden", b"", 0o644),
    ];
    let l2 = vec![
        remove_all("/lib"),
        create_dir("/lib", 0o700),
        create_file("/lib/not-hidden", b"", 0o644),
    ];
    let l3 = vec![create_file("/lib/newfile", b"", 0o644)];
    check_snapshots(&cx, &[l1, l2, l3]).await;
}

/// Ownership changes in an upper layer (copy-up of owners).
pub async fn chown(cx: Ctx) {
    let l1 = vec![
        create_dir("/opt", 0o700),
        create_dir("/opt/a", 0o700),
        create_dir("/opt/a/b", 0o700),
        create_file("/opt/a/b/file.txt", b"hello", 0o644),
    ];
    let l2 = vec![
        fs::chown("/opt", 1, 1),
        fs::chown("/opt/a", 1, 1),
        fs::chown("/opt/a/b", 1, 1),
        fs::chown("/opt/a/b/file.txt", 1, 1),
    ];
    check_snapshots(&cx, &[l1, l2]).await;
}

/// Ownership survives commits across removals and recreations of directories.
pub async fn directory_permission_on_commit(cx: Ctx) {
    let l1 = vec![
        create_dir("/dir1", 0o700),
        create_dir("/dir2", 0o700),
        create_dir("/dir3", 0o700),
        create_dir("/dir4", 0o700),
        create_file("/dir4/f1", b"...", 0o644),
        create_dir("/dir5", 0o700),
        create_file("/dir5/f1", b"...", 0o644),
        fs::chown("/dir1", 1, 1),
        fs::chown("/dir2", 1, 1),
        fs::chown("/dir3", 1, 1),
        fs::chown("/dir5", 1, 1),
        fs::chown("/dir5/f1", 1, 1),
    ];
    let l2 = vec![
        fs::chown("/dir2", 0, 0),
        remove_all("/dir3"),
        fs::chown("/dir4", 1, 1),
        fs::chown("/dir4/f1", 1, 1),
    ];
    let l3 = vec![
        create_dir("/dir3", 0o700),
        fs::chown("/dir3", 1, 1),
        remove_all("/dir5"),
        create_dir("/dir5", 0o700),
        fs::chown("/dir5", 1, 1),
    ];
    check_snapshots(&cx, &[l1, l2, l3]).await;
}

/// A file deleted in l2 is invisible in l2 and l3.
pub async fn deleted_files_in_child_snapshot(cx: Ctx) {
    let l1 = vec![
        create_file("/foo", b"foo\n", 0o777),
        create_file("/foobar", b"foobar\n", 0o777),
    ];
    let l2 = vec![remove_all("/foobar")];
    check_snapshots(&cx, &[l1, l2, vec![]]).await;
}

/// A lower file hard-linked to a new place, then removed at the source.
pub async fn move_file_from_lower_layer(cx: Ctx) {
    let l1 = vec![
        create_dir("/dir1", 0o700),
        create_file("/dir1/f1", b"Hello", 0o644),
        create_dir("dir2", 0o700),
        create_file("dir2/f2", b"...", 0o644),
    ];
    let l2 = vec![
        create_dir("/dir3", 0o700),
        create_file("/dir3/f1", b"Hello", 0o644),
        remove_all("/dir1"),
        link("dir2/f2", "dir3/f2"),
        remove_all("dir2/f2"),
    ];
    check_snapshots(&cx, &[l1, l2]).await;
}
