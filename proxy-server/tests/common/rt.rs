//! Clients of the runtime socket in one namespace (and optionally under a lease), the way
//! containerd's Go client calls it: `containerd-namespace` / `containerd-lease` headers.

use std::collections::HashMap;

use strata_proxy::api::containers::containers_client::ContainersClient;
use strata_proxy::api::containers::{Container, CreateContainerRequest, container};
use strata_proxy::api::content::content_client::ContentClient;
use strata_proxy::api::content::{ListContentRequest, ReadContentRequest, WriteContentRequest};
use strata_proxy::api::images::images_client::ImagesClient;
use strata_proxy::api::images::{CreateImageRequest, Image};
use strata_proxy::api::leases::leases_client::LeasesClient;
use strata_proxy::api::leases::{CreateRequest, DeleteRequest};
use strata_proxy::api::snapshots::snapshots_client::SnapshotsClient;
use strata_proxy::api::snapshots::{
    CommitSnapshotRequest, ListSnapshotsRequest, PrepareSnapshotRequest,
};
use strata_proxy::api::types::Descriptor;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Request;
use tonic::transport::Channel;

use super::{commit, digest_of, stat, write};

/// One namespace of the runtime socket.
#[derive(Clone)]
pub struct Rt {
    pub ch: Channel,
    pub ns: String,
}

impl Rt {
    pub fn new(ch: Channel, ns: &str) -> Rt {
        Rt {
            ch,
            ns: ns.to_string(),
        }
    }

    /// `msg` with this namespace's header, and the lease's when given.
    pub fn req<T>(&self, msg: T, lease: Option<&str>) -> Request<T> {
        let mut r = Request::new(msg);
        r.metadata_mut()
            .insert("containerd-namespace", self.ns.parse().unwrap());
        if let Some(l) = lease {
            r.metadata_mut()
                .insert("containerd-lease", l.parse().unwrap());
        }
        r
    }

    pub fn content(&self) -> ContentClient<Channel> {
        ContentClient::new(self.ch.clone()).max_decoding_message_size(16 << 20)
    }

    pub fn snapshots(&self) -> SnapshotsClient<Channel> {
        SnapshotsClient::new(self.ch.clone())
    }

    pub fn leases(&self) -> LeasesClient<Channel> {
        LeasesClient::new(self.ch.clone())
    }

    pub fn images(&self) -> ImagesClient<Channel> {
        ImagesClient::new(self.ch.clone())
    }

    pub fn containers(&self) -> ContainersClient<Channel> {
        ContainersClient::new(self.ch.clone())
    }

    pub async fn create_lease(&self, id: &str) {
        let req = self.req(
            CreateRequest {
                id: id.into(),
                labels: HashMap::new(),
            },
            None,
        );
        self.leases().create(req).await.unwrap();
    }

    /// Deletes a lease; with `sync` the reply comes after a garbage collection pass.
    pub async fn delete_lease(&self, id: &str, sync: bool) -> Result<(), tonic::Status> {
        let req = self.req(
            DeleteRequest {
                id: id.into(),
                sync,
            },
            None,
        );
        self.leases().delete(req).await.map(drop)
    }

    /// Writes and commits `data` (with `labels`) in one Write stream; returns its digest.
    pub async fn put(&self, lease: Option<&str>, data: &[u8], labels: &[(&str, &str)]) -> String {
        let d = digest_of(data);
        let (tx, rx) = mpsc::channel::<WriteContentRequest>(4);
        let n = data.len() as i64;
        let mut last = commit(n, n, &d);
        last.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for m in [stat(&format!("ref-{d}"), n, &d), write(0, data), last] {
            tx.send(m).await.unwrap();
        }
        drop(tx);
        let req = self.req(ReceiverStream::new(rx), lease);
        let mut replies = self.content().write(req).await.unwrap().into_inner();
        let mut digest = String::new();
        while let Some(r) = replies.message().await.unwrap() {
            digest = r.digest;
        }
        assert_eq!(digest, d);
        d
    }

    /// The whole blob `d`.
    pub async fn read(&self, d: &str) -> Result<Vec<u8>, tonic::Status> {
        let req = self.req(
            ReadContentRequest {
                digest: d.into(),
                offset: 0,
                size: 0,
            },
            None,
        );
        let mut s = self.content().read(req).await?.into_inner();
        let mut out = Vec::new();
        while let Some(m) = s.message().await? {
            out.extend_from_slice(&m.data);
        }
        Ok(out)
    }

    /// Digests of every blob of the namespace.
    pub async fn blobs(&self) -> Vec<String> {
        let req = self.req(ListContentRequest { filters: vec![] }, None);
        let mut s = self.content().list(req).await.unwrap().into_inner();
        let mut out = Vec::new();
        while let Some(m) = s.message().await.unwrap() {
            out.extend(m.info.into_iter().map(|i| i.digest));
        }
        out.sort();
        out
    }

    pub async fn prepare(&self, lease: Option<&str>, sn: &str, key: &str, parent: &str) {
        let msg = PrepareSnapshotRequest {
            snapshotter: sn.into(),
            key: key.into(),
            parent: parent.into(),
            labels: HashMap::new(),
        };
        self.snapshots()
            .prepare(self.req(msg, lease))
            .await
            .unwrap();
    }

    pub async fn commit(&self, lease: Option<&str>, sn: &str, name: &str, key: &str) {
        let msg = CommitSnapshotRequest {
            snapshotter: sn.into(),
            name: name.into(),
            key: key.into(),
            labels: HashMap::new(),
        };
        self.snapshots().commit(self.req(msg, lease)).await.unwrap();
    }

    /// Names of every snapshot of the namespace in `sn`.
    pub async fn snapshots_of(&self, sn: &str) -> Vec<String> {
        let msg = ListSnapshotsRequest {
            snapshotter: sn.into(),
            filters: vec![],
        };
        let mut s = self
            .snapshots()
            .list(self.req(msg, None))
            .await
            .unwrap()
            .into_inner();
        let mut out = Vec::new();
        while let Some(m) = s.message().await.unwrap() {
            out.extend(m.info.into_iter().map(|i| i.name));
        }
        out.sort();
        out
    }

    /// An image named `name` whose target is the blob `target` of `size` bytes.
    pub async fn create_image(&self, name: &str, target: &str, size: i64) {
        let image = Image {
            name: name.into(),
            target: Some(Descriptor {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                digest: target.into(),
                size,
                annotations: HashMap::new(),
            }),
            ..Image::default()
        };
        let req = self.req(CreateImageRequest { image: Some(image) }, None);
        self.images().create(req).await.unwrap();
    }

    /// A container record on snapshot `key` of `sn`.
    pub async fn create_container(&self, id: &str, sn: &str, key: &str) {
        let c = Container {
            id: id.into(),
            runtime: Some(container::Runtime {
                name: "io.containerd.runc.v2".into(),
                options: None,
            }),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: b"{}".to_vec(),
            }),
            snapshotter: sn.into(),
            snapshot_key: key.into(),
            ..Container::default()
        };
        let req = self.req(CreateContainerRequest { container: Some(c) }, None);
        self.containers().create(req).await.unwrap();
    }
}
