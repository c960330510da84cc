#!/usr/bin/env python3
"""Wraps every layer of the hostile corpus into a one-layer OCI image archive that
`ctr images import` takes.

Usage: hostile_images.py CORPUS_DIR OUT_DIR
Writes OUT_DIR/<case>.tar for each <case>.layer listed in CORPUS_DIR/cases.tsv and prints
`<case>\\t<expected>` lines. Standard library only.
"""

import hashlib
import io
import json
import os
import sys
import tarfile


def media_type(layer):
    if layer.startswith(b"\x1f\x8b"):
        return "application/vnd.oci.image.layer.v1.tar+gzip"
    if layer.startswith(b"\x28\xb5\x2f\xfd"):
        return "application/vnd.oci.image.layer.v1.tar+zstd"
    return "application/vnd.oci.image.layer.v1.tar"


def blob(files, data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    files["blobs/sha256/" + d[7:]] = data
    return {"digest": d, "size": len(data)}


def image(case, layer):
    files = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode()}
    config = {
        "architecture": "amd64", "os": "linux", "config": {},
        # The diff ID cannot be known for a broken layer; the unpack fails before it matters.
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }
    cdesc = blob(files, json.dumps(config).encode())
    ldesc = blob(files, layer)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": dict(cdesc, mediaType="application/vnd.oci.image.config.v1+json"),
        "layers": [dict(ldesc, mediaType=media_type(layer))],
    }
    mdesc = blob(files, json.dumps(manifest).encode())
    index = {"schemaVersion": 2, "manifests": [dict(
        mdesc, mediaType="application/vnd.oci.image.manifest.v1+json",
        annotations={"org.opencontainers.image.ref.name": case})]}
    files["index.json"] = json.dumps(index).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as t:
        for name, data in sorted(files.items()):
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), 0, 0o644
            t.addfile(ti, io.BytesIO(data))
    return out.getvalue()


def main():
    corpus, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    for line in open(os.path.join(corpus, "cases.tsv")):
        if line.startswith("#") or not line.strip():
            continue
        case, expected = line.split("\t")[:2]
        layer = open(os.path.join(corpus, case + ".layer"), "rb").read()
        with open(os.path.join(out, case + ".tar"), "wb") as f:
            f.write(image(case, layer))
        print(f"{case}\t{expected}")


main()
