#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Builds the Debian packages from a copy of the source tree (never in the
# tree itself: dpkg-buildpackage leaves build directories and debian/
# artifacts behind) and checks what they contain: every file where ferryd,
# systemd, the bus and polkit look for it, the plugins in the directory
# compiled into ferryd, the man pages when the tree has them, the
# dependencies, the maintainer scripts (enabled, not started on install,
# stopped on removal) and the conffile.
#
#   build-debs.sh SOURCE_ROOT VERSION
#
# VERSION is meson's project version; debian/changelog must match it.
# Needs dpkg-dev, debhelper and the Build-Depends (tests/install-deps
# packaging). Set FERRY_DEBS_KEEP=1 to keep the build directory.
set -euo pipefail

src_root=$1 version=$2

for tool in dpkg-buildpackage dpkg-checkbuilddeps dh; do
    command -v "$tool" >/dev/null || { echo "SKIP: no $tool (tests/install-deps packaging)"; exit 77; }
done

tmp=$(mktemp -d /tmp/ferry-debs.XXXXXX)
if [ -n "${FERRY_DEBS_KEEP:-}" ]; then
    echo "keeping $tmp"
else
    trap 'rm -rf "$tmp"' EXIT
fi

fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# The tree as it is, uncommitted changes included, without version control
# and without build directories (every meson build directory, obj-* of an
# earlier package build too, has a build.ninja) ...
src=$tmp/ferry
mkdir "$src"
tar -C "$src_root" --exclude-vcs --exclude-tag-all=build.ninja -cf - . | tar -C "$src" -xf -
# ... nor what an earlier package build left in debian/.
find "$src/debian" -mindepth 1 -maxdepth 1 -type d ! -name source -exec rm -rf {} +
rm -f "$src"/debian/{files,*.substvars,*.debhelper,*.debhelper.log,debhelper-build-stamp}

changelog_version=$(cd "$src" && dpkg-parsechangelog -S Version)
[ "$changelog_version" = "$version" ] && ok "debian/changelog is at $version" ||
    fail "debian/changelog is at $changelog_version, meson.build at $version"

if ! out=$(cd "$src" && dpkg-checkbuilddeps 2>&1); then
    echo "$out" >&2
    echo "FAIL: Build-Depends missing: tests/install-deps packaging must install them" >&2
    exit 1
fi

start=$SECONDS
if ! (cd "$src" && dpkg-buildpackage -us -uc -b -j2) >"$tmp/build.log" 2>&1; then
    # The compiler's and debhelper's complaints, then how it ended.
    grep -E 'error|warning: |^dh_[a-z_]+: ' "$tmp/build.log" | tail -n 30 >&2 || true
    tail -n 15 "$tmp/build.log" >&2
    echo "FAIL: dpkg-buildpackage (log: $tmp/build.log with FERRY_DEBS_KEEP=1)" >&2
    exit 1
fi
ok "dpkg-buildpackage -us -uc -b in $((SECONDS - start))s"

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
deb() { echo "$tmp/${1}_${changelog_version}_$arch.deb"; }
packages=(ferryd ferryctl ferry-backend-libvirt ferry-backend-sim)
for p in "${packages[@]}"; do
    if [ ! -f "$(deb "$p")" ]; then
        fail "no package $p"
        continue
    fi
    dpkg-deb -c "$(deb "$p")" | awk '{ print $NF }' | sed 's|^\./|/|' >"$tmp/$p.files"
    mkdir "$tmp/root-$p"
    dpkg-deb -x "$(deb "$p")" "$tmp/root-$p"
    mkdir "$tmp/control-$p"
    dpkg-deb -e "$(deb "$p")" "$tmp/control-$p"
done
[ "$fails" -eq 0 ] || exit 1

has() {  # PACKAGE PATH
    grep -qxF "$2" "$tmp/$1.files" && ok "$1 has $2" || fail "$1 lacks $2"
}
field() {  # PACKAGE FIELD EXTENDED-REGEX
    local v
    v=$(dpkg-deb -f "$(deb "$1")" "$2")
    [[ $v =~ $3 ]] && ok "$1 $2 matches $3" || fail "$1 $2 \"$v\" does not match $3"
}

# The binaries.
has ferryd /usr/sbin/ferryd
has ferryctl /usr/bin/ferryctl
ferryd=$tmp/root-ferryd/usr/sbin/ferryd

# The unit: where dh_installsystemd saw it (it writes the enable snippet
# only for units it finds) and where systemd looks, under /lib or /usr/lib,
# not /usr/local or /etc.
unit=$(grep -E '^/(usr/)?lib/systemd/system/ferryd\.service$' "$tmp/ferryd.files" || true)
if [ -z "$unit" ]; then
    fail "ferryd has no ferryd.service in /lib/systemd/system or /usr/lib/systemd/system"
else
    ok "ferryd has $unit"
    if command -v systemd-analyze >/dev/null; then
        systemd-analyze unit-paths | grep -qxF "$(dirname "$unit")" &&
            ok "systemd loads units from $(dirname "$unit")" ||
            fail "$(dirname "$unit") is not in systemd's unit path"
    fi
    grep -q "^ExecStart=/usr/sbin/ferryd -c /etc/ferry/ferryd.conf$" "$tmp/root-ferryd$unit" &&
        ok "the unit runs /usr/sbin/ferryd -c /etc/ferry/ferryd.conf" ||
        fail "the unit's ExecStart is $(grep ^ExecStart= "$tmp/root-ferryd$unit")"
fi

# Maintainer scripts: enabled on install, never started there; an upgrade
# restarts a running ferryd only; removal stops it; purge drops the state.
postinst=$tmp/control-ferryd/postinst
grep -q "deb-systemd-helper enable 'ferryd.service'" "$postinst" &&
    ok "postinst enables ferryd.service" || fail "postinst does not enable ferryd.service"
grep -q "deb-systemd-invoke try-restart 'ferryd.service'" "$postinst" &&
    ok "postinst try-restarts ferryd.service on upgrade" || fail "postinst does not try-restart ferryd.service"
if grep -Eq "deb-systemd-invoke (start|restart|\\\$_dh_action) " "$postinst"; then
    fail "postinst starts ferryd.service"
else
    ok "postinst does not start ferryd.service"
fi
grep -q "deb-systemd-invoke stop ferryd.service" "$tmp/control-ferryd/prerm" &&
    ok "prerm stops ferryd.service on removal" || fail "prerm does not stop ferryd.service"
grep -q "rm -rf /var/lib/ferry" "$tmp/control-ferryd/postrm" &&
    ok "postrm purge removes /var/lib/ferry" || fail "postrm purge leaves /var/lib/ferry"

# Bus policy, polkit action, configuration.
has ferryd /usr/share/dbus-1/system.d/org.ferry.Ferry1.conf
has ferryd /usr/share/polkit-1/actions/org.ferry.policy
has ferryd /etc/ferry/ferryd.conf
has ferryd /usr/share/doc/ferryd/examples/ferryd.conf.example
grep -qxF /etc/ferry/ferryd.conf "$tmp/control-ferryd/conffiles" &&
    ok "/etc/ferry/ferryd.conf is a conffile" || fail "/etc/ferry/ferryd.conf is not a conffile"
"$ferryd" --help | grep -qF "(default /etc/ferry/ferryd.conf)" &&
    ok "ferryd reads /etc/ferry/ferryd.conf by default" || fail "ferryd's default configuration is not /etc/ferry/ferryd.conf"
"$ferryd" --check-config -c "$tmp/root-ferryd/etc/ferry/ferryd.conf" >/dev/null &&
    ok "ferryd --check-config accepts the shipped ferryd.conf" || fail "ferryd refuses the shipped ferryd.conf"

# The plugins, in the directory compiled into ferryd, which the shipped
# configuration names too.
plugin_dir=$(grep -aoE '/[[:alnum:]/_.-]*/ferry/plugins' "$ferryd" | head -n 1)
case $plugin_dir in
    /usr/lib/*/ferry/plugins) ok "ferryd loads plugins from $plugin_dir" ;;
    *) fail "ferryd's plugin directory is \"$plugin_dir\", not /usr/lib/<multiarch>/ferry/plugins" ;;
esac
has ferry-backend-libvirt "$plugin_dir/ferry-backend-libvirt.so"
has ferry-backend-sim "$plugin_dir/ferry-backend-sim.so"
grep -qxF "#plugin_dir = $plugin_dir" "$tmp/root-ferryd/etc/ferry/ferryd.conf" &&
    ok "ferryd.conf names $plugin_dir" || fail "ferryd.conf names another plugin_dir"

# Man pages, once the tree has them: NAME.SECTION.scd becomes
# /usr/share/man/manSECTION/NAME.SECTION.gz, ferryctl's in ferryctl,
# every other one in ferryd.
shopt -s nullglob
for scd in "$src"/man/*.scd; do
    page=$(basename "$scd" .scd)
    case $page in ferryctl.*) p=ferryctl ;; *) p=ferryd ;; esac
    has "$p" "/usr/share/man/man${page##*.}/$page.gz"
done
# Shell completion, once the tree has it.
if [ -d "$src/completion" ]; then
    grep -q '^/usr/share/bash-completion/completions/.' "$tmp/ferryctl.files" &&
        ok "ferryctl has a bash completion" || fail "ferryctl has no bash completion"
fi

# Dependencies: the cluster stack and shared libraries of ferryd, the
# plugins tied to the very ferryd they were built with.
field ferryd Depends '(^|, )corosync(,|$)'
field ferryd Depends 'libcpg[0-9]+ '
field ferryd Depends 'libsystemd0 '
field ferryd Depends 'dbus-system-bus'
field ferryd Recommends 'ferry-backend-libvirt'
field ferryd Recommends 'libvirt-daemon-system'
field ferryctl Depends 'libsystemd0 '
field ferry-backend-libvirt Depends "ferryd \\(= $changelog_version\\)"
field ferry-backend-libvirt Depends 'libvirt0 '
field ferry-backend-sim Depends "ferryd \\(= $changelog_version\\)"
for p in "${packages[@]}"; do
    field "$p" Version "^$version\$"
done

# Lintian, where installed: no errors.
if command -v lintian >/dev/null; then
    start=$SECONDS
    if out=$(lintian --fail-on error "$tmp"/ferry_*.changes 2>&1); then
        ok "lintian: no errors ($((SECONDS - start))s)"
    else
        echo "$out" >&2
        fail "lintian reports errors"
    fi
    [ -z "$out" ] || echo "$out"
fi

if [ "$fails" -gt 0 ]; then
    echo "$fails check(s) failed" >&2
    exit 1
fi
echo "all package checks passed"
