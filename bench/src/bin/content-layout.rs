//! `content-layout`: measures the two blob layouts issue 2 chooses between, in one process,
//! with interleaved rounds and equal durability (no ingest is acknowledged before its bytes and
//! its record are synced):
//!
//! - `files`: the real `strata_content::ContentStore` — blob files beside a RocksDB that holds
//!   the metadata (fsync data, rename, fsync dir, synced WAL batch);
//! - `blobdb-<N>k`: blobs as N KiB chunks in a column family with integrated BlobDB (values go
//!   through the WAL, then to blob files at flush); every chunk but the last is an unsynced
//!   put, the commit is one synced batch (last chunk + `digest → (id, size)`): a WAL sync
//!   persists every earlier WAL record too, so acknowledged blobs survive power loss.
//!
//! Chunks are keyed by an ingest id, not the digest: the digest is known only after the last
//! byte, and RocksDB cannot rename keys (rewriting them would double the writes).
//!
//! A crash check re-executes this binary as a child that ingests in a loop and prints each
//! digest once commit returned; the parent SIGKILLs it at a random time, reopens the store and
//! re-hashes every reported blob. Results and the decision: content/README.md.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result, bail};
use clap::Parser;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use rocksdb::{ColumnFamilyDescriptor, DB, DBCompressionType, IteratorMode, Options, WriteBatch};
use sha2::{Digest as _, Sha256};
use strata_content::{BlobReader, ContentStore};
use strata_core::digest::Digest;

const VIEW: &str = "bench";
/// Writers and sequential readers move 1 MiB at a time.
const PIECE: usize = 1 << 20;
/// The random-offset read size.
const RANGE: usize = 64 << 10;
const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const CHILD_ENV: &str = "CONTENT_LAYOUT_CRASH_CHILD";
const CF_CHUNKS: &str = "chunks";
const CF_META: &str = "meta";

/// Blob layout benchmark: files beside RocksDB vs chunks in RocksDB BlobDB.
#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// Small sizes and one round: checks that everything runs; numbers are not meaningful.
    #[arg(long)]
    quick: bool,
    /// Measured rounds (variants interleaved, order rotated each round).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Number of 4 KiB blobs per round.
    #[arg(long, default_value_t = 2000)]
    small: usize,
    /// Number of 1 MiB blobs per round.
    #[arg(long, default_value_t = 200)]
    medium: usize,
    /// Size of the large blob (one per round) in MiB.
    #[arg(long, default_value_t = 256)]
    large_mib: u64,
    /// Random 64 KiB reads per workload (warm); cold runs do a quarter.
    #[arg(long, default_value_t = 4000)]
    random_reads: usize,
    /// BlobDB chunk sizes to compare, in KiB.
    #[arg(long, value_delimiter = ',', default_value = "256,1024")]
    chunks_kib: Vec<usize>,
    /// BlobDB `min_blob_size`: smaller values stay inline in SST files.
    #[arg(long, default_value_t = 4096)]
    min_blob_size: u64,
    /// Kill/reopen trials per variant in the crash check.
    #[arg(long, default_value_t = 3)]
    crash_trials: usize,
    /// Directory for the temporary stores (a real disk, not tmpfs).
    #[arg(long, default_value = "/var/tmp")]
    dir: PathBuf,
}

impl Args {
    fn apply_quick(&mut self) {
        if self.quick {
            self.rounds = 1;
            self.small = 100;
            self.medium = 10;
            self.large_mib = 8;
            self.random_reads = 200;
            self.crash_trials = 1;
        }
    }
}

/// Which layout a store uses.
#[derive(Debug, Clone, Copy)]
enum Variant {
    Files,
    BlobDb { chunk: usize, min_blob: u64 },
}

impl Variant {
    fn name(self) -> String {
        match self {
            Variant::Files => "files".into(),
            Variant::BlobDb { chunk, .. } => format!("blobdb-{}k", chunk / 1024),
        }
    }

    /// The variant as the crash child's environment carries it.
    fn encode(self) -> String {
        match self {
            Variant::Files => "files".into(),
            Variant::BlobDb { chunk, min_blob } => format!("blobdb:{chunk}:{min_blob}"),
        }
    }

    fn decode(s: &str) -> Result<Variant> {
        if s == "files" {
            return Ok(Variant::Files);
        }
        let mut it = s.strip_prefix("blobdb:").context("bad variant")?.split(':');
        let chunk = it.next().context("no chunk")?.parse()?;
        let min_blob = it.next().context("no min blob")?.parse()?;
        Ok(Variant::BlobDb { chunk, min_blob })
    }

    fn open(self, root: &Path) -> Result<Store> {
        Ok(match self {
            Variant::Files => Store::Files(Files::open(root)?),
            Variant::BlobDb { chunk, min_blob } => {
                Store::Chunks(Chunks::open(&root.join("db"), chunk, min_blob)?)
            }
        })
    }
}

/// A committed blob.
#[derive(Debug, Clone)]
struct Blob {
    digest: Digest,
    size: u64,
}

/// Unique incompressible data: a random MiB whose first 16 bytes are restamped per piece.
struct Gen {
    buf: Vec<u8>,
    n: u64,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        let mut buf = vec![0u8; PIECE];
        StdRng::seed_from_u64(seed).fill_bytes(&mut buf);
        buf[8..16].copy_from_slice(&seed.to_le_bytes());
        Gen { buf, n: 0 }
    }

    fn piece(&mut self, len: usize) -> &[u8] {
        self.n += 1;
        self.buf[..8].copy_from_slice(&self.n.to_le_bytes());
        &self.buf[..len]
    }
}

/// Layout A: the real content store.
struct Files {
    store: ContentStore,
    refs: u64,
}

impl Files {
    fn open(root: &Path) -> Result<Files> {
        Ok(Files {
            store: ContentStore::open(root)?,
            refs: 0,
        })
    }

    fn ingest(&mut self, g: &mut Gen, size: u64) -> Result<Digest> {
        self.refs += 1;
        let r = format!("ingest-{}-{}", std::process::id(), self.refs);
        let mut w = self.store.writer(VIEW, &r, size, None)?;
        let mut left = size;
        while left > 0 {
            let piece = g.piece(left.min(PIECE as u64) as usize);
            w.write(piece)?;
            left -= piece.len() as u64;
        }
        Ok(w.commit(size, None, None)?)
    }
}

/// Layout B: chunks in a BlobDB column family, `digest → (id, size)` in another.
struct Chunks {
    db: DB,
    chunk: usize,
    next_id: u64,
}

impl Chunks {
    fn open(dir: &Path, chunk: usize, min_blob: u64) -> Result<Chunks> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        let mut blob = Options::default();
        blob.set_enable_blob_files(true);
        blob.set_min_blob_size(min_blob);
        blob.set_blob_file_size(256 * MIB);
        blob.set_blob_compression_type(DBCompressionType::None);
        blob.set_enable_blob_gc(true);
        let cfs = vec![
            ColumnFamilyDescriptor::new(CF_CHUNKS, blob),
            ColumnFamilyDescriptor::new(CF_META, Options::default()),
        ];
        let db = DB::open_cf_descriptors(&db_opts, dir, cfs)?;
        let next_id = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)?
            .as_nanos() as u64;
        Ok(Chunks { db, chunk, next_id })
    }

    fn cf(&self, name: &str) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(name).expect("column family opened")
    }

    fn ingest(&mut self, g: &mut Gen, size: u64) -> Result<Digest> {
        let id = self.next_id;
        self.next_id += 1;
        let (mut hash, mut buf, mut idx) = (Sha256::new(), Vec::with_capacity(self.chunk), 0u64);
        let mut left = size;
        while left > 0 {
            let mut p = g.piece(left.min(PIECE as u64) as usize);
            hash.update(p);
            left -= p.len() as u64;
            while !p.is_empty() {
                let take = (self.chunk - buf.len()).min(p.len());
                buf.extend_from_slice(&p[..take]);
                p = &p[take..];
                if buf.len() == self.chunk && (left > 0 || !p.is_empty()) {
                    self.db
                        .put_cf(self.cf(CF_CHUNKS), chunk_key(id, idx), &buf)?;
                    (idx, buf) = (idx + 1, Vec::with_capacity(self.chunk));
                }
            }
        }
        let digest = Digest::sha256_from_bytes(&hash.finalize().into());
        let mut batch = WriteBatch::default();
        if !buf.is_empty() {
            batch.put_cf(self.cf(CF_CHUNKS), chunk_key(id, idx), &buf);
        }
        let mut meta = id.to_be_bytes().to_vec();
        meta.extend_from_slice(&size.to_be_bytes());
        batch.put_cf(self.cf(CF_META), digest.to_string(), meta);
        let mut sync = rocksdb::WriteOptions::default();
        sync.set_sync(true);
        self.db.write_opt(batch, &sync)?;
        Ok(digest)
    }

    /// `(id, size)` of a committed blob.
    fn lookup(&self, d: &Digest) -> Result<(u64, u64)> {
        let v = self.db.get_pinned_cf(self.cf(CF_META), d.to_string())?;
        let v = v.with_context(|| format!("blob {d} not found"))?;
        let id = u64::from_be_bytes(v[..8].try_into()?);
        Ok((id, u64::from_be_bytes(v[8..16].try_into()?)))
    }

    fn read_at(&self, (id, size): (u64, u64), off: u64, buf: &mut [u8]) -> Result<usize> {
        let end = (off + buf.len() as u64).min(size);
        let mut pos = off;
        while pos < end {
            let (idx, within) = (pos / self.chunk as u64, (pos % self.chunk as u64) as usize);
            let v =
                self.db
                    .get_pinned_cf_opt(self.cf(CF_CHUNKS), chunk_key(id, idx), &no_verify())?;
            let v = v.with_context(|| format!("chunk {idx} of ingest {id} missing"))?;
            let n = (v.len() - within).min((end - pos) as usize);
            let at = (pos - off) as usize;
            buf[at..at + n].copy_from_slice(&v[within..within + n]);
            pos += n as u64;
        }
        Ok((end.saturating_sub(off)) as usize)
    }

    /// Flushes memtables so blob files and SSTs hold everything.
    fn flush(&self) -> Result<()> {
        self.db.flush_cf(self.cf(CF_CHUNKS))?;
        self.db.flush_cf(self.cf(CF_META))?;
        Ok(())
    }

    /// Ingest ids with chunks but no committed record (space an interrupted ingest leaks).
    fn orphans(&self) -> Result<usize> {
        let mut committed = HashSet::new();
        for item in self.db.iterator_cf(self.cf(CF_META), IteratorMode::Start) {
            committed.insert(u64::from_be_bytes(item?.1[..8].try_into()?));
        }
        let mut orphans = HashSet::new();
        for item in self.db.iterator_cf(self.cf(CF_CHUNKS), IteratorMode::Start) {
            let id = u64::from_be_bytes(item?.0[..8].try_into()?);
            if !committed.contains(&id) {
                orphans.insert(id);
            }
        }
        Ok(orphans.len())
    }
}

/// Reads without RocksDB's per-record CRC check: the files layout does not verify on read either
/// (digests are checked by whoever consumes the bytes), so both read the same way.
fn no_verify() -> rocksdb::ReadOptions {
    let mut o = rocksdb::ReadOptions::default();
    o.set_verify_checksums(false);
    o
}

fn chunk_key(id: u64, idx: u64) -> [u8; 17] {
    let mut k = [0u8; 17];
    k[..8].copy_from_slice(&id.to_be_bytes());
    k[9..].copy_from_slice(&idx.to_be_bytes());
    k
}

/// A store of either layout (enum dispatch).
enum Store {
    Files(Files),
    Chunks(Chunks),
}

/// An open blob for positional reads.
enum Handle {
    File(BlobReader),
    Chunks(u64, u64),
}

impl Store {
    fn ingest(&mut self, g: &mut Gen, size: u64) -> Result<Blob> {
        let digest = match self {
            Store::Files(f) => f.ingest(g, size)?,
            Store::Chunks(c) => c.ingest(g, size)?,
        };
        Ok(Blob { digest, size })
    }

    fn open_blob(&self, b: &Blob) -> Result<Handle> {
        Ok(match self {
            Store::Files(f) => Handle::File(f.store.reader(VIEW, &b.digest)?),
            Store::Chunks(c) => {
                let (id, size) = c.lookup(&b.digest)?;
                Handle::Chunks(id, size)
            }
        })
    }

    fn size(&self, h: &Handle) -> u64 {
        match h {
            Handle::File(r) => r.size(),
            Handle::Chunks(_, size) => *size,
        }
    }

    fn read_at(&self, h: &Handle, off: u64, buf: &mut [u8]) -> Result<usize> {
        match (self, h) {
            (Store::Files(_), Handle::File(r)) => Ok(r.read_at(off, buf)?),
            (Store::Chunks(c), Handle::Chunks(id, size)) => c.read_at((*id, *size), off, buf),
            _ => bail!("handle of another store"),
        }
    }

    /// Lets deferred work (memtable flushes) finish before space is measured.
    fn settle(&self) -> Result<()> {
        match self {
            Store::Files(_) => Ok(()),
            Store::Chunks(c) => c.flush(),
        }
    }

    /// Reads a whole blob (opening it, as a Read request does); returns its sha256 when asked.
    fn read_all(&self, b: &Blob, buf: &mut [u8], hash: bool) -> Result<Option<Digest>> {
        let h = self.open_blob(b)?;
        let size = self.size(&h);
        if size != b.size {
            bail!("blob {} has size {size}, expected {}", b.digest, b.size);
        }
        let mut hasher = hash.then(Sha256::new);
        let mut off = 0;
        while off < size {
            let n = self.read_at(&h, off, buf)?;
            if n == 0 {
                bail!("blob {} ends at {off} of {size}", b.digest);
            }
            if let Some(s) = hasher.as_mut() {
                s.update(&buf[..n]);
            }
            std::hint::black_box(&buf[..n]);
            off += n as u64;
        }
        Ok(hasher.map(|s| Digest::sha256_from_bytes(&s.finalize().into())))
    }
}

/// Samples of each metric of one variant, in first-seen order.
#[derive(Default)]
struct Samples {
    order: Vec<String>,
    values: BTreeMap<String, Vec<f64>>,
}

impl Samples {
    fn add(&mut self, metric: &str, v: f64) {
        if !self.values.contains_key(metric) {
            self.order.push(metric.to_string());
        }
        self.values.entry(metric.to_string()).or_default().push(v);
    }
}

/// Bytes this process caused to be written to storage (`/proc/self/io`, includes RocksDB's
/// background threads).
fn write_bytes() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Allocated bytes under `dir` (like `du`).
fn du(dir: &Path) -> u64 {
    walk(dir).iter().map(|(_, m)| m.blocks() * 512).sum()
}

fn walk(dir: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(m) = e.metadata() else { continue };
        if m.is_dir() {
            out.extend(walk(&e.path()));
        } else if m.is_file() {
            out.push((e.path(), m));
        }
    }
    out
}

/// Drops this store's (clean, synced) pages from the page cache, so the next reads hit the
/// disk. Only our own files are touched: other users of the machine keep their cache.
fn evict(dir: &Path) {
    use std::os::fd::AsRawFd;
    for (path, _) in walk(dir) {
        if let Ok(f) = std::fs::File::open(&path) {
            // SAFETY: the descriptor is open for the whole call (`f` lives until the end of the
            // iteration) and posix_fadvise only reads its arguments.
            unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
        }
    }
}

fn ingest_set(s: &mut Store, g: &mut Gen, count: usize, size: u64) -> Result<(Vec<Blob>, f64)> {
    let t = Instant::now();
    let blobs = (0..count)
        .map(|_| s.ingest(g, size))
        .collect::<Result<Vec<_>>>()?;
    Ok((blobs, t.elapsed().as_secs_f64()))
}

fn seq_read(s: &Store, blobs: &[Blob], buf: &mut [u8]) -> Result<f64> {
    let t = Instant::now();
    for b in blobs {
        s.read_all(b, buf, false)?;
    }
    let bytes: u64 = blobs.iter().map(|b| b.size).sum();
    Ok(bytes as f64 / MIB as f64 / t.elapsed().as_secs_f64())
}

/// Random 64 KiB reads at unaligned offsets in random blobs of `blobs` (opened beforehand,
/// as a lazy snapshotter keeps them open); returns reads per second.
fn random_reads(s: &Store, blobs: &[Blob], n: usize, rng: &mut StdRng) -> Result<f64> {
    let handles = blobs
        .iter()
        .map(|b| s.open_blob(b))
        .collect::<Result<Vec<_>>>()?;
    let mut buf = vec![0u8; RANGE];
    let t = Instant::now();
    for _ in 0..n {
        let h = &handles[rng.gen_range(0..handles.len())];
        let off = rng.gen_range(0..=s.size(h) - RANGE as u64);
        if s.read_at(h, off, &mut buf)? != RANGE {
            bail!("short random read at {off}");
        }
        std::hint::black_box(&buf);
    }
    Ok(n as f64 / t.elapsed().as_secs_f64())
}

/// The blobs of one round, by size class.
struct Sets {
    small: Vec<Blob>,
    medium: Vec<Blob>,
    large: Vec<Blob>,
}

fn run_ingests(s: &mut Store, a: &Args, root: &Path, out: &mut Samples) -> Result<Sets> {
    let mut g = Gen::new(0x5eed);
    let w0 = write_bytes();
    let (small, t) = ingest_set(s, &mut g, a.small, 4 * KIB)?;
    out.add("ingest 4 KiB: blobs/s", a.small as f64 / t);
    out.add("ingest 4 KiB: MiB/s", a.small as f64 * 4.0 / 1024.0 / t);
    let (medium, t) = ingest_set(s, &mut g, a.medium, MIB)?;
    out.add("ingest 1 MiB: blobs/s", a.medium as f64 / t);
    out.add("ingest 1 MiB: MiB/s", a.medium as f64 / t);
    let (large, t) = ingest_set(s, &mut g, 1, a.large_mib * MIB)?;
    out.add(
        &format!("ingest {} MiB: MiB/s", a.large_mib),
        a.large_mib as f64 / t,
    );
    s.settle()?;
    let logical = (a.small as u64 * 4 * KIB + a.medium as u64 * MIB + a.large_mib * MIB) as f64;
    out.add(
        "disk writes / logical bytes",
        (write_bytes() - w0) as f64 / logical,
    );
    let space = du(root) as f64;
    out.add("space used / logical bytes", space / logical);
    out.add(
        &format!("space used MiB (logical {:.0})", logical / MIB as f64),
        space / MIB as f64,
    );
    Ok(Sets {
        small,
        medium,
        large,
    })
}

fn run_reads(s: &Store, sets: &Sets, a: &Args, root: &Path, out: &mut Samples) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut buf = vec![0u8; PIECE];
    let large = format!("{} MiB", a.large_mib);
    for (cold, tag) in [(false, "warm"), (true, "cold")] {
        if cold {
            evict(root);
        }
        out.add(
            &format!("read 4 KiB ×{} {tag}: MiB/s", a.small),
            seq_read(s, &sets.small, &mut buf)?,
        );
        out.add(
            &format!("read 1 MiB ×{} {tag}: MiB/s", a.medium),
            seq_read(s, &sets.medium, &mut buf)?,
        );
        out.add(
            &format!("read {large} {tag}: MiB/s"),
            seq_read(s, &sets.large, &mut buf)?,
        );
        let n = if cold {
            a.random_reads / 4
        } else {
            a.random_reads
        };
        if cold {
            evict(root);
        }
        let r = random_reads(s, &sets.medium, n, &mut rng)?;
        out.add(&format!("64 KiB random in 1 MiB blobs {tag}: reads/s"), r);
        let r = random_reads(s, &sets.large, n, &mut rng)?;
        out.add(&format!("64 KiB random in {large} {tag}: reads/s"), r);
    }
    Ok(())
}

fn run_round(v: Variant, a: &Args, root: &Path, out: &mut Samples) -> Result<()> {
    let mut s = v.open(root)?;
    let sets = run_ingests(&mut s, a, root, out)?;
    run_reads(&s, &sets, a, root, out)?;
    for b in sets.small.iter().take(3).chain(&sets.large) {
        let got = s.read_all(b, &mut vec![0u8; PIECE], true)?;
        if got.as_ref() != Some(&b.digest) {
            bail!("{}: blob {} reads back as {got:?}", v.name(), b.digest);
        }
    }
    Ok(())
}

/// The crash child: ingests blobs of mixed sizes until killed, printing each committed digest.
fn crash_child(spec: &str) -> Result<()> {
    let (variant, root) = spec.split_once('|').context("bad child spec")?;
    let mut s = Variant::decode(variant)?.open(Path::new(root))?;
    let mut g = Gen::new(u64::from(std::process::id()) << 32 | rand::random::<u32>() as u64);
    let sizes = [4 * KIB, 4 * KIB, 4 * KIB, MIB, 16 * MIB];
    let mut out = std::io::stdout().lock();
    for i in 0.. {
        let b = s.ingest(&mut g, sizes[i % sizes.len()])?;
        writeln!(out, "{} {}", b.digest, b.size)?;
        out.flush()?;
    }
    Ok(())
}

/// Totals of the crash check of one variant.
#[derive(Debug, Default)]
struct CrashTotals {
    reported: usize,
    intact: usize,
    damaged: Vec<String>,
    leftovers: usize,
}

/// Spawns the child, kills it at a random time and returns the blobs it reported.
fn kill_child(v: Variant, root: &Path, rng: &mut StdRng) -> Result<Vec<Blob>> {
    let mut child = Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, format!("{}|{}", v.encode(), root.display()))
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().context("child stdout")?;
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(|l| l.ok())
            .collect::<Vec<_>>()
    });
    std::thread::sleep(Duration::from_millis(rng.gen_range(400..2000)));
    child.kill()?; // SIGKILL
    child.wait()?;
    let lines = reader
        .join()
        .map_err(|_| anyhow::anyhow!("reader panicked"))?;
    lines
        .iter()
        .map(|l| {
            let (d, size) = l.split_once(' ').context("bad child line")?;
            Ok(Blob {
                digest: Digest::parse(d)?,
                size: size.parse()?,
            })
        })
        .collect()
}

fn crash_check(v: Variant, trials: usize, root: &Path, rng: &mut StdRng) -> Result<CrashTotals> {
    let mut t = CrashTotals::default();
    for _ in 0..trials {
        let blobs = kill_child(v, root, rng)?;
        let s = v.open(root)?;
        t.reported += blobs.len();
        let mut buf = vec![0u8; PIECE];
        for b in &blobs {
            match s.read_all(b, &mut buf, true) {
                Ok(Some(d)) if d == b.digest => t.intact += 1,
                other => t.damaged.push(format!("{}: {other:?}", b.digest)),
            }
        }
        t.leftovers = match &s {
            Store::Files(f) => f.store.list_statuses(VIEW, &[])?.len(),
            Store::Chunks(c) => c.orphans()?,
        };
    }
    Ok(t)
}

fn fmt_summary(v: &[f64]) -> String {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let med = if s.len() % 2 == 1 {
        s[s.len() / 2]
    } else {
        (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0
    };
    let f = |x: f64| {
        if x >= 100.0 {
            format!("{x:.0}")
        } else {
            format!("{x:.2}")
        }
    };
    if s.len() == 1 {
        return f(med);
    }
    format!("{} ({}–{})", f(med), f(s[0]), f(s[s.len() - 1]))
}

fn print_table(variants: &[Variant], samples: &[Samples]) {
    let names: Vec<String> = variants.iter().map(|v| v.name()).collect();
    println!("| metric (median (min–max)) | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for metric in &samples[0].order {
        let cells: Vec<String> = samples
            .iter()
            .map(|s| s.values.get(metric).map_or("-".into(), |v| fmt_summary(v)))
            .collect();
        println!("| {metric} | {} |", cells.join(" | "));
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpu
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "cpu: {model}, {} cpus; loadavg at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.trim()
    )
}

fn main() -> Result<()> {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        return crash_child(&spec);
    }
    let mut args = Args::parse();
    args.apply_quick();
    let mut variants = vec![Variant::Files];
    for k in &args.chunks_kib {
        variants.push(Variant::BlobDb {
            chunk: k * 1024,
            min_blob: args.min_blob_size,
        });
    }
    let base = tempfile::Builder::new()
        .prefix("content-layout-")
        .tempdir_in(&args.dir)?;
    println!("{}", machine());
    let mut samples: Vec<Samples> = variants.iter().map(|_| Samples::default()).collect();
    let started = Instant::now();
    for round in 0..args.rounds {
        for k in 0..variants.len() {
            let i = (k + round) % variants.len();
            let root = base.path().join(format!("r{round}-{}", variants[i].name()));
            eprintln!(
                "round {round}: {} ({:.0?})",
                variants[i].name(),
                started.elapsed()
            );
            run_round(variants[i], &args, &root, &mut samples[i])?;
            std::fs::remove_dir_all(&root)?;
        }
    }
    print_table(&variants, &samples);
    let mut rng = StdRng::seed_from_u64(42);
    for v in &variants {
        let root = base.path().join(format!("crash-{}", v.name()));
        let t = crash_check(*v, args.crash_trials, &root, &mut rng)?;
        println!(
            "crash {}: {} trials, {} blobs reported committed, {} intact, {} damaged {:?}, \
             {} interrupted ingests left (resumable ingests / orphan chunk sets)",
            v.name(),
            args.crash_trials,
            t.reported,
            t.intact,
            t.damaged.len(),
            t.damaged,
            t.leftovers
        );
    }
    println!("total {:.0?}", started.elapsed());
    Ok(())
}
