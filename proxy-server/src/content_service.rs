//! `containerd.services.content.v1.Content` over a [`ContentApi`]: proto <-> store only. The
//! proxy socket serves it over [`crate::content_api::ProxyContent`] (one flat view, whatever
//! namespace header a request carries), the runtime socket over the runtime's namespaces.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use strata_content::Info;
use strata_core::digest::Digest;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::api::content::content_server::Content;
use crate::api::content::*;
use crate::content_api::ContentApi;
use crate::{errors, write_stream};

/// Infos per List message, as containerd's content server batches them.
const LIST_BATCH: usize = 100;
/// Largest Read message payload (containerd uses 1 MiB buffers).
const READ_CHUNK: usize = 1 << 20;
/// Largest Read served on the request's own thread (containerd's unpacker asks for 32 KiB), and
/// the largest answered in one message read at once; longer ones stream.
const INLINE_READ: i64 = 256 << 10;
/// The first message of a streamed Read. Each next one doubles, up to [`READ_CHUNK`]: HTTP/2
/// takes a message the client has no window for into its send buffer, so a stream the client
/// opens and never reads holds one first message, not a megabyte.
const FIRST_CHUNK: usize = INLINE_READ as usize;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// The Content service over `A`.
pub struct ContentService<A> {
    api: Arc<A>,
}

impl<A> Clone for ContentService<A> {
    fn clone(&self) -> Self {
        ContentService {
            api: self.api.clone(),
        }
    }
}

impl<A: ContentApi> ContentService<A> {
    pub fn new(api: A) -> Self {
        ContentService { api: Arc::new(api) }
    }

    /// Runs `f` with the request's scope on a blocking thread.
    async fn blocking<T, F, R>(&self, req: &Request<R>, f: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&A, &A::Scope) -> Result<T, Status> + Send + 'static,
    {
        let scope = self.api.scope(req.metadata())?;
        let api = self.api.clone();
        tokio::task::spawn_blocking(move || f(&api, &scope))
            .await
            .map_err(errors::join)?
    }
}

pub(crate) fn parse_digest(s: &str) -> Result<Digest, Status> {
    Digest::parse(s).map_err(errors::digest)
}

pub(crate) fn info_to_proto(i: Info) -> crate::api::content::Info {
    crate::api::content::Info {
        digest: i.digest.to_string(),
        size: i.size as i64,
        created_at: Some(i.created_at.into()),
        updated_at: Some(i.updated_at.into()),
        labels: i.labels.into_iter().collect(),
    }
}

pub(crate) fn status_to_proto(s: strata_content::Status) -> crate::api::content::Status {
    crate::api::content::Status {
        started_at: Some(s.started_at.into()),
        updated_at: Some(s.updated_at.into()),
        r#ref: s.reference,
        offset: s.offset as i64,
        total: s.total as i64,
        expected: s.expected.map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// A Read's blob: its one message, or the reader and range to stream.
enum Opened {
    Nothing,
    One(ReadContentResponse),
    Many(strata_content::BlobReader, u64, u64),
}

/// The byte range `[start, end)` a Read of `size`-byte blob asks for (containerd: a negative
/// offset is 0, a size of 0 or past the end reads to the end; an offset past it is OutOfRange).
fn read_range(size: u64, offset: i64, len: i64) -> Result<(u64, u64), Status> {
    let start = offset.max(0) as u64;
    if start > size {
        return Err(Status::out_of_range(format!(
            "read past object length {size} bytes"
        )));
    }
    let end = if len <= 0 || start.saturating_add(len as u64) > size {
        size
    } else {
        start + len as u64
    };
    Ok((start, end))
}

/// One Read message: bytes `[pos, end)` of the blob, its offset relative to the read's start.
fn read_message(
    reader: &strata_content::BlobReader,
    start: u64,
    pos: u64,
    end: u64,
) -> Result<ReadContentResponse, Status> {
    let mut buf = vec![0u8; (end - pos) as usize];
    let got = reader.read_at(pos, &mut buf).map_err(errors::content)?;
    buf.truncate(got);
    crate::metrics::add_read(got);
    Ok(ReadContentResponse {
        offset: (pos - start) as i64,
        data: buf,
    })
}

/// Bytes `[start, end)` of `reader` as Read messages, each read on a blocking thread when the
/// client asks for it: an idle stream holds no thread and no chunk but the one HTTP/2 buffers
/// (a stream per thread, 4 chunks ahead, let 600 unread streams grow the daemon by ~3 GiB and
/// starve every other call of blocking threads). Ends after an error or a short read.
fn read_stream(
    reader: strata_content::BlobReader,
    start: u64,
    end: u64,
) -> BoxStream<ReadContentResponse> {
    let reader = Arc::new(reader);
    Box::pin(futures::stream::unfold(
        Some((start, FIRST_CHUNK)),
        move |next| {
            let reader = reader.clone();
            async move {
                let (pos, size) = next.filter(|(pos, _)| *pos < end)?;
                let chunk_end = end.min(pos + size as u64);
                let msg = tokio::task::spawn_blocking(move || {
                    read_message(&reader, start, pos, chunk_end)
                })
                .await
                .map_err(errors::join)
                .and_then(|m| m);
                let next = match &msg {
                    Ok(m) if !m.data.is_empty() => {
                        Some((pos + m.data.len() as u64, (2 * size).min(READ_CHUNK)))
                    }
                    _ => None,
                };
                Some((msg, next))
            }
        },
    ))
}

#[tonic::async_trait]
impl<A: ContentApi> Content for ContentService<A> {
    async fn info(&self, req: Request<InfoRequest>) -> Result<Response<InfoResponse>, Status> {
        let d = parse_digest(&req.get_ref().digest)?;
        let info = self.blocking(&req, move |a, s| a.info(s, &d)).await?;
        Ok(Response::new(InfoResponse {
            info: Some(info_to_proto(info)),
        }))
    }

    async fn update(
        &self,
        req: Request<UpdateRequest>,
    ) -> Result<Response<UpdateResponse>, Status> {
        let r = req.get_ref();
        let info = r
            .info
            .clone()
            .ok_or_else(|| Status::invalid_argument("update requires info"))?;
        let d = parse_digest(&info.digest)?;
        let labels = info.labels.into_iter().collect();
        let paths = r.update_mask.clone().map(|m| m.paths).unwrap_or_default();
        let info = self
            .blocking(&req, move |a, s| a.update(s, &d, &labels, &paths))
            .await?;
        Ok(Response::new(UpdateResponse {
            info: Some(info_to_proto(info)),
        }))
    }

    type ListStream = BoxStream<ListContentResponse>;

    async fn list(
        &self,
        req: Request<ListContentRequest>,
    ) -> Result<Response<Self::ListStream>, Status> {
        let filters = req.get_ref().filters.clone();
        let infos = self.blocking(&req, move |a, s| a.list(s, &filters)).await?;
        let batches: Vec<Result<ListContentResponse, Status>> = infos
            .chunks(LIST_BATCH)
            .map(|c| {
                Ok(ListContentResponse {
                    info: c.iter().cloned().map(info_to_proto).collect(),
                })
            })
            .collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(batches))))
    }

    async fn delete(&self, req: Request<DeleteContentRequest>) -> Result<Response<()>, Status> {
        let d = parse_digest(&req.get_ref().digest)?;
        self.blocking(&req, move |a, s| a.delete(s, &d)).await?;
        Ok(Response::new(()))
    }

    type ReadStream = BoxStream<ReadContentResponse>;

    async fn read(
        &self,
        req: Request<ReadContentRequest>,
    ) -> Result<Response<Self::ReadStream>, Status> {
        let d = parse_digest(&req.get_ref().digest)?;
        let (offset, len) = (req.get_ref().offset, req.get_ref().size);
        // Open the blob, bound the range, and — for a range that fits one message — read it,
        // in one call. containerd's unpacker reads a layer in 32 KiB ReadAt calls, one RPC each:
        // those run right here (a page-cache pread of that size takes microseconds; a hop to a
        // blocking thread and back costs more than the read), larger ones on a blocking thread.
        let open = move |a: &A, s: &A::Scope| {
            let reader = a.reader(s, &d)?;
            let (start, end) = read_range(reader.size(), offset, len)?;
            if end == start {
                return Ok(Opened::Nothing);
            }
            if end - start <= FIRST_CHUNK as u64 {
                return read_message(&reader, start, start, end).map(Opened::One);
            }
            Ok(Opened::Many(reader, start, end))
        };
        let opened = if len > 0 && len <= INLINE_READ {
            open(&self.api, &self.api.scope(req.metadata())?)?
        } else {
            self.blocking(&req, open).await?
        };
        let (reader, start, end) = match opened {
            Opened::Nothing => return Ok(Response::new(Box::pin(tokio_stream::empty()))),
            Opened::One(msg) => {
                return Ok(Response::new(Box::pin(tokio_stream::once(Ok(msg)))));
            }
            Opened::Many(r, start, end) => (r, start, end),
        };
        Ok(Response::new(read_stream(reader, start, end)))
    }

    async fn status(
        &self,
        req: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let r = req.get_ref().r#ref.clone();
        let st = self.blocking(&req, move |a, s| a.status(s, &r)).await?;
        Ok(Response::new(StatusResponse {
            status: Some(status_to_proto(st)),
        }))
    }

    async fn list_statuses(
        &self,
        req: Request<ListStatusesRequest>,
    ) -> Result<Response<ListStatusesResponse>, Status> {
        let filters = req.get_ref().filters.clone();
        let sts = self
            .blocking(&req, move |a, s| a.list_statuses(s, &filters))
            .await?;
        Ok(Response::new(ListStatusesResponse {
            statuses: sts.into_iter().map(status_to_proto).collect(),
        }))
    }

    type WriteStream = BoxStream<WriteContentResponse>;

    async fn write(
        &self,
        req: Request<Streaming<WriteContentRequest>>,
    ) -> Result<Response<Self::WriteStream>, Status> {
        let scope = self.api.scope(req.metadata())?;
        let rx = write_stream::start(self.api.clone(), scope, req.into_inner()).await?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn abort(&self, req: Request<AbortRequest>) -> Result<Response<()>, Status> {
        let r = req.get_ref().r#ref.clone();
        self.blocking(&req, move |a, s| a.abort(s, &r)).await?;
        Ok(Response::new(()))
    }
}
