#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The docs name every configuration key the parser knows and every
# ferryctl command, and the man pages (man/*.scd) every key, every command
# with each of its options, every exit code of ferryctl and every option of
# ferryd: a key, command or option added without documentation fails.
set -euo pipefail
repo=$1 ferryctl=$2 ferryd=$3
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
commands=$("$ferryctl" --help | awk '/^Commands:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }')
[ -n "$commands" ] || { echo "no commands found in ferryctl --help: the pattern is stale" >&2; exit 1; }
for c in $commands; do
    if ! grep -q "ferryctl.* $c\b\|^## .*\b$c\b\|\`$c\b" "$repo/docs/ferryctl.md"; then
        echo "docs/ferryctl.md does not document the command $c" >&2
        missing=1
    fi
done
# ---- the man pages, from their scdoc sources. A command, an option, a key
# or an exit code is documented by an item, a line that starts with
# "*NAME*" (possibly with an alias: "*-h*, *--help*"), with its body indented
# below it, in the section it belongs to; the options of a command are
# indented items inside the command's item. See the comment at the top of
# each .scd.
man=$repo/man

# scd_section FILE TITLE: the lines of the section "# TITLE" of FILE.
scd_section() {
    awk -v t="# $2" '$0 == t { on = 1; next } on && /^# / { exit } on' "$1"
}

# scd_item TEXT NAME: the item of TEXT that starts with "*NAME*", with its
# body: up to the next unindented line.
scd_item() {
    awk -v i="*$2*" 'on && /^[^\t ]/ { exit } index($0, i) == 1 { on = 1 } on' <<<"$1"
}

# scd_has_item TEXT NAME [INDENT]: TEXT has an item line for NAME, at the
# indentation INDENT (an extended regex; default none): "*NAME*" first, or
# after an alias ("*-h*, *--help*").
scd_has_item() {
    grep -E "^${3:-}\*" <<<"$1" | grep -qF -- "*$2*"
}

# help_options: "SECTION OPTION" for every option (and alias) in the option
# sections of --help on stdin; SECTION is "-" for the options of every
# command, else the command whose "Options of COMMAND:" lists it.
help_options() {
    awk '/^Options \(/ { c = "-"; next }
         /^Options of [^ ]+:$/ { c = $3; sub(/:$/, "", c); next }
         /^[^ ]/ || /^$/ { c = ""; next }
         c != "" { for (i = 1; i <= 2; i++) if ($i ~ /^-/) { o = $i; sub(/[,=].*/, "", o); print c, o } }'
}

if command -v scdoc >/dev/null; then
    for f in "$man"/*.scd; do
        scdoc <"$f" >/dev/null || { echo "${f#"$repo"/} is not valid scdoc" >&2; missing=1; }
    done
fi

page=$man/ferryctl.8.scd
man_commands=$(scd_section "$page" COMMANDS)
for c in $commands; do
    [ -n "$(scd_item "$man_commands" "$c")" ] || {
        echo "man/ferryctl.8.scd does not document the command $c (an item *$c* under COMMANDS)" >&2
        missing=1
    }
done

ctl_options=$("$ferryctl" --help | help_options)
[ -n "$ctl_options" ] || { echo "no options found in ferryctl --help: the pattern is stale" >&2; exit 1; }
man_options=$(scd_section "$page" OPTIONS)
while read -r c o; do
    if [ "$c" = - ]; then
        scd_has_item "$man_options" "$o" || {
            echo "man/ferryctl.8.scd does not document the option $o (an item *$o* under OPTIONS)" >&2
            missing=1
        }
    elif ! scd_has_item "$(scd_item "$man_commands" "$c")" "$o" '[[:blank:]]+'; then
        echo "man/ferryctl.8.scd does not document the option $o of $c (an indented item *$o* in the item *$c* under COMMANDS)" >&2
        missing=1
    fi
done <<<"$ctl_options"

codes=$("$ferryctl" --help | awk '/^Exit status:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [0-9]+ / { print $1 }')
[ -n "$codes" ] || { echo "no exit codes found in ferryctl --help: the pattern is stale" >&2; exit 1; }
man_codes=$(scd_section "$page" "EXIT STATUS")
for e in $codes; do
    [ -n "$(scd_item "$man_codes" "$e")" ] || {
        echo "man/ferryctl.8.scd does not document the exit status $e (an item *$e* under EXIT STATUS)" >&2
        missing=1
    }
done

d_options=$("$ferryd" --help | awk '/^ +-/ { for (i = 1; i <= 2; i++) if ($i ~ /^-/) { o = $i; sub(/[,=].*/, "", o); print o } }')
[ -n "$d_options" ] || { echo "no options found in ferryd --help: the pattern is stale" >&2; exit 1; }
man_options=$(scd_section "$man/ferryd.8.scd" OPTIONS)
for o in $d_options; do
    scd_has_item "$man_options" "$o" || {
        echo "man/ferryd.8.scd does not document the option $o (an item *$o* under OPTIONS)" >&2
        missing=1
    }
done

man_keys=$(scd_section "$man/ferryd.conf.5.scd" KEYS)
for k in $keys; do
    scd_has_item "$man_keys" "$k" || {
        echo "man/ferryd.conf.5.scd does not document the key $k (an item *$k* under KEYS)" >&2
        missing=1
    }
done

[ $missing = 0 ] && echo "every key ($(wc -w <<<"$keys")), command ($(wc -w <<<"$commands")), ferryctl option ($(wc -l <<<"$ctl_options")), exit status ($(wc -w <<<"$codes")) and ferryd option ($(wc -w <<<"$d_options")) is documented"
exit $missing
