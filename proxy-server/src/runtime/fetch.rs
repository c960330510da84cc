//! The runtime's [`BlobFetcher`] (the layers it keeps remote): Strata's registry client.

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use strata_lazy::backend::{Activity, Yielding};
use strata_registry::{ImageRef, Registry};
use strata_runtime::BlobFetcher;
use tokio::runtime::Handle;

/// Fetches blobs with `registry` on the tokio runtime `rt`; called from blocking threads.
pub struct RegistryFetcher {
    registry: Registry,
    rt: Handle,
    activity: Option<Arc<Activity>>,
    /// Set by [`BlobFetcher::cancel`]: whole-blob reads stop before their next piece.
    cancelled: Arc<AtomicBool>,
}

impl RegistryFetcher {
    pub fn new(registry: Registry, rt: Handle) -> Self {
        RegistryFetcher {
            registry,
            rt,
            activity: None,
            cancelled: Arc::default(),
        }
    }

    /// Whole blobs (the runtime's background fills) are read in pieces, each after
    /// [`Activity::yield_to_readers`]: lazy layers' on-demand reads from the registry go first,
    /// as the lazy backend's own fills do; [`BlobFetcher::locate`] (a pull claiming a layer)
    /// marks `activity` as such a read.
    pub fn with_activity(mut self, activity: Arc<Activity>) -> Self {
        self.activity = Some(activity);
        self
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
        // A pull is asking (the runtime claims a layer while the client fetches): fills wait
        // for it as for an on-demand read, so they start once the pull's own requests stop.
        if let Some(a) = &self.activity {
            a.reading();
        }
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
        let body = self.registry.open_blob(&self.rt, &r, digest)?;
        Ok(match &self.activity {
            Some(a) => Box::new(Yielding::new(body, a.clone(), self.cancelled.clone())),
            None => Box::new(body),
        })
    }

    fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }
}
