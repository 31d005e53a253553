#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Faults during volume handovers, on a real 3-node ring with the sim
# backend. A handover is stopped at one step with a delay knob of the sim
# world (plugins/sim/README.md, "Slow storage": the hook sleeps, and since
# ferryd calls the volume hooks from its event loop, that ferryd is stuck
# there, as a daemon hung in the storage layer would be), then the fault
# lands: the ferryd is killed (SIGKILL), its node is cut off, or its
# corosync is killed. Then the knob is lowered, the node recovers, and:
#
#   - the sim world, which is what each node's hypervisor side sees, never
#     shows two grants of a volume at one epoch, an older grant coming
#     back, or an epoch going down (a sampler watches it the whole time);
#   - once settled, every node's `ferryctl --json volumes` says the same,
#     each volume is owned or free, an owned one is held in the world by
#     its owner at the record's epoch, a free one by nobody; while a node
#     is away, an orphaned volume is held by nobody or by its old owner;
#   - every VM is in exactly one vms/NODE/ of the world, no migration
#     marker is left, and its volume is owned by the node it runs on;
#   - every member reports the same state digest;
#   - a later move of the volume (or migration of the VM) succeeds.
#
# Each case runs in a subshell with its own volume (and VM); a failed
# expectation is recorded and the case goes on with its recovery, so that
# one run reports every case. A table at the end gives each case's result
# and the time from the recovery action (restart, heal, corosync start) to
# every invariant holding.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-vf

SIMWORLD="$FERRY_BUILD_DIR/plugins/sim/ferry-sim-world"
[ -x "$SIMWORLD" ] || skip "the sim backend is not built (meson -Dbackends=sim)"
WORLD=$(mktemp -d /tmp/ft-vf-world.XXXXXX)
AUX=$(mktemp -d /tmp/ft-vf-aux.XXXXXX)
SAMPLER_PID=
test_cleanup() {
    if [ -n "$SAMPLER_PID" ]; then
        touch "$AUX/stop"
        wait "$SAMPLER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORLD" "$AUX"
}

NODES="node1 node2 node3"
RELEASE_TIMEOUT=3       # volume_release_timeout, seconds
HANG=600000             # a delay knob that only the test ends (ms)

mkdir -p "$WORLD/hosts" "$WORLD/vms"/node{1,2,3}
printf 'time_scale = 20\n' >"$WORLD/params.conf"
for n in $NODES; do
    printf 'cpu_vendor = AuthenticAMD\ncpus = 16\nmemory_total = 64G\nhypervisor_version = 8.0.0\nlink_bandwidth = 125M\n' \
        >"$WORLD/hosts/$n.conf"
done
# One VM per volume it lives on: VM:VOLUME:NODE.
VMS="mvm1:m1:node1 mvm2:m2:node1 mvm3:m3:node2"
i=0
for spec in $VMS; do
    IFS=: read -r vm vol node <<<"$spec"
    i=$((i + 1))
    printf 'uuid = 00000000-0000-4000-8000-00000000010%d\nmemory = 1G\ndisks = vda:/vol/%s/%s.img:shared\n' \
        "$i" "$vol" "$vm" >"$WORLD/vms/$node/$vm.conf"
done
"$SIMWORLD" check "$WORLD" >/dev/null || fail "the test's world is invalid"

export FERRY_TESTBED_FERRYD_CONF_EXTRA="plugin_dir = $FERRY_BUILD_DIR/plugins/sim
backend = sim
backend_config = world=$WORLD
inventory_interval = 1
progress_interval_ms = 300
volume_release_timeout = $RELEASE_TIMEOUT"

# ---------------------------------------------------------------- the world

# wvol VOLUME: "HOLDER HOLDER_EPOCH EPOCH" from the world (HOLDER - = nobody).
wvol() { "$SIMWORLD" volumes "$WORLD" | awk -v v="$1" '$1 == v { print $2, $3, $4 }'; }
holder() { wvol "$1" | cut -d' ' -f1; }
# knob VOLUME HOOK VALUE: ferry-sim-world fault (on|off, or milliseconds).
knob() { "$SIMWORLD" fault "$WORLD" "$1" "$2" "$3" || fail "ferry-sim-world fault $*"; }
clear_knobs() {   # clear_knobs VOLUME...: every fault and delay off
    local v k
    for v in "$@"; do
        for k in prepare activate release held delay-prepare delay-activate delay-release delay-held \
            delay-after-prepare delay-after-activate delay-after-release; do
            "$SIMWORLD" fault "$WORLD" "$v" "$k" off
        done
    done
}
# vm_nodes VM: the nodes whose vms/ dir holds the VM, one per line.
vm_nodes() {
    local f
    for f in "$WORLD"/vms/*/"$1".conf; do
        [ -e "$f" ] && basename "$(dirname "$f")"
    done
    return 0
}
vm_node() { vm_nodes "$1" | sed -n 1p; }
# others NODE...: the testbed's nodes but these, one per line.
others() {
    local n
    for n in $NODES; do
        one_of "$n" "$@" || echo "$n"
    done
    return 0
}

# The sampler: the world's volumes five times a second, checked against
# the fencing rules. Each line of $AUX/violations names the volume first.
sampler() {
    while [ ! -e "$AUX/stop" ]; do
        "$SIMWORLD" volumes "$WORLD" 2>/dev/null || true
        sleep 0.2
    done | awk '{
        v = $1; h = $2; he = $3 + 0; e = $4 + 0
        if ((v in E) && e < E[v]) { print v, "world epoch went down from " E[v] " to " e; fflush() }
        E[v] = e
        if (h == "-") next
        if (!(v in G) || he > G[v]) { G[v] = he; H[v] = h }
        else if (he == G[v] && h != H[v]) { print v, "two holders at grant epoch " he ": " H[v] " and " h; fflush() }
        else if (he < G[v]) { print v, h " holds it at grant epoch " he ", older than " H[v] "\047s grant " G[v]; fflush() }
    }' >"$AUX/violations"
}

# ---------------------------------------------------------------- ferry

# rec NODE VOLUME: "STATE OWNER EPOCH" in NODE's record (OWNER - = none).
rec() {
    local out
    out=$(ctl "$1" --json volumes) || return 1
    jq -r --arg v "$2" '.[] | select(.name == $v) | "\(.state) \(if .owner == "" then "-" else .owner end) \(.epoch)"' \
        <<<"$out"
}
rec_state() { rec "$1" "$2" | cut -d' ' -f1; }

# stuck NODE: NODE's ferryd sleeps in a delayed volume hook (its main
# thread is in nanosleep; ferryd itself never sleeps outside of start-up).
stuck() {
    local pid k
    pid=$(tb pid "$1" ferryd 2>/dev/null) || return 1
    for k in 1 2 3 4 5; do
        grep -q nanosleep "/proc/$pid/wchan" 2>/dev/null && return 0
        sleep 0.01
    done
    return 1
}

# wait_until TIMEOUT CMD...: poll CMD every 0.2 s; 1 on timeout.
wait_until() {
    local deadline
    deadline=$(awk -v s="$(now)" -v t="$1" 'BEGIN { printf "%d", s + t + 1 }')
    shift
    until "$@"; do
        (($(date +%s) < deadline)) || return 1
        sleep 0.2
    done
}

is_rec() {   # is_rec NODE VOLUME "STATE OWNER" (OWNER * = any)
    local got want_state want_owner
    got=$(rec "$1" "$2" 2>/dev/null) || return 1
    read -r want_state want_owner <<<"$3"
    [ "${got%% *}" = "$want_state" ] || return 1
    [ "$want_owner" = "*" ] || [ "$(cut -d' ' -f2 <<<"$got")" = "$want_owner" ]
}
is_holder() { [ "$(holder "$1")" = "$2" ]; }
# eqs A B [C D ...]: A = B and C = D ...
eqs() {
    while (($# >= 2)); do
        [ "$1" = "$2" ] || return 1
        shift 2
    done
}
one_of() {   # one_of VALUE CHOICE...
    local x=$1 y
    shift
    for y in "$@"; do [ "$x" = "$y" ] && return 0; done
    return 1
}
sim_check() { "$SIMWORLD" check "$WORLD" >/dev/null; }
logged() { tb logs "$1" ferryd 400 2>/dev/null | grep -q -- "$2"; }
running() { tb pid "$1" "$2" >/dev/null 2>&1; }

# ---------------------------------------------------------------- cases

# Inside a case (a subshell): want DESCRIPTION CMD... records a failed
# expectation and goes on; want_within TIMEOUT DESCRIPTION CMD... waits.
CASE_ERRORS=()
want() {
    local what=$1; shift
    "$@" && return 0
    CASE_ERRORS+=("$what")
    info "  NOT AS EXPECTED: $what"
    return 0
}
want_within() {
    local t=$1 what=$2; shift 2
    wait_until "$t" "$@" && return 0
    CASE_ERRORS+=("$what (waited ${t}s)")
    info "  NOT AS EXPECTED: $what (waited ${t}s)"
    return 0
}

ALL_VOLUMES="s1 s1b s2 s2b s3 s4 s5 m1 m2 m3 t1 t2 q1"

all_settled() {   # every volume owned or free on every node
    local n out
    for n in $NODES; do
        out=$(ctl "$n" --json volumes 2>/dev/null) || return 1
        jq -e 'all(.[]; .state == "owned" or .state == "free")' <<<"$out" >/dev/null || return 1
    done
}

# check_invariants: the invariants of the header, for every volume and VM,
# once every node is back; failures are recorded with want.
check_invariants() {
    local n v views state owner epoch h he spec vm vol node nodes
    want_within 60 "every volume settles (owned or free) on every node" all_settled
    wait_same_digest 60 node1 node2 node3
    # Every node's own answer, not one node's.
    views=""
    for n in $NODES; do
        views+="$(ctl "$n" --json volumes | jq -c 'map({name, state, owner, target, epoch})')"$'\n'
    done
    want "every node reports the same volumes" [ "$(sed '/^$/d' <<<"$views" | sort -u | wc -l)" -eq 1 ]
    for v in $ALL_VOLUMES; do
        read -r state owner epoch <<<"$(rec node1 "$v")"
        read -r h he _ <<<"$(wvol "$v")"
        case $state in
        owned)
            want "$v: owned by $owner at epoch $epoch, held in the world by '$h' at $he" \
                eqs "$h" "$owner" "$he" "$epoch" ;;
        free)
            want "$v: free, but held in the world by '$h'" [ "$h" = - ] ;;
        *)
            want "$v: $state after recovery" false ;;
        esac
        want "$v: fencing rules broken in the world: $(grep "^$v " "$AUX/violations" | sed -n 1,3p | tr '\n' ';')" \
            [ -z "$(grep "^$v " "$AUX/violations")" ]
    done
    for spec in $VMS; do
        IFS=: read -r vm vol node <<<"$spec"
        nodes=$(vm_nodes "$vm" | tr '\n' ' ')
        want "$vm runs on exactly one node (world: '$nodes')" [ "$(wc -w <<<"$nodes")" -eq 1 ]
        want "$vm: no migration marker left" [ ! -e "$WORLD/migrations/$vm.conf" ]
        node=$(vm_node "$vm")
        read -r state owner epoch <<<"$(rec node1 "$vol")"
        want "$vm runs on $node, its volume $vol is $state by $owner" eqs "$state" owned "$owner" "$node"
    done
    want "ferry-sim-world check" sim_check
}

# move VOLUME NODE: a move that must work, waited for.
move() {
    run ctl node1 volume move "$1" --to "$2" --wait
    want "volume move $1 --to $2 (exit $RC: $OUT $ERR)" [ "$RC" -eq 0 ]
    want_within 10 "$1 held by $2 in the world after the move" is_holder "$1" "$2"
}
# migrate VM NODE: a migration that must work, waited for.
migrate() {
    run ctl node1 migrate "$1" --to "$2" --wait
    want "migrate $1 --to $2 (exit $RC: $ERR)" [ "$RC" -eq 0 ]
    want "$1 runs on $2" [ "$(vm_node "$1")" = "$2" ]
}
# park NODE [KEEP...]: volumes NODE owns that no VM uses go to node1, but
# KEEP, so that fencing NODE frees only the case's own.
park() {
    local node=$1 v
    shift
    for v in $(ctl node1 --json volumes | jq -r --arg n "$node" '.[] | select(.owner == $n and (.vms | length) == 0) | .name'); do
        one_of "$v" "$@" || move "$v" node1
    done
}

finish_case() {   # finish_case RECOVERY_START
    local t
    check_invariants
    t=$(elapsed "$1")
    if ((${#CASE_ERRORS[@]} == 0)); then
        printf '%s\tok\t%s\n' "$CASE" "$t" >"$AUX/$CASE.result"
        info "  $CASE: invariants hold, ${t}s after the recovery began"
        return 0
    fi
    printf '%s\tFAILED: %s\t%s\n' "$CASE" "$(printf '%s; ' "${CASE_ERRORS[@]}")" "$t" >"$AUX/$CASE.result"
    case_logs
    exit 1
}

# What every ferryd logged about the case's volume (CASE_VOLUME).
case_logs() {
    local n
    [ -n "${CASE_VOLUME:-}" ] || return 0
    for n in $NODES; do
        printf -- '--- %s ferryd.log, lines about %s\n' "$n" "$CASE_VOLUME"
        tb logs "$n" ferryd 2000 2>/dev/null | grep -E "(Volume|volume) ${CASE_VOLUME}[: ]" | tail -n 12 || true
    done
}

# Bring everything back after a case that failed half-way.
recover_all() {
    local n d
    # shellcheck disable=SC2086 # a list
    clear_knobs $ALL_VOLUMES >/dev/null 2>&1 || true
    for n in $NODES; do
        tb heal "$n" >/dev/null 2>&1 || true
        for d in corosync ferryd; do
            running "$n" "$d" || tb start "$n" "$d" || true
        done
    done
    tb wait-ready --timeout 60 --members 3 || true
}

CASES=()
run_case() {   # run_case ID DESCRIPTION FUNCTION VOLUME
    local rc
    CASES+=("$1")
    CASE_VOLUME=$4
    info "=== $1: $2"
    set +e
    (
        set -e
        CASE=$1
        "$3"
    )
    rc=$?
    set -e
    if ((rc != 0)); then
        if [ ! -s "$AUX/$1.result" ]; then
            printf '%s\tFAILED: stopped (exit %d)\t-\n' "$1" "$rc" >"$AUX/$1.result"
            case_logs
        fi
        info "  $1 failed: $(cut -f2 "$AUX/$1.result")"
        recover_all
    fi
}

# A standalone move stopped at one step on one node, whose ferryd is then
# killed and started again: move_killed VOLUME FROM TO KNOB STUCK_NODE
# STATE_WHILE_STUCK ACCEPTED_OWNERS
move_killed() {
    local vol=$1 from=$2 to=$3 knob_name=$4 victim=$5 stuck_state=$6 accepted=$7 t0 other owner
    other=$(others "$victim" | sed -n 1p)
    want "$vol starts owned by $from" is_rec node1 "$vol" "owned $from"
    knob "$vol" "$knob_name" "$HANG"
    run ctl "$other" volume move "$vol" --to "$to"
    [ "$RC" -eq 0 ] || fail "volume move $vol --to $to: $ERR"
    wait_until 20 stuck "$victim" || fail "$victim's ferryd did not stop in the $knob_name hook"
    want "$vol is $stuck_state while $victim is stuck" is_rec "$other" "$vol" "$stuck_state"
    info "  $victim's ferryd is stuck in $knob_name; world: $(wvol "$vol"); killing it"
    tb kill "$victim" ferryd
    want_within 15 "$vol orphaned by $victim once its ferryd is gone" is_rec "$other" "$vol" "orphaned $victim"
    read -r h _ <<<"$(wvol "$vol")"
    want "$vol orphaned: held by nobody or by $victim (world: $h)" one_of "$h" - "$victim"
    knob "$vol" "$knob_name" off
    t0=$(now)
    tb start "$victim" ferryd
    tb wait-ready --timeout 60 --members 3 || fail "$victim's ferryd did not come back"
    want_within 30 "$vol settles" is_rec node1 "$vol" "owned *"
    owner=$(rec node1 "$vol" | cut -d' ' -f2)
    # shellcheck disable=SC2086 # a list
    want "$vol ends with $owner, expected one of: $accepted" one_of "$owner" $accepted
    info "  $vol: $(rec node1 "$vol") in the record, $(wvol "$vol") in the world"
    finish_case "$t0"
    # A later move works.
    if [ "$owner" = "$to" ]; then move "$vol" "$from"; else move "$vol" "$to"; fi
    check_invariants
    ((${#CASE_ERRORS[@]} == 0)) || finish_case "$t0"
}

case_s1() { move_killed s1 node1 node2 delay-release node1 "releasing node1" "node1 node2"; }
case_s1b() { move_killed s1b node2 node3 delay-after-release node2 "releasing node2" "node2 node3"; }
case_s2() { move_killed s2 node1 node3 delay-activate node3 "acquiring -" "node3"; }
case_s2b() { move_killed s2b node1 node2 delay-after-activate node2 "acquiring -" "node2"; }

# The old owner cut off while it releases: orphaned; its in-flight release
# fails (the storage path went with the network), so it still holds the
# volume, until it has been without quorum for volume_release_timeout and
# lets go by itself; confirm-fenced frees it, another node takes it; the
# old owner healed holds nothing, and can take the volume again.
case_s3() {
    local t0 t1
    park node3 s3
    want "s3 starts owned by node3" is_rec node1 s3 "owned node3"
    knob s3 delay-release "$HANG"
    run ctl node2 volume move s3 --to node1
    [ "$RC" -eq 0 ] || fail "volume move s3: $ERR"
    wait_until 20 stuck node3 || fail "node3's ferryd did not stop in release"
    t1=$(now)
    tb cut node3
    want_within 20 "s3 orphaned by node3 once it is cut off" is_rec node1 s3 "orphaned node3"
    want "s3 orphaned, still held by node3 (world: $(wvol s3))" is_holder s3 node3
    # The release under way fails: the storage is unreachable from node3.
    knob s3 release on
    knob s3 delay-release off
    want_within 10 "node3's release of s3 fails" logged node3 's3: releasing on node3 failed'
    knob s3 release off
    want_within $((RELEASE_TIMEOUT + 8)) "node3 releases s3 by itself without quorum" is_holder s3 -
    want "node3 logged the quorum-loss release of s3" logged node3 's3: released, quorum lost'
    info "  node3 let go of s3 $(elapsed "$t1")s after the cut"
    run ctl node1 volume move s3 --to node2
    want "a move of orphaned s3 is refused (exit $RC)" [ "$RC" -ne 0 ]
    run ctl node1 --json node confirm-fenced node3
    want "confirm-fenced node3 (exit $RC: $ERR)" [ "$RC" -eq 0 ]
    want "confirm-fenced freed s3 alone ($OUT)" [ "$(jq -r .volumes_released <<<"$OUT" 2>/dev/null)" = 1 ]
    want "s3 free after the confirmation" is_rec node2 s3 "free -"
    move s3 node1
    t0=$(now)
    tb heal node3
    tb wait-ready --timeout 60 --members 3 || fail "node3 did not rejoin"
    sleep 2
    want "node3 back: it does not hold s3 (world: $(wvol s3))" is_holder s3 node1
    finish_case "$t0"
    move s3 node3
    move s3 node1
    check_invariants
    ((${#CASE_ERRORS[@]} == 0)) || finish_case "$t0"
}

# corosync killed on the new owner while it activates: orphaned; the
# activation under way lands, and that ferryd's next step (proposing
# "acquired") meets a corosync that is gone: it must survive that, and,
# without quorum, let go of the volume after volume_release_timeout.
# corosync back: the orphaned owner takes its volume again.
case_s4() {
    local t0 t1
    park node3
    want "s4 starts owned by node1" is_rec node1 s4 "owned node1"
    knob s4 delay-activate "$HANG"
    run ctl node2 volume move s4 --to node3
    [ "$RC" -eq 0 ] || fail "volume move s4: $ERR"
    wait_until 20 stuck node3 || fail "node3's ferryd did not stop in activate"
    want "s4 acquiring by node3, held by nobody" is_holder s4 -
    tb kill node3 corosync
    t1=$(now)
    want_within 20 "s4 orphaned by node3 once its corosync is gone" is_rec node1 s4 "orphaned node3"
    knob s4 delay-activate off
    want_within 10 "node3's activation of s4 lands" is_holder s4 node3
    sleep 1
    want "node3's ferryd survives proposing to a corosync that is gone" running node3 ferryd
    want_within $((RELEASE_TIMEOUT + 6)) "node3, without corosync (no quorum), releases s4 after volume_release_timeout" \
        is_holder s4 -
    info "  world 's4' $(elapsed "$t1")s after corosync was killed: $(wvol s4)"
    t0=$(now)
    tb start node3 corosync
    running node3 ferryd || tb start node3 ferryd
    tb wait-ready --timeout 60 --members 3 || fail "node3 did not rejoin"
    want_within 30 "s4 taken back by node3" is_rec node1 s4 "owned node3"
    finish_case "$t0"
    move s4 node1
    check_invariants
    ((${#CASE_ERRORS[@]} == 0)) || finish_case "$t0"
}

# corosync killed on a volume's owner, no step under way: its ferryd loses
# the ring and its quorum with it, and must let go after
# volume_release_timeout, as a node cut off does (S3, T1). corosync back:
# the orphaned owner takes the volume again.
case_s5() {
    local t0 t1
    park node3
    move s5 node3
    tb kill node3 corosync
    t1=$(now)
    want_within 20 "s5 orphaned by node3" is_rec node1 s5 "orphaned node3"
    want_within $((RELEASE_TIMEOUT + 6)) "node3, without corosync (no quorum), releases s5 after volume_release_timeout" \
        is_holder s5 -
    want "node3's ferryd is still running" running node3 ferryd
    info "  world 's5' $(elapsed "$t1")s after corosync was killed: $(wvol s5)"
    t0=$(now)
    tb start node3 corosync
    running node3 ferryd || tb start node3 ferryd
    tb wait-ready --timeout 60 --members 3 || fail "node3 did not rejoin"
    want_within 30 "s5 taken back by node3" is_rec node1 s5 "owned node3"
    finish_case "$t0"
    move s5 node1
    check_invariants
    ((${#CASE_ERRORS[@]} == 0)) || finish_case "$t0"
}

# A migration completed, its volume stopped at one step of following the
# VM, that node's ferryd killed: after its restart the volume is owned by
# the node the VM runs on.
migrate_killed() {   # migrate_killed VM VOLUME FROM TO KNOB VICTIM STUCK_STATE
    local vm=$1 vol=$2 from=$3 to=$4 knob_name=$5 victim=$6 stuck_state=$7 t0 other
    other=$(others "$from" "$to")
    want "$vol starts owned by $from" is_rec node1 "$vol" "owned $from"
    knob "$vol" "$knob_name" "$HANG"
    run ctl "$other" migrate "$vm" --to "$to" --wait
    [ "$RC" -eq 0 ] || fail "migrate $vm --to $to: $ERR"
    want "$vm runs on $to" [ "$(vm_node "$vm")" = "$to" ]
    wait_until 20 stuck "$victim" || fail "$victim's ferryd did not stop in the $knob_name hook"
    want "$vol is $stuck_state while $victim is stuck" is_rec "$other" "$vol" "$stuck_state"
    info "  $victim's ferryd is stuck in $knob_name; world: $(wvol "$vol"); killing it"
    tb kill "$victim" ferryd
    want_within 15 "$vol orphaned by $victim" is_rec "$other" "$vol" "orphaned $victim"
    knob "$vol" "$knob_name" off
    t0=$(now)
    tb start "$victim" ferryd
    tb wait-ready --timeout 60 --members 3 || fail "$victim's ferryd did not come back"
    want_within 20 "$vol owned by $to, where $vm runs" is_rec node1 "$vol" "owned $to"
    want_within 5 "$vol held by $to in the world" is_holder "$vol" "$to"
    info "  $vol: $(rec node1 "$vol") in the record, $(wvol "$vol") in the world"
    if ! is_rec node1 "$vol" "owned $to"; then
        # Put it where the VM is, for the cases after this one.
        run ctl node1 volume move "$vol" --to "$to" --wait
    fi
    finish_case "$t0"
    migrate "$vm" "$from"
    want_within 20 "$vol followed $vm back to $from" is_rec node1 "$vol" "owned $from"
    check_invariants
    ((${#CASE_ERRORS[@]} == 0)) || finish_case "$t0"
}

case_m1() { migrate_killed mvm1 m1 node1 node2 delay-activate node2 "acquiring -"; }
case_m2() { migrate_killed mvm2 m2 node1 node2 delay-release node1 "releasing node1"; }

# A cancelled migration: the holder never changes (sampled all along).
case_m3() {
    local job t0 seen
    want "m3 starts owned by node2" is_rec node1 m3 "owned node2"
    read -r _ he0 _ <<<"$(wvol m3)"
    run ctl node1 --json migrate mvm3 --to node3 --bandwidth 1M
    [ "$RC" -eq 0 ] || fail "migrate mvm3: $ERR"
    job=$(jq -r .id <<<"$OUT")
    tb_wait --timeout 30 --cmd "job $job" node1 '.state == "running" and .memory_processed > 0'
    seen=""
    for _ in 1 2 3 4 5; do seen+="$(holder m3)/$(wvol m3 | cut -d' ' -f2) "; sleep 0.2; done
    t0=$(now)
    run ctl node3 cancel "$job"
    want "cancel $job (exit $RC: $ERR)" [ "$RC" -eq 0 ]
    tb_wait --timeout 30 --cmd "job $job" node1 '.state == "cancelled"'
    for _ in 1 2 3 4 5; do seen+="$(holder m3)/$(wvol m3 | cut -d' ' -f2) "; sleep 0.2; done
    want "m3 held by node2 at epoch $he0 all along (samples: $seen)" \
        [ "$(tr ' ' '\n' <<<"$seen" | sed '/^$/d' | sort -u)" = "node2/$he0" ]
    want "mvm3 still on node2" [ "$(vm_node mvm3)" = node2 ]
    finish_case "$t0"
}

# The destination's ferryd stopped before it prepares the incoming VM's
# volume, and killed: the migration goes on (the source drives it), the
# volume follows the VM once the destination is back.
case_m4() {
    local job t0 state
    want "m3 starts owned by node2" is_rec node1 m3 "owned node2"
    knob m3 delay-prepare "$HANG"
    # 1G at 6M/s, 20x: about 8 s.
    run ctl node1 --json migrate mvm3 --to node3 --bandwidth 6M
    [ "$RC" -eq 0 ] || fail "migrate mvm3: $ERR"
    job=$(jq -r .id <<<"$OUT")
    wait_until 20 stuck node3 || fail "node3's ferryd did not stop in prepare"
    tb kill node3 ferryd
    knob m3 delay-prepare off
    t0=$(now)
    tb start node3 ferryd
    tb wait-ready --timeout 60 --members 3 || fail "node3's ferryd did not come back"
    tb_wait --timeout 60 --cmd "job $job" node1 '.state == "completed" or .state == "failed" or .state == "cancelled"'
    state=$(ctl node1 --json job "$job" | jq -r .state)
    info "  job $job: $state; mvm3 on $(vm_node mvm3)"
    finish_case "$t0"
    if [ "$(vm_node mvm3)" = node3 ]; then
        migrate mvm3 node2
    else
        migrate mvm3 node3
        migrate mvm3 node2
    fi
    want_within 20 "m3 followed mvm3 to node2" is_rec node1 m3 "owned node2"
    check_invariants
    ((${#CASE_ERRORS[@]} == 0)) || finish_case "$t0"
}

# A stale owner: node3 owns t1 and t2 and is cut off; it cannot let go
# (release fails until it is back), so it still holds both. The majority
# confirms it fenced; t1 goes to node2 (the newer grant preempts node3's in
# the world), t2 stays free. node3 healed must not reclaim t1, must release
# t2 (its hold is stale), and a later move of either back to node3 works.
case_t1() {
    local t0
    park node3
    move t1 node3
    move t2 node3
    knob t1 release on
    knob t2 release on
    tb cut node3
    want_within 20 "t1 orphaned by node3" is_rec node1 t1 "orphaned node3"
    want_within 20 "t2 orphaned by node3" is_rec node1 t2 "orphaned node3"
    want_within $((RELEASE_TIMEOUT + 8)) "node3 tried to release on quorum loss" \
        logged node3 't2: quorum lost for [0-9]*s, but releasing it failed'
    want "node3 still holds t1" is_holder t1 node3
    want "node3 still holds t2" is_holder t2 node3
    run ctl node1 --json node confirm-fenced node3
    want "confirm-fenced node3 (exit $RC: $ERR)" [ "$RC" -eq 0 ]
    want "confirm-fenced freed t1 and t2 ($OUT)" [ "$(jq -r .volumes_released <<<"$OUT" 2>/dev/null)" = 2 ]
    move t1 node2
    want "t2 free, still held by node3 in the world" is_holder t2 node3
    t0=$(now)
    tb heal node3
    tb wait-ready --timeout 60 --members 3 || fail "node3 did not rejoin"
    # Its storage path back only now: what releases t2 is node3 seeing,
    # quorate again, that it holds a volume it does not own.
    knob t1 release off
    knob t2 release off
    want_within 15 "node3 released its stale hold of t2" is_holder t2 -
    want "node3 logged releasing the stale hold of t2" logged node3 't2: this node still held it but is not its owner'
    sleep 2
    want "node3 did not reclaim t1 (world: $(wvol t1))" is_holder t1 node2
    want "t1 owned by node2" is_rec node3 t1 "owned node2"
    want "t2 free" is_rec node3 t2 "free -"
    finish_case "$t0"
    move t1 node3
    move t2 node3
    move t1 node1
    move t2 node1
    check_invariants
    ((${#CASE_ERRORS[@]} == 0)) || finish_case "$t0"
}

# A node without quorum whose first release fails tries again: the rule
# is that after volume_release_timeout it holds nothing, and a transient
# storage error must not make it keep the volume for as long as the
# partition lasts.
case_q1() {
    local t0 t1
    park node3
    move q1 node3
    knob q1 release on
    tb cut node3
    t1=$(now)
    want_within 20 "q1 orphaned by node3" is_rec node1 q1 "orphaned node3"
    want_within $((RELEASE_TIMEOUT + 8)) "node3's quorum-loss release of q1 fails" \
        logged node3 'q1: quorum lost for [0-9]*s, but releasing it failed'
    knob q1 release off
    want_within $((RELEASE_TIMEOUT + 5)) "node3, still without quorum, retries and releases q1" is_holder q1 -
    info "  world 'q1' $(elapsed "$t1")s after the cut: $(wvol q1)"
    t0=$(now)
    tb heal node3
    tb wait-ready --timeout 60 --members 3 || fail "node3 did not rejoin"
    want_within 30 "q1 taken back by node3 (never confirmed fenced)" is_rec node1 q1 "owned node3"
    finish_case "$t0"
    move q1 node1
    check_invariants
    ((${#CASE_ERRORS[@]} == 0)) || finish_case "$t0"
}

# ---------------------------------------------------------------- run

T_START=$(now)
tb up --nodes 3
tb_wait --timeout 30 --cmd vms node1,node3 'length == 3'
sampler &
SAMPLER_PID=$!

info "volumes: one per case, each added and activated"
OWNERS="s1:node1 s1b:node2 s2:node1 s2b:node1 s3:node3 s4:node1 s5:node1 m1:node1 m2:node1 m3:node2
    t1:node1 t2:node1 q1:node1"
for spec in $OWNERS; do
    IFS=: read -r vol owner <<<"$spec"
    run ctl node1 volume add "$vol" --kind shared --backing "/vol/$vol" --owner "$owner"
    assert_eq 0 "$RC" "exit code of volume add $vol (stderr: $ERR)"
done
for spec in $OWNERS; do
    IFS=: read -r vol owner <<<"$spec"
    wait_until 30 is_holder "$vol" "$owner" || fail "$vol not held by $owner: $(wvol "$vol")"
done
tb_wait --timeout 30 --cmd volumes node2 '[.[] | select(.vms | length > 0)] | length == 3'
CASE=setup
check_invariants
((${#CASE_ERRORS[@]} == 0)) || fail "invariants before any fault: ${CASE_ERRORS[*]}"
CASE_ERRORS=()
info "set-up done in $(elapsed "$T_START")s"

run_case S1 "move: the old owner's ferryd killed while it releases (before release)" case_s1 s1
run_case S1b "move: the old owner's ferryd killed after releasing, before 'released' commits" case_s1b s1b
run_case S2 "move: the new owner's ferryd killed while it activates (after prepare)" case_s2 s2
run_case S2b "move: the new owner's ferryd killed after activating, before 'acquired' commits" case_s2b s2b
run_case S3 "move: the old owner cut off while it releases" case_s3 s3
run_case S4 "move: corosync killed on the new owner while it activates" case_s4 s4
run_case S5 "corosync killed on a volume's owner, no step under way" case_s5 s5
run_case M1 "migration: the destination's ferryd killed while it acquires" case_m1 m1
run_case M2 "migration: the source's ferryd killed while it releases, after completion" case_m2 m2
run_case M3 "migration: cancelled, the holder never changes" case_m3 m3
run_case M4 "migration: the destination's ferryd killed before it prepares" case_m4 m3
run_case T1 "stale owner: cut off, fenced, reassigned, healed" case_t1 't[12]'
run_case Q1 "quorum-loss release retried after a failed release" case_q1 q1

info "the whole test took $(elapsed "$T_START")s"
printf '\n%-5s %-10s %s\n' CASE RECOVER RESULT
failed=0
for c in "${CASES[@]}"; do
    IFS=$'\t' read -r _ result secs <"$AUX/$c.result"
    printf '%-5s %-10s %s\n' "$c" "${secs}s" "$result"
    [ "$result" = ok ] || failed=$((failed + 1))
done
if [ -s "$AUX/violations" ]; then
    printf '\nfencing rules broken in the world:\n'
    cat "$AUX/violations"
    failed=$((failed + 1))
fi
((failed == 0)) || fail "$failed case(s) failed"
info "PASS"
