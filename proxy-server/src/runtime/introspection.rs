//! `containerd.services.introspection.v1.Introspection`: the plugins the runtime socket serves
//! (one per containerd plugin it stands in for; a disabled backend carries its reason as
//! `init_err`), and the daemon's UUID, kept in `<root>/uuid` across restarts.

use std::path::Path;

use strata_core::filters::{Adaptor, parse_all};
use tonic::{Request, Response, Status};

use crate::api::google::rpc;
use crate::api::introspection::introspection_server::Introspection;
use crate::api::introspection::*;
use crate::api::types::Platform;

#[derive(Clone)]
pub struct IntrospectionService {
    plugins: Vec<Plugin>,
    uuid: String,
}

impl IntrospectionService {
    /// `backends`: the running snapshotters; `disabled`: the others with their reasons.
    pub fn new(
        root: &Path,
        backends: &[String],
        disabled: &[(String, String)],
    ) -> std::io::Result<Self> {
        Ok(IntrospectionService {
            plugins: plugins(root, backends, disabled),
            uuid: load_uuid(root)?,
        })
    }
}

fn plugin(kind: &str, id: &str, requires: &[&str]) -> Plugin {
    Plugin {
        r#type: kind.to_string(),
        id: id.to_string(),
        requires: requires.iter().map(|s| s.to_string()).collect(),
        ..Plugin::default()
    }
}

fn plugins(root: &Path, backends: &[String], disabled: &[(String, String)]) -> Vec<Plugin> {
    let host = Platform {
        os: "linux".into(),
        architecture: std::env::consts::ARCH
            .replace("x86_64", "amd64")
            .replace("aarch64", "arm64"),
        variant: String::new(),
    };
    let mut out = vec![
        plugin("io.containerd.content.v1", "content", &[]),
        plugin(
            "io.containerd.metadata.v1",
            "strata",
            &["io.containerd.content.v1", "io.containerd.snapshotter.v1"],
        ),
        plugin(
            "io.containerd.gc.v1",
            "scheduler",
            &["io.containerd.metadata.v1"],
        ),
        plugin("io.containerd.event.v1", "exchange", &[]),
    ];
    for b in backends {
        let mut p = plugin("io.containerd.snapshotter.v1", b, &[]);
        p.platforms = vec![host.clone()];
        p.exports.insert(
            "root".into(),
            crate::backends::dir(root)
                .join(b.trim_start_matches("strata-"))
                .display()
                .to_string(),
        );
        out.push(p);
    }
    for (b, reason) in disabled {
        let mut p = plugin("io.containerd.snapshotter.v1", b, &[]);
        p.platforms = vec![host.clone()];
        p.init_err = Some(rpc::Status {
            code: tonic::Code::Unavailable as i32,
            message: reason.clone(),
            details: vec![],
        });
        out.push(p);
    }
    for s in [
        "containers",
        "content",
        "images",
        "leases",
        "namespaces",
        "snapshots",
    ] {
        out.push(plugin(
            "io.containerd.service.v1",
            &format!("{s}-service"),
            &["io.containerd.metadata.v1"],
        ));
    }
    for s in [
        "containers",
        "content",
        "events",
        "healthcheck",
        "images",
        "introspection",
        "leases",
        "namespaces",
        "snapshots",
        "version",
    ] {
        out.push(plugin(
            "io.containerd.grpc.v1",
            s,
            &["io.containerd.service.v1"],
        ));
    }
    out
}

/// Filter fields of a plugin: `type`, `id`, `platforms` (`os/arch`).
struct Fields<'a>(&'a Plugin);

impl Adaptor for Fields<'_> {
    fn field(&self, path: &[String]) -> Option<String> {
        let p = self.0;
        match path.first().map(String::as_str)? {
            "type" => Some(p.r#type.clone()),
            "id" => Some(p.id.clone()),
            "platforms" => p
                .platforms
                .first()
                .map(|x| format!("{}/{}", x.os, x.architecture)),
            _ => None,
        }
    }
}

/// The UUID in `<root>/uuid`, created (random, version 4) on first use.
fn load_uuid(root: &Path) -> std::io::Result<String> {
    let path = root.join("uuid");
    if let Ok(s) = std::fs::read_to_string(&path) {
        let s = s.trim();
        if !s.is_empty() {
            return Ok(s.to_string());
        }
    }
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex_string(&b);
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    );
    std::fs::write(&path, &uuid)?;
    Ok(uuid)
}

fn hex_string(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tonic::async_trait]
impl Introspection for IntrospectionService {
    async fn plugins(
        &self,
        req: Request<PluginsRequest>,
    ) -> Result<Response<PluginsResponse>, Status> {
        let filter =
            parse_all(&req.into_inner().filters).map_err(|e| Status::invalid_argument(e.0))?;
        let plugins = self
            .plugins
            .iter()
            .filter(|p| filter.matches(&Fields(p)))
            .cloned()
            .collect();
        Ok(Response::new(PluginsResponse { plugins }))
    }

    async fn server(&self, _: Request<()>) -> Result<Response<ServerResponse>, Status> {
        Ok(Response::new(ServerResponse {
            uuid: self.uuid.clone(),
        }))
    }
}
