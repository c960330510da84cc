//! kill -9 campaign: a mixed workload (blob ingests, Prepare, Commit, Remove on two backends)
//! runs against a real strata-proxy, which gets SIGKILL at a random point of every round. After
//! each restart every acknowledged blob and snapshot must be there, intact, and nothing that
//! was not acknowledged may be half-visible; the one operation in flight at the kill is
//! resolved (it happened whole, or not at all) and an interrupted ingest must resume with the
//! digest of the bytes it holds.
//!
//! Run: `CARGO_TARGET_DIR=/var/tmp/strata-target cargo test --workspace --test kill9_campaign
//! -- --ignored --nocapture` (`KILL9_ROUNDS`, default 50, and `KILL9_SEED` to replay a run).
//! Acknowledged operations are journaled in `journal.txt` in the campaign folder.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_proxy::api::content::content_client::ContentClient;
use strata_proxy::api::content::*;
use strata_proxy::api::snapshots::snapshots_client::SnapshotsClient;
use strata_proxy::api::snapshots::*;
use tonic::Code;
use tonic::transport::Channel;

const BACKENDS: [&str; 2] = ["strata-native", "strata-overlay"];
const CHUNK: usize = 256 << 10;

/// A snapshot as the model expects Stat to show it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snap {
    kind: Kind,
    parent: String,
}

/// An operation sent to the server.
#[derive(Debug, Clone)]
enum Op {
    Blob {
        r: String,
        seed: u64,
        len: usize,
    },
    Prepare {
        sn: String,
        key: String,
        parent: String,
    },
    Commit {
        sn: String,
        key: String,
        name: String,
        parent: String,
    },
    Remove {
        sn: String,
        key: String,
        snap: Snap,
    },
}

/// What the server acknowledged, and the one operation in flight.
#[derive(Debug, Default)]
struct Model {
    /// Acknowledged blobs: digest -> (seed, len) of their bytes.
    blobs: BTreeMap<String, (u64, usize)>,
    /// Live snapshots: (backend, key) -> expected Stat.
    snaps: BTreeMap<(String, String), Snap>,
    /// Acknowledged removals.
    removed: BTreeSet<(String, String)>,
    inflight: Option<Op>,
    next: u64,
    acked: u64,
    journal: Option<std::fs::File>,
}

impl Model {
    /// Records an acknowledged operation (journal line, counters) and applies it.
    fn ack(&mut self, op: Op) {
        self.inflight = None;
        self.acked += 1;
        if let Some(j) = self.journal.as_mut() {
            writeln!(j, "{op:?}").unwrap();
        }
        self.apply(op);
    }

    fn apply(&mut self, op: Op) {
        match op {
            Op::Blob { seed, len, .. } => {
                let d = digest_of(&pseudo_random(len, seed));
                self.blobs.insert(d, (seed, len));
            }
            Op::Prepare { sn, key, parent } => {
                let kind = Kind::Active;
                self.snaps.insert((sn, key), Snap { kind, parent });
            }
            Op::Commit {
                sn,
                key,
                name,
                parent,
            } => {
                self.snaps.remove(&(sn.clone(), key));
                let kind = Kind::Committed;
                self.snaps.insert((sn, name), Snap { kind, parent });
            }
            Op::Remove { sn, key, .. } => {
                self.snaps.remove(&(sn.clone(), key.clone()));
                self.removed.insert((sn, key));
            }
        }
    }

    /// Picks the next operation from the current state.
    fn choose(&mut self, rng: &mut StdRng) -> Op {
        self.next += 1;
        let n = self.next;
        let sn = BACKENDS[rng.gen_range(0..BACKENDS.len())].to_string();
        let of = |kind: Kind| -> Vec<String> {
            let s = self
                .snaps
                .iter()
                .filter(|((b, _), v)| *b == sn && v.kind == kind);
            s.map(|((_, k), _)| k.clone()).collect()
        };
        let (active, committed) = (of(Kind::Active), of(Kind::Committed));
        let pick = |v: &[String], rng: &mut StdRng| v[rng.gen_range(0..v.len())].clone();
        match rng.gen_range(0..100) {
            0..45 => Op::Blob {
                r: format!("blob-{n}"),
                seed: rng.r#gen(),
                len: rng.gen_range(1..(1usize << 20)),
            },
            45..85 if !active.is_empty() && rng.gen_bool(0.4) => {
                let key = pick(&active, rng);
                let parent = self.snaps[&(sn.clone(), key.clone())].parent.clone();
                let name = format!("c-{n}");
                Op::Commit {
                    sn,
                    key,
                    name,
                    parent,
                }
            }
            45..85 => {
                let parent = match committed.is_empty() || rng.gen_bool(0.3) {
                    true => String::new(),
                    false => pick(&committed, rng),
                };
                let key = format!("a-{n}");
                Op::Prepare { sn, key, parent }
            }
            _ => {
                // Only leaves: a snapshot with a child (in its backend) cannot be removed.
                let has_child = |k: &String| {
                    self.snaps
                        .iter()
                        .any(|((b, _), s)| *b == sn && s.parent == *k)
                };
                let leaves: Vec<String> = self
                    .snaps
                    .keys()
                    .filter(|(b, k)| *b == sn && !has_child(k))
                    .map(|(_, k)| k.clone())
                    .collect();
                if leaves.is_empty() {
                    let key = format!("a-{n}");
                    return Op::Prepare {
                        sn,
                        key,
                        parent: String::new(),
                    };
                }
                let key = pick(&leaves, rng);
                let snap = self.snaps[&(sn.clone(), key.clone())].clone();
                Op::Remove { sn, key, snap }
            }
        }
    }
}

struct Clients {
    c: ContentClient<Channel>,
    s: SnapshotsClient<Channel>,
}

impl Clients {
    async fn new(socket: &Path) -> Clients {
        let ch = connect(socket.to_path_buf()).await;
        Clients {
            c: ContentClient::new(ch.clone()).max_decoding_message_size(16 << 20),
            s: SnapshotsClient::new(ch),
        }
    }

    /// Sends `op`; Ok once the server acknowledged it.
    async fn send(&mut self, op: &Op) -> Result<(), tonic::Status> {
        match op.clone() {
            Op::Blob { r, seed, len } => {
                let data = pseudo_random(len, seed);
                let d = digest_of(&data);
                let total = len as i64;
                let (mut w, _) = WriteStream::open(&mut self.c, stat(&r, total, &d)).await?;
                for (i, chunk) in data.chunks(CHUNK).enumerate() {
                    w.send(write((i * CHUNK) as i64, chunk)).await?;
                }
                let reply = w.send(commit(total, total, &d)).await?;
                assert_eq!(reply.digest, d);
            }
            Op::Prepare { sn, key, parent } => {
                let req = PrepareSnapshotRequest {
                    snapshotter: sn,
                    key,
                    parent,
                    ..Default::default()
                };
                self.s.prepare(req).await?;
            }
            Op::Commit { sn, key, name, .. } => {
                let req = CommitSnapshotRequest {
                    snapshotter: sn,
                    name,
                    key,
                    ..Default::default()
                };
                self.s.commit(req).await?;
            }
            Op::Remove { sn, key, .. } => {
                let req = RemoveSnapshotRequest {
                    snapshotter: sn,
                    key,
                };
                self.s.remove(req).await?;
            }
        }
        Ok(())
    }

    /// Stat of `key`: Some(snap), None when NotFound.
    async fn stat(&mut self, sn: &str, key: &str) -> Result<Option<Snap>, tonic::Status> {
        let req = StatSnapshotRequest {
            snapshotter: sn.into(),
            key: key.into(),
        };
        match self.s.stat(req).await {
            Ok(r) => {
                let info = r.into_inner().info.unwrap_or_default();
                let kind = Kind::try_from(info.kind).unwrap_or(Kind::Unknown);
                Ok(Some(Snap {
                    kind,
                    parent: info.parent,
                }))
            }
            Err(e) if e.code() == Code::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The directories the mounts of `key` use (bind source, overlay upper/work/lower dirs).
    async fn mount_dirs(&mut self, sn: &str, key: &str) -> Result<Vec<PathBuf>, tonic::Status> {
        let req = MountsRequest {
            snapshotter: sn.into(),
            key: key.into(),
        };
        let mut out = Vec::new();
        for m in self.s.mounts(req).await?.into_inner().mounts {
            if m.source.starts_with('/') {
                out.push(PathBuf::from(&m.source));
            }
            for o in &m.options {
                let dirs = ["upperdir=", "workdir=", "lowerdir="]
                    .iter()
                    .find_map(|p| o.strip_prefix(p));
                out.extend(
                    dirs.into_iter()
                        .flat_map(|d| d.split(':'))
                        .map(PathBuf::from),
                );
            }
        }
        Ok(out)
    }

    /// The blob's bytes when Info has it, None when NotFound.
    async fn read(&mut self, d: &str) -> Result<Option<(i64, Vec<u8>)>, tonic::Status> {
        let size = match self.c.info(InfoRequest { digest: d.into() }).await {
            Ok(r) => r.into_inner().info.unwrap_or_default().size,
            Err(e) if e.code() == Code::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let req = ReadContentRequest {
            digest: d.into(),
            offset: 0,
            size: 0,
        };
        let mut s = self.c.read(req).await?.into_inner();
        let mut out = Vec::new();
        while let Some(m) = s.message().await? {
            out.extend(m.data);
        }
        Ok(Some((size, out)))
    }

    async fn listed_blobs(&mut self) -> Result<BTreeSet<String>, tonic::Status> {
        let mut s = self
            .c
            .list(ListContentRequest::default())
            .await?
            .into_inner();
        let mut out = BTreeSet::new();
        while let Some(m) = s.message().await? {
            out.extend(m.info.into_iter().map(|i| i.digest));
        }
        Ok(out)
    }

    async fn listed_snaps(&mut self, sn: &str) -> Result<BTreeMap<String, Snap>, tonic::Status> {
        let req = ListSnapshotsRequest {
            snapshotter: sn.into(),
            filters: vec![],
        };
        let mut s = self.s.list(req).await?.into_inner();
        let mut out = BTreeMap::new();
        while let Some(m) = s.message().await? {
            for i in m.info {
                let kind = Kind::try_from(i.kind).unwrap_or(Kind::Unknown);
                out.insert(
                    i.name,
                    Snap {
                        kind,
                        parent: i.parent,
                    },
                );
            }
        }
        Ok(out)
    }
}

/// Runs operations until one fails (the kill breaks the connection) and returns that error;
/// acknowledged operations go to the model, the failed one stays in flight.
async fn workload(model: Arc<Mutex<Model>>, socket: PathBuf, seed: u64) -> tonic::Status {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut cl = Clients::new(&socket).await;
    loop {
        let op = {
            let mut m = model.lock().unwrap();
            let op = m.choose(&mut rng);
            m.inflight = Some(op.clone());
            op
        };
        match cl.send(&op).await {
            Ok(()) => model.lock().unwrap().ack(op),
            Err(e) => return e,
        }
    }
}

/// Counters of the campaign.
#[derive(Debug, Default)]
struct Counts {
    kills: u64,
    verified: u64,
    /// Operations in flight at a kill that turned out done / not done.
    landed: u64,
    not_landed: u64,
    /// Interrupted ingests resumed past offset 0.
    resumed: u64,
    violations: Vec<String>,
}

impl Counts {
    fn tally(&mut self, landed: bool) {
        match landed {
            true => self.landed += 1,
            false => self.not_landed += 1,
        }
    }

    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if ok {
            self.verified += 1;
        } else {
            let v = what();
            eprintln!("VIOLATION: {v}");
            self.violations.push(v);
        }
    }
}

/// Resolves the operation in flight at the kill: it happened whole or not at all. An
/// interrupted ingest must resume with the digest of the bytes it holds, and is completed.
async fn resolve(m: &mut Model, cl: &mut Clients, n: &mut Counts) -> Result<(), tonic::Status> {
    let Some(op) = m.inflight.take() else {
        return Ok(());
    };
    match op.clone() {
        Op::Blob { r, seed, len } => {
            let data = pseudo_random(len, seed);
            let d = digest_of(&data);
            if let Some((size, got)) = cl.read(&d).await? {
                let ok = size == len as i64 && digest_of(&got) == d;
                n.check(ok, || {
                    format!("unacknowledged blob {d} visible but not whole")
                });
                n.landed += 1;
                m.apply(op);
                return Ok(());
            }
            let total = len as i64;
            let (mut w, st) = WriteStream::open(&mut cl.c, stat(&r, total, "")).await?;
            let off = st.offset as usize;
            let ok = off <= len && st.digest == digest_of(&data[..off.min(len)]);
            n.check(ok, || {
                format!("ingest {r} resumed at {off} with digest {}", st.digest)
            });
            n.not_landed += 1;
            n.resumed += u64::from(off > 0);
            for (i, chunk) in data[off.min(len)..].chunks(CHUNK).enumerate() {
                w.send(write((off + i * CHUNK) as i64, chunk)).await?;
            }
            let reply = w.send(commit(total, total, &d)).await?;
            n.check(reply.digest == d, || {
                format!("resumed {r} committed {}", reply.digest)
            });
            m.ack(op);
        }
        Op::Prepare { sn, key, parent } => {
            let got = cl.stat(&sn, &key).await?;
            let want = Snap {
                kind: Kind::Active,
                parent,
            };
            n.check(got.is_none() || got.as_ref() == Some(&want), || {
                format!("in-flight prepare {sn}/{key}: {got:?}")
            });
            n.tally(got.is_some());
            if got.is_some() {
                m.apply(op);
            }
        }
        Op::Commit {
            sn,
            key,
            name,
            parent,
        } => {
            let (k, c) = (cl.stat(&sn, &key).await?, cl.stat(&sn, &name).await?);
            let active = Snap {
                kind: Kind::Active,
                parent: parent.clone(),
            };
            let committed = Snap {
                kind: Kind::Committed,
                parent,
            };
            let before = k.as_ref() == Some(&active) && c.is_none();
            let after = k.is_none() && c.as_ref() == Some(&committed);
            n.check(before || after, || {
                format!("in-flight commit {sn}/{key} -> {name}: {k:?} {c:?}")
            });
            n.tally(after);
            if after {
                m.apply(op);
            }
        }
        Op::Remove { sn, key, snap } => {
            let got = cl.stat(&sn, &key).await?;
            n.check(got.is_none() || got.as_ref() == Some(&snap), || {
                format!("in-flight remove {sn}/{key}: {got:?}")
            });
            n.tally(got.is_none());
            if got.is_none() {
                m.apply(op);
            }
        }
    }
    Ok(())
}

/// Checks the model against the restarted server: `fresh` blobs (and, at the end, all of
/// them) are read back and hashed; snapshots are compared in full, by List and by Stat.
async fn verify(
    m: &Model,
    cl: &mut Clients,
    n: &mut Counts,
    fresh: &BTreeSet<String>,
) -> Result<(), tonic::Status> {
    let listed = cl.listed_blobs().await?;
    for d in listed.difference(&m.blobs.keys().cloned().collect()) {
        n.check(false, || format!("blob {d} listed but never acknowledged"));
    }
    for (d, (seed, len)) in m.blobs.iter().filter(|(d, _)| fresh.contains(*d)) {
        let got = cl.read(d).await?;
        let ok = got.as_ref().is_some_and(|(size, data)| {
            *size == *len as i64 && data.len() == *len && digest_of(data) == *d
        });
        n.check(ok && digest_of(&pseudo_random(*len, *seed)) == *d, || {
            format!("acknowledged blob {d} missing or damaged")
        });
    }
    for sn in BACKENDS {
        let listed = cl.listed_snaps(sn).await?;
        let want: BTreeMap<String, Snap> = m
            .snaps
            .iter()
            .filter(|((b, _), _)| b == sn)
            .map(|((_, k), s)| (k.clone(), s.clone()))
            .collect();
        n.check(listed == want, || {
            format!("{sn}: listed {listed:?}, acknowledged {want:?}")
        });
        for (k, s) in &want {
            let got = cl.stat(sn, k).await?;
            n.check(got.as_ref() == Some(s), || {
                format!("stat {sn}/{k}: {got:?}, want {s:?}")
            });
            if s.kind != Kind::Active {
                continue;
            }
            // No record without its directory (nor its parents').
            let dirs = cl.mount_dirs(sn, k).await?;
            n.check(!dirs.is_empty() && dirs.iter().all(|d| d.is_dir()), || {
                format!("mounts of {sn}/{k} name missing directories: {dirs:?}")
            });
        }
    }
    for (sn, k) in &m.removed {
        let got = cl.stat(sn, k).await?;
        n.check(got.is_none(), || {
            format!("removed {sn}/{k} is back: {got:?}")
        });
    }
    Ok(())
}

/// Starts the copied binary on the campaign's root and sockets; waits until it accepts.
fn start(p: &mut Proxy, bin: &Path) {
    let child = Command::new(bin)
        .arg("--root")
        .arg(&p.root)
        .arg("--address")
        .arg(&p.socket)
        .arg("--runtime-address")
        .arg(&p.runtime_socket)
        .arg("--state")
        .arg(p.root.with_file_name("state"))
        .arg("--log-level")
        .arg("error")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawning strata-proxy");
    p.child = Some(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(&p.socket).is_err() {
        assert!(Instant::now() < deadline, "strata-proxy did not start");
        if let Some(st) = p.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
            panic!("strata-proxy exited early: {st}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| v.parse().expect(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a ~2 minute campaign: run with --ignored"]
async fn kill9_campaign() {
    let rounds = env_u64("KILL9_ROUNDS").unwrap_or(50);
    let seed = env_u64("KILL9_SEED").unwrap_or_else(|| rand::thread_rng().r#gen::<u32>() as u64);
    println!("kill9 campaign: seed {seed} (KILL9_SEED={seed} replays it), {rounds} rounds");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    // Our own copy: others rebuild the target folder's binary while we run.
    let bin = dir.path().join("strata-proxy");
    std::fs::copy(env!("CARGO_BIN_EXE_strata-proxy"), &bin).unwrap();
    let journal_path = dir.path().join("journal.txt");
    let model = Arc::new(Mutex::new(Model {
        journal: Some(std::fs::File::create(&journal_path).unwrap()),
        ..Model::default()
    }));
    let mut p = Proxy {
        root: dir.path().join("root"),
        socket: dir.path().join("s.sock"),
        runtime_socket: dir.path().join("r.sock"),
        child: None,
        extra_args: vec![],
    };
    let mut n = Counts::default();
    let started = Instant::now();
    start(&mut p, &bin);
    for round in 0..rounds {
        let before: BTreeSet<String> = model.lock().unwrap().blobs.keys().cloned().collect();
        let task = tokio::spawn(workload(model.clone(), p.socket.clone(), seed ^ round));
        let delay = Duration::from_millis(rng.gen_range(5..400));
        tokio::time::sleep(delay).await;
        // An operation refused while the server was still up is a bug of its own.
        assert!(!task.is_finished(), "round {round}: {:?}", task.await);
        p.kill9();
        n.kills += 1;
        task.abort();
        if let Err(e) = task.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        start(&mut p, &bin);

        let mut cl = Clients::new(&p.socket).await;
        let mut m = model.lock().unwrap();
        let inflight = m.inflight.clone();
        let res = async {
            resolve(&mut m, &mut cl, &mut n).await?;
            let mut fresh: BTreeSet<String> = m.blobs.keys().cloned().collect();
            fresh.retain(|d| !before.contains(d));
            // And a few older ones each round; all of them at the end.
            let older: Vec<&String> = before.iter().collect();
            for _ in 0..3.min(older.len()) {
                fresh.insert(older[rng.gen_range(0..older.len())].clone());
            }
            if round + 1 == rounds {
                fresh = m.blobs.keys().cloned().collect();
            }
            verify(&m, &mut cl, &mut n, &fresh).await
        }
        .await;
        if let Err(e) = res {
            n.check(false, || {
                format!("round {round}: server failed after restart: {e}")
            });
        }
        println!(
            "round {round}: killed after {delay:?}, in flight {inflight:?}, acked {}",
            m.acked
        );
    }
    let m = model.lock().unwrap();
    println!(
        "kill9 campaign: seed {seed}, kills {}, operations acknowledged {}, blobs {}, \
         snapshots live {} removed {}, in flight at a kill: landed {} not {} (ingests resumed \
         mid-way {}), checks verified {}, violations {} ({:.1?})",
        n.kills,
        m.acked,
        m.blobs.len(),
        m.snaps.len(),
        m.removed.len(),
        n.landed,
        n.not_landed,
        n.resumed,
        n.verified,
        n.violations.len(),
        started.elapsed()
    );
    let journaled = std::fs::read_to_string(&journal_path)
        .unwrap()
        .lines()
        .count();
    assert_eq!(journaled as u64, m.acked, "journal lines");
    assert!(n.violations.is_empty(), "{:#?}", n.violations);
    assert!(
        m.acked > rounds,
        "the workload did too little to mean anything"
    );
}
