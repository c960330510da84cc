//! The snapshot testsuite's `checkWalk` filters over containerd's snapshot adaptor
//! (`snapshots/storage/bolt.go: adaptSnapshot`).

use std::collections::BTreeMap;

use crate::filters::{Adaptor, parse, parse_all};

struct Info {
    name: &'static str,
    kind: &'static str,
    parent: &'static str,
    labels: BTreeMap<String, String>,
}

impl Adaptor for Info {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first()?.as_str() {
            "kind" => Some(self.kind.to_owned()),
            "name" => Some(self.name.to_owned()),
            "parent" => Some(self.parent.to_owned()),
            "labels" if self.labels.is_empty() => None,
            "labels" => self.labels.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

const GC_ROOT: &str = "containerd.io/gc.root";

fn info(name: &'static str, kind: &'static str, parent: &'static str, l: Option<&str>) -> Info {
    let mut labels = BTreeMap::from([(GC_ROOT.to_owned(), "check-walk".to_owned())]);
    if let Some(l) = l {
        labels.insert("l".to_owned(), l.to_owned());
    }
    Info {
        name,
        kind,
        parent,
        labels,
    }
}

fn snapshots() -> Vec<Info> {
    vec![
        info("a-np", "active", "", None),
        info("p", "committed", "", None),
        info("a", "active", "p", None),
        info("v", "view", "p", None),
        info("p-wl", "committed", "", Some("1")),
        info("a-wl", "active", "p-wl", Some("2")),
        info("v-wl", "view", "p-wl", Some("3")),
        info("a-np-wl", "active", "", Some("2")),
    ]
}

fn walk(filters: &[&str]) -> Vec<&'static str> {
    let filter = parse_all(filters).unwrap_or_else(|e| panic!("{filters:?}: {e}"));
    let mut names: Vec<_> = snapshots()
        .into_iter()
        .filter(|s| filter.matches(s))
        .map(|s| s.name)
        .collect();
    names.sort_unstable();
    names
}

fn sorted<const N: usize>(mut names: [&'static str; N]) -> Vec<&'static str> {
    names.sort_unstable();
    names.to_vec()
}

#[test]
fn gc_root_label() {
    let all = ["a-np", "p", "a", "v", "p-wl", "a-wl", "v-wl", "a-np-wl"];
    assert_eq!(
        walk(&[r#"labels."containerd.io/gc.root"==check-walk"#]),
        sorted(all)
    );
}

#[test]
fn kind_and_label() {
    let f = |kind: &str| format!(r#"kind=={kind},labels."containerd.io/gc.root"==check-walk"#);
    assert_eq!(
        walk(&[&f("active")]),
        sorted(["a-np", "a", "a-wl", "a-np-wl"])
    );
    assert_eq!(walk(&[&f("view")]), sorted(["v", "v-wl"]));
    assert_eq!(walk(&[&f("committed")]), sorted(["p", "p-wl"]));
}

#[test]
fn names_ored() {
    assert_eq!(
        walk(&["name==p", "name==a-np-wl"]),
        sorted(["p", "a-np-wl"])
    );
}

#[test]
fn name_and_label_presence() {
    assert_eq!(walk(&["name==a-wl,labels.l"]), ["a-wl"]);
}

#[test]
fn parent_equal_and_not_empty() {
    assert_eq!(walk(&["parent==p"]), sorted(["a", "v"]));
    assert_eq!(
        walk(&[r#"parent!="",labels."containerd.io/gc.root"==check-walk"#]),
        sorted(["a", "v", "a-wl", "v-wl"])
    );
}

#[test]
fn label_presence_and_value() {
    assert_eq!(
        walk(&["labels.l"]),
        sorted(["p-wl", "a-wl", "v-wl", "a-np-wl"])
    );
    assert_eq!(walk(&["labels.l==2"]), sorted(["a-wl", "a-np-wl"]));
}

#[test]
fn snapshot_ref_dedup_filter() {
    // The metadata layer's lookup of a remote snapshot (`metadata/snapshot.go`).
    let f = r#"labels."containerd.io/snapshot.ref"==sha256:abc,parent=="p""#;
    let mut s = info("x", "committed", "p", None);
    s.labels.insert(
        "containerd.io/snapshot.ref".to_owned(),
        "sha256:abc".to_owned(),
    );
    assert!(parse(f).unwrap().matches(&s));
    s.parent = "";
    assert!(!parse(f).unwrap().matches(&s));
}

#[test]
fn absolute_name_is_a_parse_error() {
    assert!(parse("name==/abs").is_err());
    assert!(parse("name==/abs/").is_err());
    assert!(parse("name==|abs|").is_err());
    assert!(parse("name~=/abs/").is_ok());
}
