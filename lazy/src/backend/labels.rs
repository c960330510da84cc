//! Which layer a Prepare asks for, from the labels containerd's unpacker passes (the layer
//! descriptor's annotations that start with `containerd.io/snapshot/`, plus `snapshot.ref`).

use serde::{Deserialize, Serialize};
use strata_snapshotters::Labels;

use crate::estargz::TOC_DIGEST_ANNOTATION;

/// The label naming the committed snapshot a Prepare is meant to become (the chain ID).
pub const SNAPSHOT_REF: &str = "containerd.io/snapshot.ref";
const STARGZ_IMAGE: &str = "containerd.io/snapshot/remote/stargz.reference";
const STARGZ_LAYER: &str = "containerd.io/snapshot/remote/stargz.digest";
const CRI_IMAGE: &str = "containerd.io/snapshot/cri.image-ref";
const CRI_LAYER: &str = "containerd.io/snapshot/cri.layer-digest";
/// Where the layer blob will appear once another fetch of it is done (Strata's runtime sets it
/// for layers its content store fills): the layer is taken from there, verified, instead of
/// being fetched from the registry a second time.
pub const STORE_BLOB: &str = "containerd.io/snapshot/strata.store-blob";

/// A lazily served layer: where it lives and how to check it. Kept as `lazy.json` in the
/// snapshot's directory, so a restarted daemon serves it again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// The image reference (`127.0.0.1:5000/x/y:tag`).
    pub image: String,
    /// The layer blob's digest.
    pub digest: String,
    /// The TOC JSON's digest (the layer's `containerd.io/snapshot/stargz/toc.digest`).
    pub toc_digest: String,
    /// The file another fetch of the layer fills ([`STORE_BLOB`]): the background fill takes
    /// the layer from there (checked against `digest`) instead of from the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_blob: Option<std::path::PathBuf>,
}

impl LayerRef {
    /// The layer `labels` describe, when they name an image, a layer digest and a TOC digest
    /// (stargz's `remote/stargz.*` labels, or the CRI plugin's `cri.*`).
    pub fn from_labels(labels: &Labels) -> Option<LayerRef> {
        let get = |a: &str, b: &str| labels.get(a).or_else(|| labels.get(b)).cloned();
        Some(LayerRef {
            image: get(STARGZ_IMAGE, CRI_IMAGE)?,
            digest: get(STARGZ_LAYER, CRI_LAYER)?,
            toc_digest: labels.get(TOC_DIGEST_ANNOTATION)?.clone(),
            store_blob: labels.get(STORE_BLOB).map(Into::into),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_layer_needs_an_image_a_digest_and_a_toc_digest() {
        let full = [
            (STARGZ_IMAGE, "127.0.0.1:5000/a:1"),
            (STARGZ_LAYER, "sha256:aa"),
            (TOC_DIGEST_ANNOTATION, "sha256:bb"),
        ];
        assert_eq!(
            LayerRef::from_labels(&labels(&full)),
            Some(LayerRef {
                image: "127.0.0.1:5000/a:1".into(),
                digest: "sha256:aa".into(),
                toc_digest: "sha256:bb".into(),
                store_blob: None,
            })
        );
        let cri = [
            (CRI_IMAGE, "127.0.0.1:5000/a:1"),
            (CRI_LAYER, "sha256:aa"),
            (TOC_DIGEST_ANNOTATION, "sha256:bb"),
        ];
        assert!(LayerRef::from_labels(&labels(&cri)).is_some());
        for missing in 0..3 {
            let mut l = full.to_vec();
            l.remove(missing);
            assert_eq!(LayerRef::from_labels(&labels(&l)), None);
        }
    }
}
