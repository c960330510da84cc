#!/usr/bin/env bash
# A loop-mounted btrfs for the strata-btrfs backend and its tests.
#
# Usage: scripts/btrfs-loop.sh up <dir>     4G sparse image <dir>.img, mkfs.btrfs, mounted at <dir>
#                                           (nothing to do when <dir> is already a btrfs mount)
#        scripts/btrfs-loop.sh down <dir>   unmount <dir>, detach its loop device, delete the image
#
# Environment: BTRFS_LOOP_SIZE (default 4G), BTRFS_LOOP_IMG (default <dir>.img).
# Needs root and btrfs-progs. Then e.g.:
#   STRATA_BTRFS_ROOT=<dir> cargo test -p strata-snapshotters --test btrfs
#   STRATA_BTRFS_ROOT=<dir> scripts/conformance.sh -test.run TestSnapshots
set -euo pipefail

usage() { echo "usage: $0 up|down <dir>" >&2; exit 2; }
[[ $# -eq 2 ]] || usage
cmd=$1
dir=$(realpath -m "$2")
img=${BTRFS_LOOP_IMG:-$dir.img}
size=${BTRFS_LOOP_SIZE:-4G}

is_btrfs_mount() { [[ $(findmnt -n -o FSTYPE --mountpoint "$dir" 2>/dev/null) == btrfs ]]; }

case $cmd in
up)
    if is_btrfs_mount; then
        echo "$dir: already a btrfs mount"
        exit 0
    fi
    if findmnt -n --mountpoint "$dir" >/dev/null 2>&1; then
        echo "$dir is a mount point of another filesystem" >&2
        exit 1
    fi
    mkdir -p "$dir" "$(dirname "$img")"
    if [[ ! -f $img ]]; then
        truncate -s "$size" "$img"
        mkfs.btrfs -q -f "$img" >/dev/null
    fi
    mount -o loop "$img" "$dir"
    echo "$dir: btrfs on $(findmnt -n -o SOURCE --mountpoint "$dir") ($img)"
    ;;
down)
    if is_btrfs_mount; then
        dev=$(findmnt -n -o SOURCE --mountpoint "$dir")
        umount "$dir"
        # mount -o loop sets autoclear; detach explicitly in case it did not.
        if [[ $dev == /dev/loop* ]] && losetup "$dev" >/dev/null 2>&1; then
            losetup -d "$dev" 2>/dev/null || true
        fi
    fi
    rm -f "$img"
    echo "$dir: down"
    ;;
*) usage ;;
esac
