//! Runtime-socket workloads: containerd 1.6's own services (Leases, Content, Snapshots, Images,
//! Namespaces), namespaced by `containerd-namespace`, with leases from `containerd-lease`.
//!
//! - **GC pass**: in a fresh namespace, under one lease, `N` snapshots (chains of committed
//!   layers, each topped by an active snapshot) and `N` small blobs; then `Leases.Delete{sync}`
//!   is timed (both servers run a garbage collection pass and answer after it) while a second
//!   client on its own connection loops `Snapshots.Stat` on a snapshot a second lease keeps.
//!   Afterwards the API must list none of the `N` snapshots and blobs.
//! - **Images.List**: thousands of images with 100 labels each, listed with a label filter
//!   that selects 1% of them and with none.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};
use strata_proxy::api::content::ListContentRequest;
use strata_proxy::api::content::content_client::ContentClient;
use strata_proxy::api::images::images_client::ImagesClient;
use strata_proxy::api::images::{CreateImageRequest, Image, ListImagesRequest};
use strata_proxy::api::leases::leases_client::LeasesClient;
use strata_proxy::api::leases::{CreateRequest, DeleteRequest};
use strata_proxy::api::namespaces::DeleteNamespaceRequest;
use strata_proxy::api::namespaces::namespaces_client::NamespacesClient;
use strata_proxy::api::snapshots::snapshots_client::SnapshotsClient;
use strata_proxy::api::snapshots::{
    CommitSnapshotRequest, ListSnapshotsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
    StatSnapshotRequest,
};
use strata_proxy::api::types::Descriptor;
use tonic::transport::Channel;

use super::content::{digest_of, ingest_as, random_bytes};
use crate::client::MAX_MESSAGE;
use crate::stats::{Named, percentile};

/// Calls in flight at once while setting up (untimed).
const SETUP_CONCURRENCY: usize = 8;
/// Size of each GC blob.
pub const GC_BLOB: usize = 1024;
/// The lease that holds what the GC pass removes, and the one that keeps the Stat target.
const LEASE: &str = "bench-gc";
const KEEP_LEASE: &str = "bench-gc-keep";
/// The snapshot the concurrent reader Stats (held by [`KEEP_LEASE`]).
const KEPT: &str = "bench-gc-kept";
/// Pause between two Stats of the concurrent reader.
const STAT_PAUSE: Duration = Duration::from_millis(1);
/// How long to wait for files a server left on disk after answering.
const DISK_GRACE: Duration = Duration::from_secs(30);

/// Labels per image and the label filter of the Images.List workload: `l<k>` has value
/// `v<digit>` where the digit is a decimal digit of the image's index (units for `k % 3 == 0`,
/// tens for 1, hundreds for 2), so `labels.l7==v3,labels.l42==v5` selects the indexes whose
/// tens digit is 3 and units digit is 5: 1% of them.
pub const IMAGE_LABELS: usize = 100;
pub const IMAGE_FILTER: &str = "labels.l7==v3,labels.l42==v5";
pub const IMAGES_NAMESPACE: &str = "bench-images";

/// Where a server keeps snapshot directories and blob files (only known for servers the bench
/// started): counted before and after a GC pass.
#[derive(Debug, Clone)]
pub struct Disk {
    pub snapshots: PathBuf,
    pub blobs: PathBuf,
}

impl Disk {
    /// strata-proxy started with `--root <root>/root`, overlay backend.
    pub fn strata(root: &Path) -> Disk {
        let r = root.join("root");
        Disk {
            snapshots: r.join("snapshots/overlay/snapshots"),
            blobs: r.join("content/blobs/sha256"),
        }
    }

    /// containerd with `root = <root>/root`, overlayfs snapshotter, built-in content store.
    pub fn containerd(root: &Path) -> Disk {
        let r = root.join("root");
        Disk {
            snapshots: r.join("io.containerd.snapshotter.v1.overlayfs/snapshots"),
            blobs: r.join("io.containerd.content.v1.content/blobs/sha256"),
        }
    }

    /// (snapshot directories, blob files); a missing directory counts 0.
    fn count(&self) -> (usize, usize) {
        let n = |d: &Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
        (n(&self.snapshots), n(&self.blobs))
    }
}

/// A server's runtime socket: containerd's own services.
#[derive(Clone)]
pub struct Rt {
    /// "strata" or "containerd".
    pub name: &'static str,
    pub channel: Channel,
    /// A second connection, for the concurrent reader.
    pub second: Channel,
    /// The overlay snapshotter's name on this server.
    pub snapshotter: String,
    pub disk: Option<Disk>,
}

impl Named for Rt {
    fn name(&self) -> &'static str {
        self.name
    }
}

macro_rules! sized {
    ($c:expr) => {
        $c.max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    };
}

impl Rt {
    fn content(&self) -> ContentClient<Channel> {
        sized!(ContentClient::new(self.channel.clone()))
    }
    fn snapshots(&self) -> SnapshotsClient<Channel> {
        sized!(SnapshotsClient::new(self.channel.clone()))
    }
    fn leases(&self) -> LeasesClient<Channel> {
        sized!(LeasesClient::new(self.channel.clone()))
    }
    fn images(&self) -> ImagesClient<Channel> {
        sized!(ImagesClient::new(self.channel.clone()))
    }
    fn namespaces(&self) -> NamespacesClient<Channel> {
        sized!(NamespacesClient::new(self.channel.clone()))
    }
}

/// The headers of a call: namespace, and the lease that holds what it creates.
#[derive(Debug, Clone)]
pub struct Scope {
    pub namespace: String,
    pub lease: Option<String>,
}

impl Scope {
    pub fn new(namespace: &str) -> Scope {
        Scope {
            namespace: namespace.into(),
            lease: None,
        }
    }

    pub fn leased(&self, lease: &str) -> Scope {
        Scope {
            lease: Some(lease.into()),
            ..self.clone()
        }
    }

    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        let md = r.metadata_mut();
        md.insert(
            "containerd-namespace",
            self.namespace.parse().expect("ascii namespace"),
        );
        if let Some(l) = &self.lease {
            md.insert("containerd-lease", l.parse().expect("ascii lease"));
        }
        r
    }
}

async fn create_lease(t: &Rt, s: &Scope, id: &str) -> anyhow::Result<()> {
    t.leases()
        .create(s.req(CreateRequest {
            id: id.into(),
            labels: HashMap::new(),
        }))
        .await
        .with_context(|| format!("{}: Leases.Create {id}", t.name))?;
    Ok(())
}

async fn delete_lease(t: &Rt, s: &Scope, id: &str) -> anyhow::Result<()> {
    t.leases()
        .delete(s.req(DeleteRequest {
            id: id.into(),
            sync: true,
        }))
        .await
        .with_context(|| format!("{}: Leases.Delete {id} (sync)", t.name))?;
    Ok(())
}

async fn prepare(t: &Rt, s: &Scope, key: &str, parent: &str) -> anyhow::Result<()> {
    t.snapshots()
        .prepare(s.req(PrepareSnapshotRequest {
            snapshotter: t.snapshotter.clone(),
            key: key.into(),
            parent: parent.into(),
            labels: HashMap::new(),
        }))
        .await
        .with_context(|| format!("{}: Snapshots.Prepare {key}", t.name))?;
    Ok(())
}

async fn commit(t: &Rt, s: &Scope, name: &str, key: &str) -> anyhow::Result<()> {
    t.snapshots()
        .commit(s.req(CommitSnapshotRequest {
            snapshotter: t.snapshotter.clone(),
            name: name.into(),
            key: key.into(),
            labels: HashMap::new(),
        }))
        .await
        .with_context(|| format!("{}: Snapshots.Commit {name}", t.name))?;
    Ok(())
}

/// Names of every snapshot the namespace lists.
async fn list_snapshots(t: &Rt, s: &Scope) -> anyhow::Result<Vec<String>> {
    let mut stream = t
        .snapshots()
        .list(s.req(ListSnapshotsRequest {
            snapshotter: t.snapshotter.clone(),
            filters: vec![],
        }))
        .await
        .with_context(|| format!("{}: Snapshots.List", t.name))?
        .into_inner();
    let mut names = Vec::new();
    while let Some(m) = stream.message().await? {
        names.extend(m.info.into_iter().map(|i| i.name));
    }
    Ok(names)
}

/// Digests of every blob the namespace lists.
async fn list_blobs(t: &Rt, s: &Scope) -> anyhow::Result<Vec<String>> {
    let mut stream = t
        .content()
        .list(s.req(ListContentRequest { filters: vec![] }))
        .await
        .with_context(|| format!("{}: Content.List", t.name))?
        .into_inner();
    let mut digests = Vec::new();
    while let Some(m) = stream.message().await? {
        digests.extend(m.info.into_iter().map(|i| i.digest));
    }
    Ok(digests)
}

/// One chain of `len` snapshots `gc-<c>-<j>`: all but the top are Prepare(d) as `<name>-active`
/// and Committed as `<name>` on the previous one; the top stays active (a container's rootfs on
/// its image's layers). `len` 1 gives independent active snapshots.
async fn chain(t: &Rt, s: &Scope, c: usize, len: usize) -> anyhow::Result<Vec<String>> {
    let mut parent = String::new();
    let mut names = Vec::with_capacity(len);
    for j in 0..len {
        let name = format!("gc-{c}-{j}");
        if j + 1 < len {
            let key = format!("{name}-active");
            prepare(t, s, &key, &parent).await?;
            commit(t, s, &name, &key).await?;
        } else {
            prepare(t, s, &name, &parent).await?;
        }
        parent = name.clone();
        names.push(name);
    }
    Ok(names)
}

/// Sizes of the GC workload.
#[derive(Debug, Clone)]
pub struct GcSizes {
    /// Snapshots, and blobs, under the collected lease.
    pub objects: usize,
    /// Snapshots per chain.
    pub chain: usize,
    /// Idle time after `sync` before the timed part.
    pub settle: Duration,
}

/// What one GC round measured.
#[derive(Debug, Clone)]
pub struct GcRound {
    /// Wall time of `Leases.Delete{sync: true}`, seconds.
    pub secs: f64,
    /// Latencies (ms) of every Stat the concurrent reader made during it.
    pub stats: Vec<f64>,
    /// Files left on disk when the delete answered, if any (a note).
    pub disk_note: Option<String>,
}

/// One GC round on `t` in a fresh namespace (set-up and checks untimed).
pub async fn gc_round(t: &Rt, sz: &GcSizes, round: usize) -> anyhow::Result<GcRound> {
    let base = Scope::new(&format!("bench-gc-{round}"));
    let held = base.leased(LEASE);
    let disk_before = t.disk.as_ref().map(Disk::count);
    let setup = Instant::now();
    create_lease(t, &base, LEASE).await?;
    create_lease(t, &base, KEEP_LEASE).await?;
    prepare(t, &base.leased(KEEP_LEASE), KEPT, "").await?;

    let chains: Vec<(usize, usize)> = (0..sz.objects.div_ceil(sz.chain.max(1)))
        .map(|c| (c, sz.chain.max(1).min(sz.objects - c * sz.chain.max(1))))
        .collect();
    let names: Vec<String> = futures::stream::iter(chains)
        .map(|(c, len)| chain(t, &held, c, len))
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<_>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    let blobs: Vec<(bytes::Bytes, String)> = (0..sz.objects)
        .map(|i| {
            let d = random_bytes(GC_BLOB, ((round as u64) << 32) | i as u64 | 1 << 63);
            let g = digest_of(&d);
            (d.into(), g)
        })
        .collect();
    futures::stream::iter(0..blobs.len())
        .map(|i| {
            let (held, (d, g)) = (&held, &blobs[i]);
            async move {
                let reference = format!("gc-blob-{i}");
                let wrap = |s| held.req(s);
                ingest_as(t.name, t.content(), wrap, &reference, d, g, HashMap::new()).await
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    let digests: HashSet<String> = blobs.into_iter().map(|(_, g)| g).collect();
    let ours: HashSet<String> = names.into_iter().collect();
    let listed = list_snapshots(t, &base).await?;
    ensure!(
        listed.len() == sz.objects + 1,
        "{}: set-up lists {} snapshots, expected {}",
        t.name,
        listed.len(),
        sz.objects + 1
    );
    let listed = list_blobs(t, &base).await?;
    ensure!(
        listed.len() == sz.objects,
        "{}: set-up lists {} blobs, expected {}",
        t.name,
        listed.len(),
        sz.objects
    );
    // The disk check is only meaningful when the set-up shows up on disk as expected.
    let mut disk_note = None;
    let disk_before = match (&t.disk, disk_before) {
        (Some(disk), Some(before)) => {
            let now = disk.count();
            if now.0 >= before.0 + sz.objects + 1 && now.1 >= before.1 + sz.objects {
                Some(before)
            } else {
                disk_note = Some(format!(
                    "{} round {round}: disk check off: set-up added {} snapshot dirs and {} blob \
                     files under {} and {}, expected {} and {}",
                    t.name,
                    now.0 as i64 - before.0 as i64,
                    now.1 as i64 - before.1 as i64,
                    disk.snapshots.display(),
                    disk.blobs.display(),
                    sz.objects + 1,
                    sz.objects
                ));
                None
            }
        }
        _ => None,
    };
    println!(
        "{}: gc round {round}: {} snapshots + {} blobs under lease {LEASE} in {:.1} s (untimed)",
        t.name,
        sz.objects,
        sz.objects,
        setup.elapsed().as_secs_f64()
    );
    // SAFETY: sync(2) has no preconditions.
    unsafe { libc::sync() };
    tokio::time::sleep(sz.settle).await;

    let reader = stat_loop(t.clone(), base.clone());
    // Wait for the reader's first Stat so the whole pass is observed.
    let started = Instant::now();
    while !reader.running.load(Ordering::Acquire)
        && !reader.handle.is_finished()
        && started.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let start = Instant::now();
    let deleted = delete_lease(t, &base, LEASE).await;
    let secs = start.elapsed().as_secs_f64();
    reader.stop.store(true, Ordering::Release);
    let disk_after = t.disk.as_ref().map(Disk::count);
    // Every Stat that overlapped the pass (the reader's first ones may precede it).
    let stats: Vec<f64> = reader
        .handle
        .await
        .context("stat reader panicked")??
        .into_iter()
        .filter(|(end, _)| *end >= start)
        .map(|(_, ms)| ms)
        .collect();
    deleted?;

    let left: Vec<String> = list_snapshots(t, &base)
        .await?
        .into_iter()
        .filter(|n| ours.contains(n))
        .collect();
    if !left.is_empty() {
        bail!(
            "{}: {} of {} snapshots still listed after Leases.Delete(sync), e.g. {:?}",
            t.name,
            left.len(),
            ours.len(),
            &left[..left.len().min(3)]
        );
    }
    let left: Vec<String> = list_blobs(t, &base)
        .await?
        .into_iter()
        .filter(|d| digests.contains(d))
        .collect();
    if !left.is_empty() {
        bail!(
            "{}: {} of {} blobs still listed after Leases.Delete(sync), e.g. {:?}",
            t.name,
            left.len(),
            digests.len(),
            &left[..left.len().min(3)]
        );
    }
    if let (Some(disk), Some(before), Some(after)) = (&t.disk, disk_before, disk_after) {
        disk_note = leftover(t.name, round, disk, before, after).await;
    }

    // Clean-up (untimed): the kept snapshot, its lease, the namespace.
    t.snapshots()
        .remove(base.req(RemoveSnapshotRequest {
            snapshotter: t.snapshotter.clone(),
            key: KEPT.into(),
        }))
        .await
        .with_context(|| format!("{}: Snapshots.Remove {KEPT}", t.name))?;
    delete_lease(t, &base, KEEP_LEASE).await?;
    t.namespaces()
        .delete(base.req(DeleteNamespaceRequest {
            name: base.namespace.clone(),
        }))
        .await
        .with_context(|| format!("{}: Namespaces.Delete {}", t.name, base.namespace))?;
    Ok(GcRound {
        secs,
        stats,
        disk_note,
    })
}

/// Files a GC pass left on disk when its delete answered: `None` when there were none; else a
/// note saying how many and whether they went within [`DISK_GRACE`].
async fn leftover(
    who: &str,
    round: usize,
    disk: &Disk,
    before: (usize, usize),
    after: (usize, usize),
) -> Option<String> {
    // The kept snapshot's directory is new since `before`.
    let extra = |now: (usize, usize)| {
        (
            now.0.saturating_sub(before.0 + 1),
            now.1.saturating_sub(before.1),
        )
    };
    let at_reply = extra(after);
    if at_reply == (0, 0) {
        return None;
    }
    let start = Instant::now();
    let mut now = at_reply;
    while now != (0, 0) && start.elapsed() < DISK_GRACE {
        tokio::time::sleep(Duration::from_millis(100)).await;
        now = extra(disk.count());
    }
    let fate = if now == (0, 0) {
        format!("gone {:.1} s later", start.elapsed().as_secs_f64())
    } else {
        format!(
            "{} dirs and {} files still there {} s later",
            now.0,
            now.1,
            DISK_GRACE.as_secs()
        )
    };
    Some(format!(
        "{who} round {round}: {} snapshot dirs and {} blob files still on disk when \
         Leases.Delete(sync) answered; {fate}",
        at_reply.0, at_reply.1
    ))
}

/// The concurrent reader: its task and two flags (stop; first Stat done).
struct Reader {
    /// (end, latency ms) of every Stat.
    handle: tokio::task::JoinHandle<anyhow::Result<Vec<(Instant, f64)>>>,
    stop: Arc<AtomicBool>,
    running: Arc<AtomicBool>,
}

/// Starts a reader on `t`'s second connection: Stat [`KEPT`] in a loop (1 ms apart) until
/// stopped, recording when each ended and its latency in ms. A failed Stat fails the workload: the kept snapshot
/// must survive the pass.
fn stat_loop(t: Rt, s: Scope) -> Reader {
    let stop = Arc::new(AtomicBool::new(false));
    let running = Arc::new(AtomicBool::new(false));
    let (stop2, running2) = (stop.clone(), running.clone());
    let handle = tokio::spawn(async move {
        let mut client = sized!(SnapshotsClient::new(t.second.clone()));
        let mut lat = Vec::new();
        while !stop2.load(Ordering::Acquire) {
            let req = s.req(StatSnapshotRequest {
                snapshotter: t.snapshotter.clone(),
                key: KEPT.into(),
            });
            let start = Instant::now();
            client
                .stat(req)
                .await
                .with_context(|| format!("{}: Stat {KEPT} during the GC pass", t.name))?;
            lat.push((Instant::now(), start.elapsed().as_secs_f64() * 1e3));
            running2.store(true, Ordering::Release);
            tokio::time::sleep(STAT_PAUSE).await;
        }
        Ok(lat)
    });
    Reader {
        handle,
        stop,
        running,
    }
}

/// (max, p99) of a round's Stat latencies, ms.
pub fn stat_summary(lat: &mut [f64]) -> (f64, f64) {
    let max = lat.iter().copied().fold(0.0, f64::max);
    (max, percentile(lat, 99.0).unwrap_or(0.0))
}

/// Value of label `l<k>` on image `i`.
fn image_label(i: usize, k: usize) -> String {
    let div = [1, 10, 100][k % 3];
    format!("v{}", (i / div) % 10)
}

/// How many of `count` images [`IMAGE_FILTER`] selects.
pub fn filter_matches(count: usize) -> usize {
    (0..count)
        .filter(|&i| image_label(i, 7) == "v3" && image_label(i, 42) == "v5")
        .count()
}

/// Creates `count` images with [`IMAGE_LABELS`] labels each in [`IMAGES_NAMESPACE`] (untimed).
pub async fn create_images(t: &Rt, count: usize) -> anyhow::Result<()> {
    let s = Scope::new(IMAGES_NAMESPACE);
    futures::stream::iter(0..count)
        .map(|i| {
            let s = &s;
            async move {
                let name = format!("registry.example/bench/img-{i:05}:latest");
                let image = Image {
                    labels: (0..IMAGE_LABELS)
                        .map(|k| (format!("l{k}"), image_label(i, k)))
                        .collect(),
                    target: Some(Descriptor {
                        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                        digest: format!("sha256:{}", hex::encode(Sha256::digest(&name))),
                        size: 1234,
                        annotations: HashMap::new(),
                    }),
                    name,
                    ..Default::default()
                };
                t.images()
                    .create(s.req(CreateImageRequest { image: Some(image) }))
                    .await
                    .with_context(|| format!("{}: Images.Create img-{i}", t.name))?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// Lists/s of `calls` Images.List calls with `filters`; each must return `expect` images.
pub async fn list_images_round(
    t: &Rt,
    filters: &[String],
    calls: usize,
    expect: usize,
) -> anyhow::Result<f64> {
    let s = Scope::new(IMAGES_NAMESPACE);
    let mut client = t.images();
    let start = Instant::now();
    for _ in 0..calls {
        let n = client
            .list(s.req(ListImagesRequest {
                filters: filters.to_vec(),
            }))
            .await
            .with_context(|| format!("{}: Images.List {filters:?}", t.name))?
            .into_inner()
            .images
            .len();
        ensure!(
            n == expect,
            "{}: Images.List {filters:?} returned {n} images, expected {expect}",
            t.name
        );
    }
    Ok(calls as f64 / start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_selects_one_percent() {
        assert_eq!(filter_matches(10_000), 100);
        assert_eq!(filter_matches(100), 1);
        assert_eq!(image_label(35, 7), "v3");
        assert_eq!(image_label(35, 42), "v5");
    }
}
