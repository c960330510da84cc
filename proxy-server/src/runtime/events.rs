//! `containerd.services.events.v1.Events` over the runtime's exchange: runtime events encoded
//! as containerd's payload messages (type URL = the message's full name, as containerd's
//! `typeurl` gives it), client events passed through.

use std::pin::Pin;

use futures::Stream;
use prost::Message;
use strata_core::filters::parse_all;
use strata_runtime::{Envelope, Event, Runtime, TaskEvent};
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::convert::{
    any_from_proto, any_to_proto, mounts_to_proto, namespace, system_time, timestamp,
};
use crate::api::events as ev;
use crate::api::events_service::events_server::Events;
use crate::api::events_service::{self as api, *};
use crate::api::images as img;
use crate::stopping::Stopping;

#[derive(Clone)]
pub struct EventsService {
    rt: Runtime,
    stopping: Stopping,
}

impl EventsService {
    pub fn new(rt: Runtime, stopping: Stopping) -> Self {
        EventsService { rt, stopping }
    }
}

fn any<M: Message>(type_url: &str, m: M) -> prost_types::Any {
    prost_types::Any {
        type_url: type_url.to_string(),
        value: m.encode_to_vec(),
    }
}

/// containerd's payload message for an event.
fn payload(e: &Event) -> prost_types::Any {
    let l = |m: &strata_core::labels::Labels| m.clone().into_iter().collect();
    match e.clone() {
        Event::NamespaceCreate { name, labels } => any(
            "containerd.events.NamespaceCreate",
            ev::NamespaceCreate {
                labels: l(&labels),
                name,
            },
        ),
        Event::NamespaceUpdate { name, labels } => any(
            "containerd.events.NamespaceUpdate",
            ev::NamespaceUpdate {
                labels: l(&labels),
                name,
            },
        ),
        Event::NamespaceDelete { name } => any(
            "containerd.events.NamespaceDelete",
            ev::NamespaceDelete { name },
        ),
        Event::ImageCreate { name, labels } => any(
            "containerd.services.images.v1.ImageCreate",
            img::ImageCreate {
                labels: l(&labels),
                name,
            },
        ),
        Event::ImageUpdate { name, labels } => any(
            "containerd.services.images.v1.ImageUpdate",
            img::ImageUpdate {
                labels: l(&labels),
                name,
            },
        ),
        Event::ImageDelete { name } => any(
            "containerd.services.images.v1.ImageDelete",
            img::ImageDelete { name },
        ),
        Event::ContainerCreate {
            id,
            image,
            runtime,
            runtime_options,
        } => any(
            "containerd.events.ContainerCreate",
            ev::ContainerCreate {
                id,
                image,
                runtime: Some(ev::container_create::Runtime {
                    name: runtime,
                    options: runtime_options.map(any_to_proto),
                }),
            },
        ),
        Event::ContainerUpdate {
            id,
            image,
            labels,
            snapshot_key,
        } => any(
            "containerd.events.ContainerUpdate",
            ev::ContainerUpdate {
                id,
                image,
                labels: l(&labels),
                snapshot_key,
            },
        ),
        Event::ContainerDelete { id } => any(
            "containerd.events.ContainerDelete",
            ev::ContainerDelete { id },
        ),
        Event::ContentDelete { digest } => any(
            "containerd.events.ContentDelete",
            ev::ContentDelete { digest },
        ),
        Event::SnapshotPrepare { key, parent } => any(
            "containerd.events.SnapshotPrepare",
            ev::SnapshotPrepare { key, parent },
        ),
        Event::SnapshotCommit { key, name } => any(
            "containerd.events.SnapshotCommit",
            ev::SnapshotCommit { key, name },
        ),
        Event::SnapshotRemove { key } => any(
            "containerd.events.SnapshotRemove",
            ev::SnapshotRemove { key },
        ),
        Event::Task(t) => task_payload(t),
        Event::Opaque(a) => any_to_proto(a),
    }
}

fn task_payload(t: TaskEvent) -> prost_types::Any {
    let at = |e: &strata_runtime::Exit| super::tasks::exited_at(e);
    match t {
        TaskEvent::Create {
            container_id,
            bundle,
            rootfs,
            stdio,
            pid,
        } => any(
            "containerd.events.TaskCreate",
            ev::TaskCreate {
                container_id,
                bundle,
                rootfs: mounts_to_proto(rootfs),
                io: Some(ev::TaskIo {
                    stdin: stdio.stdin,
                    stdout: stdio.stdout,
                    stderr: stdio.stderr,
                    terminal: stdio.terminal,
                }),
                checkpoint: String::new(),
                pid,
            },
        ),
        TaskEvent::Start { container_id, pid } => any(
            "containerd.events.TaskStart",
            ev::TaskStart { container_id, pid },
        ),
        TaskEvent::Exit {
            container_id,
            id,
            pid,
            exit,
        } => any(
            "containerd.events.TaskExit",
            ev::TaskExit {
                container_id,
                id,
                pid,
                exit_status: exit.status,
                exited_at: at(&exit),
            },
        ),
        TaskEvent::Delete {
            container_id,
            id,
            pid,
            exit,
        } => any(
            "containerd.events.TaskDelete",
            ev::TaskDelete {
                container_id,
                pid,
                exit_status: exit.status,
                exited_at: at(&exit),
                id,
            },
        ),
        TaskEvent::ExecAdded {
            container_id,
            exec_id,
        } => any(
            "containerd.events.TaskExecAdded",
            ev::TaskExecAdded {
                container_id,
                exec_id,
            },
        ),
        TaskEvent::ExecStarted {
            container_id,
            exec_id,
            pid,
        } => any(
            "containerd.events.TaskExecStarted",
            ev::TaskExecStarted {
                container_id,
                exec_id,
                pid,
            },
        ),
        TaskEvent::Paused { container_id } => any(
            "containerd.events.TaskPaused",
            ev::TaskPaused { container_id },
        ),
        TaskEvent::Resumed { container_id } => any(
            "containerd.events.TaskResumed",
            ev::TaskResumed { container_id },
        ),
    }
}

fn envelope_to_proto(e: &Envelope) -> api::Envelope {
    api::Envelope {
        timestamp: timestamp(e.timestamp),
        namespace: e.namespace.clone(),
        topic: e.topic.clone(),
        event: Some(payload(&e.event)),
    }
}

/// containerd's topic rule: non-empty, starting with `/`.
fn validate_topic(topic: &str) -> Result<(), Status> {
    if topic.is_empty() || !topic.starts_with('/') || topic.ends_with('/') {
        return Err(Status::invalid_argument(format!(
            "topic {topic:?} must start with '/' and not end with it"
        )));
    }
    Ok(())
}

type EnvelopeStream = Pin<Box<dyn Stream<Item = Result<api::Envelope, Status>> + Send>>;

#[tonic::async_trait]
impl Events for EventsService {
    async fn publish(&self, req: Request<PublishRequest>) -> Result<Response<()>, Status> {
        let ns = namespace(req.metadata())
            .ok_or_else(|| Status::failed_precondition("namespace is required"))?;
        let r = req.into_inner();
        validate_topic(&r.topic)?;
        let event = Event::Opaque(any_from_proto(r.event.unwrap_or_default()));
        self.rt.events().forward(Envelope {
            timestamp: std::time::SystemTime::now(),
            namespace: ns,
            topic: r.topic,
            event,
        });
        Ok(Response::new(()))
    }

    async fn forward(&self, req: Request<ForwardRequest>) -> Result<Response<()>, Status> {
        let e = req.into_inner().envelope.unwrap_or_default();
        validate_topic(&e.topic)?;
        if e.namespace.is_empty() {
            return Err(Status::invalid_argument("envelope namespace is required"));
        }
        self.rt.events().forward(Envelope {
            timestamp: system_time(e.timestamp),
            namespace: e.namespace,
            topic: e.topic,
            event: Event::Opaque(any_from_proto(e.event.unwrap_or_default())),
        });
        Ok(Response::new(()))
    }

    type SubscribeStream = EnvelopeStream;

    async fn subscribe(
        &self,
        req: Request<SubscribeRequest>,
    ) -> Result<Response<EnvelopeStream>, Status> {
        let filter =
            parse_all(&req.into_inner().filters).map_err(|e| Status::invalid_argument(e.0))?;
        let mut rx = self.rt.events().subscribe();
        let stopping = self.stopping.clone();
        let stream = async_stream(move |tx| async move {
            let stop = stopping.wait();
            tokio::pin!(stop);
            loop {
                let got = tokio::select! {
                    _ = tx.closed() => return,
                    _ = &mut stop => {
                        let _ = tx.send(Err(crate::stopping::unavailable())).await;
                        return;
                    }
                    got = rx.recv() => got,
                };
                match got {
                    Ok(e) if filter.matches(&e) => {
                        if tx.send(Ok(envelope_to_proto(&e))).await.is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(n)) => {
                        tracing::warn!(lost = n, "event subscriber fell behind")
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// A stream fed by a task that ends when the client goes away.
fn async_stream<F, Fut>(f: F) -> EnvelopeStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<api::Envelope, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
