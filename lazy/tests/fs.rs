//! The FUSE file system of a lazy layer, mounted for real (root and /dev/fuse needed: without
//! them every test here fails, saying so): the tree it shows against a full unpack of the same
//! blob the way containerd's overlay snapshotter stores one (strata-archive's applier, overlay
//! whiteouts), the mount as an overlay lower layer, a damaged blob, and unmounting.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::CString;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use strata_lazy::RangeSource;
use strata_lazy::estargz::Layer;
use strata_lazy::fs::{MountOptions, Mounted, mount};

const TOC_DIGEST: &str = "sha256:d09cfbd18261a12a3f4502ae3bc68e3450bf6f55bb07e326da1ecf477e78db18";
const ZSTD_TOC_DIGEST: &str =
    "sha256:1e0b9fd0ba5b338e5c293080ce5f431e7e936e058d7a52264e31f327cbf17521";
const OPAQUE: &str = "trusted.overlay.opaque";

fn read_fixture(name: &str) -> Vec<u8> {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test"));
    std::fs::read(dir.join("tests/fixtures").join(name)).unwrap()
}

/// Fails the test, saying why, where FUSE mounts cannot be made.
fn require_root_and_fuse() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "these tests mount FUSE and overlay file systems: run them as root"
    );
    assert!(
        Path::new("/dev/fuse").exists(),
        "these tests need /dev/fuse (load the fuse module, or give the container the device)"
    );
}

/// Whether `path` is a mount point now (`/proc/self/mountinfo`'s fifth field).
fn is_mounted(path: &Path) -> bool {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let want = path.to_str().unwrap();
    info.lines().any(|l| l.split(' ').nth(4) == Some(want))
}

/// Detaches a mount when dropped (also when a test panics), unless it is gone already.
struct Guard(PathBuf);

impl Drop for Guard {
    fn drop(&mut self) {
        while is_mounted(&self.0) {
            let st = Command::new("umount").arg("-l").arg(&self.0).status();
            if !matches!(st, Ok(s) if s.success()) {
                break;
            }
        }
    }
}

/// A layer mounted under a temporary directory, served by a runtime of its own (the test's
/// thread makes blocking file system calls).
struct Mount {
    mounted: Option<Mounted>,
    guard: Guard,
    rt: tokio::runtime::Runtime,
    dir: tempfile::TempDir,
}

impl Mount {
    fn new<S: RangeSource + 'static>(layer: Layer<S>) -> Mount {
        Mount::with_options(layer, &MountOptions::default())
    }

    fn with_options<S: RangeSource + 'static>(layer: Layer<S>, opts: &MountOptions) -> Mount {
        require_root_and_fuse();
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join("mnt");
        std::fs::create_dir(&at).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let guard = Guard(at.clone());
        let mounted = rt.block_on(mount(Arc::new(layer), &at, opts)).unwrap();
        assert!(is_mounted(&at), "{} is not in mountinfo", at.display());
        Mount {
            mounted: Some(mounted),
            guard,
            rt,
            dir,
        }
    }

    fn path(&self) -> &Path {
        &self.guard.0
    }

    fn mounted(&self) -> &Mounted {
        self.mounted.as_ref().unwrap()
    }

    fn unmount(&mut self) {
        let m = self.mounted.take().unwrap();
        self.rt.block_on(m.unmount()).unwrap();
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(m) = self.mounted.take() {
            let _ = self.rt.block_on(m.unmount());
        }
    }
}

/// The extended attributes of `p` (not following a symlink).
fn xattrs(p: &Path) -> BTreeMap<String, Vec<u8>> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let mut names = vec![0u8; 65536];
    // SAFETY: `c` is a NUL-terminated path; `names` is writable for its length.
    let n = unsafe { libc::llistxattr(c.as_ptr(), names.as_mut_ptr().cast(), names.len()) };
    assert!(
        n >= 0,
        "llistxattr {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
    names.truncate(n as usize);
    let mut out = BTreeMap::new();
    for name in names.split(|b| *b == 0).filter(|n| !n.is_empty()) {
        let k = CString::new(name).unwrap();
        let mut v = vec![0u8; 65536];
        // SAFETY: `c` and `k` are NUL-terminated; `v` is writable for its length.
        let n = unsafe { libc::lgetxattr(c.as_ptr(), k.as_ptr(), v.as_mut_ptr().cast(), v.len()) };
        assert!(n >= 0, "lgetxattr {} {k:?}", p.display());
        v.truncate(n as usize);
        out.insert(String::from_utf8(name.to_vec()).unwrap(), v);
    }
    out
}

/// `getxattr(path, name)` with a buffer of `size` bytes: the count, or the errno.
fn getxattr_raw(p: &Path, name: &str, size: usize) -> Result<usize, i32> {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    let k = CString::new(name).unwrap();
    let mut v = vec![0u8; size.max(1)];
    // SAFETY: `c` and `k` are NUL-terminated; `v` is writable for at least `size` bytes.
    let n = unsafe { libc::lgetxattr(c.as_ptr(), k.as_ptr(), v.as_mut_ptr().cast(), size) };
    if n < 0 {
        Err(std::io::Error::last_os_error().raw_os_error().unwrap())
    } else {
        Ok(n as usize)
    }
}

/// What the comparison looks at, for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Desc {
    kind: char,
    mode: u32,
    uid: u32,
    gid: u32,
    /// Regular files and symlinks.
    size: Option<u64>,
    sha256: Option<String>,
    target: Option<String>,
    rdev: Option<(u64, u64)>,
    xattrs: BTreeMap<String, Vec<u8>>,
    mtime: Option<(i64, i64)>,
}

/// Every path below `root` (relative) with its description, and the groups of names sharing
/// an inode (hard links).
fn snapshot(root: &Path) -> (BTreeMap<String, Desc>, BTreeSet<BTreeSet<String>>) {
    let mut out = BTreeMap::new();
    let mut inodes: BTreeMap<u64, BTreeSet<String>> = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        for e in std::fs::read_dir(root.join(&rel)).unwrap() {
            let e = e.unwrap();
            let rel = rel.join(e.file_name());
            let p = root.join(&rel);
            let md = std::fs::symlink_metadata(&p).unwrap();
            let ft = md.file_type();
            let name = rel.to_str().unwrap().to_string();
            let kind = match () {
                _ if ft.is_dir() => 'd',
                _ if ft.is_file() => 'f',
                _ if ft.is_symlink() => 'l',
                _ if ft.is_char_device() => 'c',
                _ if ft.is_block_device() => 'b',
                _ if ft.is_fifo() => 'p',
                _ => panic!("{name}: unexpected type"),
            };
            if kind == 'd' {
                todo.push(rel.clone());
            } else {
                inodes.entry(md.ino()).or_default().insert(name.clone());
            }
            let sha256 = (kind == 'f').then(|| {
                let mut f = std::fs::File::open(&p).unwrap();
                let mut data = Vec::new();
                f.read_to_end(&mut data)
                    .unwrap_or_else(|e| panic!("reading {name}: {e}"));
                hex::encode(Sha256::digest(&data))
            });
            let rdev = md.rdev();
            out.insert(
                name,
                Desc {
                    kind,
                    mode: md.mode() & 0o7777,
                    uid: md.uid(),
                    gid: md.gid(),
                    size: matches!(kind, 'f' | 'l').then(|| md.size()),
                    sha256,
                    target: (kind == 'l')
                        .then(|| std::fs::read_link(&p).unwrap().to_str().unwrap().into()),
                    rdev: matches!(kind, 'c' | 'b')
                        .then(|| (libc::major(rdev) as u64, libc::minor(rdev) as u64)),
                    xattrs: xattrs(&p),
                    mtime: Some((md.mtime(), md.mtime_nsec())),
                },
            );
        }
    }
    let links = inodes.into_values().filter(|g| g.len() > 1).collect();
    (out, links)
}

/// The tree a full unpack of `blob` gives, as containerd's overlay snapshotter stores it.
fn unpacked(blob: &[u8], at: &Path) -> (BTreeMap<String, Desc>, BTreeSet<BTreeSet<String>>) {
    std::fs::create_dir(at).unwrap();
    let opts = strata_archive::Options {
        whiteouts: strata_archive::Whiteouts::Overlay {
            opaque_xattr: OPAQUE.to_string(),
        },
        ..strata_archive::Options::default()
    };
    strata_archive::apply(blob, at, &opts).unwrap();
    snapshot(at)
}

/// Compares the mounted tree with the unpacked one entry by entry. Whiteouts (0/0 character
/// devices) and the directories in `implied` get their times from the unpack's clock, so their
/// times are not compared.
fn assert_same_tree(
    got: &(BTreeMap<String, Desc>, BTreeSet<BTreeSet<String>>),
    want: &(BTreeMap<String, Desc>, BTreeSet<BTreeSet<String>>),
    implied: &[&str],
) {
    let names = |m: &BTreeMap<String, Desc>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&got.0), names(&want.0), "the same names");
    for (name, w) in &want.0 {
        let mut g = got.0[name].clone();
        let mut w = w.clone();
        if w.rdev == Some((0, 0)) || implied.contains(&name.as_str()) {
            g.mtime = None;
            w.mtime = None;
        }
        assert_eq!(g, w, "{name}");
    }
    assert_eq!(got.1, want.1, "the same hard links");
}

/// Mounts eStargz or zstd:chunked fixture `file` and checks it against a full unpack.
fn fixture_matches_a_full_unpack(file: &str, toc: &str) {
    let blob = read_fixture(file);
    let m = Mount::new(Layer::open(blob.clone(), toc).unwrap());
    let mut want = unpacked(&blob, &m.dir.path().join("unpacked"));
    let got = snapshot(m.path());
    // The eStargz tar stream ends with the TOC as a file; the TOC does not list itself, so the
    // mount has no such file (stargz-snapshotter's has none either).
    if file.ends_with(".gz") {
        assert!(want.0.remove("stargz.index.json").is_some());
    }
    // The converter's prefetch landmark at the root is hidden (as stargz-snapshotter hides it).
    assert!(want.0.remove(".no.prefetch.landmark").is_some());
    assert_same_tree(&got, &want, &[]);

    let mnt = m.path();
    let gone = std::fs::symlink_metadata(mnt.join("etc/gone")).unwrap();
    assert!(
        gone.file_type().is_char_device() && gone.rdev() == 0,
        "etc/gone is a 0/0 whiteout"
    );
    assert!(
        !mnt.join("etc/.wh.gone").exists(),
        "the .wh. entry is not shown"
    );
    let (hard, hello) = (
        std::fs::metadata(mnt.join("etc/hard")).unwrap(),
        std::fs::metadata(mnt.join("etc/hello.txt")).unwrap(),
    );
    assert_eq!(hard.ino(), hello.ino(), "hard link shares the inode");
    assert_eq!(hello.nlink(), 2);
    assert_eq!(
        std::fs::metadata(mnt.join("empty")).unwrap().mode() & 0o7777,
        0o4755
    );
    let big = std::fs::read(mnt.join("etc/big.bin")).unwrap();
    let mut want_big = vec![b'A'; 50_000];
    want_big[..20_000].copy_from_slice(&big[..20_000]);
    assert_eq!(big, want_big, "20,000 random bytes then 30,000 'A's");
    assert_eq!(
        got.0["etc/big.bin"].sha256,
        Some(hex::encode(Sha256::digest(&big)))
    );
    assert_eq!(
        std::fs::read_link(mnt.join("etc/link")).unwrap(),
        Path::new("hello.txt")
    );
    assert_eq!(
        std::fs::read(mnt.join("etc/link")).unwrap(),
        b"hello strata\n"
    );
    // Read-only, however it is asked.
    let erofs = |r: std::io::Result<()>| r.unwrap_err().raw_os_error();
    assert_eq!(
        erofs(std::fs::write(mnt.join("new"), b"x")),
        Some(libc::EROFS)
    );
    assert_eq!(
        erofs(
            std::fs::OpenOptions::new()
                .append(true)
                .open(mnt.join("etc/hello.txt"))
                .map(drop)
        ),
        Some(libc::EROFS)
    );
    assert_eq!(
        erofs(std::fs::remove_file(mnt.join("empty"))),
        Some(libc::EROFS)
    );
    assert_eq!(erofs(std::fs::create_dir(mnt.join("d"))), Some(libc::EROFS));
    let st = nix::sys::statvfs::statvfs(mnt).unwrap();
    assert_eq!(st.block_size(), 4096);
    // /, etc, hello.txt (and its hard link), big.bin, link, gone, empty.
    assert_eq!(st.files(), 7, "{} inodes", st.files());
    // 50,000 + 13 bytes (the hidden landmark does not count).
    assert_eq!(
        st.blocks(),
        50_013u64.div_ceil(4096),
        "{} blocks",
        st.blocks()
    );
}

#[test]
fn the_estargz_fixture_mounts_as_a_full_unpack_gives() {
    fixture_matches_a_full_unpack("estargz-chunked.gz", TOC_DIGEST);
}

#[test]
fn the_zstd_chunked_fixture_mounts_as_a_full_unpack_gives() {
    fixture_matches_a_full_unpack("zstdchunked.zst", ZSTD_TOC_DIGEST);
}

/// One entry of a synthetic layer.
struct E {
    name: String,
    kind: tar::EntryType,
    mode: u32,
    ids: (u64, u64),
    data: Vec<u8>,
    link: &'static str,
    dev: (u32, u32),
    xattrs: Vec<(&'static str, &'static [u8])>,
}

fn e(name: impl Into<String>, kind: tar::EntryType, mode: u32) -> E {
    E {
        name: name.into(),
        kind,
        mode,
        ids: (0, 0),
        data: Vec::new(),
        link: "",
        dev: (0, 0),
        xattrs: Vec::new(),
    }
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut g = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    g.write_all(data).unwrap();
    g.finish().unwrap()
}

/// An eStargz blob of `entries` (each header its own gzip member, each file's data another, a
/// TOC, the 51-byte footer) and the digest of its TOC: what stargz-snapshotter's writer makes,
/// with entries the converter fixtures lack (opaque directories, devices, fifos, extended
/// attributes, implied parents).
fn estargz(entries: &[E]) -> (Vec<u8>, String) {
    let mut blob = Vec::new();
    let mut toc = Vec::new();
    for en in entries {
        let mut b = tar::Builder::new(Vec::new());
        let pax: Vec<(String, &[u8])> = en
            .xattrs
            .iter()
            .map(|(k, v)| (format!("SCHILY.xattr.{k}"), *v))
            .collect();
        if !pax.is_empty() {
            b.append_pax_extensions(pax.iter().map(|(k, v)| (k.as_str(), *v)))
                .unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(en.kind);
        h.set_path(&en.name).unwrap();
        h.set_mode(en.mode);
        h.set_uid(en.ids.0);
        h.set_gid(en.ids.1);
        h.set_mtime(1_700_000_000);
        h.set_size(en.data.len() as u64);
        if !en.link.is_empty() {
            h.set_link_name(en.link).unwrap();
        }
        h.set_device_major(en.dev.0).unwrap();
        h.set_device_minor(en.dev.1).unwrap();
        h.set_cksum();
        b.append(&h, &en.data[..]).unwrap();
        let bytes = b.get_ref().clone();
        let padded = en.data.len().div_ceil(512) * 512;
        blob.extend(gz(&bytes[..bytes.len() - padded]));
        let kind = match en.kind {
            tar::EntryType::Directory => "dir",
            tar::EntryType::Regular => "reg",
            tar::EntryType::Symlink => "symlink",
            tar::EntryType::Link => "hardlink",
            tar::EntryType::Char => "char",
            tar::EntryType::Block => "block",
            tar::EntryType::Fifo => "fifo",
            other => panic!("{other:?}"),
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut j = serde_json::json!({
            "name": en.name, "type": kind, "mode": en.mode, "uid": en.ids.0, "gid": en.ids.1,
            "modtime": "2023-11-14T22:13:20Z", "linkName": en.link,
            "devMajor": en.dev.0, "devMinor": en.dev.1,
            "xattrs": en.xattrs.iter().map(|(k, v)| (k.to_string(), b64.encode(v)))
                .collect::<BTreeMap<_, _>>(),
        });
        if kind == "reg" {
            j["size"] = en.data.len().into();
        }
        if kind == "reg" && !en.data.is_empty() {
            j["offset"] = blob.len().into();
            let d = format!("sha256:{}", hex::encode(Sha256::digest(&en.data)));
            j["digest"] = d.clone().into();
            j["chunkDigest"] = d.into();
            blob.extend(gz(&bytes[bytes.len() - padded..]));
        }
        toc.push(j);
    }
    with_toc(blob, toc)
}

/// `blob` (the layer's gzip members) followed by the TOC of `toc`'s entries and the footer, and
/// the TOC's digest.
fn with_toc(mut blob: Vec<u8>, toc: Vec<serde_json::Value>) -> (Vec<u8>, String) {
    let json = serde_json::to_vec(&serde_json::json!({"version": 1, "entries": toc})).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("stargz.index.json").unwrap();
    h.set_size(json.len() as u64);
    h.set_mode(0o644);
    h.set_cksum();
    b.append(&h, &json[..]).unwrap();
    let toc_at = blob.len();
    blob.extend(gz(&b.into_inner().unwrap()));
    // The footer: an empty gzip member whose extra field holds "SG", 22, the TOC's offset.
    let mut footer = vec![
        0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 0xff, 26, 0, b'S', b'G', 22, 0,
    ];
    footer.extend(format!("{toc_at:016x}STARGZ").into_bytes());
    footer.extend([1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(footer.len(), 51);
    blob.extend(footer);
    (
        blob,
        format!("sha256:{}", hex::encode(Sha256::digest(&json))),
    )
}

/// Files in directory `many`: more than one readdir reply holds.
const MANY: usize = 300;

fn many_name(i: usize) -> String {
    format!("a-file-with-a-name-long-enough-to-fill-pages-{i:04}")
}

/// Entries the fixtures lack: opaque directories, a whiteout over a directory, devices, a fifo,
/// extended attributes, parents only implied, set-gid, a hard link to a file with xattrs.
#[test]
fn opaque_dirs_devices_fifos_and_xattrs_mount_as_a_full_unpack_gives() {
    use tar::EntryType as T;
    let mut entries = vec![
        e("a/", T::Directory, 0o750),
        e("a/.wh..wh..opq", T::Regular, 0o644),
        e("a/file", T::Regular, 0o640),
        e("a/.wh.olddir", T::Regular, 0o644),
        e("deep/er/file", T::Regular, 0o644),
        e("deep/er/.wh..wh..opq", T::Regular, 0o644),
        e("dev/", T::Directory, 0o755),
        e("dev/null", T::Char, 0o666),
        e("dev/sda", T::Block, 0o660),
        e("fifo", T::Fifo, 0o600),
        e("bin/", T::Directory, 0o755),
        e("bin/tool", T::Regular, 0o2755),
        e("bin/tool2", T::Link, 0o2755),
        e("sym", T::Symlink, 0o777),
    ];
    entries[2].data = b"content of a/file\n".to_vec();
    entries[2].ids = (5, 6);
    entries[2].xattrs = vec![("user.comment", b"hello"), ("user.empty", b"")];
    entries[0].xattrs = vec![("user.dir", b"d")];
    entries[4].data = vec![7u8; 70_000];
    entries[7].dev = (1, 3);
    entries[8].dev = (8, 0x123);
    entries[11].data = b"#!/bin/sh\necho tool\n".to_vec();
    entries[11].xattrs = vec![("user.cap", b"\x01\x02\x00")];
    entries[12].link = "bin/tool";
    entries[13].link = "a/file";
    entries.extend((0..MANY).map(|i| e(format!("many/{}", many_name(i)), T::Regular, 0o644)));
    let (blob, toc) = estargz(&entries);
    let m = Mount::new(Layer::open(blob.clone(), &toc).unwrap());
    let mut want = unpacked(&blob, &m.dir.path().join("unpacked"));
    assert!(want.0.remove("stargz.index.json").is_some());
    let got = snapshot(m.path());
    assert_same_tree(&got, &want, &["deep", "deep/er", "many"]);

    let mnt = m.path();
    assert_eq!(xattrs(&mnt.join("a"))[OPAQUE], b"y");
    assert_eq!(xattrs(&mnt.join("deep/er"))[OPAQUE], b"y");
    assert!(!xattrs(&mnt.join("deep")).contains_key(OPAQUE));
    assert!(!mnt.join("a/.wh..wh..opq").exists());
    let olddir = std::fs::symlink_metadata(mnt.join("a/olddir")).unwrap();
    assert!(olddir.file_type().is_char_device() && olddir.rdev() == 0);
    // The size-probe protocol, ENODATA and ERANGE.
    let a = mnt.join("a");
    assert_eq!(getxattr_raw(&a, OPAQUE, 0), Ok(1));
    assert_eq!(getxattr_raw(&a, "user.dir", 0), Ok(1));
    assert_eq!(getxattr_raw(&a, "user.none", 10), Err(libc::ENODATA));
    assert_eq!(
        getxattr_raw(&a.join("file"), "user.comment", 2),
        Err(libc::ERANGE)
    );
    assert_eq!(getxattr_raw(&a.join("file"), "user.empty", 0), Ok(0));
    let tool = std::fs::metadata(mnt.join("bin/tool")).unwrap();
    assert_eq!((tool.mode() & 0o7777, tool.nlink()), (0o2755, 2));
    assert_eq!(got.0["dev/sda"].rdev, Some((8, 0x123)));
    // Directory offsets resume: `many` needs several readdir replies of a page each.
    let mut names: Vec<String> = std::fs::read_dir(mnt.join("many"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let want: Vec<String> = (0..MANY).map(many_name).collect();
    assert_eq!(names, want, "every entry once");
    let mut top: Vec<_> = std::fs::read_dir(mnt)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    top.sort();
    assert_eq!(top, ["a", "bin", "deep", "dev", "fifo", "many", "sym"]);
}

/// The mount as an overlay lower layer, over a plain directory with a file the layer deletes:
/// the whiteout hides it, the layer's files read, a write copies up.
#[test]
fn an_overlay_over_the_mount_honours_whiteouts_and_copies_up() {
    let blob = read_fixture("estargz-chunked.gz");
    let m = Mount::new(Layer::open(blob, TOC_DIGEST).unwrap());
    let base = m.dir.path();
    let plain = base.join("plain");
    std::fs::create_dir_all(plain.join("etc")).unwrap();
    std::fs::write(plain.join("etc/gone"), b"deleted by the layer").unwrap();
    std::fs::write(plain.join("etc/kept"), b"from below").unwrap();
    for d in ["upper", "work", "merged"] {
        std::fs::create_dir(base.join(d)).unwrap();
    }
    let merged = base.join("merged");
    let opts = format!(
        "lowerdir={}:{},upperdir={},workdir={}",
        m.path().display(),
        plain.display(),
        base.join("upper").display(),
        base.join("work").display()
    );
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &opts])
        .arg(&merged)
        .status()
        .unwrap();
    assert!(st.success(), "mount -t overlay -o {opts}");
    let overlay = Guard(merged.clone());

    assert!(
        !merged.join("etc/gone").exists(),
        "the whiteout hides the lower file"
    );
    assert!(std::fs::symlink_metadata(merged.join("etc/gone")).is_err());
    assert_eq!(
        std::fs::read(merged.join("etc/kept")).unwrap(),
        b"from below"
    );
    assert_eq!(
        std::fs::read(merged.join("etc/hello.txt")).unwrap(),
        b"hello strata\n"
    );
    assert_eq!(
        std::fs::read(merged.join("etc/big.bin")).unwrap().len(),
        50_000
    );
    let mut names: Vec<_> = std::fs::read_dir(merged.join("etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["big.bin", "hard", "hello.txt", "kept", "link"]);

    // A write copies the file up from the FUSE layer; the layer stays as it was.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(merged.join("etc/hello.txt"))
        .unwrap();
    f.write_all(b"more\n").unwrap();
    drop(f);
    assert_eq!(
        std::fs::read(base.join("upper/etc/hello.txt")).unwrap(),
        b"hello strata\nmore\n"
    );
    assert_eq!(
        std::fs::read(m.path().join("etc/hello.txt")).unwrap(),
        b"hello strata\n"
    );
    std::fs::write(merged.join("etc/new"), b"new").unwrap();
    let big = std::fs::metadata(merged.join("etc/big.bin")).unwrap();
    std::fs::set_permissions(
        merged.join("etc/big.bin"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let up = std::fs::metadata(base.join("upper/etc/big.bin")).unwrap();
    assert_eq!(
        (up.len(), up.uid(), up.mode() & 0o777),
        (big.len(), 1000, 0o644)
    );

    drop(overlay);
    assert!(!is_mounted(&merged));
}

/// A blob that goes bad after the layer was opened: one byte inside big.bin's second chunk
/// flipped on every read.
struct Flipping {
    blob: Vec<u8>,
    at: u64,
    armed: AtomicBool,
}

impl RangeSource for Flipping {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.blob.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.blob.read_at(offset, buf)?;
        if self.armed.load(Ordering::SeqCst) && (offset..offset + n as u64).contains(&self.at) {
            buf[(self.at - offset) as usize] ^= 0x55;
        }
        Ok(n)
    }
}

struct Shared(Arc<Flipping>);

impl RangeSource for Shared {
    fn size(&self) -> std::io::Result<u64> {
        self.0.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_at(offset, buf)
    }
}

#[test]
fn a_damaged_chunk_is_eio_and_the_rest_still_reads() {
    let blob = read_fixture("estargz-chunked.gz");
    let clean = Layer::open(blob.clone(), TOC_DIGEST).unwrap();
    let second = clean.toc().get("etc/big.bin").unwrap().chunks[1].clone();
    let src = Arc::new(Flipping {
        blob,
        at: second.blob_offset + 40,
        armed: AtomicBool::new(false),
    });
    let layer = Layer::open(Shared(src.clone()), TOC_DIGEST).unwrap();
    src.armed.store(true, Ordering::SeqCst);
    let m = Mount::new(layer);
    let err = std::fs::read(m.path().join("etc/big.bin")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert_eq!(
        std::fs::read(m.path().join("etc/hello.txt")).unwrap(),
        b"hello strata\n"
    );
    assert_eq!(std::fs::read(m.path().join("empty")).unwrap(), b"");
    let err = std::fs::read(m.path().join("etc/big.bin")).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EIO),
        "still EIO, never other bytes"
    );
    assert!(m.mounted().is_running(), "the session survives a bad chunk");
    assert!(std::fs::metadata(m.path().join("etc/big.bin")).is_ok());
}

/// Range requests of a blob, counted by where they start; those starting in `bad` fail after
/// `delay`, the first `fails` times (`usize::MAX`: always).
struct Failing {
    blob: Vec<u8>,
    bad: std::ops::Range<u64>,
    fails: std::sync::atomic::AtomicUsize,
    delay: std::time::Duration,
    requests: std::sync::Mutex<Vec<u64>>,
}

impl Failing {
    fn new(blob: Vec<u8>, bad: std::ops::Range<u64>, fails: usize, delay_ms: u64) -> Arc<Failing> {
        Arc::new(Failing {
            blob,
            bad,
            fails: fails.into(),
            delay: std::time::Duration::from_millis(delay_ms),
            requests: Default::default(),
        })
    }

    /// How many requests started at `offset`.
    fn requests_at(&self, offset: u64) -> usize {
        let r = self.requests.lock().unwrap();
        r.iter().filter(|&&o| o == offset).count()
    }
}

struct Probe(Arc<Failing>);

impl RangeSource for Probe {
    fn size(&self) -> std::io::Result<u64> {
        Ok(self.0.blob.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let f = &self.0;
        f.requests.lock().unwrap().push(offset);
        let fail = f.bad.contains(&offset)
            && f.fails
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if fail {
            std::thread::sleep(f.delay);
            return Err(std::io::Error::other("registry down"));
        }
        f.blob.read_at(offset, buf)
    }
}

/// A file of 5 chunks of 256 KiB (random bytes) in a layer served by a [`Failing`] source whose
/// requests of the chunks `bad` fail as `fails` and `delay_ms` say; the data, the file's chunks'
/// blob offsets, the source and the mount.
fn five_chunks(
    bad: std::ops::Range<usize>,
    fails: usize,
    delay_ms: u64,
) -> (Vec<u8>, Vec<u64>, Arc<Failing>, Mount) {
    let data = random_bytes(5 << 18, 7);
    let (blob, toc) = estargz_chunked("f", &data, 1 << 18);
    let layer = Layer::open(blob.clone(), &toc).unwrap();
    let at: Vec<u64> = layer
        .toc()
        .get("f")
        .unwrap()
        .chunks
        .iter()
        .map(|c| c.blob_offset)
        .collect();
    let end = layer.toc().get("f").unwrap().chunks[bad.end - 1].blob_end;
    let src = Failing::new(blob, at[bad.start]..end, fails, delay_ms);
    let layer = Layer::open(Probe(src.clone()), &toc).unwrap();
    let m = Mount::new(layer);
    (data, at, src, m)
}

/// Polls `cond` for up to 5 s.
fn eventually(cond: impl Fn() -> bool) -> bool {
    let t = std::time::Instant::now();
    while t.elapsed() < std::time::Duration::from_secs(5) {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    false
}

#[test]
fn a_read_that_ends_a_chunk_loads_the_next_ones_ahead_and_each_chunk_loads_once() {
    let (data, at, src, m) = five_chunks(0..1, 0, 0);
    let f = std::fs::File::open(m.path().join("f")).unwrap();
    let mut buf = vec![0u8; 4096];
    // The last page of chunk 0: the kernel asks for it alone (at most its readahead after).
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, (1 << 18) - 4096).unwrap();
    assert_eq!(buf, data[(1 << 18) - 4096..1 << 18]);
    assert!(
        eventually(|| at[1..].iter().all(|&o| src.requests_at(o) == 1)),
        "chunks 1 to 4 are loaded ahead: {:?}",
        src.requests.lock().unwrap()
    );
    let got = std::fs::read(m.path().join("f")).unwrap();
    assert!(got == data, "the whole file reads back");
    for (i, &o) in at.iter().enumerate() {
        assert_eq!(src.requests_at(o), 1, "chunk {i} is fetched once");
    }
}

#[test]
fn a_failed_read_ahead_fails_no_read() {
    // Chunk 3's first request (the read-ahead's, started when the read of chunk 0's end comes)
    // fails after 500 ms; the reader gets there first, waits for it, then loads it itself.
    // O_DIRECT: no page cache, so the kernel does not retry a failed read (as it retries a
    // failed readahead page by page) and each read's reply is what the reader gets.
    let (data, at, src, m) = five_chunks(3..4, 1, 500);
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(m.path().join("f"))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 128 << 10];
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        if got.len() == 1 << 18 {
            // Chunk 0 read to its end: give the read-ahead threads time to start.
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
    assert!(got == data, "the file reads back whole");
    assert_eq!(
        src.requests_at(at[3]),
        2,
        "the failed read-ahead, then the read"
    );
    assert!(m.mounted().is_running());
}

#[test]
fn reads_of_a_layer_whose_source_is_down_fail_soon_with_eio() {
    // Everything past chunk 0 fails after 100 ms: the read-ahead, then the read's own load.
    let (data, at, src, m) = five_chunks(1..5, usize::MAX, 100);
    let t = std::time::Instant::now();
    let err = std::fs::read(m.path().join("f")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        t.elapsed()
    );
    assert!(src.requests_at(at[1]) >= 1);
    let f = std::fs::File::open(m.path().join("f")).unwrap();
    let mut buf = vec![0u8; 1000];
    std::os::unix::fs::FileExt::read_exact_at(&f, &mut buf, 0).unwrap();
    assert_eq!(buf, data[..1000], "chunk 0 still reads");
    let err = std::fs::read(m.path().join("f")).unwrap_err();
    assert_eq!(
        err.raw_os_error(),
        Some(libc::EIO),
        "still EIO, nothing cached"
    );
    assert!(m.mounted().is_running());
}

#[test]
fn unmounting_leaves_no_mount_and_ends_the_session() {
    let mut m = Mount::new(Layer::open(read_fixture("zstdchunked.zst"), ZSTD_TOC_DIGEST).unwrap());
    let at = m.path().to_path_buf();
    let line = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .find(|l| l.split(' ').nth(4) == Some(at.to_str().unwrap()))
        .unwrap()
        .to_string();
    assert!(line.contains(" - fuse strata-lazy ro,"), "{line}");
    assert!(
        line.contains("allow_other") && line.contains("default_permissions"),
        "{line}"
    );
    assert_eq!(
        std::fs::read(at.join("etc/hello.txt")).unwrap(),
        b"hello strata\n"
    );
    m.unmount();
    assert!(!is_mounted(&at), "{} still in mountinfo", at.display());
    assert!(
        std::fs::read_dir(&at).unwrap().next().is_none(),
        "the bare directory again"
    );

    // Unmounted from outside: the session notices and unmount() still succeeds.
    let mut m = Mount::new(Layer::open(read_fixture("zstdchunked.zst"), ZSTD_TOC_DIGEST).unwrap());
    let at = m.path().to_path_buf();
    assert!(Command::new("umount").arg(&at).status().unwrap().success());
    let wait = std::time::Duration::from_secs(10);
    m.rt.block_on(async { tokio::time::timeout(wait, m.mounted().ended()).await })
        .expect("the session ends")
        .unwrap();
    m.unmount();
    assert!(!is_mounted(&at));
}

// Sequential-read throughput (a measurement, not a check of speed: run it with
// `cargo test --test fs -- --ignored --nocapture sequential_read_throughput`).

/// The converter's default chunk size (`ctr-remote image convert --estargz`): 4 MiB.
const CONVERTER_CHUNK: usize = 4 << 20;
/// The size of the file read: the bench's `/data/seq-64MiB.bin`.
const SEQ_BYTES: usize = 64 << 20;

/// An eStargz blob of one regular file `name` holding `data`, cut into chunks of `chunk`
/// bytes, each its own gzip member (as stargz-snapshotter's writer cuts them), and its TOC
/// digest.
fn estargz_chunked(name: &str, data: &[u8], chunk: usize) -> (Vec<u8>, String) {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_path(name).unwrap();
    h.set_mode(0o644);
    h.set_mtime(1_700_000_000);
    h.set_size(data.len() as u64);
    h.set_cksum();
    let mut blob = gz(h.as_bytes());
    let pad = vec![0u8; data.len().div_ceil(512) * 512 - data.len()];
    let mut toc = Vec::new();
    for (i, piece) in data.chunks(chunk).enumerate() {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(piece)));
        let mut j = serde_json::json!({
            "name": name, "offset": blob.len(), "chunkSize": piece.len(),
            "chunkDigest": digest,
        });
        if i == 0 {
            j["type"] = "reg".into();
            j["size"] = data.len().into();
            j["mode"] = 0o644.into();
            j["modtime"] = "2023-11-14T22:13:20Z".into();
            j["digest"] = format!("sha256:{}", hex::encode(Sha256::digest(data))).into();
        } else {
            j["type"] = "chunk".into();
            j["chunkOffset"] = (i * chunk).into();
        }
        toc.push(j);
        let last = (i + 1) * chunk >= data.len();
        blob.extend(match last {
            true => gz(&[piece, &pad[..]].concat()),
            false => gz(piece),
        });
    }
    with_toc(blob, toc)
}

/// `n` bytes from xorshift64* seeded with `seed`.
fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(n + 8);
    while out.len() < n {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend(x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(n);
    out
}

/// `n` bytes of text-like content (numbered lines of words drawn at random from a small
/// vocabulary): gzip shrinks it about 3 times, as it does source code and logs.
fn compressible_bytes(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: [&str; 16] = [
        "layer", "chunk", "verify", "digest", "strata", "overlay", "registry", "fuse", "snapshot",
        "content", "mount", "read", "write", "inode", "page", "cache",
    ];
    let picks = random_bytes(n / 4 + 64, seed);
    let mut out = Vec::with_capacity(n + 128);
    for (line, p) in picks.chunks(6).enumerate() {
        if out.len() >= n {
            break;
        }
        out.extend(format!("{line:08}").as_bytes());
        for b in p {
            out.push(b' ');
            out.extend(WORDS[usize::from(*b & 15)].as_bytes());
        }
        out.push(b'\n');
    }
    out.truncate(n);
    out
}

/// A local file that answers every range request after `delay` (a registry stand-in: the
/// bytes are local, the round trip is simulated by sleeping).
struct Delayed {
    file: std::fs::File,
    delay: std::time::Duration,
}

impl RangeSource for Delayed {
    fn size(&self) -> std::io::Result<u64> {
        self.file.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::sleep(self.delay);
        RangeSource::read_at(&self.file, offset, buf)
    }
}

/// Drops the page cache (`sync; echo 3 > /proc/sys/vm/drop_caches`).
fn drop_caches() {
    nix::unistd::sync();
    std::fs::write("/proc/sys/vm/drop_caches", b"3\n").expect("dropping the page cache");
}

/// Reads `path` to its end with `dd bs=1M`'s 1 MiB reads; the bytes and the seconds taken.
fn timed_read(path: &Path) -> (Vec<u8>, f64) {
    let mut f = std::fs::File::open(path).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut got = Vec::with_capacity(SEQ_BYTES);
    let t = std::time::Instant::now();
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    (got, t.elapsed().as_secs_f64())
}

/// Mounts `layer` (a fresh one per run: its chunk cache starts empty) with `opts`, drops the
/// page cache, reads `name` sequentially three times (cold; again with its pages cached; again
/// with the page cache dropped but all its chunks in the layer's cache: what serving verified
/// bytes through FUSE costs), checks the bytes against `want` each time; MiB/s of the three.
fn seq_read_run<S: RangeSource + 'static>(
    layer: Layer<S>,
    opts: &MountOptions,
    name: &str,
    want: &[u8],
) -> (f64, f64, f64) {
    let m = Mount::with_options(layer, opts);
    drop_caches();
    let (got, cold) = timed_read(&m.path().join(name));
    assert!(got == want, "the cold read returned other bytes");
    let (got, warm) = timed_read(&m.path().join(name));
    assert!(got == want, "the re-read returned other bytes");
    drop_caches();
    let (got, cached) = timed_read(&m.path().join(name));
    assert!(
        got == want,
        "the read from cached chunks returned other bytes"
    );
    let mib = want.len() as f64 / f64::from(1 << 20);
    (mib / cold, mib / warm, mib / cached)
}

/// MiB/s of reading `want` from `layer` (fresh, page cache dropped) by [`Layer::read`] calls
/// of 1 MiB in order, on this thread: the floor of fetching, inflating and hashing alone.
fn layer_read_mib_s<S: RangeSource>(layer: Layer<S>, want: &[u8]) -> f64 {
    drop_caches();
    let mut got = vec![0u8; want.len()];
    let t = std::time::Instant::now();
    for (i, piece) in got.chunks_mut(1 << 20).enumerate() {
        let n = layer.read("data/seq.bin", (i << 20) as u64, piece).unwrap();
        assert_eq!(n, piece.len());
    }
    let secs = t.elapsed().as_secs_f64();
    assert!(got == want, "Layer::read returned other bytes");
    want.len() as f64 / f64::from(1 << 20) / secs
}

/// Sequential reads of a 64 MiB file (random bytes, then text-like ones) in 4 MiB chunks,
/// through a real mount of a real eStargz layer whose bytes are in a local file (the layer
/// after the background fill), or behind a simulated round trip of 1 ms or 20 ms per range
/// request (a registry stand-in); with read-ahead off and on (the default), alternating, 3 runs
/// each, the page cache dropped before each; prints MiB/s of the cold read, of a re-read and of
/// a read with the page cache dropped but the chunks cached.
#[test]
#[ignore = "a measurement (64 MiB files, drops the page cache): run it by name"]
fn sequential_read_throughput() {
    require_root_and_fuse();
    let dir = tempfile::tempdir_in("/var/tmp").unwrap();
    let contents = [
        ("random", random_bytes(SEQ_BYTES, 42)),
        ("text", compressible_bytes(SEQ_BYTES, 42)),
    ];
    for (kind, data) in &contents {
        let (blob, toc) = estargz_chunked("data/seq.bin", data, CONVERTER_CHUNK);
        let path = dir.path().join(format!("{kind}.gz"));
        std::fs::write(&path, &blob).unwrap();
        println!(
            "{kind}: {} MiB file, {} chunks of {} MiB, blob {:.1} MiB",
            data.len() >> 20,
            data.len().div_ceil(CONVERTER_CHUNK),
            CONVERTER_CHUNK >> 20,
            blob.len() as f64 / f64::from(1 << 20)
        );
        let file = std::fs::File::open(&path).unwrap();
        let direct = layer_read_mib_s(Layer::open(file, &toc).unwrap(), data);
        println!("seqread {kind} in-process Layer::read, 1 MiB reads, no FUSE: {direct:.1} MiB/s");
        for delay_ms in [0u64, 1, 20] {
            for run in 1..=3 {
                for read_ahead in [0, MountOptions::default().read_ahead] {
                    let opts = MountOptions {
                        read_ahead,
                        ..MountOptions::default()
                    };
                    let file = std::fs::File::open(&path).unwrap();
                    let delay = std::time::Duration::from_millis(delay_ms);
                    let layer = Layer::open(Delayed { file, delay }, &toc).unwrap();
                    let (cold, warm, cached) = seq_read_run(layer, &opts, "data/seq.bin", data);
                    println!(
                        "seqread {kind} source=local-file+{delay_ms}ms/request \
                         read_ahead={}MiB run {run}: cold {cold:.1} MiB/s, re-read {warm:.1} \
                         MiB/s, chunks cached {cached:.1} MiB/s",
                        read_ahead >> 20
                    );
                }
            }
        }
    }
}
