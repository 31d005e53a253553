#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The migration engine end to end on a real 4-node ring, with the sim
# backend (one shared world of modelled hosts and VMs, 20x real time):
# pre-flight refusals (other CPU vendor, older hypervisor), a migration
# with --wait, the automatic destination, concurrent requests from every
# node that never exceed the slot limits (checked from the job records),
# cancel, a guest that does not converge (fails with the reason; post-copy
# saves it when allowed), and a source ferryd killed mid-migration.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-sim

SIMWORLD="$FERRY_BUILD_DIR/plugins/sim/ferry-sim-world"
[ -x "$SIMWORLD" ] || skip "the sim backend is not built (meson -Dbackends=sim)"
WORLD=$(mktemp -d /tmp/ft-sim-world.XXXXXX)
test_cleanup() { rm -rf "$WORLD"; }

# ---- the world: node1, node2 AMD 8.0.0; node3 AMD 7.0.0; node4 Intel 8.0.0
mkdir -p "$WORLD/hosts" "$WORLD/vms"/node{1,2,3,4}
printf 'time_scale = 20\n' >"$WORLD/params.conf"
host() {
    printf 'cpu_vendor = %s\ncpus = 16\nmemory_total = 64G\nhypervisor_version = %s\nlink_bandwidth = 125M\n' \
        "$2" "$3" >"$WORLD/hosts/$1.conf"
}
host node1 AuthenticAMD 8.0.0
host node2 AuthenticAMD 8.0.0
host node3 AuthenticAMD 7.0.0
host node4 GenuineIntel 8.0.0
n=0
vm() {   # vm NODE NAME MEMORY [key = value lines]
    local node=$1 name=$2 mem=$3; shift 3
    n=$((n + 1))
    { printf 'uuid = 00000000-0000-4000-8000-%012d\nmemory = %s\n' "$n" "$mem"; printf '%s\n' "$@"; } \
        >"$WORLD/vms/$node/$name.conf"
}
for i in 1 2 3 4 5 6 7 8; do vm node1 "small$i" 1G; done
for i in 9 10 11 12; do vm node2 "small$i" 1G; done
for i in 1 2 3; do vm node3 "old$i" 1G; done
vm node1 big 8G
vm node1 hot 4G 'working_set = 2G' 'dirty_rate = 400M'
"$SIMWORLD" check "$WORLD" >/dev/null || fail "the test's world is invalid"
total_vms=17

export FERRY_TESTBED_FERRYD_CONF_EXTRA="plugin_dir = $FERRY_BUILD_DIR/plugins/sim
backend = sim
backend_config = world=$WORLD
inventory_interval = 1
progress_interval_ms = 300"
tb up --nodes 4

info "every node sees every VM"
tb_wait --timeout 30 --cmd vms node1,node4 "length == $total_vms"
assert_jq node2 '[.[] | select(.name == "hot")][0].node == "node1"' vms
assert_jq node3 '[.[] | select(.name == "hot")][0].memory == 4294967296' vms
assert_jq node4 '[.[] | select(.node == "node3")] | length == 3' vms

vm_node() {   # the node(s) the world has VM on, space-separated
    local f out=""
    for f in "$WORLD"/vms/*/"$1".conf; do
        [ -e "$f" ] && out="$out $(basename "$(dirname "$f")")"
    done
    echo "${out# }"
}

info "pre-flight: another CPU vendor and an older hypervisor are refused"
run ctl node2 migrate small1 --to node4 --check
assert_eq 6 "$RC" "exit code of --check to an Intel node"
assert_match 'cpu-vendor' "$OUT$ERR" "--check output"
run ctl node2 migrate small1 --to node3
assert_eq 6 "$RC" "exit code of migrate to an older hypervisor"
assert_match 'older' "$ERR" "refusal message"
run ctl node2 migrate small1 --to node2 --check
assert_eq 0 "$RC" "exit code of --check to node2 ($OUT $ERR)"
assert_eq 0 "$(ctl node1 --json jobs --all | jq length)" "jobs after refusals (nothing may have moved)"

info "a live migration with --wait"
run ctl node3 migrate small1 --to node2 --wait
assert_eq 0 "$RC" "exit code of migrate --wait (stderr: $ERR)"
assert_eq node2 "$(vm_node small1)" "where the world runs small1"
tb_wait --timeout 10 --cmd vms node4 '[.[] | select(.name == "small1")] | length == 1 and .[0].node == "node2"'
assert_jq node4 '.[0].state == "completed" and .[0].vm == "small1" and .[0].source == "node1" and .[0].destination == "node2" and .[0].started_at > 0 and .[0].finished_at > .[0].started_at' "jobs --all"

info "no --to: the only valid destination is chosen"
run ctl node1 --json migrate small2 --wait
assert_eq 0 "$RC" "exit code of migrate without --to (stderr: $ERR)"
assert_eq node2 "$(jq -r .destination <<<"$OUT")" "chosen destination"
assert_eq node2 "$(vm_node small2)" "where the world runs small2"

info "concurrent requests from every node"
pids=()
for i in 3 4 5 6 7 8; do ctl node1 migrate "small$i" --to node2 >/dev/null 2>&1 & pids+=($!); done
for i in 9 10 11 12; do ctl node2 migrate "small$i" --to node1 >/dev/null 2>&1 & pids+=($!); done
for i in 1 2 3; do ctl node3 migrate "old$i" --to "node$(( (i % 2) + 1 ))" >/dev/null 2>&1 & pids+=($!); done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent migrate call failed"; done
tb_wait --timeout 120 --cmd "jobs --all" node4 'length == 15 and all(.[]; .state == "completed")'
jobs=$(ctl node1 --json jobs --all)
# From the records: no two jobs on one node pair overlapped in time, and no
# node had more than 2 outgoing or 2 incoming at once.
jq -e '
  [.[] | {a: ([.source, .destination] | sort), s: .source, d: .destination, t0: .started_at, t1: .finished_at}] as $j
  | [ $j[] as $x | $j[] as $y | select($x != $y and $x.t0 < $y.t1 and $y.t0 < $x.t1) | [$x, $y] ] as $overlaps
  | ($overlaps | all(.[0].a != .[1].a))
    and ([ $j[] as $x | [ $j[] | select(.s == $x.s and .t0 <= $x.t0 and $x.t0 < .t1) ] | length ] | max <= 2)
    and ([ $j[] as $x | [ $j[] | select(.d == $x.d and .t0 <= $x.t0 and $x.t0 < .t1) ] | length ] | max <= 2)
' <<<"$jobs" >/dev/null || fail "slot limits broken, job records: $jobs"
for v in small3 small9 old1; do
    [ "$(vm_node $v | wc -w)" = 1 ] || fail "$v is on '$(vm_node $v)'"
done

info "cancel a running migration: the VM stays on the source"
run ctl node2 --json migrate big --to node2 --bandwidth 20M
assert_eq 0 "$RC" "exit code of migrate big (stderr: $ERR)"
job=$(jq -r .id <<<"$OUT")
tb_wait --timeout 30 --cmd "job $job" node1 '.state == "running"'
run ctl node3 cancel "$job"
assert_eq 0 "$RC" "exit code of cancel (stderr: $ERR)"
tb_wait --timeout 30 --cmd "job $job" node1 '.state == "cancelled"'
assert_eq node1 "$(vm_node big)" "where big runs after the cancel"

info "a guest that dirties faster than the link: fails with the reason"
run ctl node1 --json migrate hot --to node2 --wait
assert_ne 0 "$RC" "exit code of migrating a non-converging guest"
assert_eq failed "$(jq -r .state <<<"$OUT")" "state of the non-converging job"
assert_match 'not converging' "$(jq -r .error <<<"$OUT")" "error of the non-converging job"
assert_match 'max downtime raised to 500 ms' "$(jq -r '.log | join("\n")' <<<"$OUT")" "convergence log"
assert_eq node1 "$(vm_node hot)" "where hot runs after the failure"

info "the same guest with post-copy allowed completes"
run ctl node1 --json migrate hot --to node2 --postcopy --wait
assert_eq 0 "$RC" "exit code with --postcopy (stderr: $ERR)"
assert_match 'post-copy' "$(jq -r '.log | join("\n")' <<<"$OUT")" "convergence log with --postcopy"
assert_eq node2 "$(vm_node hot)" "where hot runs after post-copy"

info "the source's ferryd killed mid-migration"
run ctl node2 --json migrate big --to node2 --bandwidth 50M
assert_eq 0 "$RC" "exit code of migrate big (stderr: $ERR)"
job=$(jq -r .id <<<"$OUT")
tb_wait --timeout 30 --cmd "job $job" node2 '.state == "running"'
tb kill node1 ferryd
tb start node1 ferryd
tb wait-ready --timeout 60 --members 4 || fail "node1 did not come back"
tb_wait --timeout 60 --cmd "job $job" node2 '.state == "failed" or .state == "completed"'
info "job $job after the restart: $(ctl node2 --json job "$job" | jq -c '{state, error}')"
[ "$(vm_node big | wc -w)" = 1 ] || fail "big runs on '$(vm_node big)' after the restart"
tb_wait --timeout 20 --cmd vms node3 "[.[] | select(.name == \"big\")] | length == 1 and .[0].node == \"$(vm_node big)\""
info "no slot leaked: the same pair migrates again"
run ctl node2 migrate small1 --to node1 --wait
assert_eq 0 "$RC" "migration on the same pair after the restart (stderr: $ERR)"
assert_eq node1 "$(vm_node small1)" "where small1 runs"
wait_same_digest 20 node1 node2 node3 node4

info "the source's ferryd gone for good in post-copy: the destination closes the job"
run ctl node3 --json migrate hot --to node1 --postcopy
assert_eq 0 "$RC" "exit code of migrate hot back (stderr: $ERR)"
job=$(jq -r .id <<<"$OUT")
tb_wait --timeout 60 --cmd "job $job" node3 '.phase == "postcopy"'
tb kill node2 ferryd
tb_wait --timeout 60 --cmd "job $job" node3 '.state == "completed"'
assert_match 'source left the cluster' "$(ctl node3 --json job "$job" | jq -r '.log | join("\n")')" "job log"
assert_eq node1 "$(vm_node hot)" "where hot runs"
tb_wait --timeout 10 --cmd vms node4 '[.[] | select(.name == "hot")] | length == 1 and .[0].node == "node1"'
tb start node2 ferryd
tb wait-ready --timeout 60 --members 4 || fail "node2 did not come back"
wait_same_digest 20 node1 node2 node3 node4

info "PASS"
