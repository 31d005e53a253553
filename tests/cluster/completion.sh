#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# bash completion of ferryctl (completion/ferryctl.bash) against a live
# 3-node ring with the sim backend, sourced in a node's namespace without
# the bash-completion package: the commands are those of --help (and not the
# internal __complete); node, VM and job names are the cluster's live ones in
# every place that takes them (arguments and --to, --node, also as
# --to=NODE); cancel offers only jobs still under way; each command offers
# only its own options; and with ferryd stopped, or no bus at all, names are
# simply not offered: silently and at once.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup tb-compl

SIMWORLD="$FERRY_BUILD_DIR/plugins/sim/ferry-sim-world"
[ -x "$SIMWORLD" ] || skip "the sim backend is not built (meson -Dbackends=sim)"
COMPLETION=$REPO/completion/ferryctl.bash
WORLD=$(mktemp -d /tmp/tb-compl-world.XXXXXX)
test_cleanup() { rm -rf "$WORLD"; }

mkdir -p "$WORLD/hosts" "$WORLD/vms"/node{1,2,3}
printf 'time_scale = 20\n' >"$WORLD/params.conf"
for n in node1 node2 node3; do
    printf 'cpu_vendor = AuthenticAMD\ncpus = 16\nmemory_total = 64G\nhypervisor_version = 8.0.0\nlink_bandwidth = 125M\n' \
        >"$WORLD/hosts/$n.conf"
done
i=0
for v in node1/web1 node1/web2 node1/big node2/db1; do
    i=$((i + 1))
    mem=1G
    [ "${v#*/}" = big ] && mem=8G
    printf 'uuid = 00000000-0000-4000-8000-%012d\nmemory = %s\n' "$i" "$mem" >"$WORLD/vms/$v.conf"
done
"$SIMWORLD" check "$WORLD" >/dev/null || fail "the test's world is invalid"

export FERRY_TESTBED_FERRYD_CONF_EXTRA="plugin_dir = $FERRY_BUILD_DIR/plugins/sim
backend = sim
backend_config = world=$WORLD
inventory_interval = 1
progress_interval_ms = 300"
tb up --nodes 3
tb_wait --timeout 30 --cmd vms node1,node3 'length == 4'

# comp NODE WORD...: what TAB offers on NODE for the command line WORD...,
# the last word being the one completed: sorted, one per line. Sources the
# completion in a fresh bash, as a login shell would, with ferryctl found on
# PATH (the build's, from testbed exec). Sets RC, OUT, ERR (lib.sh's run).
comp() {
    local node=$1; shift
    # shellcheck disable=SC2016 # for the inner bash to expand
    run tb exec "$node" -- bash -c '
        set -u
        source "$1"; shift
        COMP_WORDS=("$@")
        COMP_CWORD=$(($# - 1))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        _ferryctl || exit
        ((${#COMPREPLY[@]} == 0)) || printf "%s\n" "${COMPREPLY[@]}" | sort' \
        completion "$COMPLETION" ferryctl "$@"
    assert_eq 0 "$RC" "exit code of completing '$*' on $node (stderr: $ERR)"
    assert_eq "" "$ERR" "stderr of completing '$*' on $node"
}

# expect WHAT EXPECTED: OUT is EXPECTED (words, any order).
words() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort | tr '\n' ' '; }
expect() { assert_eq "$(words "$2")" "$(words "$OUT")" "$1"; }
has() { grep -qxF -- "$2" <<<"$OUT" || fail "$1: '$2' not offered, only: $(tr '\n' ' ' <<<"$OUT")"; }
lacks() { ! grep -qxF -- "$2" <<<"$OUT" || fail "$1: '$2' offered: $(tr '\n' ' ' <<<"$OUT")"; }

info "sourced without bash-completion, it registers itself"
# shellcheck disable=SC2016 # for the inner bash to expand
run tb exec node1 -- bash -c 'source "$1" && complete -p ferryctl' x "$COMPLETION"
assert_eq "complete -F _ferryctl ferryctl" "$OUT" "complete -p ferryctl"

nodes=$(ctl node1 --json nodes | jq -r '.[].name' | tr '\n' ' ')
vms=$(ctl node1 --json vms | jq -r '.[].name' | sort -u | tr '\n' ' ')
assert_eq "node1 node2 node3 " "$nodes" "the nodes ferryctl lists"
commands=$(ctl node1 --help | awk '/^Commands:/ { on = 1; next } on && /^$/ { on = 0 } on && /^  [a-z]/ { print $1 }')
[ "$(wc -l <<<"$commands")" -ge 10 ] || fail "too few commands in ferryctl --help: $commands"

info "commands: those of --help, and not __complete"
comp node2 ""
expect "ferryctl <TAB>" "$commands"
lacks "ferryctl <TAB>" __complete
comp node2 mi
expect "ferryctl mi<TAB>" migrate
comp node2 --json ""
expect "ferryctl --json <TAB>" "$commands"

info "node names, live, wherever a node is asked for"
for line in "node no" "node confirm-fenced " "drain " "undrain " "maintenance on " "migrate web1 --to " \
    "vms --node " "--json migrate web1 --wait --to " "--to node2 migrate web1 --to "; do
    read -ra words <<<"$line"
    [[ $line == *" " ]] && words+=("")
    comp node3 "${words[@]}"
    expect "ferryctl $line<TAB>" "$nodes"
done
# --to=NODE: bash splits the word at '=' (COMP_WORDBREAKS).
comp node3 migrate web1 --to =
expect "ferryctl migrate web1 --to=<TAB>" "$nodes"
comp node3 migrate web1 --to = node2
expect "ferryctl migrate web1 --to=node2<TAB>" node2
comp node1 maintenance ""
expect "ferryctl maintenance <TAB>" "on off"
comp node1 node node1 ""
expect "ferryctl node node1 <TAB> (no second argument)" ""
comp node1 node ""
expect "ferryctl node <TAB>: a node, or the verb" "confirm-fenced $nodes"

info "VM names, live"
comp node2 migrate ""
expect "ferryctl migrate <TAB>" "$vms"
assert_eq "big db1 web1 web2 " "$(words "$OUT")" "the VMs offered"
comp node2 migrate w
expect "ferryctl migrate w<TAB>" "web1 web2"

info "a VM that moves is offered all the same"
run ctl node1 --json migrate web2 --to node2 --wait
assert_eq 0 "$RC" "exit code of migrate web2 --wait (stderr: $ERR)"
done_job=$(jq -r .id <<<"$OUT")
run ctl node1 --json migrate big --to node3 --bandwidth 10M
assert_eq 0 "$RC" "exit code of migrate big (stderr: $ERR)"
job=$(jq -r .id <<<"$OUT")
tb_wait --timeout 30 --cmd "job $job" node1 '.state == "running"'
comp node2 migrate ""
expect "ferryctl migrate <TAB> during a migration" "$vms"

info "job ids: job offers every job, cancel only those under way"
comp node3 job ""
has "ferryctl job <TAB>" "$job"
has "ferryctl job <TAB>" "$done_job"
comp node3 cancel ""
expect "ferryctl cancel <TAB>" "$job"
lacks "ferryctl cancel <TAB>" "$done_job"

info "cancel the job by the id completion offered"
run ctl node3 cancel "$OUT"
assert_eq 0 "$RC" "exit code of cancel $job (stderr: $ERR)"
tb_wait --timeout 30 --cmd "job $job" node1 '.state == "cancelled"'
comp node3 cancel ""
expect "ferryctl cancel <TAB> with nothing under way" ""

info "volume names, live; the verbs of volume"
run ctl node1 volume add scratch1 --kind fs --backing /vol/scratch1
assert_eq 0 "$RC" "exit code of volume add (stderr: $ERR)"
comp node2 volume move ""
expect "volume move <TAB>" "scratch1"
comp node3 volume ""
expect "volume <TAB>" "add remove move scratch1"

info "options: each command's own, and the global ones"
comp node1 drain --
has "ferryctl drain --<TAB>" --dry-run
has "ferryctl drain --<TAB>" --wait
has "ferryctl drain --<TAB>" --blockers
has "ferryctl drain --<TAB>" --json
lacks "ferryctl drain --<TAB>" --to
lacks "ferryctl drain --<TAB>" --keep-maintenance
comp node1 drain node1 --d
expect "ferryctl drain node1 --d<TAB>" --dry-run
comp node1 migrate web1 --
has "ferryctl migrate web1 --<TAB>" --to
has "ferryctl migrate web1 --<TAB>" --max-downtime
lacks "ferryctl migrate web1 --<TAB>" --dry-run
comp node1 --
expect "ferryctl --<TAB> (no command yet)" "--help --version --json"
comp node1 drain node1 --blockers ""
expect "ferryctl drain node1 --blockers <TAB>" "fail leave"
comp node1 migrate web1 --bandwidth ""
expect "ferryctl migrate web1 --bandwidth <TAB>" ""

info "ferryd stopped: no names, no noise, no wait"
tb stop node3 ferryd
start=$(now)
comp node3 node ""
expect "ferryctl node <TAB> without ferryd: only the verb" "confirm-fenced"
comp node3 migrate ""
expect "ferryctl migrate <TAB> without ferryd" ""
comp node3 ""
expect "ferryctl <TAB> without ferryd" "$commands"
t=$(elapsed "$start")
awk -v t="$t" 'BEGIN { exit !(t < 3) }' || fail "three completions without ferryd took ${t}s"

info "no system bus at all: the same"
start=$(now)
# shellcheck disable=SC2016 # for the inner bash to expand
run tb exec node1 -- env DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent bash -c '
    source "$1"; COMP_WORDS=(ferryctl migrate ""); COMP_CWORD=2; _ferryctl; echo "${#COMPREPLY[@]}"' x "$COMPLETION"
t=$(elapsed "$start")
assert_eq 0 "$RC" "exit code of completing without a bus"
assert_eq 0 "$OUT" "names offered without a bus"
assert_eq "" "$ERR" "stderr of completing without a bus"
awk -v t="$t" 'BEGIN { exit !(t < 2) }' || fail "completing without a bus took ${t}s"

info "completion works"
