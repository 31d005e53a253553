#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Shared volumes on a real 3-node ring with the sim backend. Every check of
# who holds a volume looks at the hypervisor side (the sim world), not only
# at ferry's record: add and move with their epochs; a move refused while a
# VM on another node uses the volume; the owner cut off: orphaned (never
# reassigned on silence), released by the cut node itself once it has been
# without quorum for volume_release_timeout, freed by confirm-fenced under a
# new epoch, taken by another node; the cut node back: holds nothing; a
# stale hold on a node that is not the owner released; a failing release
# leaves the owner in place with the error; remove; bad input and
# unprivileged callers change nothing.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-vol

SIMWORLD="$FERRY_BUILD_DIR/plugins/sim/ferry-sim-world"
[ -x "$SIMWORLD" ] || skip "the sim backend is not built (meson -Dbackends=sim)"
WORLD=$(mktemp -d /tmp/ft-vol-world.XXXXXX)
test_cleanup() { rm -rf "$WORLD"; }

mkdir -p "$WORLD/hosts" "$WORLD/vms"/node{1,2,3}
printf 'time_scale = 20\n' >"$WORLD/params.conf"
for n in 1 2 3; do
    printf 'cpu_vendor = AuthenticAMD\ncpus = 16\nmemory_total = 64G\nhypervisor_version = 8.0.0\nlink_bandwidth = 125M\n' \
        >"$WORLD/hosts/node$n.conf"
done
# db1's disk lives on the volume "data" (its backing is /vol/data).
printf 'uuid = 00000000-0000-4000-8000-000000000001\nmemory = 1G\ndisks = vda:/vol/data/db1.qcow2:shared\n' \
    >"$WORLD/vms/node1/db1.conf"
# web1's disk lives on "logs", an fs volume: mounted on one node at a time.
printf 'uuid = 00000000-0000-4000-8000-000000000002\nmemory = 1G\ndisks = vda:/vol/logs/web1.img:shared\n' \
    >"$WORLD/vms/node2/web1.conf"
"$SIMWORLD" check "$WORLD" >/dev/null || fail "the test's world is invalid"

export FERRY_TESTBED_FERRYD_CONF_EXTRA="plugin_dir = $FERRY_BUILD_DIR/plugins/sim
backend = sim
backend_config = world=$WORLD
inventory_interval = 1
progress_interval_ms = 300
volume_release_timeout = 3"
tb up --nodes 3
tb_wait --timeout 30 --cmd vms node1,node3 'length == 2'

# holder VOLUME: who the sim world says holds it ("-" for nobody).
holder() { "$SIMWORLD" volumes "$WORLD" | awk -v v="$1" '$1 == v { print $2 }'; }
wait_holder() {   # wait_holder VOLUME NODE|-
    local i
    for i in $(seq 1 100); do
        [ "$(holder "$1")" = "$2" ] && return 0
        sleep 0.2
    done
    fail "the world says $1 is held by '$(holder "$1")', expected '$2'"
}
vm_node() { local f; for f in "$WORLD"/vms/*/"$1".conf; do [ -e "$f" ] && basename "$(dirname "$f")"; done; }
vol_jq() {   # vol_jq NODE VOLUME JQ: the volume's object on NODE satisfies JQ
    tb_wait --timeout 30 --cmd volumes "$1" "[.[] | select(.name == \"$2\")][0] | $3"
}

info "bad input: clear errors, nothing stored"
run ctl node1 volume add -- -bad --kind shared --backing /vol/x
assert_eq 2 "$RC" "exit code for a bad name (stderr: $ERR)"
run ctl node1 volume add x1 --kind nfs --backing /vol/x
assert_ne 0 "$RC" "exit code for an unknown kind"
run ctl node1 volume add x1 --kind shared --backing relative/path
assert_ne 0 "$RC" "exit code for a relative backing"
run ctl node1 volume add x1 --kind shared --backing /vol/x --owner node9
assert_eq 5 "$RC" "exit code for an unknown owner (stderr: $ERR)"
run ctl node1 volume move nosuch --to node2
assert_eq 5 "$RC" "exit code for an unknown volume (stderr: $ERR)"
run tb exec --user nobody node1 -- ferryctl volume add x1 --kind shared --backing /vol/x
assert_eq 4 "$RC" "exit code of an unprivileged add (stderr: $ERR)"
assert_eq 0 "$(ctl node2 --json volumes | jq length)" "volumes after refusals"

info "add: the owner activates it, the VM on it is found"
run ctl node2 volume add data --kind shared --backing /vol/data --owner node1
assert_eq 0 "$RC" "exit code of volume add (stderr: $ERR)"
vol_jq node3 data '.state == "owned" and .owner == "node1" and .epoch == 1 and .kind == "shared"'
wait_holder data node1
vol_jq node2 data '.vms == ["db1"]'
run ctl node1 volume add data2 --kind fs --backing /vol/data
assert_ne 0 "$RC" "exit code of a second volume on the same backing"

info "a move is refused while a VM on another node uses the volume"
run ctl node3 volume move data --to node2
assert_eq 1 "$RC" "exit code of moving a volume in use elsewhere (stderr: $ERR)"
assert_match 'db1' "$ERR" "refusal names the VM"
assert_eq node1 "$(holder data)" "holder after the refusal"

info "live migration: the VM's shared volume follows it"
run ctl node1 migrate db1 --to node2 --check
assert_eq 0 "$RC" "exit code of --check (stdout: $OUT, stderr: $ERR)"
assert_match 'data owned by the source' "$OUT" "the volumes check"
run ctl node3 migrate db1 --to node2 --wait
assert_eq 0 "$RC" "exit code of migrating db1 (stderr: $ERR)"
t0=$(now)
vol_jq node3 data '.state == "owned" and .owner == "node2" and .epoch == 2 and .vms == ["db1"]'
wait_holder data node2
info "  the volume was owned by node2 $(elapsed "$t0") s after the migration ended"
[ "$(vm_node db1)" = node2 ] || fail "db1 runs on '$(vm_node db1)'"

info "a cancelled migration leaves the volume with the source"
run ctl node2 --json migrate db1 --to node1 --bandwidth 1M
assert_eq 0 "$RC" "exit code of the slow migration (stderr: $ERR)"
job=$(jq -r .id <<<"$OUT")
tb_wait --timeout 30 --cmd "job $job" node1 '.state == "running"'
run ctl node3 cancel "$job"
assert_eq 0 "$RC" "exit code of cancel (stderr: $ERR)"
tb_wait --timeout 30 --cmd "job $job" node1 '.state == "cancelled"'
vol_jq node1 data '.state == "owned" and .owner == "node2" and .epoch == 2'
assert_eq node2 "$(holder data)" "holder after the cancelled migration"

info "a VM on an fs volume cannot move live"
run ctl node3 volume add logs --kind fs --backing /vol/logs --owner node2
assert_eq 0 "$RC" "exit code of adding logs (stderr: $ERR)"
vol_jq node1 logs '.state == "owned" and .vms == ["web1"]'
run ctl node1 migrate web1 --to node3
assert_eq 6 "$RC" "exit code of live-migrating a VM on an fs volume (stderr: $ERR)"
assert_match 'fs volume logs' "$ERR" "refusal names the volume"

info "a standalone move, with --wait"
run ctl node1 volume add scratch --kind fs --backing /vol/scratch --owner node2
assert_eq 0 "$RC" "exit code of adding scratch (stderr: $ERR)"
vol_jq node1 scratch '.state == "owned" and .owner == "node2"'
run ctl node1 volume move scratch --to node3 --wait
assert_eq 0 "$RC" "exit code of volume move --wait (stderr: $ERR)"
vol_jq node2 scratch '.state == "owned" and .owner == "node3" and .epoch == 2'
wait_holder scratch node3

info "a failing release leaves the owner in place, with the error"
"$SIMWORLD" fault "$WORLD" scratch release on >/dev/null
run ctl node1 volume move scratch --to node2 --wait
assert_ne 0 "$RC" "exit code of a move whose release fails"
vol_jq node2 scratch '.state == "owned" and .owner == "node3" and (.error | length > 0)'
"$SIMWORLD" fault "$WORLD" scratch release off >/dev/null
assert_eq node3 "$(holder scratch)" "holder after the failed move"

info "the owner cut off: orphaned, released by itself, never reassigned on silence"
t0=$(now)
tb cut node3
vol_jq node1 scratch '.state == "orphaned" and .owner == "node3"'
run ctl node1 volume move scratch --to node2
assert_eq 1 "$RC" "exit code of moving an orphaned volume (stderr: $ERR)"
assert_match 'fenced' "$ERR" "refusal says what to do"
run ctl node1 node confirm-fenced node1
assert_ne 0 "$RC" "confirm-fenced of a member"
# node3, without quorum, lets go by itself after volume_release_timeout (3 s).
wait_holder scratch -
info "  node3 released its volume $(elapsed "$t0") s after the cut"
run ctl node1 --json node confirm-fenced node3
assert_eq 0 "$RC" "exit code of confirm-fenced (stderr: $ERR)"
assert_eq 1 "$(jq -r .volumes_released <<<"$OUT")" "volumes freed by the confirmation"
vol_jq node2 scratch '.state == "free" and .owner == "" and .epoch == 3'
run ctl node2 volume move scratch --to node1 --wait
assert_eq 0 "$RC" "exit code of taking the freed volume (stderr: $ERR)"
vol_jq node1 scratch '.state == "owned" and .owner == "node1" and .epoch == 4'
wait_holder scratch node1

info "node3 back: the cluster corrects it, it holds nothing"
tb heal node3
wait_same_digest 60 node1 node2 node3
vol_jq node3 scratch '.state == "owned" and .owner == "node1"'
sleep 2
assert_eq node1 "$(holder scratch)" "holder after node3 rejoined"

info "a stale hold on a node that is not the owner is released"
# What a node that missed the handover looks like: it holds the volume with
# an older grant (the world drops node1's hold). node1 cannot take it back
# while activating fails, so what releases it is node2 itself.
"$SIMWORLD" fault "$WORLD" scratch activate on >/dev/null
printf 'holder = node2\nholder_epoch = 3\nepoch = 4\nfail_activate = yes\n' >"$WORLD/volumes/scratch.conf.tmp"
mv "$WORLD/volumes/scratch.conf.tmp" "$WORLD/volumes/scratch.conf"
wait_holder scratch -
tb logs node2 ferryd 400 2>/dev/null | grep -q 'scratch: this node still held it' ||
    fail "node2 did not log releasing its stale hold"
# The owner takes its volume up again once it can.
"$SIMWORLD" fault "$WORLD" scratch activate off >/dev/null
wait_holder scratch node1

info "remove: released by its owner, then gone"
run ctl node3 volume remove scratch --wait
assert_eq 0 "$RC" "exit code of volume remove (stderr: $ERR)"
tb_wait --timeout 30 --cmd volumes node2 '[.[] | select(.name == "scratch")] | length == 0'
wait_holder scratch -
run ctl node3 volume remove data
assert_eq 1 "$RC" "exit code of removing a volume a running VM uses (stderr: $ERR)"
assert_eq node2 "$(holder data)" "holder of data after the refused removal"

info "a drain moves the volumes the node owns"
run ctl node1 volume add spare --kind shared --backing /vol/spare --owner node2
assert_eq 0 "$RC" "exit code of adding spare (stderr: $ERR)"
vol_jq node1 spare '.state == "owned" and .owner == "node2"'
run ctl node1 drain node2 --dry-run
assert_eq 0 "$RC" "exit code of drain --dry-run (stderr: $ERR)"
assert_match 'volume spare' "$OUT" "the dry run lists the unused volume"
assert_match 'volume logs' "$OUT" "the dry run lists the fs volume"
run ctl node1 drain node2 --blockers leave --wait
assert_eq 0 "$RC" "exit code of drain --wait (stderr: $ERR)"
db1_at=$(vm_node db1)
[ "$db1_at" != node2 ] || fail "db1 still runs on node2 after the drain"
vol_jq node3 data ".state == \"owned\" and .owner == \"$db1_at\""
vol_jq node3 spare '.state == "owned" and .owner != "node2"'
vol_jq node3 logs '.state == "owned" and .owner == "node2"'
wait_holder data "$db1_at"
[ "$(holder spare)" != node2 ] && [ "$(holder spare)" != - ] || fail "spare is held by '$(holder spare)'"
assert_eq node2 "$(holder logs)" "holder of logs, left with web1"
run ctl node1 undrain node2
assert_eq 0 "$RC" "exit code of undrain (stderr: $ERR)"
wait_same_digest 30 node1 node2 node3
