//! The tricolor mark, a pure function over a reference graph (containerd `gc/gc.go`): start
//! gray from the roots, blacken each node after graying what it references. A node reached
//! through a *flat* lease is visited flat: a flat snapshot keeps only its parent chain, flat
//! content keeps nothing; a node reached both ways is expanded both ways.

use std::collections::HashSet;

/// What kind of object a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Content,
    Snapshot,
    Ingest,
    Lease,
    Image,
    Container,
}

/// One object of one namespace. Snapshot keys are `<snapshotter>/<key>`, content keys digests.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Node {
    pub kind: Resource,
    pub ns: String,
    pub key: String,
}

impl Node {
    pub fn new(kind: Resource, ns: &str, key: impl Into<String>) -> Node {
        Node {
            kind,
            ns: ns.to_string(),
            key: key.into(),
        }
    }

    /// A snapshot node: `<snapshotter>/<key>`.
    pub fn snapshot(ns: &str, snapshotter: &str, key: &str) -> Node {
        Node::new(Resource::Snapshot, ns, format!("{snapshotter}/{key}"))
    }

    /// The snapshotter and key of a snapshot node.
    pub fn snapshot_parts(&self) -> Option<(&str, &str)> {
        self.key.split_once('/')
    }
}

/// What a node references: a snapshot's parent (kept even when flat) and everything its
/// `containerd.io/gc.ref.*` labels (or its target, resources, expected digest) name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs {
    pub parent: Option<Node>,
    pub others: Vec<Node>,
}

/// A node to visit, and whether it was reached flat.
pub type Gray = (Node, bool);

/// Every node reachable from `roots`, following `refs` (called once per node and flatness;
/// `None` for a node that does not exist).
pub fn mark<I, F>(roots: I, mut refs: F) -> HashSet<Node>
where
    I: IntoIterator<Item = Gray>,
    F: FnMut(&Node) -> Option<Refs>,
{
    let mut seen: HashSet<Gray> = HashSet::new();
    let mut stack: Vec<Gray> = roots.into_iter().collect();
    while let Some(g) = stack.pop() {
        if seen.contains(&g) {
            continue;
        }
        if let Some(r) = refs(&g.0) {
            let flat = g.1;
            if let Some(p) = r.parent {
                stack.push((p, flat));
            }
            if !flat {
                stack.extend(r.others.into_iter().map(|n| (n, false)));
            }
        }
        seen.insert(g);
    }
    seen.into_iter().map(|(n, _)| n).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn c(k: &str) -> Node {
        Node::new(Resource::Content, "ns", k)
    }
    fn s(k: &str) -> Node {
        Node::snapshot("ns", "sn", k)
    }

    fn graph() -> HashMap<Node, Refs> {
        let mut g = HashMap::new();
        // manifest -> config, layer; config -> snapshot top; top -> parent base
        g.insert(
            c("m"),
            Refs {
                parent: None,
                others: vec![c("cfg"), c("l1")],
            },
        );
        g.insert(
            c("cfg"),
            Refs {
                parent: None,
                others: vec![s("top")],
            },
        );
        g.insert(c("l1"), Refs::default());
        g.insert(
            s("top"),
            Refs {
                parent: Some(s("base")),
                others: vec![c("x")],
            },
        );
        g.insert(s("base"), Refs::default());
        g.insert(c("x"), Refs::default());
        g.insert(
            c("orphan"),
            Refs {
                parent: None,
                others: vec![c("l1")],
            },
        );
        g
    }

    #[test]
    fn marks_everything_reachable_and_nothing_else() {
        let g = graph();
        let got = mark([(c("m"), false)], |n| g.get(n).cloned());
        let want: HashSet<Node> = [c("m"), c("cfg"), c("l1"), s("top"), s("base"), c("x")].into();
        assert_eq!(got, want);
        assert!(!got.contains(&c("orphan")));
    }

    #[test]
    fn flat_snapshots_keep_parents_only_and_flat_content_nothing() {
        let g = graph();
        let got = mark([(s("top"), true), (c("m"), true)], |n| g.get(n).cloned());
        let want: HashSet<Node> = [s("top"), s("base"), c("m")].into();
        assert_eq!(got, want);
    }

    #[test]
    fn a_node_reached_flat_and_normally_is_expanded() {
        let g = graph();
        let got = mark([(s("top"), true), (s("top"), false)], |n| g.get(n).cloned());
        assert!(got.contains(&c("x")) && got.contains(&s("base")));
    }

    #[test]
    fn missing_nodes_and_cycles_terminate() {
        let mut g = graph();
        g.insert(
            c("a"),
            Refs {
                parent: None,
                others: vec![c("b"), c("gone")],
            },
        );
        g.insert(
            c("b"),
            Refs {
                parent: None,
                others: vec![c("a")],
            },
        );
        let got = mark([(c("a"), false)], |n| g.get(n).cloned());
        assert_eq!(got, [c("a"), c("b"), c("gone")].into());
    }
}
