//! Snapshots served directly: strata-proxy's Snapshots API against containerd's own overlayfs
//! and native snapshotters served over the same API by integration/snap-serve (containerd's
//! `contrib/snapshotservice`), neither with containerd's metadata layer in front: the
//! snapshotters' own speed, same client, same machine, alternating rounds. The snapshots
//! suite's workloads, each cycle round ending with a timed Cleanup (containerd's overlayfs
//! plugin removes directories asynchronously: Remove leaves them to Cleanup).

use std::path::Path;

use crate::Args;
use crate::client::{self, Target};
use crate::servers;
use crate::stats::Measurement;
use crate::workloads::suites::snapshots;

/// containerd's snapshotter per backend this group compares.
const BACKENDS: [(&str, &str); 2] = [("overlay", "overlayfs"), ("native", "native")];

/// Runs the group for each backend of `--backends` it has, `strata` being the strata-proxy
/// target; containerd's snapshotters run under `dir`. Reasons to skip go to `notes`.
pub async fn run(
    args: &Args,
    strata: &Target,
    dir: &Path,
    out: &mut Vec<Measurement>,
    notes: &mut Vec<String>,
) -> anyhow::Result<()> {
    let bin = match servers::build_go_tool(dir, "snap-serve").await {
        Ok(b) => b,
        Err(e) => {
            let note = format!("direct skipped: {e:#}");
            println!("note: {note}");
            notes.push(note);
            return Ok(());
        }
    };
    for (backend, theirs) in BACKENDS {
        if !args.backends.iter().any(|b| b == backend) {
            continue;
        }
        let server = servers::start_snap_serve(&bin, &dir.join(theirs), theirs)?;
        let (content, snaps) = client::clients(client::connect(server.socket.clone()).await?);
        let containerd = Target {
            name: "containerd",
            content,
            snapshots: snaps,
            namespace: None,
            snapshotters: vec![(backend, theirs.to_string())],
        };
        let targets = [strata.clone(), containerd];
        let group = format!("snapshots served directly: {backend}");
        snapshots::run_group(args, &targets, backend, dir, &group, true, out).await?;
        if let Some(first) = out.iter_mut().find(|m| m.group == group) {
            first.notes.push(format!(
                "served directly: \"strata\" = strata-proxy's Snapshots API; \"containerd\" = \
                 containerd's own {theirs} snapshotter (Go, from Debian's containerd sources) \
                 served over the same API by integration/snap-serve (contrib/snapshotservice, \
                 grpc defaults), as a proxy plugin would be; no containerd metadata layer in \
                 front of either; same client (Strata's Rust client), same file system, rounds \
                 alternating. The cycle rounds end with one Cleanup call, timed{}",
                match theirs {
                    "overlayfs" => {
                        ": containerd's overlayfs is built as its plugin builds it, with \
                         asynchronous remove (Remove renames the directory; Cleanup deletes \
                         it); Strata deletes inside Remove"
                    }
                    _ => "",
                }
            ));
        }
    }
    Ok(())
}
