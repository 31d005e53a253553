# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Shared helpers for the multi-node tests in tests/cluster/. A test does
#
#     source "$(dirname "$0")/lib.sh"
#     testbed_setup NAME            # skips (77) unless root with the tools
#     tb up --nodes 3
#     ...
#
# and exits 0 (pass), 1 (fail, via `fail`) or 77 (skip, via `skip`). The
# testbed is torn down on every exit; when the test failed, the node logs are
# printed first.
#
# Environment: FERRY_BUILD_DIR (set by meson) selects the ferryd/ferryctl
# under test; FERRY_TESTBED_TIMEOUT and the other FERRY_TESTBED_* variables
# are passed on to the testbed (see tests/testbed/testbed).

set -euo pipefail

CLUSTER_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$CLUSTER_DIR/../.." && pwd)
TESTBED=$REPO/tests/testbed/testbed
export PATH="/usr/local/sbin:/usr/sbin:/sbin:$PATH"
export FERRY_BUILD_DIR=${FERRY_BUILD_DIR:-$REPO/build}

# ---------------------------------------------------------------- messages

info() { printf '[%s] %s\n' "$(date +%T)" "$*"; }
fail() { printf '[%s] FAIL: %s\n' "$(date +%T)" "$*" >&2; exit 1; }
skip() { printf 'SKIP: %s\n' "$*"; exit 77; }

# ---------------------------------------------------------------- set-up

_testbed_cleanup() {
    local rc=$?
    trap - EXIT
    # A test may define test_cleanup for what it started itself; it runs
    # first and cannot change the verdict.
    if declare -F test_cleanup >/dev/null; then
        test_cleanup || true
    fi
    if ((rc != 0 && rc != 77)) && [[ -f ${FERRY_TESTBED_DIR:-/tmp/$FERRY_TESTBED_NAME}/testbed.env ]]; then
        printf '\n=== test failed (exit %d): state of testbed %s\n' "$rc" "$FERRY_TESTBED_NAME" >&2
        "$TESTBED" status >&2 || true
        local n
        for n in $(_all_nodes); do
            "$TESTBED" logs "$n" ferryd 60 >&2 || true
            "$TESTBED" logs "$n" corosync 15 >&2 || true
            "$TESTBED" logs "$n" dbus 5 >&2 || true
        done
    fi
    "$TESTBED" down || {
        printf 'testbed down failed\n' >&2
        ((rc != 0)) || rc=1
    }
    exit "$rc"
}

# testbed_setup NAME: check that the test can run at all (else skip), select
# testbed NAME and make sure it is torn down however the test ends.
testbed_setup() {
    export FERRY_TESTBED_NAME=$1
    [[ $EUID -eq 0 ]] || skip "needs root (network namespaces, bridge, veths)"
    local t
    for t in ip unshare setpriv corosync corosync-cmapctl corosync-quorumtool dbus-daemon jq; do
        command -v "$t" >/dev/null 2>&1 || skip "needs '$t'"
    done
    ip netns list >/dev/null 2>&1 || skip "cannot use network namespaces here"
    trap _testbed_cleanup EXIT
    # Make a timeout (meson sends SIGTERM) or ^C run the clean-up too.
    trap 'exit 143' TERM
    trap 'exit 130' INT
    info "test $(basename "$0") on testbed $FERRY_TESTBED_NAME, build $FERRY_BUILD_DIR"
}

# ---------------------------------------------------------------- testbed

tb() { "$TESTBED" "$@"; }

# ctl NODE ARGS...: ferryctl on NODE as root.
ctl() {
    local node=$1; shift
    "$TESTBED" exec "$node" -- ferryctl "$@"
}

# The nodes of the running testbed: "node1 node2 ...".
_all_nodes() {
    local env=${FERRY_TESTBED_DIR:-/tmp/$FERRY_TESTBED_NAME}/testbed.env n
    [[ -f $env ]] || return 0
    n=$(sed -n 's/^TB_NODES=//p' "$env")
    seq -f 'node%g' 1 "$n" | tr '\n' ' '
}

# status NODE [JQ]: `ferryctl --json status` of NODE, or one field of it.
status() {
    local out
    out=$(ctl "$1" --json status) || fail "ferryctl --json status failed on $1"
    jq -r "${2:-.}" <<<"$out" || fail "bad JSON from ferryctl --json status on $1: $out"
}

# node_info VIEWER NODE [JQ]: `ferryctl --json node NODE` as seen on VIEWER.
node_info() {
    local out
    out=$(ctl "$1" --json node "$2") || fail "ferryctl --json node $2 failed on $1"
    jq -r "${3:-.}" <<<"$out" || fail "bad JSON from ferryctl --json node $2 on $1: $out"
}

# run CMD...: run a command that may fail; sets RC, OUT (stdout) and ERR
# (stderr) instead of tripping `set -e`.
run() {
    local errf
    errf=$(mktemp)
    # RC, OUT and ERR are for the caller.
    # shellcheck disable=SC2034
    RC=0
    # shellcheck disable=SC2034
    OUT=$("$@" 2>"$errf") || RC=$?
    # shellcheck disable=SC2034
    ERR=$(<"$errf")
    rm -f "$errf"
}

# ---------------------------------------------------------------- asserts

assert_eq() {
    local expected=$1 actual=$2 what=${3:-value}
    [[ $expected == "$actual" ]] || fail "$what: expected '$expected', got '$actual'"
}

assert_ne() {
    local unexpected=$1 actual=$2 what=${3:-value}
    [[ $unexpected != "$actual" ]] || fail "$what: got '$actual', which it must not be"
}

# assert_match REGEX TEXT WHAT: extended regex, case-insensitive.
assert_match() {
    local re=$1 text=$2 what=${3:-text}
    grep -Eqi -- "$re" <<<"$text" || fail "$what does not match /$re/: '$text'"
}

# assert_jq NODE JQ-EXPR [ARGS]: `ferryctl --json ARGS` (default: status) on
# NODE satisfies JQ-EXPR right now.
assert_jq() {
    local node=$1 expr=$2 args=${3:-status} out
    local -a argv
    read -r -a argv <<<"$args"
    out=$(ctl "$node" --json "${argv[@]}") || fail "ferryctl --json $args failed on $node"
    jq -e "$expr" <<<"$out" >/dev/null ||
        fail "on $node, 'ferryctl --json $args' does not satisfy '$expr': $out"
}

# ---------------------------------------------------------------- waiting

now() { date +%s.%N; }

# elapsed START: seconds since START (from `now`), one decimal.
elapsed() { awk -v s="$1" -v e="$(now)" 'BEGIN { printf "%.1f", e - s }'; }

# tb_wait [--timeout S] [--cmd ARGS] NODES JQ: testbed wait, failing the test
# on timeout.
tb_wait() {
    "$TESTBED" wait "$@" || fail "condition not reached: ${*: -2:1} '${*: -1}'"
}

# poll_timed TIMEOUT START NODE:JQ... : poll `ferryctl --json status` on each
# NODE until its JQ holds, for all of them in the same round. Prints, per
# condition, when it first held (seconds since START, from `now`) and sets
# POLL_TIME to the seconds until all held together. Fails on timeout.
poll_timed() {
    local timeout=$1 start=$2; shift 2
    local -A first=()
    local spec node expr out all deadline
    deadline=$(awk -v s="$(now)" -v t="$timeout" 'BEGIN { printf "%d", s + t }')
    while :; do
        all=1
        for spec in "$@"; do
            node=${spec%%:*} expr=${spec#*:}
            if out=$(ctl "$node" --json status 2>/dev/null) &&
                jq -e "$expr" <<<"$out" >/dev/null 2>&1; then
                [[ -n ${first[$spec]:-} ]] || first[$spec]=$(elapsed "$start")
            else
                all=0
            fi
        done
        ((all)) && break
        if (($(date +%s) >= deadline)); then
            for spec in "$@"; do
                node=${spec%%:*}
                printf '  %s: %s\n' "$spec" "$(ctl "$node" --json status 2>&1 | tr -d '\n')" >&2
            done
            fail "after ${timeout}s not all of these hold: $*"
        fi
        sleep 0.1
    done
    # shellcheck disable=SC2034 # for the caller
    POLL_TIME=$(elapsed "$start")
    for spec in "$@"; do
        info "  $spec held after ${first[$spec]}s"
    done
}

# wait_same_digest TIMEOUT NODE...: wait until NODEs report one digest and one
# commit counter. Fails on timeout.
wait_same_digest() {
    local timeout=$1; shift
    local n deadline=$((SECONDS + timeout)) views
    while :; do
        views=""
        for n in "$@"; do
            views+="$n $(ctl "$n" --json status 2>/dev/null |
                jq -r '"\(.commit) \(.digest)"' 2>/dev/null || echo '? ?')"$'\n'
        done
        if [[ $(cut -d' ' -f2- <<<"$views" | sed '/^$/d' | sort -u | wc -l) -eq 1 &&
            $views != *"?"* && $views != *null* ]]; then
            return 0
        fi
        ((SECONDS < deadline)) || fail "digests differ after ${timeout}s:"$'\n'"$views"
        sleep 0.2
    done
}

# ---------------------------------------------------------------- libvirt

# require_libvirt: skip (77) unless libvirtd and QEMU can run here,
# installing the packages first if they are missing.
require_libvirt() {
    local t missing=0
    for t in libvirtd virtlogd virsh qemu-system-x86_64 gcc ld; do
        command -v "$t" >/dev/null 2>&1 || missing=1
    done
    if ((missing)); then
        info "libvirt tools missing: tests/install-deps libvirt"
        "$REPO/tests/install-deps" libvirt || skip "libvirt packages missing and could not be installed"
        for t in libvirtd virtlogd virsh qemu-system-x86_64 gcc ld; do
            command -v "$t" >/dev/null 2>&1 || skip "needs $t"
        done
    fi
    libvirtd --version >/dev/null 2>&1 || skip "libvirtd does not run here"
    local out
    out=$(timeout 20 qemu-system-x86_64 -machine none -accel tcg -nodefaults -display none \
        -S -monitor stdio <<<quit 2>&1) || skip "QEMU does not run here: $out"
}

# vm_state NODE NAME: the guest's state as NODE's libvirtd reports it
# ("running", "shut off", ...), or "absent".
vm_state() {
    local out
    out=$("$TESTBED" vm "$1" list --json) || fail "testbed vm $1 list failed"
    jq -r --arg n "$2" '(.[] | select(.name == $n) | .state) // "absent"' <<<"$out"
}
