#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Live migration through ferry on real libvirtd and QEMU: ferryd on each
# node drives its libvirtd through the libvirt backend. A guest moves
# node1 -> node2 and back with `ferryctl migrate --wait`; both libvirtds
# agree where it runs and ferry's inventory follows; the job records carry
# the hypervisor's start and end times and the downtime. A dirtying guest
# under a tight bandwidth cap is cancelled mid-migration and keeps running
# on the source.

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
tb vm node1 destroy hot

info "nothing leaked: the pair migrates again"
run ctl node1 migrate g1 --to node2 --wait
assert_eq 0 "$RC" "migration after the cancel (stderr: $ERR)"
runs_on g1 node2 node1
wait_same_digest 20 node1 node2

info "PASS"
