//! The FUSE file system of a lazy layer: one eStargz or zstd:chunked [`Layer`] served read-only
//! as an **overlayfs lower layer**, the tree a full unpack by containerd's overlay snapshotter
//! would give (whiteouts as 0/0 character devices, opaque directories marked with
//! `trusted.overlay.opaque=y`, hard links sharing an inode, owners, modes, devices, extended
//! attributes and modification times from the TOC).
//!
//! File content is read on demand through [`Layer::read`]: only the chunks a read touches are
//! fetched and decompressed, and each is checked against its TOC digest first. A chunk that
//! cannot be fetched or does not match gives the reader `EIO`, never unverified bytes; the
//! session keeps serving everything else. A read that reaches the end of a chunk (sequential
//! reads do) has the file's next chunks loaded and verified ahead, in the background, bounded
//! by [`MountOptions::read_ahead`] and the layer's cache budget.
//!
//! [`mount`] mounts as root directly through `/dev/fuse` (no `fusermount`), with `ro`,
//! `allow_other` (overlay and containers read the tree as other users), `default_permissions`
//! (the kernel checks modes) and the source `strata-lazy`. The layer is immutable, so entries
//! and attributes are cached for an hour by default and file pages survive reopening.
//!
//! ```no_run
//! # async fn run() -> Result<(), strata_lazy::Error> {
//! use std::sync::Arc;
//! use strata_lazy::estargz::Layer;
//! use strata_lazy::fs::{MountOptions, mount};
//!
//! let file = std::fs::File::open("layer.gz").map_err(|e| strata_lazy::Error::io("open", e))?;
//! let layer = Arc::new(Layer::open(file, "sha256:d09c...")?);
//! let mounted = mount(layer, "/run/strata/lazy/1".as_ref(), &MountOptions::default()).await?;
//! // ... mount -t overlay -o lowerdir=/run/strata/lazy/1:...
//! mounted.unmount().await?;
//! # Ok(()) }
//! ```

mod inodes;
mod ops;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use fuse3::raw::Session;
use nix::errno::Errno;
use nix::mount::{MntFlags, umount2};
use tokio::sync::watch;

use crate::estargz::Layer;
use crate::{Error, RangeSource, Result};
use inodes::Table;
use ops::LazyFs;

/// How long [`Mounted::unmount`] waits for the session to end after the kernel let go.
const SESSION_END_WAIT: Duration = Duration::from_secs(10);

/// Read-ahead of sequential reads by default: the next 16 MiB of chunks (4 of the converter's
/// 4 MiB chunks; the default cache budget allows that much).
pub const DEFAULT_READ_AHEAD: u64 = 16 << 20;

/// How a layer is mounted.
#[derive(Debug, Clone)]
pub struct MountOptions {
    /// Let users other than the mounter (overlay's copy-up, container processes) in.
    pub allow_other: bool,
    /// How long the kernel may cache entries and attributes.
    pub ttl: Duration,
    /// The extended attribute marking an opaque directory: `trusted.overlay.opaque`, or
    /// `user.overlay.opaque` under an overlay mounted with `userxattr`.
    pub opaque_xattr: String,
    /// The mount's source, as `/proc/self/mountinfo` shows it.
    pub fs_name: String,
    /// Bytes of a file's next chunks loaded ahead (verified, into the layer's chunk cache, a
    /// quarter of its budget at most) when a read reaches the end of a chunk, as sequential
    /// reads do; 0 turns read-ahead off.
    pub read_ahead: u64,
}

impl Default for MountOptions {
    fn default() -> Self {
        MountOptions {
            allow_other: true,
            ttl: Duration::from_secs(3600),
            opaque_xattr: "trusted.overlay.opaque".to_string(),
            fs_name: "strata-lazy".to_string(),
            read_ahead: DEFAULT_READ_AHEAD,
        }
    }
}

/// How the FUSE session ended: `Ok` when the kernel let go of the mount, else why it failed.
type SessionEnd = Option<std::result::Result<(), String>>;

/// A mounted layer. [`Mounted::unmount`] unmounts it; dropping it without that detaches the
/// mount lazily (`umount -l`), so none is left behind.
#[derive(Debug)]
pub struct Mounted {
    mountpoint: PathBuf,
    ended: watch::Receiver<SessionEnd>,
    unmounted: bool,
}

/// Mounts `layer` at `mountpoint` (an empty directory) and serves it on the current tokio
/// runtime until it is unmounted. Needs root and `/dev/fuse`.
pub async fn mount<S: RangeSource + 'static>(
    layer: Arc<Layer<S>>,
    mountpoint: &Path,
    opts: &MountOptions,
) -> Result<Mounted> {
    let for_table = layer.clone();
    let xattr = opts.opaque_xattr.clone();
    let table = tokio::task::spawn_blocking(move || Table::build(for_table.toc(), &xattr))
        .await
        .map_err(|e| Error::io("building the inode table", std::io::Error::other(e)))??;
    let fs = LazyFs {
        layer,
        table: Arc::new(table),
        ttl: opts.ttl,
        read_ahead: opts.read_ahead,
        reading_ahead: Default::default(),
    };
    let mut fuse_opts = fuse3::MountOptions::default();
    fuse_opts
        .fs_name(opts.fs_name.as_str())
        .read_only(true)
        .allow_other(opts.allow_other)
        .default_permissions(true);
    let handle = Session::new(fuse_opts)
        .mount(fs, mountpoint)
        .await
        .map_err(|e| Error::io(format!("mounting {}", mountpoint.display()), e))?;
    let (tx, rx) = watch::channel(None);
    let at = mountpoint.to_path_buf();
    tokio::spawn(async move {
        let end = handle.await.map_err(|e| e.to_string());
        match &end {
            Ok(()) => tracing::info!(mountpoint = %at.display(), "fuse session ended"),
            Err(e) => {
                tracing::error!(mountpoint = %at.display(), error = %e, "fuse session failed")
            }
        }
        let _ = tx.send(Some(end));
    });
    tracing::info!(mountpoint = %mountpoint.display(), "lazy layer mounted");
    Ok(Mounted {
        mountpoint: mountpoint.to_path_buf(),
        ended: rx,
        unmounted: false,
    })
}

impl Mounted {
    /// Where the layer is mounted.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Whether the FUSE session is still serving requests.
    pub fn is_running(&self) -> bool {
        self.ended.borrow().is_none()
    }

    /// Waits until the FUSE session ends (the mount was unmounted, or the session failed).
    pub async fn ended(&self) -> Result<()> {
        let mut rx = self.ended.clone();
        let end = match rx.wait_for(Option::is_some).await {
            Ok(end) => end.clone().expect("waited for some"),
            Err(_) => Err("the session task was dropped".to_string()),
        };
        end.map_err(|e| {
            Error::io(
                format!("fuse session at {}", self.mountpoint.display()),
                std::io::Error::other(e),
            )
        })
    }

    /// Unmounts the layer and waits for its session to end. A busy mount (files still open,
    /// an overlay still using it) is detached instead: it leaves the namespace now and its
    /// session serves the remaining users until they close.
    pub async fn unmount(mut self) -> Result<()> {
        self.unmounted = true;
        let running = self.is_running();
        let path = self.mountpoint.clone();
        let at = path.display().to_string();
        let res = tokio::task::spawn_blocking(move || match umount2(&path, MntFlags::empty()) {
            Err(Errno::EBUSY) => umount2(&path, MntFlags::MNT_DETACH).map(|()| false),
            other => other.map(|()| true),
        })
        .await
        .map_err(|e| Error::io(format!("unmounting {at}"), std::io::Error::other(e)))?;
        match res {
            Ok(true) => {}
            Ok(false) => {
                tracing::info!(mountpoint = %at, "busy lazy layer detached");
                return Ok(());
            }
            Err(Errno::EINVAL) if !running => return self.ended().await,
            Err(e) => return Err(Error::io(format!("unmounting {at}"), e.into())),
        }
        tokio::time::timeout(SESSION_END_WAIT, self.ended())
            .await
            .map_err(|_| {
                Error::io(
                    format!("unmounting {at}"),
                    std::io::Error::other("the fuse session did not end"),
                )
            })?
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if self.unmounted || !self.is_running() {
            return;
        }
        if let Err(e) = umount2(&self.mountpoint, MntFlags::MNT_DETACH) {
            tracing::warn!(mountpoint = %self.mountpoint.display(), error = %e, "detaching a dropped lazy mount failed");
        }
    }
}
