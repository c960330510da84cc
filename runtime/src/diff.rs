//! The Diff service's semantics (containerd `diff/apply`, `diff/walking`): applying a layer blob
//! of the namespace to the tree a set of mounts describes, and writing the difference of two
//! trees as a new layer blob.
//!
//! Mounts are read, not performed, where they name directories: a read-write bind mount is its
//! source (native, or an overlay snapshot without parents); an overlay mount is its upper
//! directory with whiteouts converted for overlay and its lower directories beside (containerd's
//! fast path). Anything else (btrfs subvolumes) is mounted on a scratch directory for the call.
//! Clients are trusted to pass mounts of their own snapshots, as with containerd.

use std::io::Write;
use std::path::{Path, PathBuf};

use strata_archive::{Compression, Encoder, Options, Whiteouts};
use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_snapshotters::Mount;

use crate::{Ctx, Descriptor, Error, Opened, Result, Runtime};

/// The label giving a compressed layer's uncompressed digest.
pub const UNCOMPRESSED: &str = "containerd.io/uncompressed";
/// The media type of an applied (uncompressed) layer.
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const DEFAULT_DIFF_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Limits and permissions of layer application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackConfig {
    /// Whether layers may create character and block devices.
    pub allow_devices: bool,
    /// Largest uncompressed layer, in bytes.
    pub max_layer_bytes: u64,
    /// Most entries in one layer.
    pub max_layer_entries: u64,
    /// Whether a client's unpack onto `strata-overlay` applies all layers of the image at once
    /// (see [`crate::parallel_unpack`]; the proxy's unpack offload stages layers the same way).
    pub parallel: bool,
}

impl Default for UnpackConfig {
    fn default() -> Self {
        let o = Options::default();
        UnpackConfig {
            allow_devices: o.allow_devices,
            max_layer_bytes: o.max_bytes,
            max_layer_entries: o.max_entries,
            parallel: true,
        }
    }
}

impl UnpackConfig {
    /// What applying a layer may do under these limits, with `whiteouts` and `lower` layers
    /// for the tree it is applied to.
    pub(crate) fn options(&self, whiteouts: Whiteouts, lower: Vec<PathBuf>) -> Options {
        Options {
            whiteouts,
            lower,
            lower_unknown: false,
            allow_devices: self.allow_devices,
            max_bytes: self.max_layer_bytes,
            max_entries: self.max_layer_entries,
        }
    }
}

impl From<strata_archive::Error> for Error {
    fn from(e: strata_archive::Error) -> Self {
        use strata_archive::Error as E;
        match e {
            E::Invalid(_) | E::Limit(_) => Error::InvalidArgument(e.to_string()),
            E::Digest(m) => Error::FailedPrecondition(m),
            E::Unsupported(m) => Error::NotImplemented(m),
            E::Io { .. } => Error::Internal(e.to_string()),
        }
    }
}

/// Where a layer is applied: a directory (and its lower layers), or a temporary mount.
struct Target {
    root: PathBuf,
    lower: Vec<PathBuf>,
    whiteouts: Whiteouts,
    mounted: Option<PathBuf>,
}

impl Drop for Target {
    fn drop(&mut self) {
        if let Some(dir) = self.mounted.take() {
            if let Err(e) = strata_snapshotters::mount::unmount_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot unmount");
            }
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

fn option<'a>(m: &'a Mount, key: &str) -> Option<&'a str> {
    m.options.iter().find_map(|o| o.strip_prefix(key))
}

/// The mounts as a target to write to.
fn writable_target(mounts: &[Mount], scratch: &Path) -> Result<Target> {
    if let [m] = mounts {
        if m.options.iter().any(|o| o == "ro") {
            return Err(Error::InvalidArgument(
                "cannot apply a layer to read-only mounts".into(),
            ));
        }
        if m.kind == "bind" {
            return Ok(Target {
                root: m.source.clone().into(),
                lower: vec![],
                whiteouts: Whiteouts::Delete,
                mounted: None,
            });
        }
        if m.kind == "overlay"
            && let Some(upper) = option(m, "upperdir=")
        {
            let lower = option(m, "lowerdir=")
                .map(|l| l.split(':').map(PathBuf::from).collect())
                .unwrap_or_default();
            let xattr = if m.options.iter().any(|o| o == "userxattr") {
                "user.overlay.opaque"
            } else {
                "trusted.overlay.opaque"
            };
            let whiteouts = Whiteouts::Overlay {
                opaque_xattr: xattr.into(),
            };
            return Ok(Target {
                root: upper.into(),
                lower,
                whiteouts,
                mounted: None,
            });
        }
    }
    let dir = mount_scratch(mounts, scratch, false)?;
    Ok(Target {
        root: dir.clone(),
        lower: vec![],
        whiteouts: Whiteouts::Delete,
        mounted: Some(dir),
    })
}

/// Mounts `mounts` on a fresh directory under `scratch` (read-only when asked).
fn mount_scratch(mounts: &[Mount], scratch: &Path, read_only: bool) -> Result<PathBuf> {
    std::fs::create_dir_all(scratch)
        .map_err(|e| Error::Internal(format!("creating {}: {e}", scratch.display())))?;
    let dir = tempdir_in(scratch)?;
    let mut ms = mounts.to_vec();
    if read_only {
        for m in &mut ms {
            m.options.retain(|o| o != "rw");
            m.options.push("ro".into());
        }
    }
    if let Err(e) = strata_snapshotters::mount::mount_all(&ms, &dir) {
        let _ = strata_snapshotters::mount::unmount_all(&dir);
        let _ = std::fs::remove_dir(&dir);
        return Err(e.into());
    }
    Ok(dir)
}

fn tempdir_in(dir: &Path) -> Result<PathBuf> {
    for _ in 0..16 {
        let p = dir.join(format!("m-{:016x}", rand::random::<u64>()));
        match std::fs::create_dir(&p) {
            Ok(()) => return Ok(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::Internal(format!("creating {}: {e}", p.display()))),
        }
    }
    Err(Error::Internal("cannot create a scratch directory".into()))
}

/// Applies the layer stream `src` to the tree `mounts` describe (see the module docs), within
/// the limits of `cfg`; temporary mounts go under `scratch`. The caller checks the digests.
pub fn apply_to_mounts<R: std::io::Read + Send>(
    src: R,
    mounts: &[Mount],
    scratch: &Path,
    cfg: &UnpackConfig,
) -> Result<strata_archive::Applied> {
    let target = writable_target(mounts, scratch)?;
    let opts = cfg.options(target.whiteouts.clone(), target.lower.clone());
    Ok(strata_archive::apply(src, &target.root, &opts)?)
}

/// The Diff service of the runtime.
pub struct NsDiff {
    rt: Runtime,
}

impl NsDiff {
    pub(crate) fn new(rt: Runtime) -> Self {
        NsDiff { rt }
    }

    /// Applies layer blob `desc` of the namespace to the tree `mounts` describe; returns the
    /// applied descriptor (uncompressed media type, digest = diff ID, size). The blob's digest
    /// is verified while reading, and its `containerd.io/uncompressed` annotation when given.
    pub fn apply(&self, ctx: &Ctx, desc: &Descriptor, mounts: &[Mount]) -> Result<Descriptor> {
        let digest =
            Digest::parse(&desc.digest).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        let blob = self.rt.content().reader(ctx, &digest)?;
        let applied = apply_to_mounts(
            blob.stream(),
            mounts,
            &self.rt.scratch(),
            self.rt.unpack_config(),
        )?;
        if applied.compressed.digest != desc.digest {
            return Err(Error::FailedPrecondition(format!(
                "layer {} read as {}: content does not match its digest",
                desc.digest, applied.compressed.digest
            )));
        }
        if let Some(want) = desc.annotations.get(UNCOMPRESSED)
            && *want != applied.uncompressed.digest
        {
            return Err(Error::FailedPrecondition(format!(
                "layer {} has diff ID {}, not {want}",
                desc.digest, applied.uncompressed.digest
            )));
        }
        Ok(Descriptor {
            media_type: LAYER_TAR.into(),
            digest: applied.uncompressed.digest,
            size: applied.uncompressed.size as i64,
            annotations: Labels::new(),
        })
    }

    /// Writes the changes from the `left` tree to the `right` tree as a new blob of the
    /// namespace (`media_type` decides the compression; gzip by default), labelled with its
    /// uncompressed digest, under `reference` (a random one when empty).
    pub fn compare(
        &self,
        ctx: &Ctx,
        left: &[Mount],
        right: &[Mount],
        media_type: &str,
        reference: &str,
        labels: &Labels,
    ) -> Result<Descriptor> {
        let media_type = if media_type.is_empty() {
            DEFAULT_DIFF_TYPE
        } else {
            media_type
        };
        let compression = Compression::from_media_type(media_type).ok_or_else(|| {
            Error::NotImplemented(format!("unsupported diff media type: {media_type}"))
        })?;
        let scratch = self.rt.scratch();
        let lower = Scratch(mount_scratch(left, &scratch, true)?);
        let upper = Scratch(mount_scratch(right, &scratch, true)?);
        let reference = if reference.is_empty() {
            format!("diff-{:016x}", rand::random::<u64>())
        } else {
            reference.to_string()
        };
        let Opened::Live(mut w) = self.rt.content().open(ctx, &reference, 0, None)? else {
            return Err(Error::Internal("a diff ingest cannot be shared".into()));
        };
        let sink = Encoder::new(compression, IngestSink(&mut w)).map_err(io_internal)?;
        let mut hashed = HashingWriter::new(sink);
        strata_archive::write_diff(&lower.0, &upper.0, &mut hashed)?;
        let (sink, uncompressed) = hashed.finish();
        sink.finish().map_err(io_internal)?;
        let mut all = labels.clone();
        all.insert(UNCOMPRESSED.into(), uncompressed);
        let size = w.offset();
        let digest = match self.rt.content().commit(ctx, &mut w, 0, None, Some(&all)) {
            Ok(d) => d,
            Err(Error::AlreadyExists(_)) => w.digest(),
            Err(e) => return Err(e),
        };
        Ok(Descriptor {
            media_type: media_type.into(),
            digest: digest.to_string(),
            size: size as i64,
            annotations: Labels::new(),
        })
    }
}

fn io_internal(e: std::io::Error) -> Error {
    Error::Internal(format!("writing the diff: {e}"))
}

/// A scratch mount, unmounted and removed when dropped.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = strata_snapshotters::mount::unmount_all(&self.0);
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Writes into an ingest.
struct IngestSink<'a>(&'a mut strata_content::Writer);

impl Write for IngestSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Hashes (sha256) what it passes on.
struct HashingWriter<W> {
    inner: W,
    hasher: sha2::Sha256,
}

impl<W: Write> HashingWriter<W> {
    fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: <sha2::Sha256 as sha2::Digest>::new(),
        }
    }

    fn finish(self) -> (W, String) {
        let h = <sha2::Sha256 as sha2::Digest>::finalize(self.hasher);
        (self.inner, format!("sha256:{}", hex::encode(h)))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        sha2::Digest::update(&mut self.hasher, &buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
