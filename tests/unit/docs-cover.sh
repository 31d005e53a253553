#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The docs name every configuration key the parser knows and every
# ferryctl command: a key or command added without documentation fails.
set -euo pipefail
repo=$1 ferryctl=$2
missing=0

keys=$(sed -n 's/^ *{ "\([a-z_]*\)", *parse_.*/\1/p' "$repo/daemon/config.c")
[ -n "$keys" ] || { echo "no keys found in daemon/config.c: the pattern is stale" >&2; exit 1; }
for k in $keys; do
    if ! grep -q "\`$k\`" "$repo/docs/CONFIG.md"; then
        echo "docs/CONFIG.md does not document the key $k" >&2
        missing=1
    fi
    if ! grep -q "^#\?$k =" "$repo/systemd/ferryd.conf.example"; then
        echo "systemd/ferryd.conf.example does not show the key $k" >&2
        missing=1
    fi
done

# Commands: the first word of each indented line of the Commands section
# of `ferryctl --help`.
commands=$("$ferryctl" --help | awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }')
[ -n "$commands" ] || { echo "no commands found in ferryctl --help: the pattern is stale" >&2; exit 1; }
for c in $commands; do
    if ! grep -q "ferryctl.* $c\b\|^## .*\b$c\b\|\`$c\b" "$repo/docs/ferryctl.md"; then
        echo "docs/ferryctl.md does not document the command $c" >&2
        missing=1
    fi
done
[ $missing = 0 ] && echo "every key ($(wc -w <<<"$keys")) and command ($(wc -w <<<"$commands")) is documented"
exit $missing
