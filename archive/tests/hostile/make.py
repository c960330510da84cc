#!/usr/bin/env python3
"""Writes the hostile layer corpus next to this script: one `<case>.layer` per case (a raw
layer stream: tar, gzip or zstd) and `cases.tsv` (case, expected error kind, options, what it
tries). Deterministic; standard library plus the `zstd` command. Regenerate with
`python3 archive/tests/hostile/make.py` and commit the result.

Every case must fail cleanly and write nothing outside the tree it is applied to.
"""

import gzip
import io
import os
import subprocess
import tarfile

HERE = os.path.dirname(os.path.abspath(__file__))
MTIME = 1600000000
cases = []


def info(name, kind=tarfile.REGTYPE, size=0, link="", mode=0o644, pax=None):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.linkname, ti.mode, ti.mtime = kind, size, link, mode, MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = ""
    if pax:
        ti.pax_headers = pax
    return ti


def tar_of(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        for e in entries:
            if isinstance(e, tuple):
                ti, data = e
                t.addfile(ti, io.BytesIO(data))
            else:
                t.addfile(e)
    return buf.getvalue()


def f(name, data=b"x", **kw):
    return (info(name, size=len(data), **kw), data)


def case(name, kind, layer, what, options=""):
    with open(os.path.join(HERE, name + ".layer"), "wb") as out:
        out.write(layer)
    cases.append((name, kind, options or "-", what))


def gz(b):
    return gzip.compress(b, 6, mtime=0)


def zstd(b, level=3):
    return subprocess.run(["zstd", "-q", f"-{level}", "-c"], input=b, check=True,
                          stdout=subprocess.PIPE).stdout


SYM, LNK, DIR = tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.DIRTYPE

case("abs-name", "invalid", tar_of([f("/escaped")]), "an absolute entry name")
case("dotdot-name", "invalid", tar_of([f("../escaped")]), "a name starting with ..")
case("dotdot-inner", "invalid", tar_of([info("a/", DIR, mode=0o755), f("a/../../escaped")]),
     "a .. in the middle of a name")
case("pax-abs-path", "invalid", tar_of([f("ok", pax={"path": "/escaped"})]),
     "a PAX path record that is absolute")
case("gnu-longname-dotdot", "invalid",
     tar_of([f("../" * 40 + "escaped")], fmt=tarfile.GNU_FORMAT), "a GNU long name climbing out")
case("nul-in-name", "invalid", tar_of([f("ok", pax={"path": "a\x00b"})]), "a NUL byte in a name")
case("symlink-abs-traverse", "invalid",
     tar_of([info("evil", SYM, link="/"), f("evil/escaped")]),
     "a file written through an absolute symlink to /")
case("symlink-rel-escape", "invalid",
     tar_of([info("up", SYM, link="../../../../.."), f("up/escaped")]),
     "a file written through a relative symlink climbing out")
case("symlink-chain", "invalid",
     tar_of([info("a", SYM, link="b"), info("b", SYM, link="../.."), f("a/escaped")]),
     "a file written through a chain of symlinks")
case("dir-then-symlink", "invalid",
     tar_of([info("d/", DIR, mode=0o755), info("d", SYM, link="/tmp"), f("d/escaped")]),
     "a directory replaced by a symlink, then written through")
case("hardlink-abs", "invalid", tar_of([info("link", LNK, link="/etc/passwd")]),
     "a hard link to an absolute path")
case("hardlink-dotdot", "invalid", tar_of([info("link", LNK, link="../../sentinel/file")]),
     "a hard link climbing out of the tree")
case("hardlink-through-symlink", "invalid",
     tar_of([info("s", SYM, link="/"), info("link", LNK, link="s/etc/passwd")]),
     "a hard link whose target path goes through a symlink")
case("hardlink-to-dir", "invalid", tar_of([info("d/", DIR, mode=0o755), info("link", LNK, link="d")]),
     "a hard link to a directory")
case("hardlink-missing", "invalid", tar_of([info("link", LNK, link="nope")]),
     "a hard link to nothing")
case("whiteout-dotdot", "invalid", tar_of([f(".wh..."), f("a/.wh..")]),
     "a whiteout naming ..")
case("device-forbidden", "invalid",
     tar_of([info("dev/kmem", tarfile.CHRTYPE, mode=0o600)]),
     "a character device where the configuration forbids them", "devices=off")
good = tar_of([f("a", b"A" * 3000), f("b", b"B" * 3000)])
case("size-lies-long", "invalid", good[:512 + 1000], "a header promising more data than the stream has")
short = bytearray(good)
short[124:136] = b"%011o\x00" % 100  # size 100 instead of 3000: the next 'header' is data
chk = sum(short[:148]) + 8 * 32 + sum(short[156:512])
short[148:156] = b"%06o\x00 " % chk
case("size-lies-short", "invalid", bytes(short), "a header promising less data than follows")
bad = bytearray(good)
bad[148:156] = b"000000\x00 "
case("bad-checksum", "invalid", bytes(bad), "a header with a wrong checksum")
z = gz(good)
case("truncated-gzip", "invalid", z[: len(z) // 2], "a gzip stream cut in half")
zs = zstd(good)
case("truncated-zstd", "invalid", zs[: len(zs) // 2], "a zstd stream cut in half")
case("garbage-after-gzip", "invalid", z + b"this is not a gzip member",
     "bytes after the compressed stream")
case("sparse-map-past-size", "invalid",
     tar_of([f("s/GNUSparseFile.0/s", b"1\n100\n5\n".ljust(512, b"\0") + b"abcde",
               pax={"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                    "GNU.sparse.name": "s", "GNU.sparse.realsize": "10"})]),
     "a sparse map with a chunk past the file's size")
bomb = tar_of([f("zeros", b"\0" * (256 << 20))])
case("gzip-bomb", "limit", gz(bomb), "256 MiB of zeros in a small gzip stream", "max_bytes=67108864")
case("zstd-bomb", "limit", zstd(bomb, 19), "256 MiB of zeros in a tiny zstd stream", "max_bytes=67108864")

with open(os.path.join(HERE, "cases.tsv"), "w") as out:
    out.write("# case\texpected\toptions\twhat it tries\n")
    for c in cases:
        out.write("\t".join(c) + "\n")
print(f"{len(cases)} cases")
