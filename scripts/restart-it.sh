#!/usr/bin/env bash
# Restarts and upgrades under load lose no request. A real containerd 1.6 uses strata-proxy as
# its content store and as snapshotter strata-overlay (proxy_plugins) while four clients loop
# stock `ctr` calls through containerd that reach Strata (content ls, content get + sha256,
# snapshots ls, snapshots info). strata-proxy runs under integration/listen_holder.py, which
# keeps its two sockets the way a systemd .socket unit does (socket activation); then:
#   - 3 restarts with SIGTERM (`systemctl restart`): 0 failed calls;
#   - 3 upgrades by hand-over (SIGUSR2 to the daemon, which starts its successor on the same
#     sockets): 0 failed calls;
#   - 2 restarts with SIGKILL: failed calls counted and printed (calls in flight when the
#     process dies cannot be answered), not asserted;
#   - for comparison, the same SIGTERM restart of a daemon that binds its own socket (no
#     activation): failed calls counted and printed, not asserted.
# Then the image still runs on strata-overlay and every blob reads back with its digest.
# Usage: scripts/restart-it.sh  (root; STRATA_PROXY = the daemon binary)
# Output: PASS/FAIL/INFO lines, then exactly `N passed, N failed`; exit 1 on any failure.
set -uo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STRATA_PROXY=${STRATA_PROXY:-${CARGO_TARGET_DIR:-/var/tmp/strata-target}/debug/strata-proxy}
LOGS=${STRATA_IT_LOGS:-/var/tmp/strata-it-logs}/restart
NS=restart-it
CLIENTS=4
passed=0 failed=0 holder_pid='' plain_pid='' ctd_pid=''

log() { printf '%s\n' "$*" >&2; }
pass() { passed=$((passed + 1)); printf 'PASS %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s\n' "$*"; }
summary() { printf '%d passed, %d failed\n' "$passed" "$failed"; }
die() { fail "$*"; summary; exit 1; }

[[ $(id -u) -eq 0 ]] || { echo "must run as root" >&2; exit 2; }
[[ -x $STRATA_PROXY ]] || die "setup: $STRATA_PROXY is not executable"
for c in containerd ctr runc umoci busybox python3; do
    command -v "$c" >/dev/null || die "setup: $c is not installed"
done

WORK=$(mktemp -d /var/tmp/strata-restart-XXXX)
SROOT=$WORK/root SSOCK=$WORK/strata.sock RSOCK=$WORK/runtime.sock CTD=$WORK/ctd
CSOCK=$CTD/containerd.sock
rm -rf "$LOGS" && mkdir -p "$LOGS" "$CTD"
ctr_() { timeout 60 ctr -a "$CSOCK" -n "$NS" "$@"; }
daemon_pid() { cat "$SROOT/strata.lock" 2>/dev/null; }

cleanup() {
    [[ -f $WORK/run ]] && rm -f "$WORK/run"
    wait_clients 2>/dev/null
    [[ -n $ctd_pid ]] && { kill "$ctd_pid" 2>/dev/null; wait "$ctd_pid" 2>/dev/null; }
    [[ -n $holder_pid ]] && { kill "$holder_pid" 2>/dev/null; wait "$holder_pid" 2>/dev/null; }
    local p
    p=$(daemon_pid)
    [[ -n $p ]] && kill "$p" 2>/dev/null
    [[ -n $plain_pid ]] && { kill "$plain_pid" 2>/dev/null; wait "$plain_pid" 2>/dev/null; }
    sleep 0.5
    umount -R "$CTD/root" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

strata_args=(--root "$SROOT" --address "$SSOCK" --runtime-address "$RSOCK" --state "$WORK/state")

# Waits until the daemon holding the root lock is `$1`'s successor (a pid other than $1, alive).
wait_new_daemon() { # old-pid
    local i p
    for ((i = 0; i < 600; i++)); do
        p=$(daemon_pid)
        if [[ -n $p && $p != "$1" ]] && kill -0 "$p" 2>/dev/null && ! kill -0 "$1" 2>/dev/null; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# --- the clients ----------------------------------------------------------------
client() { # n: loops until $WORK/run is gone; one line per call in ok.n / err.n
    local n=$1 d out
    while [[ -f $WORK/run ]]; do
        for d in "${DIGESTS[@]}"; do
            out=$(ctr_ content ls -q 2>&1) && echo ok >>"$WORK/ok.$n" ||
                echo "content ls: $out" >>"$WORK/err.$n"
            if out=$(ctr_ content get "$d" 2>&1 | sha256sum) && [[ "sha256:${out%% *}" == "$d" ]]; then
                echo ok >>"$WORK/ok.$n"
            else
                echo "content get $d: sha256 ${out%% *}" >>"$WORK/err.$n"
            fi
            out=$(ctr_ snapshots --snapshotter strata-overlay ls 2>&1) && echo ok >>"$WORK/ok.$n" ||
                echo "snapshots ls: $out" >>"$WORK/err.$n"
            out=$(ctr_ snapshots --snapshotter strata-overlay info "$CHAIN" 2>&1) &&
                echo ok >>"$WORK/ok.$n" || echo "snapshots info: $out" >>"$WORK/err.$n"
            [[ -f $WORK/run ]] || break
        done
    done
}
client_pids=()
start_clients() {
    local n
    rm -f "$WORK"/ok.* "$WORK"/err.*
    touch "$WORK/run"
    client_pids=()
    for ((n = 0; n < CLIENTS; n++)); do
        client "$n" &
        client_pids+=($!)
    done
    sleep 1
}
wait_clients() { local p; for p in "${client_pids[@]}"; do wait "$p"; done; client_pids=(); }
# Stops the clients; sets ok and err to the numbers of answered and failed calls.
stop_clients() {
    rm -f "$WORK/run"
    wait_clients
    ok=$(cat "$WORK"/ok.* 2>/dev/null | wc -l)
    err=$(cat "$WORK"/err.* 2>/dev/null | wc -l)
}
first_errors() { cat "$WORK"/err.* 2>/dev/null | sort | uniq -c | sort -rn | head -5; }

# --- set-up -----------------------------------------------------------------------
log "building the test image"
"$repo/integration/task_image.sh" "$WORK/img.tar" >"$LOGS/image.log" 2>&1 || die "setup: image (see $LOGS/image.log)"

start_holder() {
    python3 "$repo/integration/listen_holder.py" --socket "$SSOCK" --socket "$RSOCK" \
        --pidfile "$WORK/child.pid" -- "$STRATA_PROXY" "${strata_args[@]}" >>"$LOGS/strata.log" 2>&1 &
    holder_pid=$!
}
start_holder
# containerd dials its proxy plugins as it boots; one that finds the socket bound but not yet
# listening, or no daemon behind it, keeps that error through gRPC's reconnect back-off and the
# import's first Prepare failed with it ("connection refused"). Start it once Strata serves.
for ((i = 0; i < 300; i++)); do
    timeout 5 ctr -a "$RSOCK" version >/dev/null 2>&1 && break
    kill -0 "$holder_pid" 2>/dev/null || die "setup: the socket holder exited (see $LOGS/strata.log)"
    sleep 0.1
done
timeout 5 ctr -a "$RSOCK" version >/dev/null 2>&1 || die "setup: strata-proxy does not serve (see $LOGS/strata.log)"
{
    echo 'version = 2'
    echo "root = \"$CTD/root\""
    echo "state = \"$CTD/state\""
    echo '[grpc]'
    echo "  address = \"$CSOCK\""
    echo '[ttrpc]'
    echo "  address = \"$CSOCK.ttrpc\""
    echo '[proxy_plugins.strata-content]'
    echo '  type = "content"'
    echo "  address = \"$SSOCK\""
    echo '[proxy_plugins.strata-overlay]'
    echo '  type = "snapshot"'
    echo "  address = \"$SSOCK\""
} >"$CTD/config.toml"
setsid containerd --config "$CTD/config.toml" >>"$LOGS/containerd.log" 2>&1 &
ctd_pid=$!
for ((i = 0; i < 300; i++)); do
    ctr_ content ls -q >/dev/null 2>&1 && break
    kill -0 "$ctd_pid" 2>/dev/null || die "setup: containerd exited (see $LOGS/containerd.log)"
    sleep 0.1
done
out=$(ctr_ image import --base-name restart-it/img --snapshotter strata-overlay "$WORK/img.tar" 2>&1) ||
    die "setup: import: $out"
# containerd's GC removes the import's unreferenced blobs asynchronously once the import's lease
# is gone; a synchronous collection first, so the clients only ever read blobs the image holds
# (a listing taken before that collection once held a blob deleted moments later).
ctr_ leases create --id restart-it-settle >/dev/null && ctr_ leases rm --sync restart-it-settle >/dev/null ||
    die "setup: a synchronous GC (leases rm --sync) failed"
mapfile -t DIGESTS < <(ctr_ content ls -q)
CHAIN=$(ctr_ snapshots --snapshotter strata-overlay ls | awk 'NR > 1 && $NF == "Committed" { c = $1 } END { print c }')
[[ ${#DIGESTS[@]} -ge 3 && -n $CHAIN ]] || die "setup: import left ${#DIGESTS[@]} blobs, snapshot '$CHAIN'"
pass "setup: containerd 1.6 imported the image into strata (${#DIGESTS[@]} blobs) through socket-activated strata-proxy (pid $(daemon_pid))"

# Runs the clients through $1 restarts, each started by `kill -$2` to the holder or to the
# daemon ($3); sets ok and err.
restarts_under_load() { # count signal holder|daemon
    local r old
    start_clients
    for ((r = 1; r <= $1; r++)); do
        old=$(daemon_pid)
        if [[ $3 == holder ]]; then kill "-$2" "$holder_pid"; else kill "-$2" "$old"; fi
        wait_new_daemon "$old" ||
            die "SIG$2 $r: pid $old was followed by no new daemon (see $LOGS/strata.log)"
        sleep 1.5
    done
    stop_clients
}
# PASS when no call failed (and some were answered), else FAIL with the commonest errors.
expect_no_failed_calls() { # what
    if [[ $err -eq 0 && $ok -gt 0 ]]; then
        pass "$1: 0 of $ok calls failed"
    else
        fail "$1: $err of $((ok + err)) calls failed:"
        first_errors
    fi
}

# --- restarts with SIGTERM, the sockets held; upgrades by hand-over ------------------------
restarts_under_load 3 USR1 holder
expect_no_failed_calls "3 SIGTERM restarts, sockets held (socket activation)"
restarts_under_load 3 USR2 daemon
expect_no_failed_calls "3 upgrades by hand-over (SIGUSR2)"
# A SIGUSR2 sent the moment the root lock names the successor (while it still opens its stores)
# waits for it to serve, then upgrades again: it must not kill it (SIGUSR2's default action).
old=$(daemon_pid)
kill -USR2 "$old"
wait_new_daemon "$old" || die "SIGUSR2 (early 1): pid $old was followed by no new daemon"
mid=$(daemon_pid)
kill -USR2 "$mid"
if wait_new_daemon "$mid" && ctr_ content ls -q >/dev/null 2>&1; then
    pass "a SIGUSR2 the successor gets while opening its stores upgrades it once it serves ($old -> $mid -> $(daemon_pid))"
else
    fail "a SIGUSR2 the successor ($mid) got while opening its stores left no daemon (see $LOGS/strata.log)"
fi
# The last successor is not the holder's child: it serves until stopped. The holder's own
# restart (below) must still work: stop the successor so the holder can start its own again.

# --- restarts with SIGKILL (counted, not asserted) ----------------------------------------
p=$(daemon_pid)
kill -TERM "$p"
for ((i = 0; i < 300; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
kill -USR1 "$holder_pid" # the holder's daemon exited earlier (hand-over); this starts one
wait_new_daemon "$p" || die "kill -9: no daemon after the holder's restart"
restarts_under_load 2 USR2 holder # the holder's SIGUSR2: restart with SIGKILL
printf 'INFO 2 SIGKILL restarts, sockets held: %d of %d calls failed\n' "$err" "$((ok + err))"
first_errors | sed 's/^/INFO   /'

# --- for comparison: the daemon binds its own sockets --------------------------------------
kill "$holder_pid"
wait "$holder_pid"
holder_pid=''
rm -f "$SSOCK" "$RSOCK"
start_plain() {
    setsid "$STRATA_PROXY" "${strata_args[@]}" >>"$LOGS/strata.log" 2>&1 &
    plain_pid=$!
    for ((i = 0; i < 300; i++)); do [[ -S $SSOCK && -S $RSOCK ]] && return 0; sleep 0.05; done
    return 1
}
start_plain || die "plain start: no socket (see $LOGS/strata.log)"
sleep 3 # containerd redials with backoff
start_clients
old=$plain_pid
kill -TERM "$plain_pid"
wait "$plain_pid"
start_plain || die "plain restart: no socket (see $LOGS/strata.log)"
sleep 3
stop_clients
printf 'INFO 1 SIGTERM restart without activation (the daemon binds its socket): %d of %d calls failed\n' \
    "$err" "$((ok + err))"
first_errors | sed 's/^/INFO   /'

# --- still whole ------------------------------------------------------------------------
out=$(ctr_ run --rm --snapshotter strata-overlay restart-it/img:1 "restart-$RANDOM" sh -c 'echo $((6*7))' 2>&1)
[[ $out == 42 ]] && pass "after the restarts: ctr run on strata-overlay prints 42" ||
    fail "after the restarts: ctr run printed: $out"
bad=0
for d in "${DIGESTS[@]}"; do
    s=$(ctr_ content get "$d" | sha256sum)
    [[ "sha256:${s%% *}" == "$d" ]] || { bad=$((bad + 1)); log "blob $d reads back as sha256:${s%% *}"; }
done
[[ $bad -eq 0 ]] && pass "after the restarts: all ${#DIGESTS[@]} blobs read back with their digests" ||
    fail "after the restarts: $bad of ${#DIGESTS[@]} blobs read back wrong"
kill -TERM "$plain_pid"
wait "$plain_pid" && plain_pid='' || fail "the last daemon did not exit 0 on SIGTERM"
summary
[[ $failed -eq 0 ]]
