#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The slot limits under load on a real 16-node ring (sim backend, a
# generated world of 320 VMs): 200 migration requests issued from every
# node at once. From the job records afterwards: every job ended; no two
# jobs on one node pair ever overlapped in time; no node ever had more
# than its 2 outgoing or 2 incoming; at least 4 ran at the same time (the
# cluster really ran pairs in parallel); every VM is in exactly one place;
# all 16 members agree on the state.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-scale

SIMWORLD="$FERRY_BUILD_DIR/plugins/sim/ferry-sim-world"
[ -x "$SIMWORLD" ] || skip "the sim backend is not built (meson -Dbackends=sim)"
WORLD=$(mktemp -d /tmp/ft-scale-world.XXXXXX)
test_cleanup() { rm -rf "$WORLD"; }
"$SIMWORLD" create "$WORLD" --nodes 16 --vms 320 --seed 11 --vendors AuthenticAMD --versions 8.0.0 \
    --time-scale 1 >/dev/null || fail "cannot generate the world"

export FERRY_TESTBED_FERRYD_CONF_EXTRA="plugin_dir = $FERRY_BUILD_DIR/plugins/sim
backend = sim
backend_config = world=$WORLD
inventory_interval = 2
progress_interval_ms = 500"
export FERRY_TESTBED_TIMEOUT=180
tb up --nodes 16
tb_wait --timeout 60 --cmd vms node16 'length == 320'

info "200 requests from all 16 nodes at once"
running=$(ctl node1 --json vms | jq -r '[.[] | select(.state == "running")] | .[0:200] | .[] | "\(.name) \(.node)"')
count=$(wc -l <<<"$running")
[ "$count" -ge 100 ] || fail "only $count running VMs in the generated world"
i=0
pids=()
while read -r vm node; do
    src=${node#node}
    dst=$(( (src + 1 + i % 15) % 16 + 1 ))
    [ "$dst" = "$src" ] && dst=$(( src % 16 + 1 ))
    via=$(( i % 16 + 1 ))
    ctl "node$via" migrate "$vm" --to "node$dst" >/dev/null 2>&1 &
    pids+=($!)
    i=$((i + 1))
    # A few dozen ferryctl at a time: enough to race, not a fork storm.
    if (( ${#pids[@]} >= 32 )); then wait "${pids[@]}" || true; pids=(); fi
done <<<"$running"
wait "${pids[@]}" || true
queued=$(ctl node1 --json jobs --all | jq length)
info "$queued of $count requests were accepted (the rest were refused by pre-flight checks)"
[ "$queued" -ge $((count / 2)) ] || fail "too few requests were accepted: $queued of $count"

tb_wait --timeout 600 --cmd "jobs --all" node7 'all(.[]; .state == "completed" or .state == "failed" or .state == "cancelled")'
jobs=$(ctl node3 --json jobs --all)
info "outcomes: $(jq -c 'group_by(.state) | map({(.[0].state): length}) | add' <<<"$jobs")"
jq -e '
  [.[] | select(.started_at > 0) | {a: ([.source, .destination] | sort), s: .source, d: .destination, t0: .started_at, t1: (if .finished_at > 0 then .finished_at else .started_at end)}] as $j
  | ([ $j[] as $x | $j[] as $y | select($x != $y and $x.t0 < $y.t1 and $y.t0 < $x.t1 and $x.a == $y.a) ] | length == 0)
    and ([ $j[] as $x | [ $j[] | select(.s == $x.s and .t0 <= $x.t0 and $x.t0 < .t1) ] | length ] | max <= 2)
    and ([ $j[] as $x | [ $j[] | select(.d == $x.d and .t0 <= $x.t0 and $x.t0 < .t1) ] | length ] | max <= 2)
' <<<"$jobs" >/dev/null || fail "slot limits broken; job records: $jobs"
parallel=$(jq '[.[] | select(.started_at > 0) | {t0: .started_at, t1: .finished_at}] as $j | [ $j[] as $x | [ $j[] | select(.t0 <= $x.t0 and $x.t0 < .t1) ] | length ] | max' <<<"$jobs")
info "MEASURED: at most $parallel migrations ran at the same time on 16 nodes"
[ "$parallel" -ge 4 ] || fail "only $parallel migrations ever ran at once"
"$SIMWORLD" check "$WORLD" >/dev/null || fail "the world is inconsistent after the load"
dups=$(ctl node5 --json vms | jq '[group_by(.name)[] | select(length > 1)] | length')
assert_eq 0 "$dups" "VMs listed on more than one node"
wait_same_digest 60 $(seq -f 'node%g' 1 16)

info "PASS"
