//! Served directly: strata-proxy's Content and Snapshots APIs against containerd's own local
//! content store and overlayfs and native snapshotters served over the same APIs by
//! integration/snap-serve (containerd's `contentserver` and `contrib/snapshotservice`), neither
//! with containerd's metadata layer in front: the stores' own speed, same client, same
//! machine, alternating rounds. The content suite's workloads, then the snapshots suite's, each
//! cycle round ending with a timed Cleanup (containerd's overlayfs plugin removes directories
//! asynchronously: Remove leaves them to Cleanup).

use std::path::Path;

use crate::Args;
use crate::client::{self, Target};
use crate::servers;
use crate::stats::Measurement;
use crate::workloads::suites::{self, snapshots};

/// containerd's snapshotter per backend this group compares.
const BACKENDS: [(&str, &str); 2] = [("overlay", "overlayfs"), ("native", "native")];

/// Runs the group (content, then each backend of `--backends` it has) on a fresh strata-proxy
/// and fresh containerd stores, all under `dir`. Reasons to skip go to `notes`.
pub async fn run(
    args: &Args,
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
    let ours = servers::start_strata(&args.strata_bin()?, &dir.join("strata"))?;
    let (content, snaps) = client::clients(client::connect(ours.socket.clone()).await?);
    let strata = &Target {
        name: "strata",
        content,
        snapshots: snaps,
        namespace: None,
        snapshotters: vec![
            ("overlay", "strata-overlay".into()),
            ("native", "strata-native".into()),
        ],
    };
    self::content(args, strata, Some(ours.pid()), &bin, dir, out).await?;
    for (backend, theirs) in BACKENDS {
        if !args.backends.iter().any(|b| b == backend) {
            continue;
        }
        let server = servers::start_snap_serve(&bin, &dir.join(theirs), theirs, false)?;
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

/// The content rows against containerd's local store served by snap-serve.
async fn content(
    args: &Args,
    strata: &Target,
    strata_pid: Option<u32>,
    bin: &Path,
    dir: &Path,
    out: &mut Vec<Measurement>,
) -> anyhow::Result<()> {
    let server = servers::start_snap_serve(bin, &dir.join("content"), "none", true)?;
    let (content, snaps) = client::clients(client::connect(server.socket.clone()).await?);
    let containerd = Target {
        name: "containerd",
        content,
        snapshots: snaps,
        namespace: None,
        snapshotters: Vec::new(),
    };
    let targets = [strata.clone(), containerd];
    let pids = [strata_pid, Some(server.pid())];
    let group = "content served directly";
    suites::content::run_group(args, &targets, &pids, group, out).await?;
    if let Some(first) = out.iter_mut().find(|m| m.group == group) {
        first.notes.push(
            "served directly: \"strata\" = strata-proxy's Content API; \"containerd\" = \
             containerd's own local content store (content/local, no label store) served over \
             the same API by integration/snap-serve (services/content/contentserver, grpc \
             defaults); no metadata layer in front of either; same client, same file system, \
             rounds alternating. Durability as containerd's: its local store fsyncs a blob \
             before Commit returns; Strata also syncs the blob directory and its WAL"
                .to_string(),
        );
    }
    Ok(())
}
