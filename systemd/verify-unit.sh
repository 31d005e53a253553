#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# systemd-analyze verify on the built ferryd.service, with ExecStart
# pointed at the built ferryd (verify insists the binary exists). It
# exits 0 even for settings it ignores, so any output counts as failure.
set -euo pipefail
unit=$1 ferryd=$2
command -v systemd-analyze >/dev/null || { echo "SKIP: no systemd-analyze"; exit 77; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s|^ExecStart=[^ ]*|ExecStart=$ferryd|" "$unit" >"$tmp/ferryd.service"
# --man=no: Documentation= names the man pages, which a build tree has not
# installed (the packaging test checks that the packages ship them).
if ! out=$(systemd-analyze verify --man=no "$tmp/ferryd.service" 2>&1) || [ -n "$out" ]; then
    printf 'systemd-analyze verify ferryd.service:\n%s\n' "$out" >&2
    exit 1
fi
echo "ferryd.service verifies cleanly"
