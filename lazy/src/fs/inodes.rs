//! The inode table: a layer's TOC turned into the tree overlayfs expects of a lower layer.
//!
//! Entries are applied in TOC order, as an unpack applies a tar: a later entry replaces an
//! earlier one of the same name (a directory over a directory keeps its children), missing
//! parents are implied (0755, root owned), hard links share their target's inode, `.wh.x`
//! becomes `x`, a 0/0 character device, and `.wh..wh..opq` marks its directory opaque with an
//! extended attribute. The table never changes after it is built.

use std::collections::BTreeMap;

use fuse3::{FileType, Timestamp};

use crate::estargz::{Entry, Kind, Toc};
use crate::{Error, Result};

/// eStargz's prefetch landmarks (`estargz/types.go`): files at the layer's root that mark where
/// the prefetched entries end; hidden, as stargz-snapshotter hides them.
const LANDMARKS: [&str; 2] = [".prefetch.landmark", ".no.prefetch.landmark"];

/// The root directory's inode number (FUSE's `FUSE_ROOT_ID`).
pub const ROOT: u64 = 1;
/// The prefix of a whiteout's name.
const WHITEOUT: &str = ".wh.";
/// The name of the opaque-directory marker.
const OPAQUE: &str = ".wh..wh..opq";

/// One file of the mounted tree.
#[derive(Debug, Clone)]
pub struct Node {
    pub kind: FileType,
    /// Permission bits with setuid, setgid and sticky.
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    /// Regular files: the content's size; symlinks: the target's length.
    pub size: u64,
    pub mtime: Timestamp,
    /// Devices: `makedev(major, minor)`.
    pub rdev: u32,
    /// Names (hard links) of a file; 2 + subdirectories for a directory.
    pub nlink: u32,
    /// Regular files: the TOC name [`crate::estargz::Layer::read`] reads the content under.
    pub data: String,
    /// Symlinks: the target, as written.
    pub target: String,
    pub xattrs: BTreeMap<String, Vec<u8>>,
    /// Directories: the parent's inode (the root's is itself).
    pub parent: u64,
    /// Directories: children by name, sorted (readdir offsets index this).
    pub children: BTreeMap<String, u64>,
}

/// The tree of one layer: nodes indexed by inode number - 1.
#[derive(Debug)]
pub struct Table {
    nodes: Vec<Node>,
    /// Sum of the regular files' sizes (statfs).
    pub bytes: u64,
}

/// `time` (RFC 3339, as eStargz writes it) as a timestamp; the epoch when empty or malformed.
pub fn parse_rfc3339(time: &str) -> Option<Timestamp> {
    if time.is_empty() {
        return Some(Timestamp::new(0, 0));
    }
    let b = time.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = time.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &time[19..];
    let mut nsec = 0u32;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let kept = &frac[..digits.min(9)];
        nsec = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - offset;
    Some(Timestamp::new(secs, nsec))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Linux's `makedev` in the 32-bit form FUSE carries.
fn makedev(major: u32, minor: u32) -> u32 {
    ((major & 0xfff) << 8) | (minor & 0xff) | ((minor & !0xff) << 12)
}

fn entry_err(name: &str, reason: impl Into<String>) -> Error {
    Error::Entry {
        name: name.to_string(),
        reason: reason.into(),
    }
}

impl Node {
    /// A directory implied by its children, or the root.
    fn implied_dir(parent: u64) -> Node {
        Node {
            kind: FileType::Directory,
            perm: 0o755,
            uid: 0,
            gid: 0,
            size: 4096,
            mtime: Timestamp::new(0, 0),
            rdev: 0,
            nlink: 2,
            data: String::new(),
            target: String::new(),
            xattrs: BTreeMap::new(),
            parent,
            children: BTreeMap::new(),
        }
    }

    /// The node a TOC entry describes (not a hard link).
    fn of(e: &Entry, parent: u64) -> Node {
        let mtime = parse_rfc3339(&e.modtime).unwrap_or_else(|| {
            tracing::warn!(name = %e.name, modtime = %e.modtime, "unparsable modtime, using the epoch");
            Timestamp::new(0, 0)
        });
        let kind = match e.kind {
            Kind::Dir => FileType::Directory,
            Kind::Reg | Kind::Hardlink => FileType::RegularFile,
            Kind::Symlink => FileType::Symlink,
            Kind::Char => FileType::CharDevice,
            Kind::Block => FileType::BlockDevice,
            Kind::Fifo => FileType::NamedPipe,
        };
        let size = match e.kind {
            Kind::Reg => e.size,
            Kind::Symlink => e.link.len() as u64,
            Kind::Dir => 4096,
            _ => 0,
        };
        let rdev = match e.kind {
            Kind::Char | Kind::Block => makedev(e.dev_major, e.dev_minor),
            _ => 0,
        };
        Node {
            kind,
            perm: (e.mode & 0o7777) as u16,
            uid: e.uid,
            gid: e.gid,
            size,
            mtime,
            rdev,
            nlink: if e.kind == Kind::Dir { 2 } else { 1 },
            data: if e.kind == Kind::Reg {
                e.name.clone()
            } else {
                String::new()
            },
            target: if e.kind == Kind::Symlink {
                e.link.clone()
            } else {
                String::new()
            },
            xattrs: e.xattrs.clone(),
            parent,
            children: BTreeMap::new(),
        }
    }

    /// The overlay whiteout for whiteout entry `e`: a 0/0 character device, mode 0.
    fn whiteout(e: &Entry) -> Node {
        let mut n = Node::of(e, 0);
        n.kind = FileType::CharDevice;
        n.perm = 0;
        n.size = 0;
        n.data.clear();
        n.xattrs.clear();
        n
    }
}

impl Table {
    /// Builds the tree of `toc`; `opaque_xattr` is what marks an opaque directory
    /// (`trusted.overlay.opaque`).
    pub fn build(toc: &Toc, opaque_xattr: &str) -> Result<Table> {
        let mut t = Table {
            nodes: vec![Node::implied_dir(ROOT)],
            bytes: 0,
        };
        for e in &toc.entries {
            t.add(e, opaque_xattr)?;
        }
        t.count_links();
        t.bytes = t
            .nodes
            .iter()
            .filter(|n| n.kind == FileType::RegularFile)
            .map(|n| n.size)
            .sum();
        Ok(t)
    }

    /// The node of inode `ino`.
    pub fn get(&self, ino: u64) -> Option<&Node> {
        self.nodes.get(usize::try_from(ino.checked_sub(1)?).ok()?)
    }

    /// The child `name` of directory `parent`: its inode.
    pub fn lookup(&self, parent: u64, name: &str) -> Option<u64> {
        self.get(parent)?.children.get(name).copied()
    }

    /// How many inodes the tree has.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    fn node_mut(&mut self, ino: u64) -> &mut Node {
        &mut self.nodes[(ino - 1) as usize]
    }

    fn push(&mut self, node: Node) -> u64 {
        self.nodes.push(node);
        self.nodes.len() as u64
    }

    /// The directory at `path` (components of a clean name), implied where missing.
    fn dir(&mut self, path: &[&str], name: &str) -> Result<u64> {
        let mut ino = ROOT;
        for c in path {
            ino = match self.lookup(ino, c) {
                Some(i) if self.nodes[(i - 1) as usize].kind == FileType::Directory => i,
                Some(_) => return Err(entry_err(name, format!("parent {c:?} is not a directory"))),
                None => {
                    let child = self.push(Node::implied_dir(ino));
                    self.node_mut(ino).children.insert(c.to_string(), child);
                    child
                }
            };
        }
        Ok(ino)
    }

    /// Applies TOC entry `e`.
    fn add(&mut self, e: &Entry, opaque_xattr: &str) -> Result<()> {
        let parts: Vec<&str> = e.name.split('/').collect();
        let (base, path) = parts.split_last().expect("a clean name has a component");
        if path.is_empty() && LANDMARKS.contains(base) {
            return Ok(()); // the converter's prefetch marks, not files of the image
        }
        let parent = self.dir(path, &e.name)?;
        if *base == OPAQUE {
            self.node_mut(parent)
                .xattrs
                .insert(opaque_xattr.to_string(), b"y".to_vec());
            return Ok(());
        }
        if let Some(target) = base.strip_prefix(WHITEOUT) {
            if target.is_empty() || target.starts_with(WHITEOUT) {
                return Err(entry_err(&e.name, "whiteout of nothing"));
            }
            let ino = self.push(Node::whiteout(e));
            self.node_mut(parent)
                .children
                .insert(target.to_string(), ino);
            return Ok(());
        }
        let existing = self.lookup(parent, base);
        let ino = match (e.kind, existing) {
            (Kind::Hardlink, _) => self.link_target(e)?,
            (Kind::Dir, Some(old))
                if self.nodes[(old - 1) as usize].kind == FileType::Directory =>
            {
                self.update_dir(old, e, parent);
                old
            }
            _ => self.push(Node::of(e, parent)),
        };
        self.node_mut(parent).children.insert(base.to_string(), ino);
        Ok(())
    }

    /// A directory entry over an existing directory: its attributes change, its children and
    /// extended attributes (an opaque marker) stay.
    fn update_dir(&mut self, ino: u64, e: &Entry, parent: u64) {
        let new = Node::of(e, parent);
        let old = self.node_mut(ino);
        old.perm = new.perm;
        old.uid = new.uid;
        old.gid = new.gid;
        old.mtime = new.mtime;
        old.xattrs.extend(new.xattrs);
    }

    /// The inode a hard link names: its target's, which must be a regular file.
    fn link_target(&self, e: &Entry) -> Result<u64> {
        let mut ino = ROOT;
        for c in e.link.split('/') {
            ino = self
                .lookup(ino, c)
                .ok_or_else(|| entry_err(&e.name, format!("hard link to missing {:?}", e.link)))?;
        }
        if self.nodes[(ino - 1) as usize].kind != FileType::RegularFile {
            return Err(entry_err(
                &e.name,
                format!("hard link to {:?}, not a regular file", e.link),
            ));
        }
        Ok(ino)
    }

    /// Link counts from the finished tree: names per file, 2 + subdirectories per directory.
    /// Nodes no name reaches any more (replaced) keep the counts they had.
    fn count_links(&mut self) {
        let mut names = vec![0u32; self.nodes.len()];
        let mut subdirs = vec![0u32; self.nodes.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            if n.kind != FileType::Directory {
                continue;
            }
            for &c in n.children.values() {
                let c = (c - 1) as usize;
                names[c] += 1;
                if self.nodes[c].kind == FileType::Directory {
                    subdirs[i] += 1;
                }
            }
        }
        for (i, n) in self.nodes.iter_mut().enumerate() {
            n.nlink = match n.kind {
                FileType::Directory => 2 + subdirs[i],
                _ => names[i].max(1),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times_parse_as_go_writes_them() {
        let t = |s| parse_rfc3339(s).map(|t| (t.sec, t.nsec));
        assert_eq!(t("2023-11-14T22:13:20Z"), Some((1_700_000_000, 0)));
        assert_eq!(t(""), Some((0, 0)));
        assert_eq!(t("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            t("2023-11-14T23:13:20.5+01:00"),
            Some((1_700_000_000, 500_000_000))
        );
        assert_eq!(t("1969-12-31T23:59:59Z"), Some((-1, 0)));
        assert_eq!(t("2000-02-29T00:00:00Z"), Some((951_782_400, 0)));
        for bad in [
            "yesterday",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13:20",
            "2023-11-14T22:13:20.Z",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
    }

    #[test]
    fn devices_encode_as_the_kernel_decodes() {
        assert_eq!(makedev(0, 0), 0);
        assert_eq!(makedev(1, 3), 0x103);
        assert_eq!(makedev(8, 0x123), 0x10_08_23);
    }
}
