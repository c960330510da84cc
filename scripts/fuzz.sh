#!/usr/bin/env bash
# Fuzzes the parsers that take outside input (fuzz/, see fuzz/README.md): builds every cargo-fuzz
# target with the nightly toolchain in its own target folder (never the main one: no RocksDB
# here), replays fuzz/regressions/<target>/* and then fuzzes each target for FUZZ_SECONDS
# (default 30). A crash is kept in fuzz/regressions/<target>/ and makes the exit status non-zero.
# Prints one summary line per target: executions per second and libFuzzer's final cov/ft.
#
#   scripts/fuzz.sh                 # every target
#   FUZZ_SECONDS=300 scripts/fuzz.sh filters tar_apply
#
# STRATA_FUZZ_TARGET_DIR (default /var/tmp/strata-fuzz-target) holds the build;
# STRATA_FUZZ_CORPUS (default /var/tmp/strata-fuzz-corpus) the inputs found so far, so a later
# run starts where the last one stopped. The checked-in seeds (fuzz/corpus/<target>) are read
# only. Needs root for tar_apply to exercise devices and ownership (it still runs without).
set -uo pipefail
cd "$(dirname "$0")/.."

TARGET_DIR=${STRATA_FUZZ_TARGET_DIR:-/var/tmp/strata-fuzz-target}
CORPUS_DIR=${STRATA_FUZZ_CORPUS:-/var/tmp/strata-fuzz-corpus}
SECONDS_EACH=${FUZZ_SECONDS:-30}
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')

log() { echo "fuzz: $*" >&2; }

# cargo-fuzz and a nightly toolchain (cargo-fuzz needs -Z flags).
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  log "installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal || exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked || exit 1
fi

mapfile -t TARGETS < <(if [ $# -gt 0 ]; then printf '%s\n' "$@"; else cargo +nightly fuzz list --fuzz-dir fuzz; fi)
[ ${#TARGETS[@]} -gt 0 ] || { log "no fuzz targets"; exit 1; }

log "building ${TARGETS[*]} in $TARGET_DIR"
start=$(date +%s)
# cargo-fuzz defaults: optimised, debug assertions and overflow checks on, AddressSanitizer.
cargo +nightly fuzz build --fuzz-dir fuzz --target-dir "$TARGET_DIR" || { log "build failed"; exit 1; }
log "built in $(( $(date +%s) - start )) s"

LOGS=$(mktemp -d)
# tar_apply makes a tree per input: on tmpfs it runs about twice as fast as on a disk.
SCRATCH=$(mktemp -d -p "$( [ -w /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")" strata-fuzz.XXXXXX)
trap 'rm -rf "$LOGS" "$SCRATCH"' EXIT
failed=()
summary=()
for t in "${TARGETS[@]}"; do
  bin=$TARGET_DIR/$TRIPLE/release/$t
  regressions=fuzz/regressions/$t
  mkdir -p "$CORPUS_DIR/$t" "$regressions"
  # 1. Every input that once crashed must pass now.
  mapfile -t old < <(find "$regressions" -maxdepth 1 -type f ! -name '.*' ! -name '*.md' | sort)
  if [ ${#old[@]} -gt 0 ]; then
    if ! TMPDIR=$SCRATCH "$bin" -runs=1 "${old[@]}" >"$LOGS/$t.regressions" 2>&1; then
      log "$t: a regression input fails again:"
      tail -n 40 "$LOGS/$t.regressions" >&2
      failed+=("$t (regression)")
      summary+=("$t: REGRESSION FAILED (${#old[@]} inputs in $regressions)")
      continue
    fi
  fi
  # 2. Fuzz; new inputs go to the persistent corpus, a crash to fuzz/regressions/<target>/.
  TMPDIR=$SCRATCH "$bin" "$CORPUS_DIR/$t" "fuzz/corpus/$t" \
    -max_total_time="$SECONDS_EACH" -timeout=10 -print_final_stats=1 \
    -artifact_prefix="$regressions/" >"$LOGS/$t.log" 2>&1
  rc=$?
  last=$(grep -E '^#[0-9]+.* cov: ' "$LOGS/$t.log" | tail -n 1)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$LOGS/$t.log")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$LOGS/$t.log")
  files=$(find "$CORPUS_DIR/$t" -type f | wc -l)
  size=$(du -sk --apparent-size "$CORPUS_DIR/$t" | cut -f1)
  line="$t: exec/s=${execs:-?} runs=${runs:-?} cov=${cov:-?} ft=${ft:-?} corpus=$files files/${size}K"
  if [ $rc -ne 0 ]; then
    log "$t: libFuzzer exited $rc:"
    grep -E -A 30 'ERROR: libFuzzer|panicked at|AddressSanitizer|Test unit written' "$LOGS/$t.log" | head -n 60 >&2
    failed+=("$t")
    line="$line CRASH (input kept in $regressions/)"
  fi
  summary+=("$line")
  log "$line"
done

echo "fuzz summary (${SECONDS_EACH} s per target):"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  exit 1
fi
