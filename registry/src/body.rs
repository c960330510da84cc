//! Blobs read by blocking threads: a whole blob as `io::Read`, and ranges of a blob.

use std::io::{self, Read};

use bytes::Bytes;
use tokio::runtime::Handle;

use crate::client::Registry;
use crate::reference::ImageRef;

/// A whole blob read by a blocking thread (the bytes are received on the runtime).
pub struct BlobBody {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    buf: Bytes,
}

impl Registry {
    /// Blob `digest` of `image` as a stream for a blocking reader; call from a thread outside
    /// the runtime `rt` (e.g. one of its blocking threads), never from one of its tasks.
    pub fn open_blob(&self, rt: &Handle, image: &ImageRef, digest: &str) -> io::Result<BlobBody> {
        let mut stream = rt.block_on(self.blob_stream(image, digest))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(64);
        rt.spawn(async move {
            loop {
                let item = stream.next().await.transpose();
                let Some(item) = item else { return };
                let failed = item.is_err();
                if tx.send(item).await.is_err() || failed {
                    return;
                }
            }
        });
        Ok(BlobBody {
            rx,
            buf: Bytes::new(),
        })
    }
}

impl Read for BlobBody {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.buf = chunk?,
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}

/// A blob in a registry read at offsets by blocking threads (the lazy reader's threads).
#[derive(Clone)]
pub struct RemoteBlob {
    registry: Registry,
    rt: Handle,
    image: ImageRef,
    digest: String,
    size: u64,
}

impl RemoteBlob {
    /// Opens blob `digest` of `image`, learning its size; call from a thread outside the
    /// runtime `rt`.
    pub fn open(registry: Registry, rt: Handle, image: ImageRef, digest: &str) -> io::Result<Self> {
        let size = rt.block_on(registry.blob_size(&image, digest))?;
        Ok(Self::with_size(registry, rt, image, digest, size))
    }

    /// A blob whose size is known already (no request made).
    pub fn with_size(
        registry: Registry,
        rt: Handle,
        image: ImageRef,
        digest: &str,
        size: u64,
    ) -> Self {
        RemoteBlob {
            registry,
            rt,
            image,
            digest: digest.to_string(),
            size,
        }
    }

    /// The blob's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The blob's digest.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Reads into `buf` from `offset`: `buf.len()` bytes, fewer only at the blob's end, 0 at
    /// or past it. Blocks the calling thread (outside the runtime) for one range request.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(self.size - offset);
        let bytes =
            self.rt.block_on(
                self.registry
                    .read_range(&self.image, &self.digest, offset, len),
            )?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }
}
