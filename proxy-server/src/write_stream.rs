//! The Write stream's state machine, exactly containerd's content server
//! (`contentserver.go` Write; `CONTAINERD.md` §2.2):
//!
//! * the first message must name a ref; opening the writer locks that ref for the life of the
//!   stream (a second writer gets Unavailable) and resumes an existing ingest;
//! * a message whose `expected` digest already exists aborts the ingest: AlreadyExists;
//! * WRITE/COMMIT at offset 0 on a non-empty ingest truncates; any other offset that is not the
//!   current one is OutOfRange;
//! * COMMIT verifies size and digest (FailedPrecondition keeps the ingest) and ends the stream;
//! * the reply message is reused between requests, so fields set by an earlier STAT persist.

use strata_content::{ContentStore, Writer};
use strata_core::PROXY_VIEW;
use strata_core::digest::Digest;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use crate::api::content::{WriteAction, WriteContentRequest, WriteContentResponse};
use crate::content_service::parse_digest;
use crate::errors;

type Reply = Result<WriteContentResponse, Status>;

/// Reads the first message, opens (locks) the writer and spawns the loop serving the stream.
pub async fn start(
    store: ContentStore,
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
    let st = store.clone();
    let writer =
        tokio::task::spawn_blocking(move || st.writer(PROXY_VIEW, &reference, total, expected))
            .await
            .map_err(errors::join)?
            .map_err(errors::content)?;
    let (tx, rx) = mpsc::channel(2);
    let session = Session {
        store,
        writer: Some(writer),
        total: first.total,
        expected: None,
        msg: WriteContentResponse::default(),
    };
    tokio::spawn(session.run(first, requests, tx));
    Ok(rx)
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

struct Session {
    store: ContentStore,
    /// Taken (closed) when the ingest is aborted.
    writer: Option<Writer>,
    /// The `total` of this stream (what the client sent on it), echoed by STAT.
    total: i64,
    expected: Option<Digest>,
    msg: WriteContentResponse,
}

impl Session {
    async fn run(
        mut self,
        first: WriteContentRequest,
        mut requests: Streaming<WriteContentRequest>,
        tx: mpsc::Sender<Reply>,
    ) {
        let mut next = Some(first);
        while let Some(req) = next.take() {
            let commit = req.action == WriteAction::Commit as i32;
            let reply = self.handle(req);
            let failed = reply.is_err();
            if tx.send(reply).await.is_err() || failed {
                return;
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
    }

    /// One request: blocking file I/O and hashing run in place on this worker thread.
    fn handle(&mut self, req: WriteContentRequest) -> Reply {
        tokio::task::block_in_place(|| self.handle_blocking(req))
    }

    fn w(&mut self) -> Result<&mut Writer, Status> {
        self.writer
            .as_mut()
            .ok_or_else(|| Status::failed_precondition("writer is closed"))
    }

    fn handle_blocking(&mut self, req: WriteContentRequest) -> Reply {
        self.msg.action = req.action;
        self.msg.offset = self.w()?.offset() as i64;
        if let Some(d) = optional_digest(&req.expected)? {
            self.refuse_existing(&d)?;
            self.w()?.set_expected(d.clone());
            self.expected = Some(d);
        }
        if req.total > 0 {
            self.total = req.total;
            self.w()?.set_total(req.total as u64);
        }
        match WriteAction::try_from(req.action) {
            Ok(WriteAction::Stat) => self.stat(),
            Ok(WriteAction::Write) => self.write(&req),
            Ok(WriteAction::Commit) => {
                self.write(&req)?;
                self.commit(&req)
            }
            Err(_) => Err(Status::invalid_argument(format!(
                "unknown write action {}",
                req.action
            ))),
        }
    }

    /// An expected digest that already exists: abort the ingest, AlreadyExists.
    fn refuse_existing(&mut self, d: &Digest) -> Result<(), Status> {
        if self.store.info(PROXY_VIEW, d).is_err() {
            return Ok(());
        }
        let reference = self.w()?.status().reference;
        drop(self.writer.take());
        self.store
            .abort(PROXY_VIEW, &reference)
            .map_err(errors::content)?;
        Err(Status::already_exists(format!(
            "blob with expected digest {d} exists"
        )))
    }

    fn stat(&mut self) -> Reply {
        let w = self.w()?;
        let (st, digest) = (w.status(), w.digest());
        self.msg.digest = digest.to_string();
        self.msg.started_at = Some(st.started_at.into());
        self.msg.updated_at = Some(st.updated_at.into());
        self.msg.total = self.total;
        Ok(self.msg.clone())
    }

    fn write(&mut self, req: &WriteContentRequest) -> Reply {
        let w = self.w()?;
        let current = w.offset() as i64;
        if req.offset > 0 && req.offset != current {
            return Err(Status::out_of_range(format!(
                "write @{} must occur at current offset {current}",
                req.offset
            )));
        }
        if req.offset == 0 && current > 0 {
            w.truncate(0).map_err(errors::content)?;
        }
        if !req.data.is_empty() {
            w.write(&req.data).map_err(errors::content)?;
            crate::metrics::add_ingested(req.data.len());
        }
        let (offset, digest) = (w.offset() as i64, w.digest());
        self.msg.offset = offset;
        self.msg.digest = digest.to_string();
        Ok(self.msg.clone())
    }

    fn commit(&mut self, req: &WriteContentRequest) -> Reply {
        let labels: Option<strata_core::labels::Labels> = if req.labels.is_empty() {
            None
        } else {
            Some(req.labels.clone().into_iter().collect())
        };
        let size = self.total.max(0) as u64;
        let expected = self.expected.clone();
        let w = self.w()?;
        let d = w
            .commit(size, expected.as_ref(), labels.as_ref())
            .map_err(errors::content)?;
        self.msg.offset = w.offset() as i64;
        self.msg.digest = d.to_string();
        Ok(self.msg.clone())
    }
}
