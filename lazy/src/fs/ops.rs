//! The FUSE operations: [`LazyFs`] answers the kernel from the inode table and reads file
//! content through the layer (from its chunk cache at once, else on a blocking thread),
//! verified chunk by chunk, and reads ahead for sequential readers. Every write is
//! `EROFS`; a layer error is `EIO` (and a log line), never unverified bytes.

use std::ffi::OsStr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use fuse3::raw::prelude::*;
use fuse3::{Errno, Inode, Result};
use futures::stream::{self, Stream};

use super::inodes::{Node, Table};
use crate::RangeSource;
use crate::estargz::{Layer, Piece};

/// `FOPEN_KEEP_CACHE`: the page cache of a file stays valid across opens (the layer is
/// immutable).
const FOPEN_KEEP_CACHE: u32 = 1 << 1;
/// `FOPEN_CACHE_DIR`: the kernel may cache directory listings.
const FOPEN_CACHE_DIR: u32 = 1 << 3;
/// The largest write the kernel is told about (nothing is ever written).
const MAX_WRITE: u32 = 128 * 1024;
/// The block size statfs and stat report.
const BLOCK: u32 = 4096;
/// The most chunks of a mount being read ahead at once (each on a blocking thread).
const MAX_READ_AHEADS: usize = 4;

/// One mounted layer: the read-only FUSE file system.
pub struct LazyFs<S> {
    pub(crate) layer: Arc<Layer<S>>,
    pub(crate) table: Arc<Table>,
    /// How long the kernel may cache entries and attributes.
    pub(crate) ttl: Duration,
    /// Bytes of a file's next chunks read ahead when a read reaches the end of a chunk (0:
    /// none).
    pub(crate) read_ahead: u64,
    /// Chunks being read ahead now.
    pub(crate) reading_ahead: Arc<AtomicUsize>,
}

/// A verified chunk's bytes, shared by the replies that carry parts of it.
struct Verified(Arc<Vec<u8>>);

impl AsRef<[u8]> for Verified {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// One reply of `len` bytes from `pieces`: a part of a chunk as it is (no copy), or several
/// parts joined.
fn joined(pieces: Vec<Piece>, len: usize) -> Bytes {
    if let [_] = pieces[..] {
        let (data, range) = pieces.into_iter().next().expect("one piece").into_parts();
        return Bytes::from_owner(Verified(data)).slice(range);
    }
    let mut out = BytesMut::with_capacity(len);
    for p in &pieces {
        out.extend_from_slice(p.bytes());
    }
    out.freeze()
}

/// Counts a read-ahead as running until dropped.
struct Running(Arc<AtomicUsize>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn errno(e: i32) -> Errno {
    Errno::from(e)
}

impl<S> LazyFs<S> {
    fn node(&self, ino: Inode) -> Result<&Node> {
        self.table.get(ino).ok_or_else(|| errno(libc::ENOENT))
    }

    fn attr(&self, ino: Inode, n: &Node) -> FileAttr {
        FileAttr {
            ino,
            size: n.size,
            blocks: n.size.div_ceil(512),
            atime: n.mtime,
            mtime: n.mtime,
            ctime: n.mtime,
            kind: n.kind,
            perm: n.perm,
            nlink: n.nlink,
            uid: n.uid,
            gid: n.gid,
            rdev: n.rdev,
            blksize: BLOCK,
        }
    }

    fn entry(&self, ino: Inode) -> Result<ReplyEntry> {
        let n = self.node(ino)?;
        Ok(ReplyEntry {
            ttl: self.ttl,
            attr: self.attr(ino, n),
            generation: 0,
        })
    }

    fn dir(&self, ino: Inode) -> Result<&Node> {
        let n = self.node(ino)?;
        if n.kind != FileType::Directory {
            return Err(errno(libc::ENOTDIR));
        }
        Ok(n)
    }

    /// Directory `ino`'s entries from `offset` on: `.`, `..`, then the children by name; each
    /// carries the offset of the one after it.
    fn listing(&self, ino: Inode, offset: u64) -> Result<Vec<(Inode, FileType, String, i64)>> {
        let d = self.dir(ino)?;
        let dots = [(ino, "."), (d.parent, "..")];
        let all = dots
            .into_iter()
            .map(|(i, name)| (i, name.to_string()))
            .chain(d.children.iter().map(|(name, &i)| (i, name.clone())));
        let mut out = Vec::new();
        for (idx, (i, name)) in all.enumerate().skip(offset as usize) {
            let kind = self.node(i)?.kind;
            out.push((i, kind, name, idx as i64 + 1));
        }
        Ok(out)
    }

    /// An extended-attribute reply for `data` to a caller offering `size` bytes (0: a probe).
    fn xattr_reply(data: Vec<u8>, size: u32) -> Result<ReplyXAttr> {
        match size {
            0 => Ok(ReplyXAttr::Size(data.len() as u32)),
            s if (s as usize) < data.len() => Err(errno(libc::ERANGE)),
            _ => Ok(ReplyXAttr::Data(Bytes::from(data))),
        }
    }
}

impl<S: RangeSource + 'static> LazyFs<S> {
    /// Reads `len` bytes of regular file `n` from `offset`, verified, or `EIO`: from the
    /// chunk cache right away when it holds them all, else on a blocking thread.
    async fn read_verified(&self, ino: Inode, n: &Node, offset: u64, len: usize) -> Result<Bytes> {
        let res = match self.layer.read_cached(&n.data, offset, len as u64) {
            Ok(Some(pieces)) => Ok(Ok(pieces)),
            Ok(None) => {
                let layer = self.layer.clone();
                let name = n.data.clone();
                tokio::task::spawn_blocking(move || layer.read_pieces(&name, offset, len as u64))
                    .await
            }
            Err(e) => Ok(Err(e)),
        };
        let res = res.map(|r| r.map(|p| (p.iter().map(Piece::len).sum::<usize>(), p)));
        match res {
            Ok(Ok((got, pieces))) if got == len => Ok(joined(pieces, len)),
            Ok(Ok((got, _))) => {
                tracing::error!(ino, file = %n.data, offset, len, got, "short read from the layer");
                Err(errno(libc::EIO))
            }
            Ok(Err(e)) => {
                tracing::error!(ino, file = %n.data, offset, len, error = %e, "reading the layer failed");
                Err(errno(libc::EIO))
            }
            Err(e) => {
                tracing::error!(ino, file = %n.data, offset, error = %e, "layer read task failed");
                Err(errno(libc::EIO))
            }
        }
    }
}

impl<S: RangeSource + 'static> LazyFs<S> {
    /// After a read of `len` bytes of regular file `n` at `offset`: when it reached the end of
    /// a chunk (as a sequential reader's do), loads the file's next chunks into the layer's
    /// cache on blocking threads, up to [`LazyFs::read_ahead`] bytes of them and
    /// [`MAX_READ_AHEADS`] at once, so the reader finds them verified already. A read-ahead
    /// that fails is logged and forgotten: the reads of its chunk load it themselves.
    fn read_ahead(&self, n: &Node, offset: u64, len: usize) {
        if self.read_ahead == 0 {
            return;
        }
        let chunks = self
            .layer
            .chunks_ahead(&n.data, offset, len as u64, self.read_ahead);
        for chunk in chunks {
            if self.reading_ahead.fetch_add(1, Ordering::SeqCst) >= MAX_READ_AHEADS {
                self.reading_ahead.fetch_sub(1, Ordering::SeqCst);
                return;
            }
            let running = Running(self.reading_ahead.clone());
            let (layer, name) = (self.layer.clone(), n.data.clone());
            tokio::task::spawn_blocking(move || {
                let _running = running;
                if let Err(e) = layer.prefetch(&name, &chunk) {
                    tracing::debug!(file = %name, offset = chunk.offset, error = %e, "reading ahead failed");
                }
            });
        }
    }
}

fn erofs<T>() -> Result<T> {
    Err(errno(libc::EROFS))
}

impl<S: RangeSource + 'static> Filesystem for LazyFs<S> {
    async fn init(&self, _req: Request) -> Result<ReplyInit> {
        Ok(ReplyInit::new(NonZeroU32::new(MAX_WRITE).expect("nonzero")))
    }

    async fn destroy(&self, _req: Request) {}

    async fn lookup(&self, _req: Request, parent: Inode, name: &OsStr) -> Result<ReplyEntry> {
        self.dir(parent)?;
        let name = name.to_str().ok_or_else(|| errno(libc::ENOENT))?;
        let ino = self
            .table
            .lookup(parent, name)
            .ok_or_else(|| errno(libc::ENOENT))?;
        self.entry(ino)
    }

    async fn getattr(
        &self,
        _req: Request,
        inode: Inode,
        _fh: Option<u64>,
        _flags: u32,
    ) -> Result<ReplyAttr> {
        let n = self.node(inode)?;
        Ok(ReplyAttr {
            ttl: self.ttl,
            attr: self.attr(inode, n),
        })
    }

    async fn setattr(
        &self,
        _req: Request,
        _inode: Inode,
        _fh: Option<u64>,
        _set_attr: SetAttr,
    ) -> Result<ReplyAttr> {
        erofs()
    }

    async fn readlink(&self, _req: Request, inode: Inode) -> Result<ReplyData> {
        let n = self.node(inode)?;
        if n.kind != FileType::Symlink {
            return Err(errno(libc::EINVAL));
        }
        Ok(ReplyData {
            data: Bytes::from(n.target.clone().into_bytes()),
        })
    }

    async fn symlink(
        &self,
        _req: Request,
        _parent: Inode,
        _name: &OsStr,
        _link: &OsStr,
    ) -> Result<ReplyEntry> {
        erofs()
    }

    async fn mknod(
        &self,
        _req: Request,
        _parent: Inode,
        _name: &OsStr,
        _mode: u32,
        _rdev: u32,
    ) -> Result<ReplyEntry> {
        erofs()
    }

    async fn mkdir(
        &self,
        _req: Request,
        _parent: Inode,
        _name: &OsStr,
        _mode: u32,
        _umask: u32,
    ) -> Result<ReplyEntry> {
        erofs()
    }

    async fn unlink(&self, _req: Request, _parent: Inode, _name: &OsStr) -> Result<()> {
        erofs()
    }

    async fn rmdir(&self, _req: Request, _parent: Inode, _name: &OsStr) -> Result<()> {
        erofs()
    }

    async fn rename(
        &self,
        _req: Request,
        _parent: Inode,
        _name: &OsStr,
        _new_parent: Inode,
        _new_name: &OsStr,
    ) -> Result<()> {
        erofs()
    }

    async fn link(
        &self,
        _req: Request,
        _inode: Inode,
        _new_parent: Inode,
        _new_name: &OsStr,
    ) -> Result<ReplyEntry> {
        erofs()
    }

    async fn open(&self, _req: Request, inode: Inode, flags: u32) -> Result<ReplyOpen> {
        let n = self.node(inode)?;
        if n.kind == FileType::Directory {
            return Err(errno(libc::EISDIR));
        }
        let write = libc::O_WRONLY | libc::O_RDWR | libc::O_TRUNC | libc::O_APPEND;
        if flags as i32 & write != 0 {
            return erofs();
        }
        Ok(ReplyOpen {
            fh: 0,
            flags: FOPEN_KEEP_CACHE,
        })
    }

    async fn read(
        &self,
        _req: Request,
        inode: Inode,
        _fh: u64,
        offset: u64,
        size: u32,
    ) -> Result<ReplyData> {
        let n = self.node(inode)?;
        match n.kind {
            FileType::RegularFile => {}
            FileType::Directory => return Err(errno(libc::EISDIR)),
            _ => return Err(errno(libc::EINVAL)),
        }
        let len = n.size.saturating_sub(offset).min(u64::from(size)) as usize;
        if len == 0 {
            return Ok(ReplyData { data: Bytes::new() });
        }
        let data = self.read_verified(inode, n, offset, len).await?;
        self.read_ahead(n, offset, len);
        Ok(ReplyData { data })
    }

    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        _req: Request,
        _inode: Inode,
        _fh: u64,
        _offset: u64,
        _data: &[u8],
        _write_flags: u32,
        _flags: u32,
    ) -> Result<ReplyWrite> {
        erofs()
    }

    async fn statfs(&self, _req: Request, _inode: Inode) -> Result<ReplyStatFs> {
        Ok(ReplyStatFs {
            blocks: self.table.bytes.div_ceil(u64::from(BLOCK)),
            bfree: 0,
            bavail: 0,
            files: self.table.len() as u64,
            ffree: 0,
            bsize: BLOCK,
            namelen: 255,
            frsize: BLOCK,
        })
    }

    async fn release(
        &self,
        _req: Request,
        _inode: Inode,
        _fh: u64,
        _flags: u32,
        _lock_owner: u64,
        _flush: bool,
    ) -> Result<()> {
        Ok(())
    }

    async fn fsync(&self, _req: Request, _inode: Inode, _fh: u64, _datasync: bool) -> Result<()> {
        Ok(())
    }

    async fn setxattr(
        &self,
        _req: Request,
        _inode: Inode,
        _name: &OsStr,
        _value: &[u8],
        _flags: u32,
        _position: u32,
    ) -> Result<()> {
        erofs()
    }

    async fn getxattr(
        &self,
        _req: Request,
        inode: Inode,
        name: &OsStr,
        size: u32,
    ) -> Result<ReplyXAttr> {
        let n = self.node(inode)?;
        let value = name
            .to_str()
            .and_then(|k| n.xattrs.get(k))
            .ok_or_else(|| errno(libc::ENODATA))?;
        Self::xattr_reply(value.clone(), size)
    }

    async fn listxattr(&self, _req: Request, inode: Inode, size: u32) -> Result<ReplyXAttr> {
        let n = self.node(inode)?;
        let mut names = Vec::new();
        for k in n.xattrs.keys() {
            names.extend_from_slice(k.as_bytes());
            names.push(0);
        }
        Self::xattr_reply(names, size)
    }

    async fn removexattr(&self, _req: Request, _inode: Inode, _name: &OsStr) -> Result<()> {
        erofs()
    }

    async fn flush(&self, _req: Request, _inode: Inode, _fh: u64, _lock_owner: u64) -> Result<()> {
        Ok(())
    }

    async fn opendir(&self, _req: Request, inode: Inode, _flags: u32) -> Result<ReplyOpen> {
        self.dir(inode)?;
        Ok(ReplyOpen {
            fh: 0,
            flags: FOPEN_KEEP_CACHE | FOPEN_CACHE_DIR,
        })
    }

    async fn readdir<'a>(
        &'a self,
        _req: Request,
        parent: Inode,
        _fh: u64,
        offset: i64,
    ) -> Result<ReplyDirectory<impl Stream<Item = Result<DirectoryEntry>> + Send + 'a>> {
        let entries = self.listing(parent, offset.max(0) as u64)?.into_iter().map(
            |(inode, kind, name, offset)| {
                Ok(DirectoryEntry {
                    inode,
                    kind,
                    name: name.into(),
                    offset,
                })
            },
        );
        Ok(ReplyDirectory {
            entries: stream::iter(entries.collect::<Vec<_>>()),
        })
    }

    async fn releasedir(&self, _req: Request, _inode: Inode, _fh: u64, _flags: u32) -> Result<()> {
        Ok(())
    }

    async fn fsyncdir(
        &self,
        _req: Request,
        _inode: Inode,
        _fh: u64,
        _datasync: bool,
    ) -> Result<()> {
        Ok(())
    }

    async fn access(&self, _req: Request, inode: Inode, mask: u32) -> Result<()> {
        self.node(inode)?;
        if mask as i32 & libc::W_OK != 0 {
            return erofs();
        }
        Ok(())
    }

    async fn create(
        &self,
        _req: Request,
        _parent: Inode,
        _name: &OsStr,
        _mode: u32,
        _flags: u32,
    ) -> Result<ReplyCreated> {
        erofs()
    }

    async fn fallocate(
        &self,
        _req: Request,
        _inode: Inode,
        _fh: u64,
        _offset: u64,
        _length: u64,
        _mode: u32,
    ) -> Result<()> {
        erofs()
    }

    async fn readdirplus<'a>(
        &'a self,
        _req: Request,
        parent: Inode,
        _fh: u64,
        offset: u64,
        _lock_owner: u64,
    ) -> Result<ReplyDirectoryPlus<impl Stream<Item = Result<DirectoryEntryPlus>> + Send + 'a>>
    {
        let mut entries = Vec::new();
        for (inode, kind, name, next) in self.listing(parent, offset)? {
            let attr = self.attr(inode, self.node(inode)?);
            entries.push(Ok(DirectoryEntryPlus {
                inode,
                generation: 0,
                kind,
                name: name.into(),
                offset: next,
                attr,
                entry_ttl: self.ttl,
                attr_ttl: self.ttl,
            }));
        }
        Ok(ReplyDirectoryPlus {
            entries: stream::iter(entries),
        })
    }

    async fn rename2(
        &self,
        _req: Request,
        _parent: Inode,
        _name: &OsStr,
        _new_parent: Inode,
        _new_name: &OsStr,
        _flags: u32,
    ) -> Result<()> {
        erofs()
    }

    #[allow(clippy::too_many_arguments)]
    async fn copy_file_range(
        &self,
        _req: Request,
        _inode: Inode,
        _fh_in: u64,
        _off_in: u64,
        _inode_out: Inode,
        _fh_out: u64,
        _off_out: u64,
        _length: u64,
        _flags: u64,
    ) -> Result<ReplyCopyFileRange> {
        erofs()
    }
}
