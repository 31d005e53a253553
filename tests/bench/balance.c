/* SPDX-License-Identifier: GPL-2.0-or-later */

/* balance: how fast the load-balancing policy (policies/balance.c) plans.
 *
 * In one process, linked against ferry-core like ferryd: it builds a
 * skewed cluster (by default 64 nodes, 10,000 VMs; two hardware
 * generations, the first nodes carrying up to three times their share,
 * some jobs under way) and times, on the thread's CPU clock, best of
 * --runs:
 *   build        every node publishes its facts and its VM list into an
 *                empty state (cluster_state_apply()): the baseline, what a
 *                member pays anyway for a state of that size
 *   score        balance_score(), what a status call costs
 *   plan         balance_plan() with the default parameters (one round)
 *   plan-long    balance_plan() with --long-moves moves and target 0 (how
 *                the cost grows with the steps of a plan)
 * The first run also carries the long plan out in a copy of the state and
 * checks the score there against the plan's (not timed).
 * Each is reported as a ratio to `build` in the same run: the figures that
 * count (the machines are shared and noisy). The same is done at a cluster
 * --factor times smaller, and target/baseline ratios tell how the planner
 * scales. Absolute times are printed for orientation only. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "balance.h"
#include "cluster-state.h"
#include "macro.h"
#include "strutil.h"

#define GIB (UINT64_C(1) << 30)

static unsigned opt_nodes = 64, opt_vms = 10000, opt_jobs = 100, opt_factor = 8, opt_runs = 5, opt_long = 200;
static uint64_t opt_seed = 1;
static const char *opt_json;

_printf_(1, 2)
static void die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("balance: ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

#define CHECK(cond)                                                                             \
        do {                                                                                    \
                if (!(cond))                                                                    \
                        die("%s:%d: check failed: %s", __FILE__, __LINE__, #cond);              \
        } while (0)

static uint64_t rng_state;
static uint64_t rnd(void) {
        /* xorshift64* */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 0x2545F4914F6CDD1DULL;
}
static unsigned rnd_below(unsigned n) {
        return (unsigned) (rnd() % n);
}

static uint64_t cpu_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        return (uint64_t) ts.tv_sec * 1000000000ULL + (uint64_t) ts.tv_nsec;
}

typedef enum Op {
        OP_BUILD,
        OP_SCORE,
        OP_PLAN,
        OP_PLAN_LONG,
        _OP_MAX,
} Op;

static const char *const op_name[_OP_MAX] = { "build", "score", "plan", "plan-long" };

typedef struct Scale {
        const char *label;
        unsigned nodes, vms, jobs;
} Scale;

typedef struct Result {
        double ns[_OP_MAX];
        uint32_t score, plan_final, long_final;
        size_t plan_moves, long_moves;
        uint64_t plan_bytes;
        char why_not[256];
} Result;

/* Odd ids: 2 TiB and 128 CPUs; even ids: 1 TiB and 64 (an older
 * generation). */
static bool big(uint32_t id) {
        return id % 2 == 1;
}

/* The cluster's facts and VM lists, ready to apply: VM g goes to a node
 * with probability proportional to its size times a skew falling linearly
 * from 3 (node 1) to 1 (the last node). */
typedef struct World {
        const Scale *sc;
        NodeVmsCommand *lists;
        char **names;
        uint64_t *used;         /* per node, bytes */
} World;

static void world_init(World *w, const Scale *sc) {
        double *weight = calloc(sc->nodes, sizeof(double)), total = 0;
        *w = (World) { .sc = sc };
        CHECK(weight);
        CHECK(w->lists = calloc(sc->nodes, sizeof(NodeVmsCommand)));
        CHECK(w->names = calloc(sc->vms, sizeof(char *)));
        CHECK(w->used = calloc(sc->nodes, sizeof(uint64_t)));
        for (unsigned i = 0; i < sc->nodes; i++) {
                weight[i] = (big(i + 1) ? 2.0 : 1.0) * (3.0 - 2.0 * i / (sc->nodes - 1));
                total += weight[i];
                w->lists[i].node = i + 1;
                CHECK(w->lists[i].vms = calloc(sc->vms, sizeof(VmRecord)));
        }
        for (unsigned g = 0; g < sc->vms; g++) {
                double x = (double) (rnd() >> 11) / (double) (UINT64_C(1) << 53) * total;
                unsigned i = 0;
                while (i + 1 < sc->nodes && x >= weight[i])
                        x -= weight[i++];
                NodeVmsCommand *l = &w->lists[i];
                CHECK(asprintf(&w->names[g], "vm-%05u", g) > 0);
                uint64_t memory = (1 + rnd_below(8)) * GIB;
                l->vms[l->n_vms++] = (VmRecord) {
                        .name = w->names[g], .uuid = (char *) "", .state = VM_RUNNING,
                        .vcpus = 1 + rnd_below(8), .memory = memory, .cpu_use_permille = rnd_below(600),
                        .dirty_rate = (uint64_t) rnd_below(64) << 20, .volumes = (char *) "",
                };
                w->used[i] += memory;
        }
        free(weight);
}

static void world_free(World *w) {
        for (unsigned i = 0; i < w->sc->nodes; i++)
                free(w->lists[i].vms);
        for (unsigned g = 0; g < w->sc->vms; g++)
                free(w->names[g]);
        free(w->lists);
        free(w->names);
        free(w->used);
}

static ClusterState *build(const World *w) {
        ClusterState *s = cluster_state_new();
        CHECK(s);
        for (uint32_t id = 1; id <= w->sc->nodes; id++) {
                char name[32];
                uint64_t total = (big(id) ? 2048 : 1024) * GIB;
                snprintf(name, sizeof(name), "hv%03u.example.net", id);
                Command c = { .type = COMMAND_NODE_FACTS };
                c.node_facts.node = id;
                c.node_facts.facts = (NodeFacts) {
                        .name = name, .daemon_version = (char *) "0.1.0", .protocol_version = 1,
                        .cpu_vendor = (char *) "AuthenticAMD", .cpu_model = (char *) "AMD EPYC",
                        .cpu_features = (char *) "", .cpus = big(id) ? 128 : 64, .memory_total = total,
                        .memory_free = total - MIN(total, w->used[id - 1] + 4 * GIB), .memory_reserved = 8 * GIB,
                        .hypervisor_name = (char *) "QEMU", .hypervisor_version = (char *) "8.2.0",
                        .backend_uri = (char *) "", .migration_address = (char *) "", .max_outgoing = 2,
                        .max_incoming = 2,
                };
                CHECK(cluster_state_apply(s, id, &c) == 1);
        }
        for (unsigned i = 0; i < w->sc->nodes; i++) {
                Command c = { .type = COMMAND_NODE_VMS, .node_vms = w->lists[i] };
                CHECK(cluster_state_apply(s, i + 1, &c) == 1);
        }
        return s;
}

/* Jobs under way (not timed): they count at their destinations and their
 * VMs may not move. */
static void add_jobs(ClusterState *s, const World *w) {
        for (unsigned j = 0, tries = 0; j < w->sc->jobs && tries < 100 * w->sc->jobs; tries++) {
                const VmRecord *vm = &s->vms[rnd_below((unsigned) s->n_vms)];
                uint32_t dst = 1 + rnd_below(w->sc->nodes);
                if (dst == vm->node || state_find_active_job(s, vm->name))
                        continue;
                char name[32];
                snprintf(name, sizeof(name), "%s", vm->name);
                Command c = { .type = COMMAND_JOB_SUBMIT };
                c.job_submit = (JobSubmitCommand) { .vm = name, .source = vm->node, .destination = dst };
                CHECK(cluster_state_apply(s, vm->node, &c) == 1);
                j++;
        }
}

static void copy_record(NodeVmsCommand *c, const VmRecord *v) {
        VmRecord *r = &c->vms[c->n_vms++];
        *r = *v;
        CHECK(r->name = strdup(v->name));
        CHECK(r->uuid = strdup(v->uuid));
        CHECK(r->volumes = strdup(v->volumes));
}

/* Not timed, once per scale: carries the plan out in a copy of the state
 * (each moved VM published by its destination) and checks that the score
 * there is what the plan says, so that a fast plan is also a right one. */
static void verify(const ClusterState *s, const MembershipView *view, const BalancePlan *plan) {
        ClusterState *t;
        CHECK(cluster_state_copy(s, &t) == 0);
        for (size_t i = 0; i < plan->n_moves; i++) {
                const BalanceMove *m = &plan->moves[i];
                NodeVmsCommand from = { .node = m->source }, to = { .node = m->destination };
                CHECK(from.vms = calloc(t->n_vms, sizeof(VmRecord)));
                CHECK(to.vms = calloc(t->n_vms, sizeof(VmRecord)));
                for (size_t j = 0; j < t->n_vms; j++) {
                        const VmRecord *v = &t->vms[j];
                        if (v->node == m->source)
                                copy_record(strcmp(v->name, m->vm) == 0 ? &to : &from, v);
                        else if (v->node == m->destination)
                                copy_record(&to, v);
                }
                Command c = { .type = COMMAND_NODE_VMS, .node_vms = from };
                CHECK(cluster_state_apply(t, m->source, &c) == 1);
                c.node_vms = to;
                CHECK(cluster_state_apply(t, m->destination, &c) == 1);
                node_vms_command_done(&from);
                node_vms_command_done(&to);
        }
        uint32_t score = balance_score(t, view);
        if (score != plan->final_score_permille)
                die("the plan says its %zu moves leave a score of %u, the cluster they leave has %u", plan->n_moves,
                    plan->final_score_permille, score);
        cluster_state_free(t);
}

static void run_scale(const Scale *sc, Result *res, bool check) {
        World w;
        BalanceParams params;
        BalancePlan plan;
        uint64_t t0;

        rng_state = opt_seed * 0x9E3779B97F4A7C15ULL + sc->nodes;
        world_init(&w, sc);
        uint32_t *members = calloc(sc->nodes, sizeof(uint32_t));
        CHECK(members);
        for (unsigned i = 0; i < sc->nodes; i++)
                members[i] = i + 1;
        MembershipView view = { .members = members, .n_members = sc->nodes, .quorate = true };

        t0 = cpu_ns();
        ClusterState *s = build(&w);
        res->ns[OP_BUILD] = (double) (cpu_ns() - t0);
        add_jobs(s, &w);

        t0 = cpu_ns();
        for (int i = 0; i < 10; i++)
                res->score = balance_score(s, &view);
        res->ns[OP_SCORE] = (double) (cpu_ns() - t0) / 10;

        balance_params_default(&params);
        t0 = cpu_ns();
        CHECK(balance_plan(s, &view, &params, &plan) == 0);
        res->ns[OP_PLAN] = (double) (cpu_ns() - t0);
        res->plan_moves = plan.n_moves;
        res->plan_final = plan.final_score_permille;
        res->plan_bytes = 0;
        for (size_t i = 0; i < plan.n_moves; i++)
                res->plan_bytes += plan.moves[i].memory;
        snprintf(res->why_not, sizeof(res->why_not), "%s", plan.why_not);
        balance_plan_done(&plan);

        params.max_moves = opt_long;
        params.target_permille = 0;
        t0 = cpu_ns();
        CHECK(balance_plan(s, &view, &params, &plan) == 0);
        res->ns[OP_PLAN_LONG] = (double) (cpu_ns() - t0);
        res->long_moves = plan.n_moves;
        res->long_final = plan.final_score_permille;
        if (check)
                verify(s, &view, &plan);
        balance_plan_done(&plan);

        cluster_state_free(s);
        free(members);
        world_free(&w);
}

static const char *fmt_ns(char *buf, size_t n, double v) {
        if (v >= 1e9)
                snprintf(buf, n, "%.2f s", v / 1e9);
        else if (v >= 1e6)
                snprintf(buf, n, "%.2f ms", v / 1e6);
        else
                snprintf(buf, n, "%.1f us", v / 1e3);
        return buf;
}

static void score_text(char buf[static 16], uint32_t permille) {
        snprintf(buf, 16, "%" PRIu32 ".%03" PRIu32, permille / 1000, permille % 1000);
}

static void report(const Scale *scales, const Result *res, const Result *best) {
        char a[32], b[32], c[16], d[16];

        printf("balance: the load-balancing planner (policies/balance.c) on a skewed cluster; CPU time of the thread,\n"
               "best of %u runs\n", opt_runs);
        for (int i = 0; i < 2; i++)
                printf("  %-8s %u nodes, %u VMs, %u jobs under way\n", scales[i].label, scales[i].nodes, scales[i].vms,
                       scales[i].jobs);
        printf("\n%-10s %12s %12s %9s %8s %14s %14s\n", "operation", "baseline", "target", "ratio", "exp",
               "/build (base)", "/build (tgt)");
        for (int op = 0; op < _OP_MAX; op++) {
                double r = best[1].ns[op] / best[0].ns[op];
                printf("%-10s %12s %12s %9.1f %8.2f %14.3f %14.3f\n", op_name[op], fmt_ns(a, sizeof(a), best[0].ns[op]),
                       fmt_ns(b, sizeof(b), best[1].ns[op]), r, log(r) / log(opt_factor),
                       best[0].ns[op] / best[0].ns[OP_BUILD], best[1].ns[op] / best[1].ns[OP_BUILD]);
        }
        printf("(ratio = target / baseline, %u times the nodes and the VMs; exp = log_%u(ratio): 1 linear, 2 quadratic;\n"
               " /build = the operation's time over the time to build the same state)\n\n", opt_factor, opt_factor);
        for (int i = 0; i < 2; i++) {
                score_text(c, res[i].score);
                score_text(d, res[i].plan_final);
                format_size(a, sizeof(a), res[i].plan_bytes);
                printf("%-8s score %s; plan (defaults): %zu moves (%s), score after %s%s%s%s\n", scales[i].label, c,
                       res[i].plan_moves, a, d, *res[i].why_not ? " (" : "", res[i].why_not,
                       *res[i].why_not ? ")" : "");
                score_text(d, res[i].long_final);
                printf("%-8s plan-long (up to %u moves, target 0): %zu moves, score after %s\n", "", opt_long,
                       res[i].long_moves, d);
        }
        printf("\ngoal: a plan at 64 nodes x 10,000 VMs under 100 ms: %s here (%s)\n",
               best[1].ns[OP_PLAN] < 100e6 ? "met" : "MISSED", fmt_ns(a, sizeof(a), best[1].ns[OP_PLAN]));
}

static void write_json(const char *path, const Scale *scales, const Result *res, const Result *best) {
        FILE *f = fopen(path, "we");
        if (!f)
                die("cannot write %s: %m", path);
        fprintf(f, "{\n  \"unit\": \"ns\",\n  \"factor\": %u,\n  \"runs\": %u,\n  \"scales\": {\n", opt_factor, opt_runs);
        for (int i = 0; i < 2; i++)
                fprintf(f, "    \"%s\": { \"nodes\": %u, \"vms\": %u, \"jobs\": %u, \"score\": %u, \"plan_moves\": %zu, "
                        "\"plan_final_score\": %u, \"long_moves\": %zu, \"long_final_score\": %u }%s\n",
                        scales[i].label, scales[i].nodes, scales[i].vms, scales[i].jobs, res[i].score,
                        res[i].plan_moves, res[i].plan_final, res[i].long_moves, res[i].long_final, i == 0 ? "," : "");
        fprintf(f, "  },\n  \"ops\": {\n");
        for (int op = 0; op < _OP_MAX; op++)
                fprintf(f, "    \"%s\": { \"baseline\": %.0f, \"target\": %.0f, \"ratio\": %.3f, "
                        "\"to_build_baseline\": %.4f, \"to_build_target\": %.4f }%s\n", op_name[op], best[0].ns[op],
                        best[1].ns[op], best[1].ns[op] / best[0].ns[op], best[0].ns[op] / best[0].ns[OP_BUILD],
                        best[1].ns[op] / best[1].ns[OP_BUILD], op + 1 < _OP_MAX ? "," : "");
        fprintf(f, "  }\n}\n");
        if (fclose(f) != 0)
                die("cannot write %s: %m", path);
}

static void usage(FILE *f) {
        fprintf(f,
                "usage: balance [--nodes N] [--vms N] [--jobs N] [--factor F] [--runs R] [--long-moves N]\n"
                "               [--seed S] [--json FILE]\n"
                "Times balance_plan() on a skewed cluster (default 64 nodes, 10000 VMs, 100 jobs) against\n"
                "the time to build that state, and at a baseline F times smaller (default 8).\n");
}

int main(int argc, char **argv) {
        enum { ARG_NODES = 0x100, ARG_VMS, ARG_JOBS, ARG_FACTOR, ARG_RUNS, ARG_LONG, ARG_SEED, ARG_JSON };
        static const struct option options[] = {
                { "nodes", required_argument, NULL, ARG_NODES },
                { "vms", required_argument, NULL, ARG_VMS },
                { "jobs", required_argument, NULL, ARG_JOBS },
                { "factor", required_argument, NULL, ARG_FACTOR },
                { "runs", required_argument, NULL, ARG_RUNS },
                { "long-moves", required_argument, NULL, ARG_LONG },
                { "seed", required_argument, NULL, ARG_SEED },
                { "json", required_argument, NULL, ARG_JSON },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                unsigned long v = 0;
                if (c >= ARG_NODES && c <= ARG_SEED) {
                        char *end;
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || *end || !*optarg || v > 10000000 || (v == 0 && c != ARG_JOBS))
                                die("invalid number \"%s\"", optarg);
                }
                switch (c) {
                case ARG_NODES: opt_nodes = (unsigned) v; break;
                case ARG_VMS: opt_vms = (unsigned) v; break;
                case ARG_JOBS: opt_jobs = (unsigned) v; break;
                case ARG_FACTOR: opt_factor = (unsigned) v; break;
                case ARG_RUNS: opt_runs = (unsigned) v; break;
                case ARG_LONG: opt_long = (unsigned) v; break;
                case ARG_SEED: opt_seed = v; break;
                case ARG_JSON: opt_json = optarg; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                usage(stderr);
                return 2;
        }
        if (opt_factor < 2 || opt_nodes / opt_factor < 2 || opt_vms / opt_factor < opt_nodes / opt_factor ||
            opt_jobs > opt_vms / 2)
                die("sizes too small for factor %u (the baseline needs >= 2 nodes and a VM per node)", opt_factor);
        if (opt_nodes > STATE_NODES_MAX || opt_vms > STATE_VMS_MAX)
                die("beyond the state's limits (%u nodes, %u VMs)", STATE_NODES_MAX, STATE_VMS_MAX);

        const Scale scales[2] = {
                { "baseline", opt_nodes / opt_factor, opt_vms / opt_factor, opt_jobs / opt_factor },
                { "target", opt_nodes, opt_vms, opt_jobs },
        };
        Result res[2], best[2], cur;
        for (int i = 0; i < 2; i++)
                for (int op = 0; op < _OP_MAX; op++)
                        best[i].ns[op] = INFINITY;
        for (unsigned run = 0; run < opt_runs; run++)
                for (int i = 0; i < 2; i++) {
                        run_scale(&scales[i], &cur, run == 0);
                        res[i] = cur;
                        for (int op = 0; op < _OP_MAX; op++)
                                best[i].ns[op] = MIN(best[i].ns[op], cur.ns[op]);
                }
        report(scales, res, best);
        if (opt_json)
                write_json(opt_json, scales, res, best);
        return 0;
}
