//! Lazy layers read from the registry an image came from, by HTTP range requests
//! ([`strata_registry::RemoteBlob`]).

use std::io;
use std::sync::Arc;

use strata_registry::{ImageRef, Registry, RemoteBlob};
use tokio::runtime::Handle;

use super::labels::LayerRef;
use super::layout::Opener;
use crate::RangeSource;

impl RangeSource for RemoteBlob {
    fn size(&self) -> io::Result<u64> {
        Ok(RemoteBlob::size(self))
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        RemoteBlob::read_at(self, offset, buf)
    }
}

/// An [`Opener`] reading layers from their registries through `registry`, on runtime `rt`.
pub fn registry_opener(registry: Registry, rt: Handle) -> Opener {
    Arc::new(move |r: &LayerRef| {
        let image = ImageRef::parse(&r.image)
            .ok_or_else(|| io::Error::other(format!("unusable image reference {:?}", r.image)))?;
        let blob = RemoteBlob::open(registry.clone(), rt.clone(), image, &r.digest)?;
        Ok(Arc::new(blob) as Arc<dyn RangeSource>)
    })
}
