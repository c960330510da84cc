//! The event exchange: what the runtime publishes when objects change (containerd's topics and
//! payloads), fanned out to every subscriber. A subscriber that falls more than
//! [`BACKLOG`] events behind loses the oldest ones (logged), never blocks a publisher.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use strata_core::filters::Adaptor;
use strata_core::labels::Labels;
use tokio::sync::broadcast;

/// A protobuf `Any` as bytes: its type URL and encoded value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AnyValue {
    pub type_url: String,
    #[serde(with = "hex_bytes")]
    pub value: Vec<u8>,
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(s).map_err(serde::de::Error::custom)
    }
}

/// An event payload (containerd's `api/events` messages), or one a client published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    NamespaceCreate {
        name: String,
        labels: Labels,
    },
    NamespaceUpdate {
        name: String,
        labels: Labels,
    },
    NamespaceDelete {
        name: String,
    },
    ImageCreate {
        name: String,
        labels: Labels,
    },
    ImageUpdate {
        name: String,
        labels: Labels,
    },
    ImageDelete {
        name: String,
    },
    ContainerCreate {
        id: String,
        image: String,
        runtime: String,
        runtime_options: Option<AnyValue>,
    },
    ContainerUpdate {
        id: String,
        image: String,
        labels: Labels,
        snapshot_key: String,
    },
    ContainerDelete {
        id: String,
    },
    ContentDelete {
        digest: String,
    },
    SnapshotPrepare {
        key: String,
        parent: String,
    },
    SnapshotCommit {
        key: String,
        name: String,
    },
    SnapshotRemove {
        key: String,
    },
    /// A task's process changed (`/tasks/*`).
    Task(crate::tasks::TaskEvent),
    /// Published by a client (Events.Publish/Forward): kept as it came.
    Opaque(AnyValue),
}

impl Event {
    /// containerd's topic for a runtime event (`/images/create`, ...); empty for
    /// [`Event::Opaque`], whose topic the publisher names.
    pub fn topic(&self) -> &'static str {
        match self {
            Event::NamespaceCreate { .. } => "/namespaces/create",
            Event::NamespaceUpdate { .. } => "/namespaces/update",
            Event::NamespaceDelete { .. } => "/namespaces/delete",
            Event::ImageCreate { .. } => "/images/create",
            Event::ImageUpdate { .. } => "/images/update",
            Event::ImageDelete { .. } => "/images/delete",
            Event::ContainerCreate { .. } => "/containers/create",
            Event::ContainerUpdate { .. } => "/containers/update",
            Event::ContainerDelete { .. } => "/containers/delete",
            Event::ContentDelete { .. } => "/content/delete",
            Event::SnapshotPrepare { .. } => "/snapshot/prepare",
            Event::SnapshotCommit { .. } => "/snapshot/commit",
            Event::SnapshotRemove { .. } => "/snapshot/remove",
            Event::Task(t) => t.topic(),
            Event::Opaque(_) => "",
        }
    }

    /// A payload field by containerd's field path (`name`, `labels.<k>`, ...).
    fn field(&self, path: &[String]) -> Option<String> {
        let first = path.first()?.as_str();
        let labels = |l: &Labels| l.get(&path[1..].join(".")).cloned();
        match (self, first) {
            (Event::NamespaceCreate { name, .. }, "name")
            | (Event::NamespaceUpdate { name, .. }, "name")
            | (Event::NamespaceDelete { name }, "name")
            | (Event::ImageCreate { name, .. }, "name")
            | (Event::ImageUpdate { name, .. }, "name")
            | (Event::ImageDelete { name }, "name")
            | (Event::SnapshotCommit { name, .. }, "name") => Some(name.clone()),
            (Event::NamespaceCreate { labels: l, .. }, "labels")
            | (Event::NamespaceUpdate { labels: l, .. }, "labels")
            | (Event::ImageCreate { labels: l, .. }, "labels")
            | (Event::ImageUpdate { labels: l, .. }, "labels")
            | (Event::ContainerUpdate { labels: l, .. }, "labels") => labels(l),
            (Event::ContainerCreate { id, .. }, "id")
            | (Event::ContainerUpdate { id, .. }, "id")
            | (Event::ContainerDelete { id }, "id") => Some(id.clone()),
            (Event::ContainerCreate { image, .. }, "image")
            | (Event::ContainerUpdate { image, .. }, "image") => Some(image.clone()),
            (Event::ContainerUpdate { snapshot_key, .. }, "snapshot_key") => {
                Some(snapshot_key.clone())
            }
            (Event::ContentDelete { digest }, "digest") => Some(digest.clone()),
            (Event::SnapshotPrepare { key, .. }, "key")
            | (Event::SnapshotCommit { key, .. }, "key")
            | (Event::SnapshotRemove { key }, "key") => Some(key.clone()),
            (Event::SnapshotPrepare { parent, .. }, "parent") => Some(parent.clone()),
            (Event::Task(t), f) => t.field(f),
            _ => None,
        }
    }
}

/// An event as subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub timestamp: SystemTime,
    pub namespace: String,
    pub topic: String,
    pub event: Event,
}

/// Filter fields of an envelope: `topic`, `namespace`, `event.<payload field>`.
impl Adaptor for Envelope {
    fn field(&self, path: &[String]) -> Option<String> {
        match path.first().map(String::as_str) {
            Some("topic") => Some(self.topic.clone()),
            Some("namespace") => Some(self.namespace.clone()),
            Some("event") => self.event.field(&path[1..]),
            _ => None,
        }
    }
}

/// How many events a slow subscriber may fall behind before it loses some.
pub const BACKLOG: usize = 4096;

/// Fan-out of events to subscribers.
#[derive(Clone)]
pub struct Exchange {
    tx: broadcast::Sender<Envelope>,
}

impl Default for Exchange {
    fn default() -> Self {
        Exchange {
            tx: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Exchange {
    /// Publishes `event` in `namespace` under its own topic, stamped now.
    pub fn publish(&self, namespace: &str, event: Event) {
        let topic = event.topic().to_string();
        self.forward(Envelope {
            timestamp: SystemTime::now(),
            namespace: namespace.to_string(),
            topic,
            event,
        });
    }

    /// Publishes an envelope as it is.
    pub fn forward(&self, envelope: Envelope) {
        // No subscriber is not an error: the event simply has no audience.
        let _ = self.tx.send(envelope);
    }

    /// A receiver of every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Envelope> {
        self.tx.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::filters::parse_all;

    #[test]
    fn envelopes_filter_on_topic_namespace_and_payload() {
        let ex = Exchange::default();
        let mut rx = ex.subscribe();
        ex.publish(
            "ns1",
            Event::ImageCreate {
                name: "img".into(),
                labels: [("a".to_string(), "b".to_string())].into(),
            },
        );
        let env = rx.try_recv().unwrap();
        assert_eq!(env.topic, "/images/create");
        for (f, want) in [
            ("topic==\"/images/create\"", true),
            ("topic~=/images/", true),
            ("namespace==ns1", true),
            ("namespace==ns2", false),
            ("event.name==img", true),
            ("event.labels.a==b", true),
            ("event.id", false),
        ] {
            assert_eq!(parse_all(&[f]).unwrap().matches(&env), want, "{f}");
        }
    }
}
