#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Live migration through ferry on real libvirtd and QEMU: ferryd on each
# node drives its libvirtd through the libvirt backend. A guest moves
# node1 -> node2 and back with `ferryctl migrate --wait`; both libvirtds
# agree where it runs and ferry's inventory follows; the job records carry
# the hypervisor's start and end times and the downtime. A destination
# whose host reserve leaves no room is refused. A dirtying guest under a
# tight bandwidth cap: cancelled mid-migration it keeps running on the
# source; left alone it fails by the convergence policy with the reason;
# with post-copy allowed it completes. The source's ferryd killed
# mid-migration: the job still ends and the guest runs on one node.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-lvferry
require_libvirt
[ -e "$FERRY_BUILD_DIR/plugins/libvirt/ferry-backend-libvirt.so" ] || skip "the libvirt backend is not built"

tb up --nodes 2 --libvirt
tb vm node1 create g1 --memory 64

runs_on() {   # runs_on NAME ON OFF: libvirt's truth
    assert_eq running "$(vm_state "$2" "$1")" "state of $1 on $2"
    local s
    s=$(vm_state "$3" "$1")
    [[ $s != running && $s != paused ]] || fail "$1 is $s on $3 too"
}

info "ferry sees the guest"
tb_wait --timeout 30 --cmd vms node2 '[.[] | select(.name == "g1")] | length == 1 and .[0].node == "node1" and .[0].state == "running"'
assert_jq node1 '.[] | select(.name == "g1") | .memory == 67108864' vms

info "node1 -> node2 through ferry"
run ctl node2 --json migrate g1 --to node2 --wait
assert_eq 0 "$RC" "exit code of ferryctl migrate --wait (stderr: $ERR)"
assert_eq completed "$(jq -r .state <<<"$OUT")" "job state"
jq -e '.started_at > 0 and .finished_at >= .started_at and .created_at <= .started_at' <<<"$OUT" >/dev/null ||
    fail "job times are not sane: $OUT"
info "MEASURED: ferry migrate node1->node2: $(jq -r '"\((.finished_at - .started_at) / 1000) ms hypervisor time, downtime \(.downtime_ms) ms, \((.started_at - .created_at) / 1000) ms from request to hypervisor call"' <<<"$OUT")"
runs_on g1 node2 node1
tb_wait --timeout 15 --cmd vms node1 '[.[] | select(.name == "g1")] | length == 1 and .[0].node == "node2"'

info "and back, asked on the destination side"
run ctl node1 migrate g1 --wait
assert_eq 0 "$RC" "exit code of the migration back (stderr: $ERR)"
runs_on g1 node1 node2

info "a destination whose host reserve leaves no room is refused"
node2conf="${FERRY_TESTBED_DIR:-/tmp/$FERRY_TESTBED_NAME}/node2/ferryd.conf"
cp "$node2conf" "$node2conf.orig"
echo "host_memory_reserve = 1T" >>"$node2conf"
tb stop node2 ferryd
tb start node2 ferryd
tb wait-ready --timeout 60 --members 2 || fail "node2 did not come back"
tb_wait --timeout 15 --cmd "node node2" node1 '.memory_reserved == 1099511627776'
run ctl node1 migrate g1 --to node2 --check
assert_eq 6 "$RC" "exit code of --check against a full destination"
assert_match 'destination-memory' "$OUT" "the failing check"
run ctl node1 migrate g1 --to node2
assert_eq 6 "$RC" "exit code of migrate to a full destination"
assert_match 'needs' "$ERR" "refusal message"
mv "$node2conf.orig" "$node2conf"
tb stop node2 ferryd
tb start node2 ferryd
tb wait-ready --timeout 60 --members 2 || fail "node2 did not come back"
tb_wait --timeout 15 --cmd "node node2" node1 '.memory_reserved == 1073741824'

info "a dirtying guest under a tight cap, cancelled mid-migration"
tb vm node1 create hot --memory 128 --dirty 48
tb_wait --timeout 30 --cmd vms node1 '[.[] | select(.name == "hot")] | length == 1'
run ctl node1 --json migrate hot --to node2 --bandwidth 4M
assert_eq 0 "$RC" "exit code of migrate hot (stderr: $ERR)"
job=$(jq -r .id <<<"$OUT")
tb_wait --timeout 30 --cmd "job $job" node1 '.state == "running" and .memory_processed > 0'
run ctl node2 cancel "$job"
assert_eq 0 "$RC" "exit code of cancel (stderr: $ERR)"
tb_wait --timeout 60 --cmd "job $job" node1 '.state == "cancelled"'
runs_on hot node1 node2

info "the same guest left alone at a cap it cannot beat: the convergence policy gives up"
run ctl node1 --json migrate hot --to node2 --bandwidth 16M --wait
assert_ne 0 "$RC" "exit code of a migration that cannot converge"
assert_eq failed "$(jq -r .state <<<"$OUT")" "state of the non-converging job"
assert_match 'not converging' "$(jq -r .error <<<"$OUT")" "error of the non-converging job"
assert_match 'max downtime raised' "$(jq -r '.log | join("\n")' <<<"$OUT")" "convergence log"
runs_on hot node1 node2

info "with post-copy allowed it completes"
run ctl node1 --json migrate hot --to node2 --bandwidth 16M --postcopy --wait
assert_eq 0 "$RC" "exit code with --postcopy (stderr: $ERR)"
assert_match 'post-copy' "$(jq -r '.log | join("\n")' <<<"$OUT")" "convergence log with --postcopy"
runs_on hot node2 node1
tb vm node2 destroy hot

info "the source's ferryd killed mid-migration"
tb vm node1 create hot2 --memory 128 --dirty 48
tb_wait --timeout 30 --cmd vms node1 '[.[] | select(.name == "hot2")] | length == 1'
run ctl node1 --json migrate hot2 --to node2 --bandwidth 16M
assert_eq 0 "$RC" "exit code of migrate hot2 (stderr: $ERR)"
job=$(jq -r .id <<<"$OUT")
tb_wait --timeout 30 --cmd "job $job" node2 '.state == "running" and .memory_processed > 0'
tb kill node1 ferryd
tb start node1 ferryd
tb wait-ready --timeout 60 --members 2 || fail "node1 did not come back"
# libvirtd carried on without ferryd; the new ferryd re-attaches to it,
# and its policy (or the hypervisor) ends it.
tb_wait --timeout 120 --cmd "job $job" node2 '.state == "failed" or .state == "completed" or .state == "cancelled"'
info "job $job after the restart: $(ctl node2 --json job "$job" | jq -c '{state, error, log}')"
assert_match 're-attached' "$(ctl node2 --json job "$job" | jq -r '.log | join("\n")')" "job log after the restart"
s1=$(vm_state node1 hot2)
s2=$(vm_state node2 hot2)
info "hot2: node1 $s1, node2 $s2"
if [[ $s1 == running ]]; then on=node1; off=node2; else on=node2; off=node1; fi
runs_on hot2 "$on" "$off"
tb vm "$on" destroy hot2

info "nothing leaked: the pair migrates again"
run ctl node1 migrate g1 --to node2 --wait
assert_eq 0 "$RC" "migration after the cancel (stderr: $ERR)"
runs_on g1 node2 node1
wait_same_digest 20 node1 node2

info "PASS"
