//! Filesystem appliers (continuity's `fstest`) and a directory comparison.
//!
//! An applier is a slice of [`Op`]s applied in order under a root; paths are relative to it
//! (a leading `/` is ignored).

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One filesystem change.
#[derive(Debug, Clone)]
pub enum Op {
    /// Write (create or truncate) a file, then chmod it.
    File(String, Vec<u8>, u32),
    /// `mkdir -p`, then chmod.
    Dir(String, u32),
    /// `rm -rf` (missing is fine).
    RemoveAll(String),
    /// `lchown`.
    Chown(String, u32, u32),
    /// `chmod`.
    Chmod(String, u32),
    /// Symlink at `.1` pointing to `.0`.
    Symlink(String, String),
    /// Hard link at `.1` to the existing `.0`.
    Link(String, String),
    /// Rename `.0` to `.1`.
    Rename(String, String),
    /// Set an extended attribute (no-follow).
    Xattr(String, String, Vec<u8>),
}

/// [`Op::File`].
pub fn create_file(path: &str, content: &[u8], mode: u32) -> Op {
    Op::File(path.into(), content.to_vec(), mode)
}
/// [`Op::Dir`].
pub fn create_dir(path: &str, mode: u32) -> Op {
    Op::Dir(path.into(), mode)
}
/// [`Op::RemoveAll`].
pub fn remove_all(path: &str) -> Op {
    Op::RemoveAll(path.into())
}
/// [`Op::Chown`].
pub fn chown(path: &str, uid: u32, gid: u32) -> Op {
    Op::Chown(path.into(), uid, gid)
}
/// [`Op::Link`].
pub fn link(old: &str, new: &str) -> Op {
    Op::Link(old.into(), new.into())
}
/// [`Op::Symlink`].
pub fn symlink(target: &str, link: &str) -> Op {
    Op::Symlink(target.into(), link.into())
}

fn at(root: &Path, p: &str) -> PathBuf {
    root.join(p.trim_start_matches('/'))
}

fn chmod(p: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(p, fs::Permissions::from_mode(mode))
}

/// Applies `ops` in order under `root`.
pub fn apply(root: &Path, ops: &[Op]) -> io::Result<()> {
    for op in ops {
        apply_one(root, op).map_err(|e| io::Error::new(e.kind(), format!("{op:?}: {e}")))?;
    }
    Ok(())
}

fn apply_one(root: &Path, op: &Op) -> io::Result<()> {
    match op {
        Op::File(p, content, mode) => {
            fs::write(at(root, p), content)?;
            chmod(&at(root, p), *mode)
        }
        Op::Dir(p, mode) => {
            fs::create_dir_all(at(root, p))?;
            chmod(&at(root, p), *mode)
        }
        Op::RemoveAll(p) => remove_all_at(&at(root, p)),
        Op::Chown(p, uid, gid) => std::os::unix::fs::lchown(at(root, p), Some(*uid), Some(*gid)),
        Op::Chmod(p, mode) => chmod(&at(root, p), *mode),
        Op::Symlink(target, l) => std::os::unix::fs::symlink(target, at(root, l)),
        Op::Link(old, new) => fs::hard_link(at(root, old), at(root, new)),
        Op::Rename(old, new) => fs::rename(at(root, old), at(root, new)),
        Op::Xattr(p, k, v) => set_xattr(&at(root, p), k, v),
    }
}

fn remove_all_at(p: &Path) -> io::Result<()> {
    let res = match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) => Err(e),
    };
    match res {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

fn cpath(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

fn set_xattr(p: &Path, key: &str, value: &[u8]) -> io::Result<()> {
    let (cp, ck) = (cpath(p)?, CString::new(key).map_err(io::Error::other)?);
    // SAFETY: both strings are NUL-terminated and live across the call; value is a valid slice.
    let rc = unsafe {
        libc::lsetxattr(
            cp.as_ptr(),
            ck.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Extended attributes of `p` (no-follow), minus the ones overlayfs or LSMs manage.
pub fn xattrs(p: &Path) -> io::Result<BTreeMap<String, Vec<u8>>> {
    let cp = cpath(p)?;
    let mut names = vec![0u8; 64 * 1024];
    // SAFETY: cp is NUL-terminated; the buffer is writable for names.len() bytes.
    let n = unsafe { libc::llistxattr(cp.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    if n < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOTSUP) => Ok(BTreeMap::new()),
            _ => Err(e),
        };
    }
    names.truncate(n as usize);
    let mut out = BTreeMap::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let key = String::from_utf8_lossy(name).into_owned();
        if ["security.", "trusted.overlay.", "user.overlay."]
            .iter()
            .any(|p| key.starts_with(p))
        {
            continue;
        }
        out.insert(key, get_xattr(&cp, name)?);
    }
    Ok(out)
}

fn get_xattr(cp: &CString, name: &[u8]) -> io::Result<Vec<u8>> {
    let ck = CString::new(name).map_err(io::Error::other)?;
    let mut buf = vec![0u8; 64 * 1024];
    // SAFETY: both strings are NUL-terminated; the buffer is writable for buf.len() bytes.
    let n =
        unsafe { libc::lgetxattr(cp.as_ptr(), ck.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// What the comparison looks at for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    content: Vec<u8>,
    xattrs: BTreeMap<String, Vec<u8>>,
    /// Other paths of the tree sharing this inode (hard links).
    links: Vec<String>,
}

fn kind_of(ft: fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    match () {
        _ if ft.is_dir() => "dir",
        _ if ft.is_symlink() => "symlink",
        _ if ft.is_file() => "file",
        _ if ft.is_char_device() => "char",
        _ if ft.is_block_device() => "block",
        _ if ft.is_fifo() => "fifo",
        _ => "socket",
    }
}

fn entry(p: &Path) -> io::Result<(Entry, (u64, u64))> {
    let m = fs::symlink_metadata(p)?;
    let kind = kind_of(m.file_type());
    let content = match kind {
        "file" => fs::read(p)?,
        "symlink" => fs::read_link(p)?.as_os_str().as_bytes().to_vec(),
        _ => Vec::new(),
    };
    let e = Entry {
        kind,
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
        content,
        xattrs: xattrs(p)?,
        links: Vec::new(),
    };
    Ok((e, (m.dev(), m.ino())))
}

/// Every path below `root` (the root itself excluded, as continuity's manifests).
fn manifest(root: &Path) -> io::Result<BTreeMap<String, Entry>> {
    let mut out = BTreeMap::new();
    let mut inodes: HashMap<(u64, u64), Vec<String>> = HashMap::new();
    for d in walkdir::WalkDir::new(root).min_depth(1).sort_by_file_name() {
        let d = d.map_err(io::Error::other)?;
        let rel = d.path().strip_prefix(root).map_err(io::Error::other)?;
        let rel = format!("/{}", rel.display());
        let (e, ino) = entry(d.path())?;
        if e.kind == "file" {
            inodes.entry(ino).or_default().push(rel.clone());
        }
        out.insert(rel, e);
    }
    for paths in inodes.values().filter(|p| p.len() > 1) {
        for p in paths {
            let others = paths.iter().filter(|o| *o != p).cloned().collect();
            out.get_mut(p).expect("walked").links = others;
        }
    }
    Ok(out)
}

/// Errors describing how `a` and `b` differ (type, content, mode, owner, symlink target,
/// xattrs, hard-link groups), or Ok when they are equal.
pub fn check_directory_equal(a: &Path, b: &Path) -> io::Result<()> {
    let (ma, mb) = (manifest(a)?, manifest(b)?);
    let mut diffs = Vec::new();
    for (p, ea) in &ma {
        match mb.get(p) {
            None => diffs.push(format!("only in {}: {p}", a.display())),
            Some(eb) if eb != ea => diffs.push(format!("{p}: {ea:?} != {eb:?}")),
            Some(_) => {}
        }
    }
    diffs.extend(
        mb.keys()
            .filter(|p| !ma.contains_key(*p))
            .map(|p| format!("only in {}: {p}", b.display())),
    );
    if diffs.is_empty() {
        return Ok(());
    }
    diffs.truncate(20);
    Err(io::Error::other(format!(
        "{} and {} differ:\n  {}",
        a.display(),
        b.display(),
        diffs.join("\n  ")
    )))
}

/// Applies `ops` to a fresh temporary directory and compares it with `root`.
pub fn check_directory_equal_with_applier(root: &Path, ops: &[Op]) -> io::Result<()> {
    let tmp = tempfile::tempdir()?;
    apply(tmp.path(), ops)?;
    check_directory_equal(tmp.path(), root)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(ops: &[Op]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        apply(t.path(), ops).unwrap();
        t
    }

    #[test]
    fn equal_trees_compare_equal() {
        let ops = [
            create_dir("/d", 0o755),
            create_file("/d/f", b"x", 0o644),
            symlink("f", "/d/l"),
        ];
        let (a, b) = (tree(&ops), tree(&ops));
        check_directory_equal(a.path(), b.path()).unwrap();
    }

    #[test]
    fn detects_content_mode_type_and_missing() {
        let base = [create_dir("/d", 0o755), create_file("/d/f", b"x", 0o644)];
        let a = tree(&base);
        for change in [
            create_file("/d/f", b"y", 0o644),
            Op::Chmod("/d/f".into(), 0o600),
            remove_all("/d/f"),
            create_file("/d/g", b"", 0o644),
            Op::Xattr("/d/f".into(), "user.k".into(), b"v".to_vec()),
        ] {
            let b = tree(&base);
            apply(b.path(), std::slice::from_ref(&change)).unwrap();
            assert!(
                check_directory_equal(a.path(), b.path()).is_err(),
                "{change:?} not detected"
            );
        }
    }

    #[test]
    fn detects_hardlink_groups() {
        let base = [create_file("/f", b"x", 0o644)];
        let a = tree(&[base[0].clone(), create_file("/g", b"x", 0o644)]);
        let b = tree(&[base[0].clone(), link("/f", "/g")]);
        assert!(check_directory_equal(a.path(), b.path()).is_err());
    }
}
