#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Load balancing on a real 4-node ring with the sim backend: a skewed
# cluster (every VM on node2), a dry run that moves nothing, a manual round
# that lowers the score with moves that respect the planner's bounds and
# every pre-flight rule (never to the Intel node, never the pinned-by-
# passthrough VM), hysteresis (a balanced cluster plans nothing), the
# automatic balancer run by the lowest member and handed over when that
# node's ferryd stops, bad settings refused, unprivileged callers refused.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-bal

SIMWORLD="$FERRY_BUILD_DIR/plugins/sim/ferry-sim-world"
[ -x "$SIMWORLD" ] || skip "the sim backend is not built (meson -Dbackends=sim)"
WORLD=$(mktemp -d /tmp/ft-bal-world.XXXXXX)
test_cleanup() { rm -rf "$WORLD"; }

mkdir -p "$WORLD/hosts" "$WORLD/vms"/node{1,2,3,4}
printf 'time_scale = 20\n' >"$WORLD/params.conf"
host() {
    printf 'cpu_vendor = %s\ncpus = 16\nmemory_total = 64G\nhypervisor_version = 8.0.0\nlink_bandwidth = 125M\n' \
        "$2" >"$WORLD/hosts/$1.conf"
}
host node1 AuthenticAMD
host node2 AuthenticAMD
host node3 AuthenticAMD
host node4 GenuineIntel
for i in 1 2 3 4 5 6 7 8 9; do
    printf 'uuid = 00000000-0000-4000-8000-%012d\nmemory = 4G\ncpu_use_permille = 800\n' "$i" \
        >"$WORLD/vms/node2/vm$i.conf"
done
printf 'uuid = 00000000-0000-4000-8000-000000000099\nmemory = 4G\ncpu_use_permille = 800\npassthrough = 1\n' \
    >"$WORLD/vms/node2/gpu.conf"
"$SIMWORLD" check "$WORLD" >/dev/null || fail "the test's world is invalid"
total=10

export FERRY_TESTBED_FERRYD_CONF_EXTRA="plugin_dir = $FERRY_BUILD_DIR/plugins/sim
backend = sim
backend_config = world=$WORLD
inventory_interval = 1
progress_interval_ms = 300
balance_interval = 2"
tb up --nodes 4
tb_wait --timeout 30 --cmd vms node1,node4 "length == $total"

count_on() { local n; n=$(find "$WORLD/vms/$1" -name '*.conf' | wc -l); echo "$n"; }
score() { ctl "$1" --json balance status | jq -r '.score'; }

info "bad input and unprivileged callers change nothing"
run ctl node2 balance set threshold=0.05 target=0.10
assert_ne 0 "$RC" "exit code of a target above the threshold"
run ctl node2 balance set threshold=abc
assert_eq 2 "$RC" "exit code of a threshold that is not a score"
run ctl node2 balance frobnicate
assert_eq 2 "$RC" "exit code of an unknown verb"
run tb exec --user nobody node2 -- ferryctl balance
assert_eq 4 "$RC" "exit code of an unprivileged balance (stderr: $ERR)"
run tb exec --user nobody node2 -- ferryctl balance auto on
assert_eq 4 "$RC" "exit code of an unprivileged auto on (stderr: $ERR)"
assert_jq node3 '.automatic == false' 'balance status'

info "a dry run plans moves off node2 and moves nothing"
before=$(score node2)
awk -v s="$before" 'BEGIN { exit !(s > 0.1) }' || fail "the skewed cluster scores only $before"
run ctl node2 --json balance --dry-run
assert_eq 0 "$RC" "exit code of balance --dry-run (stderr: $ERR)"
plan=$OUT
jq -e '.needed and (.moves | length) > 0 and .submitted == false' <<<"$plan" >/dev/null || fail "dry run: $plan"
jq -e 'all(.moves[]; .source == "node2" and .destination != "node4" and .vm != "gpu")' <<<"$plan" >/dev/null ||
    fail "the plan breaks a pre-flight rule: $plan"
jq -e '[.moves[].score_after] as $s | all(range(1; $s | length); $s[.] <= $s[. - 1])' <<<"$plan" >/dev/null ||
    fail "the score rises along the plan: $plan"
sleep 1
assert_eq 0 "$(ctl node1 --json jobs --all | jq length)" "jobs after the dry run"
assert_eq "$total" "$(count_on node2)" "VMs still on node2 after the dry run"

info "a manual round: the moves run and the score drops"
run ctl node3 --json balance
assert_eq 0 "$RC" "exit code of balance (stderr: $ERR)"
n=$(jq '.moves | length' <<<"$OUT")
[ "$n" -gt 0 ] || fail "the round moved nothing: $OUT"
tb_wait --timeout 120 --cmd "jobs --all" node1 "length == $n and all(.[]; .state == \"completed\")"
after=$(score node2)
awk -v a="$after" -v b="$before" 'BEGIN { exit !(a < b) }' || fail "score $before → $after"
info "  score $before → $after with $n moves"
[ "$(count_on node4)" = 0 ] || fail "a VM went to the Intel node"
[ -e "$WORLD/vms/node2/gpu.conf" ] || fail "the passthrough VM moved"

info "hysteresis: once under the target, a round plans nothing"
run ctl node2 --json balance set threshold=0.5 target=0.4
assert_eq 0 "$RC" "exit code of balance set (stderr: $ERR)"
run ctl node2 --json balance --dry-run
assert_eq 0 "$RC" "exit code of the second dry run (stderr: $ERR)"
jq -e '(.moves | length) == 0 and (.why_not | length) > 0' <<<"$OUT" >/dev/null || fail "balanced, yet: $OUT"
run ctl node2 balance set threshold=0.05 target=0.02 max_moves=2
assert_eq 0 "$RC" "exit code of restoring the bounds (stderr: $ERR)"

info "the automatic balancer runs on the lowest member, and hands over"
# Skew again: every VM back to node2 by hand.
for f in "$WORLD"/vms/node{1,3}/*.conf; do
    [ -e "$f" ] || continue
    run ctl node1 migrate "$(basename "$f" .conf)" --to node2 --wait
    assert_eq 0 "$RC" "exit code of moving $(basename "$f" .conf) back (stderr: $ERR)"
done
jobs_before=$(ctl node1 --json jobs --all | jq length)
run ctl node4 balance auto on
assert_eq 0 "$RC" "exit code of balance auto on (stderr: $ERR)"
assert_jq node2 '.automatic and .leader == "node1"' 'balance status'
tb_wait --timeout 60 --cmd "jobs --all" node2 "length > $jobs_before"
tb logs node1 ferryd 400 | grep -q 'now runs the automatic balancer' || fail "node1 did not take the balancer"
# node1 leaves the group: node2, the lowest member left, takes over.
tb stop node1 ferryd
tb_wait --timeout 30 --cmd 'balance status' node3 '.leader == "node2" and .automatic'
for _ in $(seq 1 50); do
    tb logs node2 ferryd 400 | grep -q 'now runs the automatic balancer' && break
    sleep 0.2
done
tb logs node2 ferryd 400 | grep -q 'now runs the automatic balancer' || fail "node2 did not take over"
tb start node1 ferryd
tb wait-ready
assert_jq node4 '.leader == "node1"' 'balance status'
run ctl node3 balance auto off
assert_eq 0 "$RC" "exit code of balance auto off (stderr: $ERR)"
tb_wait --timeout 120 --cmd "jobs --all" node1 'all(.[]; .state == "completed" or .state == "failed" or .state == "cancelled")'
wait_same_digest 60 node1 node2 node3 node4
