#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The convergence policy kept in the replicated state, per cluster and per
# VM, on a real 3-node ring with the sim backend: bad input refused with
# nothing stored, a VM's policy read back from every node, a migration that
# converges only because the VM's policy allows post-copy (no flag on the
# command), the cluster's policy applying to the other VMs and a VM's own
# "no" overriding it, unprivileged callers refused, and unset.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-pol

SIMWORLD="$FERRY_BUILD_DIR/plugins/sim/ferry-sim-world"
[ -x "$SIMWORLD" ] || skip "the sim backend is not built (meson -Dbackends=sim)"
WORLD=$(mktemp -d /tmp/ft-pol-world.XXXXXX)
test_cleanup() { rm -rf "$WORLD"; }

mkdir -p "$WORLD/hosts" "$WORLD/vms"/node{1,2,3}
printf 'time_scale = 20\n' >"$WORLD/params.conf"
for n in 1 2 3; do
    printf 'cpu_vendor = AuthenticAMD\ncpus = 16\nmemory_total = 64G\nhypervisor_version = 8.0.0\nlink_bandwidth = 125M\n' \
        >"$WORLD/hosts/node$n.conf"
done
i=0
for name in hot hot2 hot3; do
    i=$((i + 1))
    # Dirties faster than the link carries: converges only by post-copy.
    printf 'uuid = 00000000-0000-4000-8000-%012d\nmemory = 4G\nworking_set = 2G\ndirty_rate = 400M\n' "$i" \
        >"$WORLD/vms/node1/$name.conf"
done
"$SIMWORLD" check "$WORLD" >/dev/null || fail "the test's world is invalid"

export FERRY_TESTBED_FERRYD_CONF_EXTRA="plugin_dir = $FERRY_BUILD_DIR/plugins/sim
backend = sim
backend_config = world=$WORLD
inventory_interval = 1
progress_interval_ms = 300"
tb up --nodes 3
tb_wait --timeout 30 --cmd vms node1,node3 'length == 3'

vm_node() { local f; for f in "$WORLD"/vms/*/"$1".conf; do [ -e "$f" ] && basename "$(dirname "$f")"; done; }

info "bad input: clear errors, nothing stored"
run ctl node2 policy set --vm nosuch postcopy=yes
assert_eq 5 "$RC" "exit code for a VM no node runs"
assert_match 'No such VM' "$ERR" "message for an unknown VM"
run ctl node2 policy set downtime_steps=500,100
assert_eq 1 "$RC" "exit code for a falling ladder (stderr: $ERR)"
assert_match 'rise' "$ERR" "message for a falling ladder"
run ctl node2 policy set progress_timeout=0
assert_ne 0 "$RC" "exit code for a zero timeout"
run ctl node2 policy set speed=3
assert_eq 2 "$RC" "exit code for an unknown key"
run ctl node2 policy set --vm hot postcopy=maybe
assert_eq 2 "$RC" "exit code for a bad boolean"
run ctl node2 policy frobnicate
assert_eq 2 "$RC" "exit code for an unknown verb"
assert_eq 0 "$(ctl node1 --json policy list | jq length)" "policies stored after refusals"
assert_jq node3 '.sources.postcopy == "default" and .settings.postcopy == false and .sources.downtime_steps == "ferryd.conf"' 'policy show'

info "an unprivileged caller may read but not change"
run tb exec --user nobody node1 -- ferryctl policy set postcopy=yes
assert_eq 4 "$RC" "exit code of an unprivileged change (stderr: $ERR)"
run tb exec --user nobody node1 -- ferryctl --json policy show
assert_eq 0 "$RC" "exit code of an unprivileged read (stderr: $ERR)"

info "a VM's policy, set on node2, read on node3"
run ctl node2 policy set --vm hot postcopy=yes downtime_steps=100,200
assert_eq 0 "$RC" "exit code of policy set (stderr: $ERR)"
assert_jq node3 '.vm == "hot" and .settings.postcopy == true and .sources.postcopy == "vm" and .settings.downtime_steps == [100, 200] and .sources.downtime_steps == "vm" and .sources.stall_rounds == "ferryd.conf"' 'policy show --vm hot'
assert_jq node1 'length == 1 and .[0].vm == "hot" and .[0].in_inventory and .[0].settings.postcopy' 'policy list'

info "the VM's policy makes the migration converge, without --postcopy"
run ctl node1 --json migrate hot --to node2 --wait
assert_eq 0 "$RC" "exit code of migrating hot under its policy (stderr: $ERR, $OUT)"
log=$(jq -r '.log | join("\n")' <<<"$OUT")
assert_match 'policy: downtime_steps=100,200 \[vm\]' "$log" "the policy on the job's log"
assert_match 'postcopy=yes \[vm\]' "$log" "post-copy's source on the job's log"
assert_match 'post-copy' "$log" "convergence by post-copy"
assert_eq node2 "$(vm_node hot)" "where hot runs"

info "the cluster's policy applies to every VM; a VM's own 'no' overrides it"
run ctl node3 policy set postcopy=yes
assert_eq 0 "$RC" "exit code of the cluster policy (stderr: $ERR)"
run ctl node1 policy set --vm hot3 postcopy=no
assert_eq 0 "$RC" "exit code of hot3's policy (stderr: $ERR)"
assert_jq node2 '.sources.postcopy == "cluster" and .settings.postcopy' 'policy show --vm hot2'
run ctl node1 --json migrate hot2 --to node3 --wait
assert_eq 0 "$RC" "exit code of migrating hot2 under the cluster's policy (stderr: $ERR)"
assert_match 'postcopy=yes \[cluster\]' "$(jq -r '.log | join("\n")' <<<"$OUT")" "hot2's job log"
assert_eq node3 "$(vm_node hot2)" "where hot2 runs"
run ctl node1 --json migrate hot3 --to node3 --wait
assert_ne 0 "$RC" "exit code of migrating hot3, whose policy forbids post-copy"
assert_match 'not converging' "$(jq -r .error <<<"$OUT")" "hot3's error"
assert_match 'postcopy=no \[vm\]' "$(jq -r '.log | join("\n")' <<<"$OUT")" "hot3's job log"
assert_eq node1 "$(vm_node hot3)" "where hot3 runs after the failure"

info "unset: back to inheriting, empty records removed"
run ctl node2 policy unset --vm hot all
assert_eq 0 "$RC" "exit code of policy unset (stderr: $ERR)"
assert_jq node3 'map(.vm) == [null, "hot3"]' 'policy list'
assert_jq node1 '.sources.postcopy == "cluster" and .sources.downtime_steps == "ferryd.conf"' 'policy show --vm hot'
info "SIGHUP: ferryd.conf's convergence keys change at once; a broken file changes nothing"
conf=/tmp/$FERRY_TESTBED_NAME/node1/ferryd.conf
[ -f "$conf" ] || fail "no $conf"
printf 'stall_rounds = 5\nprogress_timeout = 90\n' >>"$conf"
kill -HUP "$(tb pid node1 ferryd)"
tb_wait --timeout 10 --cmd 'policy show --vm hot3' node1 '.settings.stall_rounds == 5 and .settings.progress_timeout == 90 and .sources.stall_rounds == "ferryd.conf"'
printf 'stall_rounds = many\nbackend = none\n' >>"$conf"
kill -HUP "$(tb pid node1 ferryd)"
sleep 1
assert_jq node1 '.settings.stall_rounds == 5' 'policy show --vm hot3'
tb logs node1 ferryd 100 | grep -q 'Reloading.*failed' || fail "no error logged for the broken reload"
# The restart-only key alone: named, not applied.
sed -i '/stall_rounds = many/d' "$conf"
kill -HUP "$(tb pid node1 ferryd)"
sleep 1
tb logs node1 ferryd 100 | grep -q 'need a restart to change: backend' || fail "backend not named as needing a restart"
assert_jq node1 '.members == 3' status
wait_same_digest 30 node1 node2 node3
