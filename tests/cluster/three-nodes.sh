#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Three nodes form one cluster with one state; maintenance mode set on one
# node is seen everywhere; access control and validation of the
# maintenance call.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-three

tb up --nodes 3

info "every node: 3 members, quorate, synced, one digest"
for n in node1 node2 node3; do
    assert_jq "$n" '.members == 3 and .quorate == true and .synced == true'
    assert_jq "$n" '.local_node_name == "'"$n"'"'
done
wait_same_digest 10 node1 node2 node3

info "every node lists 3 nodes, all online"
for n in node1 node2 node3; do
    assert_jq "$n" 'length == 3 and all(.[]; .online == true)' nodes
    assert_jq "$n" '[.[].name] | sort == ["node1", "node2", "node3"]' nodes
done

info "maintenance on node2, issued on node1; node3's bus announces it"
monitor_out=$(mktemp)
tb exec node3 -- dbus-monitor --system \
    "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path='/org/ferry/Ferry1/node/2'" \
    >"$monitor_out" 2>&1 &
monitor_pid=$!
sleep 0.5
run ctl node1 maintenance on node2
assert_eq 0 "$RC" "exit code of 'maintenance on node2' (stderr: $ERR)"
# The call returns once the change is committed, so node1 shows it at once.
assert_eq true "$(node_info node1 node2 .maintenance)" "node2 maintenance on node1"
tb_wait --timeout 10 --cmd "node node2" node2,node3 '.maintenance == true'
wait_same_digest 10 node1 node2 node3
sleep 0.5
kill "$monitor_pid" 2>/dev/null || true
wait "$monitor_pid" 2>/dev/null || true
# PropertiesChanged on node2's object, naming Maintenance with the new value.
grep -A3 '"Maintenance"' "$monitor_out" | grep -q 'boolean true' ||
    fail "no PropertiesChanged with Maintenance=true on node3's bus: $(cat "$monitor_out")"
rm -f "$monitor_out"

info "maintenance off node2"
run ctl node1 maintenance off node2
assert_eq 0 "$RC" "exit code of 'maintenance off node2' (stderr: $ERR)"
assert_eq false "$(node_info node1 node2 .maintenance)" "node2 maintenance on node1"
tb_wait --timeout 10 --cmd "node node2" node2,node3 '.maintenance == false'
wait_same_digest 10 node1 node2 node3

info "an unprivileged user may read but not change"
run tb exec --user nobody node1 -- ferryctl maintenance on node3
assert_ne 0 "$RC" "exit code of 'maintenance on node3' as nobody"
assert_match 'ccess denied' "$ERR" "stderr of 'maintenance on node3' as nobody"
assert_eq false "$(node_info node1 node3 .maintenance)" "node3 maintenance after a denied call"
run tb exec --user nobody node1 -- ferryctl --json status
assert_eq 0 "$RC" "exit code of 'ferryctl --json status' as nobody (stderr: $ERR)"
assert_eq 3 "$(jq -r .members <<<"$OUT")" "members seen by nobody"

info "an unknown node is refused and changes nothing"
commit=$(status node1 .commit)
run ctl node1 maintenance on nosuchnode
assert_ne 0 "$RC" "exit code of 'maintenance on nosuchnode'"
assert_match 'nosuchnode' "$ERR" "stderr of 'maintenance on nosuchnode'"
assert_match 'unknown|no such' "$ERR" "stderr of 'maintenance on nosuchnode'"
assert_eq "$commit" "$(status node1 .commit)" "commit counter after a refused call"
wait_same_digest 10 node1 node2 node3

info "PASS"
