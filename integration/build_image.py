#!/usr/bin/env python3
"""Builds the multi-layer integration test image as an OCI layout (gzip layers).

Usage: build_image.py OUT_DIR REF_NAME SPARSE_BYTES
       build_image.py --chain-id LAYOUT     (prints the top layer's ChainID)

Writes OUT_DIR/layout (an OCI image layout whose index names the image REF_NAME).
Every layer tar is written by hand (PAX format) so the image has
exactly the edge cases the test checks: whiteouts, an opaque directory, type
changes between layers, hardlinks, symlinks, user xattrs (incl. binary and empty
values), device nodes, a fifo, a GNU sparse (PAX 1.0) file, odd names, special
modes and owners. The output is byte-for-byte deterministic.

Standard library only.
"""

import gzip
import hashlib
import io
import json
import os
import platform
import sys
import tarfile

MTIME = 1700000000
OLD_MTIME = 946684800  # 2000-01-01, to see that file times survive
BUSYBOX = "/bin/busybox"
APPLETS = [
    "sh", "ls", "cat", "stat", "readlink", "test", "[", "echo", "wc", "tail",
    "head", "find", "sort", "id", "printf", "sha256sum", "true", "false",
]
LONG_NAME = "L" * 255


class Layer:
    """One layer tar being built (PAX format, fixed times, numeric owners)."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name, kind, mode, uid=0, gid=0, mtime=MTIME, xattrs=None):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.uname = ti.gname = ""
        ti.mtime = mtime
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        return ti

    def dir(self, name, mode=0o755, **kw):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode, **kw))

    def file(self, name, data, mode=0o644, **kw):
        data = data.encode() if isinstance(data, str) else data
        ti = self._info(name, tarfile.REGTYPE, mode, **kw)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name, target):
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def hardlink(self, name, target, mode=0o644, **kw):
        """A link entry; its metadata is applied to the shared inode, so pass the target's."""
        ti = self._info(name, tarfile.LNKTYPE, mode, **kw)
        ti.linkname = target
        self.tar.addfile(ti)

    def device(self, name, kind, major, minor, mode=0o666):
        ti = self._info(name, kind, mode)
        ti.devmajor, ti.devminor = major, minor
        self.tar.addfile(ti)

    def fifo(self, name, mode=0o644):
        self.tar.addfile(self._info(name, tarfile.FIFOTYPE, mode))

    def whiteout(self, path):
        head, base = os.path.split(path)
        self.file(os.path.join(head, ".wh." + base), b"")

    def opaque(self, dirpath):
        self.file(os.path.join(dirpath, ".wh..wh..opq"), b"")

    def sparse(self, name, realsize, chunks, mode=0o644):
        """A GNU sparse file in PAX 1.0 format: the map, then the data chunks. With
        STRATA_IT_PLAIN_SPARSE=1 the same bytes as a regular file (stargz-snapshotter's
        converter cannot read GNU sparse entries)."""
        if os.environ.get("STRATA_IT_PLAIN_SPARSE") == "1":
            data = bytearray(realsize)
            for off, chunk in chunks:
                data[off:off + len(chunk)] = chunk
            return self.file(name, bytes(data), mode)
        lines = [str(len(chunks))]
        for off, data in chunks:
            lines += [str(off), str(len(data))]
        smap = ("\n".join(lines) + "\n").encode()
        smap += b"\0" * (-len(smap) % 512)
        payload = smap + b"".join(d for _, d in chunks)
        head, base = os.path.split(name)
        ti = self._info(os.path.join(head, "GNUSparseFile.0", base), tarfile.REGTYPE, mode)
        ti.pax_headers = {
            "GNU.sparse.major": "1",
            "GNU.sparse.minor": "0",
            "GNU.sparse.name": name,
            "GNU.sparse.realsize": str(realsize),
        }
        ti.size = len(payload)
        self.tar.addfile(ti, io.BytesIO(payload))

    def finish(self):
        self.tar.close()
        return self.buf.getvalue()


def layer1(sparse_bytes):
    """Base: busybox, and everything later layers delete, replace or hide."""
    l = Layer()
    l.dir("bin")
    with open(BUSYBOX, "rb") as f:
        l.file("bin/busybox", f.read(), 0o755)
    for a in APPLETS:
        l.symlink("bin/" + a, "busybox")
    l.dir("etc")
    l.file("etc/passwd", "root:x:0:0:root:/:/bin/sh\nuser:x:1000:1000::/:/bin/sh\n"
           "nobody:x:65534:65534::/:/bin/false\n")
    l.file("etc/group", "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n")
    l.dir("data")
    l.file("data/keep.txt", "lower layer content\n", mtime=OLD_MTIME)
    l.file("data/modified.txt", "v1\n")
    l.file("data/to-delete.txt", "doomed\n")
    l.dir("data/dir-to-delete")
    l.file("data/dir-to-delete/a", "a\n")
    l.dir("data/dir-to-delete/sub")
    l.file("data/dir-to-delete/sub/b", "b\n")
    l.dir("data/dir-to-file")
    l.file("data/dir-to-file/child", "child\n")
    l.file("data/file-to-dir", "i am a file\n")
    l.file("data/file-to-symlink", "i will be a symlink\n")
    l.dir("data/opaque")
    l.file("data/opaque/old1", "old1\n")
    l.file("data/opaque/old2", "old2\n")
    l.dir("data/opaque/subold")
    l.file("data/opaque/subold/x", "x\n")
    l.dir("data/hard")
    l.file("data/hard/a", "shared inode\n")
    l.hardlink("data/hard/b", "data/hard/a")
    l.hardlink("data/hard/c", "data/hard/a")
    l.dir("links")
    l.symlink("links/rel", "../data/keep.txt")
    l.symlink("links/abs", "/data/keep.txt")
    l.symlink("links/dangling", "/nonexistent/target")
    l.symlink("links/dirlink", "../data")
    l.symlink("links/to-dir-later", "../data")
    l.dir("xattr")
    l.file("xattr/file", "xattrs\n", xattrs={
        "user.foo": "bar",
        "user.empty": "",
        "user.bin": "bin\x00\x01\udcff",
        "user.long": "v" * 1000,
    })
    l.file("xattr/dropped", "loses its xattr in layer 2\n", xattrs={"user.gone": "1"})
    l.dir("xattr/dir", xattrs={"user.d": "on a directory"})
    l.dir("dev-test")
    l.device("dev-test/null", tarfile.CHRTYPE, 1, 3)
    l.device("dev-test/blk", tarfile.BLKTYPE, 7, 200, mode=0o660)
    l.fifo("dev-test/fifo")
    l.dir("sparse")
    half = (sparse_bytes // 2) & ~4095
    l.sparse("sparse/big", sparse_bytes,
             [(0, b"HEAD"), (half, b"MIDDLE" * 1000), (sparse_bytes - 4, b"TAIL")])
    l.dir("names")
    for n in ["with space", "\u00fcn\u00efc\u00f8d\u00e9-\u540d\u524d", "quote'single\"double",
              "-leading-dash", "tab\tand\\backslash", "latin1-\udce9t\udce9", LONG_NAME]:
        l.file("names/" + n, n.encode("utf-8", "surrogateescape") + b"\n")
    l.dir("modes")
    l.file("modes/setuid", "#!/bin/sh\n", 0o4755)
    l.file("modes/setgid", "#!/bin/sh\n", 0o2755)
    l.file("modes/readonly", "ro\n", 0o444)
    l.file("modes/noperm", "none\n", 0o000)
    l.file("modes/chmodded", "same content\n", 0o644)
    l.dir("modes/private", 0o700)
    l.file("modes/private/secret", "s\n", 0o600)
    l.dir("modes/sticky", 0o1777)
    l.dir("owners")
    l.file("owners/u1000", "user\n", uid=1000, gid=1000)
    l.file("owners/nobody", "nobody\n", uid=65534, gid=65534)
    l.dir("owners/dir1000", 0o750, uid=1000, gid=1000)
    l.file("owners/dir1000/inside", "in\n", uid=1000, gid=1000)
    l.dir("tmp", 0o1777)
    return l.finish()


def layer2():
    """Whiteouts, opaque dir, type changes, metadata-only changes."""
    l = Layer()
    l.dir("data")
    l.whiteout("data/to-delete.txt")
    l.whiteout("data/dir-to-delete")
    l.file("data/modified.txt", "v2 from layer 2\n")
    l.file("data/dir-to-file", "now a file\n")
    l.dir("data/file-to-dir")
    l.file("data/file-to-dir/inner.txt", "inside the new dir\n")
    l.dir("data/opaque")
    l.opaque("data/opaque")
    l.file("data/opaque/new1", "new1\n")
    l.file("data/opaque/new2", "new2\n")
    l.dir("data/opaque/subold")
    l.file("data/opaque/subold/y", "y\n")
    l.dir("l2hard")
    l.file("l2hard/x", "layer 2 hardlink group\n", mode=0o600, uid=1000, gid=1000)
    l.hardlink("l2hard/y", "l2hard/x", mode=0o600, uid=1000, gid=1000)
    l.hardlink("l2hard/z", "l2hard/x", mode=0o600, uid=1000, gid=1000)
    l.dir("links")
    l.whiteout("links/dirlink")
    l.dir("xattr")
    l.file("xattr/dropped", "loses its xattr in layer 2\n")
    l.dir("modes")
    l.file("modes/chmodded", "same content\n", 0o600, uid=65534, gid=65534)
    l.dir("modes/private", 0o750, uid=1000, gid=1000)  # metadata-only change of a lower dir
    l.dir("owners")
    l.whiteout("owners/nobody")
    return l.finish()


def layer3():
    """Re-creations over whiteouts and more type changes."""
    l = Layer()
    l.dir("data")
    l.file("data/to-delete.txt", "reborn\n")  # over a layer-2 whiteout
    l.symlink("data/file-to-symlink", "keep.txt")  # replaces a file, no whiteout
    l.dir("data/opaque")
    l.whiteout("data/opaque/new1")  # deletes a file created by layer 2
    l.dir("l2hard")
    l.whiteout("l2hard/y")  # breaks a lower hardlink group
    l.dir("links")
    l.whiteout("links/to-dir-later")
    l.dir("links/to-dir-later", 0o711)  # symlink replaced by a directory
    l.file("links/to-dir-later/f", "f\n")
    l.dir("owners")
    l.file("owners/nobody", "nobody again\n", 0o640, uid=65534, gid=65534)
    return l.finish()


def blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def arch():
    m = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(m, m)


def chain_id(diff_ids):
    chain = diff_ids[0]
    for d in diff_ids[1:]:
        chain = "sha256:" + hashlib.sha256((chain + " " + d).encode()).hexdigest()
    return chain


def print_chain_id(layout):
    """Prints the top layer's ChainID of the (single) image in an OCI layout."""
    def read(digest):
        with open(os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1]), "rb") as f:
            return json.load(f)
    with open(os.path.join(layout, "index.json")) as f:
        (desc,) = json.load(f)["manifests"]
    config = read(read(desc["digest"])["config"]["digest"])
    print(chain_id(config["rootfs"]["diff_ids"]))


def main():
    if sys.argv[1] == "--chain-id":
        return print_chain_id(sys.argv[2])
    out, ref, sparse_bytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    layout = os.path.join(out, "layout")
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    tars = [layer1(sparse_bytes), layer2(), layer3()]
    diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]
    layers = []
    for t in tars:
        gz = gzip.compress(t, compresslevel=6, mtime=0)
        layers.append(dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **blob(layout, gz)))
    config = {
        "architecture": arch(),
        "os": "linux",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "strata integration layer %d" % i} for i in range(len(tars))],
    }
    cfg = blob(layout, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **cfg),
        "layers": layers,
    }
    man = blob(layout, json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [dict(mediaType="application/vnd.oci.image.manifest.v1+json",
                           platform={"architecture": arch(), "os": "linux"},
                           annotations={"org.opencontainers.image.ref.name": ref}, **man)],
    }
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump(index, f, sort_keys=True)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)


if __name__ == "__main__":
    main()
