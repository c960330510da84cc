//! Reference scanning: reads every namespace's objects into the graph the mark walks
//! (containerd `metadata/gc.go` `scanRoots`, `references`, `scanAll`), and answers the
//! references of one node from live records for the sweep's re-mark.

use std::collections::HashMap;
use std::time::SystemTime;

use strata_core::labels::Labels;
use strata_core::time::from_nanos;
use tokio::runtime::Handle;

use super::labels::{expired, is_root, refs as label_refs};
use super::mark::{Gray, Node, Refs, Resource};
use crate::leases::resource_node;
use crate::{Ctx, Result, Runtime, view_of};

/// The reference graph of everything the collector may delete.
#[derive(Debug, Default)]
pub(crate) struct Graph {
    pub roots: Vec<Gray>,
    pub refs: HashMap<Node, Refs>,
    /// Deletable nodes: blobs, snapshots, ingests, leases.
    pub all: Vec<Node>,
}

impl Graph {
    fn add(&mut self, node: Node, refs: Refs, root: bool) {
        if root {
            self.roots.push((node.clone(), false));
        }
        self.refs.insert(node.clone(), refs);
        self.all.push(node);
    }
}

impl Runtime {
    fn label_nodes(&self, ns: &str, labels: &Labels) -> Vec<Node> {
        label_refs(ns, labels, &|n| self.canonical_snapshotter(n))
    }

    /// Scans every namespace (blocking; backend calls run on the current tokio runtime).
    pub(crate) fn scan(&self, now: SystemTime) -> Result<Graph> {
        let mut g = Graph::default();
        self.scan_leases(&mut g, now)?;
        self.scan_images(&mut g)?;
        self.scan_containers(&mut g)?;
        let ingests = self.ingest_expiry()?;
        for ns in self.namespaces().list()? {
            self.scan_content(&mut g, &ns.name)?;
            self.scan_ingests(&mut g, &ns.name, &ingests, now)?;
            self.scan_snapshots(&mut g, &ns.name)?;
        }
        Ok(g)
    }

    fn scan_leases(&self, g: &mut Graph, now: SystemTime) -> Result<()> {
        for (ns, id, rec) in self.leases().all()? {
            let node = Node::new(Resource::Lease, &ns, id.clone());
            g.all.push(node.clone());
            if expired(&rec.labels, now) {
                continue;
            }
            let flat = rec.labels.contains_key(super::labels::FLAT);
            g.roots.push((node, false));
            for r in self.leases().resources_of(&ns, &id)? {
                // Flat applies to blobs and snapshots only: a leased ingest keeps its
                // expected blob either way (containerd's `scanRoots`).
                if let Some(n) = resource_node(&ns, &r, &|sn| self.canonical_snapshotter(sn)) {
                    let f = flat && n.kind != Resource::Ingest;
                    g.roots.push((n, f));
                }
            }
        }
        Ok(())
    }

    fn scan_images(&self, g: &mut Graph) -> Result<()> {
        for (k, rec) in self.images().all()? {
            let Some((ns, _)) = k.split_once('\0') else {
                continue;
            };
            g.roots.push((
                Node::new(Resource::Content, ns, rec.target.digest.clone()),
                false,
            ));
            g.roots.extend(
                self.label_nodes(ns, &rec.labels)
                    .into_iter()
                    .map(|n| (n, false)),
            );
        }
        Ok(())
    }

    fn scan_containers(&self, g: &mut Graph) -> Result<()> {
        for (k, rec) in self.containers().all()? {
            let Some((ns, _)) = k.split_once('\0') else {
                continue;
            };
            if !rec.snapshotter.is_empty() {
                let sn = self.canonical_snapshotter(&rec.snapshotter);
                g.roots
                    .push((Node::snapshot(ns, &sn, &rec.snapshot_key), false));
            }
            g.roots.extend(
                self.label_nodes(ns, &rec.labels)
                    .into_iter()
                    .map(|n| (n, false)),
            );
        }
        Ok(())
    }

    fn scan_content(&self, g: &mut Graph, ns: &str) -> Result<()> {
        for info in self.store().list(&view_of(ns), &[])? {
            let node = Node::new(Resource::Content, ns, info.digest.to_string());
            let refs = Refs {
                parent: None,
                others: self.label_nodes(ns, &info.labels),
            };
            g.add(node, refs, is_root(&info.labels));
        }
        for info in self.remote().list(ns, &[])? {
            let node = Node::new(Resource::Content, ns, info.digest.to_string());
            let refs = Refs {
                parent: None,
                others: self.label_nodes(ns, &info.labels),
            };
            g.add(node, refs, is_root(&info.labels));
        }
        Ok(())
    }

    /// Expiry and expected digest of every runtime ingest record, by `(ns, ref)`.
    fn ingest_expiry(&self) -> Result<HashMap<(String, String), (Option<i64>, Option<String>)>> {
        Ok(self
            .content()
            .ingest_records()?
            .into_iter()
            .map(|(ns, r, rec)| ((ns, r), (rec.expire, rec.expected)))
            .collect())
    }

    fn scan_ingests(
        &self,
        g: &mut Graph,
        ns: &str,
        records: &HashMap<(String, String), (Option<i64>, Option<String>)>,
        now: SystemTime,
    ) -> Result<()> {
        let mut refs: HashMap<String, Option<String>> = HashMap::new();
        for st in self.store().list_statuses(&view_of(ns), &[])? {
            refs.insert(st.reference, st.expected.map(|d| d.to_string()));
        }
        for ((rns, r), (_, expected)) in records {
            if rns == ns {
                refs.entry(r.clone()).or_insert_with(|| expected.clone());
            }
        }
        for (r, expected) in refs {
            let root = records
                .get(&(ns.to_string(), r.clone()))
                .and_then(|(e, _)| *e)
                .is_some_and(|e| from_nanos(e) > now);
            let others = expected
                .map(|d| Node::new(Resource::Content, ns, d))
                .into_iter()
                .collect();
            g.add(
                Node::new(Resource::Ingest, ns, r),
                Refs {
                    parent: None,
                    others,
                },
                root,
            );
        }
        Ok(())
    }

    fn scan_snapshots(&self, g: &mut Graph, ns: &str) -> Result<()> {
        let view = view_of(ns);
        let (backends, _) = self.backends();
        for (sn, b) in backends {
            for info in Handle::current().block_on(b.list(&view, &[]))? {
                let node = Node::snapshot(ns, sn, &info.name);
                let parent =
                    (!info.parent.is_empty()).then(|| Node::snapshot(ns, sn, &info.parent));
                let refs = Refs {
                    parent,
                    others: self.label_nodes(ns, &info.labels),
                };
                g.add(node, refs, is_root(&info.labels));
            }
        }
        Ok(())
    }

    /// The references of `node` as the records are now (None when it does not exist).
    pub(crate) fn live_refs(&self, node: &Node, now: SystemTime) -> Option<Refs> {
        let ns = node.ns.as_str();
        let ctx = Ctx {
            namespace: ns.to_string(),
            lease: None,
        };
        let labels = |l: &Labels| Refs {
            parent: None,
            others: self.label_nodes(ns, l),
        };
        match node.kind {
            Resource::Content => {
                let d = node.key.parse().ok()?;
                self.store()
                    .info(&view_of(ns), &d)
                    .ok()
                    .map(|i| labels(&i.labels))
            }
            Resource::Snapshot => {
                let (sn, key) = node.snapshot_parts()?;
                let b = self.backends().0.get(sn)?;
                let info = Handle::current().block_on(b.stat(&view_of(ns), key)).ok()?;
                let parent =
                    (!info.parent.is_empty()).then(|| Node::snapshot(ns, sn, &info.parent));
                Some(Refs {
                    parent,
                    ..labels(&info.labels)
                })
            }
            Resource::Ingest => {
                let st = self.store().status(&view_of(ns), &node.key).ok();
                let expected = st.and_then(|s| s.expected).map(|d| d.to_string());
                let others = expected
                    .map(|d| Node::new(Resource::Content, ns, d))
                    .into_iter()
                    .collect();
                Some(Refs {
                    parent: None,
                    others,
                })
            }
            Resource::Lease => {
                let rec = self.leases().record(ns, &node.key).ok()??;
                if expired(&rec.labels, now) {
                    return Some(Refs::default());
                }
                let res = self.leases().resources_of(ns, &node.key).ok()?;
                let canonical = |sn: &str| self.canonical_snapshotter(sn);
                let others = res
                    .iter()
                    .filter_map(|r| resource_node(ns, r, &canonical))
                    .collect();
                Some(Refs {
                    parent: None,
                    others,
                })
            }
            Resource::Image => {
                let img = self.images().get(&ctx, &node.key).ok()?;
                let mut r = labels(&img.labels);
                r.others
                    .push(Node::new(Resource::Content, ns, img.target.digest));
                Some(r)
            }
            Resource::Container => {
                let c = self.containers().get(&ctx, &node.key).ok()?;
                let mut r = labels(&c.labels);
                if !c.snapshotter.is_empty() {
                    let sn = self.canonical_snapshotter(&c.snapshotter);
                    r.others.push(Node::snapshot(ns, &sn, &c.snapshot_key));
                }
                Some(r)
            }
        }
    }
}
