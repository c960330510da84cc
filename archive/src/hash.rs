//! A reader that hashes (sha256) and counts what passes through it, with a byte limit.

use std::io::{self, Read};

use sha2::{Digest as _, Sha256};

use crate::error::StreamFault;

/// A stream's digest (`sha256:<hex>`) and length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    pub digest: String,
    pub size: u64,
}

/// Hashes and counts the bytes read from `inner`; reading past `limit` bytes fails.
pub struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
    limit: u64,
    what: &'static str,
}

impl<R: Read> Hashing<R> {
    pub fn new(inner: R, limit: u64, what: &'static str) -> Self {
        Hashing {
            inner,
            hasher: Sha256::new(),
            read: 0,
            limit,
            what,
        }
    }

    /// Reads the rest of the stream (tar padding, trailing frames) into the hash.
    pub fn drain(&mut self) -> io::Result<()> {
        io::copy(self, &mut io::sink()).map(drop)
    }

    pub fn finish(self) -> Stream {
        Stream {
            digest: format!("sha256:{}", hex::encode(self.hasher.finalize())),
            size: self.read,
        }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        if self.read > self.limit {
            let msg = format!("{} exceeds {} bytes", self.what, self.limit);
            return Err(io::Error::other(StreamFault::Limit(msg)));
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_counts_and_limits() {
        let mut h = Hashing::new(&b"abc"[..], 10, "stream");
        h.drain().unwrap();
        let s = h.finish();
        assert_eq!(s.size, 3);
        assert_eq!(
            s.digest,
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let mut h = Hashing::new(&[0u8; 100][..], 10, "layer");
        let err = h.drain().unwrap_err();
        assert!(err.to_string().contains("layer exceeds 10 bytes"), "{err}");
    }
}
