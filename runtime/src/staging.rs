//! Layers applied into a directory of their own, to become an overlay snapshot's upper
//! directory later: the parallel unpacks of the runtime socket ([`crate::parallel_unpack`],
//! [`crate::prestage`]) and of the proxy's unpack offload.
//!
//! Overlay layers are independent directories, so the layers of an image can be applied at
//! once, each into a staging directory under [`STAGING_DIR`] (on the snapshots' filesystem),
//! and moved in one `rename(2)` over the empty upper directory of the snapshot Prepare made
//! ([`move_in`]). A layer staged above others cannot read them: one that would need them (a
//! hard link to a file only they have, a parent directory it does not carry) fails with
//! `Unsupported` ([`strata_archive::Options::lower_unknown`]) and is applied the usual way.

use std::io::Read;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use strata_archive::Whiteouts;
use strata_content::BlobReader;
use strata_core::digest::Digest;
use strata_snapshotters::Mount;
use tokio::sync::Semaphore;

use crate::{Error, Result, UnpackConfig};

mod jobs;

pub use jobs::{BUDGET, Job, Jobs, KEEP};

/// The backend whose layers are independent directories.
pub const PARALLEL_SNAPSHOTTER: &str = "strata-overlay";
/// What `strata-overlay`'s mounts honour for an opaque directory (it never mounts `userxattr`).
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Where staging directories go, under the scratch directory (`<root>/tmp/staging`). Nothing is
/// ever mounted there: the daemon removes it whole at start.
pub const STAGING_DIR: &str = "staging";

/// A layer applied into a staging directory.
#[derive(Debug)]
pub struct Staged {
    pub dir: PathBuf,
    /// The digest of the layer's tar.
    pub diff_id: String,
    /// Whether the layer set the root's attributes (a `./` entry).
    pub root_entry: bool,
}

/// Layers applied at once, process-wide: one per core (each application is itself a pipeline
/// of three threads).
pub fn workers() -> Arc<Semaphore> {
    static SEM: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SEM.get_or_init(|| {
        let n = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(n))
    })
    .clone()
}

/// Set to stop a staging at its next read of the blob: an early staging nobody will take.
pub type StopFlag = Arc<AtomicBool>;

/// A layer stream that fails once its [`StopFlag`] is set.
pub struct Stoppable<R> {
    pub inner: R,
    pub stop: StopFlag,
}

impl<R: Read> Read for Stoppable<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(std::io::Error::other(
                "staging stopped: no unpack will take it",
            ));
        }
        self.inner.read(buf)
    }
}

/// Whether a blob's first bytes are those of a gzip, zstd or tar stream.
pub fn looks_like_layer(head: &[u8]) -> bool {
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.get(257..262) == Some(b"ustar")
}

/// Whether the blob `reader` reads [`looks_like_layer`] (reads its first 512 bytes).
pub fn is_layer(reader: &BlobReader) -> bool {
    let mut head = [0u8; 512];
    let n = reader.read_at(0, &mut head).unwrap_or(0);
    looks_like_layer(&head[..n])
}

/// [`stage`] on a blocking thread once one of the [`workers`] is free: applies the layer
/// stream `open` gives into the new directory `dir` (its parent created if need be). It fails
/// at its next read of the stream once `stop` is set.
pub async fn stage_on_worker<R, F>(
    open: F,
    blob: Digest,
    dir: PathBuf,
    lower_unknown: bool,
    cfg: UnpackConfig,
    stop: StopFlag,
) -> Result<Staged>
where
    R: Read + Send,
    F: FnOnce() -> Result<R> + Send + 'static,
{
    let _worker = workers()
        .acquire_owned()
        .await
        .map_err(|e| Error::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        if let Some(parent) = dir.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Internal(format!("staging in {}: {e}", parent.display())))?;
        }
        let src = Stoppable {
            inner: open()?,
            stop,
        };
        stage(src, &blob, &dir, lower_unknown, &cfg)
    })
    .await
    .map_err(|e| Error::Internal(format!("staging: {e}")))?
}

/// Applies the layer stream `src` of blob `blob` into the new directory `dir` as an overlay
/// upper directory, within the limits of `cfg`, its blob digest checked (blocking). `dir` is
/// gone again on any failure.
pub fn stage<R: Read + Send>(
    src: R,
    blob: &Digest,
    dir: &Path,
    lower_unknown: bool,
    cfg: &UnpackConfig,
) -> Result<Staged> {
    let io = |e: std::io::Error| Error::Internal(format!("staging in {}: {e}", dir.display()));
    std::fs::create_dir(dir).map_err(io)?;
    let res = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .map_err(io)
        .and_then(|()| stage_into(src, blob, dir, lower_unknown, cfg));
    if res.is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
    res
}

fn stage_into<R: Read + Send>(
    src: R,
    blob: &Digest,
    dir: &Path,
    lower_unknown: bool,
    cfg: &UnpackConfig,
) -> Result<Staged> {
    let whiteouts = Whiteouts::Overlay {
        opaque_xattr: OPAQUE_XATTR.into(),
    };
    let opts = strata_archive::Options {
        lower_unknown,
        ..cfg.options(whiteouts, Vec::new())
    };
    let applied = strata_archive::apply(src, dir, &opts)?;
    if applied.compressed.digest != blob.to_string() {
        return Err(Error::FailedPrecondition(format!(
            "layer {blob} read as {}",
            applied.compressed.digest
        )));
    }
    Ok(Staged {
        dir: dir.to_path_buf(),
        diff_id: applied.uncompressed.digest,
        root_entry: applied.root_entry,
    })
}

/// The upper directory of an active overlay snapshot's mounts (a bind mount's source when it
/// has no parent).
fn upper_dir(mounts: &[Mount]) -> Result<PathBuf> {
    match mounts {
        [m] if m.kind == "bind" => Ok(PathBuf::from(&m.source)),
        [m] if m.kind == "overlay" => m
            .options
            .iter()
            .find_map(|o| o.strip_prefix("upperdir="))
            .map(PathBuf::from)
            .ok_or_else(|| Error::Internal("an overlay mount without upperdir".into())),
        _ => Err(Error::Internal(format!(
            "unexpected mounts for an overlay snapshot: {mounts:?}"
        ))),
    }
}

/// Replaces the snapshot's empty upper directory with the staged tree (blocking). Unless the
/// layer set the root's attributes (a `./` entry), the root keeps those Prepare gave it.
pub fn move_in(staged: &Staged, mounts: &[Mount]) -> Result<()> {
    let upper = upper_dir(mounts)?;
    let io =
        |what: &str, e: std::io::Error| Error::Internal(format!("{what} {}: {e}", upper.display()));
    if !staged.root_entry {
        let md = std::fs::symlink_metadata(&upper).map_err(|e| io("stat", e))?;
        std::os::unix::fs::lchown(&staged.dir, Some(md.uid()), Some(md.gid()))
            .map_err(|e| io("chown for", e))?;
        std::fs::set_permissions(
            &staged.dir,
            std::fs::Permissions::from_mode(md.mode() & 0o7777),
        )
        .map_err(|e| io("chmod for", e))?;
    }
    // rename(2) replaces an empty directory in one step.
    std::fs::rename(&staged.dir, &upper).map_err(|e| io("moving a staged layer to", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_are_told_by_their_first_bytes() {
        assert!(looks_like_layer(&[0x1f, 0x8b, 8, 0]));
        assert!(looks_like_layer(&[0x28, 0xb5, 0x2f, 0xfd, 0]));
        let mut tar = [0u8; 512];
        tar[257..262].copy_from_slice(b"ustar");
        assert!(looks_like_layer(&tar));
        assert!(!looks_like_layer(b"{\"schemaVersion\":2}"));
        assert!(!looks_like_layer(&[0u8; 100]));
    }
}
