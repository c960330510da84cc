#!/usr/bin/env bash
# containerd 2.x beside Debian bookworm's 1.6, never installed over the system package: Debian
# sid's containerd .deb, downloaded with a private apt state (same mirror as the machine's
# bookworm entry, suite sid) and unpacked with `dpkg-deb -x` into a persistent private dir.
# Sourced by scripts/integration.sh; can also be run: `scripts/containerd2.sh` prints the dir.
#
#   strata_containerd2_dir   prints <dir> whose bin/ holds containerd, ctr and
#                            containerd-shim-runc-v2 (put it first on PATH for the shim)
#
# Idempotent and offline once fetched: an existing <base>/<version>/bin/containerd is reused
# without touching the network. Environment:
#   STRATA_CONTAINERD2_BASE  where versions are kept (default /var/tmp/strata-containerd2)
#   STRATA_CONTAINERD2_SUITE the Debian suite to fetch from (default sid)

# The newest version already unpacked under $1, if any (prints its dir).
strata_containerd2_present() {
    local d
    d=$(find "$1" -mindepth 3 -maxdepth 3 -path '*/bin/containerd' -printf '%h\n' 2>/dev/null |
        sed 's|/bin$||' | sort -V | tail -1)
    [[ -n $d && -x $d/bin/ctr && -x $d/bin/containerd-shim-runc-v2 ]] && echo "$d"
}

# The Debian mirror URI of this machine's bookworm entry (deb822 or one-line sources).
strata_debian_mirror() {
    local uri
    uri=$(grep -rhsE '^(URIs:|deb )' /etc/apt/sources.list /etc/apt/sources.list.d/ |
        grep -E 'debian/?( |$)' | grep -v security | head -1 | awk '{print $2}')
    echo "${uri:-http://deb.debian.org/debian}"
}

strata_containerd2_dir() {
    local base=${STRATA_CONTAINERD2_BASE:-/var/tmp/strata-containerd2}
    local suite=${STRATA_CONTAINERD2_SUITE:-sid} dir apt deb version
    if dir=$(strata_containerd2_present "$base"); then
        echo "$dir"
        return 0
    fi
    apt=$base/apt-$suite
    mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" || return 1
    printf 'deb %s %s main\n' "$(strata_debian_mirror)" "$suite" >"$apt/sources.list"
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Get::List-Cleanup=0
        -o APT::Sandbox::User=root) # the private dirs are root's; _apt cannot write there
    echo "fetching containerd 2.x from Debian $suite into $base" >&2
    apt-get "${opts[@]}" update -qq >&2 || return 1
    version=$(apt-cache "${opts[@]}" show containerd 2>/dev/null | awk '/^Version:/ {print $2}' |
        sort -V | tail -1)
    [[ $version == 2.* || $version == [3-9].* ]] || {
        echo "Debian $suite has containerd '$version', not 2.x" >&2
        return 1
    }
    (cd "$apt/cache/archives" && apt-get "${opts[@]}" download "containerd=$version" >&2) || return 1
    deb=$(ls "$apt/cache/archives"/containerd_*.deb | sort -V | tail -1)
    dir=$base/${version%%[~+-]*}
    rm -rf "$dir.tmp" && mkdir -p "$dir.tmp" && dpkg-deb -x "$deb" "$dir.tmp/root" || return 1
    mkdir -p "$dir.tmp/bin" &&
        for b in containerd ctr containerd-shim-runc-v2; do
            mv "$dir.tmp/root/usr/bin/$b" "$dir.tmp/bin/" || return 1
        done
    rm -rf "$dir.tmp/root" "$dir" && mv "$dir.tmp" "$dir" || return 1
    "$dir/bin/containerd" --version >&2 || return 1
    echo "$dir"
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
    strata_containerd2_dir
fi
