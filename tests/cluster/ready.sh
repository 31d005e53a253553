#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# sd_notify: ferryd says READY=1 only after its first state sync. A ferryd
# started while its corosync is down must stay silent until corosync is back
# and the sync is done.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-ready

LISTEN="$FERRY_BUILD_DIR/tests/tools/notify-listen"
tb up --nodes 3
nodedir="${FERRY_TESTBED_DIR:-/tmp/$FERRY_TESTBED_NAME}/node1"
sock="$nodedir/notify"
out=$(mktemp)
manual_pid=
test_cleanup() {
    if [ -n "$manual_pid" ] && kill -0 "$manual_pid" 2>/dev/null; then
        kill "$manual_pid"; wait "$manual_pid" 2>/dev/null || true
    fi
    rm -f "$out"
}

info "node1: stop ferryd and corosync, start ferryd alone under a notify socket"
tb stop node1 ferryd
tb kill node1 corosync
"$LISTEN" "$sock" 60 >"$out" &
listen_pid=$!
sleep 0.5
NOTIFY_SOCKET="$sock" tb exec node1 -- ferryd -c "$nodedir/ferryd.conf" >"$nodedir/ferryd-manual.log" 2>&1 &
manual_pid=$!
sleep 3
kill -0 "$manual_pid" || fail "ferryd started by hand died: $(tail -5 "$nodedir/ferryd-manual.log")"
if grep -q 'READY=1' "$out"; then
    fail "ferryd sent READY=1 without corosync, before any sync: $(cat "$out")"
fi
grep -q 'STATUS=' "$out" || fail "no STATUS= from ferryd before it was ready: $(cat "$out")"

info "start corosync on node1: ferryd reconnects, syncs, then says READY=1"
tb start node1 corosync
wait "$listen_pid" || true
grep -q 'READY=1' "$out" || fail "no READY=1 after corosync came back: $(cat "$out")"
# Ready means synced (with whatever membership corosync had formed by then).
assert_jq node1 '.synced == true'
# (tb_wait would refuse: the testbed's own ferryd on node1 is stopped.)
for _ in $(seq 60); do
    ctl node1 --json status 2>/dev/null | jq -e '.members == 3 and .quorate and .synced' >/dev/null && break
    sleep 0.5
done
assert_jq node1 '.members == 3 and .quorate == true and .synced == true'
info "notify messages: $(tr '\n' ' ' <"$out")"
info "PASS"
