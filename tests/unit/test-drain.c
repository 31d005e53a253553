/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The drain policy: placement, blockers and honest states. */

#include <string.h>

#include "drain.h"
#include "macro.h"
#include "test-util.h"

#define GIB (UINT64_C(1) << 30)

static void node(ClusterState *s, uint32_t id, const char *vendor, uint64_t free_gib) {
        char name[32];
        snprintf(name, sizeof(name), "node%u", id);
        Command c = { .type = COMMAND_NODE_FACTS };
        c.node_facts.node = id;
        c.node_facts.facts = (NodeFacts) {
                .name = name, .cpu_vendor = (char *) vendor, .hypervisor_version = (char *) "8.0.0",
                .memory_total = 64 * GIB, .memory_free = free_gib * GIB, .memory_reserved = 1 * GIB,
                .max_outgoing = 2, .max_incoming = 2,
        };
        CHECK_EQ_INT(cluster_state_apply(s, id, &c), 1);
}

static void vms(ClusterState *s, uint32_t id, const uint64_t *gib, const uint32_t *passthrough, size_t n) {
        VmRecord v[16];
        char names[16][16];
        for (size_t i = 0; i < n; i++) {
                snprintf(names[i], sizeof(names[i]), "vm%u-%zu", id, i);
                v[i] = (VmRecord) { .name = names[i], .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 1,
                                    .memory = gib[i] * GIB, .n_passthrough = passthrough ? passthrough[i] : 0 };
        }
        Command c = { .type = COMMAND_NODE_VMS };
        c.node_vms = (NodeVmsCommand) { .node = id, .n_vms = n, .vms = v };
        CHECK_EQ_INT(cluster_state_apply(s, id, &c), 1);
}

static void set_drain(ClusterState *s, uint32_t id, DrainMode mode) {
        Command c = { .type = COMMAND_SET_DRAIN, .set_drain = { .node = id, .mode = mode } };
        CHECK(cluster_state_apply(s, id, &c) >= 0);
}

static void test_placement_counts_earlier_moves(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2, 3 };
        MembershipView view = { .members = members, .n_members = 3, .quorate = true };
        uint64_t sizes[] = { 8, 8, 8 };
        DrainPlan p;

        node(s, 1, "AuthenticAMD", 40);
        node(s, 2, "AuthenticAMD", 13);         /* room for one 8G VM (12G after reserve) */
        node(s, 3, "AuthenticAMD", 30);         /* room for three */
        vms(s, 1, sizes, NULL, 3);
        set_drain(s, 1, DRAIN_FAIL_ON_BLOCKERS);
        CHECK(cluster_state_find_node(s, 1)->maintenance);      /* drain implies maintenance */

        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        CHECK_EQ_INT(p.status, DRAIN_STATUS_DRAINING);
        CHECK_EQ_INT(p.n_move, 3);
        unsigned to2 = 0, to3 = 0;
        for (size_t i = 0; i < p.n_entries; i++) {
                CHECK_EQ_INT(p.entries[i].action, DRAIN_ACTION_MOVE);
                to2 += p.entries[i].destination == 2;
                to3 += p.entries[i].destination == 3;
        }
        /* node3 has most room: 29G → 21G → 13G, then node2 (12G) and node3
         * (13G) compete; never more than node2's one slot of room. */
        CHECK(to2 <= 1);
        CHECK_EQ_INT(to2 + to3, 3);
        drain_plan_done(&p);
        cluster_state_free(s);
}

static void test_blockers_and_states(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2, 3 };
        MembershipView view = { .members = members, .n_members = 3, .quorate = true };
        uint64_t sizes[] = { 4, 2, 100 };
        uint32_t pt[] = { 0, 1, 0 };
        DrainPlan p;

        node(s, 1, "AuthenticAMD", 40);
        node(s, 2, "AuthenticAMD", 40);
        node(s, 3, "GenuineIntel", 40);
        vms(s, 1, sizes, pt, 3);

        /* No drain asked: the plan still says what a drain would do. */
        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        CHECK_EQ_INT(p.status, DRAIN_STATUS_NONE);
        CHECK_EQ_INT(p.n_move, 1);
        CHECK_EQ_INT(p.n_blocked, 2);
        bool saw_passthrough = false, saw_room = false;
        for (size_t i = 0; i < p.n_entries; i++) {
                if (p.entries[i].action != DRAIN_ACTION_BLOCKED)
                        continue;
                saw_passthrough |= strstr(p.entries[i].reason, "passed through") != NULL;
                saw_room |= strstr(p.entries[i].reason, "needs 100.0G") != NULL;
        }
        if (!saw_passthrough || !saw_room)
                for (size_t i = 0; i < p.n_entries; i++)
                        fprintf(stderr, "%s: %s\n", p.entries[i].vm, p.entries[i].reason);
        CHECK(saw_passthrough);
        CHECK(saw_room);
        drain_plan_done(&p);

        set_drain(s, 1, DRAIN_FAIL_ON_BLOCKERS);
        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        CHECK_EQ_INT(p.status, DRAIN_STATUS_BLOCKED);
        drain_plan_done(&p);

        /* The movable VM's job is under way: still blocked (fail mode). */
        Command sub = { .type = COMMAND_JOB_SUBMIT };
        sub.job_submit = (JobSubmitCommand) { .vm = (char *) "vm1-0", .source = 1, .destination = 2 };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &sub), 1);
        set_drain(s, 1, DRAIN_LEAVE_BLOCKERS);
        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        CHECK_EQ_INT(p.n_moving, 1);
        CHECK_EQ_INT(p.status, DRAIN_STATUS_DRAINING);  /* leave mode, but a job still runs */
        drain_plan_done(&p);

        /* It completes: only blockers remain; leave mode calls that drained. */
        Command fin = { .type = COMMAND_JOB_FINISH };
        fin.job_finish = (JobFinishCommand) { .id = 1, .result = JOB_COMPLETED, .error = (char *) "", .log_line = (char *) "" };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &fin), 1);
        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        CHECK_EQ_INT(p.status, DRAIN_STATUS_DRAINED);
        CHECK_EQ_INT(p.n_entries, 2);
        drain_plan_done(&p);
        set_drain(s, 1, DRAIN_FAIL_ON_BLOCKERS);
        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        CHECK_EQ_INT(p.status, DRAIN_STATUS_BLOCKED);
        drain_plan_done(&p);

        /* Undrain ends maintenance unless asked to keep it. */
        Command un = { .type = COMMAND_SET_DRAIN, .set_drain = { .node = 1, .mode = DRAIN_NONE, .clear_maintenance = true } };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &un), 1);
        CHECK(!cluster_state_find_node(s, 1)->maintenance);
        CHECK_EQ_INT(cluster_state_find_node(s, 1)->drain, DRAIN_NONE);
        cluster_state_free(s);
}

static void test_repeated_failures_block(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2 };
        MembershipView view = { .members = members, .n_members = 2, .quorate = true };
        uint64_t sizes[] = { 1 };
        DrainPlan p;

        node(s, 1, "AuthenticAMD", 40);
        node(s, 2, "AuthenticAMD", 40);
        vms(s, 1, sizes, NULL, 1);
        set_drain(s, 1, DRAIN_FAIL_ON_BLOCKERS);
        for (uint64_t id = 1; id <= 2; id++) {
                CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
                CHECK_EQ_INT(p.n_move, 1);      /* tried again after one failure */
                drain_plan_done(&p);
                Command sub = { .type = COMMAND_JOB_SUBMIT };
                sub.job_submit = (JobSubmitCommand) { .vm = (char *) "vm1-0", .source = 1, .destination = 2 };
                CHECK_EQ_INT(cluster_state_apply(s, 1, &sub), 1);
                Command fin = { .type = COMMAND_JOB_FINISH };
                fin.job_finish = (JobFinishCommand) { .id = id, .result = JOB_FAILED,
                                                      .error = (char *) "not converging", .log_line = (char *) "" };
                CHECK_EQ_INT(cluster_state_apply(s, 1, &fin), 1);
        }
        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        CHECK_EQ_INT(p.n_move, 0);
        CHECK_EQ_INT(p.n_blocked, 1);
        CHECK_EQ_INT(p.status, DRAIN_STATUS_BLOCKED);
        CHECK(strstr(p.entries[0].reason, "not converging"));
        drain_plan_done(&p);
        cluster_state_free(s);
}

static void add_volume(ClusterState *s, const char *name, VolumeKind kind, uint32_t owner) {
        char backing[64];
        snprintf(backing, sizeof(backing), "/vol/%s", name);
        Command c = { .type = COMMAND_VOLUME };
        c.volume = (VolumeCommand) { .op = VOLUME_OP_ADD, .name = (char *) name, .kind = kind, .backing = backing,
                                     .node = owner, .error = (char *) "" };
        CHECK_EQ_INT(cluster_state_apply(s, owner, &c), 1);
        c.volume = (VolumeCommand) { .op = VOLUME_OP_ACQUIRED, .name = (char *) name, .epoch = 1, .error = (char *) "" };
        CHECK_EQ_INT(cluster_state_apply(s, owner, &c), 1);
}

static const DrainEntry *entry(const DrainPlan *p, const char *name, bool volume) {
        for (size_t i = 0; i < p->n_entries; i++)
                if (p->entries[i].volume == volume && streq(p->entries[i].vm, name))
                        return &p->entries[i];
        return NULL;
}

/* The volumes a drained node owns leave with it: following their VM,
 * going to where their VM runs, or to the node with the fewest; a volume
 * whose VM cannot move blocks with it. */
static void test_volumes(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2, 3 };
        MembershipView view = { .members = members, .n_members = 3, .quorate = true };
        DrainPlan p;

        node(s, 1, "AuthenticAMD", 40);
        node(s, 2, "AuthenticAMD", 40);
        node(s, 3, "AuthenticAMD", 40);
        add_volume(s, "follow", VOLUME_SHARED, 1);
        add_volume(s, "elsewhere", VOLUME_SHARED, 1);
        add_volume(s, "unused", VOLUME_SHARED, 1);
        add_volume(s, "logs", VOLUME_FS, 1);
        add_volume(s, "on2", VOLUME_SHARED, 2);
        VmRecord v1[] = {
                { .name = (char *) "db", .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 1, .memory = GIB,
                  .volumes = (char *) "follow" },
                { .name = (char *) "web", .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 1, .memory = GIB,
                  .volumes = (char *) "logs" },
        };
        VmRecord v2[] = {
                { .name = (char *) "app", .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 1, .memory = GIB,
                  .volumes = (char *) "elsewhere" },
        };
        Command c = { .type = COMMAND_NODE_VMS };
        c.node_vms = (NodeVmsCommand) { .node = 1, .n_vms = 2, .vms = v1 };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &c), 1);
        c.node_vms = (NodeVmsCommand) { .node = 2, .n_vms = 1, .vms = v2 };
        CHECK_EQ_INT(cluster_state_apply(s, 2, &c), 1);
        set_drain(s, 1, DRAIN_FAIL_ON_BLOCKERS);

        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        const DrainEntry *e = entry(&p, "follow", true);
        CHECK(e && e->action == DRAIN_ACTION_MOVING && strstr(e->reason, "follows VM db"));
        CHECK_EQ_INT(e->destination, entry(&p, "db", false)->destination);
        e = entry(&p, "elsewhere", true);
        CHECK(e && e->action == DRAIN_ACTION_MOVE && e->destination == 2);
        /* node2 owns on2 and gets "elsewhere": node3 owns the fewest. */
        e = entry(&p, "unused", true);
        CHECK(e && e->action == DRAIN_ACTION_MOVE && e->destination == 3);
        /* web sits on an fs volume: it cannot move live, nor can its volume. */
        CHECK_EQ_INT(entry(&p, "web", false)->action, DRAIN_ACTION_BLOCKED);
        CHECK(strstr(entry(&p, "web", false)->reason, "fs volume logs"));
        e = entry(&p, "logs", true);
        CHECK(e && e->action == DRAIN_ACTION_BLOCKED && strstr(e->reason, "web"));
        CHECK(!entry(&p, "on2", true));
        CHECK_EQ_INT(p.status, DRAIN_STATUS_BLOCKED);
        drain_plan_done(&p);

        /* Leave mode: web and its volume stay; once the rest is gone the
         * node counts as drained, but not before. */
        set_drain(s, 1, DRAIN_LEAVE_BLOCKERS);
        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        CHECK_EQ_INT(p.status, DRAIN_STATUS_DRAINING);
        drain_plan_done(&p);
        Command mv = { .type = COMMAND_VOLUME };
        mv.volume = (VolumeCommand) { .op = VOLUME_OP_MOVE, .name = (char *) "unused", .node = 3, .error = (char *) "" };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &mv), 1);
        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        CHECK_EQ_INT(entry(&p, "unused", true)->action, DRAIN_ACTION_MOVING);
        drain_plan_done(&p);
        cluster_state_free(s);
}

static void test_empty_node_is_drained(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2 };
        MembershipView view = { .members = members, .n_members = 2, .quorate = true };
        DrainPlan p;
        node(s, 1, "AuthenticAMD", 40);
        node(s, 2, "AuthenticAMD", 40);
        set_drain(s, 1, DRAIN_FAIL_ON_BLOCKERS);
        CHECK_EQ_INT(drain_plan(s, &view, 1, &p), 0);
        CHECK_EQ_INT(p.status, DRAIN_STATUS_DRAINED);
        drain_plan_done(&p);
        cluster_state_free(s);
}

int main(void) {
        static const TestCase tests[] = {
                { "placement counts earlier moves", test_placement_counts_earlier_moves },
                { "blockers and honest states", test_blockers_and_states },
                { "an empty node is drained", test_empty_node_is_drained },
                { "repeated failures block instead of looping", test_repeated_failures_block },
                { "owned volumes leave with the node's VMs", test_volumes },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
