//! `containerd.services.version.v1.Version`: the containerd API level Strata serves, with
//! Strata's own version as build metadata (`1.6.20+strata.<version>`), so clients that parse a
//! containerd version see the API they talk to.

use tonic::{Request, Response, Status};

use crate::api::version::VersionResponse;
use crate::api::version::version_server::Version;

/// The containerd release whose APIs the runtime socket implements.
pub const CONTAINERD_API: &str = "1.6.20";

/// What `ctr version` prints as the server's version.
pub fn version() -> String {
    format!("{CONTAINERD_API}+strata.{}", env!("CARGO_PKG_VERSION"))
}

#[derive(Clone, Default)]
pub struct VersionService;

#[tonic::async_trait]
impl Version for VersionService {
    async fn version(&self, _: Request<()>) -> Result<Response<VersionResponse>, Status> {
        Ok(Response::new(VersionResponse {
            version: version(),
            revision: format!("strata-proxy {}", env!("CARGO_PKG_VERSION")),
        }))
    }
}
