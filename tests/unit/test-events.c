/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Cluster events: the diff from one view of the cluster to the next (what
 * is reported, in which order, with which fields; nothing at the baseline,
 * nothing for a sync in progress), the ring of recent events and the text
 * form of the fields. */

#include <errno.h>
#include <syslog.h>

#include "cluster-state.h"
#include "events.h"
#include "macro.h"
#include "test-util.h"

static void add_node(ClusterState *s, uint32_t id) {
        char name[32];
        snprintf(name, sizeof(name), "node%u", id);
        Command c = { .type = COMMAND_NODE_FACTS };
        c.node_facts.node = id;
        c.node_facts.facts = (NodeFacts) {
                .name = name, .cpu_vendor = (char *) "AuthenticAMD", .hypervisor_version = (char *) "8.0.0",
                .memory_total = UINT64_C(64) << 30, .memory_free = UINT64_C(60) << 30,
                .max_outgoing = 2, .max_incoming = 2,
        };
        CHECK_EQ_INT(cluster_state_apply(s, id, &c), 1);
}

/* The node's whole inventory: one or two VMs. */
static void set_vms(ClusterState *s, uint32_t node, const char *name, const char *name2) {
        VmRecord v[2];
        size_t n = 0;
        for (const char *x = name; x; x = x == name ? name2 : NULL)
                v[n++] = (VmRecord) { .name = (char *) x, .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 1,
                                      .memory = UINT64_C(1) << 30 };
        Command c = { .type = COMMAND_NODE_VMS };
        c.node_vms = (NodeVmsCommand) { .node = node, .n_vms = n, .vms = v };
        CHECK_EQ_INT(cluster_state_apply(s, node, &c), 1);
}

static void apply(ClusterState *s, uint32_t sender, Command c) {
        CHECK_EQ_INT(cluster_state_apply(s, sender, &c), 1);
}

/* The test's names: node<id>, except node 9 which has no name (the diff
 * then uses the id). */
static const char *name_of(uint32_t id, void *userdata) {
        static char buf[16];
        if (id == 9)
                return "";
        snprintf(buf, sizeof(buf), "node%u", id);
        return buf;
}

typedef struct View {
        ClusterState *state;
        uint32_t members[8];
        size_t n_members;
        bool detached, syncing, quorate;
} View;

static int diff(EventsSummary *sum, const View *v, EventList *out) {
        EventsView ev = {
                .state = v->state, .members = v->members, .n_members = v->n_members,
                .detached = v->detached, .syncing = v->syncing, .quorate = v->quorate,
                .quorum_votes = 2, .node_name = name_of,
        };
        event_list_done(out);
        return events_diff(sum, &ev, out);
}

static void check_types(const EventList *l, const char *const *types, size_t n) {
        for (size_t i = 0; i < l->n && i < n; i++)
                CHECK_STREQ(l->events[i].type, types[i]);
        CHECK_EQ_INT(l->n, n);
}
#define CHECK_TYPES(l, ...) \
        do { \
                const char *const _t[] = { __VA_ARGS__ }; \
                check_types(l, _t, ELEMENTSOF(_t)); \
        } while (0)

static void test_baseline_and_sync(void) {
        ClusterState *s = cluster_state_new();
        EventsSummary *sum = events_summary_new();
        EventList l = {};
        View v = { .state = s, .members = { 1, 2 }, .n_members = 2, .syncing = true };

        add_node(s, 1);
        add_node(s, 2);
        /* Before the first sync ends nothing counts, not even as a baseline. */
        CHECK_EQ_INT(diff(sum, &v, &l), 0);
        CHECK(!events_summary_ready(sum));
        /* Nor without quorum: the state may be old, or empty. */
        v.syncing = false;
        CHECK_EQ_INT(diff(sum, &v, &l), 0);
        CHECK(!events_summary_ready(sum));
        /* The first synced and quorate view is the baseline: no history
         * is reported. */
        add_node(s, 3);
        v.members[2] = 3;
        v.n_members = 3;
        v.quorate = true;
        CHECK_EQ_INT(diff(sum, &v, &l), 0);
        CHECK(events_summary_ready(sum));
        /* Same view again: nothing. */
        CHECK_EQ_INT(diff(sum, &v, &l), 0);

        event_list_done(&l);
        events_summary_free(sum);
        cluster_state_free(s);
}

static void test_membership_and_quorum(void) {
        ClusterState *s = cluster_state_new();
        EventsSummary *sum = events_summary_new();
        EventList l = {};
        View v = { .state = s, .members = { 1, 2, 3 }, .n_members = 3, .quorate = true };

        CHECK_EQ_INT(diff(sum, &v, &l), 0);

        /* node3 is cut off: the configuration changes (sync starts, quorum
         * not decided yet), then the sync ends, still quorate. */
        v.n_members = 2;
        v.syncing = true;
        v.quorate = false;
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_NODE_LEFT);
        CHECK_STREQ(event_string(&l.events[0], "node"), "node3");
        CHECK_EQ_INT(event_uint(&l.events[0], "node_id", 0), 3);
        CHECK_EQ_INT(event_uint(&l.events[0], "members", 0), 2);
        v.syncing = false;
        v.quorate = true;
        CHECK_EQ_INT(diff(sum, &v, &l), 0);

        /* On the other side: alone and not quorate. */
        v.members[0] = 3;
        v.n_members = 1;
        v.quorate = false;
        CHECK_EQ_INT(diff(sum, &v, &l), 4);
        CHECK_TYPES(&l, EVENT_NODE_LEFT, EVENT_NODE_LEFT, EVENT_NODE_JOINED, EVENT_QUORUM_LOST);
        CHECK_EQ_INT(event_uint(&l.events[3], "members", 0), 1);
        CHECK_EQ_INT(event_uint(&l.events[3], "quorum_votes", 0), 2);

        /* corosync goes away: no membership to speak of (kept as it was),
         * and not quorate, which it already was. */
        v.detached = true;
        v.n_members = 0;
        CHECK_EQ_INT(diff(sum, &v, &l), 0);

        /* Back with everyone; quorum only once the sync says so. A node
         * without a name is reported by its id. */
        v.detached = false;
        v.syncing = true;
        v.members[0] = 1;
        v.members[1] = 3;
        v.members[2] = 9;
        v.n_members = 3;
        CHECK_EQ_INT(diff(sum, &v, &l), 2);
        CHECK_TYPES(&l, EVENT_NODE_JOINED, EVENT_NODE_JOINED);
        CHECK_STREQ(event_string(&l.events[0], "node"), "node1");
        CHECK_STREQ(event_string(&l.events[1], "node"), "9");
        v.syncing = false;
        v.quorate = true;
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_QUORUM_GAINED);

        /* Losing corosync while quorate: quorum lost, nobody "left". */
        v.detached = true;
        v.n_members = 0;
        v.quorate = false;
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_QUORUM_LOST);

        event_list_done(&l);
        events_summary_free(sum);
        cluster_state_free(s);
}

static void test_job_life(void) {
        ClusterState *s = cluster_state_new();
        EventsSummary *sum = events_summary_new();
        EventList l = {};
        View v = { .state = s, .members = { 1, 2, 3 }, .n_members = 3, .quorate = true };

        add_node(s, 1);
        add_node(s, 2);
        add_node(s, 3);
        set_vms(s, 1, "web1", "web2");
        CHECK_EQ_INT(diff(sum, &v, &l), 0);

        /* Submitted on node3 and granted in the same commit. */
        Command c = { .type = COMMAND_JOB_SUBMIT };
        c.job_submit = (JobSubmitCommand) { .vm = (char *) "web1", .source = 1, .destination = 2, .created_at = 1 };
        apply(s, 3, c);
        CHECK_EQ_INT(diff(sum, &v, &l), 2);
        CHECK_TYPES(&l, EVENT_JOB_QUEUED, EVENT_JOB_GRANTED);
        CHECK_EQ_INT(event_uint(&l.events[0], "job", 0), 1);
        CHECK_STREQ(event_string(&l.events[0], "vm"), "web1");
        CHECK_STREQ(event_string(&l.events[0], "source"), "node1");
        CHECK_STREQ(event_string(&l.events[0], "destination"), "node2");
        CHECK_STREQ(event_string(&l.events[0], "requested_by"), "node3");
        CHECK_STREQ(event_string(&l.events[1], "vm"), "web1");

        /* The second one waits: one job per node pair. */
        c.job_submit.vm = (char *) "web2";
        apply(s, 3, c);
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_JOB_QUEUED);

        /* Running, in pre-copy; then a phase change; progress alone is
         * not an event. */
        Command u = { .type = COMMAND_JOB_UPDATE };
        u.job_update = (JobUpdateCommand) { .id = 1, .started_at = 1000000, .log_line = (char *) "" };
        u.job_update.progress.phase = JOB_PHASE_PRECOPY;
        apply(s, 1, u);
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_JOB_RUNNING);
        CHECK_STREQ(event_string(&l.events[0], "phase"), "precopy");
        u.job_update.progress.memory_processed = 100;
        apply(s, 1, u);
        CHECK_EQ_INT(diff(sum, &v, &l), 0);
        u.job_update.progress.phase = JOB_PHASE_SWITCHOVER;
        apply(s, 1, u);
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_JOB_PHASE);
        CHECK_STREQ(event_string(&l.events[0], "phase"), "switchover");
        CHECK_STREQ(event_string(&l.events[0], "previous"), "precopy");

        /* Completed: with its numbers; the queued one gets the slot. */
        Command f = { .type = COMMAND_JOB_FINISH };
        f.job_finish = (JobFinishCommand) { .id = 1, .result = JOB_COMPLETED, .started_at = 1000000,
                                            .finished_at = 3500000, .error = (char *) "", .log_line = (char *) "" };
        f.job_finish.progress = (JobProgress) { .phase = JOB_PHASE_DONE, .memory_processed = 4096, .downtime_ms = 42 };
        apply(s, 1, f);
        CHECK_EQ_INT(diff(sum, &v, &l), 2);
        CHECK_TYPES(&l, EVENT_JOB_COMPLETED, EVENT_JOB_GRANTED);
        CHECK_EQ_INT(event_uint(&l.events[0], "duration_usec", 0), 2500000);
        CHECK_EQ_INT(event_uint(&l.events[0], "downtime_ms", 0), 42);
        CHECK_EQ_INT(event_uint(&l.events[0], "bytes", 0), 4096);
        CHECK(!event_field(&l.events[0], "error"));
        CHECK_EQ_INT(event_uint(&l.events[1], "job", 0), 2);

        /* Job 2: a cancel is asked of the source, which then reports the
         * job cancelled, with the reason. */
        Command x = { .type = COMMAND_JOB_CANCEL, .job_cancel = { .id = 2 } };
        apply(s, 3, x);
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_JOB_CANCEL_REQUESTED);
        f.job_finish = (JobFinishCommand) { .id = 2, .result = JOB_CANCELLED, .error = (char *) "cancelled by request",
                                            .log_line = (char *) "" };
        apply(s, 1, f);
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_JOB_CANCELLED);
        CHECK_STREQ(event_string(&l.events[0], "error"), "cancelled by request");
        CHECK(!event_field(&l.events[0], "duration_usec"));

        /* A member that learns several commits at once (a sync) reports
         * each job once, as it is now. */
        EventsSummary *late = events_summary_new();
        ClusterState *old = cluster_state_new();
        add_node(old, 1);
        add_node(old, 2);
        add_node(old, 3);
        View lv = { .state = old, .members = { 1, 2, 3 }, .n_members = 3, .quorate = true };
        CHECK_EQ_INT(diff(late, &lv, &l), 0);
        lv.state = s;
        CHECK_EQ_INT(diff(late, &lv, &l), 4);
        CHECK_TYPES(&l, EVENT_JOB_QUEUED, EVENT_JOB_COMPLETED, EVENT_JOB_QUEUED, EVENT_JOB_CANCELLED);
        events_summary_free(late);
        cluster_state_free(old);

        event_list_done(&l);
        events_summary_free(sum);
        cluster_state_free(s);
}

static void test_maintenance_drain_policy(void) {
        ClusterState *s = cluster_state_new();
        EventsSummary *sum = events_summary_new();
        EventList l = {};
        View v = { .state = s, .members = { 1, 2, 3 }, .n_members = 3, .quorate = true };

        add_node(s, 1);
        add_node(s, 2);
        add_node(s, 3);
        set_vms(s, 1, "web1", NULL);
        CHECK_EQ_INT(diff(sum, &v, &l), 0);

        apply(s, 1, (Command) { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = 2, .enabled = true } });
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_MAINTENANCE_ON);
        CHECK_STREQ(event_string(&l.events[0], "node"), "node2");
        apply(s, 1, (Command) { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = 2, .enabled = false } });
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_MAINTENANCE_OFF);

        /* A drain of node3, which runs nothing: drained at once, and in
         * maintenance. */
        apply(s, 3, (Command) { .type = COMMAND_SET_DRAIN, .set_drain = { .node = 3, .mode = DRAIN_FAIL_ON_BLOCKERS } });
        CHECK_EQ_INT(diff(sum, &v, &l), 2);
        CHECK_TYPES(&l, EVENT_DRAIN_STARTED, EVENT_MAINTENANCE_ON);
        CHECK_STREQ(event_string(&l.events[0], "mode"), "fail");
        CHECK_STREQ(event_string(&l.events[0], "state"), "drained");

        /* A drain of node1: web1 has somewhere to go. While a sync is under
         * way the derived state is not looked at; once synced without
         * quorum, nothing may move: blocked. */
        apply(s, 1, (Command) { .type = COMMAND_SET_DRAIN, .set_drain = { .node = 1, .mode = DRAIN_FAIL_ON_BLOCKERS } });
        CHECK_EQ_INT(diff(sum, &v, &l), 2);
        CHECK_TYPES(&l, EVENT_DRAIN_STARTED, EVENT_MAINTENANCE_ON);
        CHECK_STREQ(event_string(&l.events[0], "state"), "draining");
        v.syncing = true;
        v.quorate = false;
        CHECK_EQ_INT(diff(sum, &v, &l), 0);
        v.syncing = false;
        CHECK_EQ_INT(diff(sum, &v, &l), 2);
        CHECK_TYPES(&l, EVENT_QUORUM_LOST, EVENT_DRAIN_STATE);
        CHECK_STREQ(event_string(&l.events[1], "node"), "node1");
        CHECK_STREQ(event_string(&l.events[1], "state"), "drain-blocked");
        CHECK_STREQ(event_string(&l.events[1], "previous"), "draining");
        v.quorate = true;
        CHECK_EQ_INT(diff(sum, &v, &l), 2);
        CHECK_TYPES(&l, EVENT_QUORUM_GAINED, EVENT_DRAIN_STATE);

        /* Undrain, keeping maintenance; then with it. */
        apply(s, 1, (Command) { .type = COMMAND_SET_DRAIN, .set_drain = { .node = 1, .mode = DRAIN_NONE } });
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_TYPES(&l, EVENT_DRAIN_ENDED);
        apply(s, 3, (Command) { .type = COMMAND_SET_DRAIN,
                                .set_drain = { .node = 3, .mode = DRAIN_NONE, .clear_maintenance = true } });
        CHECK_EQ_INT(diff(sum, &v, &l), 2);
        CHECK_TYPES(&l, EVENT_DRAIN_ENDED, EVENT_MAINTENANCE_OFF);
        CHECK_STREQ(event_string(&l.events[0], "node"), "node3");

        /* Policies: the cluster's, a VM's, a change, a removal. */
        Command p = { .type = COMMAND_SET_POLICY };
        p.set_policy = (SetPolicyCommand) { .scope = (char *) "",
                                            .values = { .set = CONVERGENCE_FIELD_POSTCOPY, .postcopy = true } };
        apply(s, 1, p);
        p.set_policy.scope = (char *) "web1";
        p.set_policy.values = (ConvergenceSettings) { .set = CONVERGENCE_FIELD_STALL_ROUNDS, .stall_rounds = 3 };
        apply(s, 1, p);
        CHECK_EQ_INT(diff(sum, &v, &l), 2);
        CHECK_TYPES(&l, EVENT_POLICY_CHANGED, EVENT_POLICY_CHANGED);
        CHECK_STREQ(event_string(&l.events[0], "scope"), "cluster");
        CHECK(!event_field(&l.events[0], "vm"));
        CHECK_STREQ(event_string(&l.events[0], "settings"), "postcopy=yes");
        CHECK_STREQ(event_string(&l.events[1], "scope"), "vm");
        CHECK_STREQ(event_string(&l.events[1], "vm"), "web1");
        CHECK_STREQ(event_string(&l.events[1], "settings"), "stall_rounds=3");
        p.set_policy.values.stall_rounds = 4;
        apply(s, 1, p);
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_STREQ(event_string(&l.events[0], "settings"), "stall_rounds=4");
        p.set_policy.values = (ConvergenceSettings) {};
        p.set_policy.clear = _CONVERGENCE_FIELD_ALL;
        apply(s, 1, p);
        CHECK_EQ_INT(diff(sum, &v, &l), 1);
        CHECK_STREQ(event_string(&l.events[0], "vm"), "web1");
        CHECK_STREQ(event_string(&l.events[0], "settings"), "");

        event_list_done(&l);
        events_summary_free(sum);
        cluster_state_free(s);
}

static void test_ring(void) {
        EventRing r;

        CHECK_EQ_INT(event_ring_init(&r, 4), 0);
        for (uint64_t i = 1; i <= 10; i++) {
                Event e = { .seq = i, .type = EVENT_JOB_QUEUED, .n_fields = 1 };
                e.fields[0] = (EventField) { .key = "vm", .type = 's', .s = strdup("web1") };
                CHECK(e.fields[0].s);
                event_ring_push(&r, &e);
                CHECK_EQ_INT(e.n_fields, 0);
        }
        CHECK_EQ_INT(r.n, 4);
        for (size_t i = 0; i < 4; i++)
                CHECK_EQ_INT(event_ring_get(&r, i)->seq, 7 + i);
        CHECK(!event_ring_get(&r, 4));

        Event copy;
        CHECK_EQ_INT(event_copy(&copy, event_ring_get(&r, 0)), 0);
        CHECK_STREQ(event_string(&copy, "vm"), "web1");
        CHECK(event_string(&copy, "vm") != event_string(event_ring_get(&r, 0), "vm"));
        event_done(&copy);
        event_ring_done(&r);
}

static void test_format(void) {
        Event e = { .type = EVENT_JOB_FAILED, .n_fields = 5 };
        e.fields[0] = (EventField) { .key = "job", .type = 't', .u = 17 };
        e.fields[1] = (EventField) { .key = "vm", .type = 's', .s = strdup("web1") };
        e.fields[2] = (EventField) { .key = "error", .type = 's', .s = strdup("not converging: \"x\"\n") };
        e.fields[3] = (EventField) { .key = "node", .type = 's', .s = strdup("") };
        e.fields[4] = (EventField) { .key = "ok", .type = 'b', .u = 1 };
        char *s = event_format_fields(&e, false);
        CHECK_STREQ(s, "job=17 vm=web1 error=\"not converging: \\\"x\\\"\\x0a\" node=\"\" ok=yes");
        free(s);
        s = event_format_fields(&e, true);
        CHECK_STREQ(s, "job=17 vm=\"web1\" error=\"not converging: \\\"x\\\"\\x0a\" node=\"\" ok=yes");
        free(s);
        CHECK_EQ_INT(event_priority(&e), LOG_WARNING);
        event_done(&e);
        CHECK_EQ_INT(e.n_fields, 0);
}

int main(void) {
        static const TestCase tests[] = {
                { "baseline and sync", test_baseline_and_sync },
                { "membership and quorum", test_membership_and_quorum },
                { "job life", test_job_life },
                { "maintenance, drain and policy", test_maintenance_drain_policy },
                { "ring of recent events", test_ring },
                { "text form of the fields", test_format },
        };
        return run_tests(tests, ELEMENTSOF(tests));
}
