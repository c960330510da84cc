//! Containers (containerd `metadata/containers.go`): metadata only — id, image, runtime, OCI
//! spec, snapshot. Every container is a garbage collection root keeping its snapshot (and so
//! the snapshot's parents) and what its labels reference.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use strata_core::filters::{Adaptor, parse_all};
use strata_core::identifiers;
use strata_core::labels::{Labels, validate, without_empty};
use strata_core::time::{from_nanos, to_nanos};

use crate::gc::mark::{Node, Resource};
use crate::table::{Table, key, prefix};
use crate::{AnyValue, Ctx, Error, Event, Result, Runtime};

pub(crate) const CF: &str = "rt_containers";

/// The runtime a container's tasks use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRuntime {
    pub name: String,
    #[serde(default)]
    pub options: Option<AnyValue>,
}

/// A container record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub labels: Labels,
    pub image: String,
    pub runtime: ContainerRuntime,
    pub spec: Option<AnyValue>,
    pub snapshotter: String,
    pub snapshot_key: String,
    pub created: SystemTime,
    pub updated: SystemTime,
    pub extensions: BTreeMap<String, AnyValue>,
    pub sandbox: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub image: String,
    pub runtime: ContainerRuntime,
    #[serde(default)]
    pub spec: Option<AnyValue>,
    #[serde(default)]
    pub snapshotter: String,
    #[serde(default)]
    pub snapshot_key: String,
    pub created: i64,
    pub updated: i64,
    #[serde(default)]
    pub extensions: BTreeMap<String, AnyValue>,
    #[serde(default)]
    pub sandbox: String,
}

impl Record {
    fn from(c: &Container, created: i64, updated: i64) -> Record {
        Record {
            labels: without_empty(c.labels.clone()),
            image: c.image.clone(),
            runtime: c.runtime.clone(),
            spec: c.spec.clone(),
            snapshotter: c.snapshotter.clone(),
            snapshot_key: c.snapshot_key.clone(),
            created,
            updated,
            extensions: c.extensions.clone(),
            sandbox: c.sandbox.clone(),
        }
    }

    fn container(self, id: &str) -> Container {
        Container {
            id: id.to_string(),
            labels: self.labels,
            image: self.image,
            runtime: self.runtime,
            spec: self.spec,
            snapshotter: self.snapshotter,
            snapshot_key: self.snapshot_key,
            created: from_nanos(self.created),
            updated: from_nanos(self.updated),
            extensions: self.extensions,
            sandbox: self.sandbox,
        }
    }
}

/// Filter fields: `id`, `image`, `runtime.name`, `labels.<k>`.
impl Adaptor for Container {
    fn field(&self, path: &[String]) -> Option<String> {
        let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
        match path.first().map(String::as_str)? {
            "id" => non_empty(&self.id),
            "image" => non_empty(&self.image),
            "runtime" if path.get(1).is_some_and(|p| p == "name") => non_empty(&self.runtime.name),
            "labels" => self.labels.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

/// The container store of the runtime.
pub struct Containers {
    rt: Runtime,
    table: Table,
}

fn not_found(id: &str) -> Error {
    Error::NotFound(format!("container {id:?}: not found"))
}

impl Containers {
    pub(crate) fn new(rt: Runtime) -> Self {
        let table = Table::new(rt.db().clone(), CF, "container");
        Containers { rt, table }
    }

    pub fn get(&self, ctx: &Ctx, id: &str) -> Result<Container> {
        let rec: Record = self
            .table
            .get(&key(&[&ctx.namespace, id]))?
            .ok_or_else(|| not_found(id))?;
        Ok(rec.container(id))
    }

    /// The namespace's containers matching any of `filters`, by id.
    pub fn list(&self, ctx: &Ctx, filters: &[String]) -> Result<Vec<Container>> {
        let filter = parse_all(filters)?;
        let mut out = Vec::new();
        for (id, rec) in self.table.scan::<Record>(&prefix(&[&ctx.namespace]))? {
            let c = rec.container(&id);
            if filter.matches(&c) {
                out.push(c);
            }
        }
        Ok(out)
    }

    /// Creates a container (Created = Updated = now); AlreadyExists for a taken id.
    pub fn create(&self, ctx: &Ctx, c: Container) -> Result<Container> {
        validate_container(&c)?;
        let _g = self.rt.hold();
        self.rt.ensure_namespace(&ctx.namespace)?;
        let k = key(&[&ctx.namespace, &c.id]);
        if self.table.get::<Record>(&k)?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "container {:?}: already exists",
                c.id
            )));
        }
        let now = to_nanos(SystemTime::now());
        self.table.put(&k, &Record::from(&c, now, now))?;
        let out = self.get(ctx, &c.id)?;
        self.rt.changed([node(ctx, &c.id)], false);
        self.rt.publish(
            &ctx.namespace,
            Event::ContainerCreate {
                id: out.id.clone(),
                image: out.image.clone(),
                runtime: out.runtime.name.clone(),
                runtime_options: out.runtime.options.clone(),
            },
        );
        Ok(out)
    }

    /// Updates `c.id` per containerd's field paths: none = `labels`, `spec`, `extensions`,
    /// `image`, `snapshotkey` (snapshotter and runtime name must then be unchanged), or any of
    /// those and `labels.<k>`, `extensions.<k>`.
    pub fn update(&self, ctx: &Ctx, c: Container, paths: &[String]) -> Result<Container> {
        if c.id.is_empty() {
            return Err(Error::InvalidArgument("must specify a container id".into()));
        }
        let _g = self.rt.hold();
        let k = key(&[&ctx.namespace, &c.id]);
        let rec: Record = self.table.get(&k)?.ok_or_else(|| not_found(&c.id))?;
        let created = rec.created;
        let mut updated = rec.container(&c.id);
        let default_paths =
            ["labels", "spec", "extensions", "image", "snapshotkey"].map(String::from);
        let paths = if paths.is_empty() {
            if updated.snapshotter != c.snapshotter {
                return Err(Error::InvalidArgument(
                    "container.snapshotter field is immutable".into(),
                ));
            }
            if updated.runtime.name != c.runtime.name {
                return Err(Error::InvalidArgument(
                    "container.runtime.name field is immutable".into(),
                ));
            }
            &default_paths[..]
        } else {
            paths
        };
        for path in paths {
            apply_path(&mut updated, &c, path)?;
        }
        validate_container(&updated)?;
        self.table.put(
            &k,
            &Record::from(&updated, created, to_nanos(SystemTime::now())),
        )?;
        let out = self.get(ctx, &c.id)?;
        self.rt.changed([node(ctx, &c.id)], false);
        self.rt.publish(
            &ctx.namespace,
            Event::ContainerUpdate {
                id: out.id.clone(),
                image: out.image.clone(),
                labels: out.labels.clone(),
                snapshot_key: out.snapshot_key.clone(),
            },
        );
        Ok(out)
    }

    /// Deletes the record (its snapshot becomes garbage unless something else keeps it).
    pub fn delete(&self, ctx: &Ctx, id: &str) -> Result<()> {
        let _g = self.rt.hold();
        let k = key(&[&ctx.namespace, id]);
        if self.table.get::<Record>(&k)?.is_none() {
            return Err(not_found(id));
        }
        if self.rt.task_manager().has(&ctx.namespace, id) {
            return Err(Error::FailedPrecondition(format!(
                "container {id:?} has a task: delete the task first"
            )));
        }
        self.table.delete(&k)?;
        self.rt.changed([], true);
        self.rt
            .publish(&ctx.namespace, Event::ContainerDelete { id: id.into() });
        Ok(())
    }

    pub(crate) fn any(&self, ns: &str) -> Result<bool> {
        self.table.any(&prefix(&[ns]))
    }

    /// Every container of every namespace: `(namespace \0 id, record)`.
    pub(crate) fn all(&self) -> Result<Vec<(String, Record)>> {
        self.table.scan::<Record>(&[])
    }
}

fn node(ctx: &Ctx, id: &str) -> Node {
    Node::new(Resource::Container, &ctx.namespace, id)
}

fn apply_path(updated: &mut Container, c: &Container, path: &str) -> Result<()> {
    if let Some(k) = path.strip_prefix("labels.") {
        updated
            .labels
            .insert(k.into(), c.labels.get(k).cloned().unwrap_or_default());
        return Ok(());
    }
    if let Some(k) = path.strip_prefix("extensions.") {
        match c.extensions.get(k) {
            Some(v) => updated.extensions.insert(k.into(), v.clone()),
            None => updated.extensions.remove(k),
        };
        return Ok(());
    }
    match path {
        "labels" => updated.labels = c.labels.clone(),
        "spec" => updated.spec = c.spec.clone(),
        "extensions" => updated.extensions = c.extensions.clone(),
        "image" => updated.image = c.image.clone(),
        "snapshotkey" => updated.snapshot_key = c.snapshot_key.clone(),
        _ => {
            return Err(Error::InvalidArgument(format!(
                "cannot update {path:?} field on {:?}",
                c.id
            )));
        }
    }
    Ok(())
}

/// containerd's `validateContainer`.
fn validate_container(c: &Container) -> Result<()> {
    identifiers::validate(&c.id)
        .map_err(|e| Error::InvalidArgument(format!("container.id: {}", e.0)))?;
    if c.extensions.keys().any(String::is_empty) {
        return Err(Error::InvalidArgument(
            "container.extension keys must not be zero-length".into(),
        ));
    }
    validate(&c.labels)
        .map_err(|e| Error::InvalidArgument(format!("containers.labels: {}", e.0)))?;
    if c.runtime.name.is_empty() {
        return Err(Error::InvalidArgument(
            "container.runtime.name must be set".into(),
        ));
    }
    if c.spec.is_none() {
        return Err(Error::InvalidArgument("container.spec must be set".into()));
    }
    if !c.snapshot_key.is_empty() && c.snapshotter.is_empty() {
        return Err(Error::InvalidArgument(
            "container.snapshotter must be set if container.snapshot_key is set".into(),
        ));
    }
    Ok(())
}
