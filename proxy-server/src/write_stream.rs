//! The Write stream's state machine, exactly containerd's content server
//! (`contentserver.go` Write; `CONTAINERD.md` §2.2), over any [`ContentApi`]:
//!
//! * the first message must name a ref; opening the writer locks that ref for the life of the
//!   stream (a second writer gets Unavailable) and resumes an existing ingest;
//! * a message whose `expected` digest already exists aborts the ingest: AlreadyExists;
//! * WRITE/COMMIT at offset 0 on a non-empty ingest truncates; any other offset that is not the
//!   current one is OutOfRange;
//! * COMMIT verifies size and digest (FailedPrecondition keeps the ingest) and ends the stream;
//! * the reply message is reused between requests, so fields set by an earlier STAT persist.
//!
//! **Pipelined WRITEs.** containerd's client sends one 1 MiB WRITE and waits for its reply, so a
//! server that hashes and writes each chunk before answering leaves the client idle for that
//! long, and itself idle while the client prepares the next chunk. When the stream declared the
//! blob's total size (containerd's fetches, copies and imports all do) a WRITE that ends short
//! of it is answered as soon as its offset is checked: the reply carries the offset the chunk
//! reaches and an empty digest (containerd's client keeps the last digest it was given), and
//! the chunk is hashed and written on a blocking thread while the client prepares the next one.
//! The WRITE that reaches the total is answered after it is written, with the digest of the
//! whole blob, as is every WRITE of a stream without a total (containerd's walking differ
//! compresses a layer of unknown size and asks the writer for its digest at the end). Every
//! message settles the chunk in flight before it is handled, so STAT and COMMIT see exactly
//! what was written (STAT refreshes the client's digest), and the Status call waits for the
//! chunk in flight (`strata_content::Writer::in_flight`); a failed write fails the next
//! message, and the writer keeps only the bytes that landed, where a resumed writer starts; the
//! updated time is when the chunk was accepted; COMMIT makes durable everything acknowledged.
//!
//! On the runtime socket an ingest may start *shared* (another view holds the expected bytes):
//! it reports the whole size at once and commits by claiming the bytes; data or a truncation
//! first copies the blob into a live ingest (containerd's "unshare").

use std::sync::Arc;

use strata_content::Writer;
use strata_core::digest::Digest;
use strata_runtime::{Opened, SharedIngest};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tonic::{Status, Streaming};

use crate::api::content::{WriteAction, WriteContentRequest, WriteContentResponse};
use crate::content_api::ContentApi;
use crate::content_service::parse_digest;
use crate::errors;

type Reply = Result<WriteContentResponse, Status>;

/// Reads the first message, opens (locks) the writer and spawns the loop serving the stream.
pub async fn start<A: ContentApi>(
    api: Arc<A>,
    scope: A::Scope,
    mut requests: Streaming<WriteContentRequest>,
) -> Result<mpsc::Receiver<Reply>, Status> {
    let first = requests
        .message()
        .await?
        .ok_or_else(|| Status::invalid_argument("first message must have a reference"))?;
    if first.r#ref.is_empty() {
        return Err(Status::invalid_argument(
            "first message must have a reference",
        ));
    }
    let expected = optional_digest(&first.expected)?;
    let (reference, total) = (first.r#ref.clone(), first.total.max(0) as u64);
    let (a, s) = (api.clone(), scope.clone());
    let target = tokio::task::spawn_blocking(move || a.open(&s, &reference, total, expected))
        .await
        .map_err(errors::join)??;
    let (tx, rx) = mpsc::channel(2);
    let session = Session {
        api,
        scope,
        reference: first.r#ref.clone(),
        target: Some(target),
        total: first.total,
        expected: None,
        msg: WriteContentResponse::default(),
        inflight: None,
    };
    tokio::spawn(session.run(first, requests, tx));
    Ok(rx)
}

/// Whether `len` bytes written at `offset` end short of the stream's declared `total` (none
/// declared: never), so that a WRITE of them may be answered before it is written.
fn short_of_total(offset: u64, len: usize, total: i64) -> bool {
    offset + (len as u64) < u64::try_from(total).unwrap_or(0)
}

/// How long a finished stream waits for the client to close its side.
const CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// After COMMIT, waits for the client to close its half of the stream before ending ours.
/// Ending first makes the HTTP/2 server reset the stream, and hyper answers more than 1024 such
/// resets on one connection with GOAWAY (`too_many_internal_resets`): containerd writes every
/// blob over the same connection, so a busy node would lose it. containerd's client closes its
/// side right after reading the COMMIT reply.
async fn drain(mut requests: Streaming<WriteContentRequest>) {
    let rest = async { while let Ok(Some(_)) = requests.message().await {} };
    if tokio::time::timeout(CLOSE_WAIT, rest).await.is_err() {
        tracing::debug!("client kept its write stream open after commit");
    }
}

fn optional_digest(s: &str) -> Result<Option<Digest>, Status> {
    if s.is_empty() {
        Ok(None)
    } else {
        parse_digest(s).map(Some)
    }
}

struct Session<A: ContentApi> {
    api: Arc<A>,
    scope: A::Scope,
    reference: String,
    /// Taken (closed) when the ingest is aborted.
    target: Option<Opened>,
    /// The `total` of this stream (what the client sent on it), echoed by STAT.
    total: i64,
    expected: Option<Digest>,
    msg: WriteContentResponse,
    /// A chunk acknowledged before it was written: the writer is out on a blocking thread
    /// until [`Session::settle`] takes it back.
    inflight: Option<JoinHandle<(Writer, strata_content::Result<()>)>>,
}

impl<A: ContentApi> Drop for Session<A> {
    /// A stream that ends without a commit (the client went away) leaves its ingest to resume:
    /// closing the writer saves its checkpoint, an fsync of up to 64 MiB of data.
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            release(target);
        }
    }
}

/// Drops `target` on a blocking thread when called on the async runtime, whose threads serve
/// every other call and must not wait for a disk.
fn release<T: Send + 'static>(target: T) {
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => drop(rt.spawn_blocking(move || drop(target))),
        Err(_) => drop(target),
    }
}

impl<A: ContentApi> Session<A> {
    async fn run(
        mut self,
        first: WriteContentRequest,
        mut requests: Streaming<WriteContentRequest>,
        tx: mpsc::Sender<Reply>,
    ) {
        let mut next = Some(first);
        while let Some(req) = next.take() {
            let commit = req.action == WriteAction::Commit as i32;
            let reply = match self.settle().await {
                Ok(()) => self.handle(req),
                Err(status) => Err(status),
            };
            let failed = reply.is_err();
            if tx.send(reply).await.is_err() || failed {
                break;
            }
            if commit {
                return drain(requests).await;
            }
            next = match requests.message().await {
                Ok(m) => m,
                Err(status) => {
                    tracing::debug!(%status, "write stream ended by the client");
                    None
                }
            };
        }
        // The client left (or the stream failed): keep the ref until the last chunk is written,
        // so that a writer the client opens again resumes at the offset it was given.
        if let Err(status) = self.settle().await {
            tracing::debug!(%status, "the last chunk of a write stream failed");
        }
    }

    /// Takes the writer back from the chunk in flight; its failure fails this message.
    async fn settle(&mut self) -> Result<(), Status> {
        let Some(job) = self.inflight.take() else {
            return Ok(());
        };
        let (w, written) = job.await.map_err(errors::join)?;
        self.target = Some(Opened::Live(w));
        written.map_err(errors::content)
    }

    /// One request: blocking file I/O and hashing run in place on this worker thread
    /// (`block_in_place`), except for a WRITE that will be pipelined: that one only checks its
    /// offset and hands the chunk to a blocking thread, so it runs as plain async code. Entering
    /// `block_in_place` hands this worker's other tasks to another thread; for a 1 MiB WRITE
    /// that hand-off took ~160 us of the ~1.4 ms the client waited per chunk.
    fn handle(&mut self, req: WriteContentRequest) -> Reply {
        if self.pipelines(&req) {
            return self.handle_blocking(req);
        }
        tokio::task::block_in_place(|| self.handle_blocking(req))
    }

    /// Whether `req` is a WRITE that [`Session::write`] answers before writing: more data at
    /// the live writer's offset, short of the total, nothing to look up (no expected digest).
    fn pipelines(&self, req: &WriteContentRequest) -> bool {
        let Some(Opened::Live(w)) = &self.target else {
            return false;
        };
        let total = if req.total > 0 { req.total } else { self.total };
        req.action == WriteAction::Write as i32
            && req.expected.is_empty()
            && !req.data.is_empty()
            && req.offset == w.offset() as i64
            && short_of_total(w.offset(), req.data.len(), total)
    }

    fn target(&mut self) -> Result<&mut Opened, Status> {
        self.target
            .as_mut()
            .ok_or_else(|| Status::failed_precondition("writer is closed"))
    }

    /// The live writer, unsharing a shared ingest first (keeping `keep` of its bytes).
    fn live(&mut self, keep: Option<u64>) -> Result<&mut Writer, Status> {
        if let Opened::Shared(sh) = self.target()? {
            let sh = sh.clone();
            let keep = keep.unwrap_or(sh.size);
            let w = self.api.unshare(&self.scope, &self.reference, &sh, keep)?;
            self.target = Some(Opened::Live(w));
        }
        match self.target()? {
            Opened::Live(w) => Ok(w),
            Opened::Shared(_) => unreachable!("unshared above"),
        }
    }

    fn offset(&mut self) -> Result<u64, Status> {
        Ok(match self.target()? {
            Opened::Live(w) => w.offset(),
            Opened::Shared(sh) => sh.size,
        })
    }

    fn handle_blocking(&mut self, req: WriteContentRequest) -> Reply {
        self.msg.action = req.action;
        self.msg.offset = self.offset()? as i64;
        if let Some(d) = optional_digest(&req.expected)? {
            self.refuse_existing(&d)?;
            if let Opened::Live(w) = self.target()? {
                w.set_expected(d.clone());
            }
            self.expected = Some(d);
        }
        if req.total > 0 {
            self.total = req.total;
            if let Opened::Live(w) = self.target()? {
                w.set_total(req.total as u64);
            }
        }
        match WriteAction::try_from(req.action) {
            Ok(WriteAction::Stat) => self.stat(),
            Ok(WriteAction::Write) => self.write(req, true),
            Ok(WriteAction::Commit) => {
                let mut req = req;
                let labels = std::mem::take(&mut req.labels);
                self.write(req, false)?;
                self.commit(labels)
            }
            Err(_) => Err(Status::invalid_argument(format!(
                "unknown write action {}",
                req.action
            ))),
        }
    }

    /// An expected digest that already exists: abort the ingest, AlreadyExists.
    fn refuse_existing(&mut self, d: &Digest) -> Result<(), Status> {
        if !self.api.exists(&self.scope, d)? {
            return Ok(());
        }
        match self.target.take() {
            Some(opened) => self
                .api
                .abort_opened(&self.scope, &self.reference, opened)?,
            None => self.api.abort(&self.scope, &self.reference)?,
        }
        Err(Status::already_exists(format!(
            "blob with expected digest {d} exists"
        )))
    }

    fn stat(&mut self) -> Reply {
        let (started, updated, digest) = match self.target()? {
            Opened::Live(w) => {
                let st = w.status();
                (st.started_at, st.updated_at, w.digest())
            }
            Opened::Shared(sh) => (sh.started, sh.started, sh.digest.clone()),
        };
        self.msg.digest = digest.to_string();
        self.msg.started_at = Some(started.into());
        self.msg.updated_at = Some(updated.into());
        self.msg.total = self.total;
        Ok(self.msg.clone())
    }

    /// A WRITE (or the data of a COMMIT); `pipeline`: it may be answered before it is written.
    fn write(&mut self, req: WriteContentRequest, pipeline: bool) -> Reply {
        let current = self.offset()? as i64;
        if req.offset > 0 && req.offset != current {
            return Err(Status::out_of_range(format!(
                "write @{} must occur at current offset {current}",
                req.offset
            )));
        }
        let truncate = req.offset == 0 && current > 0;
        if !truncate && req.data.is_empty() {
            return self.report();
        }
        let total = self.total;
        let w = self.live(truncate.then_some(0))?;
        if truncate && w.offset() > 0 {
            w.truncate(0).map_err(errors::content)?;
        }
        if req.data.is_empty() {
            return self.report();
        }
        // Short of the declared total: a later reply (the one reaching it) gives the digest.
        if pipeline && short_of_total(w.offset(), req.data.len(), total) {
            return self.pipeline(req.data);
        }
        w.write(&req.data).map_err(errors::content)?;
        crate::metrics::add_ingested(req.data.len());
        self.report()
    }

    /// Answers a WRITE whose chunk is hashed and written on a blocking thread meanwhile.
    fn pipeline(&mut self, data: bytes::Bytes) -> Reply {
        let Some(Opened::Live(mut w)) = self.target.take() else {
            unreachable!("pipelined on a live writer")
        };
        let reached = w.offset() + data.len() as u64;
        let accepted = std::time::SystemTime::now();
        // Until it lands, the ingest's Status waits for this chunk (and so reports `reached`).
        let flight = w.in_flight();
        self.inflight = Some(tokio::task::spawn_blocking(move || {
            let written = w.write_accepted(&data, accepted);
            drop(flight);
            if written.is_ok() {
                crate::metrics::add_ingested(data.len());
            }
            (w, written)
        }));
        self.msg.offset = reached as i64;
        self.msg.digest = String::new();
        Ok(self.msg.clone())
    }

    /// The reply after a write: the offset and digest so far.
    fn report(&mut self) -> Reply {
        let (offset, digest) = match self.target()? {
            Opened::Live(w) => (w.offset(), w.digest()),
            Opened::Shared(sh) => (sh.size, sh.digest.clone()),
        };
        self.msg.offset = offset as i64;
        self.msg.digest = digest.to_string();
        Ok(self.msg.clone())
    }

    fn commit(&mut self, labels: std::collections::HashMap<String, String>) -> Reply {
        let labels: Option<strata_core::labels::Labels> = if labels.is_empty() {
            None
        } else {
            Some(labels.into_iter().collect())
        };
        let size = self.total.max(0) as u64;
        let expected = self.expected.clone();
        let (api, scope, r) = (self.api.clone(), self.scope.clone(), self.reference.clone());
        let d = match self.target()? {
            Opened::Live(w) => api.commit(&scope, w, size, expected.as_ref(), labels.as_ref())?,
            Opened::Shared(sh) => {
                let sh: SharedIngest = sh.clone();
                api.claim(&scope, &r, &sh, size, expected.as_ref(), labels.as_ref())?
            }
        };
        self.msg.offset = self.offset()? as i64;
        self.msg.digest = d.to_string();
        Ok(self.msg.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::thread::{self, ThreadId};

    use super::release;

    /// Reports the thread it is dropped on.
    struct Probe(mpsc::Sender<ThreadId>);

    impl Drop for Probe {
        fn drop(&mut self) {
            let _ = self.0.send(thread::current().id());
        }
    }

    /// Regression: a Write stream whose client went away closed its writer (an fsync of up to
    /// 64 MiB) on the runtime thread that served it.
    #[tokio::test(flavor = "current_thread")]
    async fn a_released_writer_closes_off_the_runtime_thread() {
        let (tx, rx) = mpsc::channel();
        release(Probe(tx));
        let dropped_on = tokio::task::spawn_blocking(move || rx.recv().unwrap())
            .await
            .unwrap();
        assert_ne!(dropped_on, thread::current().id());
    }

    #[test]
    fn outside_a_runtime_it_drops_at_once() {
        let (tx, rx) = mpsc::channel();
        release(Probe(tx));
        assert_eq!(rx.try_recv().unwrap(), thread::current().id());
    }
}
