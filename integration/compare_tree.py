#!/usr/bin/env python3
"""Compares two mounted root filesystems entry by entry.

Usage: compare_tree.py [--label-a A] [--label-b B] ROOT_A ROOT_B

For every path (walked without following symlinks, names as raw bytes) it
compares: file type, permission bits incl. setuid/setgid/sticky, uid, gid,
size and content hash of regular files (SHA-256 of a canonical encoding
that skips holes), symlink targets, device numbers, xattrs,
mtime (except the root directory, which no layer sets) and hardlink groups
(the set of paths sharing an inode within the tree; raw link counts are not
compared because overlayfs reports a lower inode's count). Prints every
difference and a final `N differences` line; exit status 1 if any.

Standard library only.
"""

import argparse
import errno
import hashlib
import os
import stat
import sys

KINDS = [
    (stat.S_ISREG, "file"), (stat.S_ISDIR, "dir"), (stat.S_ISLNK, "symlink"),
    (stat.S_ISCHR, "char"), (stat.S_ISBLK, "block"), (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
]


def kind(mode):
    for test, name in KINDS:
        if test(mode):
            return name
    return "unknown"


BLOCK = 4096
ZERO_BLOCK = bytes(BLOCK)
CHUNK = 1 << 20
ZERO_CHUNK = bytes(CHUNK)


class ContentHash:
    """A file's content hash that does not depend on where the file system keeps holes: the
    file is cut into 4 KiB blocks (the last may be shorter); the hash covers the SHA-256 of
    the blocks that are not all zeros, in order, the runs of all-zero blocks (index and
    count) and the size. The bytes can be rebuilt from those three, so equal hashes mean
    equal bytes; and holes are hashed without reading them: a 1 GiB sparse file costs
    microseconds instead of the seconds that reading 1 GiB of zeros took."""

    def __init__(self):
        self.data_hash = hashlib.sha256()
        self.runs = []  # [first block, count] of each run of all-zero blocks
        self.blocks = 0  # blocks seen so far
        self.partial = bytearray()  # the current block, not yet full
        self.size = 0

    def _zeros(self, n):
        if self.runs and self.runs[-1][0] + self.runs[-1][1] == self.blocks:
            self.runs[-1][1] += n
        else:
            self.runs.append([self.blocks, n])
        self.blocks += n

    def _block(self, b):
        if b == ZERO_BLOCK[: len(b)]:
            self._zeros(1)
        else:
            self.data_hash.update(b)
            self.blocks += 1

    def data(self, buf):
        # bytes, not memoryview: bytes compare and search with memcmp, a memoryview byte by byte.
        buf = bytes(buf)
        self.size += len(buf)
        if self.partial:
            take = min(BLOCK - len(self.partial), len(buf))
            self.partial += buf[:take]
            buf = buf[take:]
            if len(self.partial) < BLOCK:
                return
            self._block(bytes(self.partial))
            self.partial.clear()
        full = len(buf) - len(buf) % BLOCK
        if full == len(ZERO_CHUNK) and buf[:full] == ZERO_CHUNK:
            self._zeros(full // BLOCK)
        elif buf.find(ZERO_BLOCK, 0, full) < 0:  # no block can be all zeros
            self.data_hash.update(buf[:full])
            self.blocks += full // BLOCK
        else:
            for off in range(0, full, BLOCK):
                self._block(buf[off : off + BLOCK])
        self.partial += buf[full:]

    def hole(self, n):
        if self.partial:
            take = min(BLOCK - len(self.partial), n)
            self.data(bytes(take))
            n -= take
        self.size += n
        if n >= BLOCK:
            self._zeros(n // BLOCK)
        self.partial += bytes(n % BLOCK)

    def hexdigest(self):
        if self.partial:
            self._block(bytes(self.partial))
            self.partial.clear()
        h = hashlib.sha256(self.data_hash.digest())
        h.update(b"".join(b"%d+%d;" % (first, n) for first, n in self.runs))
        h.update(b"size %d" % self.size)
        return h.hexdigest()


def digest(path):
    """The file's content hash (ContentHash), reading only its data extents (SEEK_DATA)."""
    h = ContentHash()
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as e:
                # ENXIO: only a hole is left; anything else: no SEEK_DATA here, read it all.
                data = size if e.errno == errno.ENXIO else pos
            if data > pos:
                h.hole(min(data, size) - pos)
                pos = min(data, size)
                continue
            try:
                end = min(os.lseek(fd, pos, os.SEEK_HOLE), size)
            except OSError:
                end = size
            f.seek(pos)
            while pos < end:
                chunk = f.read(min(CHUNK, end - pos))
                if not chunk:
                    raise OSError("%s: short read at %d of %d" % (path, pos, size))
                h.data(chunk)
                pos += len(chunk)
    return h.hexdigest()


def xattrs(path):
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        return "listxattr error %s" % e.strerror
    out = {}
    for n in sorted(names):
        try:
            out[n] = os.getxattr(path, n, follow_symlinks=False)
        except OSError as e:
            out[n] = "getxattr error %s" % e.strerror
    return out


def describe(root, rel, st):
    path = os.path.join(root, rel) if rel else root
    k = kind(st.st_mode)
    d = {
        "type": k,
        "mode": oct(stat.S_IMODE(st.st_mode)),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "xattrs": xattrs(path),
    }
    if rel:
        d["mtime_ns"] = st.st_mtime_ns
    if k == "file":
        d["size"] = st.st_size
        d["content"] = digest(path)
    elif k == "symlink":
        d["target"] = os.readlink(path)
    elif k in ("char", "block"):
        d["rdev"] = (os.major(st.st_rdev), os.minor(st.st_rdev))
    return d


def scan(root):
    """Returns {relative path (bytes): description} for every entry under root."""
    root = os.fsencode(root)
    entries, inodes = {}, {}
    st = os.lstat(root)
    entries[b""] = describe(root, b"", st)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            entries[rel] = describe(root, rel, st)
            if not stat.S_ISDIR(st.st_mode):
                inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
    for group in inodes.values():
        for rel in group:
            entries[rel]["hardlinks"] = sorted(group)
    return entries


def show(p):
    return repr(os.fsdecode(p)) if p else "/"


def compare(a, b, la, lb):
    diffs = []
    for rel in sorted(set(a) | set(b)):
        if rel not in b:
            diffs.append("only in %s: %s (%s)" % (la, show(rel), a[rel]["type"]))
            continue
        if rel not in a:
            diffs.append("only in %s: %s (%s)" % (lb, show(rel), b[rel]["type"]))
            continue
        for field in sorted(set(a[rel]) | set(b[rel])):
            va, vb = a[rel].get(field), b[rel].get(field)
            if va != vb:
                diffs.append("%s: %s differs: %s=%r %s=%r" % (show(rel), field, la, va, lb, vb))
    return diffs


def match_lossy_names(a, b):
    """Renames each entry of `b` whose name is not UTF-8 to its U+FFFD-replaced form when `a`
    has that name and not the original; returns the original names."""
    matched = []
    for rel in sorted(set(b) - set(a)):
        replaced = rel.decode("utf-8", "replace").encode()
        if replaced != rel and replaced in a and replaced not in b:
            b[replaced] = b.pop(rel)
            if "hardlinks" in b[replaced]:
                b[replaced]["hardlinks"] = [replaced if h == rel else h
                                            for h in b[replaced]["hardlinks"]]
            matched.append(rel)
    return matched


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--label-a", default="a")
    ap.add_argument("--label-b", default="b")
    ap.add_argument("--unpack-time", type=int, default=None, metavar="EPOCH_SECONDS",
                    help="ignore mtime differences of directories when both mtimes are at "
                         "or after this time (no layer set them: they are unpack times)")
    ap.add_argument("--tolerate-ref-dir-mtime", action="store_true",
                    help="with --unpack-time: also ignore directory mtime differences where "
                         "ROOT_B (the reference) has an unpack time and ROOT_A the image's "
                         "time (containerd's overlay applier creates parents a tar omits "
                         "with the current time; its native snapshotter's copy loses "
                         "directory mtimes)")
    ap.add_argument("--lossy-names-a", action="store_true",
                    help="match a name of ROOT_A holding U+FFFD with the ROOT_B name it is "
                         "the UTF-8-replaced form of (eStargz and zstd:chunked TOCs are JSON: "
                         "stargz-snapshotter's converter writes a non-UTF-8 name as U+FFFD), "
                         "then compare the two entries as usual")
    ap.add_argument("root_a")
    ap.add_argument("root_b")
    args = ap.parse_args()
    a, b = scan(args.root_a), scan(args.root_b)
    tolerated = 0
    if args.unpack_time is not None:
        limit = args.unpack_time * 10**9
        for rel in set(a) & set(b):
            ea, eb = a[rel], b[rel]
            if not (ea["type"] == eb["type"] == "dir" and "mtime_ns" in ea and "mtime_ns" in eb):
                continue
            ta, tb = ea["mtime_ns"], eb["mtime_ns"]
            both = ta >= limit and tb >= limit
            ref_only = args.tolerate_ref_dir_mtime and ta < limit <= tb
            if both or ref_only:
                tolerated += ref_only
                del ea["mtime_ns"], eb["mtime_ns"]
    if tolerated:
        print("note: %d directory mtime differences tolerated (reference has the unpack time)"
              % tolerated)
    if args.lossy_names_a:
        lossy = match_lossy_names(a, b)
        if lossy:
            print("note: %d non-UTF-8 names matched to their U+FFFD form in %s: %s"
                  % (len(lossy), args.label_a, ", ".join(show(n) for n in lossy)))
    diffs = compare(a, b, args.label_a, args.label_b)
    for d in diffs:
        print(d)
    print("%d entries compared, %d differences" % (len(set(a) | set(b)), len(diffs)))
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
