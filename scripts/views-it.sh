#!/usr/bin/env bash
# Two real containerds on one strata-proxy, each on its own proxy socket (its own view):
# neither one's garbage collection may touch the other's data, while the blob bytes both
# import are stored once.
#
# One strata-proxy serves socket A (the default view, `--address`) and socket B (a
# `[[proxy]]` table, view "b"). Two private containerd 1.6 daemons (their own roots, state
# dirs and gRPC addresses) use A and B through proxy_plugins (content + strata-overlay). Both
# import the same image (integration/build_image.py, offline, busybox) and unpack it; A runs a
# container. A removes the image (`ctr images rm --sync`: containerd's content and snapshot GC
# runs); B must still run the image and read every blob with the right digest. B removes it
# too: the strata root must then hold no blob bytes and no snapshot.
# Then, the defect this guards against: both containerds on ONE socket, A's removal destroys
# B's blobs (checked to happen, so that the test above is known to test something).
#
# Usage: scripts/views-it.sh
# Environment:
#   STRATA_PROXY     daemon binary (default /var/tmp/strata-target/debug/strata-proxy)
#   STRATA_IT_LOGS   where daemon logs are kept (default /var/tmp/strata-views-it-logs)
#   STRATA_IT_KEEP=1 keep the work folder (still stops daemons and unmounts)
# Output: `ok <check>` / `FAIL <check>: <why>` lines, then `N ok, N failed`; exit 1 on any
# failure.
set -uo pipefail

PACKAGES=(containerd runc busybox-static python3 golang-go golang-github-containerd-containerd-dev
    util-linux)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
it=$repo/integration
STRATA_PROXY=${STRATA_PROXY:-/var/tmp/strata-target/debug/strata-proxy}
LOGS=${STRATA_IT_LOGS:-/var/tmp/strata-views-it-logs}
NS=views-it
IMG=views-it/img
SN=strata-overlay

passed=0 failed=0 strata_pid='' t0=$SECONDS
declare -A ctd_pid=()

log() { printf '%s\n' "$*" >&2; }
ok() { passed=$((passed + 1)); printf 'ok %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s: %s\n' "$1" "$2"; }
check() { # name command...: ok when the command succeeds
    local name=$1 out
    shift
    if out=$("$@" 2>&1); then ok "$name"; else fail "$name" "$(tail -3 <<<"$out")"; return 1; fi
}
summary() { printf '%d ok, %d failed\n' "$passed" "$failed"; }
die() { fail "$1" "$2"; summary; exit 1; }

ensure_packages() { # packages...
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing: ${missing[*]}"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

[[ $(id -u) -eq 0 ]] || { echo "must run as root" >&2; exit 2; }
ensure_packages "${PACKAGES[@]}" || die setup "apt-get install failed"
[[ -x $STRATA_PROXY ]] || die setup "$STRATA_PROXY is not executable (cargo build --workspace --bins)"

WORK=$(mktemp -d /var/tmp/strata-views-it-XXXX)
SROOT=$WORK/strata-root
SOCK_A=$WORK/a.sock
SOCK_B=$WORK/b.sock
rm -rf "$LOGS" && mkdir -p "$LOGS" "$WORK/bin"
csock() { echo "$WORK/ctd-$1/containerd.sock"; } # A or B
ctr_() { # A|B ctr-arguments...
    local c=$1
    shift
    timeout 300 ctr -a "$(csock "$c")" -n "$NS" "$@"
}
strata_ls() { "$WORK/bin/strata-ls" -snapshotter "$SN" "$@"; }

# --- cleanup, always -------------------------------------------------------------
stop_pid() { # pid seconds
    local pid=$1 i
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < $2 * 10; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}
unmount_under() { # dir: every mount below it, deepest first
    local m
    findmnt -rn -o TARGET | awk -v p="$1/" 'index($0, p) == 1' | sort -r | while read -r m; do
        m=$(printf '%b' "$m")
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || log "cannot unmount $m"
    done
}
stop_containerd() { # A|B: its tasks, the daemon, its shims (by pid)
    local c=$1 id pid
    if [[ -n ${ctd_pid[$c]:-} ]] && kill -0 "${ctd_pid[$c]}" 2>/dev/null; then
        for id in $(timeout 20 ctr -a "$(csock "$c")" -n "$NS" tasks ls -q 2>/dev/null); do
            timeout 20 ctr -a "$(csock "$c")" -n "$NS" tasks kill -s SIGKILL "$id" >/dev/null 2>&1
            timeout 20 ctr -a "$(csock "$c")" -n "$NS" tasks rm -f "$id" >/dev/null 2>&1
        done
    fi
    stop_pid "${ctd_pid[$c]:-}" 15
    ctd_pid[$c]=''
    for pid in $(pgrep -f -- "-address $(csock "$c")" 2>/dev/null); do kill -KILL "$pid" 2>/dev/null; done
}
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_containerd A
    stop_containerd B
    unmount_under "$WORK"
    stop_pid "$strata_pid" 15
    if [[ ${STRATA_IT_KEEP:-0} == 1 ]]; then log "kept $WORK"; else rm -rf "$WORK"; fi
    log "logs in $LOGS; total $((SECONDS - t0))s"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- daemons ---------------------------------------------------------------------
start_strata() { # extra strata-proxy arguments...
    setsid "$STRATA_PROXY" --root "$SROOT" --address "$SOCK_A" \
        --runtime-address "$WORK/runtime.sock" --state "$WORK/strata-state" "$@" \
        >>"$LOGS/strata.log" 2>&1 &
    strata_pid=$!
    "$WORK/bin/strata-ls" -a "$SOCK_A" -wait 30s >/dev/null
}
start_containerd() { # A|B proxy-socket
    local c=$1 sock=$2 dir=$WORK/ctd-$1 i
    mkdir -p "$dir"
    cat >"$dir/config.toml" <<EOF
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.content.v1.content", "io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
[ttrpc]
  address = "$dir/containerd.sock.ttrpc"
[proxy_plugins.strata-content]
  type = "content"
  address = "$sock"
[proxy_plugins.$SN]
  type = "snapshot"
  address = "$sock"
EOF
    setsid containerd --config "$dir/config.toml" >>"$LOGS/containerd-$c.log" 2>&1 &
    ctd_pid[$c]=$!
    for ((i = 0; i < 300; i++)); do
        ctr -a "$(csock "$c")" version >/dev/null 2>&1 && return 0
        kill -0 "${ctd_pid[$c]}" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# --- checks ----------------------------------------------------------------------
import() { # A|B: imports and unpacks the image; its top layer must be a committed snapshot
    ctr_ "$1" images import --base-name "$IMG" --snapshotter "$SN" "$WORK/img/gzip.tar" &&
        ctr_ "$1" snapshots --snapshotter "$SN" info "$CHAIN_ID" >/dev/null
}
run() { # A|B: a container on the image prints what the image holds
    local out
    out=$(ctr_ "$1" run --rm --snapshotter "$SN" "$IMG:gzip" "views-$RANDOM" /bin/sh -c 'echo hello from $0') &&
        [[ $out == "hello from /bin/sh" ]] || { echo "output: $out"; return 1; }
}
blobs_intact() { # A|B: every blob of the image reads back with its digest
    local d got n=0
    for d in $DIGESTS; do
        got=sha256:$(ctr_ "$1" content get "$d" | sha256sum | cut -d' ' -f1)
        [[ $got == "$d" ]] || { echo "blob $d reads as $got"; return 1; }
        n=$((n + 1))
    done
    log "  $n blobs read back"
}
gone() { # A|B: the image, its blobs and snapshots are gone from containerd and from its socket
    local sock=$2 left i
    ctr_ "$1" images rm --sync "$IMG:gzip" >/dev/null || return 1
    for ((i = 0; i < 100; i++)); do
        left=$(strata_ls -a "$sock") && [[ -z $left ]] && return 0
        sleep 0.2
    done
    echo "left on $sock: $left"
    return 1
}
root_empty() { # no blob bytes, no snapshot directory under the strata root
    local blobs snaps
    blobs=$(find "$SROOT/content/blobs" -type f 2>/dev/null | wc -l)
    snaps=$(find "$SROOT"/snapshots/*/snapshots -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    [[ $blobs -eq 0 && $snaps -eq 0 ]] || { echo "$blobs blob files, $snaps snapshot dirs"; return 1; }
}
blob_files() { find "$SROOT/content/blobs" -type f 2>/dev/null | wc -l; }

# --- set-up ----------------------------------------------------------------------
(cd "$it/strata-ls" && GO111MODULE=off GOFLAGS= GOPATH=/usr/share/gocode \
    go build -o "$WORK/bin/strata-ls" .) >&2 || die "build strata-ls" "go build failed"
python3 "$it/build_image.py" "$WORK/img" gzip $((1024 * 1024)) >&2 &&
    CHAIN_ID=$(python3 "$it/build_image.py" --chain-id "$WORK/img/layout") &&
    tar -C "$WORK/img/layout" -cf "$WORK/img/gzip.tar" . || die "build image" "build_image.py failed"
printf '[[proxy]]\naddress = "%s"\nview = "b"\n' "$SOCK_B" >"$WORK/strata.toml"
start_strata --config "$WORK/strata.toml" || die "start strata-proxy" "see $LOGS/strata.log"
start_containerd A "$SOCK_A" || die "start containerd A" "see $LOGS/containerd-A.log"
start_containerd B "$SOCK_B" || die "start containerd B" "see $LOGS/containerd-B.log"
ok "one strata-proxy, sockets A and B, two containerds"

# --- with views ------------------------------------------------------------------
check "A imports and unpacks the image" import A
check "B imports and unpacks the same image" import B
# An import leaves short-lived blobs (under the import's lease) that each containerd's GC takes a
# moment later: compare the lists once they are equal and stable for half a second (up to 20 s).
settled_blobs() {
    local a b prev='' i
    for ((i = 0; i < 40; i++)); do
        a=$(ctr_ A content ls -q | sort)
        b=$(ctr_ B content ls -q | sort)
        [[ $a == "$b" && $b == "$prev" ]] && break
        prev=$b
        sleep 0.5
    done
    echo "$b"
}
DIGESTS=$(settled_blobs)
[[ $(ctr_ A content ls -q | sort) == "$DIGESTS" && -n $DIGESTS ]] &&
    ok "A and B list the same $(wc -w <<<"$DIGESTS") blobs" ||
    fail "A and B list the same blobs" "A: $(ctr_ A content ls -q | tr '\n' ' ') B: $DIGESTS"
n=$(blob_files)
[[ $n -eq $(wc -w <<<"$DIGESTS") ]] && ok "their bytes are stored once ($n blob files)" ||
    fail "their bytes are stored once" "$n blob files for $(wc -w <<<"$DIGESTS") digests"
check "A runs the image" run A
check "A removes the image; A's GC empties A's socket" gone A "$SOCK_A"
check "B still lists every blob after A's GC" test "$(ctr_ B content ls -q | sort)" == "$DIGESTS"
check "B reads every blob with the right digest" blobs_intact B
check "B still has the top layer snapshot" ctr_ B snapshots --snapshotter "$SN" info "$CHAIN_ID"
check "B runs the image after A's GC" run B
check "B removes the image; B's GC empties B's socket" gone B "$SOCK_B"
check "the strata root holds no blob bytes and no snapshots" root_empty

# --- without views (the defect): both containerds on socket A ----------------------
stop_containerd A
stop_containerd B
rm -rf "$WORK/ctd-A" "$WORK/ctd-B"
start_containerd A "$SOCK_A" && start_containerd B "$SOCK_A" ||
    die "restart both containerds on one socket" "see $LOGS/containerd-*.log"
# B imports the content only: on a shared socket its unpack already fails (the backend has A's
# snapshots under the names B's metadata lacks).
if ! out=$(import A 2>&1 &&
    ctr_ B images import --no-unpack --base-name "$IMG" "$WORK/img/gzip.tar" 2>&1 &&
    blobs_intact B 2>&1 && ctr_ A images rm --sync "$IMG:gzip" 2>&1); then
    fail "without views: set-up" "import or removal failed: $(tail -3 <<<"$out")"
elif blobs_intact B >/dev/null 2>&1; then
    fail "without views, A's GC destroys B's data" "B's blobs survived: the test above would prove nothing"
else
    ok "without views (one socket), A's GC destroys B's blobs, as expected"
fi
summary
[[ $failed -eq 0 ]]
