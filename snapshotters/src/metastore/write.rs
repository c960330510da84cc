//! Metastore mutations: create, commit, update, remove. Each runs under the metastore mutex
//! and writes one synced `WriteBatch`.

use std::time::SystemTime;

use rocksdb::WriteBatch;
use strata_core::db::sync_write;
use strata_core::labels::{Labels, apply_update, validate, without_empty};
use strata_core::time::to_nanos;

use super::record::{Record, child_key, children_prefix, counter_key, info_key};
use super::{CF_CHILDREN, CF_INFO, CF_META, Metastore, Snapshot, not_found};
use crate::faults::{self, Point};
use crate::snapshotter::validate_key;
use crate::{Error, Info, Kind, Result, Usage};

impl Metastore {
    /// Takes the next id from the persistent counter (never handed out again).
    pub fn reserve_id(&self) -> Result<u64> {
        let _g = self.guard();
        self.next_id()
    }

    /// Checks that `key` could be created now with `parent`; returns the parent ids the new
    /// snapshot would have (immediate parent first). Backends call it before filesystem work.
    /// Only active and view snapshots are created this way (Commit makes committed ones).
    pub fn check_create(
        &self,
        view: &str,
        kind: Kind,
        key: &str,
        parent: &str,
    ) -> Result<Vec<u64>> {
        validate_key(key)?;
        only_active_or_view(kind, key)?;
        self.check_new(view, key, parent)
    }

    /// [`Metastore::check_create`] for a snapshot of any kind (a committed one created
    /// directly: [`Metastore::create_committed_with_id`]).
    pub fn check_new(&self, view: &str, key: &str, parent: &str) -> Result<Vec<u64>> {
        validate_key(key)?;
        if self.record(view, key)?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "snapshot {key}: already exists"
            )));
        }
        if parent.is_empty() {
            return Ok(Vec::new());
        }
        let p = self
            .record(view, parent)?
            .ok_or_else(|| Error::NotFound(format!("missing parent {parent:?} bucket")))?;
        if p.kind() != Kind::Committed {
            return Err(Error::InvalidArgument(format!(
                "parent {parent:?} is not committed snapshot"
            )));
        }
        let mut ids = vec![p.id];
        ids.extend(self.parent_ids(view, &p)?);
        Ok(ids)
    }

    /// Creates an active or view snapshot with a fresh id.
    pub fn create_snapshot(
        &self,
        view: &str,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Snapshot> {
        let id = self.reserve_id()?;
        self.create_snapshot_with_id(view, id, kind, key, parent, labels)
    }

    /// Creates an active or view snapshot with an id from [`Metastore::reserve_id`].
    /// Created == Updated (one clock read); empty label values are dropped.
    pub fn create_snapshot_with_id(
        &self,
        view: &str,
        id: u64,
        kind: Kind,
        key: &str,
        parent: &str,
        labels: Labels,
    ) -> Result<Snapshot> {
        validate_key(key)?;
        only_active_or_view(kind, key)?;
        // The rest of check_create runs under the lock, in insert.
        self.insert(
            view,
            key,
            new_record(id, kind, parent, labels, Usage::default())?,
        )
    }

    /// Creates committed snapshot `name` directly (no active snapshot before it), recording
    /// `usage`, with an id from [`Metastore::reserve_id`].
    pub fn create_committed_with_id(
        &self,
        view: &str,
        id: u64,
        name: &str,
        parent: &str,
        labels: Labels,
        usage: Usage,
    ) -> Result<Snapshot> {
        let rec = new_record(id, Kind::Committed, parent, labels, usage)?;
        self.insert(view, name, rec)
    }

    /// Writes the new record `rec` of `key` (and its parent's back-link) once the key is free
    /// and the parent still there.
    fn insert(&self, view: &str, key: &str, rec: Record) -> Result<Snapshot> {
        let _g = self.guard();
        let parent_ids = self.check_new(view, key, &rec.parent)?;
        let (id, kind) = (rec.id, rec.kind);
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_INFO)?,
            info_key(&self.backend, view, key),
            rec.encode(),
        );
        if let Some(pid) = parent_ids.first() {
            batch.put_cf(
                self.cf(CF_CHILDREN)?,
                child_key(&self.backend, view, *pid, key),
                b"",
            );
        }
        record_seam(Point::CreateRecord, key)?;
        self.db.write_opt(batch, &sync_write())?;
        Ok(Snapshot {
            id,
            kind,
            parent_ids,
        })
    }

    /// Checks that active `key` could be committed as `name` now (AlreadyExists for a taken
    /// name first, then NotFound, then FailedPrecondition for a non-active key).
    pub fn check_commit(&self, view: &str, key: &str, name: &str) -> Result<Snapshot> {
        validate_key(name)?;
        if self.record(view, name)?.is_some() {
            return Err(Error::AlreadyExists(format!(
                "committed snapshot {name}: already exists"
            )));
        }
        let rec = self.record(view, key)?.ok_or_else(|| not_found(key))?;
        if rec.kind() != Kind::Active {
            return Err(Error::FailedPrecondition(format!(
                "snapshot {key:?} is not active"
            )));
        }
        self.snapshot_of(view, &rec)
    }

    /// Turns active `key` into committed `name`, keeping its id and parent, recording `usage`
    /// and replacing (not inheriting) the labels. Returns the id.
    pub fn commit_active(
        &self,
        view: &str,
        key: &str,
        name: &str,
        usage: Usage,
        labels: Labels,
    ) -> Result<u64> {
        validate(&labels).map_err(|e| Error::InvalidArgument(e.0))?;
        let _g = self.guard();
        let snap = self.check_commit(view, key, name)?;
        let mut rec = self.record(view, key)?.ok_or_else(|| not_found(key))?;
        let now = to_nanos(SystemTime::now());
        rec.kind = Kind::Committed;
        rec.created = now;
        rec.updated = now;
        rec.labels = without_empty(labels);
        rec.size = usage.size;
        rec.inodes = usage.inodes;
        let (info, children) = (self.cf(CF_INFO)?, self.cf(CF_CHILDREN)?);
        let mut batch = WriteBatch::default();
        batch.delete_cf(info, info_key(&self.backend, view, key));
        batch.put_cf(info, info_key(&self.backend, view, name), rec.encode());
        if let Some(pid) = snap.parent_ids.first() {
            batch.delete_cf(children, child_key(&self.backend, view, *pid, key));
            batch.put_cf(children, child_key(&self.backend, view, *pid, name), b"");
        }
        record_seam(Point::CommitRecord, key)?;
        self.db.write_opt(batch, &sync_write())?;
        Ok(rec.id)
    }

    /// Updates the labels of `info.name` per `paths` (containerd's masks); everything else in
    /// `info` is ignored. Sets Updated, keeps Created.
    pub fn update_info(&self, view: &str, info: &Info, paths: &[String]) -> Result<Info> {
        validate_key(&info.name)?;
        let _g = self.guard();
        let key = &info.name;
        let mut rec = self.record(view, key)?.ok_or_else(|| not_found(key))?;
        let what = format!("snapshot {key:?}");
        rec.labels = apply_update(&rec.labels, &info.labels, paths, &what)
            .map_err(|e| Error::InvalidArgument(e.0))?;
        rec.updated = to_nanos(SystemTime::now());
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_INFO)?,
            info_key(&self.backend, view, key),
            rec.encode(),
        );
        self.db.write_opt(batch, &sync_write())?;
        Ok(rec.info(key))
    }

    /// Removes a snapshot without children; returns its id and kind.
    pub fn remove(&self, view: &str, key: &str) -> Result<(u64, Kind)> {
        let _g = self.guard();
        let rec = self.record(view, key)?.ok_or_else(|| not_found(key))?;
        let prefix = children_prefix(&self.backend, view, rec.id);
        if let Some(child) = self.scan(CF_CHILDREN, &prefix).next() {
            child?;
            return Err(Error::FailedPrecondition(format!(
                "cannot remove snapshot {key:?} with child"
            )));
        }
        let mut batch = WriteBatch::default();
        batch.delete_cf(self.cf(CF_INFO)?, info_key(&self.backend, view, key));
        if let Some(p) = self
            .record(view, &rec.parent)?
            .filter(|_| !rec.parent.is_empty())
        {
            let link = child_key(&self.backend, view, p.id, key);
            batch.delete_cf(self.cf(CF_CHILDREN)?, link);
        }
        record_seam(Point::RemoveRecord, key)?;
        self.db.write_opt(batch, &sync_write())?;
        Ok((rec.id, rec.kind()))
    }

    /// Removes many snapshots in one synced batch, `keys` ordered children before parents.
    /// A key is removed when it exists and every child it has is removed before it in `keys`;
    /// the others report NotFound or FailedPrecondition and are left as they are. Returns one
    /// result per key: the id of what was removed.
    pub fn remove_many(&self, view: &str, keys: &[String]) -> Result<Vec<Result<u64>>> {
        let _g = self.guard();
        let mut removed = std::collections::HashSet::new();
        let mut batch = WriteBatch::default();
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let res = self.remove_in_batch(view, key, &removed, &mut batch);
            if res.is_ok() {
                removed.insert(key.as_str());
            }
            out.push(res);
        }
        if !removed.is_empty() {
            self.db.write_opt(batch, &sync_write())?;
        }
        Ok(out)
    }

    fn remove_in_batch(
        &self,
        view: &str,
        key: &str,
        removed: &std::collections::HashSet<&str>,
        batch: &mut WriteBatch,
    ) -> Result<u64> {
        let rec = self.record(view, key)?.ok_or_else(|| not_found(key))?;
        let prefix = children_prefix(&self.backend, view, rec.id);
        for item in self.scan(CF_CHILDREN, &prefix) {
            let (k, _) = item?;
            let child = String::from_utf8_lossy(&k[prefix.len()..]).into_owned();
            if !removed.contains(child.as_str()) {
                return Err(Error::FailedPrecondition(format!(
                    "cannot remove snapshot {key:?} with child"
                )));
            }
        }
        batch.delete_cf(self.cf(CF_INFO)?, info_key(&self.backend, view, key));
        if let Some(p) = self
            .record(view, &rec.parent)?
            .filter(|_| !rec.parent.is_empty())
        {
            batch.delete_cf(
                self.cf(CF_CHILDREN)?,
                child_key(&self.backend, view, p.id, key),
            );
        }
        Ok(rec.id)
    }

    /// Increments the counter; caller holds the mutex.
    fn next_id(&self) -> Result<u64> {
        let id = self.counter()? + 1;
        // Not synced: the record that uses the id is written (synced) after it, and the WAL
        // carries this entry with it. An id whose record never became durable may come back
        // after a power loss; `raise_counter` at open skips ids that left a directory behind.
        self.put_counter(id, &rocksdb::WriteOptions::default())?;
        Ok(id)
    }

    fn counter(&self) -> Result<u64> {
        let cf = self.cf(CF_META)?;
        Ok(match self.db.get_cf(cf, counter_key(&self.backend))? {
            Some(v) if v.len() == 8 => u64::from_be_bytes(v[..8].try_into().expect("8 bytes")),
            _ => 0,
        })
    }

    fn put_counter(&self, id: u64, opts: &rocksdb::WriteOptions) -> Result<()> {
        let cf = self.cf(CF_META)?;
        let mut batch = WriteBatch::default();
        batch.put_cf(cf, counter_key(&self.backend), id.to_be_bytes());
        self.db.write_opt(batch, opts)?;
        Ok(())
    }

    /// Makes the next id larger than `seen` (the largest id a backend finds on disk), so an id
    /// is never handed out twice even when a crash lost the counter's last unsynced updates.
    pub fn raise_counter(&self, seen: u64) -> Result<()> {
        let _g = self.guard();
        if self.counter()? < seen {
            self.put_counter(seen, &sync_write())?;
        }
        Ok(())
    }
}

/// InvalidArgument for a committed `kind`: Commit makes those, not a creation.
fn only_active_or_view(kind: Kind, key: &str) -> Result<()> {
    match kind {
        Kind::Committed => Err(Error::InvalidArgument(format!(
            "snapshot type committed invalid for {key:?}; only active and view can be created"
        ))),
        _ => Ok(()),
    }
}

/// A record created now (Created == Updated, one clock read) once `labels` are valid; empty
/// label values are dropped.
fn new_record(id: u64, kind: Kind, parent: &str, labels: Labels, usage: Usage) -> Result<Record> {
    validate(&labels).map_err(|e| Error::InvalidArgument(e.0))?;
    let now = to_nanos(SystemTime::now());
    Ok(Record {
        id,
        kind,
        parent: parent.to_string(),
        created: now,
        updated: now,
        labels: without_empty(labels),
        size: usage.size,
        inodes: usage.inodes,
    })
}

/// The fault-injection seam before the metastore write of `point` on snapshot `key`.
fn record_seam(point: Point, key: &str) -> Result<()> {
    faults::check(point).map_err(|e| Error::io(format!("write the record of snapshot {key:?}"), e))
}
