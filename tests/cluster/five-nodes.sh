#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Five nodes; cutting two leaves a quorate majority of three and two
# non-quorate nodes; healing converges to one state again.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-five

all=(node1 node2 node3 node4 node5)

tb up --nodes 5

info "every node: 5 members, one digest"
for n in "${all[@]}"; do
    assert_jq "$n" '.members == 5 and .quorate == true and .synced == true'
    assert_jq "$n" 'length == 5 and all(.[]; .online == true)' nodes
done
wait_same_digest 10 "${all[@]}"

info "cut node4 and node5"
start=$(now)
tb cut node4
tb cut node5
poll_timed 90 "$start" \
    'node1:.members == 3 and .quorate == true' \
    'node2:.members == 3 and .quorate == true' \
    'node3:.members == 3 and .quorate == true' \
    'node4:.quorate == false' \
    'node5:.quorate == false'
info "MEASURED: cut 2 of 5 -> majority quorate with 3, minority not quorate: ${POLL_TIME}s"

info "the majority changes the state meanwhile"
run ctl node1 maintenance on node2
assert_eq 0 "$RC" "exit code of 'maintenance on node2' on node1 (stderr: $ERR)"
run ctl node4 maintenance on node2
assert_ne 0 "$RC" "exit code of 'maintenance on node2' on non-quorate node4"

info "heal node4 and node5"
start=$(now)
tb heal node4
tb heal node5
tb wait-ready --timeout 90 --members 5 || fail "no 5-member cluster after healing"
wait_same_digest 60 "${all[@]}"
info "MEASURED: heal 2 of 5 -> 5 members, identical digests: $(elapsed "$start")s"
for n in node4 node5; do
    assert_eq true "$(node_info "$n" node2 .maintenance)" "node2 maintenance seen on $n"
done

info "PASS"
