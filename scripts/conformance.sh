#!/usr/bin/env bash
# Runs containerd 1.6.20's own content and snapshot test suites against
# strata-proxy over its unix socket (see conformance/go/src/strataconformance).
#
# Usage: scripts/conformance.sh [go test binary flags, e.g. -test.run 'TestContent']
#
# Environment:
#   CONFORMANCE_OUT          build/output dir (default /var/tmp/strata-conformance)
#   STRATA_PROXY             daemon binary (default /var/tmp/strata-target/debug/strata-proxy);
#                            `ref` builds and uses conformance/go/src/refproxy (containerd's
#                            own stores: the baseline, every test passes)
#   STRATA_PROXY_ARGS        extra daemon arguments
#   STRATA_SNAPSHOTTERS      backends to test (default strata-overlay,strata-native,strata-lazy)
#   STRATA_BTRFS_ROOT        a directory on btrfs (scripts/btrfs-loop.sh up <dir>): adds
#                            strata-btrfs, whose daemons keep their --root below it
#   STRATA_CONFORMANCE_LOGS  per-daemon logs (default $CONFORMANCE_OUT/logs, wiped each run)
#
# Exit status: the test binary's (0 = all passed). The full output is also
# kept in $CONFORMANCE_OUT/last-run.log.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${CONFORMANCE_OUT:-/var/tmp/strata-conformance}
pkg=strataconformance
mkdir -p "$out"

export GO111MODULE=off GOFLAGS= GOPATH="$repo/conformance/go:/usr/share/gocode"
(cd "$repo" && go test -c -o "$out/conformance.test" "./conformance/go/src/$pkg")

export STRATA_PROXY=${STRATA_PROXY:-/var/tmp/strata-target/debug/strata-proxy}
if [[ $STRATA_PROXY == ref ]]; then
    # Baseline: containerd's own stores behind the same command line.
    (cd "$repo" && go build -o "$out/refproxy" ./conformance/go/src/refproxy)
    STRATA_PROXY=$out/refproxy
fi
export STRATA_CONFORMANCE_LOGS=${STRATA_CONFORMANCE_LOGS:-$out/logs}
rm -rf "$STRATA_CONFORMANCE_LOGS"
mkdir -p "$STRATA_CONFORMANCE_LOGS"
if [[ ! -x $STRATA_PROXY ]]; then
    echo "warning: $STRATA_PROXY is not an executable; every test will fail to start it" >&2
fi

start=$(date +%s.%N)
set +e
(cd "$out" && ./conformance.test -test.root -test.v -test.timeout 45m "$@") 2>&1 | tee "$out/last-run.log"
rc=${PIPESTATUS[0]}
set -e
elapsed=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.3f", e - s }')

# The summary line `go test` itself prints after the binary's PASS/FAIL.
if [[ $rc -eq 0 ]]; then
    printf 'ok  \t%s\t%.3fs\n' "$pkg" "$elapsed"
else
    printf 'FAIL\t%s\t%.3fs\n' "$pkg" "$elapsed"
fi
{
    echo "conformance: $(grep -c -- '--- PASS' "$out/last-run.log" || true) passed," \
        "$(grep -c -- '--- FAIL' "$out/last-run.log" || true) failed," \
        "$(grep -c -- '--- SKIP' "$out/last-run.log" || true) skipped (counts include parent tests);" \
        "daemon logs in $STRATA_CONFORMANCE_LOGS"
} >&2
exit "$rc"
