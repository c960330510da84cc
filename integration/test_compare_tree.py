#!/usr/bin/env python3
"""Checks compare_tree.py's content hash, on which every tree check of the integration test
rests: the same bytes hash the same whether the file keeps its zeros as holes or as data, and
any other bytes (one bit flipped, one zero more) hash differently. Run: test_compare_tree.py DIR
(DIR on the file system the trees live on, for real holes). Standard library only."""

import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare_tree  # noqa: E402

SIZES = [1, 100, 4095, 4096, 4097, 8192, 12293, 65536, 1 << 20, (1 << 20) + 3]


def write(path, segments, sparse):
    with open(path, "wb") as f:
        for kind, n in segments:
            if kind == "hole":
                if sparse:
                    f.seek(n, os.SEEK_CUR)
                else:
                    f.write(bytes(n))
            else:
                f.write(random.Random(n).randbytes(n))
        f.truncate(f.tell())


def hash_bytes(data):
    h = compare_tree.ContentHash()
    h.data(data)
    return h.hexdigest()


def main():
    d = sys.argv[1]
    rng = random.Random(7)
    a, b = os.path.join(d, "sparse"), os.path.join(d, "dense")
    for trial in range(300):
        segments = [(rng.choice(["hole", "data"]), rng.choice(SIZES)) for _ in range(rng.randint(0, 6))]
        write(a, segments, True)
        write(b, segments, False)
        ha, hb = compare_tree.digest(a), compare_tree.digest(b)
        assert ha == hb, f"trial {trial}: sparse {ha} != dense {hb} for {segments}"
        data = open(b, "rb").read()
        assert hash_bytes(data) == ha, f"trial {trial}: in-memory hash differs for {segments}"
        assert hash_bytes(data + b"\0") != ha, f"trial {trial}: one zero more, same hash"
        if data:
            flipped = bytearray(data)
            flipped[rng.randrange(len(data))] ^= 1
            assert hash_bytes(bytes(flipped)) != ha, f"trial {trial}: a flipped bit, same hash"
    os.unlink(a)
    os.unlink(b)
    print("compare_tree content hash: 300 layouts, sparse == dense, every change detected")


if __name__ == "__main__":
    main()
