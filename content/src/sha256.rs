//! A resumable SHA-256: the 8-word chaining state plus the length and a partial block.
//!
//! The state at a block boundary ([`Checkpoint`]) is small enough to store in an ingest record,
//! so a resumed ingest only hashes the bytes after the checkpoint. Compression is
//! `sha2::compress256` (SHA-NI when the CPU has it).

use serde::{Deserialize, Serialize};
use sha2::digest::generic_array::GenericArray;

const BLOCK: usize = 64;
const INITIAL: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// The hash state after the first `offset` bytes; `offset` is a multiple of 64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Bytes hashed (a multiple of the 64-byte block size).
    pub offset: u64,
    /// The chaining state after those bytes.
    pub state: [u32; 8],
}

/// An incremental SHA-256 whose state can be saved and restored.
#[derive(Debug, Clone)]
pub struct Sha256State {
    state: [u32; 8],
    len: u64,
    buf: [u8; BLOCK],
    buf_len: usize,
}

impl Default for Sha256State {
    fn default() -> Self {
        Self::new()
    }
}

impl Sha256State {
    /// The state before any byte.
    pub fn new() -> Self {
        Sha256State {
            state: INITIAL,
            len: 0,
            buf: [0; BLOCK],
            buf_len: 0,
        }
    }

    /// Restores a saved state; `None` if the checkpoint is not at a block boundary.
    pub fn from_checkpoint(cp: &Checkpoint) -> Option<Self> {
        if !cp.offset.is_multiple_of(BLOCK as u64) {
            return None;
        }
        Some(Sha256State {
            state: cp.state,
            len: cp.offset,
            buf: [0; BLOCK],
            buf_len: 0,
        })
    }

    /// The state at the last block boundary reached.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            offset: self.len - self.buf_len as u64,
            state: self.state,
        }
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether no byte was hashed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hashes `data`.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len += data.len() as u64;
        if self.buf_len > 0 {
            let take = (BLOCK - self.buf_len).min(data.len());
            self.buf[self.buf_len..self.buf_len + take].copy_from_slice(&data[..take]);
            self.buf_len += take;
            data = &data[take..];
            if self.buf_len < BLOCK {
                return;
            }
            let block = self.buf;
            compress(&mut self.state, &block);
            self.buf_len = 0;
        }
        let whole = data.len() - data.len() % BLOCK;
        compress(&mut self.state, &data[..whole]);
        let rest = &data[whole..];
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buf_len = rest.len();
    }

    /// The hash of the bytes so far (the state is left untouched).
    pub fn finalize(&self) -> [u8; 32] {
        let mut state = self.state;
        let mut tail = [0u8; 2 * BLOCK];
        tail[..self.buf_len].copy_from_slice(&self.buf[..self.buf_len]);
        tail[self.buf_len] = 0x80;
        let tail_len = if self.buf_len + 1 + 8 <= BLOCK {
            BLOCK
        } else {
            2 * BLOCK
        };
        let bits = self.len.wrapping_mul(8);
        tail[tail_len - 8..tail_len].copy_from_slice(&bits.to_be_bytes());
        compress(&mut state, &tail[..tail_len]);
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
            chunk.copy_from_slice(&word.to_be_bytes());
        }
        out
    }
}

/// Compresses whole blocks of `data` (its length is a multiple of 64) into `state`.
fn compress(state: &mut [u32; 8], data: &[u8]) {
    debug_assert_eq!(data.len() % BLOCK, 0);
    for block in data.chunks_exact(BLOCK) {
        sha2::compress256(state, std::slice::from_ref(GenericArray::from_slice(block)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest as _;

    fn reference(data: &[u8]) -> [u8; 32] {
        sha2::Sha256::digest(data).into()
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 31 + i / 7) as u8).collect()
    }

    #[test]
    fn empty_is_e3b0() {
        assert_eq!(
            hex::encode(Sha256State::new().finalize()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn matches_sha2_for_every_length_up_to_300() {
        for n in 0..300 {
            let data = pattern(n);
            let mut h = Sha256State::new();
            h.update(&data);
            assert_eq!(h.finalize(), reference(&data), "length {n}");
        }
    }

    #[test]
    fn matches_sha2_with_uneven_chunks() {
        let data = pattern(10_000);
        for chunk in [1, 3, 55, 56, 63, 64, 65, 127, 1000, 4096] {
            let mut h = Sha256State::new();
            for c in data.chunks(chunk) {
                h.update(c);
                assert_eq!(h.finalize(), reference(&data[..h.len() as usize]));
            }
            assert_eq!(h.finalize(), reference(&data), "chunk {chunk}");
        }
    }

    #[test]
    fn checkpoint_round_trip_resumes() {
        let data = pattern(5_000);
        for cut in [0, 1, 63, 64, 65, 200, 4_999, 5_000] {
            let mut h = Sha256State::new();
            h.update(&data[..cut]);
            let cp = h.checkpoint();
            assert_eq!(cp.offset % 64, 0);
            assert!(cp.offset <= cut as u64 && cut as u64 - cp.offset < 64);
            let mut r = Sha256State::from_checkpoint(&cp).unwrap();
            r.update(&data[cp.offset as usize..]);
            assert_eq!(r.finalize(), reference(&data), "cut {cut}");
            let json = serde_json::to_string(&cp).unwrap();
            assert_eq!(serde_json::from_str::<Checkpoint>(&json).unwrap(), cp);
        }
    }

    #[test]
    fn unaligned_checkpoint_is_rejected() {
        let cp = Checkpoint {
            offset: 65,
            state: INITIAL,
        };
        assert!(Sha256State::from_checkpoint(&cp).is_none());
    }
}
