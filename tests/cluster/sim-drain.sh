#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Draining a node on a real 3-node ring with the sim backend: the dry run
# changes nothing and names the blocker; a drain moves every movable VM
# (spread over the other nodes) and ends drain-blocked naming the VM that
# cannot move; undrain ends maintenance; "--blockers leave" ends drained;
# and a drain survives the drained node's ferryd being killed mid-way.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-drain

SIMWORLD="$FERRY_BUILD_DIR/plugins/sim/ferry-sim-world"
[ -x "$SIMWORLD" ] || skip "the sim backend is not built (meson -Dbackends=sim)"
WORLD=$(mktemp -d /tmp/ft-drain-world.XXXXXX)
test_cleanup() { rm -rf "$WORLD"; }

mkdir -p "$WORLD/hosts" "$WORLD/vms"/node{1,2,3}
printf 'time_scale = 20\n' >"$WORLD/params.conf"
for n in node1 node2 node3; do
    printf 'cpu_vendor = AuthenticAMD\ncpus = 16\nmemory_total = 64G\nhypervisor_version = 8.0.0\nlink_bandwidth = 125M\n' \
        >"$WORLD/hosts/$n.conf"
done
for i in 1 2 3 4 5 6; do
    printf 'uuid = 00000000-0000-4000-8000-00000000000%d\nmemory = 1G\n' "$i" >"$WORLD/vms/node1/vm$i.conf"
done
printf 'uuid = 00000000-0000-4000-8000-000000000099\nmemory = 2G\npassthrough = 1\n' >"$WORLD/vms/node1/gpu.conf"
"$SIMWORLD" check "$WORLD" >/dev/null || fail "the test's world is invalid"

on_node() { local n=0 f; for f in "$WORLD/vms/$1"/*.conf; do [ -e "$f" ] && n=$((n + 1)); done; echo $n; }

export FERRY_TESTBED_FERRYD_CONF_EXTRA="plugin_dir = $FERRY_BUILD_DIR/plugins/sim
backend = sim
backend_config = world=$WORLD
inventory_interval = 1
progress_interval_ms = 300"
tb up --nodes 3
tb_wait --timeout 30 --cmd vms node3 'length == 7'

info "dry run: the plan, and nothing changes"
run ctl node2 --json drain node1 --dry-run
assert_eq 0 "$RC" "exit code of drain --dry-run (stderr: $ERR)"
assert_eq 6 "$(jq '[.entries[] | select(.action == "move")] | length' <<<"$OUT")" "VMs the plan moves"
assert_eq gpu "$(jq -r '[.entries[] | select(.action == "blocked")][0].vm' <<<"$OUT")" "the blocked VM"
assert_match 'passed through' "$(jq -r '[.entries[] | select(.action == "blocked")][0].reason' <<<"$OUT")" "why it is blocked"
assert_eq false "$(node_info node3 node1 .maintenance)" "maintenance after a dry run"
assert_eq 0 "$(ctl node1 --json jobs --all | jq length)" "jobs after a dry run"

info "drain node1: every movable VM leaves, the blocker is named"
run ctl node2 drain node1 --wait
assert_eq 8 "$RC" "exit code of a blocked drain (stdout: $OUT, stderr: $ERR)"
assert_match 'gpu' "$OUT$ERR" "blocked drain output"
assert_eq 1 "$(on_node node1)" "VMs left on node1 (the world)"
assert_eq 6 "$(( $(on_node node2) + $(on_node node3) ))" "VMs on node2 and node3"
[ "$(on_node node2)" -gt 0 ] && [ "$(on_node node3)" -gt 0 ] || fail "the drain did not spread the VMs: node2 $(on_node node2), node3 $(on_node node3)"
assert_eq true "$(node_info node3 node1 .maintenance)" "maintenance of a draining node"
assert_eq drain-blocked "$(node_info node3 node1 .drain_state)" "drain state seen on node3"

info "undrain: maintenance ends"
run ctl node3 undrain node1
assert_eq 0 "$RC" "exit code of undrain (stderr: $ERR)"
assert_eq false "$(node_info node2 node1 .maintenance)" "maintenance after undrain"
assert_eq none "$(node_info node2 node1 .drain_state)" "drain state after undrain"

info "--blockers leave: the node counts as drained with the blocker on it"
run ctl node2 drain node1 --blockers leave --wait
assert_eq 0 "$RC" "exit code of drain --blockers leave (stderr: $ERR)"
assert_eq drained "$(node_info node1 node1 .drain_state)" "drain state"
run ctl node2 undrain node1
assert_eq 0 "$RC" "exit code of undrain (stderr: $ERR)"

info "a drain survives the drained node's ferryd being killed"
for v in vm1 vm2 vm3 vm4; do
    src=$(ctl node1 --json vms | jq -r --arg v "$v" '.[] | select(.name == $v) | .node')
    [ "$src" = node1 ] || { run ctl node1 migrate "$v" --to node1 --wait; assert_eq 0 "$RC" "moving $v back ($ERR)"; }
done
assert_eq 5 "$(on_node node1)" "VMs on node1 before the second drain"
run ctl node3 drain node1 --blockers leave
assert_eq 0 "$RC" "exit code of drain (stderr: $ERR)"
tb_wait --timeout 30 --cmd "jobs" node3 '[.[] | select(.state == "running" or .state == "granted")] | length > 0'
tb kill node1 ferryd
tb start node1 ferryd
tb wait-ready --timeout 60 --members 3 || fail "node1 did not come back"
tb_wait --timeout 120 --cmd "node node1" node2 '.drain_state == "drained"'
assert_eq 1 "$(on_node node1)" "VMs left on node1 after the resumed drain"
for v in vm1 vm2 vm3 vm4 vm5 vm6 gpu; do
    [ "$(ls "$WORLD"/vms/*/"$v".conf | wc -l)" = 1 ] || fail "$v is not in exactly one place"
done
wait_same_digest 20 node1 node2 node3

info "PASS"
