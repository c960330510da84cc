#!/usr/bin/env bash
# Changes applied with ordinary tools to an unpacked rootfs (umoci unpack) so that
# `umoci repack` generates layer 4 the way real image builders do: whiteouts for
# deletions, copy-ups for metadata-only changes, a Go-written tar.
# Usage: umoci_layer.sh ROOTFS
set -euo pipefail
r=$1
rm "$r/xattr/dropped"                         # file deleted by a generated whiteout
rm "$r/data/opaque/subold/y"                  # the lower subold/x must stay hidden (opaque)
setfattr -n user.umoci -v layer4 "$r/data/keep.txt"   # xattr-only change: copy-up
chmod 0640 "$r/data/modified.txt"             # mode-only change
chown 1000:1000 "$r/names/with space"         # owner-only change
mkdir -m 0755 "$r/umoci"
printf 'written by a real tool\n' >"$r/umoci/file"
ln "$r/umoci/file" "$r/umoci/link"
mknod -m 0600 "$r/umoci/zero" c 1 5
mkfifo -m 0620 "$r/umoci/fifo"
ln -s ../data/keep.txt "$r/umoci/rel"
ln -s /umoci/missing "$r/umoci/dangling"
mkdir -m 0700 "$r/umoci/private"
chown 65534:65534 "$r/umoci/private"
setfattr -n user.dir -v private "$r/umoci/private"
truncate -s 8M "$r/umoci/sparse"
printf 'END' | dd of="$r/umoci/sparse" bs=1 seek=$((8 * 1024 * 1024 - 3)) conv=notrunc status=none
touch -h -d @1234567890 "$r/umoci/rel" "$r/umoci/file"
