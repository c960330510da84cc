//! Remote blobs: image layers a runtime-socket client pulls that Strata serves lazily.
//!
//! containerd 1.6's `ctr images pull` fetches every blob through the Content service, then
//! unpacks, asking the snapshotter `Stat(chain ID)` before it applies each layer. Before it
//! fetches a manifest's children, its fetch labels the manifest with its source
//! (`containerd.io/distribution.source.<host> = <repository>`) and its children
//! (`containerd.io/gc.ref.content.l.<i>`). So when a layer Write opens and the namespace holds
//! such a manifest listing that layer with a TOC digest (eStargz, zstd:chunked), Strata answers
//! AlreadyExists and records a *remote blob* instead of taking the bytes:
//!
//! ```text
//! Write(layer, expected=sha256:L)  -> AlreadyExists          (record ns/L: size, source, TOC)
//! Info / Update / List / Delete    -> as for any blob        (labels kept on the record)
//! background fill                  -> registry -> content store, verified; the record becomes
//!                                     an ordinary blob of the namespace
//! Snapshots.Stat(strata-lazy, chain ID of L) -> the layer mounted lazily (no download)
//! Read(L) before the fill is done  -> waits for the fill
//! ```
//!
//! Bytes are fetched into the private view [`FILL_VIEW`], then claimed by every namespace with
//! a record of the digest, so a fill killed at any point is resumed (or dropped) at start.
//! The garbage collector treats records as the namespace's content.

use std::collections::{HashMap, HashSet};
use std::io::{self, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use strata_content::Info;
use strata_core::digest::Digest;
use strata_core::filters::parse_all;
use strata_core::labels::{Labels, apply_update, validate, without_empty};
use strata_core::time::{from_nanos, to_nanos};

use crate::gc::mark::{Node, Resource};
use crate::table::{Table, key, prefix};
use crate::{Ctx, Error, Result, Runtime, view_of};

/// `ns \0 digest` → [`RemoteRecord`].
pub(crate) const CF_REMOTE: &str = "rt_remote";

/// The content store view fills write into before the namespaces claim the bytes.
pub const FILL_VIEW: &str = "rt-fill";

/// The manifest annotation of a layer's TOC digest (eStargz and zstd:chunked).
pub const TOC_DIGEST: &str = "containerd.io/snapshot/stargz/toc.digest";
const SOURCE_LABEL: &str = "containerd.io/distribution.source.";
const CHILD_LABEL: &str = "containerd.io/gc.ref.content.";
/// Manifests and configs bigger than this are not read.
pub(crate) const MAX_MANIFEST: u64 = 4 << 20;
/// How long a fill waits after a failure before it tries again (doubling, at most the second).
const FILL_WAITS: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// Copies that do not match their digest fetched before a fill gives up.
const FILL_MISMATCHES: u32 = 3;

/// Fetches blobs from the registry an image names (the daemon's registry client).
pub trait BlobFetcher: Send + Sync {
    /// Where blob `digest` of `image` (`host/repository`, as containerd's
    /// `distribution.source` label names it: without the port) is served: the full image
    /// reference to fetch it from, and the size the registry gives.
    fn locate(&self, image: &str, digest: &str) -> io::Result<(String, u64)>;
    /// The whole blob, read by a blocking thread.
    fn open(&self, image: &str, digest: &str) -> io::Result<Box<dyn Read + Send>>;
    /// The daemon is stopping: fetches in progress may end early with an error (the default
    /// does nothing; they end when the registry client's runtime goes away).
    fn cancel(&self) {}
}

/// Fill threads alive in this process, and a signal when one ends.
static FILL_THREADS: (Mutex<usize>, Condvar) = (Mutex::new(0), Condvar::new());

/// Counts one fill thread from its start to its end (a panic included), and holds the thread's
/// handle on the runtime: it lets go of the runtime first, then of the count. The daemon may
/// have dropped every other handle by then, and this last one closes the database: counted
/// the other way round, the exit (which waits for the count) could run RocksDB's static
/// destructors beside that close ("pthread lock: Invalid argument", SIGABRT).
struct FillThread(Option<Runtime>);

impl FillThread {
    fn start(rt: Runtime) -> Self {
        *lock(&FILL_THREADS.0) += 1;
        FillThread(Some(rt))
    }

    fn runtime(&self) -> &Runtime {
        self.0.as_ref().expect("held until drop")
    }
}

impl Drop for FillThread {
    fn drop(&mut self) {
        drop(self.0.take());
        *lock(&FILL_THREADS.0) -= 1;
        FILL_THREADS.1.notify_all();
    }
}

/// Waits at most `timeout` for every background fill thread of this process to end; how many
/// are still running. The daemon calls it after stopping the fills and its tokio runtime,
/// before it exits: a fill ending then still writes to RocksDB, which must not happen while
/// the process runs its static destructors ("pthread lock: Invalid argument", SIGABRT).
pub fn wait_fill_threads(timeout: Duration) -> usize {
    let n = lock(&FILL_THREADS.0);
    let (n, _) = FILL_THREADS
        .1
        .wait_timeout_while(n, timeout, |n| *n > 0)
        .unwrap_or_else(|p| p.into_inner());
    *n
}

/// A namespace's blob whose bytes are still in the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteRecord {
    pub size: u64,
    /// Where it is fetched from: `host/repository`.
    pub image: String,
    /// The layer's TOC digest (from the manifest that lists it).
    pub toc_digest: String,
    #[serde(default)]
    pub labels: Labels,
    pub created: i64,
    pub updated: i64,
}

impl RemoteRecord {
    fn to_info(&self, digest: Digest) -> Info {
        Info {
            digest,
            size: self.size,
            created_at: from_nanos(self.created),
            updated_at: from_nanos(self.updated),
            labels: self.labels.clone(),
        }
    }
}

/// How the fill of one digest is going.
#[derive(Debug, Default)]
struct FillState {
    /// Why its last attempt failed (cleared when the next one starts).
    failed: Option<String>,
}

/// The runtime's remote blobs: records, the fetcher and the fills running.
pub(crate) struct Remote {
    table: Table,
    fetcher: Option<Arc<dyn BlobFetcher>>,
    /// Blobs labelled with a registry source since start, by namespace: the manifests a layer
    /// Write is checked against (so namespaces that pull nothing pay nothing).
    sourced: Mutex<HashMap<String, HashSet<Digest>>>,
    fills: Mutex<HashMap<Digest, FillState>>,
    changed: Condvar,
    /// Set when the daemon stops: fills start no new fetch (the registry client's runtime is
    /// going away).
    stopping: std::sync::atomic::AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Remote {
    pub(crate) fn new(db: Arc<rocksdb::DB>, fetcher: Option<Arc<dyn BlobFetcher>>) -> Self {
        Remote {
            table: Table::new(db, CF_REMOTE, "remote blob"),
            fetcher,
            sourced: Mutex::default(),
            fills: Mutex::default(),
            changed: Condvar::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Notes that blob `d` of `ns` was labelled with `labels` (an Update): a registry source
    /// makes it a manifest layer Writes are checked against.
    pub(crate) fn labelled(&self, ns: &str, d: &Digest, labels: &Labels) {
        if self.fetcher.is_some() && labels.keys().any(|k| k.starts_with(SOURCE_LABEL)) {
            lock(&self.sourced)
                .entry(ns.to_string())
                .or_default()
                .insert(d.clone());
        }
    }

    /// The blobs of `ns` labelled with a registry source since start.
    fn sourced(&self, ns: &str) -> Vec<Digest> {
        lock(&self.sourced)
            .get(ns)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Forgets a labelled blob that is gone.
    fn unsource(&self, ns: &str, d: &Digest) {
        if let Some(s) = lock(&self.sourced).get_mut(ns) {
            s.remove(d);
        }
    }

    pub(crate) fn get(&self, ns: &str, d: &Digest) -> Result<Option<RemoteRecord>> {
        self.table.get(&key(&[ns, &d.to_string()]))
    }

    /// The namespace's remote blobs.
    pub(crate) fn records(&self, ns: &str) -> Result<Vec<(Digest, RemoteRecord)>> {
        let mut out = Vec::new();
        for (d, rec) in self.table.scan::<RemoteRecord>(&prefix(&[ns]))? {
            match d.parse() {
                Ok(d) => out.push((d, rec)),
                Err(_) => tracing::warn!(namespace = ns, digest = d, "bad remote blob key"),
            }
        }
        Ok(out)
    }

    /// Every namespace with a record of `d`.
    fn holders(&self, d: &Digest) -> Result<Vec<(String, RemoteRecord)>> {
        let ds = d.to_string();
        let mut out = Vec::new();
        for (k, rec) in self.table.scan::<RemoteRecord>(&[])? {
            if let Some((ns, digest)) = k.split_once('\0')
                && digest == ds
            {
                out.push((ns.to_string(), rec));
            }
        }
        Ok(out)
    }

    pub(crate) fn info(&self, ns: &str, d: &Digest) -> Result<Option<Info>> {
        Ok(self.get(ns, d)?.map(|r| r.to_info(d.clone())))
    }

    /// Updates a record's labels as the store updates an info's; None when there is none.
    pub(crate) fn update(
        &self,
        ns: &str,
        d: &Digest,
        labels: &Labels,
        paths: &[String],
    ) -> Result<Option<Info>> {
        let _g = lock(&self.fills);
        let Some(mut rec) = self.get(ns, d)? else {
            return Ok(None);
        };
        rec.labels = apply_update(&rec.labels, labels, paths, "content info")
            .map_err(|e| Error::InvalidArgument(e.0))?;
        rec.updated = to_nanos(SystemTime::now());
        self.table.put(&key(&[ns, &d.to_string()]), &rec)?;
        Ok(Some(rec.to_info(d.clone())))
    }

    /// The namespace's remote blobs matching `filters`, as infos.
    pub(crate) fn list(&self, ns: &str, filters: &[String]) -> Result<Vec<Info>> {
        let filter = parse_all(filters).map_err(|e| Error::InvalidArgument(e.0))?;
        Ok(self
            .records(ns)?
            .into_iter()
            .map(|(d, r)| r.to_info(d))
            .filter(|i| filter.matches(i))
            .collect())
    }

    /// Deletes a record; whether there was one. A fill no namespace wants any more stops.
    pub(crate) fn delete(&self, ns: &str, d: &Digest) -> Result<bool> {
        let _g = lock(&self.fills);
        let k = key(&[ns, &d.to_string()]);
        if self.table.get::<RemoteRecord>(&k)?.is_none() {
            return Ok(false);
        }
        self.table.delete(&k)?;
        self.changed.notify_all();
        Ok(true)
    }

    /// Deletes the namespace's records of `digests` (the collector's sweep); how many there were.
    pub(crate) fn delete_many(&self, ns: &str, digests: &[Digest]) -> Result<usize> {
        let mut n = 0;
        for d in digests {
            n += usize::from(self.delete(ns, d)?);
        }
        Ok(n)
    }
}

impl Runtime {
    pub(crate) fn remote(&self) -> &Remote {
        &self.inner.remote
    }

    /// Makes `d` a remote blob of the namespace when it is a lazily servable layer of a
    /// manifest the namespace holds (see the module docs) and the registry has it; whether it
    /// did. Nothing is recorded when another view holds the bytes already.
    pub(crate) fn claim_remote(&self, ctx: &Ctx, d: &Digest, total: u64) -> Result<bool> {
        let Some(fetcher) = self.remote().fetcher.clone() else {
            return Ok(false);
        };
        if self.store().held_size(d)?.is_some() {
            return Ok(false);
        }
        let Some(mut layer) = self.servable_layer(ctx, d)? else {
            return Ok(false);
        };
        if total != 0 && total != layer.size {
            return Ok(false);
        }
        match fetcher.locate(&layer.image, &d.to_string()) {
            Ok((image, size)) if size == layer.size => layer.image = image,
            Ok((_, size)) => {
                tracing::info!(digest = %d, size, expected = layer.size, "registry size differs; fetching it normally");
                return Ok(false);
            }
            Err(e) => {
                tracing::info!(digest = %d, image = layer.image, error = %e, "layer not served lazily");
                return Ok(false);
            }
        }
        {
            let _g = self.hold();
            self.ensure_namespace(&ctx.namespace)?;
            let k = key(&[&ctx.namespace, &d.to_string()]);
            if self.remote().table.get::<RemoteRecord>(&k)?.is_none() {
                self.remote().table.put(&k, &layer)?;
            }
            self.leases().attach(ctx, "content", &d.to_string())?;
            self.changed(
                [Node::new(Resource::Content, &ctx.namespace, d.to_string())],
                false,
            );
        }
        tracing::info!(namespace = %ctx.namespace, digest = %d, image = layer.image, "layer kept remote; filling in the background");
        self.start_fill(d.clone());
        Ok(true)
    }

    /// The record `d` would get: a layer with a TOC digest listed by a manifest of the
    /// namespace that names its registry source (labelled so since start).
    fn servable_layer(&self, ctx: &Ctx, d: &Digest) -> Result<Option<RemoteRecord>> {
        let view = ctx.view();
        let ds = d.to_string();
        for md in self.remote().sourced(&ctx.namespace) {
            let Ok(m) = self.store().info(&view, &md) else {
                self.remote().unsource(&ctx.namespace, &md);
                continue;
            };
            let lists = m
                .labels
                .iter()
                .any(|(k, v)| k.starts_with(CHILD_LABEL) && *v == ds);
            let source = source_of(&m.labels);
            let (true, Some(image)) = (lists, source) else {
                continue;
            };
            let Some(bytes) = self.small_blob(ctx, &m.digest) else {
                continue;
            };
            if let Some(rec) = layer_in_manifest(&bytes, &ds, image) {
                return Ok(Some(rec));
            }
        }
        Ok(None)
    }

    /// Starts the background fill of `d` unless one is running.
    pub(crate) fn start_fill(&self, d: Digest) {
        {
            let mut fills = lock(&self.remote().fills);
            if fills.contains_key(&d) {
                return;
            }
            fills.insert(d.clone(), FillState::default());
        }
        let alive = FillThread::start(self.clone());
        std::thread::spawn(move || {
            let rt = alive.runtime();
            rt.fill(&d);
            lock(&rt.remote().fills).remove(&d);
            rt.remote().changed.notify_all();
        });
    }

    /// Stops the background fills: none starts another fetch (at daemon stop; a stopped fill
    /// resumes at the next start).
    pub fn stop_fills(&self) {
        let remote = self.remote();
        remote
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(f) = &remote.fetcher {
            f.cancel();
        }
        let _g = lock(&remote.fills);
        remote.changed.notify_all();
    }

    fn fills_stopped(&self) -> bool {
        self.remote()
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Fetches `d` until every namespace wanting it holds it, none wants it any more, it
    /// came back with the wrong digest [`FILL_MISMATCHES`] times, or fills stop.
    fn fill(&self, d: &Digest) {
        let (mut wait, mut mismatches) = (FILL_WAITS.0, 0);
        loop {
            if self.fills_stopped() {
                return;
            }
            let holders = match self.remote().holders(d) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(digest = %d, error = %e, "remote blob records");
                    Vec::new()
                }
            };
            let Some((_, rec)) = holders.first() else {
                let _ = self.store().delete(FILL_VIEW, d);
                return;
            };
            self.set_fill_error(d, None);
            let res = self
                .fetch_into_fill_view(d, rec)
                .and_then(|()| self.settle(d));
            let Err(e) = res else {
                tracing::info!(digest = %d, "remote blob filled");
                return;
            };
            if matches!(e, Error::FailedPrecondition(_)) {
                mismatches += 1;
            }
            tracing::info!(digest = %d, error = %e, ?wait, "remote blob fill stopped");
            self.set_fill_error(d, Some(e.to_string()));
            if mismatches >= FILL_MISMATCHES {
                tracing::warn!(digest = %d, "remote blob fill gave up: wrong digest {mismatches} times");
                return;
            }
            // The whole wait, unless fills stop or no namespace wants the blob any more (other
            // fills' changes wake it too: it waits again for the rest).
            let fills = lock(&self.remote().fills);
            let waiting = |_: &mut _| {
                !self.fills_stopped() && !self.remote().holders(d).is_ok_and(|h| h.is_empty())
            };
            drop(
                self.remote()
                    .changed
                    .wait_timeout_while(fills, wait, waiting)
                    .unwrap_or_else(|p| p.into_inner()),
            );
            wait = (wait * 2).min(FILL_WAITS.1);
        }
    }

    fn set_fill_error(&self, d: &Digest, e: Option<String>) {
        if let Some(s) = lock(&self.remote().fills).get_mut(d) {
            s.failed = e;
        }
        self.remote().changed.notify_all();
    }

    /// Copies blob `d` from the registry into [`FILL_VIEW`], verified (kept when it is there).
    fn fetch_into_fill_view(&self, d: &Digest, rec: &RemoteRecord) -> Result<()> {
        if self.store().info(FILL_VIEW, d).is_ok() {
            return Ok(());
        }
        let fetcher = self.remote().fetcher.clone().ok_or_else(|| {
            Error::Unavailable(format!("content {d}: no registry client to fetch it"))
        })?;
        let ds = d.to_string();
        let mut body = fetcher
            .open(&rec.image, &ds)
            .map_err(|e| Error::Unavailable(format!("fetch {ds} from {}: {e}", rec.image)))?;
        let mut w = match self.store().writer(FILL_VIEW, &ds, rec.size, None) {
            Err(strata_content::Error::AlreadyExists(_)) => return Ok(()),
            w => w?,
        };
        w.truncate(0)?;
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = body
                .read(&mut buf)
                .map_err(|e| Error::Unavailable(format!("fetch {ds} from {}: {e}", rec.image)))?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n])?;
        }
        match w.commit(rec.size, Some(d), None) {
            Ok(_) | Err(strata_content::Error::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Every namespace with a record of `d` claims the filled bytes with its labels; the
    /// records and the fill view's copy go.
    fn settle(&self, d: &Digest) -> Result<()> {
        let _g = self.hold();
        let _f = lock(&self.remote().fills);
        for (ns, rec) in self.remote().holders(d)? {
            let labels = without_empty(rec.labels.clone());
            if validate(&labels).is_ok() {
                match self.store().claim(&view_of(&ns), d, &labels) {
                    Ok(_) | Err(strata_content::Error::AlreadyExists(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            self.remote().table.delete(&key(&[&ns, &d.to_string()]))?;
            self.changed([Node::new(Resource::Content, &ns, d.to_string())], false);
        }
        match self.store().delete(FILL_VIEW, d) {
            Ok(()) | Err(strata_content::Error::NotFound(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Waits until remote blob `d` of namespace `ns` is in the content store. NotFound when
    /// the namespace has no record of it; Unavailable when its fill's last attempt failed.
    pub(crate) fn wait_for_fill(&self, ns: &str, d: &Digest) -> Result<()> {
        let view = view_of(ns);
        let mut fills = lock(&self.remote().fills);
        loop {
            if self.store().info(&view, d).is_ok() {
                return Ok(());
            }
            if self.remote().get(ns, d)?.is_none() {
                return Err(Error::NotFound(format!("content digest {d}: not found")));
            }
            match fills.get(d) {
                Some(FillState {
                    failed: Some(why), ..
                }) => {
                    return Err(Error::Unavailable(format!(
                        "content {d} is still being fetched from its registry: {why}"
                    )));
                }
                Some(_) => {}
                None => {
                    drop(fills);
                    self.start_fill(d.clone());
                    fills = lock(&self.remote().fills);
                    continue;
                }
            }
            fills = self
                .remote()
                .changed
                .wait_timeout(fills, Duration::from_secs(1))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// At start: fills interrupted by a stop are resumed, leftovers no namespace wants go.
    pub(crate) fn resume_fills(&self) -> Result<()> {
        let mut wanted = HashSet::new();
        for (k, _) in self.remote().table.scan::<RemoteRecord>(&[])? {
            if let Some(d) = k
                .split_once('\0')
                .and_then(|(_, d)| d.parse::<Digest>().ok())
            {
                wanted.insert(d);
            }
        }
        for info in self.store().list(FILL_VIEW, &[])? {
            if !wanted.contains(&info.digest) {
                let _ = self.store().delete(FILL_VIEW, &info.digest);
            }
        }
        for st in self.store().list_statuses(FILL_VIEW, &[])? {
            let keep = st
                .reference
                .parse::<Digest>()
                .is_ok_and(|d| wanted.contains(&d));
            if !keep {
                let _ = self.store().abort(FILL_VIEW, &st.reference);
            }
        }
        for d in wanted {
            self.start_fill(d);
        }
        Ok(())
    }
}

/// The image a manifest's labels say it came from (`host/repository`; containerd's
/// `distribution.source` label has no port).
pub(crate) fn source_of(labels: &Labels) -> Option<String> {
    labels.iter().find_map(|(k, v)| {
        let host = k.strip_prefix(SOURCE_LABEL)?;
        let repo = v.split(',').next().filter(|r| !r.is_empty())?;
        Some(format!("{host}/{repo}"))
    })
}

/// The record of layer `digest` if `manifest` lists it with a TOC digest and a compressed tar
/// media type.
pub(crate) fn layer_in_manifest(
    manifest: &[u8],
    digest: &str,
    image: String,
) -> Option<RemoteRecord> {
    let m: serde_json::Value = serde_json::from_slice(manifest).ok()?;
    let layer = m
        .get("layers")?
        .as_array()?
        .iter()
        .find(|l| l.get("digest").and_then(|d| d.as_str()) == Some(digest))?;
    let media = layer.get("mediaType")?.as_str()?;
    if !(media.ends_with("gzip") || media.ends_with("zstd")) {
        return None;
    }
    let toc = layer.get("annotations")?.get(TOC_DIGEST)?.as_str()?;
    let size = layer.get("size")?.as_u64()?;
    let now = to_nanos(SystemTime::now());
    Some(RemoteRecord {
        size,
        image,
        toc_digest: toc.to_string(),
        labels: Labels::new(),
        created: now,
        updated: now,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

    fn manifest(media: &str, toc: bool) -> Vec<u8> {
        let ann = if toc {
            format!(r#","annotations":{{"{TOC_DIGEST}":"sha256:22"}}"#)
        } else {
            String::new()
        };
        format!(
            r#"{{"schemaVersion":2,"config":{{"mediaType":"x","digest":"sha256:33","size":2}},
            "layers":[{{"mediaType":"{media}","digest":"{L}","size":1234{ann}}}]}}"#
        )
        .into_bytes()
    }

    #[test]
    fn only_compressed_layers_with_a_toc_digest_are_servable() {
        let gz = "application/vnd.oci.image.layer.v1.tar+gzip";
        let rec = layer_in_manifest(&manifest(gz, true), L, "h:5000/r".into()).unwrap();
        assert_eq!(
            (rec.size, rec.image.as_str(), rec.toc_digest.as_str()),
            (1234, "h:5000/r", "sha256:22")
        );
        let zst = "application/vnd.oci.image.layer.v1.tar+zstd";
        assert!(layer_in_manifest(&manifest(zst, true), L, "h/r".into()).is_some());
        assert!(layer_in_manifest(&manifest(gz, false), L, "h/r".into()).is_none());
        let tar = "application/vnd.oci.image.layer.v1.tar";
        assert!(layer_in_manifest(&manifest(tar, true), L, "h/r".into()).is_none());
        assert!(layer_in_manifest(&manifest(gz, true), "sha256:44", "h/r".into()).is_none());
        assert!(layer_in_manifest(b"not json", L, "h/r".into()).is_none());
    }
}
