//! Namespaces (containerd `metadata/namespaces.go`): a name and labels. Any write in a
//! namespace creates it; deleting one that still holds images, blobs, containers or snapshots
//! is FailedPrecondition naming what is left; its leases and ingests go with it.

use serde::{Deserialize, Serialize};
use strata_core::identifiers;
use strata_core::labels::{Labels, validate_pair};

use crate::table::{Table, key};
use crate::{Error, Event, Result, Runtime, view_of};

pub(crate) const CF: &str = "rt_namespaces";

/// A namespace and its labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Namespace {
    pub name: String,
    pub labels: Labels,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Record {
    #[serde(default)]
    labels: Labels,
}

/// The namespace store.
pub struct Namespaces {
    rt: Runtime,
    table: Table,
}

fn not_found(name: &str) -> Error {
    Error::NotFound(format!("namespace {name:?}: not found"))
}

impl Namespaces {
    pub(crate) fn new(rt: Runtime) -> Self {
        let table = Table::new(rt.db().clone(), CF, "namespace");
        Namespaces { rt, table }
    }

    /// Labels of `name`; NotFound when it does not exist.
    pub fn get(&self, name: &str) -> Result<Namespace> {
        let rec: Record = self
            .table
            .get(&key(&[name]))?
            .ok_or_else(|| not_found(name))?;
        Ok(Namespace {
            name: name.to_string(),
            labels: rec.labels,
        })
    }

    /// Every namespace, by name.
    pub fn list(&self) -> Result<Vec<Namespace>> {
        Ok(self
            .table
            .scan::<Record>(&[])?
            .into_iter()
            .map(|(name, r)| Namespace {
                name,
                labels: r.labels,
            })
            .collect())
    }

    /// Creates `name` with `labels`; AlreadyExists when it exists.
    pub fn create(&self, name: &str, labels: &Labels) -> Result<Namespace> {
        identifiers::validate(name)?;
        for (k, v) in labels {
            validate_pair(k, v)?;
        }
        let _g = self.rt.hold();
        if self.table.get::<Record>(&key(&[name]))?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "namespace {name:?}: already exists"
            )));
        }
        let labels: Labels = labels
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        self.table.put(
            &key(&[name]),
            &Record {
                labels: labels.clone(),
            },
        )?;
        self.rt.publish(
            name,
            Event::NamespaceCreate {
                name: name.into(),
                labels: labels.clone(),
            },
        );
        Ok(Namespace {
            name: name.into(),
            labels,
        })
    }

    /// Updates labels: no paths replaces them all, `labels.<k>` sets or (empty) deletes one.
    /// Creates the namespace when missing, as containerd does.
    pub fn update(&self, name: &str, labels: &Labels, paths: &[String]) -> Result<Namespace> {
        identifiers::validate(name)?;
        let _g = self.rt.hold();
        let mut rec: Record = self.table.get(&key(&[name]))?.unwrap_or_default();
        if paths.is_empty() {
            rec.labels.clear();
            for (k, v) in labels {
                set_label(&mut rec.labels, k, v)?;
            }
        }
        for path in paths {
            let Some(k) = path.strip_prefix("labels.") else {
                return Err(Error::InvalidArgument(format!(
                    "cannot update {path:?} field"
                )));
            };
            set_label(&mut rec.labels, k, labels.get(k).map_or("", String::as_str))?;
        }
        self.table.put(&key(&[name]), &rec)?;
        self.rt.publish(
            name,
            Event::NamespaceUpdate {
                name: name.into(),
                labels: labels.clone(),
            },
        );
        Ok(Namespace {
            name: name.into(),
            labels: rec.labels,
        })
    }

    /// Deletes an empty namespace with its leases and ingests.
    pub fn delete(&self, name: &str) -> Result<()> {
        let _g = self.rt.hold();
        if self.table.get::<Record>(&key(&[name]))?.is_none() {
            return Err(not_found(name));
        }
        let left = self.contents(name)?;
        if !left.is_empty() {
            return Err(Error::FailedPrecondition(format!(
                "namespace {name:?} must be empty, but it still has {}",
                left.join(", ")
            )));
        }
        self.rt.leases().drop_namespace(name)?;
        self.rt.content().drop_namespace(name)?;
        self.table.delete(&key(&[name]))?;
        self.rt.forget_namespace(name);
        self.rt
            .publish(name, Event::NamespaceDelete { name: name.into() });
        Ok(())
    }

    /// What keeps `name` from being deleted (containerd's wording).
    fn contents(&self, name: &str) -> Result<Vec<String>> {
        let mut left = Vec::new();
        if self.rt.images().any(name)? {
            left.push("images".to_string());
        }
        if self.rt.store().has_any(&view_of(name))? || !self.rt.remote().records(name)?.is_empty() {
            left.push("blobs".to_string());
        }
        if self.rt.containers().any(name)? {
            left.push("containers".to_string());
        }
        for sn in self.rt.snapshots().nonempty_backends(name)? {
            left.push(format!("snapshots on {sn:?} snapshotter"));
        }
        Ok(left)
    }

    /// Creates the record of `name` if it is missing (no event, as containerd's implicit
    /// bucket creation).
    pub(crate) fn ensure(&self, name: &str) -> Result<()> {
        if self.table.get::<Record>(&key(&[name]))?.is_some() {
            return Ok(());
        }
        self.table.put(&key(&[name]), &Record::default())
    }
}

fn set_label(labels: &mut Labels, k: &str, v: &str) -> Result<()> {
    validate_pair(k, v)?;
    if v.is_empty() {
        labels.remove(k);
    } else {
        labels.insert(k.to_string(), v.to_string());
    }
    Ok(())
}
