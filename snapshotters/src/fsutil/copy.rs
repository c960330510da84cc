//! A faithful recursive copy (containerd's `fs.CopyDir`): owners, modes, timestamps (set on
//! directories after their children), xattrs, hard links, symlinks, devices, fifos, sockets
//! and sparse files.
//!
//! The source is read through directory descriptors ([`super::at`]), one name at a time with
//! `O_NOFOLLOW`: an entry swapped for a symlink during the copy is copied as a symlink or
//! fails the copy, and never pulls in what it points to.
//!
//! One thread walks the source, creating the directories; a small pool of threads copies the
//! other entries (data with a reflink or `copy_file_range`, then their attributes, through
//! descriptors). Hard links and the directories' attributes are set once every entry is done.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::ffi::OsString;
use std::fs::{self, File, Metadata, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};

use super::at;
use super::file::{Reflink, copy_data};
use super::xattr::{self, Node, Xattrs, cpath};
use crate::{Error, Result};

/// Most threads copying entries (fewer on machines with fewer cores).
const MAX_WORKERS: usize = 8;

/// Entries queued ahead of the workers; bounds the directory descriptors held open.
const QUEUE: usize = 256;

/// Copies the contents and attributes of directory `src` into the existing directory `dst`.
pub fn copy_dir(src: &Path, dst: &Path) -> Result<()> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_WORKERS));
    copy_with(src, dst, workers)
        .map_err(|e| Error::io(format!("copy {} to {}", src.display(), dst.display()), e))
}

/// [`copy_dir`] with `workers` copying threads.
fn copy_with(src: &Path, dst: &Path, workers: usize) -> io::Result<()> {
    let root = at::open_dir(src)?;
    let pool = Pool::default();
    let (tx, rx) = sync_channel::<Job>(QUEUE);
    let rx = Mutex::new(rx);
    let mut walk = Walk::default();
    let walked = std::thread::scope(|s| {
        // Moved in, so the queue closes (and the workers stop) when the walk is done.
        let tx = tx;
        let (pool, rx) = (&pool, &rx);
        let mut started = false;
        // The workers start with the first entry to copy: none for a tree of directories.
        let mut queue = |job: Job| {
            if !started {
                started = true;
                for _ in 0..workers.max(1) {
                    s.spawn(move || pool.work(rx));
                }
            }
            tx.send(job)
                .map_err(|_| io::Error::other("every copying thread stopped"))
        };
        let walked = walk.root(root, src, dst, &mut queue, pool);
        if walked.is_err() {
            pool.failed.store(true, Ordering::Relaxed);
        }
        walked
    });
    if let Some(e) = pool
        .error
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
    {
        return Err(e);
    }
    walked?;
    walk.finish()
}

/// An entry other than a directory, for a worker to copy.
struct Job {
    /// The source directory holding it.
    dir: Arc<File>,
    name: OsString,
    /// Its `lstat` at walk time.
    md: Metadata,
    /// Its source path, for messages.
    src: PathBuf,
    dst: PathBuf,
}

/// A directory whose attributes are set after everything in it is copied.
struct DirAttrs {
    dst: PathBuf,
    md: Metadata,
    xattrs: Xattrs,
}

/// What the walk leaves for the end: hard links and the directories' attributes.
#[derive(Default)]
struct Walk {
    /// Paths already copied, by source (dev, ino), to recreate hard links.
    inodes: HashMap<(u64, u64), PathBuf>,
    /// (first copy, another name for it).
    links: Vec<(PathBuf, PathBuf)>,
    /// Directories, every one after those inside it.
    dirs: Vec<DirAttrs>,
}

impl Walk {
    /// Walks the source root `dir` (at `src`) into `dst`.
    fn root(
        &mut self,
        dir: File,
        src: &Path,
        dst: &Path,
        queue: &mut impl FnMut(Job) -> io::Result<()>,
        pool: &Pool,
    ) -> io::Result<()> {
        let attrs = dir_attrs(&dir, dst)?;
        self.dir(Arc::new(dir), src, dst, queue, pool)?;
        self.dirs.push(attrs);
        Ok(())
    }

    /// Creates the subdirectories of `dir` (at `src`) under `dst` and queues everything else.
    fn dir(
        &mut self,
        dir: Arc<File>,
        src: &Path,
        dst: &Path,
        queue: &mut impl FnMut(Job) -> io::Result<()>,
        pool: &Pool,
    ) -> io::Result<()> {
        for name in at::names(&dir)? {
            if pool.failed.load(Ordering::Relaxed) {
                return Ok(());
            }
            let (from, to) = (src.join(&name), dst.join(&name));
            let md = at::lstat_at(&dir, &name).map_err(|e| with_path(e, &from))?;
            if md.is_dir() {
                let sub = at::open_dir_at(&dir, &name)
                    .and_then(|sub| fs::create_dir(&to).map(|()| sub))
                    .map_err(|e| with_path(e, &from))?;
                let attrs = dir_attrs(&sub, &to).map_err(|e| with_path(e, &from))?;
                self.dir(Arc::new(sub), &from, &to, queue, pool)?;
                self.dirs.push(attrs);
                continue;
            }
            if md.nlink() > 1 {
                match self.inodes.entry((md.dev(), md.ino())) {
                    Entry::Occupied(first) => {
                        self.links.push((first.get().clone(), to));
                        continue;
                    }
                    Entry::Vacant(v) => {
                        v.insert(to.clone());
                    }
                }
            }
            let job = Job {
                dir: Arc::clone(&dir),
                name,
                md,
                src: from,
                dst: to,
            };
            queue(job)?;
        }
        Ok(())
    }

    /// Creates the hard links, then sets the directories' attributes (children first).
    fn finish(self) -> io::Result<()> {
        for (first, link) in &self.links {
            fs::hard_link(first, link).map_err(|e| with_path(e, link))?;
        }
        for d in &self.dirs {
            let path = cpath(&d.dst)?;
            set_attrs(&d.dst, &d.md, || xattr::write(Node::Path(&path), &d.xattrs))
                .map_err(|e| with_path(e, &d.dst))?;
        }
        Ok(())
    }
}

/// The attributes of the open source directory `dir`, to set on `dst` at the end.
fn dir_attrs(dir: &File, dst: &Path) -> io::Result<DirAttrs> {
    Ok(DirAttrs {
        dst: dst.to_path_buf(),
        md: dir.metadata()?,
        xattrs: xattr::read(Node::Fd(dir.as_raw_fd()))?,
    })
}

/// The copying threads' shared state: the first error stops the copy.
#[derive(Default)]
struct Pool {
    failed: AtomicBool,
    error: Mutex<Option<io::Error>>,
    reflink: Reflink,
}

impl Pool {
    /// Copies queued entries until the queue is closed; after a failure, drains it.
    fn work(&self, rx: &Mutex<Receiver<Job>>) {
        loop {
            let next = rx.lock().unwrap_or_else(PoisonError::into_inner).recv();
            let Ok(job) = next else { return };
            if self.failed.load(Ordering::Relaxed) {
                continue;
            }
            if let Err(e) = job.copy(&self.reflink) {
                self.fail(with_path(e, &job.src));
            }
        }
    }

    fn fail(&self, e: io::Error) {
        let mut first = self.error.lock().unwrap_or_else(PoisonError::into_inner);
        first.get_or_insert(e);
        self.failed.store(true, Ordering::Relaxed);
    }
}

impl Job {
    /// Copies the entry and its attributes.
    fn copy(&self, reflink: &Reflink) -> io::Result<()> {
        let ft = self.md.file_type();
        if ft.is_file() {
            return self.copy_file(reflink);
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(at::read_link_at(&self.dir, &self.name)?, &self.dst)?;
        } else {
            mknod(&self.dst, self.md.mode(), self.md.rdev())?;
        }
        // No descriptor to read their attributes through: a path to the entry in its
        // directory, whose last component the `l*` calls do not follow.
        let src = cpath(&at::proc_path(&self.dir, &self.name))?;
        let xattrs = xattr::read(Node::Path(&src))?;
        let dst = cpath(&self.dst)?;
        set_attrs(&self.dst, &self.md, || {
            xattr::write(Node::Path(&dst), &xattrs)
        })
    }

    /// Copies a regular file: data, owner, mode, xattrs, times, all through descriptors.
    fn copy_file(&self, reflink: &Reflink) -> io::Result<()> {
        let src = at::open_file_at(&self.dir, &self.name, &self.md)?;
        let dst = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.dst)?;
        copy_data(&src, &dst, self.md.len(), reflink)?;
        let md = &self.md;
        std::os::unix::fs::fchown(&dst, Some(md.uid()), Some(md.gid()))?;
        nix::sys::stat::fchmod(
            dst.as_raw_fd(),
            nix::sys::stat::Mode::from_bits_retain(md.mode() & 0o7777),
        )?;
        let xattrs = xattr::read(Node::Fd(src.as_raw_fd()))?;
        xattr::write(Node::Fd(dst.as_raw_fd()), &xattrs)?;
        nix::sys::stat::futimens(dst.as_raw_fd(), &atime(md), &mtime(md))?;
        Ok(())
    }
}

/// `e` with `path` in front of its message.
fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

fn mknod(path: &Path, mode: u32, rdev: u64) -> io::Result<()> {
    let c = cpath(path)?;
    // SAFETY: `c` is a valid NUL-terminated path; mknod reads nothing else.
    let rc = unsafe { libc::mknod(c.as_ptr(), mode as libc::mode_t, rdev as libc::dev_t) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Owner, then mode (chown clears set-id bits), xattrs (`set_xattrs`), then times of `dst`
/// from `md`; never follows `dst` when it is a symlink.
fn set_attrs(
    dst: &Path,
    md: &Metadata,
    set_xattrs: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    std::os::unix::fs::lchown(dst, Some(md.uid()), Some(md.gid()))?;
    if !md.file_type().is_symlink() {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dst, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    }
    set_xattrs()?;
    nix::sys::stat::utimensat(
        None,
        dst,
        &atime(md),
        &mtime(md),
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

fn atime(md: &Metadata) -> nix::sys::time::TimeSpec {
    nix::sys::time::TimeSpec::new(md.atime(), md.atime_nsec())
}

fn mtime(md: &Metadata) -> nix::sys::time::TimeSpec {
    nix::sys::time::TimeSpec::new(md.mtime(), md.mtime_nsec())
}

#[cfg(test)]
mod tests {
    use std::ffi::CString;
    use std::os::unix::fs::{FileExt, FileTypeExt, PermissionsExt, symlink};

    use super::*;

    #[test]
    fn copies_tree_faithfully() {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (src, dst) = (s.path(), d.path());
        fs::create_dir(src.join("dir")).unwrap();
        fs::write(src.join("dir/f"), b"hello").unwrap();
        fs::set_permissions(src.join("dir/f"), fs::Permissions::from_mode(0o4751)).unwrap();
        fs::hard_link(src.join("dir/f"), src.join("link")).unwrap();
        symlink("dir/f", src.join("sym")).unwrap();
        let sparse = File::create(src.join("sparse")).unwrap();
        sparse.set_len(64 << 20).unwrap();
        sparse.write_all_at(b"tail", (64 << 20) - 4).unwrap();
        mknod(&src.join("fifo"), libc::S_IFIFO | 0o640, 0).unwrap();
        std::os::unix::fs::lchown(src.join("dir"), Some(7), Some(8)).unwrap();
        fs::set_permissions(src.join("dir"), fs::Permissions::from_mode(0o710)).unwrap();
        copy_dir(src, dst).unwrap();

        assert_eq!(fs::read(dst.join("dir/f")).unwrap(), b"hello");
        let (f, l) = (md(&dst.join("dir/f")), md(&dst.join("link")));
        assert_eq!((f.mode() & 0o7777, f.ino()), (0o4751, l.ino()));
        assert_eq!(fs::read_link(dst.join("sym")).unwrap(), Path::new("dir/f"));
        let d = md(&dst.join("dir"));
        assert_eq!((d.uid(), d.gid(), d.mode() & 0o7777), (7, 8, 0o710));
        assert_eq!(d.mtime_nsec(), md(&src.join("dir")).mtime_nsec());
        assert!(md(&dst.join("fifo")).file_type().is_fifo());
        let sp = md(&dst.join("sparse"));
        assert_eq!(sp.len(), 64 << 20);
        assert!(sp.blocks() * 512 < 1 << 20, "holes stay holes");
    }

    /// Regression: a regular file swapped for a symlink to a host file during the copy was
    /// opened by path (following the symlink) and the host file's data copied in.
    #[test]
    fn a_file_swapped_for_a_symlink_is_never_followed() {
        let base = tempfile::tempdir().unwrap();
        let (src, stage) = (base.path().join("src"), base.path().join("stage"));
        fs::create_dir(&src).unwrap();
        fs::create_dir(&stage).unwrap();
        let secret = base.path().join("secret");
        fs::write(&secret, b"host secret").unwrap();
        let names: Vec<String> = (0..16).map(|i| format!("f{i}")).collect();
        for n in &names {
            fs::write(src.join(n), b"own content").unwrap();
        }
        let stop = std::sync::atomic::AtomicBool::new(false);
        let followed = std::thread::scope(|s| {
            s.spawn(|| {
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    for n in &names {
                        let (f, l) = (stage.join("file"), stage.join("link"));
                        fs::write(&f, b"own content").unwrap();
                        fs::rename(&f, src.join(n)).unwrap();
                        symlink(&secret, &l).unwrap();
                        fs::rename(&l, src.join(n)).unwrap();
                    }
                }
            });
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
            let (mut followed, mut copies) = (Vec::new(), 0);
            while std::time::Instant::now() < deadline {
                let dst = tempfile::tempdir_in(base.path()).unwrap();
                if copy_dir(&src, dst.path()).is_err() {
                    continue;
                }
                copies += 1;
                for n in &names {
                    let p = dst.path().join(n);
                    if md(&p).is_file() && fs::read(&p).unwrap() != b"own content" {
                        followed.push(p.display().to_string());
                    }
                }
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            assert!(copies > 0, "no copy completed in 3 s: nothing was checked");
            followed
        });
        assert!(followed.is_empty(), "host file copied into {followed:?}");
    }

    /// The workers copy files in parallel; hard links between files in different directories
    /// (regular files, a symlink, a fifo) come out as links, and every directory keeps its
    /// mtime although workers wrote into it.
    #[test]
    fn parallel_copy_keeps_hard_links_and_directory_times() {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (src, dst) = (s.path(), d.path());
        for i in 0..600 {
            let dir = src.join(format!("d{}", i % 12));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join(format!("f{i}")), format!("file {i}").repeat(i)).unwrap();
        }
        for i in 0..12 {
            fs::hard_link(src.join("d0/f0"), src.join(format!("d{i}/link-a"))).unwrap();
            fs::hard_link(src.join("d5/f5"), src.join(format!("d{}/link-b", 11 - i))).unwrap();
        }
        symlink("../d0/f0", src.join("d1/sym")).unwrap();
        fs::hard_link(src.join("d1/sym"), src.join("d2/sym-link")).unwrap();
        mknod(&src.join("d3/fifo"), libc::S_IFIFO | 0o600, 0).unwrap();
        fs::hard_link(src.join("d3/fifo"), src.join("d4/fifo-link")).unwrap();
        for i in 0..12 {
            let t = nix::sys::time::TimeSpec::new(1_000_000 + i, 7);
            let p = src.join(format!("d{i}"));
            nix::sys::stat::utimensat(
                None,
                &p,
                &t,
                &t,
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            )
            .unwrap();
        }
        copy_with(src, dst, 4).unwrap();

        for i in 0..600 {
            let p = format!("d{}/f{i}", i % 12);
            assert_eq!(
                fs::read(dst.join(&p)).unwrap(),
                fs::read(src.join(&p)).unwrap(),
                "{p}"
            );
        }
        let (a, b) = (md(&dst.join("d0/f0")), md(&dst.join("d5/f5")));
        assert_eq!((a.nlink(), b.nlink()), (13, 13));
        for i in 0..12 {
            assert_eq!(md(&dst.join(format!("d{i}/link-a"))).ino(), a.ino());
            assert_eq!(md(&dst.join(format!("d{i}/link-b"))).ino(), b.ino());
            let t = md(&dst.join(format!("d{i}")));
            assert_eq!(
                (t.mtime(), t.mtime_nsec()),
                (1_000_000 + i as i64, 7),
                "d{i}"
            );
        }
        assert_eq!(
            md(&dst.join("d1/sym")).ino(),
            md(&dst.join("d2/sym-link")).ino()
        );
        assert_eq!(
            fs::read_link(dst.join("d2/sym-link")).unwrap(),
            Path::new("../d0/f0")
        );
        assert_eq!(
            md(&dst.join("d3/fifo")).ino(),
            md(&dst.join("d4/fifo-link")).ino()
        );
        assert!(md(&dst.join("d4/fifo-link")).file_type().is_fifo());
    }

    /// Extended attributes of files (read and set through descriptors), directories,
    /// symlinks and fifos (through paths) are copied.
    #[test]
    fn copies_extended_attributes_of_every_kind_of_entry() {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (src, dst) = (s.path(), d.path());
        fs::create_dir(src.join("dir")).unwrap();
        fs::write(src.join("dir/f"), b"x").unwrap();
        symlink("dir/f", src.join("sym")).unwrap();
        mknod(&src.join("fifo"), libc::S_IFIFO | 0o600, 0).unwrap();
        let big = vec![b'v'; 3000];
        let set = |p: &Path, name: &str, value: &[u8]| {
            let (p, n) = (cpath(p).unwrap(), CString::new(name).unwrap());
            xattr::write(Node::Path(&p), &vec![(n, value.to_vec())]).unwrap();
        };
        set(&src.join("dir/f"), "user.file", b"f");
        set(&src.join("dir/f"), "user.big", &big);
        set(&src.join("dir"), "user.dir", b"d");
        set(&src.join("sym"), "trusted.sym", b"s");
        set(&src.join("fifo"), "trusted.fifo", b"p");
        set(src, "user.root", b"r");
        copy_with(src, dst, 2).unwrap();

        let get = |p: &Path| {
            let p = cpath(p).unwrap();
            let mut v = xattr::read(Node::Path(&p)).unwrap();
            v.retain(|(n, _)| !n.as_bytes().starts_with(b"security."));
            v.sort();
            v.into_iter()
                .map(|(n, v)| (n.into_string().unwrap(), v))
                .collect::<Vec<_>>()
        };
        let s = |n: &str, v: &[u8]| (n.to_string(), v.to_vec());
        assert_eq!(
            get(&dst.join("dir/f")),
            [s("user.big", &big), s("user.file", b"f")]
        );
        assert_eq!(get(&dst.join("dir")), [s("user.dir", b"d")]);
        assert_eq!(get(&dst.join("sym")), [s("trusted.sym", b"s")]);
        assert_eq!(get(&dst.join("fifo")), [s("trusted.fifo", b"p")]);
        assert_eq!(get(dst), [s("user.root", b"r")]);
    }

    /// A failure in a copying thread fails the whole copy, naming the entry.
    #[test]
    fn a_failing_entry_fails_the_copy_and_is_named() {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (src, dst) = (s.path(), d.path());
        fs::create_dir(src.join("dir")).unwrap();
        for i in 0..300 {
            fs::write(src.join(format!("dir/f{i}")), b"x").unwrap();
        }
        fs::create_dir(dst.join("dir")).unwrap();
        fs::write(dst.join("dir/f123"), b"in the way").unwrap();
        // `dir` exists in dst already: the walk fails there first.
        let err = copy_with(src, dst, 3).unwrap_err();
        assert!(err.to_string().contains("dir"), "{err}");
        fs::remove_dir_all(dst.join("dir")).unwrap();

        let d2 = tempfile::tempdir().unwrap();
        fs::write(d2.path().join("f123"), b"in the way").unwrap();
        let err = copy_with(&src.join("dir"), d2.path(), 3).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert!(err.to_string().contains("dir/f123"), "{err}");
        assert_eq!(fs::read(d2.path().join("f123")).unwrap(), b"in the way");
    }

    /// Files ending in a hole, or all hole, keep their size and stay sparse.
    #[test]
    fn trailing_holes_keep_the_size() {
        let (s, d) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let (src, dst) = (s.path(), d.path());
        let f = File::create(src.join("head")).unwrap();
        f.write_all_at(b"head", 0).unwrap();
        f.set_len(32 << 20).unwrap();
        File::create(src.join("hole"))
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        copy_with(src, dst, 2).unwrap();
        let (h, e) = (md(&dst.join("head")), md(&dst.join("hole")));
        assert_eq!((h.len(), e.len()), (32 << 20, 16 << 20));
        assert!(
            h.blocks() * 512 < 1 << 20 && e.blocks() == 0,
            "holes stay holes"
        );
        assert_eq!(&fs::read(dst.join("head")).unwrap()[..5], b"head\0");
    }

    fn md(p: &Path) -> Metadata {
        fs::symlink_metadata(p).unwrap()
    }
}
