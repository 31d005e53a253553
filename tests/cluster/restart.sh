#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Daemon restarts: a ferryd that was killed comes back and is synced from its
# peers; a ferryd whose corosync was killed and restarted reconnects by
# itself and rejoins.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-rest

tb up --nodes 3

info "maintenance on node3"
run ctl node1 maintenance on node3
assert_eq 0 "$RC" "exit code of 'maintenance on node3' (stderr: $ERR)"
wait_same_digest 10 node1 node2 node3

info "kill ferryd on node2"
tb kill node2 ferryd
tb_wait --timeout 30 node1,node3 '.members == 2 and .quorate == true'
tb_wait --timeout 10 --cmd "node node2" node1 '.online == false'
run ctl node2 status
assert_eq 3 "$RC" "exit code of 'ferryctl status' with node2's ferryd down"
assert_match 'cannot reach ferryd' "$ERR" "stderr of 'ferryctl status' with node2's ferryd down"

info "start ferryd on node2 again"
tb start node2 ferryd
tb wait-ready --timeout 60 --members 3 || fail "no 3-member cluster after restarting ferryd on node2"
wait_same_digest 30 node1 node2 node3
assert_eq true "$(node_info node2 node3 .maintenance)" "node3 maintenance seen on restarted node2"
tb_wait --timeout 10 --cmd "node node2" node1,node3 '.online == true'

info "kill corosync on node1"
ferryd_pid=$(tb pid node1 ferryd) || fail "ferryd on node1 is not running"
tb kill node1 corosync
tb_wait --timeout 30 node2,node3 '.members == 2 and .quorate == true'
# ferryd on node1 must survive the loss of corosync and keep answering.
sleep 2
assert_eq "$ferryd_pid" "$(tb pid node1 ferryd || true)" "ferryd PID on node1 after corosync died"
run ctl node1 --json status
assert_eq 0 "$RC" "exit code of 'ferryctl --json status' on node1 without corosync (stderr: $ERR)"
assert_eq false "$(jq -r .quorate <<<"$OUT")" "quorate on node1 without corosync"

info "start corosync on node1 again: ferryd must reconnect by itself"
start=$(now)
tb start node1 corosync
tb wait-ready --timeout 45 --members 3 || fail "node1 did not rejoin after corosync came back"
wait_same_digest 30 node1 node2 node3
info "MEASURED: corosync restart -> node1 rejoined and synced: $(elapsed "$start")s"
assert_eq "$ferryd_pid" "$(tb pid node1 ferryd || true)" "ferryd PID on node1 (it must not have restarted)"
assert_eq true "$(node_info node1 node3 .maintenance)" "node3 maintenance seen on node1"

info "PASS"
