#!/usr/bin/env bash
# Builds the image the task tests run, as an OCI archive: busybox (every applet) and the
# host's Debian python3 with the modules its start-up and `print` need, /etc/passwd with a user
# `app` (1234), config Env GREETING=hello-from-image, WorkingDir /srv.
#   tag 1:    runs as root
#   tag user: User "app" (ctr resolves the name from the image's /etc/passwd)
# Usage: integration/task_image.sh OUT.tar   (needs umoci, busybox-static, python3)
set -euo pipefail
out=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
L=$work/layout B=$work/bundle
umoci init --layout "$L"
umoci new --image "$L:1"
umoci unpack --image "$L:1" "$B" >/dev/null
R=$B/rootfs
mkdir -p "$R/bin" "$R/srv" "$R/etc" "$R/tmp"
chmod 1777 "$R/tmp"
cp /bin/busybox "$R/bin/"
for a in $(/bin/busybox --list); do [[ $a == busybox ]] || ln -sf busybox "$R/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234:app:/srv:/bin/sh\n' >"$R/etc/passwd"
printf 'root:x:0:\napp:x:1234:\n' >"$R/etc/group"
chown 1234:1234 "$R/srv"
# python3: the interpreter, its shared libraries and the modules a `print` run imports.
py=$(readlink -f /usr/bin/python3)
copy() { mkdir -p "$R$(dirname "$1")" && cp -L "$1" "$R$1"; }
copy "$py"
ln -s "$py" "$R/bin/python3"
for lib in $(ldd "$py" | grep -oE '/[^ ]+'); do copy "$lib"; done
/usr/bin/python3 -S -c 'import sys, encodings, site; print("\n".join(m.__file__ for m in list(sys.modules.values()) if getattr(m, "__file__", None)))' |
    while read -r f; do copy "$f"; done
libdir=$(/usr/bin/python3 -S -c 'import os; print(os.path.dirname(os.__file__))')
mkdir -p "$R$libdir/lib-dynload" && cp -r "$libdir/encodings" "$R$libdir/"
umoci repack --image "$L:1" "$B"
umoci config --image "$L:1" --config.cmd /bin/sh --config.env PATH=/bin:/usr/bin \
    --config.env GREETING=hello-from-image --config.workingdir /srv
umoci config --image "$L:1" --tag user --config.user app
umoci gc --layout "$L"
tar -C "$L" -cf "$out" .
