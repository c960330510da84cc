//! Which layer blob a chain ID names, read from the manifests and configs a view holds.
//!
//! containerd 2.x's Transfer service labels an import's Prepares with the chain ID alone
//! (`containerd.io/snapshot.ref`): no layer digest, no image. The image's manifest and config
//! are in Strata's content store by then (containerd wrote them through the proxy), so the
//! layer is found there. Each blob is read at most once: its kind (manifest, config, other)
//! is kept by digest, which names its bytes for good; whether the view still holds a blob is
//! asked again at each lookup.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use strata_content::ContentStore;
use strata_core::digest::Digest;

pub use strata_runtime::ChainLayer;
use strata_runtime::chain_layers;

/// Blobs larger than this are never manifests or configs (containerd's limit for both).
const MAX_JSON: u64 = 4 << 20;

/// The chain IDs of the manifests a store holds, learnt as its blobs are first seen.
#[derive(Clone, Default)]
pub struct Chains {
    inner: Arc<Mutex<Known>>,
}

#[derive(Default)]
struct Known {
    /// Every blob looked at, by digest.
    kinds: HashMap<Digest, Kind>,
    /// Chain ID to the layers of each image that has it and its place there (oldest first),
    /// for every manifest whose config has been seen. Images can share a chain ID with other
    /// blobs (an image and its zstd twin).
    chains: HashMap<String, Vec<Found>>,
    /// The manifests already in `chains`.
    indexed: HashSet<Digest>,
}

/// An image's layers and a place among them.
pub type Found = (Arc<[ChainLayer]>, usize);

enum Kind {
    Other,
    Manifest { config: Digest, layers: Vec<Digest> },
    Config { diff_ids: Vec<String> },
}

impl Chains {
    /// The layers of an image whose manifest and config `view` holds and that has the chain
    /// ID `chain`, with that layer's place among them: one whose layer blob the view holds
    /// (the newest known), else the newest (a pull that has not fetched it). Blocking: it may
    /// read the view's new small blobs.
    pub fn find(&self, store: &ContentStore, view: &str, chain: &str) -> Option<Found> {
        let held = |(image, at): &&Found| store.info(view, &image[*at].blob).is_ok();
        let mut known = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = known
            .chains
            .get(chain)
            .and_then(|c| c.iter().rev().find(held))
        {
            return Some(found.clone());
        }
        let infos = store.list(view, &[]).ok()?;
        let mut learnt = false;
        for info in infos {
            if known.kinds.contains_key(&info.digest) {
                continue;
            }
            let kind = match info.size <= MAX_JSON {
                true => classify(store, view, &info.digest),
                false => Kind::Other,
            };
            learnt |= !matches!(kind, Kind::Other);
            known.kinds.insert(info.digest, kind);
        }
        if learnt {
            known.index();
        }
        let found = known.chains.get(chain)?;
        found.iter().rev().find(held).or(found.last()).cloned()
    }
}

impl Known {
    /// Adds the chain IDs of every manifest not indexed yet whose config is known.
    fn index(&mut self) {
        let mut images = Vec::new();
        for (d, kind) in &self.kinds {
            let Kind::Manifest { config, layers } = kind else {
                continue;
            };
            let Some(Kind::Config { diff_ids }) = self.kinds.get(config) else {
                continue;
            };
            if diff_ids.len() != layers.len() || self.indexed.contains(d) {
                continue;
            }
            let image = chain_layers(diff_ids, layers);
            images.push((d.clone(), Arc::<[ChainLayer]>::from(image)));
        }
        for (d, image) in images {
            for (i, l) in image.iter().enumerate() {
                let found = self.chains.entry(l.chain.clone()).or_default();
                found.push((image.clone(), i));
            }
            self.indexed.insert(d);
        }
    }
}

/// What blob `d` is: a manifest, an image config, or anything else.
fn classify(store: &ContentStore, view: &str, d: &Digest) -> Kind {
    let Some(bytes) = read_small(store, view, d) else {
        return Kind::Other;
    };
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Kind::Other;
    };
    let digest_of =
        |v: &serde_json::Value| -> Option<Digest> { v.get("digest")?.as_str()?.parse().ok() };
    if let (Some(config), Some(layers)) = (v.get("config"), v.get("layers")) {
        let layers = layers
            .as_array()
            .and_then(|a| a.iter().map(digest_of).collect::<Option<Vec<_>>>());
        if let (Some(config), Some(layers)) = (digest_of(config), layers) {
            return Kind::Manifest { config, layers };
        }
    }
    let diff_ids = v
        .get("rootfs")
        .and_then(|r| r.get("diff_ids"))
        .and_then(|d| d.as_array())
        .and_then(|a| a.iter().map(|d| d.as_str().map(String::from)).collect());
    match diff_ids {
        Some(diff_ids) => Kind::Config { diff_ids },
        None => Kind::Other,
    }
}

/// The bytes of a small blob (its size checked by the caller) that starts like JSON.
fn read_small(store: &ContentStore, view: &str, d: &Digest) -> Option<Vec<u8>> {
    let bytes = store.reader(view, d).ok()?.read_to_vec().ok()?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    (first == Some(&b'{')).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use strata_runtime::chain_id;

    use super::*;

    fn sha(bytes: &[u8]) -> String {
        format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes))
        )
    }

    fn put(store: &ContentStore, bytes: &[u8]) -> Digest {
        let d: Digest = sha(bytes).parse().unwrap();
        let mut w = store
            .writer(
                "v",
                &format!("ref-{d}"),
                bytes.len() as u64,
                Some(d.clone()),
            )
            .unwrap();
        w.write(bytes).unwrap();
        w.commit(bytes.len() as u64, Some(&d), None).unwrap()
    }

    #[test]
    fn a_chain_id_names_its_layer_through_the_manifest_and_config_the_view_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = ContentStore::open(dir.path()).unwrap();
        let chains = Chains::default();
        let (l1, l2) = (
            put(&store, b"\x1f\x8blayer one"),
            put(&store, b"\x1f\x8blayer two"),
        );
        let (d1, d2) = (sha(b"tar one"), sha(b"tar two"));
        let config = serde_json::json!({"rootfs": {"type": "layers", "diff_ids": [d1, d2]}});
        let c = put(&store, config.to_string().as_bytes());
        let c2 = chain_id(&d1, &d2);
        // No manifest yet: nothing is known, and the lookup is asked again later.
        assert_eq!(chains.find(&store, "v", &c2), None);
        let layer = |d: &Digest| serde_json::json!({"digest": d.to_string(), "size": 1});
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "config": {"digest": c.to_string(), "size": 1},
            "layers": [layer(&l1), layer(&l2)],
        });
        put(&store, format!("  {manifest}").as_bytes());
        let (image, at) = chains.find(&store, "v", &c2).expect("found");
        assert_eq!(at, 1);
        assert_eq!(
            image[..],
            [
                ChainLayer {
                    blob: l1.clone(),
                    chain: d1.clone(),
                    parent: String::new()
                },
                ChainLayer {
                    blob: l2.clone(),
                    chain: c2.clone(),
                    parent: d1.clone()
                },
            ]
        );
        assert_eq!(chains.find(&store, "v", &d1).map(|(_, at)| at), Some(0));
        // A twin image (other blobs, same diff IDs): the one whose blob the view holds.
        let (t1, t2) = (
            put(&store, b"\x28\xb5\x2f\xfdone"),
            put(&store, b"\x28\xb5\x2f\xfdtwo"),
        );
        let twin = serde_json::json!({
            "schemaVersion": 2,
            "config": {"digest": c.to_string(), "size": 1},
            "layers": [layer(&t1), layer(&t2)],
        });
        put(&store, twin.to_string().as_bytes());
        assert_eq!(chains.find(&store, "v", &c2).unwrap().0[1].blob, l2);
        store.delete("v", &l2).unwrap();
        assert_eq!(chains.find(&store, "v", &c2).unwrap().0[1].blob, t2);
        store.delete("v", &t2).unwrap();
        // Neither blob held (a pull that has not fetched it): the newest image.
        assert_eq!(chains.find(&store, "v", &c2).unwrap().0[1].blob, t2);
        assert_eq!(chains.find(&store, "v", &sha(b"other")), None);
        // Another view holds none of it.
        assert_eq!(Chains::default().find(&store, "w", &c2), None);
    }
}
