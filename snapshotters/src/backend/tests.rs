//! The vendor seams of [`Layout`]: `open`, `install`, `remote` and committed-snapshot creation.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::native::NativeLayout;

const V: &str = "v";
const REF: &str = "containerd.io/snapshot.ref";

/// Native, plus: `open` fails when `refuse`; installs are counted; a Prepare carrying
/// [`REF`] is served remotely: the fill writes `remote` (and fails for a ref named `bad`).
#[derive(Debug, Default)]
struct Vendor {
    native: NativeLayout,
    refuse: bool,
    installs: AtomicUsize,
}

impl Layout for Vendor {
    fn own_dir(&self, kind: Kind, has_parent: bool) -> bool {
        self.native.own_dir(kind, has_parent)
    }
    fn fill(&self, dirs: &Dirs, tmp: &Path, new: &NewSnapshot<'_>) -> Result<()> {
        self.native.fill(dirs, tmp, new)?;
        if new.kind == Kind::Committed {
            if new.key == "bad" {
                return Err(Error::Unavailable("registry unreachable".into()));
            }
            let body = format!("{} on {:?}", new.key, new.parent);
            std::fs::write(tmp.join("remote"), body).map_err(|e| Error::io("write", e))?;
        }
        Ok(())
    }
    fn mounts(&self, dirs: &Dirs, snap: &Snapshot) -> Result<Vec<Mount>> {
        self.native.mounts(dirs, snap)
    }
    fn data_dir(&self, dirs: &Dirs, id: u64) -> PathBuf {
        self.native.data_dir(dirs, id)
    }
    fn open(&self, dir: &Path) -> Result<()> {
        match self.refuse {
            true => Err(Error::FailedPrecondition(format!(
                "{} is no zpool",
                dir.display()
            ))),
            false => Ok(()),
        }
    }
    fn install(&self, dirs: &Dirs, tmp: &Path, id: u64) -> Result<()> {
        self.installs.fetch_add(1, Ordering::SeqCst);
        dirs.install(tmp, id).map(drop)
    }
    fn remote(&self, _key: &str, _parent: &str, labels: &Labels) -> Option<String> {
        labels.get(REF).cloned()
    }
}

fn open(dir: &Path, layout: Vendor) -> Result<Backend<Vendor>> {
    let meta = Metadata::open(&dir.join("db"))?;
    Backend::with_layout(&meta, "vendor", &dir.join("snapshots"), layout)
}

fn remote_labels(target: &str) -> Labels {
    Labels::from([(REF.to_string(), target.to_string())])
}

#[tokio::test]
async fn a_failing_open_hook_stops_the_backend_before_it_touches_its_dir() {
    let d = tempfile::tempdir().unwrap();
    let layout = Vendor {
        refuse: true,
        ..Vendor::default()
    };
    let err = open(d.path(), layout).unwrap_err();
    assert!(matches!(err, Error::FailedPrecondition(_)), "{err:?}");
    assert!(!d.path().join("snapshots").exists());
}

#[tokio::test]
async fn every_new_directory_goes_through_the_install_hook() {
    let d = tempfile::tempdir().unwrap();
    let b = open(d.path(), Vendor::default()).unwrap();
    b.prepare(V, "a", "", Labels::new()).await.unwrap();
    b.commit(V, "c", "a", Labels::new()).await.unwrap();
    b.prepare(V, "b", "c", Labels::new()).await.unwrap();
    b.view(V, "w", "", Labels::new()).await.unwrap();
    assert_eq!(b.layout().installs.load(Ordering::SeqCst), 3);
}

/// containerd's remote-snapshotter protocol: Prepare with the ref label creates the committed
/// target (filled by the layout) and answers AlreadyExists; the client then uses the target.
#[tokio::test]
async fn remote_prepare_creates_the_committed_target_and_answers_already_exists() {
    let d = tempfile::tempdir().unwrap();
    let b = open(d.path(), Vendor::default()).unwrap();
    b.prepare(V, "a", "", Labels::new()).await.unwrap();
    b.commit(V, "base", "a", Labels::new()).await.unwrap();

    let labels = remote_labels("sha256:l1");
    let res = b.prepare(V, "extract-1", "base", labels.clone()).await;
    assert!(matches!(res, Err(Error::AlreadyExists(_))), "{res:?}");
    let info = b.stat(V, "sha256:l1").await.unwrap();
    assert_eq!(
        (info.kind, info.parent.as_str(), &info.labels),
        (Kind::Committed, "base", &labels)
    );
    assert!(matches!(
        b.stat(V, "extract-1").await,
        Err(Error::NotFound(_))
    ));
    assert!(
        b.usage(V, "sha256:l1").await.unwrap().inodes >= 2,
        "usage recorded"
    );

    // A child sees what the fill wrote; the parent cannot go while the target uses it.
    let mounts = b
        .prepare(V, "rootfs", "sha256:l1", Labels::new())
        .await
        .unwrap();
    let body = std::fs::read_to_string(Path::new(&mounts[0].source).join("remote")).unwrap();
    assert_eq!(body, "sha256:l1 on \"base\"");
    let res = b.remove(V, "base").await;
    assert!(matches!(res, Err(Error::FailedPrecondition(_))), "{res:?}");

    // The same layer again: AlreadyExists, nothing new.
    let res = b.prepare(V, "extract-2", "base", labels).await;
    assert!(matches!(res, Err(Error::AlreadyExists(_))), "{res:?}");
    assert_eq!(b.list(V, &[]).await.unwrap().len(), 3);
}

/// When the layout cannot provide the layer after all, Prepare goes ahead as usual and leaves
/// nothing of the failed attempt.
#[tokio::test]
async fn a_failed_remote_fill_falls_back_to_a_plain_prepare() {
    let d = tempfile::tempdir().unwrap();
    let b = open(d.path(), Vendor::default()).unwrap();
    let mounts = b.prepare(V, "k", "", remote_labels("bad")).await.unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(b.stat(V, "k").await.unwrap().kind, Kind::Active);
    assert!(matches!(b.stat(V, "bad").await, Err(Error::NotFound(_))));
    let dirs: Vec<_> = std::fs::read_dir(d.path().join("snapshots/snapshots"))
        .unwrap()
        .collect();
    assert_eq!(dirs.len(), 1, "only the active snapshot's directory");
}

#[tokio::test]
async fn create_committed_checks_its_name_and_parent() {
    let d = tempfile::tempdir().unwrap();
    let b = open(d.path(), Vendor::default()).unwrap();
    b.create_committed(V, "l1", "", Labels::new())
        .await
        .unwrap();
    let again = b.create_committed(V, "l1", "", Labels::new()).await;
    assert!(matches!(again, Err(Error::AlreadyExists(_))), "{again:?}");
    let orphan = b.create_committed(V, "l2", "missing", Labels::new()).await;
    assert!(matches!(orphan, Err(Error::NotFound(_))), "{orphan:?}");
    let empty = b.create_committed(V, "", "", Labels::new()).await;
    assert!(matches!(empty, Err(Error::InvalidArgument(_))), "{empty:?}");
    b.prepare(V, "a", "", Labels::new()).await.unwrap();
    let active = b.create_committed(V, "l3", "a", Labels::new()).await;
    assert!(
        matches!(active, Err(Error::InvalidArgument(_))),
        "{active:?}"
    );
    assert_eq!(b.list(V, &[]).await.unwrap().len(), 2);
    b.cleanup().await.unwrap();
    assert_eq!(
        std::fs::read_dir(d.path().join("snapshots/snapshots"))
            .unwrap()
            .count(),
        2,
        "no orphan directories"
    );
}
