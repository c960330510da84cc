//! The runtime socket: containerd 1.6's own services over [`strata_runtime::Runtime`], so
//! stock `ctr` and containerd's Go client use Strata as if it were containerd. One thin file
//! per service; namespaces come from the `containerd-namespace` header (required), leases from
//! `containerd-lease`.

mod containers;
mod content;
pub mod convert;
mod diff;
mod events;
mod fetch;
mod images;
mod introspection;
mod leases;
mod namespaces;
mod snapshots;
mod tasks;
pub mod version;

use std::path::Path;

use strata_runtime::Runtime;
use tonic::service::Routes;

pub use content::RuntimeContent;
pub use fetch::RegistryFetcher;
pub use snapshots::RuntimeSnapshots;

use crate::api::containers::containers_server::ContainersServer;
use crate::api::content::content_server::ContentServer;
use crate::api::diff::diff_server::DiffServer;
use crate::api::events_service::events_server::EventsServer;
use crate::api::images::images_server::ImagesServer;
use crate::api::introspection::introspection_server::IntrospectionServer;
use crate::api::leases::leases_server::LeasesServer;
use crate::api::namespaces::namespaces_server::NamespacesServer;
use crate::api::snapshots::snapshots_server::SnapshotsServer;
use crate::api::tasks::tasks_server::TasksServer;
use crate::api::version::version_server::VersionServer;
use crate::content_service::ContentService;
use crate::server::MAX_MESSAGE;
use crate::snapshots_service::SnapshotsService;
use crate::stopping::Stopping;

/// Every service of the runtime socket, ready to serve.
pub async fn routes(rt: &Runtime, root: &Path, stopping: Stopping) -> anyhow::Result<Routes> {
    let (backends, disabled) = rt.backends();
    let names: Vec<String> = backends.keys().cloned().collect();
    let off: Vec<(String, String)> = disabled
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let intro = introspection::IntrospectionService::new(root, &names, &off)?;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    macro_rules! sized {
        ($s:expr) => {
            $s.max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE)
        };
    }
    let mut routes = Routes::new(health);
    routes = routes
        .add_service(VersionServer::new(version::VersionService))
        .add_service(IntrospectionServer::new(intro))
        .add_service(sized!(NamespacesServer::new(
            namespaces::NamespacesService::new(rt.clone())
        )))
        .add_service(sized!(ImagesServer::new(images::ImagesService::new(
            rt.clone()
        ))))
        .add_service(sized!(LeasesServer::new(leases::LeasesService::new(
            rt.clone()
        ))))
        .add_service(sized!(ContainersServer::new(
            containers::ContainersService::new(rt.clone())
        )))
        .add_service(sized!(EventsServer::new(events::EventsService::new(
            rt.clone(),
            stopping.clone()
        ))))
        .add_service(sized!(DiffServer::new(diff::DiffService::new(rt.clone()))))
        .add_service(sized!(TasksServer::new(tasks::TasksService::new(
            rt.clone(),
            stopping
        ))))
        .add_service(sized!(ContentServer::new(ContentService::new(
            RuntimeContent::new(rt.clone())
        ))))
        .add_service(sized!(SnapshotsServer::new(SnapshotsService::new(
            RuntimeSnapshots::new(rt.clone())
        ))));
    Ok(routes)
}
