#!/usr/bin/env bash
# End-to-end test of Strata's runtime socket with stock `ctr` (Debian's containerd 1.6 client),
# no containerd daemon at all: strata-proxy serves containerd's own APIs on --runtime-address.
#
# Every line is checked by exit status and output: version, plugins, namespaces, content fetch
# from a docker-registry on 127.0.0.1, content ls/get/label/rm, images import (OCI and Docker
# archives), ls/check/tag/label/export/re-import/rm, leases, snapshots on every backend,
# containers on a snapshot unpacked by hand (the Diff service is the next issue), events while
# the others run, and garbage collection (images rm --sync leaves nothing; gc.root survives; a
# blob the proxy socket also holds survives the runtime's GC and the other way round). Then the
# Go program integration/runtime-client drives the same socket with containerd's Go client.
#
# Usage: scripts/runtime-it.sh
# Environment:
#   STRATA_PROXY      daemon binary (default /var/tmp/strata-target/debug/strata-proxy)
#   STRATA_BTRFS_ROOT a directory on btrfs: strata's root is put there so strata-btrfs runs too
#   STRATA_RT_PORT    registry port on 127.0.0.1 (default: a free one)
#   STRATA_IT_LOGS    where logs are kept (default /var/tmp/strata-rt-logs)
# Output: PASS/FAIL/SKIP lines, then exactly `N passed, N failed`; exit 1 on any failure.
set -uo pipefail

PACKAGES=(runc containerd docker-registry skopeo umoci busybox-static python3 golang-go
    golang-github-containerd-containerd-dev util-linux)

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STRATA_PROXY=${STRATA_PROXY:-/var/tmp/strata-target/debug/strata-proxy}
PORT=${STRATA_RT_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
REG=127.0.0.1:$PORT
LOGS=${STRATA_IT_LOGS:-/var/tmp/strata-rt-logs}
passed=0 failed=0 strata_pid='' reg_pid='' events_pid=''

log() { printf '%s\n' "$*" >&2; }
pass() { passed=$((passed + 1)); printf 'PASS %s\n' "$1"; }
fail() { failed=$((failed + 1)); printf 'FAIL %s: %s\n' "$1" "$2"; }
summary() { printf '%d passed, %d failed\n' "$passed" "$failed"; }
die() { fail "$1" "$2"; summary; exit 1; }

# check NAME CMD...: passes when CMD exits 0; its output is kept in $out.
check() {
    local name=$1; shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "exit $?: $(head -c 600 <<<"$out")"; fi
}
# expect NAME PATTERN CMD...: CMD must exit 0 and print a line matching the extended regex.
expect() {
    local name=$1 pat=$2; shift 2
    if ! out=$("$@" 2>&1); then fail "$name" "exit $?: $(head -c 600 <<<"$out")"
    elif grep -Eq -- "$pat" <<<"$out"; then pass "$name"
    else fail "$name" "no line matches /$pat/ in: $(head -c 600 <<<"$out")"; fi
}
# refuse NAME PATTERN CMD...: CMD must fail with a message matching PATTERN.
refuse() {
    local name=$1 pat=$2; shift 2
    if out=$("$@" 2>&1); then fail "$name" "succeeded: $(head -c 300 <<<"$out")"
    elif grep -Eq -- "$pat" <<<"$out"; then pass "$name"
    else fail "$name" "failed without /$pat/: $(head -c 600 <<<"$out")"; fi
}
# absent NAME PATTERN CMD...: CMD must exit 0 and print no line matching PATTERN.
absent() {
    local name=$1 pat=$2; shift 2
    if ! out=$("$@" 2>&1); then fail "$name" "exit $?: $(head -c 600 <<<"$out")"
    elif grep -Eq -- "$pat" <<<"$out"; then fail "$name" "still lists /$pat/: $(grep -E -- "$pat" <<<"$out" | head -5)"
    else pass "$name"; fi
}

ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

[[ $(id -u) -eq 0 ]] || { echo "must run as root" >&2; exit 2; }
ensure_packages "${PACKAGES[@]}" || die setup "apt-get install failed"
systemctl disable --now docker-registry >/dev/null 2>&1 || true
[[ -x $STRATA_PROXY ]] || die setup "$STRATA_PROXY is not executable (cargo build --workspace)"

WORK=$(mktemp -d /var/tmp/strata-rt-XXXX)
if [[ -n ${STRATA_BTRFS_ROOT:-} ]]; then
    SROOT=$(mktemp -d "$STRATA_BTRFS_ROOT/strata-rt-root-XXXX")
else
    SROOT=$WORK/root
fi
RSOCK=$WORK/runtime.sock PSOCK=$WORK/proxy.sock MNT=$WORK/mnt
rm -rf "$LOGS" && mkdir -p "$LOGS" "$MNT" "$WORK/bin"
rt() { timeout 120 ctr -a "$RSOCK" "$@"; }       # the runtime socket, namespaces from -n
px() { timeout 120 ctr -a "$PSOCK" "$@"; }       # the proxy socket: one flat view

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in $events_pid $reg_pid $strata_pid; do
        kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    done
    findmnt -rn -o TARGET | awk -v p="$WORK/" 'index($0, p) == 1' | sort -r |
        while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
    rm -rf "$WORK"
    [[ $SROOT != "$WORK"/* ]] && rm -rf "$SROOT"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_socket() { # path seconds
    local i
    for ((i = 0; i < $2 * 10; i++)); do [[ -S $1 ]] && return 0; sleep 0.1; done
    return 1
}

# --- the test image: busybox in two layers, as an OCI layout, OCI and Docker archives -----
build_images() {
    local L=$WORK/layout B=$WORK/bundle
    umoci init --layout "$L" && umoci new --image "$L:1" &&
        umoci unpack --image "$L:1" "$B" >/dev/null &&
        mkdir -p "$B/rootfs/bin" && cp /bin/busybox "$B/rootfs/bin/" &&
        ln -s busybox "$B/rootfs/bin/sh" && umoci repack --image "$L:1" "$B" &&
        rm -rf "$B" && umoci unpack --image "$L:1" "$B" >/dev/null &&
        printf 'hello from layer 2\n' >"$B/rootfs/hello" && umoci repack --image "$L:1" "$B" &&
        umoci config --image "$L:1" --config.cmd /bin/sh && umoci gc --layout "$L" &&
        rm -rf "$B" && tar -C "$L" -cf "$WORK/img-oci.tar" . &&
        skopeo copy --quiet "oci:$L:1" "docker-archive:$WORK/img-docker.tar:it/docker:1" &&
        skopeo copy --quiet --dest-tls-verify=false "oci:$L:1" "docker://$REG/it/img:1"
}

# The image's manifest, config, layers (compressed) and chain IDs, from the layout.
image_facts() {
    python3 - "$WORK/layout" <<'PY'
import hashlib, json, sys
root = sys.argv[1]
blob = lambda d: open(f"{root}/blobs/sha256/{d.split(':')[1]}", "rb").read()
man_d = json.load(open(f"{root}/index.json"))["manifests"][0]["digest"]
man = json.loads(blob(man_d))
cfg = json.loads(blob(man["config"]["digest"]))
chain = []
for d in cfg["rootfs"]["diff_ids"]:
    chain.append(d if not chain else "sha256:" + hashlib.sha256(f"{chain[-1]} {d}".encode()).hexdigest())
print("MANIFEST=" + man_d)
print("CONFIG=" + man["config"]["digest"])
print("LAYERS='" + " ".join(l["digest"] for l in man["layers"]) + "'")
print("CHAINS='" + " ".join(chain) + "'")
PY
}

# Unpacks the image into snapshotter $1 of namespace $2 by hand (prepare, mount, untar,
# commit as the chain ID), and labels the config as containerd's unpacker does.
unpack_by_hand() {
    local sn=$1 ns=$2 i=0 parent='' layer chain
    local -a layers=($LAYERS) chains=($CHAINS)
    for layer in "${layers[@]}"; do
        chain=${chains[$i]}
        rt -n "$ns" snapshots --snapshotter "$sn" prepare "extract-$i" "$parent" >/dev/null &&
            rt -n "$ns" snapshots --snapshotter "$sn" mounts "$MNT" "extract-$i" | sh &&
            tar -xzf "$WORK/layout/blobs/sha256/${layer#sha256:}" -C "$MNT" &&
            umount "$MNT" &&
            rt -n "$ns" snapshots --snapshotter "$sn" commit "$chain" "extract-$i" || return 1
        parent=$chain i=$((i + 1))
    done
    rt -n "$ns" content label "$CONFIG" "containerd.io/gc.ref.snapshot.$sn=$parent" >/dev/null ||
        return 1
    # ctr marks what it prepares and commits gc.root; an unpacker does not. The marks go once the
    # image's config holds the chain: a layer unmarked before the next one is prepared on it is
    # garbage to a GC pass in between (a pass the steps above scheduled collected one so).
    for chain in "${chains[@]:0:i}"; do
        rt -n "$ns" snapshots --snapshotter "$sn" label "$chain" containerd.io/gc.root= >/dev/null ||
            return 1
    done
}

# --- main ------------------------------------------------------------------------
cat >"$WORK/reg.yml" <<YML
version: 0.1
storage: {filesystem: {rootdirectory: $WORK/registry}}
http: {addr: $REG}
log: {level: warn}
YML
setsid docker-registry serve "$WORK/reg.yml" >"$LOGS/registry.log" 2>&1 &
reg_pid=$!
for ((i = 0; i < 50; i++)); do curl -fs "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
check "docker-registry on $REG (ours)" sh -c "kill -0 $reg_pid && curl -fs http://$REG/v2/"
check "build and push the test image (umoci, skopeo)" build_images
eval "$(image_facts)" || die "image facts" "cannot read $WORK/layout"
read -r -a LAYER_LIST <<<"$LAYERS"
log "  manifest $MANIFEST config $CONFIG layers $LAYERS"

# Layers may not create devices here and stop at 64 MiB (the hostile corpus checks both).
printf '[unpack]\nallow_devices = false\nmax_layer_bytes = 67108864\n' >"$WORK/strata.toml"
setsid "$STRATA_PROXY" --root "$SROOT" --address "$PSOCK" --runtime-address "$RSOCK" \
    --state "$WORK/strata-state" --config "$WORK/strata.toml" >"$LOGS/strata.log" 2>&1 &
strata_pid=$!
wait_socket "$RSOCK" 30 || die "start strata-proxy" "no $RSOCK (see $LOGS/strata.log)"
check "socket mode 0660" test "$(stat -c %a "$RSOCK")" = 660

setsid ctr -a "$RSOCK" events >"$WORK/events.txt" 2>&1 &
events_pid=$!

expect "version (server)" '^  Version: +1\.6\.20\+strata' rt version
expect "version (uuid)" '^  UUID: [0-9a-f-]{36}$' rt version
expect "plugins ls: strata-overlay" '^io.containerd.snapshotter.v1 +strata-overlay +linux/[a-z0-9]+ +ok' rt plugins ls
expect "plugins ls: content" '^io.containerd.content.v1 +content .* ok' rt plugins ls
refuse "no namespace: failed precondition" 'namespace is required' ctr -a "$RSOCK" -n '' images ls

# Namespaces.
check "namespaces create" rt namespaces create it-a team=storage
check "namespaces label" rt namespaces label it-a tier=gold
expect "namespaces ls shows labels" '^it-a +(team=storage,tier=gold|tier=gold,team=storage)' rt namespaces ls
refuse "namespaces create twice" 'already exists' rt namespaces create it-a
refuse "namespaces create bad name" 'invalid argument|must match' rt namespaces create 'bad/name'

# Content fetched from the registry.
check "content fetch --plain-http" rt -n it-a content fetch --plain-http "$REG/it/img:1"
for d in "$MANIFEST" "$CONFIG" "${LAYER_LIST[@]}"; do
    expect "content ls has ${d:7:12}" "^$d" rt -n it-a content ls
done
check "content get = the registry's bytes" \
    sh -c "ctr -a '$RSOCK' -n it-a content get ${LAYER_LIST[0]} | cmp - '$WORK/layout/blobs/sha256/${LAYER_LIST[0]#sha256:}'"
check "content label" rt -n it-a content label "${LAYER_LIST[0]}" it.example/mark=yes
expect "content ls shows the label" "^${LAYER_LIST[0]}.*it.example/mark=yes" rt -n it-a content ls
expect "fetch created the image" "^$REG/it/img:1 " rt -n it-a images ls
refuse "namespaces rm of a non-empty namespace" 'must be empty' rt namespaces rm it-a
absent "other namespaces see none of it" "$MANIFEST" rt -n it-b content ls

# Images imported from archives.
check "images import --no-unpack (OCI archive)" \
    rt -n it-b images import --no-unpack --base-name it/oci --digests "$WORK/img-oci.tar"
check "images import --no-unpack (Docker archive)" \
    rt -n it-b images import --no-unpack "$WORK/img-docker.tar"
expect "images ls: OCI import" '^it/oci:1 .*application/vnd.oci.image.manifest.v1\+json' rt -n it-b images ls
expect "images ls: Docker import" '^docker.io/it/docker:1 .*application/vnd.docker.distribution.manifest.v2\+json' rt -n it-b images ls
expect "images check: complete" '^it/oci:1 .* complete \(' rt -n it-b images check
check "images tag" rt -n it-b images tag it/oci:1 it/oci:tagged
check "images label" rt -n it-b images label it/oci:tagged release=yes
expect "images ls shows tag and label" '^it/oci:tagged .*release=yes' rt -n it-b images ls
refuse "images tag onto an existing name" 'already exists' rt -n it-b images tag it/oci:1 it/oci:tagged

check "images export" rt -n it-b images export "$WORK/export.tar" it/oci:1
mkdir -p "$WORK/export" && tar -C "$WORK/export" -xf "$WORK/export.tar"
same=1
for d in "$MANIFEST" "$CONFIG" "${LAYER_LIST[@]}"; do
    cmp -s "$WORK/export/blobs/sha256/${d#sha256:}" "$WORK/layout/blobs/sha256/${d#sha256:}" || same=0
done
check "export: blobs byte-identical to the source" test $same = 1
check "export re-imports in another namespace" \
    rt -n it-c images import --no-unpack --base-name it/re "$WORK/export.tar"
expect "re-imported image lists (named by its export annotation)" '^it/oci:1 ' rt -n it-c images ls

# Leases.
expect "leases create" '^it-lease$' rt -n it-b leases create --id it-lease purpose=test
expect "leases ls" '^it-lease .*purpose=test' rt -n it-b leases ls
check "leases rm" rt -n it-b leases rm it-lease
absent "leases ls after rm" '^it-lease ' rt -n it-b leases ls

# Snapshots on every backend (by hand, as a user would).
BACKENDS=(strata-overlay strata-native)
if [[ -n ${STRATA_BTRFS_ROOT:-} ]]; then BACKENDS+=(strata-btrfs)
else echo "SKIP strata-btrfs: STRATA_BTRFS_ROOT is not set"; fi
for sn in "${BACKENDS[@]}"; do
    S=(rt -n it-s snapshots --snapshotter "$sn")
    check "$sn: prepare" "${S[@]}" prepare base-active ''
    check "$sn: write through the mounts" \
        sh -c "ctr -a '$RSOCK' -n it-s snapshots --snapshotter $sn mounts '$MNT' base-active | sh && dd if=/dev/zero of='$MNT/blob' bs=1M count=4 status=none && umount '$MNT'"
    expect "$sn: usage of the active snapshot" '^base-active +[0-9.]+ ?MiB' "${S[@]}" usage base-active
    check "$sn: commit" "${S[@]}" commit base base-active
    check "$sn: prepare on the committed parent" "${S[@]}" prepare child base
    expect "$sn: ls" '^child +base +Active' "${S[@]}" ls
    expect "$sn: tree" '^ +\\_ child' "${S[@]}" tree
    expect "$sn: info" '"Kind": "Committed"' "${S[@]}" info base
    check "$sn: label" "${S[@]}" label base it.example/keep=1
    expect "$sn: info shows the label" '"it.example/keep": "1"' "${S[@]}" info base
    refuse "$sn: rm of a parent with a child" 'failed precondition|child' "${S[@]}" rm base
    check "$sn: rm child then parent" "${S[@]}" rm child base
    absent "$sn: ls empty" 'base|child' "${S[@]}" ls
done
expect "default snapshotter name overlayfs is strata-overlay" 'strata-overlay|^KEY' \
    rt -n it-s snapshots --snapshotter overlayfs ls

# Containers on the image unpacked by hand into strata-overlay.
if unpack_by_hand strata-overlay it-b; then pass "unpack by hand (prepare/mount/untar/commit)"
else fail "unpack by hand" "see above"; fi
check "containers create --snapshotter strata-overlay" \
    rt -n it-b containers create --snapshotter strata-overlay --label team=rt it/oci:1 c1
expect "containers ls" '^c1 +it/oci:1 +io.containerd.runc.v2' rt -n it-b containers ls
expect "containers info" '"SnapshotKey": "c1"' rt -n it-b containers info c1
check "containers label" rt -n it-b containers label c1 stage=test
expect "containers info shows labels" '"stage": "test"' rt -n it-b containers info c1
expect "the container's snapshot has the image's parent" '^c1 +'"${CHAINS##* }"' +Active' \
    rt -n it-b snapshots --snapshotter strata-overlay ls

# Pull and import with unpack (the Diff service applies each layer), on every backend.
TOP=${CHAINS##* }
for sn in "${BACKENDS[@]}"; do
    check "$sn: images pull --plain-http (with unpack)" \
        rt -n it-u images pull --plain-http --snapshotter "$sn" "$REG/it/img:1"
    expect "$sn: the top layer is unpacked" "^$TOP " rt -n it-u snapshots --snapshotter "$sn" ls
    check "$sn: images mount" rt -n it-u images mount --snapshotter "$sn" "$REG/it/img:1" "$MNT"
    check "$sn: the mounted tree has both layers" \
        sh -c "grep -q 'hello from layer 2' '$MNT/hello' && test -x '$MNT/bin/busybox'"
    check "$sn: busybox runs from the mounted tree" chroot "$MNT" /bin/busybox true
    check "$sn: images unmount --rm" rt -n it-u images unmount --rm "$MNT"
done
check "images import (with unpack)" rt -n it-v images import --base-name it/imp "$WORK/img-oci.tar"
expect "import unpacked the top layer" "^$TOP " rt -n it-v snapshots ls

# A changed rootfs becomes a layer (Diff.Diff), a new image is pushed and pulled back elsewhere.
check "prepare a rootfs on the image" rt -n it-u snapshots prepare changed "$TOP"
check "change it through its mounts" sh -c "ctr -a '$RSOCK' -n it-u snapshots mounts '$MNT' changed | sh &&
    echo added >'$MNT/added' && rm '$MNT/hello' && umount '$MNT'"
check "snapshots diff --keep (Diff.Diff)" \
    sh -c "ctr -a '$RSOCK' -n it-u snapshots diff --keep changed >'$WORK/diff.tar.gz'"
check "the diff holds the change and a whiteout" \
    sh -c "gunzip -c '$WORK/diff.tar.gz' >'$WORK/diff.tar' && tar -tf '$WORK/diff.tar' | grep -qx added &&
    tar -tf '$WORK/diff.tar' | grep -qx .wh.hello && ! tar -tf '$WORK/diff.tar' | grep -q busybox"
DIFF_DIGEST=sha256:$(sha256sum "$WORK/diff.tar.gz" | cut -d' ' -f1)
expect "the diff blob is labelled with its diff ID" \
    "^$DIFF_DIGEST.*containerd.io/uncompressed=sha256:$(sha256sum "$WORK/diff.tar" | cut -d' ' -f1)" \
    rt -n it-u content ls
check "snapshots commit" rt -n it-u snapshots commit changed-layer changed
check "build the changed image (umoci raw add-layer)" sh -c "cp -a '$WORK/layout' '$WORK/layout2' &&
    umoci raw add-layer --image '$WORK/layout2:1' --tag 2 '$WORK/diff.tar' &&
    tar -C '$WORK/layout2' -cf '$WORK/img2.tar' ."
check "import it" rt -n it-u images import --no-unpack --base-name it/changed "$WORK/img2.tar"
check "images push --plain-http" rt -n it-u images push --plain-http "$REG/it/changed:2" it/changed:2
check "pull it back in another namespace" rt -n it-w images pull --plain-http "$REG/it/changed:2"
check "mount the pulled image" rt -n it-w images mount "$REG/it/changed:2" "$MNT"
check "the pulled tree has the change" \
    sh -c "test -f '$MNT/added' && ! test -e '$MNT/hello' && test -x '$MNT/bin/busybox'"
check "unmount" rt -n it-w images unmount --rm "$MNT"
# What ctr marked gc.root (the kept diff, the snapshot committed by hand) goes by hand.
check "remove the kept diff and the committed snapshot" \
    sh -c "ctr -a '$RSOCK' -n it-u content rm '$DIFF_DIGEST' && ctr -a '$RSOCK' -n it-u snapshots rm changed-layer"
for ns in it-u it-v it-w; do
    check "$ns: images rm --sync" sh -c "ctr -a '$RSOCK' -n $ns images rm --sync \$(ctr -a '$RSOCK' -n $ns images ls -q)"
    for sn in "${BACKENDS[@]}"; do
        absent "$ns: $sn: no snapshot left" '^[^K]' rt -n "$ns" snapshots --snapshotter "$sn" ls
    done
    absent "$ns: no blob left" 'sha256:' rt -n "$ns" content ls
done

# Garbage collection.
check "content rm" rt -n it-a content rm "${LAYER_LIST[0]}"
absent "content rm: gone" "^${LAYER_LIST[0]}" rt -n it-a content ls
check "images rm --sync (it-a)" rt -n it-a images rm --sync "$REG/it/img:1"
absent "it-a: GC left no blob" 'sha256:' rt -n it-a content ls
check "namespaces rm (now empty)" rt namespaces rm it-a

# The container keeps its snapshot and the image layers below it; the image is gone.
check "images rm --sync (it-b, every name)" rt -n it-b images rm --sync it/oci:1 it/oci:tagged \
    "it/oci@$MANIFEST" docker.io/it/docker:1
expect "a container keeps its snapshot chain" "^${CHAINS%% *} " rt -n it-b snapshots --snapshotter strata-overlay ls
check "containers rm" rt -n it-b containers rm c1
check "GC pass (lease rm --sync of a fresh lease)" \
    sh -c "ctr -a '$RSOCK' -n it-b leases create --id tick >/dev/null && ctr -a '$RSOCK' -n it-b leases rm --sync tick"
absent "it-b: no snapshot left" '^[^K]' rt -n it-b snapshots --snapshotter strata-overlay ls
absent "it-b: no blob left" 'sha256:' rt -n it-b content ls

# gc.root keeps an unreferenced blob; the proxy view and the runtime never collect each
# other's blobs although the bytes are stored once.
check "ingest a blob (runtime, it-c)" \
    sh -c "printf 'rooted blob\n' | ctr -a '$RSOCK' -n it-c content ingest rooted"
ROOTED=sha256:$(printf 'rooted blob\n' | sha256sum | cut -d' ' -f1)
check "label it gc.root" rt -n it-c content label "$ROOTED" containerd.io/gc.root=yes
check "ingest the first layer through the proxy socket" \
    sh -c "ctr -a '$PSOCK' content ingest --expected-digest '${LAYER_LIST[0]}' px-layer < '$WORK/layout/blobs/sha256/${LAYER_LIST[0]#sha256:}'"
check "images rm --sync (it-c, every image)" \
    sh -c "ctr -a '$RSOCK' -n it-c images rm --sync \$(ctr -a '$RSOCK' -n it-c images ls -q)"
absent "it-c: no image left" '.' rt -n it-c images ls -q
expect "gc.root blob survives" "^$ROOTED" rt -n it-c content ls
absent "unreferenced blobs of it-c are gone" "^${LAYER_LIST[0]}" rt -n it-c content ls
check "the proxy view still reads the shared layer" \
    sh -c "ctr -a '$PSOCK' content get ${LAYER_LIST[0]} | cmp - '$WORK/layout/blobs/sha256/${LAYER_LIST[0]#sha256:}'"
check "runtime re-imports (bytes shared with the proxy view)" \
    rt -n it-c images import --no-unpack --base-name it/again "$WORK/img-oci.tar"
check "proxy content rm" px content rm "${LAYER_LIST[0]}"
check "the runtime still reads the layer after the proxy's delete" \
    sh -c "ctr -a '$RSOCK' -n it-c content get ${LAYER_LIST[0]} | cmp - '$WORK/layout/blobs/sha256/${LAYER_LIST[0]#sha256:}'"

# Hostile layers (archive/tests/hostile) through `ctr images import`: each fails cleanly,
# leaves no snapshot, and nothing outside the snapshots changes.
mkdir -p "$WORK/sentinel" && echo untouched >"$WORK/sentinel/file"
if ! cases=$(python3 "$repo/integration/hostile_images.py" "$repo/archive/tests/hostile" "$WORK/hostile"); then
    fail "hostile images" "hostile_images.py failed"
    cases=''
fi
n_hostile=0
while IFS=$'\t' read -r case expected; do
    [[ -n $case ]] || continue
    n_hostile=$((n_hostile + 1))
    pat='invalid layer'
    [[ $expected == limit ]] && pat='layer limit exceeded'
    refuse "hostile $case: import fails" "$pat" rt -n it-h images import --base-name "hostile/$case" "$WORK/hostile/$case.tar"
done <<<"$cases"
check "hostile corpus has at least 20 cases ($n_hostile)" test "$n_hostile" -ge 20
absent "hostile: no snapshot left behind" '^[^K]' rt -n it-h snapshots ls
check "hostile: the sentinel is untouched" sh -c "test \"\$(cat '$WORK/sentinel/file')\" = untouched && test \$(ls -A '$WORK/sentinel' | wc -l) = 1"
check "hostile: nothing escaped" sh -c "! test -e /escaped && ! test -e /tmp/escaped && ! test -e '$WORK/escaped' && ! test -e '$SROOT/escaped'"

# Events seen by `ctr events` while all of the above ran.
sleep 0.5
for topic in /namespaces/create /namespaces/update /namespaces/delete /images/create \
    /images/update /images/delete /content/delete /snapshot/prepare /snapshot/commit \
    /snapshot/remove /containers/create /containers/update /containers/delete; do
    expect "events: $topic" " $topic " cat "$WORK/events.txt"
done
expect "events: payload decoded by ctr" ' /images/create \{"name":"' cat "$WORK/events.txt"

# containerd's own Go client on the same socket.
if (cd "$repo/integration/runtime-client" && GO111MODULE=off GOFLAGS= GOPATH=/usr/share/gocode \
    go build -o "$WORK/bin/runtime-client" .) >&2; then
    pass "build runtime-client (containerd's Go client)"
    "$WORK/bin/runtime-client" -a "$RSOCK" | tee "$WORK/go.txt"
    g_pass=$(grep -c '^PASS' "$WORK/go.txt") g_fail=$(grep -c '^FAIL' "$WORK/go.txt")
    passed=$((passed + g_pass)) failed=$((failed + g_fail))
    grep -Eq '^[0-9]+ passed, 0 failed$' "$WORK/go.txt" || fail "runtime-client" "did not finish cleanly"
else
    fail "build runtime-client" "go build failed"
fi

if bad=$(grep -aE '\b(ERROR|WARN)\b|panicked' "$LOGS/strata.log" | grep -av 'backend disabled'); then
    fail "strata-proxy log clean" "$(head -20 <<<"$bad")"
else
    pass "strata-proxy log clean (no ERROR/WARN/panic)"
fi
summary
[[ $failed -eq 0 ]]
