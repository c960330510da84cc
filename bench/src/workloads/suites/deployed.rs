//! Deployed-path suite: what an operator sees. Stock `ctr` against a containerd that uses
//! Strata the way it is deployed (strata-proxy as its content store and snapshotters, through
//! `proxy_plugins`, containerd's metadata layer in front), against the same containerd with its
//! built-in content store and snapshotters; same machine, same images, same run. The rows are
//! the unpack suite's (import and pull with unpack, the daemons' CPU time and disk writes, the
//! `images rm --sync` after), the same with `--concurrent-clients` clients at once, per backend
//! (overlay, native), and the tasks suite's `ctr run`
//! rows on overlay, on containerd 1.6 and, with `--containerd2`, on 2.x.

use std::path::Path;

use crate::Args;
use crate::servers::{self, Containerd};
use crate::stats::Measurement;
use crate::workloads::suites::tasks as task_suite;
use crate::workloads::suites::unpack::{self, Prepared};
use crate::workloads::tasks;
use crate::workloads::unpack::Side;

/// The backends this group compares (btrfs needs its own pair of roots on btrfs: not here).
const BACKENDS: [(&str, &str, &str); 2] = [
    ("overlay", "strata-overlay", "overlayfs"),
    ("native", "strata-native", "native"),
];

/// Starts strata-proxy, a containerd `ctd` on it and a containerd `ctd` on its own, under `dir`,
/// then runs the unpack rows on each backend in `--backends`.
pub async fn run(
    args: &Args,
    prep: &Prepared,
    ctd: &Containerd,
    dir: &Path,
    out: &mut Vec<Measurement>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    for sub in ["strata", "containerd-on-strata", "containerd"] {
        std::fs::create_dir_all(dir.join(sub))?;
    }
    let strata = servers::start_strata(&args.strata_bin()?, &dir.join("strata"))?;
    let on_strata =
        servers::start_containerd_on(&dir.join("containerd-on-strata"), Some(&strata.socket), ctd)?;
    let builtin = servers::start_containerd_on(&dir.join("containerd"), None, ctd)?;
    let label = ctd.label();
    let version = containerd_version(ctd).await;
    for (backend, ours, theirs) in BACKENDS {
        if !args.backends.iter().any(|b| b == backend) {
            continue;
        }
        let sides = [
            Side {
                name: "strata",
                socket: on_strata.socket.clone(),
                snapshotter: ours.into(),
                ctr: ctd.ctr(),
                pids: vec![on_strata.pid(), strata.pid()],
            },
            Side {
                name: "containerd",
                socket: builtin.socket.clone(),
                snapshotter: theirs.into(),
                ctr: ctd.ctr(),
                pids: vec![builtin.pid()],
            },
        ];
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
                 windows are 16 MiB (containerd's gRPC default 64 KiB); containerd's own \
                 client side is unchanged"
            ));
        }
    }
    if args.backends.iter().any(|b| b == "overlay") {
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
            side("strata", &on_strata, "strata-overlay"),
            side("containerd", &builtin, "overlayfs"),
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
