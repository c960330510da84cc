//! Applying a layer: a pure function of (layer stream, target tree, options) -> result.
//!
//! The stream is hashed as it is read (the compressed digest, checked by the caller against the
//! descriptor) and after decompression (the diff ID); every entry is checked ([`crate::name`])
//! and written with `*at` calls relative to descriptors the kernel resolved inside the tree
//! ([`crate::tree`]). Directory times are set after their children. Nothing is synced: the
//! snapshotter makes the whole snapshot durable at Commit.

use std::collections::HashSet;
use std::io::Read;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use crate::error::from_stream;
use crate::hash::{Hashing, Stream};
use crate::meta::Meta;
use crate::name::{clean, split};
use crate::sys::{self, Time};
use crate::tree::Tree;
use crate::{Error, Result, entries};

/// How deletions are expressed in the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Whiteouts {
    /// An overlay upper directory: `.wh.x` becomes a 0:0 character device `x`, `.wh..wh..opq`
    /// this extended attribute (`trusted.overlay.opaque`, or `user.overlay.opaque` for
    /// `userxattr` mounts) set to `y` on its directory.
    Overlay { opaque_xattr: String },
    /// A full copy of the parent (native, btrfs): whiteouts delete, an opaque directory loses
    /// every entry this layer did not create.
    Delete,
}

/// What [`apply`] may do.
#[derive(Debug, Clone)]
pub struct Options {
    pub whiteouts: Whiteouts,
    /// Lower layers under an overlay upper directory, topmost first: hard links to their files
    /// copy the file up first, and missing parents take their attributes.
    pub lower: Vec<PathBuf>,
    /// The tree has lower layers that are not given (an upper directory applied apart from
    /// them, e.g. in parallel with them): any step that would read them — a missing parent
    /// directory, a hard link to a file this layer did not write — fails with
    /// [`Error::Unsupported`], so the caller can apply the layer the usual way instead.
    pub lower_unknown: bool,
    /// Whether character and block devices may be created.
    pub allow_devices: bool,
    /// Largest uncompressed stream (a decompression bomb fails here).
    pub max_bytes: u64,
    /// Most entries in one layer.
    pub max_entries: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            whiteouts: Whiteouts::Delete,
            lower: Vec::new(),
            lower_unknown: false,
            allow_devices: true,
            max_bytes: 1 << 40,
            max_entries: 10_000_000,
        }
    }
}

/// What applying a layer read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The stream as given (compare with the descriptor's digest).
    pub compressed: Stream,
    /// The decompressed tar (its digest is the layer's diff ID).
    pub uncompressed: Stream,
    pub entries: u64,
    /// Whether the layer had a `./` entry (the tree's root took its attributes).
    pub root_entry: bool,
}

/// Applies the layer in `src` (tar, gzip or zstd; detected) to the tree at `root`. Reading and
/// decompressing run on threads of their own ([`crate::pipeline`]).
pub fn apply<R: Read + Send>(src: R, root: &Path, opts: &Options) -> Result<Applied> {
    let mut applier = Applier::new(root, opts)?;
    let mut compressed = Hashing::new(src, u64::MAX, "compressed layer");
    let (entries, uncompressed) = std::thread::scope(|s| -> Result<_> {
        let inner = crate::pipeline::decompressed(s, &mut compressed);
        let mut tar = Hashing::new(inner, opts.max_bytes, "uncompressed layer");
        let n = applier.all(&mut tar)?;
        tar.drain()
            .map_err(|e| from_stream("reading past the tar", e))?;
        Ok((n, tar.finish()))
    })?;
    applier.finish()?;
    Ok(Applied {
        compressed: compressed.finish(),
        uncompressed,
        entries,
        root_entry: applier.root_entry,
    })
}

/// The state of one application.
pub(crate) struct Applier<'o> {
    pub tree: Tree,
    pub opts: &'o Options,
    /// Directories whose times are set at the end: (path, atime, mtime).
    dir_times: Vec<(PathBuf, Time, Time)>,
    /// Everything this layer created (an opaque directory keeps these).
    pub created: HashSet<PathBuf>,
    /// A `./` entry was applied.
    root_entry: bool,
    /// File data is copied through this, allocated once (a fresh zeroed buffer per file cost
    /// a 256 KiB memset for every small file).
    buf: Vec<u8>,
}

impl<'o> Applier<'o> {
    fn new(root: &Path, opts: &'o Options) -> Result<Self> {
        Ok(Applier {
            tree: Tree::open(root, &opts.lower, opts.lower_unknown)?,
            opts,
            dir_times: Vec::new(),
            created: HashSet::new(),
            root_entry: false,
            buf: Vec::new(),
        })
    }

    fn all<R: Read>(&mut self, tar: &mut R) -> Result<u64> {
        let mut archive = tar::Archive::new(tar);
        let mut n = 0u64;
        for e in archive
            .entries()
            .map_err(|e| from_stream("reading the tar", e))?
        {
            let mut e = e.map_err(|e| from_stream("reading a tar header", e))?;
            n += 1;
            if n > self.opts.max_entries {
                let max = self.opts.max_entries;
                return Err(Error::Limit(format!("more than {max} entries")));
            }
            self.entry(&mut e)?;
        }
        Ok(n)
    }

    fn entry<R: Read>(&mut self, e: &mut tar::Entry<'_, R>) -> Result<()> {
        let meta = Meta::of(e)?;
        let raw = match &meta.sparse_name {
            Some(n) => n.clone(),
            None => e.path_bytes().into_owned(),
        };
        let path = clean(&raw)?;
        let (parent, base) = split(&path);
        if let Some(target) = base.to_str().and_then(|b| b.strip_prefix(".wh.")) {
            return self.whiteout(&parent, target, &meta);
        }
        use tar::EntryType as T;
        let kind = e.header().entry_type();
        if path == Path::new(".") {
            return match kind {
                T::Directory => self.root_dir(&meta),
                _ => Err(Error::Invalid("the root entry is not a directory".into())),
            };
        }
        let mut made = Vec::new();
        let dir = self.tree.dir(&parent, &mut made)?;
        self.created.extend(made);
        let d = dir.as_fd();
        match kind {
            T::Directory => entries::directory(self, d, base, &path, &meta)?,
            T::Regular | T::Continuous | T::GNUSparse => {
                entries::file(self, d, base, &path, e, &meta)?
            }
            T::Symlink => entries::symlink(self, d, base, &path, e, &meta)?,
            T::Link => entries::hard_link(self, d, base, &path, e)?,
            T::Char | T::Block | T::Fifo => entries::node(self, d, base, &path, e, &meta)?,
            T::XGlobalHeader => return Ok(()),
            other => {
                return Err(Error::Unsupported(format!(
                    "entry type {other:?} of {}",
                    path.display()
                )));
            }
        }
        self.created.insert(path);
        Ok(())
    }

    /// The `./` entry: the tree's root takes its attributes.
    fn root_dir(&mut self, meta: &Meta) -> Result<()> {
        self.root_entry = true;
        let root = sys::open_dir(self.tree.root(), Path::new("."))
            .map_err(|e| Error::io("opening the root", e))?;
        entries::attributes(
            root.as_fd(),
            std::ffi::OsStr::new("."),
            Path::new("."),
            meta,
            false,
        )?;
        self.dir_times
            .push((PathBuf::from("."), meta.atime, meta.mtime));
        Ok(())
    }

    /// The buffer file data is copied through.
    pub(crate) fn copy_buffer(&mut self) -> &mut [u8] {
        if self.buf.is_empty() {
            self.buf = vec![0u8; entries::BUF];
        }
        &mut self.buf
    }

    pub(crate) fn defer_times(&mut self, path: &Path, meta: &Meta) {
        self.dir_times
            .push((path.to_path_buf(), meta.atime, meta.mtime));
    }

    /// Sets directory times, deepest last-seen first; a directory a later entry replaced is
    /// skipped.
    fn finish(&mut self) -> Result<()> {
        for (path, atime, mtime) in self.dir_times.iter().rev() {
            let (parent, base) = split(path);
            let dir = if path == Path::new(".") {
                self.tree.existing_dir(Path::new("."))?
            } else {
                self.tree.existing_dir(&parent).ok().flatten()
            };
            let Some(dir) = dir else { continue };
            let name = if path == Path::new(".") {
                std::ffi::OsStr::new(".")
            } else {
                base
            };
            match sys::lstat(dir.as_fd(), name) {
                Ok(Some(st)) if sys::is_dir(&st) => {}
                _ => continue,
            }
            sys::set_times(dir.as_fd(), name, *atime, *mtime)
                .map_err(|e| Error::io(format!("setting times of {}", path.display()), e))?;
        }
        Ok(())
    }
}
