//! Namespaced content (containerd `metadata/content.go`) over the shared content store: each
//! namespace is the view `ns/<name>`, so a blob is visible in a namespace only once written or
//! claimed there. Bytes another view already holds are shared without re-sending them
//! (containerd's default "shared" policy). Calls under a lease add what they create to it;
//! ingests outside a lease expire after 24 hours.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use strata_content::{BlobReader, Info, Status, Writer};
use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_core::time::to_nanos;

use crate::gc::mark::{Node, Resource};
use crate::table::{Table, key, prefix};
use crate::{Ctx, Error, Event, Result, Runtime};

/// `ns \0 ref` → [`IngestRecord`].
pub(crate) const CF_INGESTS: &str = "rt_ingests";

/// How long an ingest outside a lease is kept (containerd: 24 hours).
pub const INGEST_EXPIRY: Duration = Duration::from_secs(24 * 3600);

/// What the runtime adds to an ingest of the content store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct IngestRecord {
    /// Nanoseconds; none when a lease holds it.
    #[serde(default)]
    pub expire: Option<i64>,
    /// The digest a shared ingest will claim.
    #[serde(default)]
    pub expected: Option<String>,
}

/// An ingest whose bytes another view already holds: nothing is written unless the client
/// sends data (then [`NsContent::unshare`] copies the blob into a real ingest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedIngest {
    pub digest: Digest,
    pub size: u64,
    pub started: SystemTime,
}

/// What opening an ingest gives.
pub enum Opened {
    Live(Writer),
    Shared(SharedIngest),
}

/// The runtime's namespaced content.
pub struct NsContent {
    rt: Runtime,
    ingests: Table,
}

fn node(ctx: &Ctx, d: &Digest) -> Node {
    Node::new(Resource::Content, &ctx.namespace, d.to_string())
}

impl NsContent {
    pub(crate) fn new(rt: Runtime) -> Self {
        let ingests = Table::new(rt.db().clone(), CF_INGESTS, "ingest");
        NsContent { rt, ingests }
    }

    // Remote blobs: a fill claims the blob in the store *before* it drops the record, so a
    // call that misses both looks at the store once more (the fill may have ended in between).

    pub fn info(&self, ctx: &Ctx, d: &Digest) -> Result<Info> {
        match self.rt.store().info(&ctx.view(), d) {
            Err(strata_content::Error::NotFound(_)) => {
                match self.rt.remote().info(&ctx.namespace, d)? {
                    Some(info) => Ok(info),
                    None => Ok(self.rt.store().info(&ctx.view(), d)?),
                }
            }
            r => Ok(r?),
        }
    }

    pub fn update(&self, ctx: &Ctx, d: &Digest, labels: &Labels, paths: &[String]) -> Result<Info> {
        let _g = self.rt.hold();
        let store = self.rt.store();
        let info = match store.update(&ctx.view(), d, labels, paths) {
            Err(strata_content::Error::NotFound(_)) => {
                match self.rt.remote().update(&ctx.namespace, d, labels, paths)? {
                    Some(info) => info,
                    None => store.update(&ctx.view(), d, labels, paths)?,
                }
            }
            r => r?,
        };
        self.rt.remote().labelled(&ctx.namespace, d, labels);
        self.rt.changed([node(ctx, d)], false);
        Ok(info)
    }

    /// The namespace's blobs matching `filters` (remote ones too), by digest.
    pub fn list(&self, ctx: &Ctx, filters: &[String]) -> Result<Vec<Info>> {
        // Records first: a fill ending in between is then in both lists, never in neither.
        let remote = self.rt.remote().list(&ctx.namespace, filters)?;
        let mut out = self.rt.store().list(&ctx.view(), filters)?;
        if !remote.is_empty() {
            let held: HashSet<Digest> = out.iter().map(|i| i.digest.clone()).collect();
            out.extend(remote.into_iter().filter(|i| !held.contains(&i.digest)));
            out.sort_by_key(|i| i.digest.to_string());
        }
        Ok(out)
    }

    /// Deletes the namespace's record of `d` (the bytes go when no view holds them).
    pub fn delete(&self, ctx: &Ctx, d: &Digest) -> Result<()> {
        let _g = self.rt.hold();
        match self.rt.store().delete(&ctx.view(), d) {
            Err(strata_content::Error::NotFound(_)) => {
                if !self.rt.remote().delete(&ctx.namespace, d)? {
                    self.rt.store().delete(&ctx.view(), d)?;
                }
            }
            r => r?,
        }
        // The call's lease no longer holds it (containerd's `removeContentLease`).
        self.rt.leases().detach(ctx, "content", &d.to_string())?;
        self.rt.changed([], true);
        self.rt.publish(
            &ctx.namespace,
            Event::ContentDelete {
                digest: d.to_string(),
            },
        );
        Ok(())
    }

    /// A reader of `d`; a remote blob is waited for until its fill is done (blocking).
    pub fn reader(&self, ctx: &Ctx, d: &Digest) -> Result<BlobReader> {
        match self.rt.store().reader(&ctx.view(), d) {
            Err(strata_content::Error::NotFound(_)) => {
                if self.rt.remote().get(&ctx.namespace, d)?.is_some() {
                    self.rt.wait_for_fill(&ctx.namespace, d)?;
                }
                Ok(self.rt.store().reader(&ctx.view(), d)?)
            }
            r => Ok(r?),
        }
    }

    pub fn status(&self, ctx: &Ctx, r: &str) -> Result<Status> {
        Ok(self.rt.store().status(&ctx.view(), r)?)
    }

    pub fn list_statuses(&self, ctx: &Ctx, filters: &[String]) -> Result<Vec<Status>> {
        Ok(self.rt.store().list_statuses(&ctx.view(), filters)?)
    }

    /// Removes the ingest `r`; NotFound when the namespace has none (containerd's Abort).
    pub fn abort(&self, ctx: &Ctx, r: &str) -> Result<()> {
        let _g = self.rt.hold();
        let recorded = self
            .ingests
            .get::<IngestRecord>(&key(&[&ctx.namespace, r]))?
            .is_some();
        let missing = |e: &strata_content::Error| matches!(e, strata_content::Error::NotFound(_));
        if !recorded
            && self
                .rt
                .store()
                .status(&ctx.view(), r)
                .as_ref()
                .is_err_and(missing)
        {
            return Err(Error::NotFound(format!("reference {r}: not found")));
        }
        self.rt.store().abort(&ctx.view(), r)?;
        self.forget_ingest(ctx, r)
    }

    /// Drops the namespace's record of ingest `r` and its lease, once the store's is gone.
    fn forget_ingest(&self, ctx: &Ctx, r: &str) -> Result<()> {
        self.ingests.delete(&key(&[&ctx.namespace, r]))?;
        self.rt.leases().detach(ctx, "ingests", r)?;
        self.rt.changed([], true);
        Ok(())
    }

    /// Removes the ingest `r` that `opened` (this caller's open of it) holds, without letting
    /// its ref go first (see [`Writer::abort`]).
    pub fn abort_opened(&self, ctx: &Ctx, r: &str, opened: Opened) -> Result<()> {
        let _g = self.rt.hold();
        match opened {
            Opened::Live(w) => w.abort()?,
            Opened::Shared(_) => self.rt.store().abort(&ctx.view(), r)?,
        }
        self.forget_ingest(ctx, r)
    }

    /// Whether the namespace holds `d`; under a lease it then holds it too (containerd leases
    /// content a client finds already present, so a later removal cannot take it).
    pub fn exists(&self, ctx: &Ctx, d: &Digest) -> Result<bool> {
        let _g = self.rt.hold();
        let view = ctx.view();
        if self.rt.store().info(&view, d).is_err()
            && self.rt.remote().get(&ctx.namespace, d)?.is_none()
            && self.rt.store().info(&view, d).is_err()
        {
            return Ok(false);
        }
        self.rt.leases().attach(ctx, "content", &d.to_string())?;
        Ok(true)
    }

    /// Opens (or resumes) the ingest `r`. AlreadyExists when the namespace holds `expected`,
    /// or now holds it as a remote blob (a layer Strata serves lazily, see `remote`); a shared
    /// ingest when another view holds its bytes with a matching size.
    pub fn open(&self, ctx: &Ctx, r: &str, total: u64, expected: Option<Digest>) -> Result<Opened> {
        if r.is_empty() {
            return Err(Error::InvalidArgument("ref must not be empty".into()));
        }
        if let Some(d) = &expected
            && (self.exists(ctx, d)? || self.rt.claim_remote(ctx, d, total)?)
        {
            return Err(Error::AlreadyExists(format!("content {d}: already exists")));
        }
        let _g = self.rt.hold();
        self.rt.ensure_namespace(&ctx.namespace)?;
        let shared = match &expected {
            Some(d) => self
                .rt
                .store()
                .held_size(d)?
                .filter(|s| total == 0 || total == *s),
            None => None,
        };
        let leased = self.rt.leases().attach(ctx, "ingests", r)?;
        let mut rec: IngestRecord = self
            .ingests
            .get(&key(&[&ctx.namespace, r]))?
            .unwrap_or_default();
        if !leased {
            rec.expire = Some(to_nanos(SystemTime::now() + INGEST_EXPIRY));
        }
        rec.expected = shared.and(expected.as_ref()).map(Digest::to_string);
        self.ingests.put(&key(&[&ctx.namespace, r]), &rec)?;
        self.rt
            .changed([Node::new(Resource::Ingest, &ctx.namespace, r)], false);
        match (shared, expected) {
            (Some(size), Some(digest)) => Ok(Opened::Shared(SharedIngest {
                digest,
                size,
                started: SystemTime::now(),
            })),
            _ => Ok(Opened::Live(self.rt.store().writer(
                &ctx.view(),
                r,
                total,
                None,
            )?)),
        }
    }

    /// Turns a shared ingest into a real one holding a copy of the first `keep` bytes of the
    /// blob (the client writes or truncates).
    pub fn unshare(&self, ctx: &Ctx, r: &str, shared: &SharedIngest, keep: u64) -> Result<Writer> {
        let store = self.rt.store();
        let reader = store.shared_reader(&shared.digest)?;
        let mut w = store.writer(&ctx.view(), r, shared.size, None)?;
        w.truncate(0)?;
        let mut buf = vec![0u8; 1 << 20];
        let mut pos = 0;
        while pos < keep {
            let n = ((keep - pos) as usize).min(buf.len());
            let got = reader.read_at(pos, &mut buf[..n])?;
            if got == 0 {
                break;
            }
            w.write(&buf[..got])?;
            pos += got as u64;
        }
        Ok(w)
    }

    /// Commits a live ingest and records it in the namespace (and the call's lease).
    /// AlreadyExists when the namespace already held the digest (the ingest is gone then too).
    pub fn commit(
        &self,
        ctx: &Ctx,
        w: &mut Writer,
        size: u64,
        expected: Option<&Digest>,
        labels: Option<&Labels>,
    ) -> Result<Digest> {
        let _g = self.rt.hold();
        let r = w.status().reference;
        let digest = w.digest();
        let res = w.commit(size, expected, labels);
        if matches!(&res, Ok(_) | Err(strata_content::Error::AlreadyExists(_))) {
            self.finish(ctx, &r, &digest)?;
        }
        let d = res?;
        self.rt.prestage(ctx, &d);
        Ok(d)
    }

    /// Commits a shared ingest: the namespace claims the bytes another view holds.
    pub fn claim(
        &self,
        ctx: &Ctx,
        r: &str,
        shared: &SharedIngest,
        size: u64,
        expected: Option<&Digest>,
        labels: Option<&Labels>,
    ) -> Result<Digest> {
        if size != 0 && size != shared.size {
            return Err(Error::FailedPrecondition(format!(
                "{r:?} failed size validation: {} != {size}",
                shared.size
            )));
        }
        if expected.is_some_and(|e| *e != shared.digest) {
            return Err(Error::FailedPrecondition(format!(
                "{r:?} unexpected digest"
            )));
        }
        let _g = self.rt.hold();
        let empty = Labels::new();
        let res = self
            .rt
            .store()
            .claim(&ctx.view(), &shared.digest, labels.unwrap_or(&empty));
        if matches!(&res, Ok(_) | Err(strata_content::Error::AlreadyExists(_))) {
            self.finish(ctx, r, &shared.digest)?;
        }
        res?;
        self.rt.prestage(ctx, &shared.digest);
        Ok(shared.digest.clone())
    }

    /// After a commit: the ingest's records go, the lease holds the blob instead.
    fn finish(&self, ctx: &Ctx, r: &str, d: &Digest) -> Result<()> {
        self.ingests.delete(&key(&[&ctx.namespace, r]))?;
        self.rt.leases().detach(ctx, "ingests", r)?;
        self.rt.leases().attach(ctx, "content", &d.to_string())?;
        self.rt.changed([node(ctx, d)], false);
        Ok(())
    }

    /// Every runtime ingest record: `(namespace, ref, record)`.
    pub(crate) fn ingest_records(&self) -> Result<Vec<(String, String, IngestRecord)>> {
        let mut out = Vec::new();
        for (k, rec) in self.ingests.scan::<IngestRecord>(&[])? {
            if let Some((ns, r)) = k.split_once('\0') {
                out.push((ns.to_string(), r.to_string(), rec));
            }
        }
        Ok(out)
    }

    /// Removes ingests (the collector's sweep): the store's ingest and the runtime's record.
    pub(crate) fn drop_ingests(&self, ingests: &[(String, String)]) -> Result<()> {
        for (ns, r) in ingests {
            if let Err(e) = self.rt.store().abort(&crate::view_of(ns), r) {
                tracing::warn!(namespace = %ns, reference = %r, error = %e, "ingest kept");
                continue;
            }
            self.ingests.delete(&key(&[ns, r]))?;
        }
        Ok(())
    }

    /// Removes every ingest of namespace `ns` (the namespace is being deleted).
    pub(crate) fn drop_namespace(&self, ns: &str) -> Result<()> {
        let view = crate::view_of(ns);
        for st in self.rt.store().list_statuses(&view, &[])? {
            self.rt.store().abort(&view, &st.reference)?;
        }
        for (r, _) in self.ingests.scan::<IngestRecord>(&prefix(&[ns]))? {
            self.ingests.delete(&key(&[ns, &r]))?;
        }
        Ok(())
    }
}
