//! `strata-lazy` on the runtime socket: the committed snapshot of a remote layer, made on the
//! unpacker's `Stat(chain ID)`.
//!
//! containerd 1.6's client unpack (`ctr images pull`, `image.Unpack`) asks `Stat(chain ID)`
//! before it prepares and applies each layer, and skips the layer when the snapshot exists.
//! When the chain ID is that of an eStargz / zstd:chunked layer (a TOC digest in the manifest)
//! of an image pulled from a registry (its manifest has a `distribution.source` label), held as
//! a remote blob ([`crate::remote`]) or already filled, the layer is prepared the way
//! containerd's remote-snapshotter protocol does it (`containerd.io/snapshot.ref` + the image,
//! layer and TOC digest labels), so the backend mounts it lazily — from the registry, or from
//! the content store's copy once there — and the unpack extracts nothing.

use std::future::Future;
use std::pin::Pin;

use strata_core::digest::Digest;
use strata_core::labels::Labels;
use strata_snapshotters::Info;

use crate::chain::chain_id;
use crate::gc::mark::Node;
use crate::remote::{RemoteRecord, layer_in_manifest, source_of};
use crate::snapshots::{SNAPSHOT_REF, lease_kind};
use crate::{Ctx, Error, Result, Runtime};

/// The backend that serves remote layers lazily.
pub const LAZY_SNAPSHOTTER: &str = "strata-lazy";
const CRI_IMAGE: &str = "containerd.io/snapshot/cri.image-ref";
const CRI_LAYER: &str = "containerd.io/snapshot/cri.layer-digest";
/// Where the layer's bytes appear once the content store's fill is done: strata-lazy takes
/// them from there instead of fetching the layer a second time (`strata_lazy`'s `STORE_BLOB`).
const STORE_BLOB: &str = "containerd.io/snapshot/strata.store-blob";

/// How many images' manifests a lookup reads at most (a namespace with more is searched only
/// that far).
const MAX_MANIFESTS: usize = 256;

/// A layer of an image in the namespace: its blob and the chain ID of the layers below it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ChainLayer {
    blob: Digest,
    parent: String,
    /// The manifest listing it.
    manifest: Digest,
}

type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Runtime {
    /// Makes the lazy committed snapshot `chain` of backend `sn` (canonical name `name`) when
    /// it is the chain ID of a remote layer of an image in the namespace (and its parent
    /// exists or can be made the same way); whether it did.
    pub(crate) fn lazy_stat<'a>(
        &'a self,
        ctx: &'a Ctx,
        sn: &'a str,
        name: &'a str,
        chain: &'a str,
    ) -> Boxed<'a, Result<Option<Info>>> {
        Box::pin(async move {
            let (rt, c, ch) = (self.clone(), ctx.clone(), chain.to_string());
            let found = tokio::task::spawn_blocking(move || rt.find_chain(&c, &ch))
                .await
                .map_err(|e| Error::Internal(format!("chain lookup: {e}")))??;
            let Some(layer) = found else {
                return Ok(None);
            };
            let Some(rec) = self.lazy_record(ctx, &layer)? else {
                return Ok(None);
            };
            let (_, b) = self.snapshotter(sn)?;
            if !layer.parent.is_empty()
                && b.stat(&ctx.view(), &layer.parent).await.is_err()
                && self
                    .lazy_stat(ctx, sn, name, &layer.parent)
                    .await?
                    .is_none()
            {
                return Ok(None);
            }
            let store_blob = self.store().blob_file(&layer.blob);
            let labels: Labels = [
                (STORE_BLOB, store_blob.to_string_lossy().as_ref()),
                (SNAPSHOT_REF, chain),
                (CRI_IMAGE, rec.image.as_str()),
                (CRI_LAYER, &layer.blob.to_string()),
                (crate::remote::TOC_DIGEST, rec.toc_digest.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            let _g = self.hold_async().await;
            let kind = lease_kind(sn, name);
            // The call's lease holds the layer from the moment it exists (the unpack labels
            // the image's config with the top layer only at its end).
            let had = self.leases().holds(ctx, &kind, chain)?;
            self.leases().attach(ctx, &kind, chain)?;
            let key = format!("extract-lazy-{}", chain);
            let made = match b.prepare(&ctx.view(), &key, &layer.parent, labels).await {
                Err(strata_snapshotters::Error::AlreadyExists(_)) => true,
                Ok(_) => {
                    // Not served lazily after all: an empty active snapshot is no layer.
                    let _ = b.remove(&ctx.view(), &key).await;
                    false
                }
                Err(e) => {
                    tracing::info!(chain, error = %e, "lazy layer not made; unpacking it");
                    false
                }
            };
            if !made {
                // The lease names no snapshot that does not exist (as `create` leaves it).
                if !had {
                    self.leases().detach(ctx, &kind, chain)?;
                }
                return Ok(None);
            }
            self.changed([Node::snapshot(&ctx.namespace, name, chain)], false);
            Ok(b.stat(&ctx.view(), chain).await.ok())
        })
    }

    /// What serving `layer` lazily needs: its remote record, or for a blob the namespace
    /// holds, the same taken from the manifest that lists it.
    fn lazy_record(&self, ctx: &Ctx, layer: &ChainLayer) -> Result<Option<RemoteRecord>> {
        if let Some(rec) = self.remote().get(&ctx.namespace, &layer.blob)? {
            return Ok(Some(rec));
        }
        let view = ctx.view();
        if self.store().info(&view, &layer.blob).is_err() {
            return Ok(None);
        }
        let Ok(m) = self.store().info(&view, &layer.manifest) else {
            return Ok(None);
        };
        let Some(image) = source_of(&m.labels) else {
            return Ok(None);
        };
        let Some(bytes) = self.small_blob(ctx, &layer.manifest) else {
            return Ok(None);
        };
        Ok(layer_in_manifest(&bytes, &layer.blob.to_string(), image))
    }

    /// The image layer of the namespace whose chain ID is `chain` (blocking).
    fn find_chain(&self, ctx: &Ctx, chain: &str) -> Result<Option<ChainLayer>> {
        let mut manifests = Vec::new();
        for img in self.images().list(ctx, &[])? {
            let Ok(d) = img.target.digest.parse::<Digest>() else {
                continue;
            };
            self.manifests_of(ctx, &d, &mut manifests);
            if manifests.len() >= MAX_MANIFESTS {
                break;
            }
        }
        for (d, m) in manifests {
            if let Some(found) = self.chain_in_manifest(ctx, d, &m, chain) {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    /// The manifests `d` is or lists (those the namespace holds).
    pub(crate) fn manifests_of(
        &self,
        ctx: &Ctx,
        d: &Digest,
        out: &mut Vec<(Digest, serde_json::Value)>,
    ) {
        let Some(v) = self.json_blob(ctx, d) else {
            return;
        };
        match v.get("manifests").and_then(|m| m.as_array()) {
            Some(children) => {
                for c in children {
                    if let Some(cd) = c.get("digest").and_then(|d| d.as_str())
                        && let Ok(cd) = cd.parse::<Digest>()
                        && let Some(m) = self.json_blob(ctx, &cd)
                        && m.get("layers").is_some()
                    {
                        out.push((cd, m));
                    }
                }
            }
            None if v.get("layers").is_some() => out.push((d.clone(), v)),
            None => {}
        }
    }

    fn chain_in_manifest(
        &self,
        ctx: &Ctx,
        manifest: Digest,
        m: &serde_json::Value,
        chain: &str,
    ) -> Option<ChainLayer> {
        let config: Digest = m.get("config")?.get("digest")?.as_str()?.parse().ok()?;
        let config = self.json_blob(ctx, &config)?;
        let diffs = config.get("rootfs")?.get("diff_ids")?.as_array()?;
        let layers = m.get("layers")?.as_array()?;
        let mut parent = String::new();
        for (diff, layer) in diffs.iter().zip(layers) {
            let id = chain_id(&parent, diff.as_str()?);
            if id == chain {
                let blob = layer.get("digest")?.as_str()?.parse().ok()?;
                return Some(ChainLayer {
                    blob,
                    parent,
                    manifest,
                });
            }
            parent = id;
        }
        None
    }

    /// Blob `d` of the namespace as JSON, when it is there, small and JSON.
    pub(crate) fn json_blob(&self, ctx: &Ctx, d: &Digest) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.small_blob(ctx, d)?).ok()
    }

    /// The bytes of blob `d` of the namespace, when it is there and at most 4 MiB
    /// ([`crate::remote::MAX_MANIFEST`]).
    pub(crate) fn small_blob(&self, ctx: &Ctx, d: &Digest) -> Option<Vec<u8>> {
        let r = self.store().reader(&ctx.view(), d).ok()?;
        if r.size() > crate::remote::MAX_MANIFEST {
            return None;
        }
        r.read_to_vec().ok()
    }
}
