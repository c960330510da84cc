//! The stored form of one snapshot and the byte layout of every key.

use serde::{Deserialize, Serialize};
use strata_core::filters::Adaptor;
use strata_core::labels::Labels;
use strata_core::time::from_nanos;

use crate::{Error, Info, Kind, Result, Usage};

/// One snapshot as kept in `snap_info` (JSON value).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub id: u64,
    /// Stored as containerd's kind byte; an unknown byte fails [`Record::decode`].
    #[serde(with = "kind_byte")]
    pub kind: Kind,
    #[serde(default)]
    pub parent: String,
    pub created: i64,
    pub updated: i64,
    #[serde(default)]
    pub labels: Labels,
    #[serde(default)]
    pub size: i64,
    #[serde(default)]
    pub inodes: i64,
}

impl Record {
    pub fn kind(&self) -> Kind {
        self.kind
    }

    pub fn info(&self, name: &str) -> Info {
        Info {
            name: name.to_string(),
            parent: self.parent.clone(),
            kind: self.kind(),
            created: from_nanos(self.created),
            updated: from_nanos(self.updated),
            labels: self.labels.clone(),
        }
    }

    pub fn usage(&self) -> Usage {
        Usage {
            size: self.size,
            inodes: self.inodes,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a record always serialises")
    }

    /// Decodes the value stored under `key` (a `snap_info` key). A value that is not a
    /// record, or names an unknown kind, is [`Error::Corrupt`] (logged), never a default.
    pub fn decode(key: &[u8], bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes).map_err(|e| {
            let msg = format!("corrupt snapshot record {}: {e}", describe_key(key));
            tracing::error!("{msg}");
            Error::Corrupt(msg)
        })
    }
}

/// `"name" (backend "b", view "v")` for a `backend \0 view \0 name` key.
fn describe_key(key: &[u8]) -> String {
    let mut parts = key.splitn(3, |b| *b == 0).map(String::from_utf8_lossy);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(backend), Some(view), Some(name)) => {
            format!("{name:?} (backend {backend:?}, view {view:?})")
        }
        _ => format!("{:?}", String::from_utf8_lossy(key)),
    }
}

/// Serde of [`Kind`] as its stored byte, refusing bytes no kind has.
mod kind_byte {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::{Kind, kind_from_u8, kind_to_u8};

    pub fn serialize<S: Serializer>(kind: &Kind, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(kind_to_u8(*kind))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Kind, D::Error> {
        let b = u8::deserialize(d)?;
        kind_from_u8(b).ok_or_else(|| D::Error::custom(format!("unknown snapshot kind byte {b}")))
    }
}

/// The stored byte of a kind (containerd's numbering: view 1, active 2, committed 3).
fn kind_to_u8(kind: Kind) -> u8 {
    match kind {
        Kind::View => 1,
        Kind::Active => 2,
        Kind::Committed => 3,
    }
}

/// The kind of a stored byte; `None` for a byte no kind has (a corrupt record).
fn kind_from_u8(b: u8) -> Option<Kind> {
    match b {
        1 => Some(Kind::View),
        2 => Some(Kind::Active),
        3 => Some(Kind::Committed),
        _ => None,
    }
}

/// `backend \0 view \0`: the prefix of every record and child link of one view.
pub(crate) fn view_prefix(backend: &str, view: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(backend.len() + view.len() + 2);
    k.extend_from_slice(backend.as_bytes());
    k.push(0);
    k.extend_from_slice(view.as_bytes());
    k.push(0);
    k
}

/// `backend \0 view \0 name` in `snap_info`.
pub(crate) fn info_key(backend: &str, view: &str, name: &str) -> Vec<u8> {
    let mut k = view_prefix(backend, view);
    k.extend_from_slice(name.as_bytes());
    k
}

/// `backend \0 view \0 <parent id, 8 bytes BE>`: prefix of a parent's child links.
pub(crate) fn children_prefix(backend: &str, view: &str, parent_id: u64) -> Vec<u8> {
    let mut k = view_prefix(backend, view);
    k.extend_from_slice(&parent_id.to_be_bytes());
    k
}

/// `backend \0 view \0 <parent id> child-name` in `snap_children`.
pub(crate) fn child_key(backend: &str, view: &str, parent_id: u64, child: &str) -> Vec<u8> {
    let mut k = children_prefix(backend, view, parent_id);
    k.extend_from_slice(child.as_bytes());
    k
}

/// `backend \0 next_id` in `snap_meta`: the id counter.
pub(crate) fn counter_key(backend: &str) -> Vec<u8> {
    let mut k = backend.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(b"next_id");
    k
}

/// Filter fields of an [`Info`]: `name`, `parent` (always present), `kind`, `labels.<k>`.
pub(crate) struct InfoFields<'a>(pub &'a Info);

impl Adaptor for InfoFields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        let info = self.0;
        match path {
            [f] if f == "name" => Some(info.name.clone()),
            [f] if f == "parent" => Some(info.parent.clone()),
            [f] if f == "kind" => Some(info.kind.as_str().to_string()),
            [f, rest @ ..] if f == "labels" && !rest.is_empty() => {
                info.labels.get(&rest.join(".")).cloned()
            }
            _ => None,
        }
    }
}
