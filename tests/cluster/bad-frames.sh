#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# A broken or hostile CPG peer: malformed frames, a forged sender id, a newer
# protocol version and bad payloads reach every ferryd through real corosync.
# Each is logged and dropped; no daemon crashes; the state does not change;
# the cluster recovers once the peer leaves.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-bad

INJECT="$FERRY_BUILD_DIR/tests/tools/cpg-inject"
[ -x "$INJECT" ] || fail "$INJECT is not built"

tb up --nodes 3
wait_same_digest 10 node1 node2 node3
commit=$(status node1 .commit)
digest=$(status node1 .digest)
pid1=$(tb pid node1 ferryd)
pid2=$(tb pid node2 ferryd)

info "stop ferryd on node3 and inject bad frames from node3's corosync"
tb stop node3 ferryd
tb_wait --timeout 30 node1,node2 '.members == 2 and .quorate == true'
run tb exec node3 -- "$INJECT"
assert_eq 0 "$RC" "exit code of cpg-inject (stderr: $ERR)"
[ "$OUT" -gt 20 ] || fail "cpg-inject sent only '$OUT' frames"
info "injected $OUT frames"

info "the peer left: node1 and node2 are back to 2 members, synced"
tb_wait --timeout 30 node1,node2 '.members == 2 and .quorate == true and .synced == true'
assert_eq "$pid1" "$(tb pid node1 ferryd)" "ferryd PID on node1"
assert_eq "$pid2" "$(tb pid node2 ferryd)" "ferryd PID on node2"
for n in node1 node2; do
    assert_eq "$commit" "$(status $n .commit)" "commit counter on $n after bad frames"
    assert_eq "$digest" "$(status $n .digest)" "digest on $n after bad frames"
    log="$(tb logs $n ferryd 2000)"
    assert_match 'Dropped a malformed frame' "$log" "$n's log"
    assert_match 'claims to come from another node' "$log" "$n's log"
    assert_match 'newer protocol' "$log" "$n's log"
done

info "ferryd on node3 comes back and the ring converges"
tb start node3 ferryd
tb wait-ready --timeout 60 --members 3 || fail "no 3-member cluster after the injection"
wait_same_digest 30 node1 node2 node3
run ctl node1 maintenance on node2
assert_eq 0 "$RC" "a change after the injection (stderr: $ERR)"

info "PASS"
