#!/usr/bin/env bash
# Installs what building and testing Strata needs on Debian 12 (idempotent, offline apart from
# the package registries). Sourced by scripts/run and scripts/test.
set -euo pipefail

STRATA_APT_PACKAGES=(
  protobuf-compiler libclang-dev clang pkg-config   # tonic-prost-build, rocksdb bindgen
  containerd runc                                   # the real containerd we test against
  busybox-static                                    # the rootfs of cargo test's containers
  docker-registry openssl                           # cargo test's loopback registries (TLS too)
  golang-go golang-github-containerd-containerd-dev # containerd's own test suites (offline)
  btrfs-progs fuse3 util-linux e2fsprogs            # loop-backed btrfs, FUSE, mount tools
)

strata_missing_packages() {
  local p missing=()
  for p in "${STRATA_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  echo "${missing[@]:-}"
}

strata_install_deps() {
  local missing
  missing=$(strata_missing_packages)
  if [[ -n "${missing// }" ]]; then
    echo "installing: $missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing
  fi
  # Debian's containerd package starts a system daemon; we never use it.
  systemctl disable --now containerd >/dev/null 2>&1 || true
}

# One persistent target dir (RocksDB's C++ build takes ~12 minutes on two cores).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/strata-target}"
