//! Deployed-path suite: what an operator sees. Stock `ctr` against a containerd that uses
//! Strata the way it is deployed (strata-proxy as its content store and snapshotters, through
//! `proxy_plugins`, containerd's metadata layer in front), against the same containerd with its
//! built-in content store and snapshotters; same machine, same images, same run. The rows are
//! the unpack suite's (import and pull with unpack, the daemons' CPU time and disk writes, the
//! `images rm --sync` after; with `go` at hand also containerd's Go client `Pull` as its CRI
//! plugin runs it for kubelet, integration/cri-pull), the same with `--concurrent-clients`
//! clients at once, per backend
//! (overlay, native, and btrfs with roots under `--btrfs-dir`), and the tasks suite's `ctr run`
//! rows on overlay, on containerd 1.6 and, with `--containerd2`, on 2.x.

use std::path::{Path, PathBuf};

use crate::Args;
use crate::servers::{self, Containerd, Server};
use crate::stats::Measurement;
use crate::workloads::suites::tasks as task_suite;
use crate::workloads::suites::unpack::{self, Prepared};
use crate::workloads::tasks;
use crate::workloads::unpack::Side;

/// The backends this group compares: (bench name, Strata's snapshotter, containerd's).
const BACKENDS: [(&str, &str, &str); 3] = [
    ("overlay", "strata-overlay", "overlayfs"),
    ("native", "strata-native", "native"),
    ("btrfs", "strata-btrfs", "btrfs"),
];

/// The servers of one side-by-side: strata-proxy, a containerd on it, a containerd on its own.
/// Fields drop in order: the containerds stop before strata-proxy.
struct Trio {
    on_strata: Server,
    builtin: Server,
    strata: Server,
}

impl Trio {
    /// Starts the three with roots under `dir`; strata-proxy's config lists the loopback
    /// registry the pull rows use as one the offload may fetch from (plain HTTP), as an operator
    /// lists a registry in `[offload] insecure_registries` or `[registry.hosts]`.
    fn start(args: &Args, prep: &Prepared, ctd: &Containerd, dir: &Path) -> anyhow::Result<Self> {
        for sub in ["strata", "containerd-on-strata", "containerd"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        let config = prep
            .registry
            .as_ref()
            .map(|r| format!("[offload]\ninsecure_registries = [\"{}\"]\n", r.addr));
        let strata = servers::start_strata_with(
            &args.strata_bin()?,
            &dir.join("strata"),
            config.as_deref(),
        )?;
        let on_strata = servers::start_containerd_on(
            &dir.join("containerd-on-strata"),
            Some(&strata.socket),
            ctd,
        )?;
        let builtin = servers::start_containerd_on(&dir.join("containerd"), None, ctd)?;
        Ok(Trio {
            on_strata,
            builtin,
            strata,
        })
    }

    /// The two sides of the unpack rows on one backend.
    fn sides(
        &self,
        ctd: &Containerd,
        ours: &str,
        theirs: &str,
        cri: &Option<PathBuf>,
    ) -> [Side; 2] {
        [
            Side {
                name: "strata",
                socket: self.on_strata.socket.clone(),
                snapshotter: ours.into(),
                ctr: ctd.ctr(),
                cri_pull: cri.clone(),
                pids: vec![self.on_strata.pid(), self.strata.pid()],
            },
            Side {
                name: "containerd",
                socket: self.builtin.socket.clone(),
                snapshotter: theirs.into(),
                ctr: ctd.ctr(),
                cri_pull: cri.clone(),
                pids: vec![self.builtin.pid()],
            },
        ]
    }
}

/// Starts a [`Trio`] under `dir` (and, for btrfs, another under a fresh directory in
/// `btrfs_dir`: containerd's btrfs snapshotter needs its root there), then runs the unpack rows
/// on each backend in `--backends`, and the tasks rows on overlay.
pub async fn run(
    args: &Args,
    prep: &Prepared,
    ctd: &Containerd,
    dir: &Path,
    btrfs_dir: Option<&Path>,
    out: &mut Vec<Measurement>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let wanted = |b: &str| args.backends.iter().any(|x| x == b);
    // The trio under `dir` serves overlay, native and the tasks rows; btrfs has its own.
    let trio = if wanted("overlay") || wanted("native") {
        Some(Trio::start(args, prep, ctd, dir)?)
    } else {
        None
    };
    let cri_pull = match prep.registry {
        Some(_) => match servers::build_go_tool(dir, "integration/cri-pull").await {
            Ok(p) => Some(p),
            Err(e) => {
                args.skip(notes, format!("deployed: cri-pull rows skipped: {e:#}"))?;
                None
            }
        },
        None => None,
    };
    let label = ctd.label();
    let version = containerd_version(ctd).await;
    for (backend, ours, theirs) in BACKENDS {
        if !wanted(backend) {
            continue;
        }
        // Declared before the trio it may hold, so that it is removed after the servers stop.
        let scratch;
        let btrfs_trio;
        let servers = if backend == "btrfs" {
            let Some(root) = btrfs_dir else {
                let note = "deployed: btrfs skipped: no --btrfs-dir on a btrfs mount";
                args.skip(notes, note.into())?;
                continue;
            };
            scratch = tempfile::Builder::new()
                .prefix("strata-bench-deployed-")
                .tempdir_in(root)?;
            btrfs_trio = Trio::start(args, prep, ctd, scratch.path())?;
            &btrfs_trio
        } else {
            let Some(trio) = trio.as_ref() else { continue };
            trio
        };
        let sides = servers.sides(ctd, ours, theirs, &cri_pull);
        let group = format!("deployed, containerd {label}: {backend}");
        unpack::run(args, prep, &sides, backend, &group, out).await?;
        unpack::run_concurrent(args, prep, &sides, backend, &group, out).await?;
        if let Some(first) = out.iter_mut().find(|m| m.group == group) {
            first.notes.push(format!(
                "deployed path: \"strata\" = stock ctr -> containerd {version} with strata-proxy \
                 as its content store and {ours} (proxy_plugins; containerd's metadata layer and \
                 GC in front); \"containerd\" = the same containerd with its built-in content \
                 store and {theirs}; CPU and disk writes: containerd + strata-proxy vs \
                 containerd (shims not counted). Tuning differences: strata-proxy's HTTP/2 \
                 windows are 16 MiB (containerd's gRPC default 64 KiB); strata-proxy's config \
                 lists the loopback registry in [offload] insecure_registries, so where \
                 containerd's unpacker asks the snapshotter first (2.x's ctr images pull and \
                 import, the Go client's cri-pull) Strata fetches and applies the layers \
                 itself and containerd fetches none of them (a remote snapshotter's contract: \
                 the image's layer blobs are then not in containerd's content store); \
                 containerd's own client side is unchanged"
            ));
        }
    }
    if let Some(trio) = trio.as_ref().filter(|_| wanted("overlay")) {
        // containerd's shims keep runc's state in a host-wide root, per namespace.
        let runc_root = Some(Path::new("/run/containerd/runc").join(tasks::NAMESPACE));
        let side = |name, server: &servers::Server, snapshotter: &str| tasks::Side {
            name,
            socket: server.socket.clone(),
            snapshotter: snapshotter.into(),
            ctr: ctd.ctr(),
            runc_root: runc_root.clone(),
            server_root: Some(server.root.clone()),
        };
        let sides = [
            side("strata", &trio.on_strata, "strata-overlay"),
            side("containerd", &trio.builtin, "overlayfs"),
        ];
        let group = format!("deployed, containerd {label}: tasks");
        task_suite::run(args, &sides, &group, dir, out, notes).await?;
    }
    notes.push(format!("deployed group ran on containerd {version}"));
    Ok(())
}

/// `containerd --version`'s version field, or the label.
pub async fn containerd_version(ctd: &Containerd) -> String {
    let out = tokio::process::Command::new(ctd.binary())
        .arg("--version")
        .output()
        .await;
    out.ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .nth(2)
                .map(|v| v.trim_start_matches('v').to_string())
        })
        .unwrap_or_else(|| ctd.label().to_string())
}
