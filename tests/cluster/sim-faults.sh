#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A migration's source leaves the ring mid-migration, on a real 3-node
# ring with the sim backend: its network cut, then its corosync killed.
# The hypervisor migration goes on; the VM lands on the destination, the
# majority closes the job (the destination declares it completed once it
# runs the VM), the source rejoins and adopts that, and the VM is in
# exactly one place with no slot leaked. And the destination's ferryd
# restarted mid-migration changes nothing: the source carries on.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-faults

SIMWORLD="$FERRY_BUILD_DIR/plugins/sim/ferry-sim-world"
[ -x "$SIMWORLD" ] || skip "the sim backend is not built (meson -Dbackends=sim)"
WORLD=$(mktemp -d /tmp/ft-faults-world.XXXXXX)
test_cleanup() { rm -rf "$WORLD"; }

mkdir -p "$WORLD/hosts" "$WORLD/vms"/node{1,2,3}
printf 'time_scale = 1\n' >"$WORLD/params.conf"
for n in node1 node2 node3; do
    printf 'cpu_vendor = AuthenticAMD\ncpus = 16\nmemory_total = 64G\nhypervisor_version = 8.0.0\nlink_bandwidth = 1250M\n' \
        >"$WORLD/hosts/$n.conf"
done
for v in a b; do
    printf 'uuid = 00000000-0000-4000-8000-0000000000%s%s\nmemory = 8G\n' "$v" "$v" >"$WORLD/vms/node1/$v.conf"
done
printf 'uuid = 00000000-0000-4000-8000-0000000000cc\nmemory = 1G\n' >"$WORLD/vms/node2/c.conf"

where() { local f out=""; for f in "$WORLD"/vms/*/"$1".conf; do [ -e "$f" ] && out="$out $(basename "$(dirname "$f")")"; done; echo "${out# }"; }

export FERRY_TESTBED_FERRYD_CONF_EXTRA="plugin_dir = $FERRY_BUILD_DIR/plugins/sim
backend = sim
backend_config = world=$WORLD
inventory_interval = 1
progress_interval_ms = 300"
tb up --nodes 3
tb_wait --timeout 30 --cmd vms node3 'length == 3'

for fault in cut corosync; do
    vm=$([ $fault = cut ] && echo a || echo b)
    info "the source loses the ring mid-migration ($fault)"
    # 8G at 1250M/s: about 7 s of pre-copy, time for the fault to land.
    run ctl node2 --json migrate "$vm" --to node3 --bandwidth 1000M
    assert_eq 0 "$RC" "exit code of migrate $vm (stderr: $ERR)"
    job=$(jq -r .id <<<"$OUT")
    tb_wait --timeout 30 --cmd "job $job" node2 '.state == "running" and .memory_processed > 0'
    if [ $fault = cut ]; then tb cut node1; else tb kill node1 corosync; fi
    tb_wait --timeout 60 node2,node3 '.members == 2 and .quorate == true'
    # The VM lands on node3 while node1 is away; the majority closes the job.
    tb_wait --timeout 90 --cmd "job $job" node3 '.state == "completed"'
    assert_eq node3 "$(where "$vm")" "where $vm runs"
    info "job $job: $(ctl node3 --json job "$job" | jq -c '{state, log}')"
    if [ $fault = cut ]; then tb heal node1; else tb start node1 corosync; fi
    tb wait-ready --timeout 60 --members 3 || fail "node1 did not rejoin after $fault"
    wait_same_digest 30 node1 node2 node3
    assert_eq completed "$(ctl node1 --json job "$job" | jq -r .state)" "job state on node1 after it rejoined"
    tb_wait --timeout 20 --cmd vms node1 "[.[] | select(.name == \"$vm\")] | length == 1 and .[0].node == \"node3\""
done

info "the destination's ferryd restarted mid-migration: the source carries on"
run ctl node1 --json migrate b --to node1 --bandwidth 1000M
assert_eq 0 "$RC" "exit code of migrate b back (stderr: $ERR)"
job=$(jq -r .id <<<"$OUT")
tb_wait --timeout 30 --cmd "job $job" node2 '.state == "running" and .memory_processed > 0'
tb kill node1 ferryd
tb start node1 ferryd
tb wait-ready --timeout 60 --members 3 || fail "node1 did not come back"
tb_wait --timeout 90 --cmd "job $job" node2 '.state == "completed"'
assert_eq node1 "$(where b)" "where b runs"

info "no slot leaked: node1 and node3 migrate again"
run ctl node1 migrate a --to node1 --wait
assert_eq 0 "$RC" "migration on the same pair after the faults (stderr: $ERR)"
assert_eq node1 "$(where a)" "where a runs"

info "PASS"
