//! OCI chain IDs, and the layers of an image they name.

use sha2::{Digest as _, Sha256};
use strata_core::digest::Digest;

/// The OCI chain ID of `diff` on `parent` (`""` for the first layer).
pub fn chain_id(parent: &str, diff: &str) -> String {
    if parent.is_empty() {
        return diff.to_string();
    }
    let h = Sha256::digest(format!("{parent} {diff}").as_bytes());
    format!("sha256:{}", hex::encode(h))
}

/// A layer of an image: its blob, its chain ID and that of the layers below it (`""` for the
/// first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainLayer {
    pub blob: Digest,
    pub chain: String,
    pub parent: String,
}

/// The layers of an image whose config lists `diff_ids` and whose manifest lists `blobs`, in
/// order (as far as both go: the caller checks that they list as many).
pub fn chain_layers<S: AsRef<str>>(diff_ids: &[S], blobs: &[Digest]) -> Vec<ChainLayer> {
    let mut parent = String::new();
    let mut out = Vec::with_capacity(blobs.len());
    for (diff, blob) in diff_ids.iter().zip(blobs) {
        let chain = chain_id(&parent, diff.as_ref());
        out.push(ChainLayer {
            blob: blob.clone(),
            chain: chain.clone(),
            parent,
        });
        parent = chain;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_oci_definition() {
        let a = "sha256:aaaa";
        assert_eq!(chain_id("", a), a);
        let want = format!(
            "sha256:{}",
            hex::encode(Sha256::digest(b"sha256:aaaa sha256:bbbb"))
        );
        assert_eq!(chain_id(a, "sha256:bbbb"), want);
    }

    #[test]
    fn each_layer_names_the_chain_below_it() {
        let blobs: Vec<Digest> = ["sha256:01", "sha256:02"]
            .iter()
            .map(|d| format!("{d}{}", "0".repeat(62)).parse().unwrap())
            .collect();
        let layers = chain_layers(&["sha256:aa", "sha256:bb"], &blobs);
        assert_eq!(layers.len(), 2);
        assert_eq!(
            (layers[0].chain.as_str(), layers[0].parent.as_str()),
            ("sha256:aa", "")
        );
        assert_eq!(layers[1].parent, "sha256:aa");
        assert_eq!(layers[1].chain, chain_id("sha256:aa", "sha256:bb"));
        assert_eq!(layers[1].blob, blobs[1]);
    }
}
