//! Opaque keys: stored and returned verbatim, never turned into paths.

use std::path::Path;

use rand::Rng;
use strata_core::labels::Labels;

use crate::harness::{Ctx, VIEW};
use crate::mount::TempMount;

fn odd_key_list(tag: &str) -> Vec<String> {
    vec![
        "with space".into(),
        "extract-1700000000-AbCd sha256:0123456789abcdef".into(),
        "a/b/c".into(),
        "/abs/olute".into(),
        format!("/strata-escape-{tag}"),
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
        "unicode-ключ-雪-🚀".into(),
        "..".into(),
        ".".into(),
        format!("../../strata-escape-{tag}"),
        format!("../strata-escape-{tag}"),
        "tab\tand\nnewline".into(),
        "k".repeat(1000),
    ]
}

/// Odd keys (spaces, slashes, `sha256:`, unicode, `..`, 1000 chars) work as keys and names,
/// survive a reopen verbatim and create nothing outside the root.
pub async fn odd_keys(mut cx: Ctx) {
    let tag = format!("{:016x}", rand::thread_rng().r#gen::<u64>());
    let keys = odd_key_list(&tag);
    for (i, key) in keys.iter().enumerate() {
        let labels = Labels::from([("key".to_string(), key.clone())]);
        let mounts = cx
            .sn()
            .prepare(VIEW, key, "", labels.clone())
            .await
            .expect("prepare");
        {
            let m = TempMount::new(&mounts, &cx.dir(&format!("m{i}"))).expect("mount");
            std::fs::write(m.path().join("f"), key.as_bytes()).expect("write");
        }
        let info = cx.sn().stat(VIEW, key).await.expect("stat");
        assert_eq!((&info.name, &info.labels), (key, &labels));
        let name = format!("{key}/committed");
        cx.sn()
            .commit(VIEW, &name, key, labels)
            .await
            .expect("commit");
        let child = format!("{key} child");
        cx.sn()
            .view(VIEW, &child, &name, Labels::new())
            .await
            .expect("view");
        assert_eq!(
            cx.sn().stat(VIEW, &child).await.expect("stat child").parent,
            name
        );
    }
    check_listed(&cx, &keys).await;
    cx.reopen().await;
    check_listed(&cx, &keys).await;
    for (i, key) in keys.iter().enumerate() {
        let mounts = cx
            .sn()
            .mounts(VIEW, &format!("{key} child"))
            .await
            .expect("mounts");
        let m = TempMount::new(&mounts, &cx.dir(&format!("v{i}"))).expect("mount view");
        assert_eq!(
            std::fs::read(m.path().join("f")).expect("read"),
            key.as_bytes()
        );
    }
    check_no_escape(&cx.root, &tag);
    for key in &keys {
        cx.sn()
            .remove(VIEW, &format!("{key} child"))
            .await
            .expect("remove view");
        cx.sn()
            .remove(VIEW, &format!("{key}/committed"))
            .await
            .expect("remove committed");
    }
    assert!(cx.sn().list(VIEW, &[]).await.expect("list").is_empty());
}

async fn check_listed(cx: &Ctx, keys: &[String]) {
    let mut listed: Vec<String> = cx
        .sn()
        .list(VIEW, &[])
        .await
        .expect("list")
        .into_iter()
        .map(|i| i.name)
        .collect();
    let mut expected: Vec<String> = keys
        .iter()
        .flat_map(|k| [format!("{k}/committed"), format!("{k} child")])
        .collect();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "names must be returned verbatim");
}

fn check_no_escape(root: &Path, tag: &str) {
    let name = format!("strata-escape-{tag}");
    let mut dirs = vec![Path::new("/").to_path_buf()];
    dirs.extend(root.ancestors().map(Path::to_path_buf));
    for d in dirs {
        assert!(
            !d.join(&name).exists(),
            "a key created {}",
            d.join(&name).display()
        );
    }
    assert!(
        !Path::new("/abs/olute").exists(),
        "a key created /abs/olute"
    );
}
