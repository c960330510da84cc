//! Served directly: strata-proxy's Content and Snapshots APIs against containerd 1.6's own
//! local content store and overlay and native snapshotters served over the same APIs by
//! conformance/go/src/refproxy (containerd's `contentserver` and `contrib/snapshotservice`,
//! the conformance suite's baseline daemon), neither with containerd's metadata layer in
//! front: the stores' own speed, same client, same machine, fresh roots, alternating rounds.
//! The content suite's workloads, then the snapshots suite's per backend, each cycle round
//! ending with a timed Cleanup call.

use std::path::Path;

use crate::Args;
use crate::client::{self, Target};
use crate::servers;
use crate::stats::Measurement;
use crate::workloads::suites::{self, snapshots};

/// The backends this group compares, and containerd's snapshotter for each.
const BACKENDS: [(&str, &str); 2] = [("overlay", "overlayfs"), ("native", "native")];

/// Runs the group (content, then each backend of `--backends` it has) on a fresh strata-proxy
/// and a fresh refproxy, both under `dir`. Reasons to skip go to `notes`.
pub async fn run(
    args: &Args,
    dir: &Path,
    out: &mut Vec<Measurement>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let bin = match servers::build_go_tool(dir, "conformance/go/src/refproxy").await {
        Ok(b) => b,
        Err(e) => {
            return args.skip(notes, format!("direct skipped: {e:#}"));
        }
    };
    let ours = servers::start_strata(&args.strata_bin()?, &dir.join("strata"))?;
    let theirs = servers::start_refproxy(&bin, &dir.join("refproxy"))?;
    let strata = target("strata", &ours, ["strata-overlay", "strata-native"]).await?;
    let containerd = target("containerd", &theirs, ["overlayfs", "native"]).await?;
    let targets = [strata, containerd];
    let pids = [Some(ours.pid()), Some(theirs.pid())];
    let group = "content served directly";
    suites::content::run_group(args, &targets, &pids, group, out).await?;
    note(
        out,
        group,
        "Content API; \"containerd\" = containerd's local content store",
    );
    for (backend, theirs) in BACKENDS {
        if !args.backends.iter().any(|b| b == backend) {
            continue;
        }
        let group = format!("snapshots served directly: {backend}");
        snapshots::run_group(args, &targets, backend, dir, &group, true, out).await?;
        let what = format!("Snapshots API; \"containerd\" = containerd's {theirs} snapshotter");
        note(out, &group, &what);
    }
    Ok(())
}

/// A client of `server` with `names` as its overlay and native snapshotters.
async fn target(
    name: &'static str,
    server: &servers::Server,
    names: [&str; 2],
) -> anyhow::Result<Target> {
    let (content, snapshots) = client::clients(client::connect(server.socket.clone()).await?);
    Ok(Target {
        name,
        content,
        snapshots,
        namespace: None,
        snapshotters: vec![("overlay", names[0].into()), ("native", names[1].into())],
    })
}

/// The method note on the first row of `group`.
fn note(out: &mut [Measurement], group: &str, what: &str) {
    if let Some(first) = out.iter_mut().find(|m| m.group == group) {
        first.notes.push(format!(
            "served directly: \"strata\" = strata-proxy's {what} (containerd 1.6's own Go code, \
             built from Debian's sources) served over the same API by \
             conformance/go/src/refproxy (grpc defaults; content labels in memory; overlay \
             built with synchronous remove, as Strata removes); no metadata layer in front of \
             either; same client (Strata's Rust client), fresh roots on the same file system, \
             rounds alternating; the cycle rounds end with one timed Cleanup call"
        ));
    }
}
