//! Layers for tests: tars built entry by entry, and trees listed entry by entry.

use std::path::{Path, PathBuf};

/// A tar entry for [`tar_of`]: name, kind, mode, data or link target.
pub type Entry<'a> = (&'a str, tar::EntryType, u32, &'a [u8]);

pub fn tar_of(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, mode, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_mode(*mode);
        h.set_mtime(1_650_000_000);
        match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                h.set_size(0);
                let target = std::str::from_utf8(data).unwrap();
                b.append_link(&mut h, name, target).unwrap();
            }
            _ => {
                h.set_size(data.len() as u64);
                b.append_data(&mut h, name, *data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut e, data).unwrap();
    e.finish().unwrap()
}

/// Four layers: a gzip base; whiteouts, an opaque directory, a symlink and a root (`./`) entry;
/// a setuid file and a hard link; and one whose parent directories come from the layers below
/// (it cannot be applied apart from them).
pub fn four_layers() -> Vec<Vec<u8>> {
    use tar::EntryType::{Directory as D, Link as H, Regular as F, Symlink as S};
    vec![
        gzip(&tar_of(&[
            ("etc/", D, 0o755, b""),
            ("etc/motd", F, 0o644, b"hello"),
            ("etc/gone", F, 0o644, b"x"),
            ("usr/", D, 0o755, b""),
            ("usr/bin/", D, 0o755, b""),
            ("usr/bin/tool", F, 0o755, b"binary"),
            ("usr/bin/alias", H, 0o755, b"usr/bin/tool"),
            ("usr/lib/", D, 0o755, b""),
            ("usr/lib/a", F, 0o644, b"a"),
        ])),
        tar_of(&[
            ("./", D, 0o750, b""),
            ("etc/", D, 0o755, b""),
            ("etc/.wh.gone", F, 0o644, b""),
            ("etc/motd", F, 0o600, b"bye"),
            ("etc/link", S, 0o777, b"motd"),
            ("usr/", D, 0o755, b""),
            ("usr/lib/", D, 0o700, b""),
            ("usr/lib/.wh..wh..opq", F, 0o644, b""),
            ("usr/lib/c", F, 0o644, b"c"),
        ]),
        tar_of(&[
            ("opt/", D, 0o755, b""),
            ("opt/file", F, 0o4755, b"s"),
            ("opt/hl", H, 0o4755, b"opt/file"),
        ]),
        tar_of(&[("etc/deep/x", F, 0o644, b"deep")]),
    ]
}

/// Every entry under `root` (relative path, then type, mode, owner, size, content or link
/// target, device, xattrs, and mtime for all but the root).
pub fn entries_of(root: &Path) -> Vec<String> {
    fn walk(root: &Path, rel: &Path, out: &mut Vec<String>) {
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let p = root.join(rel);
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let body = if ft.is_file() {
            format!("{:?}", std::fs::read(&p).unwrap())
        } else if ft.is_symlink() {
            std::fs::read_link(&p).unwrap().display().to_string()
        } else {
            String::new()
        };
        let mut xattrs: Vec<String> = xattr::list(&p)
            .unwrap()
            .map(|k| {
                let v = xattr::get(&p, &k).unwrap().unwrap_or_default();
                format!("{}={:?}", k.to_string_lossy(), v)
            })
            .collect();
        xattrs.sort();
        // A whiteout (a 0:0 character device) is made at unpack time, with that moment as its
        // mtime: two unpacks a second apart differ there (containerd's too).
        let whiteout = ft.is_char_device() && md.rdev() == 0;
        let mtime = if rel.as_os_str().is_empty() || whiteout {
            0
        } else {
            md.mtime()
        };
        out.push(format!(
            "{} mode={:o} {}:{} size={} rdev={} mtime={mtime} xattrs={xattrs:?} {body}",
            rel.display(),
            md.mode(),
            md.uid(),
            md.gid(),
            if ft.is_dir() { 0 } else { md.size() },
            md.rdev(),
        ));
        if ft.is_dir() {
            let mut names: Vec<_> = std::fs::read_dir(&p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            for n in names {
                walk(root, &rel.join(n), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(root, Path::new(""), &mut out);
    out
}

/// `entries` with the mtimes of directories cut out.
pub fn without_dir_mtimes(entries: Vec<String>) -> Vec<String> {
    entries
        .into_iter()
        .map(|e| match e.split_once(" mode=40") {
            Some(_) => e
                .split(' ')
                .filter(|f| !f.starts_with("mtime="))
                .collect::<Vec<_>>()
                .join(" "),
            None => e,
        })
        .collect()
}

/// The topmost directory of a View's overlay `mounts`: the committed snapshot it was made of.
pub fn top_layer(mounts: &[strata_proxy::api::types::Mount]) -> PathBuf {
    let m = &mounts[0];
    let dir = match m.r#type.as_str() {
        "bind" => m.source.clone(),
        _ => m
            .options
            .iter()
            .find_map(|o| o.strip_prefix("lowerdir="))
            .unwrap()
            .split(':')
            .next()
            .unwrap()
            .to_string(),
    };
    dir.into()
}
