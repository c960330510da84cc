//! Mounting what a snapshotter returns, with mount(8): the bench runs as root.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, bail};
use strata_proxy::api::types::Mount;

/// The mount(8) arguments for one containerd mount onto `target`.
///
/// `bind` mounts become `mount -o bind[,ro,...] SRC TARGET` (util-linux applies `ro` with the
/// remount it needs); every other type (`overlay`, `btrfs`, ...) becomes
/// `mount -t TYPE -o OPTS SRC TARGET`.
pub fn mount_args(m: &Mount, target: &Path) -> Vec<String> {
    let mut opts = m.options.clone();
    let mut args = Vec::new();
    if m.r#type == "bind" || m.r#type == "rbind" {
        if !opts.iter().any(|o| o == "bind" || o == "rbind") {
            opts.insert(0, "bind".into());
        }
    } else {
        args.extend(["-t".to_string(), m.r#type.clone()]);
    }
    if !opts.is_empty() {
        args.extend(["-o".to_string(), opts.join(",")]);
    }
    args.push(m.source.clone());
    args.push(target.to_string_lossy().into_owned());
    args
}

/// Mounts the single mount a Prepare returned onto `target`.
pub fn mount_all(mounts: &[Mount], target: &Path) -> anyhow::Result<()> {
    let [m] = mounts else {
        bail!("expected exactly one mount, got {}", mounts.len());
    };
    let args = mount_args(m, target);
    let status = Command::new("mount")
        .args(&args)
        .status()
        .context("running mount(8)")?;
    if !status.success() {
        bail!("mount {} failed: {status}", args.join(" "));
    }
    Ok(())
}

/// Detaches `target` (`umount -l`).
pub fn unmount(target: &Path) -> anyhow::Result<()> {
    let status = Command::new("umount")
        .arg("-l")
        .arg(target)
        .status()
        .context("running umount(8)")?;
    if !status.success() {
        bail!("umount -l {} failed: {status}", target.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(ty: &str, src: &str, opts: &[&str]) -> Mount {
        Mount {
            r#type: ty.into(),
            source: src.into(),
            target: String::new(),
            options: opts.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn overlay_and_bind_arguments() {
        let t = Path::new("/mnt/x");
        assert_eq!(
            mount_args(&m("overlay", "overlay", &["lowerdir=/a", "upperdir=/b"]), t),
            [
                "-t",
                "overlay",
                "-o",
                "lowerdir=/a,upperdir=/b",
                "overlay",
                "/mnt/x"
            ]
        );
        assert_eq!(
            mount_args(&m("bind", "/s", &["rbind", "rw"]), t),
            ["-o", "rbind,rw", "/s", "/mnt/x"]
        );
        assert_eq!(
            mount_args(&m("bind", "/s", &["ro"]), t),
            ["-o", "bind,ro", "/s", "/mnt/x"]
        );
        assert_eq!(
            mount_args(&m("btrfs", "/dev/loop0", &["subvolid=257", "rw"]), t),
            [
                "-t",
                "btrfs",
                "-o",
                "subvolid=257,rw",
                "/dev/loop0",
                "/mnt/x"
            ]
        );
    }
}
