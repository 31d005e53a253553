/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The load-balancing policy: the score, hand-made clusters with known best
 * plans, every constraint a move must respect, and random clusters on
 * which every plan must be valid at each step, never raise the score, and
 * come out the same twice. */

#include <math.h>
#include <string.h>

#include "balance.h"
#include "ferry-backend.h"
#include "macro.h"
#include "test-util.h"

#define GIB (UINT64_C(1) << 30)

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}
static unsigned rnd_below(unsigned n) {
        return (unsigned) (rnd() % n);
}

typedef struct NodeSpec {
        const char *vendor;             /* NULL: AuthenticAMD */
        const char *version;            /* NULL: 8.0.0 */
        unsigned total_gib;             /* 0: 64 */
        int free_gib;                   /* < 0: as total */
        unsigned reserved_gib;
        unsigned cpus;                  /* 0: 16 */
} NodeSpec;

static void node(ClusterState *s, uint32_t id, NodeSpec n) {
        char name[32];
        snprintf(name, sizeof(name), "node%u", id);
        uint64_t total = (n.total_gib ? n.total_gib : 64) * GIB;
        Command c = { .type = COMMAND_NODE_FACTS };
        c.node_facts.node = id;
        c.node_facts.facts = (NodeFacts) {
                .name = name, .cpu_vendor = (char *) (n.vendor ? n.vendor : "AuthenticAMD"),
                .hypervisor_version = (char *) (n.version ? n.version : "8.0.0"), .cpus = n.cpus ? n.cpus : 16,
                .memory_total = total, .memory_free = n.free_gib < 0 ? total : (uint64_t) n.free_gib * GIB,
                .memory_reserved = n.reserved_gib * GIB, .max_outgoing = 2, .max_incoming = 2,
        };
        CHECK_EQ_INT(cluster_state_apply(s, id, &c), 1);
}

static void plain_nodes(ClusterState *s, uint32_t n) {
        for (uint32_t id = 1; id <= n; id++)
                node(s, id, (NodeSpec) { .free_gib = -1 });
}

typedef struct VmSpec {
        const char *name;
        unsigned gib;
        unsigned cpu;                   /* permille of one host CPU */
        VmState state;                  /* 0: running */
        unsigned passthrough;
        const char *volumes;
} VmSpec;

static void publish(ClusterState *s, uint32_t id, const VmSpec *spec, size_t n) {
        VmRecord v[64];
        CHECK(n <= ELEMENTSOF(v));
        for (size_t i = 0; i < n; i++)
                v[i] = (VmRecord) { .name = (char *) spec[i].name, .uuid = (char *) "",
                                    .state = spec[i].state ? spec[i].state : VM_RUNNING, .vcpus = 1,
                                    .memory = spec[i].gib * GIB, .cpu_use_permille = spec[i].cpu,
                                    .n_passthrough = spec[i].passthrough, .volumes = (char *) spec[i].volumes };
        Command c = { .type = COMMAND_NODE_VMS };
        c.node_vms = (NodeVmsCommand) { .node = id, .n_vms = n, .vms = v };
        CHECK(cluster_state_apply(s, id, &c) >= 0);
}

/* n VMs of gib each on node id, named prefix-0..: the easy cluster. */
static void uniform_vms(ClusterState *s, uint32_t id, const char *prefix, size_t n, unsigned gib) {
        VmSpec spec[64] = {};
        char names[64][32];
        CHECK(n <= ELEMENTSOF(spec));
        for (size_t i = 0; i < n; i++) {
                snprintf(names[i], sizeof(names[i]), "%s-%zu", prefix, i);
                spec[i] = (VmSpec) { .name = names[i], .gib = gib };
        }
        publish(s, id, spec, n);
}

static uint64_t submit(ClusterState *s, const char *vm, uint32_t source, uint32_t destination) {
        Command c = { .type = COMMAND_JOB_SUBMIT };
        c.job_submit = (JobSubmitCommand) { .vm = (char *) vm, .source = source, .destination = destination };
        CHECK_EQ_INT(cluster_state_apply(s, source, &c), 1);
        return s->jobs[s->n_jobs - 1].id;      /* sorted by id */
}

static void finish(ClusterState *s, uint64_t id, uint32_t source, JobState result) {
        Command c = { .type = COMMAND_JOB_FINISH };
        c.job_finish = (JobFinishCommand) { .id = id, .result = result, .error = (char *) "boom", .log_line = (char *) "" };
        CHECK_EQ_INT(cluster_state_apply(s, source, &c), 1);
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

static BalanceParams params(uint32_t threshold, uint32_t target) {
        BalanceParams p;
        balance_params_default(&p);
        p.threshold_permille = threshold;
        p.target_permille = target;
        p.max_moves = 100;
        p.min_gain_permille = 1;
        return p;
}

static bool moved(const BalancePlan *p, const char *vm) {
        for (size_t i = 0; i < p->n_moves; i++)
                if (streq(p->moves[i].vm, vm))
                        return true;
        return false;
}

static void print_plan(const BalancePlan *p) {
        fprintf(stderr, "score %u -> %u, needed %d, %zu moves, why_not \"%s\"\n", p->score_permille,
                p->final_score_permille, p->needed, p->n_moves, p->why_not);
        for (size_t i = 0; i < p->n_moves; i++)
                fprintf(stderr, "  %s %u -> %u (%u -> %u) %s\n", p->moves[i].vm, p->moves[i].source,
                        p->moves[i].destination, p->moves[i].score_before_permille,
                        p->moves[i].score_after_permille, p->moves[i].reason);
}

/* Two nodes alike, eight equal VMs on one: half of them move, in name
 * order, and the score walks 0.250 → 0 in quarters. */
static void test_two_nodes_even_out(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2 };
        MembershipView view = { .members = members, .n_members = 2, .quorate = true };
        BalanceParams bp;
        BalancePlan p;

        plain_nodes(s, 2);
        uniform_vms(s, 1, "vm", 8, 4);
        CHECK_EQ_INT(balance_score(s, &view), 250);    /* memory 0.5 and 0, fair share 0.25 */
        balance_params_default(&bp);
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        print_plan(&p);
        CHECK(p.needed);
        CHECK_EQ_INT(p.score_permille, 250);
        CHECK_EQ_INT(p.n_moves, 4);
        static const uint32_t after[] = { 188, 125, 63, 0 };
        for (size_t i = 0; i < p.n_moves; i++) {
                char name[32];
                snprintf(name, sizeof(name), "vm-%zu", i);
                CHECK_STREQ(p.moves[i].vm, name);
                CHECK_EQ_INT(p.moves[i].source, 1);
                CHECK_EQ_INT(p.moves[i].destination, 2);
                CHECK_EQ_INT(p.moves[i].memory, 4 * GIB);
                CHECK_EQ_INT(p.moves[i].score_before_permille, i == 0 ? 250 : after[i - 1]);
                CHECK_EQ_INT(p.moves[i].score_after_permille, after[i]);
                CHECK(strstr(p.moves[i].reason, "node1") && strstr(p.moves[i].reason, "node2"));
        }
        CHECK_EQ_INT(p.final_score_permille, 0);
        CHECK_STREQ(p.why_not, "");
        balance_plan_done(&p);

        /* Even already: nothing to do, and it says so. */
        uniform_vms(s, 1, "vm", 4, 4);
        uniform_vms(s, 2, "other", 4, 4);
        CHECK_EQ_INT(balance_score(s, &view), 0);
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK(!p.needed);
        CHECK_EQ_INT(p.n_moves, 0);
        CHECK(strstr(p.why_not, "score 0.000 at or under the threshold 0.100"));
        balance_plan_done(&p);
        cluster_state_free(s);
}

/* The move that gains most goes first, even when a lighter VM comes first
 * by name; a move that would make things worse is not made. */
static void test_heavier_vm_when_it_gains_more(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2 };
        MembershipView view = { .members = members, .n_members = 2, .quorate = true };
        BalanceParams bp = params(50, 10);
        BalancePlan p;

        plain_nodes(s, 2);
        VmSpec v[] = { { .name = "a-small", .gib = 2, .cpu = 0 }, { .name = "b-small", .gib = 2, .cpu = 0 }, { .name = "c-big", .gib = 8, .cpu = 0 } };
        publish(s, 1, v, ELEMENTSOF(v));
        CHECK_EQ_INT(balance_score(s, &view), 94);      /* 12/64 and 0 around 6/64 */
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        print_plan(&p);
        CHECK_EQ_INT(p.n_moves, 1);
        CHECK_STREQ(p.moves[0].vm, "c-big");
        CHECK_EQ_INT(p.final_score_permille, 31);      /* 4/64 and 8/64 */
        CHECK(strstr(p.why_not, "stopped at 0.031, above the target 0.010: no move lowers the score"));
        balance_plan_done(&p);

        /* CPU counts as much as memory: with memory even, a busy VM moves,
         * and then an idle one back to even out memory again. */
        VmSpec w1[] = { { .name = "busy-a", .gib = 4, .cpu = 4000 }, { .name = "busy-b", .gib = 4, .cpu = 4000 } };
        VmSpec w2[] = { { .name = "x", .gib = 4 }, { .name = "y", .gib = 4 } };
        publish(s, 1, w1, ELEMENTSOF(w1));
        publish(s, 2, w2, ELEMENTSOF(w2));
        CHECK_EQ_INT(balance_score(s, &view), 250);    /* CPU 0.5 and 0 on 16 CPUs */
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        print_plan(&p);
        CHECK_EQ_INT(p.n_moves, 2);
        CHECK_STREQ(p.moves[0].vm, "busy-a");
        CHECK_EQ_INT(p.moves[0].destination, 2);
        CHECK_EQ_INT(p.moves[0].score_after_permille, 63);     /* CPU even, memory 4/64 and 12/64 */
        CHECK_STREQ(p.moves[1].vm, "x");
        CHECK_EQ_INT(p.moves[1].destination, 1);
        CHECK_EQ_INT(p.final_score_permille, 0);
        balance_plan_done(&p);
        cluster_state_free(s);
}

/* Never to another CPU vendor, never to an older hypervisor ("10.0" is
 * newer than "8.0.0"): every move goes to node4 although node2 and node3
 * are emptier, and the rest stays above the target. */
static void test_vendor_and_version(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2, 3, 4 };
        MembershipView view = { .members = members, .n_members = 4, .quorate = true };
        BalanceParams bp = params(10, 0);
        BalancePlan p;

        node(s, 1, (NodeSpec) { .free_gib = -1 });
        node(s, 2, (NodeSpec) { .vendor = "GenuineIntel", .free_gib = -1 });
        node(s, 3, (NodeSpec) { .version = "7.2.0", .free_gib = -1 });
        node(s, 4, (NodeSpec) { .version = "10.0", .free_gib = -1 });
        uniform_vms(s, 1, "vm", 12, 4);
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        print_plan(&p);
        CHECK(p.n_moves >= 5);
        for (size_t i = 0; i < p.n_moves; i++) {
                CHECK_EQ_INT(p.moves[i].source, 1);
                CHECK_EQ_INT(p.moves[i].destination, 4);
        }
        CHECK(p.final_score_permille > 0);
        balance_plan_done(&p);

        /* The other way round: node4's VMs may not go back to node1 (older). */
        uniform_vms(s, 1, "vm", 0, 4);
        uniform_vms(s, 4, "vm", 12, 4);
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        print_plan(&p);
        CHECK(p.needed);
        CHECK_EQ_INT(p.n_moves, 0);
        CHECK(strstr(p.why_not, "no move lowers the score"));
        balance_plan_done(&p);
        cluster_state_free(s);
}

/* Nodes in maintenance, draining or offline are left alone entirely:
 * neither source nor destination, and not part of the score. */
static void test_maintenance_drain_offline(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2, 3, 5 }, some[] = { 1, 5 };
        MembershipView view = { .members = members, .n_members = 4, .quorate = true };
        MembershipView two = { .members = some, .n_members = 2, .quorate = true };
        BalanceParams bp = params(10, 0);
        BalancePlan p;

        plain_nodes(s, 5);
        uniform_vms(s, 1, "a", 8, 4);
        uniform_vms(s, 3, "c", 12, 4);          /* draining: stays */
        uniform_vms(s, 4, "d", 12, 4);          /* offline: stays */
        Command m = { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = 2, .enabled = true } };
        CHECK_EQ_INT(cluster_state_apply(s, 2, &m), 1);
        Command d = { .type = COMMAND_SET_DRAIN, .set_drain = { .node = 3, .mode = DRAIN_FAIL_ON_BLOCKERS } };
        CHECK_EQ_INT(cluster_state_apply(s, 3, &d), 1);

        /* The score is that of nodes 1 and 5 alone. */
        CHECK_EQ_INT(balance_score(s, &view), 250);
        CHECK_EQ_INT(balance_score(s, &two), 250);
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        print_plan(&p);
        CHECK_EQ_INT(p.n_moves, 4);
        for (size_t i = 0; i < p.n_moves; i++) {
                CHECK_EQ_INT(p.moves[i].source, 1);
                CHECK_EQ_INT(p.moves[i].destination, 5);
        }
        balance_plan_done(&p);

        /* Fewer than two nodes count: nothing to even out. */
        uint32_t alone[] = { 1 };
        MembershipView one = { .members = alone, .n_members = 1, .quorate = true };
        CHECK_EQ_INT(balance_score(s, &one), 0);
        CHECK_EQ_INT(balance_plan(s, &one, &bp, &p), 0);
        CHECK(!p.needed);
        CHECK(strstr(p.why_not, "fewer than two nodes"));
        balance_plan_done(&p);

        /* Without quorum nothing moves, but the score is still told. */
        view.quorate = false;
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK(p.needed);
        CHECK_EQ_INT(p.n_moves, 0);
        CHECK(strstr(p.why_not, "not quorate"));
        balance_plan_done(&p);
        cluster_state_free(s);
}

/* needed only above the threshold; once started, down to the target. */
static void test_threshold_and_hysteresis(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2 };
        MembershipView view = { .members = members, .n_members = 2, .quorate = true };
        BalanceParams bp;
        BalancePlan p;

        plain_nodes(s, 2);
        uniform_vms(s, 1, "vm", 8, 4);          /* score 0.250 */

        bp = params(250, 0);                    /* at the threshold: not above */
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK(!p.needed);
        CHECK_EQ_INT(p.n_moves, 0);
        CHECK_EQ_INT(p.final_score_permille, 250);
        CHECK_STREQ(p.why_not, "score 0.250 at or under the threshold 0.250");
        balance_plan_done(&p);

        bp = params(249, 200);                  /* just above: one move reaches the target */
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK(p.needed);
        CHECK_EQ_INT(p.n_moves, 1);
        CHECK_EQ_INT(p.final_score_permille, 188);
        CHECK_STREQ(p.why_not, "");
        balance_plan_done(&p);

        bp = params(249, 125);                  /* at the target counts as reached */
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK_EQ_INT(p.n_moves, 2);
        balance_plan_done(&p);

        /* After that round (score 0.188) the same settings start no other:
         * the gap between target and threshold. */
        uniform_vms(s, 1, "vm", 7, 4);
        uniform_vms(s, 2, "moved", 1, 4);
        bp = params(249, 200);
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK(!p.needed);
        balance_plan_done(&p);

        bp = params(100, 200);                  /* target above threshold */
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), -EINVAL);
        cluster_state_free(s);
}

/* max_moves and max_bytes bound a plan; a VM that does not fit the byte
 * budget leaves room for smaller ones. */
static void test_max_moves_and_bytes(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2 };
        MembershipView view = { .members = members, .n_members = 2, .quorate = true };
        BalanceParams bp;
        BalancePlan p;

        plain_nodes(s, 2);
        uniform_vms(s, 1, "vm", 8, 4);
        bp = params(10, 0);
        bp.max_moves = 2;
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK_EQ_INT(p.n_moves, 2);
        CHECK_STREQ(p.why_not, "stopped at 0.125, above the target 0.000: at most 2 move(s) per round");
        balance_plan_done(&p);

        bp = params(10, 0);
        bp.max_bytes = 10 * GIB;                /* two 4G VMs, not three */
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK_EQ_INT(p.n_moves, 2);
        CHECK(strstr(p.why_not, "max_bytes"));
        balance_plan_done(&p);

        bp.max_moves = 0;
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK(p.needed);
        CHECK_EQ_INT(p.n_moves, 0);
        balance_plan_done(&p);

        VmSpec v[] = { { .name = "a", .gib = 6, .cpu = 0 }, { .name = "b", .gib = 6, .cpu = 0 }, { .name = "c", .gib = 2, .cpu = 0 }, { .name = "d", .gib = 2, .cpu = 0 } };
        publish(s, 1, v, ELEMENTSOF(v));
        bp = params(10, 0);
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        print_plan(&p);
        CHECK_EQ_INT(p.n_moves, 2);             /* a 6G and a 2G even it out */
        CHECK_STREQ(p.moves[0].vm, "a");
        CHECK_STREQ(p.moves[1].vm, "c");
        balance_plan_done(&p);
        bp.max_bytes = 4 * GIB;                 /* the 6G ones do not fit: both 2G go */
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        print_plan(&p);
        CHECK_EQ_INT(p.n_moves, 2);
        CHECK_STREQ(p.moves[0].vm, "c");
        CHECK_STREQ(p.moves[1].vm, "d");
        CHECK(strstr(p.why_not, "max_bytes"));
        balance_plan_done(&p);
        cluster_state_free(s);
}

/* A move must buy at least min_gain. */
static void test_min_gain(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2 };
        MembershipView view = { .members = members, .n_members = 2, .quorate = true };
        BalanceParams bp = params(10, 0);
        BalancePlan p;

        plain_nodes(s, 2);
        VmSpec v1[] = { { .name = "big", .gib = 32, .cpu = 0 }, { .name = "tiny", .gib = 1, .cpu = 0 } };
        VmSpec v2[] = { { .name = "other", .gib = 31, .cpu = 0 } };
        publish(s, 1, v1, ELEMENTSOF(v1));
        publish(s, 2, v2, ELEMENTSOF(v2));
        CHECK_EQ_INT(balance_score(s, &view), 16);     /* 33/64 and 31/64 around 32/64 */

        bp.min_gain_permille = 20;
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK(p.needed);
        CHECK_EQ_INT(p.n_moves, 0);
        CHECK_STREQ(p.why_not, "no move lowers the score by 0.020 or more (the best: 0.016)");
        balance_plan_done(&p);

        bp.min_gain_permille = 16;
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK_EQ_INT(p.n_moves, 1);
        CHECK_STREQ(p.moves[0].vm, "tiny");
        CHECK_EQ_INT(p.final_score_permille, 0);
        balance_plan_done(&p);

        /* With no minimum, still only moves that lower the score. */
        bp.min_gain_permille = 0;
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK_EQ_INT(p.n_moves, 1);
        balance_plan_done(&p);
        cluster_state_free(s);
}

/* What pre-flight refuses, and what the balancer leaves alone besides:
 * only "free" and "shared-ok" may move. */
static void test_vms_that_stay(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2, 3 };
        MembershipView view = { .members = members, .n_members = 3, .quorate = true };
        BalanceParams bp = params(10, 0);
        BalancePlan p;

        plain_nodes(s, 3);
        add_volume(s, "fs1", VOLUME_FS, 1);
        add_volume(s, "sh1", VOLUME_SHARED, 1);
        add_volume(s, "sh2", VOLUME_SHARED, 2);
        add_volume(s, "sh3", VOLUME_SHARED, 1);
        VmSpec v[] = {
                { .name = "devices", .gib = 4, .cpu = 0, .passthrough = 1 },
                { .name = "failing", .gib = 4, .cpu = 0 },
                { .name = "free", .gib = 4, .cpu = 0 },
                { .name = "fsvm", .gib = 4, .cpu = 0, .volumes = "fs1" },
                { .name = "in-flight", .gib = 4, .cpu = 0 },
                { .name = "paused", .gib = 4, .cpu = 0, .state = VM_PAUSED },
                { .name = "shared-foreign", .gib = 4, .cpu = 0, .volumes = "sh2" },
                { .name = "shared-ok", .gib = 4, .cpu = 0, .volumes = "sh1" },
                { .name = "twin-a", .gib = 4, .cpu = 0, .volumes = "sh3" },
                { .name = "twin-b", .gib = 4, .cpu = 0, .volumes = "sh3" },
        };
        publish(s, 1, v, ELEMENTSOF(v));
        /* Failed twice in a row: not retried by every round. */
        for (int i = 0; i < 2; i++)
                finish(s, submit(s, "failing", 1, 2), 1, JOB_FAILED);
        submit(s, "in-flight", 1, 3);

        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        print_plan(&p);
        CHECK_EQ_INT(p.n_moves, 2);
        CHECK(moved(&p, "free"));
        CHECK(moved(&p, "shared-ok"));
        /* node3 has in-flight coming: the first goes to node2, and so
         * does the second (a tie, to the lower id). */
        CHECK_EQ_INT(p.moves[0].destination, 2);
        CHECK_EQ_INT(p.moves[1].destination, 2);
        balance_plan_done(&p);

        /* One success after the failures lets it move again. */
        finish(s, submit(s, "failing", 1, 2), 1, JOB_CANCELLED);
        finish(s, submit(s, "failing", 1, 2), 1, JOB_COMPLETED);
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        CHECK(!moved(&p, "failing"));   /* it is on node2 now, where it belongs */
        balance_plan_done(&p);
        cluster_state_free(s);
}

/* A VM a job is moving counts at its destination; a shut-off one nowhere. */
static void test_jobs_count_at_destination(void) {
        ClusterState *s = cluster_state_new(), *t = cluster_state_new();
        uint32_t members[] = { 1, 2 };
        MembershipView view = { .members = members, .n_members = 2, .quorate = true };

        plain_nodes(s, 2);
        plain_nodes(t, 2);
        uniform_vms(s, 1, "vm", 8, 4);
        submit(s, "vm-7", 1, 2);
        uniform_vms(t, 1, "vm", 7, 4);
        VmSpec v[] = { { .name = "vm-7", .gib = 4, .cpu = 0 }, { .name = "off", .gib = 16, .cpu = 900, .state = VM_SHUTOFF } };
        publish(t, 2, v, ELEMENTSOF(v));
        CHECK_EQ_INT(balance_score(s, &view), 188);
        CHECK_EQ_INT(balance_score(t, &view), 188);
        cluster_state_free(s);
        cluster_state_free(t);
}

/* Room on the destination: its free memory after the reserve and what
 * jobs and the plan's earlier moves bring in. */
static void test_destination_room(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2, 3 };
        MembershipView view = { .members = members, .n_members = 3, .quorate = true };
        BalanceParams bp = params(10, 0);
        BalancePlan p;

        node(s, 1, (NodeSpec) { .free_gib = 0 });
        node(s, 2, (NodeSpec) { .free_gib = 14, .reserved_gib = 1 });  /* room for three 4G, then one goes in by job */
        node(s, 3, (NodeSpec) { .free_gib = 64, .cpus = 8 });
        uniform_vms(s, 1, "vm", 16, 4);
        submit(s, "vm-9", 1, 2);
        CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
        print_plan(&p);
        unsigned to2 = 0;
        for (size_t i = 0; i < p.n_moves; i++)
                to2 += p.moves[i].destination == 2;
        CHECK_EQ_INT(to2, 2);
        CHECK(p.n_moves >= 4);
        CHECK(!moved(&p, "vm-9"));
        balance_plan_done(&p);
        cluster_state_free(s);
}

/* ---- random clusters ------------------------------------------------------------ */

static bool counts(const ClusterState *s, const MembershipView *view, uint32_t id) {
        const NodeRecord *n = cluster_state_find_node(s, id);
        bool online = false;
        for (size_t i = 0; i < view->n_members; i++)
                online |= view->members[i] == id;
        return n && online && !n->maintenance && n->drain == DRAIN_NONE &&
               n->facts.memory_total >= n->facts.memory_reserved + (UINT64_C(1) << 20);
}

static double square(double x) {
        return x * x;
}

/* The square of the score as documented, in floating point, from scratch
 * (squared: no libm needed); with `moving` on `from` counted at `to` if
 * given. */
static double reference_score_squared(const ClusterState *s, const MembershipView *view, const char *moving,
                                      uint32_t from, uint32_t to) {
        double mem[16] = {}, cpu[16] = {}, cap[16] = {}, cpus[16] = {};
        double tm = 0, tc = 0, tcap = 0, tcpus = 0, sum = 0;
        unsigned n = 0;

        for (size_t i = 0; i < s->n_vms; i++) {
                const VmRecord *vm = &s->vms[i];
                const JobRecord *j = state_find_active_job(s, vm->name);
                uint32_t where = vm->node;
                if (vm->state == VM_SHUTOFF)
                        continue;
                if (j) {
                        if (vm->node != j->source)
                                continue;
                        where = j->destination;
                }
                if (moving && vm->node == from && streq(vm->name, moving))
                        where = to;
                CHECK(where < 16);
                mem[where] += (double) vm->memory / (1 << 20);
                cpu[where] += vm->cpu_use_permille;
        }
        for (size_t i = 0; i < s->n_nodes; i++) {
                const NodeRecord *r = &s->nodes[i];
                if (!counts(s, view, r->id))
                        continue;
                cap[r->id] = (double) ((r->facts.memory_total - r->facts.memory_reserved) >> 20);
                cpus[r->id] = r->facts.cpus * 1000.0;
                tm += mem[r->id];
                tc += cpu[r->id];
                tcap += cap[r->id];
                tcpus += cpus[r->id];
                n++;
        }
        if (n < 2)
                return 0;
        for (uint32_t id = 0; id < 16; id++)
                if (cap[id] > 0)
                        sum += square(MIN(mem[id] / cap[id], 16) - tm / tcap) +
                               square(MIN(cpu[id] / cpus[id], 16) - tc / tcpus);
        return 1e6 * sum / n;
}

static bool volume_ok(const ClusterState *s, const VmRecord *vm) {
        for (size_t i = 0; i < s->n_volumes; i++) {
                const VolumeRecord *v = &s->volumes[i];
                if (!vm_uses_volume(vm, v->name))
                        continue;
                if (v->kind == VOLUME_FS || v->state != VOLUME_OWNED || v->owner != vm->node)
                        return false;
                for (size_t k = 0; k < s->n_vms; k++)
                        if (&s->vms[k] != vm && s->vms[k].state != VM_SHUTOFF && vm_uses_volume(&s->vms[k], v->name))
                                return false;
        }
        return true;
}

static void copy_record(NodeVmsCommand *c, const VmRecord *v) {
        VmRecord *r = &c->vms[c->n_vms++];
        *r = *v;
        CHECK(r->name = strdup(v->name));
        CHECK(r->uuid = strdup(v->uuid ? v->uuid : ""));
        CHECK(r->volumes = strdup(v->volumes ? v->volumes : ""));
}

/* Carries out one move in t, as its completion would: the VM published
 * by the destination instead of the source. */
static void apply_move(ClusterState *t, const BalanceMove *m) {
        NodeVmsCommand from = { .node = m->source }, to = { .node = m->destination };
        CHECK(from.vms = calloc(t->n_vms + 1, sizeof(VmRecord)));
        CHECK(to.vms = calloc(t->n_vms + 1, sizeof(VmRecord)));
        for (size_t j = 0; j < t->n_vms; j++) {
                const VmRecord *v = &t->vms[j];
                if (v->node == m->source)
                        copy_record(streq(v->name, m->vm) ? &to : &from, v);
                else if (v->node == m->destination)
                        copy_record(&to, v);
        }
        Command c = { .type = COMMAND_NODE_VMS, .node_vms = from };
        CHECK_EQ_INT(cluster_state_apply(t, m->source, &c), 1);
        c.node_vms = to;
        CHECK_EQ_INT(cluster_state_apply(t, m->destination, &c), 1);
        node_vms_command_done(&from);
        node_vms_command_done(&to);
}

static bool failed_twice(const ClusterState *s, const char *vm) {
        unsigned failed = 0;
        for (size_t k = s->n_jobs; k-- > 0;)
                if (job_state_is_final(s->jobs[k].state) && streq(s->jobs[k].vm, vm)) {
                        if (s->jobs[k].state != JOB_FAILED)
                                return false;
                        if (++failed == 2)
                                return true;
                }
        return false;
}

/* By brute force, the lowest (squared, floating-point) score that one more
 * valid move could reach from t, the cluster after the plan's first n
 * moves of s; HUGE_VAL if no move is valid. The same rules as the policy,
 * written out plainly. */
static double best_next(const ClusterState *s, const ClusterState *t, const MembershipView *view,
                        const BalanceParams *bp, const BalancePlan *p, size_t n, const int64_t *taken, uint64_t bytes) {
        double best = HUGE_VAL;
        for (size_t i = 0; i < t->n_vms; i++) {
                const VmRecord *vm = &t->vms[i];
                bool done = false;
                size_t count;
                for (size_t k = 0; k < n; k++)
                        done |= streq(p->moves[k].vm, vm->name);
                const VmRecord *orig = state_find_vm_any(s, vm->name, &count);
                if (done || count != 1 || orig->node != vm->node || vm->state != VM_RUNNING || vm->n_passthrough ||
                    state_find_active_job(s, vm->name) || !volume_ok(s, orig) || failed_twice(s, vm->name) ||
                    !counts(s, view, vm->node))
                        continue;
                const NodeRecord *a = cluster_state_find_node(s, vm->node);
                for (size_t d = 0; d < s->n_nodes; d++) {
                        const NodeRecord *b = &s->nodes[d];
                        if (b->id == a->id || !counts(s, view, b->id) || !streq(a->facts.cpu_vendor, b->facts.cpu_vendor) ||
                            ferry_version_compare(b->facts.hypervisor_version, a->facts.hypervisor_version) < 0)
                                continue;
                        int64_t room = preflight_available_memory(s, b->id) - taken[b->id];
                        if (room < 0 || (uint64_t) room < vm->memory || (bp->max_bytes && bytes + vm->memory > bp->max_bytes))
                                continue;
                        best = MIN(best, reference_score_squared(t, view, vm->name, vm->node, b->id));
                }
        }
        return best;
}

static void check_plan(const ClusterState *s, const MembershipView *view, const BalanceParams *bp,
                       const BalancePlan *p) {
        int64_t taken[16] = {};
        uint64_t bytes = 0;
        uint32_t score = p->score_permille;
        ClusterState *t;        /* the cluster after the moves so far */
        bool brute_force = s->n_vms <= 200;

        CHECK_EQ_INT(cluster_state_copy(s, &t), 0);
        CHECK_EQ_INT(p->score_permille, balance_score(s, view));
        /* Within 2 permille of the floating-point definition. */
        double ref = reference_score_squared(s, view, NULL, 0, 0), lo = p->score_permille > 2 ? p->score_permille - 2.0 : 0;
        CHECK(lo * lo <= ref && ref <= square(p->score_permille + 2.0));
        CHECK_EQ_INT(p->needed, p->score_permille > bp->threshold_permille);
        CHECK(p->n_moves <= bp->max_moves);
        if (!p->needed || !view->quorate)
                CHECK_EQ_INT(p->n_moves, 0);
        for (size_t i = 0; i < p->n_moves; i++) {
                const BalanceMove *m = &p->moves[i];
                size_t count;
                /* Greedy: no valid move would have lowered the score more
                 * (up to the fixed point's rounding). */
                if (brute_force) {
                        double chosen = reference_score_squared(t, view, m->vm, m->source, m->destination);
                        double best = best_next(s, t, view, bp, p, i, taken, bytes);
                        CHECK(chosen <= best * 1.001 + 0.5);
                }
                const VmRecord *vm = state_find_vm_any(s, m->vm, &count);
                CHECK(vm && count == 1);
                CHECK_EQ_INT(vm->node, m->source);
                CHECK_EQ_INT(vm->memory, m->memory);
                CHECK(vm->state == VM_RUNNING && vm->n_passthrough == 0);
                CHECK(!state_find_active_job(s, vm->name));
                CHECK(volume_ok(s, vm));
                for (size_t k = 0; k < i; k++)
                        CHECK(!streq(p->moves[k].vm, m->vm));
                CHECK(counts(s, view, m->source) && counts(s, view, m->destination));
                const NodeRecord *a = cluster_state_find_node(s, m->source), *b = cluster_state_find_node(s, m->destination);
                CHECK(m->source != m->destination);
                CHECK_STREQ(a->facts.cpu_vendor, b->facts.cpu_vendor);
                CHECK(ferry_version_compare(b->facts.hypervisor_version, a->facts.hypervisor_version) >= 0);
                /* Memory never over what the destination has after its
                 * reserve, its incoming jobs and the plan's earlier moves. */
                int64_t room = preflight_available_memory(s, m->destination) - taken[m->destination];
                CHECK(room >= 0 && (uint64_t) room >= m->memory);
                taken[m->destination] += (int64_t) m->memory;
                PreflightResult r;
                preflight_run(s, view, m->vm, m->destination, &r);
                CHECK(r.passed);
                /* And in the cluster the earlier moves leave (whose facts
                 * do not show them yet: hence the room check above). */
                preflight_run(t, view, m->vm, m->destination, &r);
                CHECK(r.passed);
                /* The score never rises, by at least min_gain per move. */
                CHECK_EQ_INT(m->score_before_permille, score);
                CHECK(m->score_after_permille < m->score_before_permille || bp->min_gain_permille == 0);
                CHECK(m->score_after_permille <= m->score_before_permille);
                CHECK(m->score_before_permille - m->score_after_permille >= bp->min_gain_permille);
                score = m->score_after_permille;
                bytes += m->memory;
                /* The score after it is that of the cluster it leaves. */
                apply_move(t, m);
                CHECK_EQ_INT(balance_score(t, view), m->score_after_permille);
                /* Stops at the target: only the last move may reach it. */
                if (i + 1 < p->n_moves)
                        CHECK(m->score_after_permille > bp->target_permille);
        }
        CHECK_EQ_INT(p->final_score_permille, score);
        if (bp->max_bytes)
                CHECK(bytes <= bp->max_bytes);
        if (p->needed && view->quorate && p->final_score_permille > bp->target_permille)
                CHECK(*p->why_not);
        /* Stopped for want of a move that lowers the score: there is none. */
        if (brute_force && p->needed && view->quorate && strstr(p->why_not, "no move lowers the score (")) {
                double now = reference_score_squared(t, view, NULL, 0, 0);
                CHECK(best_next(s, t, view, bp, p, p->n_moves, taken, bytes) >= now * 0.999 - 0.5);
        }
        cluster_state_free(t);
}

static bool same_plan(const BalancePlan *x, const BalancePlan *y) {
        if (x->score_permille != y->score_permille || x->final_score_permille != y->final_score_permille ||
            x->needed != y->needed || x->n_moves != y->n_moves || !streq(x->why_not, y->why_not))
                return false;
        for (size_t i = 0; i < x->n_moves; i++) {
                const BalanceMove *a = &x->moves[i], *b = &y->moves[i];
                if (!streq(a->vm, b->vm) || a->source != b->source || a->destination != b->destination ||
                    a->memory != b->memory || a->score_before_permille != b->score_before_permille ||
                    a->score_after_permille != b->score_after_permille || !streq(a->reason, b->reason))
                        return false;
        }
        return true;
}

static const char *const vendors[] = { "AuthenticAMD", "AuthenticAMD", "AuthenticAMD", "GenuineIntel" };
static const char *const versions[] = { "7.2.0", "8.0.0", "8.0.0", "8.2.1", "10.0" };

static ClusterState *random_cluster(uint32_t *members, size_t *n_members) {
        ClusterState *s = cluster_state_new();
        uint32_t n_nodes = 2 + rnd_below(9);

        *n_members = 0;
        for (uint32_t id = 1; id <= n_nodes; id++) {
                unsigned total = 16u << rnd_below(4);
                node(s, id, (NodeSpec) {
                        .vendor = vendors[rnd_below(ELEMENTSOF(vendors))],
                        .version = versions[rnd_below(ELEMENTSOF(versions))],
                        .total_gib = total, .free_gib = (int) rnd_below(total + 1),
                        .reserved_gib = rnd_below(3), .cpus = 4u << rnd_below(4),
                });
                if (rnd_below(8) != 0)
                        members[(*n_members)++] = id;
        }
        if (rnd_below(3) == 0) {
                add_volume(s, "fsa", VOLUME_FS, 1);
                add_volume(s, "sha", VOLUME_SHARED, 1);
                add_volume(s, "shb", VOLUME_SHARED, 2);
        }
        static const char *const vols[] = { "", "", "", "", "fsa", "sha", "shb", "sha shb", "nope" };
        for (uint32_t id = 1; id <= n_nodes; id++) {
                VmSpec spec[40];
                char names[40][24];
                size_t n = rnd_below(3) == 0 ? rnd_below(3) : rnd_below(40);
                for (size_t i = 0; i < n; i++) {
                        snprintf(names[i], sizeof(names[i]), "vm%02u-%02zu", (unsigned) rnd_below(90), i);
                        unsigned st = rnd_below(12);
                        spec[i] = (VmSpec) {
                                .name = names[i], .gib = 1 + rnd_below(16), .cpu = rnd_below(4000),
                                .state = st == 0 ? VM_PAUSED : st == 1 ? VM_SHUTOFF : VM_RUNNING,
                                .passthrough = rnd_below(15) == 0,
                                .volumes = s->n_volumes ? vols[rnd_below(ELEMENTSOF(vols))] : "",
                        };
                }
                publish(s, id, spec, n);
        }
        /* Some jobs under way, some finished (failures block a VM). */
        for (unsigned k = rnd_below(6); k > 0 && s->n_vms > 0; k--) {
                const VmRecord *vm = &s->vms[rnd_below((unsigned) s->n_vms)];
                uint32_t dst = 1 + rnd_below(n_nodes);
                const NodeRecord *d = cluster_state_find_node(s, dst);
                size_t count;
                state_find_vm_any(s, vm->name, &count);
                if (dst == vm->node || d->maintenance || count != 1 || state_find_active_job(s, vm->name))
                        continue;
                char name[24];
                snprintf(name, sizeof(name), "%s", vm->name);
                uint32_t src = vm->node;
                uint64_t id = submit(s, name, src, dst);
                if (rnd_below(2) == 0 && job_state_holds_slot(state_find_job(s, id)->state))
                        finish(s, id, src, rnd_below(2) ? JOB_FAILED : JOB_CANCELLED);
        }
        if (rnd_below(4) == 0) {
                Command m = { .type = COMMAND_SET_MAINTENANCE,
                              .set_maintenance = { .node = 1 + rnd_below(n_nodes), .enabled = true } };
                CHECK(cluster_state_apply(s, m.set_maintenance.node, &m) >= 0);
        }
        if (rnd_below(4) == 0) {
                Command d = { .type = COMMAND_SET_DRAIN,
                              .set_drain = { .node = 1 + rnd_below(n_nodes), .mode = DRAIN_LEAVE_BLOCKERS } };
                CHECK(cluster_state_apply(s, d.set_drain.node, &d) >= 0);
        }
        return s;
}

static void test_random_clusters(void) {
        unsigned plans = 0, moves = 0, needed = 0;

        for (unsigned round = 0; round < 400; round++) {
                uint32_t members[16], reversed[16];
                size_t n_members;
                ClusterState *s = random_cluster(members, &n_members);
                MembershipView view = { .members = members, .n_members = n_members, .quorate = rnd_below(10) != 0 };
                BalanceParams bp;
                BalancePlan p, q;

                balance_params_default(&bp);
                bp.threshold_permille = rnd_below(200);
                bp.target_permille = rnd_below(bp.threshold_permille + 1);
                bp.max_moves = rnd_below(30);
                bp.max_bytes = rnd_below(3) == 0 ? (uint64_t) rnd_below(64) * GIB : 0;
                bp.min_gain_permille = rnd_below(4) == 0 ? 0 : rnd_below(20);

                CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
                check_plan(s, &view, &bp, &p);

                /* Determinism: the same plan again, from a copy of the state
                 * (other addresses), and with the members listed in another
                 * order. */
                CHECK_EQ_INT(balance_plan(s, &view, &bp, &q), 0);
                CHECK(same_plan(&p, &q));
                balance_plan_done(&q);
                ClusterState *copy;
                CHECK_EQ_INT(cluster_state_copy(s, &copy), 0);
                for (size_t i = 0; i < n_members; i++)
                        reversed[i] = members[n_members - 1 - i];
                MembershipView other = { .members = reversed, .n_members = n_members, .quorate = view.quorate };
                CHECK_EQ_INT(balance_plan(copy, &other, &bp, &q), 0);
                if (!same_plan(&p, &q)) {
                        print_plan(&p);
                        print_plan(&q);
                }
                CHECK(same_plan(&p, &q));
                balance_plan_done(&q);
                cluster_state_free(copy);

                plans++;
                moves += (unsigned) p.n_moves;
                needed += p.needed;
                balance_plan_done(&p);
                cluster_state_free(s);
        }
        printf("# %u random clusters, %u needed a plan, %u moves in all\n", plans, needed, moves);
        CHECK(needed > 100 && moves > 300);
}

/* Long plans on clusters of alike hosts (every pair compatible), VMs
 * piled up on a few nodes: many steps, each checked against brute force,
 * which is what tests the planner's cache of the best move per pair. */
static void test_random_long_plans(void) {
        unsigned moves = 0;

        for (unsigned round = 0; round < 60; round++) {
                ClusterState *s = cluster_state_new();
                uint32_t members[16];
                uint32_t n_nodes = 4 + rnd_below(9);
                for (uint32_t id = 1; id <= n_nodes; id++) {
                        unsigned total = 32u << rnd_below(3);
                        node(s, id, (NodeSpec) { .total_gib = total, .free_gib = (int) total, .cpus = 8u << rnd_below(3) });
                        members[id - 1] = id;
                }
                for (uint32_t id = 1; id <= n_nodes; id++) {
                        VmSpec spec[40] = {};
                        char names[40][24];
                        size_t n = id <= 2 ? 10 + rnd_below(30) : rnd_below(6);
                        for (size_t i = 0; i < n; i++) {
                                snprintf(names[i], sizeof(names[i]), "n%02u-%02zu", id, i);
                                spec[i] = (VmSpec) { .name = names[i], .gib = 1 + rnd_below(8), .cpu = rnd_below(2000) };
                        }
                        publish(s, id, spec, n);
                }
                MembershipView view = { .members = members, .n_members = n_nodes, .quorate = true };
                BalanceParams bp = params(0, 0);
                bp.min_gain_permille = 0;
                bp.max_moves = 60;
                BalancePlan p;
                CHECK_EQ_INT(balance_plan(s, &view, &bp, &p), 0);
                check_plan(s, &view, &bp, &p);
                moves += (unsigned) p.n_moves;
                balance_plan_done(&p);
                cluster_state_free(s);
        }
        printf("# 60 long plans, %u moves in all\n", moves);
        CHECK(moves > 1000);
}

int main(void) {
        static const TestCase tests[] = {
                { "two nodes, eight VMs on one: even out", test_two_nodes_even_out },
                { "the heavier VM when it gains more; CPU counts", test_heavier_vm_when_it_gains_more },
                { "never another CPU vendor or an older hypervisor", test_vendor_and_version },
                { "maintenance, draining and offline nodes are left alone", test_maintenance_drain_offline },
                { "threshold and hysteresis", test_threshold_and_hysteresis },
                { "max_moves and max_bytes", test_max_moves_and_bytes },
                { "min_gain stops tiny moves", test_min_gain },
                { "VMs that stay where they are", test_vms_that_stay },
                { "a VM on its way counts at its destination", test_jobs_count_at_destination },
                { "room on the destination, counting the plan", test_destination_room },
                { "random clusters: valid, never worse, deterministic", test_random_clusters },
                { "long plans: each move the best one", test_random_long_plans },
        };
        return run_tests(tests, ELEMENTSOF(tests));
}
