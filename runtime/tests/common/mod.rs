//! Shared test support: a strata runtime on a temp dir over real stores (RocksDB, the content
//! store, the native backend and — where it opens — overlay), opened as the daemon opens it
//! (`proxy-server/src/server.rs`), plus helpers for writing blobs and snapshots and checking
//! error kinds.
//!
//! Blocking runtime calls must not run inside an async task, so a test owns its tokio runtime:
//!
//! ```ignore
//! let env = Env::new();
//! let _g = env.enter();          // the runtime's background tasks need a tokio context
//! env.rt.images().create(...);   // blocking calls from plain test code
//! env.block_on(env.rt.snapshots().prepare(...));   // async calls
//! ```

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::mem::discriminant;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use strata_content::ContentStore;
use strata_content::sha256::Sha256State;
use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_runtime::{
    AnyValue, Container, ContainerRuntime, Ctx, Descriptor, Error, GcConfig, GcStats, Image,
    Opened, Parts, Result, Runtime,
};
use strata_snapshotters::{Native, Overlay, Snapshotter};

/// The native backend's name: runs anywhere, used by every generic snapshot test.
pub const NATIVE: &str = "strata-native";
/// The overlay backend's name (tests that need a second backend use it).
pub const OVERLAY: &str = "strata-overlay";

/// A runtime on a fresh temp dir. Fields drop in order: runtime, tokio, then the directory.
pub struct Env {
    pub rt: Runtime,
    pub tokio: tokio::runtime::Runtime,
    /// Why overlay did not open, if it did not.
    overlay_off: Option<String>,
    pub dir: tempfile::TempDir,
}

/// A collector that never runs by itself: no startup pass, no deletion or mutation trigger,
/// and an interval after a pass far longer than any test. Passes run only on `collect()`, as
/// containerd's metadata tests call `GarbageCollect` directly.
pub fn manual_gc() -> GcConfig {
    GcConfig {
        pause_threshold: 1e-9,
        deletion_threshold: usize::MAX,
        mutation_threshold: 0,
        schedule_delay: Duration::ZERO,
        startup_delay: Duration::ZERO,
    }
}

impl Env {
    /// A runtime whose collector runs only when asked.
    pub fn new() -> Env {
        Env::with_gc(manual_gc())
    }

    pub fn with_gc(gc: GcConfig) -> Env {
        Env::open(gc, None)
    }

    /// A runtime (manual collector) that keeps servable layers remote, fetched by `fetcher`.
    pub fn with_fetcher(fetcher: Arc<dyn strata_runtime::BlobFetcher>) -> Env {
        Env::open(manual_gc(), Some(fetcher))
    }

    fn open(gc: GcConfig, fetcher: Option<Arc<dyn strata_runtime::BlobFetcher>>) -> Env {
        let tokio = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("building a tokio runtime");
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let cfs: Vec<&str> = strata_content::COLUMN_FAMILIES
            .iter()
            .chain(strata_snapshotters::COLUMN_FAMILIES)
            .chain(strata_runtime::COLUMN_FAMILIES)
            .copied()
            .collect();
        let db = strata_core::db::open(&root.join("db"), &cfs).expect("opening the database");
        let content = ContentStore::new(db.clone(), root.join("content")).expect("content store");
        let snaps = root.join("snapshots");
        let mut backends: BTreeMap<String, Arc<dyn Snapshotter>> = BTreeMap::new();
        let mut disabled = BTreeMap::new();
        let native = Native::new(db.clone(), snaps.join("native")).expect("native backend");
        backends.insert(NATIVE.into(), Arc::new(native));
        let overlay_off = match Overlay::new(db.clone(), snaps.join("overlay")) {
            Ok(b) => {
                backends.insert(OVERLAY.into(), Arc::new(b));
                None
            }
            Err(e) => {
                disabled.insert(OVERLAY.to_string(), e.to_string());
                Some(e.to_string())
            }
        };
        let parts = Parts {
            db,
            content,
            backends,
            disabled,
            default_snapshotter: NATIVE.into(),
            gc,
            unpack: strata_runtime::UnpackConfig::default(),
            scratch: dir.path().join("tmp"),
            tasks: strata_runtime::TaskConfig {
                state: dir.path().join("state"),
                ..Default::default()
            },
            fetcher,
        };
        let rt = {
            let _g = tokio.enter();
            Runtime::open(parts).expect("opening the runtime")
        };
        Env {
            rt,
            tokio,
            overlay_off,
            dir,
        }
    }

    /// Enters the tokio runtime for the rest of the test (keep the guard alive).
    pub fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.tokio.enter()
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.tokio.block_on(f)
    }

    /// The overlay backend's name; fails the test (never passes it silently) when overlay
    /// could not be opened here.
    pub fn require_overlay(&self) -> &'static str {
        if let Some(why) = &self.overlay_off {
            panic!("this test needs the overlay backend, which is unavailable here: {why}");
        }
        OVERLAY
    }

    /// A garbage collection pass, waited for.
    pub fn collect(&self) -> GcStats {
        self.block_on(self.rt.collect())
            .expect("garbage collection pass")
    }

    /// Writes `data` as a blob of the context's namespace (claiming the bytes when another
    /// namespace holds them) with `labels`; returns its digest.
    pub fn write_blob(&self, ctx: &Ctx, data: &[u8], labels: &[(&str, &str)]) -> Digest {
        let d = digest_of(data);
        let r = format!("write-{d}");
        let labels = labels_of(labels);
        let size = data.len() as u64;
        let c = self.rt.content();
        match c
            .open(ctx, &r, size, Some(d.clone()))
            .expect("opening an ingest")
        {
            Opened::Live(mut w) => {
                w.write(data).expect("writing");
                c.commit(ctx, &mut w, size, Some(&d), Some(&labels))
                    .expect("committing")
            }
            Opened::Shared(s) => c
                .claim(ctx, &r, &s, size, Some(&d), Some(&labels))
                .expect("claiming"),
        }
    }

    /// Creates lease `id` in `ns` with `labels`.
    pub fn lease(&self, ns: &str, id: &str, labels: &[(&str, &str)]) {
        self.rt
            .leases()
            .create(&ctx(ns), id, &labels_of(labels))
            .expect("creating a lease");
    }

    /// Adds resource `kind`/`id` to lease `lease` of `ns`.
    pub fn hold(&self, ns: &str, lease: &str, kind: &str, id: &str) {
        let r = strata_runtime::Resource {
            id: id.into(),
            kind: kind.into(),
        };
        self.rt
            .leases()
            .add_resource(&ctx(ns), lease, &r)
            .expect("adding a lease resource");
    }

    /// Opens ingest `r` (with `expected`, if any) and closes the writer; returns whether the
    /// ingest is shared (another namespace holds `expected`).
    pub fn ingest(&self, ctx: &Ctx, r: &str, expected: Option<&Digest>) -> bool {
        let opened = self.rt.content().open(ctx, r, 0, expected.cloned());
        matches!(opened.expect("opening an ingest"), Opened::Shared(_))
    }

    /// An ingest with neither a lease nor an expiry (containerd's "no expireat"): opened under
    /// a lease that is deleted afterwards.
    pub fn orphan_ingest(&self, ns: &str, r: &str, expected: Option<&Digest>) -> bool {
        let tmp = format!("tmp-{r}");
        self.lease(ns, &tmp, &[]);
        let shared = self.ingest(&lctx(ns, &tmp), r, expected);
        self.rt
            .leases()
            .delete(&ctx(ns), &tmp)
            .expect("deleting a lease");
        shared
    }

    /// Whether the context's namespace holds blob `d`.
    pub fn has_blob(&self, ctx: &Ctx, d: &Digest) -> bool {
        match self.rt.content().info(ctx, d) {
            Ok(_) => true,
            Err(Error::NotFound(_)) => false,
            Err(e) => panic!("info {d}: {e:?}"),
        }
    }

    /// An active snapshot `key` on `parent`.
    pub fn active(&self, ctx: &Ctx, sn: &str, key: &str, parent: &str, labels: &[(&str, &str)]) {
        self.block_on(
            self.rt
                .snapshots()
                .prepare(ctx, sn, key, parent, labels_of(labels)),
        )
        .unwrap_or_else(|e| panic!("prepare {key}: {e:?}"));
    }

    /// A committed snapshot `name` on `parent`, made as containerd's tests make them: prepare
    /// `<name>-active`, commit it with `labels`.
    pub fn committed(
        &self,
        ctx: &Ctx,
        sn: &str,
        name: &str,
        parent: &str,
        labels: &[(&str, &str)],
    ) {
        let key = format!("{name}-active");
        self.active(ctx, sn, &key, parent, &[]);
        self.block_on(
            self.rt
                .snapshots()
                .commit(ctx, sn, name, &key, labels_of(labels)),
        )
        .unwrap_or_else(|e| panic!("commit {name}: {e:?}"));
    }

    /// Whether the context's namespace has snapshot `key` on backend `sn`.
    pub fn has_snapshot(&self, ctx: &Ctx, sn: &str, key: &str) -> bool {
        match self.block_on(self.rt.snapshots().stat(ctx, sn, key)) {
            Ok(_) => true,
            Err(Error::NotFound(_)) => false,
            Err(e) => panic!("stat {sn}/{key}: {e:?}"),
        }
    }

    /// Whether the context's namespace has lease `id`.
    pub fn has_lease(&self, ctx: &Ctx, id: &str) -> bool {
        let all = self.rt.leases().list(ctx, &[]).expect("listing leases");
        all.iter().any(|l| l.id == id)
    }

    /// Whether the context's namespace has a (live) ingest `r` in the content store.
    pub fn has_ingest(&self, ctx: &Ctx, r: &str) -> bool {
        match self.rt.content().status(ctx, r) {
            Ok(_) => true,
            Err(Error::NotFound(_)) => false,
            Err(e) => panic!("status {r}: {e:?}"),
        }
    }
}

/// An image named `name` targeting `digest` (as containerd's GC tests make them).
pub fn image(name: &str, digest: &Digest, labels: &[(&str, &str)]) -> Image {
    Image {
        name: name.into(),
        labels: labels_of(labels),
        target: Descriptor {
            media_type: "irrelevant".into(),
            digest: digest.to_string(),
            size: 256,
            annotations: Labels::new(),
        },
        created: SystemTime::UNIX_EPOCH,
        updated: SystemTime::UNIX_EPOCH,
    }
}

/// A container `id` on snapshot `key` of `snapshotter` (both may be empty).
pub fn container(id: &str, snapshotter: &str, key: &str, labels: &[(&str, &str)]) -> Container {
    Container {
        id: id.into(),
        labels: labels_of(labels),
        image: String::new(),
        runtime: ContainerRuntime {
            name: "testruntime".into(),
            options: None,
        },
        spec: Some(AnyValue::default()),
        snapshotter: snapshotter.into(),
        snapshot_key: key.into(),
        created: SystemTime::UNIX_EPOCH,
        updated: SystemTime::UNIX_EPOCH,
        extensions: BTreeMap::new(),
        sandbox: String::new(),
    }
}

/// A context in namespace `ns`, without a lease.
pub fn ctx(ns: &str) -> Ctx {
    Ctx::new(Some(ns), None).expect("valid namespace")
}

/// A context in namespace `ns` carrying lease `lease`.
pub fn lctx(ns: &str, lease: &str) -> Ctx {
    Ctx::new(Some(ns), Some(lease)).expect("valid namespace")
}

pub fn labels_of(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The sha256 digest of `data`.
pub fn digest_of(data: &[u8]) -> Digest {
    let mut h = Sha256State::new();
    h.update(data);
    Digest::sha256_from_bytes(&h.finalize())
}

/// 256 deterministic bytes for `i` (containerd's tests use `bytesFor(i)`, a seeded PRNG).
pub fn bytes_for(i: u64) -> Vec<u8> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    (0..256)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// The digest of [`bytes_for`]`(i)`.
pub fn digest_for(i: u64) -> Digest {
    digest_of(&bytes_for(i))
}

/// `t` as RFC 3339 with whole seconds (Go's `Format(time.RFC3339)`).
pub fn rfc3339(t: SystemTime) -> String {
    let mut ts = prost_types::Timestamp::from(t);
    ts.nanos = 0;
    ts.to_string()
}

/// Now plus (or minus, when negative) `secs` seconds, as RFC 3339.
pub fn rfc3339_in(secs: i64) -> String {
    let now = SystemTime::now();
    let d = Duration::from_secs(secs.unsigned_abs());
    rfc3339(if secs >= 0 { now + d } else { now - d })
}

/// A constructor of an error kind, used as "the expected kind" in tables:
/// `Some(Error::InvalidArgument)`.
pub type Kind = fn(String) -> Error;

/// Checks `res` against the expected outcome: `Ok` when `want` is `None` (returned), else an
/// error of that kind (the message is never looked at).
pub fn expect<T>(what: &str, res: Result<T>, want: Option<Kind>) -> Option<T> {
    match (res, want) {
        (Ok(v), None) => Some(v),
        (Err(e), None) => panic!("{what}: unexpected error {e:?}"),
        (Ok(_), Some(k)) => panic!("{what}: expected {:?}, got Ok", k(String::new())),
        (Err(e), Some(k)) => {
            let want = k(String::new());
            assert!(
                discriminant(&e) == discriminant(&want),
                "{what}: expected an error of kind {want:?}, got {e:?}"
            );
            None
        }
    }
}

/// Asserts that an expression is an error of the given [`Error`] kind.
#[macro_export]
macro_rules! assert_kind {
    ($res:expr, $kind:ident) => {
        match $res {
            Err(strata_runtime::Error::$kind(_)) => {}
            Err(e) => panic!("expected {}, got {:?}", stringify!($kind), e),
            Ok(_) => panic!("expected {}, got Ok", stringify!($kind)),
        }
    };
}
