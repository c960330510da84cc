//! The runtime's [`BlobFetcher`] (the layers it keeps remote): Strata's registry client.

use std::io::{self, Read};

use strata_registry::{ImageRef, Registry};
use strata_runtime::BlobFetcher;
use tokio::runtime::Handle;

/// Fetches blobs with `registry` on the tokio runtime `rt`; called from blocking threads.
pub struct RegistryFetcher {
    registry: Registry,
    rt: Handle,
}

impl RegistryFetcher {
    pub fn new(registry: Registry, rt: Handle) -> Self {
        RegistryFetcher { registry, rt }
    }

    /// The references to try for `image`: itself, and when its host has no port (containerd's
    /// `distribution.source` label drops it) the same repository on each configured
    /// `host:port` of that host name.
    fn candidates(&self, image: &str) -> io::Result<Vec<(String, ImageRef)>> {
        let r = ImageRef::parse(image)
            .ok_or_else(|| io::Error::other(format!("invalid image reference {image:?}")))?;
        let mut out = vec![(image.to_string(), r.clone())];
        if !r.host.contains(':') {
            let c = self.registry.config();
            for host in c.plain_http.iter().chain(c.hosts.keys()) {
                if host.split(':').next() == Some(r.host.as_str()) && *host != r.host {
                    let full = format!("{host}/{}", r.repository);
                    let with_port = ImageRef {
                        host: host.clone(),
                        repository: r.repository.clone(),
                    };
                    out.push((full, with_port));
                }
            }
        }
        Ok(out)
    }
}

impl BlobFetcher for RegistryFetcher {
    fn locate(&self, image: &str, digest: &str) -> io::Result<(String, u64)> {
        let mut last = None;
        for (name, r) in self.candidates(image)? {
            match self.rt.block_on(self.registry.blob_size(&r, digest)) {
                Ok(size) => return Ok((name, size)),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("no candidate registry")))
    }

    fn open(&self, image: &str, digest: &str) -> io::Result<Box<dyn Read + Send>> {
        let r = ImageRef::parse(image)
            .ok_or_else(|| io::Error::other(format!("invalid image reference {image:?}")))?;
        Ok(Box::new(self.registry.open_blob(&self.rt, &r, digest)?))
    }
}
