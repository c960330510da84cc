//! Performs the [`Mount`]s a snapshotter returns, as containerd's `mount.All` does
//! (`C16/mount/mount_linux.go`), including the overlay long-lowerdir workaround (§4.2).

use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::Mount;
use crate::fsutil::unescape_mountinfo;

/// Mounted on a target until dropped (then lazily unmounted).
#[derive(Debug)]
pub struct TempMount {
    target: PathBuf,
}

impl TempMount {
    /// Mounts `mounts` in order onto `target`.
    pub fn new(mounts: &[Mount], target: &Path) -> io::Result<Self> {
        mount_all(mounts, target)?;
        Ok(TempMount {
            target: target.to_path_buf(),
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for TempMount {
    fn drop(&mut self) {
        if let Err(e) = unmount(&self.target) {
            eprintln!("unmount {}: {e}", self.target.display());
        }
    }
}

/// Mounts every entry of `mounts` onto `target`, in order.
pub fn mount_all(mounts: &[Mount], target: &Path) -> io::Result<()> {
    for m in mounts {
        mount_one(m, target).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("mount {m:?} on {}: {e}", target.display()),
            )
        })?;
    }
    Ok(())
}

/// Lazily unmounts everything stacked on `target` (loops until EINVAL, as `UnmountAll`).
pub fn unmount(target: &Path) -> io::Result<()> {
    for _ in 0..100 {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(Errno::EINVAL) | Err(Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) => std::thread::sleep(std::time::Duration::from_millis(50)),
            Err(e) => return Err(e.into()),
        }
    }
    Err(io::Error::other(format!(
        "{} stays mounted",
        target.display()
    )))
}

/// Lazily unmounts every mount point at or below `dir` (deepest first); errors are ignored.
pub fn unmount_under(dir: &Path) {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = umount2(&p, MntFlags::MNT_DETACH);
    }
}

/// Splits options into MS_* flags and filesystem data.
fn parse_options(options: &[String]) -> (MsFlags, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (clear, flag) = match o.as_str() {
            "ro" => (false, MsFlags::MS_RDONLY),
            "rw" => (true, MsFlags::MS_RDONLY),
            "bind" => (false, MsFlags::MS_BIND),
            "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
            "nosuid" => (false, MsFlags::MS_NOSUID),
            "suid" => (true, MsFlags::MS_NOSUID),
            "nodev" => (false, MsFlags::MS_NODEV),
            "dev" => (true, MsFlags::MS_NODEV),
            "noexec" => (false, MsFlags::MS_NOEXEC),
            "exec" => (true, MsFlags::MS_NOEXEC),
            "noatime" => (false, MsFlags::MS_NOATIME),
            "relatime" => (false, MsFlags::MS_RELATIME),
            "sync" => (false, MsFlags::MS_SYNCHRONOUS),
            "defaults" => (false, MsFlags::empty()),
            _ => {
                data.push(o.clone());
                continue;
            }
        };
        if clear {
            flags.remove(flag);
        } else {
            flags.insert(flag);
        }
    }
    (flags, data)
}

fn mount_one(m: &Mount, target: &Path) -> io::Result<()> {
    let (flags, data) = parse_options(&m.options);
    if flags.contains(MsFlags::MS_BIND) {
        return mount_bind(m, target, flags);
    }
    let joined = data.join(",");
    if m.kind == "overlay" && joined.len() >= page_size().saturating_sub(512) {
        return mount_compacted(m, target, &m.options);
    }
    let data = (!joined.is_empty()).then_some(joined.as_str());
    mount(
        Some(m.source.as_str()),
        target,
        Some(m.kind.as_str()),
        flags,
        data,
    )?;
    Ok(())
}

/// Bind mounts ignore MS_RDONLY on the first call: remount read-only in a second one.
fn mount_bind(m: &Mount, target: &Path, flags: MsFlags) -> io::Result<()> {
    mount(
        Some(m.source.as_str()),
        target,
        None::<&str>,
        flags,
        None::<&str>,
    )?;
    if flags.contains(MsFlags::MS_RDONLY) {
        let remount = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
        mount(None::<&str>, target, None::<&str>, remount, None::<&str>)?;
    }
    Ok(())
}

fn page_size() -> usize {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4096, |n| n as usize)
}

/// containerd's `compactLowerdirOption`: lowerdirs made relative to the parent of their common
/// prefix, mounted by a `mount(8)` child running in that directory.
fn mount_compacted(m: &Mount, target: &Path, options: &[String]) -> io::Result<()> {
    let (dir, options) = compact_lowerdir(options)
        .ok_or_else(|| io::Error::other("overlay options too long and not compactable"))?;
    let target = std::path::absolute(target)?;
    let status = Command::new("mount")
        .args([
            "-i",
            "-n",
            "-t",
            &m.kind,
            "-o",
            &options.join(","),
            &m.source,
        ])
        .arg(&target)
        .current_dir(&dir)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!("mount(8) in {dir}: {status}")));
    }
    Ok(())
}

/// Returns the directory to mount from and the options with relative lowerdirs.
fn compact_lowerdir(options: &[String]) -> Option<(String, Vec<String>)> {
    let idx = options.iter().position(|o| o.starts_with("lowerdir="))?;
    let dirs: Vec<&str> = options[idx]["lowerdir=".len()..].split(':').collect();
    if dirs.len() <= 1 {
        return None;
    }
    let mut common = dirs[0].to_string();
    for d in &dirs[1..] {
        let n = common
            .bytes()
            .zip(d.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        common.truncate(n);
    }
    let base = match common.strip_suffix('/') {
        Some(stripped) => stripped.to_string(),
        None => common[..common.rfind('/')?].to_string(),
    };
    if base.is_empty() {
        return None;
    }
    let prefix = format!("{base}/");
    let rel: Vec<&str> = dirs.iter().map(|d| &d[prefix.len()..]).collect();
    let mut out = options.to_vec();
    out[idx] = format!("lowerdir={}", rel.join(":"));
    Some((base, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_to_parent_of_common_prefix() {
        let opts = vec![
            "workdir=/r/s/9/work".to_string(),
            "lowerdir=/r/s/12/fs:/r/s/1/fs:/r/s/10/fs".to_string(),
        ];
        let (dir, out) = compact_lowerdir(&opts).unwrap();
        assert_eq!(dir, "/r/s");
        assert_eq!(out[1], "lowerdir=12/fs:1/fs:10/fs");
        assert_eq!(out[0], opts[0]);
    }

    #[test]
    fn unescapes_mountinfo() {
        assert_eq!(unescape_mountinfo(r"/tmp/a\040b"), "/tmp/a b");
    }
}
