//! Content workloads: 1 GiB ingest and read, many 4 KiB blobs, random 64 KiB reads.

use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use rand::{Rng, RngCore, SeedableRng};
use sha2::{Digest as _, Sha256};
use strata_proxy::api::content::content_client::ContentClient;
use strata_proxy::api::content::{
    DeleteContentRequest, ReadContentRequest, WriteAction, WriteContentRequest,
};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;

use crate::client::Target;

/// Write message size, as containerd's `content.Copy` buffers (1 MiB).
pub const CHUNK: usize = 1 << 20;
const MIB: f64 = (1 << 20) as f64;

/// `sha256:<hex>` of `data`.
pub fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rand::rngs::StdRng::seed_from_u64(seed).fill_bytes(&mut v);
    v
}

/// The request stream of one Write call.
pub type WriteStream = ReceiverStream<WriteContentRequest>;

fn gc_root() -> HashMap<String, String> {
    [("containerd.io/gc.root".to_string(), "bench".to_string())].into()
}

/// Writes one blob the way containerd's client does: STAT, WRITE per chunk (each answered
/// before the next is sent), COMMIT with size and expected digest (labelled `gc.root`). Each
/// WRITE's data is a slice of `data`, not a copy of it.
pub async fn ingest(t: &Target, reference: &str, data: &Bytes, digest: &str) -> anyhow::Result<()> {
    ingest_as(
        t.name,
        t.content.clone(),
        |s| t.req(s),
        reference,
        data,
        digest,
        gc_root(),
    )
    .await
}

/// [`ingest`] with any client, request headers (`wrap`) and commit labels.
pub async fn ingest_as(
    who: &str,
    mut client: ContentClient<Channel>,
    wrap: impl FnOnce(WriteStream) -> tonic::Request<WriteStream>,
    reference: &str,
    data: &Bytes,
    digest: &str,
    labels: HashMap<String, String>,
) -> anyhow::Result<()> {
    let (tx, rx) = mpsc::channel(2);
    tx.send(WriteContentRequest {
        action: WriteAction::Stat as i32,
        r#ref: reference.to_string(),
        total: data.len() as i64,
        expected: digest.to_string(),
        ..Default::default()
    })
    .await?;
    let mut replies = client
        .write(wrap(ReceiverStream::new(rx)))
        .await
        .with_context(|| format!("{who}: write {reference}"))?
        .into_inner();
    replies.message().await?;
    for offset in (0..data.len()).step_by(CHUNK) {
        tx.send(WriteContentRequest {
            action: WriteAction::Write as i32,
            offset: offset as i64,
            data: data.slice(offset..data.len().min(offset + CHUNK)),
            ..Default::default()
        })
        .await?;
        replies.message().await?;
    }
    tx.send(WriteContentRequest {
        action: WriteAction::Commit as i32,
        offset: data.len() as i64,
        total: data.len() as i64,
        expected: digest.to_string(),
        labels,
        ..Default::default()
    })
    .await?;
    let reply = replies.message().await?.context("no commit reply")?;
    // Close our side and read to the end, as containerd's client does.
    drop(tx);
    while replies.message().await?.is_some() {}
    if reply.digest != digest {
        bail!("{who}: committed {} but expected {digest}", reply.digest);
    }
    Ok(())
}

/// Deletes a blob (untimed clean-up between rounds).
pub async fn delete(t: &Target, digest: &str) -> anyhow::Result<()> {
    t.content
        .clone()
        .delete(t.req(DeleteContentRequest {
            digest: digest.to_string(),
        }))
        .await?;
    Ok(())
}

/// Reads `[offset, offset+size)` (size 0 = to the end); returns the bytes received.
pub async fn read(t: &Target, digest: &str, offset: i64, size: i64) -> anyhow::Result<u64> {
    let mut stream = t
        .content
        .clone()
        .read(t.req(ReadContentRequest {
            digest: digest.to_string(),
            offset,
            size,
        }))
        .await?
        .into_inner();
    let mut n = 0u64;
    while let Some(m) = stream.message().await? {
        n += m.data.len() as u64;
    }
    Ok(n)
}

/// MiB/s of one ingest of `data` (made unique per round so no side can deduplicate).
pub async fn ingest_round(t: &Target, data: &mut [u8], round: usize) -> anyhow::Result<f64> {
    data[..16].copy_from_slice(&[(round as u8) ^ t.name.len() as u8; 16]);
    data[16..24].copy_from_slice(&(round as u64).to_le_bytes());
    let digest = digest_of(data);
    let data = Bytes::copy_from_slice(data);
    let start = Instant::now();
    ingest(t, &format!("bench-ingest-{round}"), &data, &digest).await?;
    let secs = start.elapsed().as_secs_f64();
    delete(t, &digest).await?;
    Ok(data.len() as f64 / MIB / secs)
}

/// MiB/s of one full read.
pub async fn read_round(t: &Target, digest: &str, size: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    let n = read(t, digest, 0, 0).await?;
    let secs = start.elapsed().as_secs_f64();
    if n as usize != size {
        bail!("{}: read {n} bytes of {size}", t.name);
    }
    Ok(n as f64 / MIB / secs)
}

/// MiB/s of a full read in `chunk`-byte Read calls one after another, each its own RPC (how
/// containerd's proxy content reader serves a ReaderAt: one Read per ReadAt).
pub async fn read_at_round(
    t: &Target,
    digest: &str,
    size: usize,
    chunk: usize,
) -> anyhow::Result<f64> {
    let start = Instant::now();
    let mut off = 0usize;
    while off < size {
        let want = chunk.min(size - off);
        let n = read(t, digest, off as i64, want as i64).await?;
        if n as usize != want {
            bail!("{}: read {n} bytes at {off}, asked {want}", t.name);
        }
        off += want;
    }
    Ok(size as f64 / MIB / start.elapsed().as_secs_f64())
}

/// Blobs/s for `count` small blobs written one stream each.
pub async fn small_blobs_round(
    t: &Target,
    count: usize,
    size: usize,
    round: usize,
) -> anyhow::Result<f64> {
    let blobs: Vec<(Bytes, String)> = (0..count)
        .map(|i| {
            let d = random_bytes(size, (round * 1_000_003 + i) as u64 ^ t.name.len() as u64);
            let g = digest_of(&d);
            (d.into(), g)
        })
        .collect();
    let start = Instant::now();
    for (i, (d, g)) in blobs.iter().enumerate() {
        ingest(t, &format!("bench-small-{round}-{i}"), d, g).await?;
    }
    let secs = start.elapsed().as_secs_f64();
    for (_, g) in &blobs {
        delete(t, g).await?;
    }
    Ok(count as f64 / secs)
}

/// Seconds taken by `count` reads of `len` bytes at random offsets inside a blob of `size`
/// bytes, one Read call each, one after another.
async fn timed_range_reads(
    t: &Target,
    digest: &str,
    size: usize,
    count: usize,
    len: usize,
) -> anyhow::Result<f64> {
    let offsets: Vec<i64> = {
        let mut rng = rand::thread_rng();
        (0..count)
            .map(|_| rng.gen_range(0..(size - len)) as i64)
            .collect()
    };
    let start = Instant::now();
    for off in offsets {
        let n = read(t, digest, off, len as i64).await?;
        if n as usize != len {
            bail!("{}: short range read {n}", t.name);
        }
    }
    Ok(start.elapsed().as_secs_f64())
}

/// Reads/s of `count` random 64 KiB reads inside a blob of `size` bytes.
pub async fn random_reads_round(
    t: &Target,
    digest: &str,
    size: usize,
    count: usize,
) -> anyhow::Result<f64> {
    let secs = timed_range_reads(t, digest, size, count, 64 << 10).await?;
    Ok(count as f64 / secs)
}

/// Reads/s of `count` 32 KiB Read calls one after another at random offsets inside a blob of
/// `size` bytes, and the CPU time of process `pid` per call in microseconds (NaN without one).
pub async fn small_reads_round(
    t: &Target,
    digest: &str,
    size: usize,
    count: usize,
    pid: Option<u32>,
) -> anyhow::Result<(f64, f64)> {
    let pids: Vec<u32> = pid.into_iter().collect();
    let before = crate::workloads::unpack::Work::of(&pids);
    let secs = timed_range_reads(t, digest, size, count, 32 << 10).await?;
    let cpu = crate::workloads::unpack::Work::of(&pids).cpu_s - before.cpu_s;
    let cpu_us = if pids.is_empty() {
        f64::NAN
    } else {
        cpu / count as f64 * 1e6
    };
    Ok((count as f64 / secs, cpu_us))
}

/// Single-core sha256 speeds in MiB/s, the ceiling for a verified ingest, two ways: over one
/// buffer of the blob's size (up to 256 MiB: read from memory, as a big blob's bytes are) and
/// over one 1 MiB buffer hashed again and again (held in the CPU's cache: the hash alone).
#[derive(Debug, Clone, Copy)]
pub struct Sha256Speed {
    /// MiB of the buffer hashed once.
    pub mib: usize,
    /// MiB/s over that buffer.
    pub streamed: f64,
    /// MiB/s over 1 MiB of it, hashed 256 MiB's worth.
    pub cached: f64,
}

/// Times the two sha256 speeds of [`Sha256Speed`] over `len` bytes.
pub fn sha256_speed(len: usize) -> Sha256Speed {
    let data = random_bytes(len, 7);
    let start = Instant::now();
    let _ = Sha256::digest(&data);
    let streamed = len as f64 / MIB / start.elapsed().as_secs_f64();
    let chunk = &data[..len.min(1 << 20)];
    let rounds = (256 << 20) / chunk.len();
    let start = Instant::now();
    let mut h = Sha256::new();
    for _ in 0..rounds {
        h.update(chunk);
    }
    let _ = h.finalize();
    let cached = (rounds * chunk.len()) as f64 / MIB / start.elapsed().as_secs_f64();
    Sha256Speed {
        mib: len >> 20,
        streamed,
        cached,
    }
}

impl std::fmt::Display for Sha256Speed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:.0} MiB/s over a {} MiB buffer, {:.0} MiB/s over 1 MiB held in cache",
            self.streamed, self.mib, self.cached
        )
    }
}

impl Sha256Speed {
    /// A note: `rate` (MiB/s) as a share of both speeds.
    pub fn share(&self, who: &str, rate: f64) -> String {
        format!(
            "{who} = {:.0}% of single-core sha256 over a {} MiB buffer ({:.0} MiB/s), {:.0}% of \
             it over 1 MiB held in cache ({:.0} MiB/s)",
            rate / self.streamed * 100.0,
            self.mib,
            self.streamed,
            rate / self.cached * 100.0,
            self.cached
        )
    }
}
