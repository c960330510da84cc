//! Task workloads with **stock `ctr`** as the client: `ctr run` of a minimal busybox image
//! against a server's runtime socket (Strata: strata-shim + runc; containerd 1.6:
//! containerd-shim-runc-v2 + runc), in the namespace [`NAMESPACE`]; the wall time of the `ctr`
//! process (or of a batch of them) is the measurement.
//!
//! Also here: the image (one gzip layer built in-process around the host's static busybox), the
//! checks that every run really ran (exit status, output), and the clean-up that leaves no task,
//! container, snapshot, mount or shim behind, even on error ([`Guard`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use serde_json::json;
use strata_archive::{Compression, Encoder};

use crate::stats::Named;
use crate::workloads::imagegen::{sha256, write_oci_archive};

/// The namespace every `ctr` call of the group uses, on both servers.
pub const NAMESPACE: &str = "strata-bench-tasks";
/// The image's name (from the archive's `io.containerd.image.name` annotation).
pub const REFERENCE: &str = "bench.local/tasks/busybox:1";
/// The host's busybox (Debian's busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";
/// Applets linked to busybox in the image's /bin.
const APPLETS: &[&str] = &["sh", "true", "echo", "sleep"];
/// Longest a timed `ctr` command may take.
const CTR_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest a clean-up `ctr` command may take (then it is killed).
const CLEANUP_SECS: &str = "30";
const MTIME: u64 = 1_700_000_000;

/// One server as `ctr` reaches it, with what the last-resort clean-up needs.
#[derive(Debug, Clone)]
pub struct Side {
    /// "strata" or "containerd".
    pub name: &'static str,
    /// The socket serving containerd's runtime services (Tasks included).
    pub socket: PathBuf,
    /// The overlay snapshotter's name on this server ("strata-overlay", "overlayfs").
    pub snapshotter: String,
    /// The `ctr` to run (Debian's on PATH, or a private containerd 2.x's).
    pub ctr: PathBuf,
    /// runc's state root for [`NAMESPACE`] on this server, when known.
    pub runc_root: Option<PathBuf>,
    /// The server's root when the bench started it: its shims name it on their command line
    /// and its task mounts are below it.
    pub server_root: Option<PathBuf>,
}

impl Named for Side {
    fn name(&self) -> &'static str {
        self.name
    }
}

/// Reads the host's busybox; an error unless it is a statically linked 64-bit ELF (the image has
/// no libraries).
pub fn read_static_busybox() -> anyhow::Result<Vec<u8>> {
    let data = std::fs::read(BUSYBOX).with_context(|| format!("reading {BUSYBOX}"))?;
    check_static_elf(&data)
        .with_context(|| format!("{BUSYBOX} (apt-get install busybox-static)"))?;
    Ok(data)
}

/// An error unless `data` is a 64-bit little-endian ELF without an interpreter (`PT_INTERP`).
fn check_static_elf(data: &[u8]) -> anyhow::Result<()> {
    ensure!(
        data.len() > 64 && data.starts_with(b"\x7fELF") && data[4] == 2 && data[5] == 1,
        "not a 64-bit little-endian ELF"
    );
    let u16_at = |o: usize| usize::from(u16::from_le_bytes([data[o], data[o + 1]]));
    let mut phoff = [0u8; 8];
    phoff.copy_from_slice(&data[0x20..0x28]);
    let (phoff, size, count) = (
        u64::from_le_bytes(phoff) as usize,
        u16_at(0x36),
        u16_at(0x38),
    );
    for i in 0..count {
        let o = phoff.saturating_add(i * size);
        ensure!(
            o.saturating_add(4) <= data.len(),
            "truncated program headers"
        );
        let kind = u32::from_le_bytes([data[o], data[o + 1], data[o + 2], data[o + 3]]);
        // PT_INTERP: a dynamic executable.
        ensure!(kind != 3, "dynamically linked (has an interpreter)");
    }
    Ok(())
}

/// Writes the image as an OCI archive to `out`: one gzip layer holding `/bin/busybox` and the
/// [`APPLETS`] as symlinks to it; config `PATH=/bin`, `Cmd ["/bin/sh"]`. Returns the layer's
/// compressed size.
pub fn write_image(busybox: &[u8], out: &Path) -> anyhow::Result<u64> {
    let (layer, gz) = busybox_layer(busybox)?;
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    let config = serde_json::to_vec(&json!({
        "created": "2023-11-14T22:13:20Z",
        "architecture": arch,
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&layer)]},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "strata-bench tasks"}],
    }))?;
    let gzip = Compression::Gzip.oci_media_type();
    let (archive, _) = write_oci_archive(Vec::new(), REFERENCE, &config, &[(gzip, &gz)])?;
    std::fs::write(out, archive).with_context(|| format!("writing {}", out.display()))?;
    Ok(gz.len() as u64)
}

/// A GNU tar header owned by root (names too) with a fixed mtime, for the layers the bench
/// builds.
pub fn root_header(kind: tar::EntryType, mode: u32, size: u64) -> anyhow::Result<tar::Header> {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(MTIME);
    h.set_username("root")?;
    h.set_groupname("root")?;
    Ok(h)
}

/// The busybox layer: `/bin/busybox` and the [`APPLETS`] as symlinks to it, as (tar, gzip).
pub fn busybox_layer(busybox: &[u8]) -> anyhow::Result<(Vec<u8>, Vec<u8>)> {
    let mut b = tar::Builder::new(Vec::with_capacity(busybox.len() + 8192));
    let mut h = root_header(tar::EntryType::Directory, 0o755, 0)?;
    b.append_data(&mut h, "bin/", std::io::empty())?;
    let mut h = root_header(tar::EntryType::Regular, 0o755, busybox.len() as u64)?;
    b.append_data(&mut h, "bin/busybox", busybox)?;
    for a in APPLETS {
        let mut h = root_header(tar::EntryType::Symlink, 0o777, 0)?;
        b.append_link(&mut h, format!("bin/{a}"), "busybox")?;
    }
    let layer = b.into_inner()?;
    let mut e = Encoder::new(Compression::Gzip, Vec::new())?;
    e.write_all(&layer)?;
    let gz = e.finish()?;
    Ok((layer, gz))
}

/// Whether `program` is an executable file in a `PATH` directory.
pub fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::env::var_os("PATH").is_some_and(|p| {
        std::env::split_paths(&p).any(|d| {
            std::fs::metadata(d.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

fn describe_failure(side: &Side, args: &[&str], out: &Output) -> anyhow::Error {
    anyhow!(
        "{}: ctr -n {NAMESPACE} {} failed ({}): {}",
        side.name,
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// Runs `ctr -a <socket> -n NAMESPACE <args>` (stdin /dev/null, output captured); its wall time
/// (spawn to exit) in seconds and its output, whatever its exit status.
pub async fn ctr_timed(side: &Side, args: &[&str]) -> anyhow::Result<(f64, Output)> {
    let mut cmd = tokio::process::Command::new(&side.ctr);
    cmd.arg("-a")
        .arg(&side.socket)
        .args(["-n", NAMESPACE])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let start = Instant::now();
    let out = tokio::time::timeout(CTR_TIMEOUT, cmd.output())
        .await
        .map_err(|_| {
            anyhow!(
                "{}: ctr {} timed out after {} s",
                side.name,
                args.join(" "),
                CTR_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("{}: running ctr (apt-get install containerd)", side.name))?;
    Ok((start.elapsed().as_secs_f64(), out))
}

/// Like [`ctr_timed`], failing unless `ctr` exits 0; its stdout.
pub async fn ctr_ok(side: &Side, args: &[&str]) -> anyhow::Result<(f64, String)> {
    let (secs, out) = ctr_timed(side, args).await?;
    if !out.status.success() {
        return Err(describe_failure(side, args, &out));
    }
    Ok((secs, String::from_utf8_lossy(&out.stdout).into_owned()))
}

/// `ctr run --rm --snapshotter S REFERENCE id cmd...`: its wall time (s) and output; fails
/// unless the container's process exited 0 (ctr exits with the task's status).
pub async fn run_rm(side: &Side, id: &str, cmd: &[&str]) -> anyhow::Result<(f64, String)> {
    let mut args = vec![
        "run",
        "--rm",
        "--snapshotter",
        &side.snapshotter,
        REFERENCE,
        id,
    ];
    args.extend_from_slice(cmd);
    ctr_ok(side, &args).await
}

/// `ctr images import --snapshotter S archive` (with unpack); its wall time, s.
pub async fn import(side: &Side, archive: &Path) -> anyhow::Result<f64> {
    let archive = archive.to_string_lossy();
    let (secs, _) = ctr_ok(
        side,
        &[
            "images",
            "import",
            "--snapshotter",
            &side.snapshotter,
            &archive,
        ],
    )
    .await?;
    let (_, listed) = ctr_ok(side, &["images", "ls", "-q"]).await?;
    ensure!(
        listed.lines().any(|l| l.trim() == REFERENCE),
        "{}: {REFERENCE} not listed after the import: {listed:?}",
        side.name
    );
    Ok(secs)
}

/// The untimed proof that containers really run: `sh -c 'echo ok'` must print exactly `ok`, and
/// `sh -c 'exit 3'` must make ctr exit 3.
pub async fn sanity(side: &Side, id_ok: &str, id_exit: &str) -> anyhow::Result<()> {
    let (_, out) = run_rm(side, id_ok, &["sh", "-c", "echo ok"]).await?;
    ensure!(
        out == "ok\n",
        "{}: ctr run --rm ... sh -c 'echo ok' printed {out:?}, not \"ok\\n\"",
        side.name
    );
    let args = [
        "run",
        "--rm",
        "--snapshotter",
        &side.snapshotter,
        REFERENCE,
        id_exit,
        "sh",
        "-c",
        "exit 3",
    ];
    let (_, out) = ctr_timed(side, &args).await?;
    ensure!(
        out.status.code() == Some(3),
        "{}: ctr run --rm ... sh -c 'exit 3' ended with {}, not exit 3: {}",
        side.name,
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(())
}

/// One concurrent round: `ctr run --rm ... <id> true` for every id, all at once. The wall time
/// until the last exited (s) and each command's own wall time (s); fails unless all exited 0.
pub async fn concurrent(side: &Side, ids: &[String]) -> anyhow::Result<(f64, Vec<f64>)> {
    let start = Instant::now();
    let results = futures::future::join_all(ids.iter().map(|id| run_rm(side, id, &["true"]))).await;
    let wall = start.elapsed().as_secs_f64();
    let mut each = Vec::new();
    let mut failed = Vec::new();
    for (id, r) in ids.iter().zip(results) {
        match r {
            Ok((secs, _)) => each.push(secs),
            Err(e) => failed.push(format!("{id}: {e:#}")),
        }
    }
    if !failed.is_empty() {
        bail!(
            "{}: {} of {} concurrent runs failed: {}",
            side.name,
            failed.len(),
            ids.len(),
            failed.join("; ")
        );
    }
    Ok((wall, each))
}

/// One detached cycle: `ctr run -d ... <id> sleep 1000`, `task kill -s SIGKILL`, `task delete`
/// (repeated while ctr answers that the task must be stopped first: the kill is asynchronous),
/// `containers rm`. The wall time of the four steps (s) and how many deletes were repeated.
pub async fn cycle(side: &Side, id: &str) -> anyhow::Result<(f64, usize)> {
    let start = Instant::now();
    let run = [
        "run",
        "-d",
        "--snapshotter",
        &side.snapshotter,
        REFERENCE,
        id,
        "sleep",
        "1000",
    ];
    ctr_ok(side, &run).await?;
    ctr_ok(side, &["tasks", "kill", "-s", "SIGKILL", id]).await?;
    let mut again = 0;
    loop {
        let args = ["tasks", "delete", id];
        let (_, out) = ctr_timed(side, &args).await?;
        if out.status.success() {
            break;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if !err.contains("must be stopped") || again >= 500 {
            return Err(describe_failure(side, &args, &out));
        }
        again += 1;
    }
    ctr_ok(side, &["containers", "rm", id]).await?;
    Ok((start.elapsed().as_secs_f64(), again))
}

// --- clean-up (blocking: also runs from Drop) ----------------------------------------------------

/// `timeout 30 ctr -a <socket> -n NAMESPACE <args>`, blocking.
fn ctr_blocking(side: &Side, args: &[&str]) -> anyhow::Result<Output> {
    std::process::Command::new("timeout")
        .args(["-k", "5", CLEANUP_SECS])
        .arg(&side.ctr)
        .arg("-a")
        .arg(&side.socket)
        .args(["-n", NAMESPACE])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("{}: running ctr {}", side.name, args.join(" ")))
}

/// The non-empty lines of a blocking `ctr` that must succeed.
fn ctr_lines(side: &Side, args: &[&str]) -> anyhow::Result<Vec<String>> {
    let out = ctr_blocking(side, args)?;
    if !out.status.success() {
        return Err(describe_failure(side, args, &out));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}

/// What is in [`NAMESPACE`] besides the image: tasks, containers, and active snapshots (a
/// container's rootfs), each as "task X", "container X", "snapshot X".
pub fn leftovers(side: &Side) -> anyhow::Result<Vec<String>> {
    let mut left = Vec::new();
    for t in ctr_lines(side, &["tasks", "ls", "-q"])? {
        left.push(format!("task {t}"));
    }
    for c in ctr_lines(side, &["containers", "ls", "-q"])? {
        left.push(format!("container {c}"));
    }
    for s in active_snapshots(side)? {
        left.push(format!("snapshot {s}"));
    }
    Ok(left)
}

/// The keys of the active (uncommitted) snapshots in [`NAMESPACE`].
fn active_snapshots(side: &Side) -> anyhow::Result<Vec<String>> {
    let rows = ctr_lines(
        side,
        &["snapshots", "--snapshotter", &side.snapshotter, "ls"],
    )?;
    Ok(rows
        .iter()
        .skip(1)
        .filter(|r| r.split_whitespace().last() == Some("Active"))
        .filter_map(|r| r.split_whitespace().next().map(String::from))
        .collect())
}

/// Removes every task (`tasks delete --force`: killed first), container (with its snapshot) and
/// active snapshot in [`NAMESPACE`]; what it removed. Fails if anything is still there after.
pub fn clean(side: &Side) -> anyhow::Result<Vec<String>> {
    let found = leftovers(side)?;
    if found.is_empty() {
        return Ok(found);
    }
    for t in ctr_lines(side, &["tasks", "ls", "-q"])? {
        let _ = ctr_blocking(side, &["tasks", "delete", "--force", &t]);
    }
    let containers = ctr_lines(side, &["containers", "ls", "-q"])?;
    if !containers.is_empty() {
        let mut args = vec!["containers", "rm"];
        args.extend(containers.iter().map(String::as_str));
        let _ = ctr_blocking(side, &args);
    }
    for s in active_snapshots(side)? {
        let _ = ctr_blocking(
            side,
            &["snapshots", "--snapshotter", &side.snapshotter, "rm", &s],
        );
    }
    let still = leftovers(side)?;
    ensure!(
        still.is_empty(),
        "{}: clean-up could not remove {still:?}",
        side.name
    );
    Ok(found)
}

/// The end of the group on one side: [`clean`], `images rm --sync` of the image, no snapshot
/// left, `namespaces rm`. What [`clean`] had to remove.
pub fn finish(side: &Side) -> anyhow::Result<Vec<String>> {
    let removed = clean(side)?;
    let images = ctr_lines(side, &["images", "ls", "-q"])?;
    if !images.is_empty() {
        let mut args = vec!["images", "rm", "--sync"];
        args.extend(images.iter().map(String::as_str));
        ctr_lines(side, &args)?;
    }
    let snaps = ctr_lines(
        side,
        &["snapshots", "--snapshotter", &side.snapshotter, "ls"],
    )?;
    ensure!(
        snaps.len() <= 1,
        "{}: images rm --sync left snapshots in {NAMESPACE}: {:?}",
        side.name,
        &snaps[1..]
    );
    ctr_lines(side, &["namespaces", "rm", NAMESPACE])?;
    // containerd's runc root for the namespace is host-wide (/run/containerd/runc/<ns>): gone
    // when empty (Strata's is under its own root).
    if let Some(r) = &side.runc_root
        && !side
            .server_root
            .as_ref()
            .is_some_and(|root| r.starts_with(root))
    {
        let _ = std::fs::remove_dir(r);
    }
    Ok(removed)
}

/// Pids of the shims of the server rooted at `root`: `containerd-shim*` or `strata-shim`
/// processes whose command line names a path under `root` (containerd's socket, Strata's state).
pub fn shims(root: &Path) -> Vec<i32> {
    let root = root.to_string_lossy().into_owned();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
                return false;
            };
            let mut args = cmd.split(|b| *b == 0).map(String::from_utf8_lossy);
            let exe = args.next().unwrap_or_default();
            let exe = exe.rsplit('/').next().unwrap_or_default();
            (exe.starts_with("containerd-shim") || exe == "strata-shim")
                && args.any(|a| a.contains(&root))
        })
        .collect()
}

/// Last resort when `ctr` cannot clean up (the server is stuck or gone): runc kills and deletes
/// the bench's containers (ids starting with `tag`) in the side's runc root, and the side's
/// shims are killed (by pid, found under its own root). Their mounts are below the server's
/// root, which is unmounted when the server stops. What it did.
pub fn force(side: &Side, tag: &str) -> Vec<String> {
    let mut did = Vec::new();
    if let Some(root) = &side.runc_root {
        let runc = |args: &[&str]| {
            std::process::Command::new("timeout")
                .args([CLEANUP_SECS, "runc", "--root"])
                .arg(root)
                .args(args)
                .stdin(Stdio::null())
                .output()
        };
        if let Ok(out) = runc(&["list", "-q"]) {
            for id in String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::trim)
                .filter(|id| id.starts_with(tag))
            {
                let _ = runc(&["kill", id, "KILL"]);
                std::thread::sleep(Duration::from_millis(100));
                let _ = runc(&["delete", "--force", id]);
                did.push(format!("runc delete --force {id}"));
            }
        }
    }
    if let Some(root) = &side.server_root {
        for pid in shims(root) {
            // SAFETY: kill(2) of a shim of a server this bench started, found by its pid.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            did.push(format!("killed shim pid {pid}"));
        }
    }
    did
}

/// Cleans both sides up when dropped while armed (an error or a panic in the group): [`finish`]
/// through `ctr`, then [`force`] where that fails.
pub struct Guard {
    sides: Vec<Side>,
    tag: String,
    armed: bool,
}

impl Guard {
    pub fn new(sides: &[Side], tag: &str) -> Guard {
        Guard {
            sides: sides.to_vec(),
            tag: tag.to_string(),
            armed: true,
        }
    }

    /// Cleans up now (off the async threads) and disarms: per side, what [`finish`] removed,
    /// or its error after [`force`] ran.
    pub async fn finish(mut self) -> Vec<(&'static str, anyhow::Result<Vec<String>>)> {
        self.armed = false;
        let (sides, tag) = (self.sides.clone(), self.tag.clone());
        tokio::task::spawn_blocking(move || {
            sides
                .iter()
                .map(|s| (s.name, finish_or_force(s, &tag)))
                .collect()
        })
        .await
        .unwrap_or_else(|e| vec![("bench", Err(anyhow!("clean-up panicked: {e}")))])
    }
}

fn finish_or_force(side: &Side, tag: &str) -> anyhow::Result<Vec<String>> {
    finish(side).map_err(|e| {
        let did = force(side, tag);
        eprintln!(
            "{}: tasks clean-up through ctr failed ({e:#}); forced: {did:?}",
            side.name
        );
        e
    })
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.armed {
            for s in &self.sides {
                let _ = finish_or_force(s, &self.tag);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;

    use super::*;

    /// A 64-bit ELF header with one program header of type `kind`.
    fn elf(kind: u32) -> Vec<u8> {
        let mut d = vec![0u8; 64 + 56];
        d[..6].copy_from_slice(b"\x7fELF\x02\x01");
        d[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        d[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        d[0x38..0x3a].copy_from_slice(&1u16.to_le_bytes());
        d[64..68].copy_from_slice(&kind.to_le_bytes());
        d
    }

    #[test]
    fn static_elf_check() {
        assert!(check_static_elf(&elf(1)).is_ok());
        assert!(check_static_elf(&elf(3)).is_err());
        assert!(check_static_elf(b"#!/bin/sh\n").is_err());
    }

    fn entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>, Option<String>)> {
        let mut a = tar::Archive::new(tar_bytes);
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let path = e.path().unwrap().to_string_lossy().into_owned();
                let link = e
                    .link_name()
                    .unwrap()
                    .map(|l| l.to_string_lossy().into_owned());
                let kind = e.header().entry_type();
                let mut data = Vec::new();
                e.read_to_end(&mut data).unwrap();
                (path, kind, data, link)
            })
            .collect()
    }

    #[test]
    fn image_is_one_layer_with_busybox_and_its_applets() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("img.tar");
        let gz = write_image(b"not really busybox", &out).unwrap();
        let archive = entries(&std::fs::read(&out).unwrap());
        let file = |name: &str| {
            archive
                .iter()
                .find(|e| e.0 == name)
                .map(|e| e.2.clone())
                .unwrap_or_else(|| panic!("{name} missing"))
        };
        let blob = |digest: &str| file(&format!("blobs/sha256/{}", &digest[7..]));
        let index: serde_json::Value = serde_json::from_slice(&file("index.json")).unwrap();
        let m = &index["manifests"][0];
        assert_eq!(m["annotations"]["io.containerd.image.name"], REFERENCE);
        let manifest: serde_json::Value =
            serde_json::from_slice(&blob(m["digest"].as_str().unwrap())).unwrap();
        let layer = &manifest["layers"][0];
        assert_eq!(layer["size"], gz);
        let layer = blob(layer["digest"].as_str().unwrap());
        let mut tar_bytes = Vec::new();
        strata_archive::compression::decoder(&layer[..])
            .unwrap()
            .read_to_end(&mut tar_bytes)
            .unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256(&tar_bytes));
        assert_eq!(config["config"]["Env"][0], "PATH=/bin");
        let layer = entries(&tar_bytes);
        assert!(
            layer
                .iter()
                .any(|e| e.0 == "bin/busybox" && e.2 == b"not really busybox")
        );
        for a in APPLETS {
            assert!(
                layer.iter().any(|e| e.0 == format!("bin/{a}")
                    && e.1 == tar::EntryType::Symlink
                    && e.3.as_deref() == Some("busybox")),
                "{a}"
            );
        }
    }
}
