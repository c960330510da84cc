//! What the store keeps in RocksDB, and the public record types built from it.
//!
//! Column families (all prefixed `content_`):
//! - `content_info`: `view \0 digest` → [`InfoRecord`] (JSON)
//! - `content_holders`: `digest \0 view` → empty (who holds the bytes)
//! - `content_ingest`: `view \0 ref` → [`IngestRecord`] (JSON)

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use strata_core::digest::Digest;
use strata_core::filters::Adaptor;
use strata_core::labels::Labels;
use strata_core::time::from_nanos;

use crate::error::{Result, corrupt};
use crate::sha256::Checkpoint;

pub(crate) const CF_INFO: &str = "content_info";
pub(crate) const CF_HOLDERS: &str = "content_holders";
pub(crate) const CF_INGEST: &str = "content_ingest";

/// A committed blob as one view sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub digest: Digest,
    pub size: u64,
    pub created_at: SystemTime,
    pub updated_at: SystemTime,
    pub labels: Labels,
}

/// An ingest in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The ref as the client gave it.
    pub reference: String,
    /// Bytes written so far.
    pub offset: u64,
    /// The total the ingest was opened with (0 when unknown).
    pub total: u64,
    pub expected: Option<Digest>,
    pub started_at: SystemTime,
    pub updated_at: SystemTime,
}

/// The stored part of an [`Info`] (the digest is in the key).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InfoRecord {
    pub size: u64,
    pub created: i64,
    pub updated: i64,
    #[serde(default)]
    pub labels: Labels,
}

/// The stored part of a [`Status`]; the offset is the data file's length.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IngestRecord {
    /// Names the ingest directory `ingest/<id>`.
    pub id: String,
    pub total: u64,
    #[serde(default)]
    pub expected: Option<String>,
    pub started: i64,
    pub updated: i64,
    /// Hash state at a block boundary no further than the durable data.
    #[serde(default)]
    pub checkpoint: Option<Checkpoint>,
}

/// `a \0 b`.
pub(crate) fn key(a: &str, b: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(a.len() + b.len() + 1);
    k.extend_from_slice(a.as_bytes());
    k.push(0);
    k.extend_from_slice(b.as_bytes());
    k
}

/// `a \0`: the prefix of every key whose first part is `a`.
pub(crate) fn prefix(a: &str) -> Vec<u8> {
    key(a, "")
}

/// `"digest" (view "v")`: how a corruption error names a stored key.
pub(crate) fn describe(view: &str, name: &str) -> String {
    format!("{name:?} (view {view:?})")
}

/// Parses a digest read back from the database: one that does not parse is
/// [`Error::Corrupt`](crate::Error::Corrupt), never skipped.
pub(crate) fn stored_digest(view: &str, s: &str) -> Result<Digest> {
    Digest::parse(s).map_err(|e| corrupt("content info key", &describe(view, s), e))
}

impl InfoRecord {
    /// Decodes the view's record of `digest`; bad JSON is corruption.
    pub fn decode(view: &str, digest: &str, bytes: &[u8]) -> Result<Self> {
        serde_json::from_slice(bytes)
            .map_err(|e| corrupt("content info", &describe(view, digest), e))
    }
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("info record serialises")
    }
    pub fn to_info(&self, digest: Digest) -> Info {
        Info {
            digest,
            size: self.size,
            created_at: from_nanos(self.created),
            updated_at: from_nanos(self.updated),
            labels: self.labels.clone(),
        }
    }
}

impl IngestRecord {
    /// Decodes the view's ingest of ref `r`; bad JSON or an expected digest that does not
    /// parse is corruption.
    pub fn decode(view: &str, r: &str, bytes: &[u8]) -> Result<Self> {
        let what = || describe(view, r);
        let rec: Self =
            serde_json::from_slice(bytes).map_err(|e| corrupt("ingest record", &what(), e))?;
        if let Some(Err(e)) = rec.expected.as_deref().map(Digest::parse) {
            return Err(corrupt("ingest record", &what(), e));
        }
        Ok(rec)
    }
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("ingest record serialises")
    }
    /// The expected digest (always valid: [`IngestRecord::decode`] checks it).
    pub fn expected_digest(&self) -> Option<Digest> {
        self.expected.as_deref().and_then(|s| Digest::parse(s).ok())
    }
    pub fn to_status(&self, reference: &str, offset: u64) -> Status {
        Status {
            reference: reference.to_string(),
            offset,
            total: self.total,
            expected: self.expected_digest(),
            started_at: from_nanos(self.started),
            updated_at: from_nanos(self.updated),
        }
    }
}

/// Filter fields of content: `digest`, `labels.<k>` (`size` is not filterable).
impl Adaptor for Info {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str) {
            Some("digest") => Some(self.digest.to_string()),
            Some("labels") if path.len() > 1 => self.labels.get(&path[1..].join(".")).cloned(),
            _ => None,
        }
    }
}

/// Filter fields of ingests: `ref` only.
impl Adaptor for Status {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str) {
            Some("ref") => Some(self.reference.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_nul_joined() {
        assert_eq!(key("proxy", "sha256:ab"), b"proxy\0sha256:ab");
        assert!(key("proxy", "x").starts_with(&prefix("proxy")));
        assert!(!key("proxy2", "x").starts_with(&prefix("proxy")));
    }

    #[test]
    fn ingest_record_round_trips() {
        let r = IngestRecord {
            id: "7f".into(),
            total: 10,
            expected: None,
            started: 1,
            updated: 2,
            checkpoint: Some(Checkpoint {
                offset: 64,
                state: [1; 8],
            }),
        };
        let d = IngestRecord::decode("v", "r", &r.encode()).unwrap();
        assert_eq!(d.checkpoint, r.checkpoint);
        assert_eq!(
            (d.id, d.total, d.started, d.updated),
            ("7f".into(), 10, 1, 2)
        );
    }
}
