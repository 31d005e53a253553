#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A network partition: the majority (2 of 3) keeps quorum and may change the
# state; the cut-off node loses quorum and refuses changes; after healing it
# adopts the majority's state. Prints how long detection and healing took.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-part

tb up --nodes 3
wait_same_digest 10 node1 node2 node3

info "cut node3 off the ring"
start=$(now)
tb cut node3
poll_timed 60 "$start" \
    'node1:.members == 2 and .quorate == true' \
    'node2:.members == 2 and .quorate == true' \
    'node3:.quorate == false'
cut_time=$POLL_TIME
info "MEASURED: cut -> node1/node2 quorate with 2 members, node3 not quorate: ${cut_time}s"

info "node3 (no quorum) refuses a change"
commit3=$(status node3 .commit)
run ctl node3 maintenance on node1
assert_ne 0 "$RC" "exit code of 'maintenance on node1' on non-quorate node3"
assert_match 'quorum|quorate' "$ERR" "stderr of 'maintenance on node1' on node3"
assert_eq "$commit3" "$(status node3 .commit)" "node3 commit counter after a refused call"
assert_eq false "$(node_info node3 node1 .maintenance)" "node1 maintenance seen on node3"

info "node1 (2 of 3) accepts a change"
run ctl node1 maintenance on node1
assert_eq 0 "$RC" "exit code of 'maintenance on node1' on node1 (stderr: $ERR)"
assert_eq true "$(node_info node1 node1 .maintenance)" "node1 maintenance on node1"
tb_wait --timeout 10 --cmd "node node1" node2 '.maintenance == true'

info "heal node3"
start=$(now)
tb heal node3
poll_timed 60 "$start" \
    'node1:.members == 3 and .quorate == true and .synced == true' \
    'node2:.members == 3 and .quorate == true and .synced == true' \
    'node3:.members == 3 and .quorate == true and .synced == true'
wait_same_digest 60 node1 node2 node3
heal_time=$(elapsed "$start")
info "MEASURED: heal -> 3 members everywhere: ${POLL_TIME}s, identical digests: ${heal_time}s"

info "node3 adopted the majority's state"
assert_eq true "$(node_info node3 node1 .maintenance)" "node1 maintenance seen on node3"

info "SUMMARY: partition detected in ${cut_time}s, healed in ${heal_time}s (token 1000 ms, 3 nodes)"
info "PASS"
