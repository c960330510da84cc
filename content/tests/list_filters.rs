//! List and ListStatuses honour containerd filters per view.

mod common;

use common::*;
use strata_content::Error;

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn list_filters_on_digest_and_labels() {
    let (_tmp, store) = store();
    let mut w = store.writer(VIEW, "a", 0, None).unwrap();
    w.write(b"aaa").unwrap();
    let a = w
        .commit(
            0,
            None,
            Some(&labels(&[("containerd.io/gc.root", "x"), ("t", "1")])),
        )
        .unwrap();
    let b = put(&store, VIEW, "b", b"bbb");
    put(&store, "other", "c", b"ccc");

    let all: Vec<_> = store
        .list(VIEW, &[])
        .unwrap()
        .into_iter()
        .map(|i| i.digest)
        .collect();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort_by_key(|d| d.to_string());
    assert_eq!(all, expected);

    let by_digest = store
        .list(VIEW, &strings(&[&format!("digest=={b}")]))
        .unwrap();
    assert_eq!(by_digest.len(), 1);
    assert_eq!(by_digest[0].digest, b);
    let by_label = store
        .list(VIEW, &strings(&[r#"labels."containerd.io/gc.root""#]))
        .unwrap();
    assert_eq!(
        by_label.iter().map(|i| &i.digest).collect::<Vec<_>>(),
        vec![&a]
    );
    let either = store
        .list(VIEW, &strings(&["labels.t==1", &format!("digest=={b}")]))
        .unwrap();
    assert_eq!(either.len(), 2);
    assert!(store.list(VIEW, &strings(&["size==3"])).unwrap().is_empty());
    assert!(matches!(
        store.list(VIEW, &strings(&["labels.a==/x"])),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn list_statuses_filters_on_ref() {
    let (_tmp, store) = store();
    for r in ["ref-a", "ref-b"] {
        let mut w = store.writer(VIEW, r, 0, None).unwrap();
        w.write(r.as_bytes()).unwrap();
    }
    drop(store.writer("other", "ref-c", 0, None).unwrap());
    let all = store.list_statuses(VIEW, &[]).unwrap();
    assert_eq!(
        all.iter().map(|s| s.reference.as_str()).collect::<Vec<_>>(),
        ["ref-a", "ref-b"]
    );
    assert_eq!(all[0].offset, 5);
    let one = store
        .list_statuses(VIEW, &strings(&["ref==ref-b"]))
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0].reference, "ref-b");
    let re = store.list_statuses(VIEW, &strings(&["ref~=a$"])).unwrap();
    assert_eq!(re.len(), 1);
    assert!(matches!(
        store.list_statuses(VIEW, &strings(&["ref==/x"])),
        Err(Error::InvalidArgument(_))
    ));
}
