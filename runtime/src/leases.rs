//! Leases (containerd `metadata/leases.go`): named holds on content, ingests and snapshots.
//! An unexpired lease is a garbage collection root for everything it holds; objects created in
//! a call carrying `containerd-lease` are added to that lease.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use strata_core::digest::Digest;
use strata_core::filters::{Adaptor, parse_all};
use strata_core::labels::{Labels, validate, without_empty};
use strata_core::time::{from_nanos, to_nanos};

use crate::gc::mark::{Node, Resource as NodeKind};
use crate::table::{Table, key, prefix};
use crate::{Ctx, Error, Result, Runtime};

pub(crate) const CF: &str = "rt_leases";
/// `ns \0 lease \0 type \0 id` → empty.
pub(crate) const CF_RESOURCES: &str = "rt_lease_resources";

/// A lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub id: String,
    pub created: SystemTime,
    pub labels: Labels,
}

/// What a lease holds: `content` (a digest), `ingests` (a ref) or `snapshots/<snapshotter>`
/// (a key).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Resource {
    pub id: String,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub created: i64,
    #[serde(default)]
    pub labels: Labels,
}

/// Filter fields: `id`, `labels.<k>`.
impl Adaptor for Lease {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str)? {
            "id" => (!self.id.is_empty()).then(|| self.id.clone()),
            "labels" => self.labels.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

/// The lease store of the runtime.
pub struct Leases {
    rt: Runtime,
    table: Table,
    resources: Table,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("lease {id:?}: not found"))
}

impl Leases {
    pub(crate) fn new(rt: Runtime) -> Self {
        let table = Table::new(rt.db().clone(), CF, "lease");
        let resources = Table::new(rt.db().clone(), CF_RESOURCES, "lease resource");
        Leases {
            rt,
            table,
            resources,
        }
    }

    /// Creates lease `id` (a random one when empty, as containerd's service does);
    /// AlreadyExists when taken.
    pub fn create(&self, ctx: &Ctx, id: &str, labels: &Labels) -> Result<Lease> {
        let id = if id.is_empty() {
            random_id()
        } else {
            id.to_string()
        };
        let id = id.as_str();
        validate(labels)?;
        let _g = self.rt.hold();
        self.rt.ensure_namespace(&ctx.namespace)?;
        let k = key(&[&ctx.namespace, id]);
        if self.table.get::<Record>(&k)?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "lease {id:?}: already exists"
            )));
        }
        let rec = Record {
            created: to_nanos(SystemTime::now()),
            labels: without_empty(labels.clone()),
        };
        self.table.put(&k, &rec)?;
        self.rt.changed([node(&ctx.namespace, id)], false);
        Ok(lease(id, rec))
    }

    /// Deletes a lease and its resource list; what only it held becomes garbage.
    pub fn delete(&self, ctx: &Ctx, id: &str) -> Result<()> {
        let _g = self.rt.hold();
        let k = key(&[&ctx.namespace, id]);
        if self.table.get::<Record>(&k)?.is_none() {
            return Err(not_found(id));
        }
        self.remove_records(&ctx.namespace, id)?;
        self.rt.changed([], true);
        Ok(())
    }

    /// The namespace's leases matching any of `filters`, by id.
    pub fn list(&self, ctx: &Ctx, filters: &[String]) -> Result<Vec<Lease>> {
        let filter = parse_all(filters)?;
        Ok(self
            .table
            .scan::<Record>(&prefix(&[&ctx.namespace]))?
            .into_iter()
            .map(|(id, r)| lease(&id, r))
            .filter(|l| filter.matches(l))
            .collect())
    }

    /// Adds a resource to lease `id` (NotFound for a missing lease; InvalidArgument for a bad
    /// type or digest; NotImplemented for an unknown type).
    pub fn add_resource(&self, ctx: &Ctx, id: &str, r: &Resource) -> Result<()> {
        let (kind, rid) = self.parse(r)?;
        let _g = self.rt.hold();
        self.require(&ctx.namespace, id)?;
        self.resources
            .put(&key(&[&ctx.namespace, id, &kind, &rid]), &())?;
        self.rt.changed([node(&ctx.namespace, id)], false);
        Ok(())
    }

    pub fn delete_resource(&self, ctx: &Ctx, id: &str, r: &Resource) -> Result<()> {
        let (kind, rid) = self.parse(r)?;
        let _g = self.rt.hold();
        self.require(&ctx.namespace, id)?;
        self.resources
            .delete(&key(&[&ctx.namespace, id, &kind, &rid]))?;
        self.rt.changed([], true);
        Ok(())
    }

    pub fn list_resources(&self, ctx: &Ctx, id: &str) -> Result<Vec<Resource>> {
        self.require(&ctx.namespace, id)?;
        self.resources_of(&ctx.namespace, id)
    }

    /// Every lease of every namespace: `(namespace, id, record)`.
    pub(crate) fn all(&self) -> Result<Vec<(String, String, Record)>> {
        let mut out = Vec::new();
        for (k, rec) in self.table.scan::<Record>(&[])? {
            if let Some((ns, id)) = k.split_once('\0') {
                out.push((ns.to_string(), id.to_string(), rec));
            }
        }
        Ok(out)
    }

    /// The lease's record, if any.
    pub(crate) fn record(&self, ns: &str, id: &str) -> Result<Option<Record>> {
        self.table.get(&key(&[ns, id]))
    }

    pub(crate) fn resources_of(&self, ns: &str, id: &str) -> Result<Vec<Resource>> {
        let p = prefix(&[ns, id]);
        let mut out = Vec::new();
        for k in self.resources.keys(&p)? {
            let rest = String::from_utf8_lossy(&k[p.len()..]).into_owned();
            if let Some((kind, rid)) = rest.split_once('\0') {
                out.push(Resource {
                    id: rid.into(),
                    kind: kind.into(),
                });
            }
        }
        Ok(out)
    }

    /// Adds a resource to the context's lease, if the call carries one (NotFound when that
    /// lease does not exist). Returns whether it was added. Callers hold the gate.
    pub(crate) fn attach(&self, ctx: &Ctx, kind: &str, id: &str) -> Result<bool> {
        let Some(lease) = &ctx.lease else {
            return Ok(false);
        };
        if self
            .table
            .get::<Record>(&key(&[&ctx.namespace, lease]))?
            .is_none()
        {
            return Err(Error::NotFound(format!("lease {lease:?} does not exist")));
        }
        self.resources
            .put(&key(&[&ctx.namespace, lease, kind, id]), &())?;
        self.rt.changed([node(&ctx.namespace, lease)], false);
        Ok(true)
    }

    /// Removes a resource from the context's lease, if any.
    pub(crate) fn detach(&self, ctx: &Ctx, kind: &str, id: &str) -> Result<()> {
        if let Some(lease) = &ctx.lease {
            self.resources
                .delete(&key(&[&ctx.namespace, lease, kind, id]))?;
        }
        Ok(())
    }

    /// Whether the context's lease already holds the resource.
    pub(crate) fn holds(&self, ctx: &Ctx, kind: &str, id: &str) -> Result<bool> {
        match &ctx.lease {
            Some(lease) => self.resources.any(&key(&[&ctx.namespace, lease, kind, id])),
            None => Ok(false),
        }
    }

    /// Deletes leases in one batch (the collector's sweep of expired ones).
    pub(crate) fn delete_many(&self, leases: &[(String, String)]) -> Result<()> {
        for (ns, id) in leases {
            self.remove_records(ns, id)?;
        }
        Ok(())
    }

    /// Deletes every lease of namespace `ns` (the namespace is being deleted).
    pub(crate) fn drop_namespace(&self, ns: &str) -> Result<()> {
        for (id, _) in self.table.scan::<Record>(&prefix(&[ns]))? {
            self.remove_records(ns, &id)?;
        }
        Ok(())
    }

    fn remove_records(&self, ns: &str, id: &str) -> Result<()> {
        let mut b = rocksdb::WriteBatch::default();
        self.table.batch_delete(&mut b, &key(&[ns, id]))?;
        for k in self.resources.keys(&prefix(&[ns, id]))? {
            self.resources.batch_delete(&mut b, &k)?;
        }
        self.table.write(b)
    }

    fn require(&self, ns: &str, id: &str) -> Result<()> {
        match self.table.get::<Record>(&key(&[ns, id]))? {
            Some(_) => Ok(()),
            None => Err(not_found(id)),
        }
    }

    /// containerd's `parseLeaseResource`: the stored type and id.
    fn parse(&self, r: &Resource) -> Result<(String, String)> {
        let parts: Vec<&str> = r.kind.split('/').collect();
        match parts[0] {
            "content" | "ingests" if parts.len() != 1 => Err(Error::InvalidArgument(format!(
                "invalid resource type {}",
                r.kind
            ))),
            "content" => match Digest::parse(&r.id) {
                Ok(d) => Ok(("content".into(), d.to_string())),
                Err(e) => Err(Error::InvalidArgument(format!(
                    "invalid content resource id {}: {e}",
                    r.id
                ))),
            },
            "ingests" => Ok(("ingests".into(), r.id.clone())),
            // Kept as the client named it (containerd lists it back that way); the collector
            // resolves aliases.
            "snapshots" if parts.len() == 2 => Ok((r.kind.clone(), r.id.clone())),
            "snapshots" => Err(Error::InvalidArgument(format!(
                "invalid snapshot resource type {}",
                r.kind
            ))),
            _ => Err(Error::NotImplemented(format!(
                "resource type {} not supported yet",
                r.kind
            ))),
        }
    }
}

/// containerd's `WithRandomID`: the clock's nanoseconds and three random bytes.
fn random_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    let b: [u8; 3] = rand::random();
    format!("{nanos}-{}", hex::encode(b))
}

fn lease(id: &str, r: Record) -> Lease {
    Lease {
        id: id.to_string(),
        created: from_nanos(r.created),
        labels: r.labels,
    }
}

fn node(ns: &str, id: &str) -> Node {
    Node::new(NodeKind::Lease, ns, id)
}

/// The node a lease resource holds; `snapshotter` maps a snapshotter name to its backend.
pub(crate) fn resource_node(
    ns: &str,
    r: &Resource,
    snapshotter: &dyn Fn(&str) -> String,
) -> Option<Node> {
    match r.kind.as_str() {
        "content" => Some(Node::new(NodeKind::Content, ns, r.id.clone())),
        "ingests" => Some(Node::new(NodeKind::Ingest, ns, r.id.clone())),
        k => k
            .strip_prefix("snapshots/")
            .map(|sn| Node::snapshot(ns, &snapshotter(sn), &r.id)),
    }
}
