//! Performing the [`Mount`]s a snapshotter returns, as containerd's `mount.All` does (what
//! tests and an in-process runtime need; containerd itself mounts for its clients).
//!
//! Options are split into `MS_*` flags and filesystem data; `bind` + `ro` takes a second,
//! read-only remount. Overlay data longer than a page minus 512 bytes has its `lowerdir`s
//! rewritten relative to their common parent directory and is mounted from a thread whose
//! working directory is that parent (containerd's `compactLowerdirOption`; we use a thread
//! with its own fs context instead of a forked child).

use std::io;
use std::path::{Path, PathBuf};

use nix::mount::{MntFlags, MsFlags};

use crate::{Error, Mount, Result};

/// Mounts every mount of `mounts` on `target`, in order.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<()> {
    for m in mounts {
        mount_one(m, target).map_err(|e| {
            Error::io(
                format!("mount {} {} on {}", m.kind, m.source, target.display()),
                e,
            )
        })?;
    }
    Ok(())
}

/// Detaches whatever is mounted on `target` (`MNT_DETACH`), repeatedly until nothing is.
pub fn unmount_all(target: &Path) -> Result<()> {
    loop {
        match nix::mount::umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => {}
            Err(nix::errno::Errno::EINVAL) => return Ok(()),
            Err(e) => return Err(Error::io(format!("unmount {}", target.display()), e.into())),
        }
    }
}

fn mount_one(m: &Mount, target: &Path) -> io::Result<()> {
    let (flags, data) = split_options(&m.options);
    if m.kind == "bind" || flags.contains(MsFlags::MS_BIND) {
        let flags = flags | MsFlags::MS_BIND;
        sys_mount(
            Some(&m.source),
            target,
            None,
            flags - MsFlags::MS_RDONLY,
            None,
        )?;
        if flags.contains(MsFlags::MS_RDONLY) {
            let ro = MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY;
            sys_mount(None, target, None, ro, None)?;
        }
        return Ok(());
    }
    let data = data.join(",");
    let long = m.kind == "overlay" && data.len() >= page_size() - 512;
    if let Some((dir, short)) = long.then(|| compact_lowerdir(&data)).flatten() {
        return mount_in(dir, m.source.clone(), target.to_path_buf(), flags, short);
    }
    sys_mount(Some(&m.source), target, Some(&m.kind), flags, Some(&data))
}

fn sys_mount(
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: MsFlags,
    data: Option<&str>,
) -> io::Result<()> {
    Ok(nix::mount::mount(source, target, fstype, flags, data)?)
}

/// Mounts overlay `data` from a thread whose working directory is `dir`.
fn mount_in(
    dir: PathBuf,
    src: String,
    target: PathBuf,
    flags: MsFlags,
    data: String,
) -> io::Result<()> {
    let target = std::path::absolute(target)?;
    std::thread::spawn(move || {
        // SAFETY: unshare(CLONE_FS) only gives this thread a private cwd/umask/root; it has no
        // memory-safety preconditions.
        if unsafe { libc::unshare(libc::CLONE_FS) } != 0 {
            return Err(io::Error::last_os_error());
        }
        std::env::set_current_dir(&dir)?;
        sys_mount(Some(&src), &target, Some("overlay"), flags, Some(&data))
    })
    .join()
    .map_err(|_| io::Error::other("mount thread panicked"))?
}

/// Rewrites `lowerdir=` relative to the lowerdirs' common parent; `None` if there is none.
fn compact_lowerdir(data: &str) -> Option<(PathBuf, String)> {
    let opts: Vec<&str> = data.split(',').collect();
    let idx = opts.iter().position(|o| o.starts_with("lowerdir="))?;
    let dirs: Vec<&str> = opts[idx]["lowerdir=".len()..].split(':').collect();
    let mut prefix = dirs[0];
    for d in &dirs[1..] {
        let n = prefix
            .bytes()
            .zip(d.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        prefix = &prefix[..n];
    }
    let cut = prefix.rfind('/')?;
    let common = &prefix[..=cut];
    if common.len() <= 1 {
        return None;
    }
    let rel: Vec<&str> = dirs.iter().map(|d| &d[common.len()..]).collect();
    let mut out: Vec<String> = opts.iter().map(|s| s.to_string()).collect();
    out[idx] = format!("lowerdir={}", rel.join(":"));
    Some((PathBuf::from(common), out.join(",")))
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 { n as usize } else { 4096 }
}

/// containerd's flag table (`mount_linux.go` `parseMountOptions`); the rest is data.
fn split_options(options: &[String]) -> (MsFlags, Vec<String>) {
    let mut flags = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (clear, f) = match o.as_str() {
            "ro" => (false, MsFlags::MS_RDONLY),
            "rw" => (true, MsFlags::MS_RDONLY),
            "bind" => (false, MsFlags::MS_BIND),
            "rbind" => (false, MsFlags::MS_BIND | MsFlags::MS_REC),
            "nosuid" => (false, MsFlags::MS_NOSUID),
            "nodev" => (false, MsFlags::MS_NODEV),
            "noexec" => (false, MsFlags::MS_NOEXEC),
            "noatime" => (false, MsFlags::MS_NOATIME),
            "relatime" => (false, MsFlags::MS_RELATIME),
            "sync" => (false, MsFlags::MS_SYNCHRONOUS),
            "remount" => (false, MsFlags::MS_REMOUNT),
            _ => {
                data.push(o.clone());
                continue;
            }
        };
        if clear { flags -= f } else { flags |= f }
    }
    (flags, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compacts_lowerdirs_to_common_parent() {
        let data = "index=off,workdir=/r/s/3/work,upperdir=/r/s/3/fs,lowerdir=/r/s/2/fs:/r/s/1/fs";
        let (dir, out) = compact_lowerdir(data).unwrap();
        assert_eq!(dir, Path::new("/r/s/"));
        assert_eq!(
            out,
            "index=off,workdir=/r/s/3/work,upperdir=/r/s/3/fs,lowerdir=2/fs:1/fs"
        );
        let (dir, out) = compact_lowerdir("lowerdir=/r/s/12/fs:/r/s/13/fs").unwrap();
        assert_eq!(
            (dir, out.as_str()),
            (PathBuf::from("/r/s/"), "lowerdir=12/fs:13/fs")
        );
    }

    #[test]
    fn splits_flags_from_data() {
        let opts: Vec<String> = ["ro", "rbind", "index=off"].map(String::from).to_vec();
        let (f, d) = split_options(&opts);
        assert!(f.contains(MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC));
        assert_eq!(d, ["index=off"]);
    }
}
