//! The sweep: removes the records of unreachable nodes in a few batches (one per kind and
//! view), snapshots children first; then, without the gate, the files.

use std::collections::{BTreeMap, HashMap};

use strata_core::digest::Digest;
use tokio::runtime::Handle;

use super::GcStats;
use super::mark::{Node, Refs, Resource};
use crate::{Result, Runtime, view_of};

/// What the records' removal left for the files' removal.
#[derive(Debug, Default)]
pub(crate) struct Reclaim {
    digests: Vec<Digest>,
    backends: Vec<String>,
}

/// The depth of a snapshot in its parent chain within `refs` (0 for a base layer).
fn depth(node: &Node, refs: &HashMap<Node, Refs>) -> usize {
    let mut d = 0;
    let mut cur = node;
    while let Some(p) = refs.get(cur).and_then(|r| r.parent.as_ref()) {
        d += 1;
        cur = p;
    }
    d
}

impl Runtime {
    /// Removes the records of `doomed` (callers hold the gate exclusively).
    pub(crate) fn sweep(
        &self,
        doomed: &[Node],
        refs: &HashMap<Node, Refs>,
        stats: &mut GcStats,
    ) -> Result<Reclaim> {
        let mut leases = Vec::new();
        let mut ingests = Vec::new();
        let mut blobs: BTreeMap<&str, Vec<Digest>> = BTreeMap::new();
        let mut snaps: BTreeMap<(&str, &str), Vec<(usize, String)>> = BTreeMap::new();
        for n in doomed {
            match n.kind {
                Resource::Lease => leases.push((n.ns.clone(), n.key.clone())),
                Resource::Ingest => ingests.push((n.ns.clone(), n.key.clone())),
                Resource::Content => match n.key.parse() {
                    Ok(d) => blobs.entry(&n.ns).or_default().push(d),
                    Err(_) => tracing::warn!(key = %n.key, "unparsable digest in a content node"),
                },
                Resource::Snapshot => {
                    if let Some((sn, key)) = n.snapshot_parts() {
                        let entry = snaps.entry((sn, &n.ns)).or_default();
                        entry.push((depth(n, refs), key.to_string()));
                    }
                }
                Resource::Image | Resource::Container => {}
            }
        }
        self.leases().delete_many(&leases)?;
        stats.leases = leases.len();
        self.content().drop_ingests(&ingests)?;
        stats.ingests = ingests.len();
        let mut reclaim = Reclaim::default();
        for (ns, digests) in blobs {
            stats.content += self.remote().delete_many(ns, &digests)?;
            let removed = self.store().delete_many(&view_of(ns), &digests)?;
            stats.content += removed.len();
            reclaim.digests.extend(removed);
        }
        for ((sn, ns), mut keys) in snaps {
            keys.sort_by(|a, b| b.0.cmp(&a.0));
            let keys: Vec<String> = keys.into_iter().map(|(_, k)| k).collect();
            let Some(b) = self.backends().0.get(sn) else {
                continue;
            };
            let results = Handle::current().block_on(b.remove_many(&view_of(ns), &keys))?;
            for (key, res) in keys.iter().zip(results) {
                match res {
                    Ok(()) => stats.snapshots += 1,
                    // Removed by a client since the scan: nothing left to do.
                    Err(strata_snapshotters::Error::NotFound(_)) => {}
                    Err(e) => tracing::warn!(snapshotter = sn, key, error = %e, "snapshot kept"),
                }
            }
            reclaim.backends.push(sn.to_string());
        }
        Ok(reclaim)
    }

    /// Deletes the files of what [`Runtime::sweep`] removed (no gate needed).
    pub(crate) fn reclaim(&self, r: Reclaim) -> Result<()> {
        self.store().reclaim(&r.digests)?;
        for sn in r.backends {
            if let Some(b) = self.backends().0.get(&sn) {
                Handle::current().block_on(b.reclaim())?;
            }
        }
        Ok(())
    }
}
