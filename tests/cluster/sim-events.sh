#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# Cluster events and metrics on a real 3-node ring with the sim backend:
# `ferryctl events --follow --json` on node3 sees a migration run on node1
# (queued -> granted -> running -> ... -> completed, in order, with the VM,
# source and destination), maintenance on and off, a node cut off and
# healed (membership and quorum), and a restart of its own ferryd (said on
# stderr, following goes on). `ferryctl metrics` is valid Prometheus text
# exposition format and counts the migration exactly once, on every node;
# metrics_file is written with the same.

# shellcheck source=tests/cluster/lib.sh
source "$(dirname "$0")/lib.sh"
testbed_setup ft-ev

SIMWORLD="$FERRY_BUILD_DIR/plugins/sim/ferry-sim-world"
[ -x "$SIMWORLD" ] || skip "the sim backend is not built (meson -Dbackends=sim)"
WORLD=$(mktemp -d /tmp/ft-ev-world.XXXXXX)
EV=$WORLD/events.jsonl EVERR=$WORLD/events.err FOLLOW_PID=""
test_cleanup() {
    # Only the follower this test started, by its PID.
    if [[ -n $FOLLOW_PID ]]; then
        kill "$FOLLOW_PID" 2>/dev/null || true
        wait "$FOLLOW_PID" 2>/dev/null || true
    fi
    rm -rf "$WORLD"
}

mkdir -p "$WORLD/hosts" "$WORLD/vms"/node{1,2,3} "$WORLD/metrics"
printf 'time_scale = 20\n' >"$WORLD/params.conf"
for n in 1 2 3; do
    printf 'cpu_vendor = AuthenticAMD\ncpus = 16\nmemory_total = 64G\nhypervisor_version = 8.0.0\nlink_bandwidth = 125M\n' \
        >"$WORLD/hosts/node$n.conf"
done
printf 'uuid = 00000000-0000-4000-8000-000000000001\nmemory = 2G\nworking_set = 512M\ndirty_rate = 20M\n' \
    >"$WORLD/vms/node1/web1.conf"
printf 'uuid = 00000000-0000-4000-8000-000000000002\nmemory = 1G\n' >"$WORLD/vms/node2/db1.conf"
"$SIMWORLD" check "$WORLD" >/dev/null || fail "the test's world is invalid"

# Every node writes the same file: the counters are cluster-wide, so any
# writer's numbers are the ones to check.
PROM=$WORLD/metrics/ferry.prom
export FERRY_TESTBED_FERRYD_CONF_EXTRA="plugin_dir = $FERRY_BUILD_DIR/plugins/sim
backend = sim
backend_config = world=$WORLD
inventory_interval = 1
progress_interval_ms = 300
metrics_file = $PROM
metrics_interval = 1"
tb up --nodes 3
tb_wait --timeout 30 --cmd vms node1,node3 'length == 2'

# ---------------------------------------------------------------- helpers

# validate_exposition TEXT: the Prometheus text format, strictly: HELP then
# TYPE before a family's samples, "name{labels} value" samples, histogram
# buckets cumulative and ending with le="+Inf", _count equal to it. Prints
# what is wrong and returns 1.
validate_exposition() {
    awk '
    function bad(msg) { printf "line %d: %s: %s\n", NR, msg, $0; failed = 1; exit 1 }
    /^# HELP / { if (NF < 4) bad("HELP without text"); help[$3] = 1; next }
    /^# TYPE / {
        if (!($3 in help)) bad("TYPE before HELP")
        if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("unknown type")
        if ($3 in type) bad("family declared twice")
        type[$3] = $4; next
    }
    /^#/ || /^$/ { bad("unexpected line") }
    {
        if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*")*\})? [-+]?([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|Inf|NaN)$/)
            bad("not a sample line")
        name = $1; sub(/\{.*/, "", name)
        fam = name
        if (name ~ /_(bucket|sum|count)$/) {
            base = name; sub(/_(bucket|sum|count)$/, "", base)
            if (type[base] == "histogram") fam = base
        }
        if (!(fam in type)) bad("sample before its TYPE")
        n[fam]++
        if (type[fam] != "histogram") next
        v = $NF + 0
        if (name ~ /_bucket$/) {
            if ($0 !~ /le="/) bad("bucket without le")
            if (fam in inf) bad("bucket after +Inf")
            if ((fam in last) && v < last[fam]) bad("buckets not cumulative")
            last[fam] = v
            if ($0 ~ /le="\+Inf"/) inf[fam] = v
        } else if (name ~ /_count$/) {
            if (!(fam in inf)) bad("_count before the +Inf bucket")
            if (v != inf[fam]) bad("_count differs from the +Inf bucket")
            counted[fam] = 1
        }
    }
    END {
        if (failed) exit 1
        for (f in type) {
            if (!n[f]) { print "family " f " has no samples"; exit 1 }
            if (type[f] == "histogram" && !(f in counted)) { print "histogram " f " has no _count"; exit 1 }
        }
    }' <<<"$1"
}

# metric TEXT SAMPLE: the value of one sample (name with its labels).
metric() {
    awk -v s="$2" '$1 == s { print $2; found = 1 } END { exit !found }' <<<"$1" || fail "no sample $2 in the metrics"
}

# since_mark: the follower's output after line MARK (set with `mark`).
MARK=0
mark() { MARK=$(wc -l <"$EV"); }
since_mark() { tail -n +"$((MARK + 1))" "$EV"; }

# wait_event TIMEOUT JQ: until a line of the follower's output after the
# mark satisfies JQ.
wait_event() {
    local deadline=$((SECONDS + $1))
    until since_mark | jq -e -s "any(.[]; $2)" >/dev/null 2>&1; do
        if ((SECONDS >= deadline)); then
            printf 'follower output:\n%s\nfollower stderr:\n%s\n' "$(cat "$EV")" "$(cat "$EVERR")" >&2
            fail "no event satisfying '$2' within $1s"
        fi
        kill -0 "$FOLLOW_PID" 2>/dev/null || fail "the follower exited: $(cat "$EVERR")"
        sleep 0.2
    done
}

# ---------------------------------------------------------------- follow

info "ferryctl events --follow --json on node3"
# Started directly (not through a function) so that $! is ferryctl's PID:
# the testbed and ip netns exec replace themselves with it.
"$TESTBED" exec node3 -- ferryctl events --follow --json >"$EV" 2>"$EVERR" &
FOLLOW_PID=$!

info "maintenance on and off (node3), seen by the follower"
# Until the follower has subscribed, an event may come before it; the
# recent events it prints first cover that.
run ctl node1 maintenance on node3
assert_eq 0 "$RC" "maintenance on (stderr: $ERR)"
wait_event 15 '.type == "maintenance.on" and .fields.node == "node3"'
run ctl node2 maintenance off node3
assert_eq 0 "$RC" "maintenance off (stderr: $ERR)"
wait_event 15 '.type == "maintenance.off" and .fields.node == "node3"'

m0=$(ctl node1 metrics) || fail "ferryctl metrics failed on node1"
validate_exposition "$m0" || fail "ferryctl metrics is not valid exposition format:"$'\n'"$m0"
succeeded0=$(metric "$m0" ferry_migrations_succeeded_total)
started0=$(metric "$m0" ferry_migrations_started_total)
count0=$(metric "$m0" ferry_migration_duration_seconds_count)

info "a migration on node1, followed on node3"
run ctl node1 --json migrate web1 --to node2 --wait
assert_eq 0 "$RC" "exit code of migrate --wait (stderr: $ERR)"
job=$(jq -r .id <<<"$OUT")
wait_event 20 ".type == \"job.completed\" and .fields.job == $job"

# The events of the job, in order, as node3 saw them.
types=$(jq -r --argjson j "$job" 'select(.fields.job == $j) | .type' "$EV" | tr '\n' ' ')
info "  job $job: $types"
[[ $types =~ ^job\.queued\ job\.granted\ job\.running\ (job\.phase\ )*job\.completed\ $ ]] ||
    fail "events of job $job out of order or missing: $types"
jq -e -s --argjson j "$job" '
    [.[] | select(.fields.job == $j)]
    | all(.[]; .fields.vm == "web1" and .fields.source == "node1" and .fields.destination == "node2")
    and (map(select(.type == "job.running"))[0].fields.phase | type == "string")
    and (map(select(.type == "job.completed"))[0].fields | .downtime_ms >= 0 and .duration_usec > 0 and .bytes > 0)
    and (map(select(.type == "job.queued"))[0].fields.requested_by == "node1")' "$EV" >/dev/null ||
    fail "fields of job $job: $(jq -c --argjson j "$job" 'select(.fields.job == $j)' "$EV")"
jq -e -s 'all(.[]; (.seq | type == "number") and (.time | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T.*Z$")) and (.timestamp_usec > 0))
          and ([.[].seq] | . == (sort | unique))' "$EV" >/dev/null ||
    fail "seq, time: $(jq -c '{seq, time, type}' "$EV")"

info "ferryctl events (no --follow), human and JSON, on node1"
run ctl node1 events
assert_eq 0 "$RC" "exit code of events (stderr: $ERR)"
assert_match "job\.completed +job=$job vm=web1 source=node1 destination=node2" "$OUT" "human events on node1"
assert_match '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8} [^ ]+ +maintenance\.on +node=node3' "$OUT" "human line of maintenance on"
run ctl node1 events --json
assert_eq 0 "$RC" "exit code of events --json (stderr: $ERR)"
jq -e -s --argjson j "$job" 'map(select(.fields.job == $j) | .type) | first == "job.queued" and last == "job.completed"' \
    <<<"$OUT" >/dev/null || fail "events --json on node1: $OUT"
run ctl node1 metrics --json
assert_eq 2 "$RC" "exit code of metrics --json"

info "metrics count the migration once, on every node"
for n in node1 node3; do
    m1=$(ctl "$n" metrics) || fail "ferryctl metrics failed on $n"
    validate_exposition "$m1" || fail "metrics of $n are not valid exposition format:"$'\n'"$m1"
    if [[ $n == node1 ]]; then
        assert_eq $((succeeded0 + 1)) "$(metric "$m1" ferry_migrations_succeeded_total)" "succeeded on $n"
        assert_eq $((started0 + 1)) "$(metric "$m1" ferry_migrations_started_total)" "started on $n"
        assert_eq $((count0 + 1)) "$(metric "$m1" ferry_migration_duration_seconds_count)" "duration count on $n"
    fi
    assert_eq 1 "$(metric "$m1" ferry_migrations_succeeded_total)" "succeeded on $n since its start"
    assert_eq 1 "$(metric "$m1" 'ferry_migration_downtime_seconds_bucket{le="+Inf"}')" "downtime observations on $n"
    assert_eq 0 "$(metric "$m1" ferry_migrations_failed_total)" "failed on $n"
    assert_eq 1 "$(metric "$m1" ferry_quorate)" "quorate on $n"
    assert_eq 3 "$(metric "$m1" ferry_members)" "members on $n"
    assert_eq 0 "$(metric "$m1" ferry_migration_slots_in_use)" "slots in use on $n"
    # The nodes republish their VMs after a migration: a commit may land
    # between the two reads.
    commit=$(metric "$m1" ferry_state_commit)
    ((commit > 0 && commit <= $(status "$n" .commit))) || fail "commit in the metrics of $n: $commit"
done

info "metrics_file"
deadline=$((SECONDS + 10))
until [[ -f $PROM ]] && grep -q '^ferry_migrations_succeeded_total 1$' "$PROM"; do
    ((SECONDS < deadline)) || fail "metrics_file $PROM not written with the migration: $(cat "$PROM" 2>&1)"
    sleep 0.2
done
validate_exposition "$(cat "$PROM")" || fail "metrics_file is not valid exposition format"
[[ -z $(find "$WORLD/metrics" -name '.*' -type f) ]] || fail "temporary files left in $WORLD/metrics"

# ---------------------------------------------------------------- membership

info "node3 cut off: it sees the others leave and loses quorum"
# node3 saw the others join when the testbed came up: only what follows counts.
mark
tb cut node3
wait_event 30 '.type == "node.left" and .fields.node == "node1"'
wait_event 10 '.type == "quorum.lost"'
tb_wait --timeout 30 --cmd status node1 '.members == 2'
info "healed: they come back and quorum with them"
tb heal node3
wait_event 60 '.type == "node.joined" and .fields.node == "node1"'
wait_event 30 '.type == "quorum.gained"'
# Which of node.left and quorum.lost comes first depends on whether corosync
# reports the configuration or the quorum first; quorum comes back only
# with a sync, after the others joined.
since_mark | jq -e -s '[.[] | select(.type | test("^(node|quorum)\\.")) | .type] as $t
          | ($t | index("node.left")) < ($t | index("node.joined"))
            and ($t | index("quorum.lost")) < ($t | index("node.joined"))
            and ($t | index("node.joined")) < ($t | index("quorum.gained"))' >/dev/null ||
    fail "membership events out of order: $(since_mark | jq -c 'select(.type | test("^(node|quorum)")) | {type, fields}')"
m2=$(ctl node1 metrics)
(($(metric "$m2" ferry_membership_changes_total) >= 2)) || fail "membership changes on node1: $(metric "$m2" ferry_membership_changes_total)"

# ---------------------------------------------------------------- restart

info "node3's ferryd restarts under the follower"
tb stop node3 ferryd
deadline=$((SECONDS + 10))
until grep -q 'ferryd left the bus' "$EVERR"; do
    ((SECONDS < deadline)) || fail "the follower did not say that ferryd left: $(cat "$EVERR")"
    sleep 0.2
done
kill -0 "$FOLLOW_PID" 2>/dev/null || fail "the follower stopped when ferryd did: $(cat "$EVERR")"
tb start node3 ferryd
tb wait-ready --timeout 60 --members 3 || fail "node3's ferryd did not come back"
deadline=$((SECONDS + 10))
until grep -q 'ferryd is back' "$EVERR"; do
    ((SECONDS < deadline)) || fail "the follower did not say that ferryd is back: $(cat "$EVERR")"
    sleep 0.2
done
mark
run ctl node2 maintenance on node1
assert_eq 0 "$RC" "maintenance on node1 (stderr: $ERR)"
run ctl node2 maintenance off node1
assert_eq 0 "$RC" "maintenance off node1 (stderr: $ERR)"
wait_event 15 '.type == "maintenance.off" and .fields.node == "node1"'
# The new ferryd numbers from 1: its events were printed, not taken for old ones.
since_mark | jq -e -s 'map(select(.type == "maintenance.on")) | length == 1 and .[0].seq < 10' >/dev/null ||
    fail "events after the restart: $(since_mark)"

kill "$FOLLOW_PID"
wait "$FOLLOW_PID" || fail "the follower exited with $? on SIGTERM: $(cat "$EVERR")"
FOLLOW_PID=""
wait_same_digest 20 node1 node2 node3
info "PASS"
