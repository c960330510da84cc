//! One gRPC client for both servers: Content and Snapshots over a unix socket, with the
//! `containerd-namespace` header when talking to containerd.

use std::path::PathBuf;

use anyhow::Context;
use hyper_util::rt::TokioIo;
use strata_proxy::api::content::content_client::ContentClient;
use strata_proxy::api::snapshots::snapshots_client::SnapshotsClient;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// containerd's message limit.
pub const MAX_MESSAGE: usize = 16 << 20;

/// A server under test and how to address it.
#[derive(Clone)]
pub struct Target {
    /// "strata" or "containerd".
    pub name: &'static str,
    pub content: ContentClient<Channel>,
    pub snapshots: SnapshotsClient<Channel>,
    /// Sent as `containerd-namespace` when set (containerd requires one).
    pub namespace: Option<String>,
    /// Snapshotter names per backend: ("overlay", "strata-overlay") or ("overlay", "overlayfs").
    pub snapshotters: Vec<(&'static str, String)>,
}

impl Target {
    /// Wraps a message with the namespace header.
    pub fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(msg);
        if let Some(ns) = &self.namespace {
            r.metadata_mut()
                .insert("containerd-namespace", ns.parse().expect("ascii namespace"));
        }
        r
    }

    /// The server-side name of a backend, if this target has it.
    pub fn snapshotter(&self, backend: &str) -> Option<&str> {
        self.snapshotters
            .iter()
            .find(|(b, _)| *b == backend)
            .map(|(_, n)| n.as_str())
    }
}

/// Connects to a unix socket.
pub async fn connect(socket: PathBuf) -> anyhow::Result<Channel> {
    let path = socket.clone();
    Endpoint::try_from("http://[::]:0")?
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .with_context(|| format!("connecting to {}", socket.display()))
}

/// Content and Snapshots clients on one channel with containerd's message limits.
pub fn clients(ch: Channel) -> (ContentClient<Channel>, SnapshotsClient<Channel>) {
    (
        ContentClient::new(ch.clone())
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
        SnapshotsClient::new(ch)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE),
    )
}
