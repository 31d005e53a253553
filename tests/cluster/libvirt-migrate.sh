#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Live migration between two testbed nodes on real libvirtd and QEMU, with
# plain virsh (no ferry yet): the ground the libvirt backend stands on.
#
#   1. An idle guest migrates node1 -> node2 and back with
#      `virsh migrate --live --p2p`; both libvirtds agree where it runs.
#   2. A guest that rewrites 48 of its 128 MiB over and over, migrated with
#      the bandwidth capped at 8 MiB/s, does not converge: every pre-copy
#      round finds the 48 MiB dirty again and would need ~6 s of downtime
#      (the limit is 300 ms). After a bound well past the time the same
#      migration of an idle guest takes, the migration is still copying; it
#      is aborted and the guest runs on node1 as before. This is the case the
#      convergence policy has to handle. Without the cap the same guest
#      migrates.
#
# Prints MEASURED: lines (wall time of `virsh migrate`, libvirt's job time
# and downtime from `virsh domjobinfo --completed`). Guests run under KVM
# when the nodes' libvirtd can use it, else TCG (FERRY_TESTBED_VIRT_TYPE
# forces one). Skips (77) when libvirtd or QEMU cannot run here.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-libvirt

# ---------------------------------------------------------------- can we?

require_libvirt

# ---------------------------------------------------------------- helpers

mig_pid=
passed=0
test_cleanup() {
    if [[ -n $mig_pid ]] && kill -0 "$mig_pid" 2>/dev/null; then
        kill "$mig_pid" 2>/dev/null || true
        wait "$mig_pid" 2>/dev/null || true
    fi
    if ((!passed)) && [[ -f $TB_DIR/testbed.env ]]; then
        local n
        for n in node1 node2; do
            tb logs "$n" libvirtd 30 >&2 || true
            tb logs "$n" qemu 20 >&2 || true
        done
    fi
    rm -f "${mig_out:-}"
}

TB_DIR=${FERRY_TESTBED_DIR:-/tmp/$FERRY_TESTBED_NAME}

assert_runs_on() {
    local name=$1 on=$2 off=$3 s
    s=$(vm_state "$on" "$name")
    assert_eq running "$s" "state of $name on $on"
    s=$(vm_state "$off" "$name")
    [[ $s != running && $s != paused ]] || fail "$name is $s on $off too"
    info "  $name runs on $on; on $off it is $s"
}

# field TEXT NAME: the value of a line "NAME: VALUE" of virsh's output, with
# runs of blanks squeezed ("Total downtime:   17     ms" -> "17 ms").
field() { awk -v f="$2" -F': *' '$1 == f { gsub(/ +/, " ", $2); sub(/ $/, "", $2); print $2 }' <<<"$1"; }

# migrate SRC DST NAME [VIRSH-ARGS...]: live-migrate NAME from SRC to DST,
# print the MEASURED line. Fails if the migration fails.
migrate() {
    local src=$1 dst=$2 name=$3 t0 wall stats job downtime what
    shift 3
    t0=$(now)
    run tb exec "$src" -- virsh migrate --live --p2p "$@" "$name" \
        "$(tb uri "$dst")" --migrateuri "tcp://$(addr "$dst")"
    ((RC == 0)) || fail "virsh migrate $name $src -> $dst failed: $ERR"
    wall=$(elapsed "$t0")
    # The destination keeps the statistics of the incoming job (the source
    # no longer knows a transient guest once it has left); reading them
    # drops them, so read them once.
    stats=$(tb exec "$dst" -- virsh domjobinfo --completed "$name") ||
        fail "no statistics of the migration of $name on $dst"
    job=$(field "$stats" 'Time elapsed')
    downtime=$(field "$stats" 'Total downtime')
    [[ -n $downtime ]] || fail "no downtime in the statistics of $name on $dst: $stats"
    what=${MIGRATE_WHAT:-$name}
    echo "MEASURED: migrate $what $src->$dst ($VIRT_TYPE): wall ${wall} s, job ${job}, downtime ${downtime}," \
        "$(field "$stats" Iteration) iterations, $(field "$stats" 'Memory processed') sent"
}

# addr NODE: the node's address, from its libvirt URI.
addr() {
    local uri
    uri=$(tb uri "$1")
    uri=${uri#qemu+tcp://}
    printf '%s\n' "${uri%/system}"
}

# ---------------------------------------------------------------- test

t_up=$(now)
tb up --nodes 2 --libvirt
VIRT_TYPE=$(sed -n 's/^TB_VIRT_TYPE=//p' "$TB_DIR/testbed.env")
echo "MEASURED: up --nodes 2 --libvirt: $(elapsed "$t_up") s (guests: $VIRT_TYPE)"
for n in node1 node2; do
    run tb exec "$n" -- virsh version
    ((RC == 0)) || fail "virsh version on $n: $ERR"
    assert_eq "$(tb uri "$n")" "$(tb exec "$n" -- printenv LIBVIRT_DEFAULT_URI)" "LIBVIRT_DEFAULT_URI on $n"
done

info "1. an idle guest: node1 -> node2 -> node1"
tb vm node1 create idle1
assert_runs_on idle1 node1 node2
MIGRATE_WHAT="idle 64 MiB" migrate node1 node2 idle1
assert_runs_on idle1 node2 node1
MIGRATE_WHAT="idle 64 MiB" migrate node2 node1 idle1
assert_runs_on idle1 node1 node2
assert_eq absent "$(vm_state node2 idle1)" "idle1 on node2 after it left (transient there)"
tb vm node1 destroy idle1
assert_eq absent "$(vm_state node1 idle1)" "idle1 on node1 after destroy"

info "2. a guest dirtying 48 of 128 MiB, bandwidth capped at 8 MiB/s"
cap=8 bound=15
tb vm node1 create hot --memory 128 --dirty 48
assert_runs_on hot node1 node2
mig_out=$(mktemp)
t0=$(now)
tb exec node1 -- virsh migrate --live --p2p --bandwidth "$cap" hot \
    "$(tb uri node2)" --migrateuri "tcp://$(addr node2)" >"$mig_out" 2>&1 &
mig_pid=$!
# A 128 MiB guest that kept still would be across after one pass, ~7 s at
# this cap (48 MiB of data, the rest zero pages); give it twice that.
deadline=$(($(date +%s) + bound))
while (($(date +%s) < deadline)); do
    kill -0 "$mig_pid" 2>/dev/null ||
        fail "the capped migration ended within ${bound}s: $(cat "$mig_out")"
    sleep 0.5
done
job=$(tb exec node1 -- virsh domjobinfo hot)
assert_eq Unbounded "$(field "$job" 'Job type')" "migration job of hot after ${bound}s"
iteration=$(field "$job" Iteration)
((iteration >= 2)) || fail "after ${bound}s the migration is still in its first pass: $job"
echo "MEASURED: migrate hot 48/128 MiB capped at $cap MiB/s ($VIRT_TYPE): after $(elapsed "$t0") s" \
    "still copying: iteration $iteration, $(field "$job" 'Memory remaining') remaining," \
    "$(field "$job" 'Memory processed') sent, dirty rate $(field "$job" 'Dirty rate')," \
    "expected downtime $(field "$job" 'Expected downtime')"
tb exec node1 -- virsh domjobabort hot
rc=0
wait "$mig_pid" || rc=$?
mig_pid=
((rc != 0)) || fail "virsh migrate succeeded although it was aborted: $(cat "$mig_out")"
assert_match 'abort|cancel' "$(cat "$mig_out")" "virsh migrate's error"
info "  aborted: $(grep -i error "$mig_out" | head -1)"
assert_runs_on hot node1 node2
assert_eq absent "$(vm_state node2 hot)" "hot on node2 after the aborted migration"

info "3. the same guest without the cap"
MIGRATE_WHAT="hot 48/128 MiB uncapped" migrate node1 node2 hot
assert_runs_on hot node2 node1
tb vm node2 destroy hot
tb vm node1 destroy hot
assert_eq absent "$(vm_state node1 hot)" "hot on node1 after destroy"

passed=1
info "PASS"
