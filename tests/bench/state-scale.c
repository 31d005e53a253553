/* SPDX-License-Identifier: GPL-2.0-or-later */

/* state-scale: how the pure replicated-state code scales with the cluster.
 *
 * In one process, with the same code ferryd runs at every delivery
 * (cluster_state_apply() and friends, linked from ferry-core), it builds a
 * cluster twice in the same run: the baseline (by default 8 nodes, 1,250
 * VMs, 125 jobs, 125 pre-flights) and the target, FACTOR times bigger in
 * every dimension (64 nodes, 10,000 VMs, 1,000 jobs, 1,000 pre-flights).
 * Each operation is timed at both, interleaved, best of --runs; what counts
 * is the ratio target/baseline, not the absolute figures (the machines are
 * shared and noisy). A ratio of FACTOR is linear in the size of the
 * problem; FACTOR^2 quadratic. "per item" is ratio / FACTOR: the cost of
 * one VM, job or pre-flight at the target relative to the baseline (1 =
 * linear).
 *
 * Operations, in the order they run on one state:
 *   inventory-first   every node publishes its VM list into an empty state
 *                     (COMMAND_NODE_VMS, as after a cold start)
 *   inventory-round   every node republishes its list with new CPU-use
 *                     figures (what happens every inventory_interval)
 *   jobs-submit       JOBS migrations of distinct VMs to random nodes
 *                     (COMMAND_JOB_SUBMIT; each runs the slot scheduler)
 *   preflight-auto    PREFLIGHTS pre-flight checks with no destination
 *                     given (choose the best), while the jobs are queued
 *   drain-plan        drain_plan() of one node (policies/drain.c), while
 *                     the jobs are queued; averaged over DRAIN_PLANS nodes.
 *                     The work grows with VMs per node x nodes, so the
 *                     baseline's node has as many VMs as the target's
 *   jobs-run          one JOB_UPDATE and one JOB_FINISH (completed) per
 *                     job, finishing a random active job each time, until
 *                     all completed (each finish runs the scheduler)
 *   encode / decode / digest
 *                     the whole final state (VMs and the finished jobs)
 *
 * Also reports the encoded state's size: it is what SYNC_STATE carries in
 * one CPG message whenever members' digests disagree after a membership
 * change.
 *
 * --callgrind re-runs itself under `valgrind --tool=callgrind` and reports
 * instruction counts instead of CPU time: slow (minutes), but noise-free. */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster-state.h"
#include "drain.h"
#include "macro.h"
#include "message.h"
#include "preflight.h"

#if HAVE_CALLGRIND_H
#include <valgrind/callgrind.h>
#endif

/* What libcpg sends in one piece: cpg_max_atomic_msgsize_get() on corosync
 * 3.1.7 (its 1 MiB IPC request buffer less the request header). Larger
 * frames go out in fragments, each a synchronous round trip to corosync. */
#define CPG_ATOMIC_MAX 1047552U
/* Nodes whose drain is planned (the average is reported). */
#define DRAIN_PLANS 4U

/* ---- options and small helpers ------------------------------------------ */

static unsigned opt_nodes = 64, opt_vms = 10000, opt_jobs = 1000, opt_preflights = 1000, opt_factor = 8;
static unsigned opt_runs = 3;
static uint64_t opt_seed = 1;
static const char *opt_json;
static bool opt_callgrind;       /* parent: run the child under callgrind */
static bool in_callgrind;        /* child: toggle collection, dump per op */
static bool opt_verbose;

static void die(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        fputs("state-scale: ", stderr);
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

/* ---- operations and what is measured --------------------------------------- */

typedef enum Op {
        OP_INVENTORY_FIRST,
        OP_INVENTORY_ROUND,
        OP_JOBS_SUBMIT,
        OP_PREFLIGHT_AUTO,
        OP_DRAIN_PLAN,
        OP_JOBS_RUN,
        OP_ENCODE,
        OP_DECODE,
        OP_DIGEST,
        _OP_MAX,
} Op;

static const struct {
        const char *name;
        const char *what;
        const char *complexity;         /* of the code as it is, by reading it */
        const char *ideal;
} op_info[_OP_MAX] = {
        [OP_INVENTORY_FIRST] = { "inventory-first", "every node publishes its VM list (empty state)",
                                 "per apply O(k^2 + N log N); all: O(M (k^2 + N log N))", "O(N log N)" },
        [OP_INVENTORY_ROUND] = { "inventory-round", "every node republishes its list (changed CPU use)",
                                 "per apply O(k^2 + N log N); all: O(M (k^2 + N log N))", "O(N log N)" },
        [OP_JOBS_SUBMIT] = { "jobs-submit", "submit JOBS migrations (scheduler runs on each)",
                             "per submit O(J + Q J) (active-job scan + scheduler); all: O(J^3)", "O(J log J)" },
        [OP_PREFLIGHT_AUTO] = { "preflight-auto", "PREFLIGHTS pre-flights, best destination chosen",
                                "per call O(M (M + J)); all: O(P M (M + J))", "O(P M)" },
        [OP_DRAIN_PLAN] = { "drain-plan", "plan the drain of one node (k = VMs/nodes), queue full",
                             "per plan O(k M (M + J)); ideal O(k M)", "O(k M)" },
        [OP_JOBS_RUN] = { "jobs-run", "update + finish every job, random order",
                          "per finish O(Q J) (scheduler) + O(J) (prune); all: O(J^3)", "O(J log J)" },
        [OP_ENCODE] = { "encode", "encode the whole state", "O(N + J)", "O(N + J)" },
        [OP_DECODE] = { "decode", "decode the whole state", "O(N + J)", "O(N + J)" },
        [OP_DIGEST] = { "digest", "SHA-256 of the canonical encoding", "O(N + J)", "O(N + J)" },
};

typedef struct Scale {
        const char *label;
        unsigned nodes, vms, jobs, preflights;
} Scale;

typedef struct Result {
        double value[_OP_MAX];          /* ns of CPU time, or instructions */
        size_t size_vms;                /* encoded state after the inventory */
        size_t size_final;              /* ... after the jobs ran */
        size_t size_worst_logs;         /* ... with every finished job's log full */
        unsigned preflight_found;       /* pre-flights that found a destination */
        size_t drain_moves, drain_entries;
        unsigned jobs_completed;
        unsigned max_active;            /* most slots held at once */
} Result;

/* The meter of one operation: CPU time, and callgrind's collection toggled
 * on only inside, so harness work between two applies is not counted. */
static uint64_t meter_t0, meter_acc;
static void meter_reset(void) {
        meter_acc = 0;
}
static void meter_start(void) {
#if HAVE_CALLGRIND_H
        if (in_callgrind)
                CALLGRIND_TOGGLE_COLLECT;
#endif
        meter_t0 = cpu_ns();
}
static void meter_stop(void) {
        meter_acc += cpu_ns() - meter_t0;
#if HAVE_CALLGRIND_H
        if (in_callgrind)
                CALLGRIND_TOGGLE_COLLECT;
#endif
}
static void meter_record(Result *res, const Scale *sc, Op op, unsigned reps) {
        res->value[op] = (double) meter_acc / reps;
#if HAVE_CALLGRIND_H
        if (in_callgrind) {
                char label[128];
                snprintf(label, sizeof(label), "state-scale %s %s %u", sc->label, op_info[op].name, reps);
                CALLGRIND_DUMP_STATS_AT(label);
        }
#else
        (void) sc;
#endif
}

/* ---- the cluster --------------------------------------------------------------- */

/* A typical x86-64 host's flags (an EPYC's /proc/cpuinfo), sorted. */
static const char cpu_flags[] =
        "3dnowext 3dnowprefetch abm adx aes aperfmperf apic arat avic avx avx2 bmi1 bmi2 bpext "
        "cat_l3 cdp_l3 clflush clflushopt clwb clzero cmov cmp_legacy constant_tsc cpb cpuid "
        "cqm cqm_llc cqm_mbm_local cqm_mbm_total cqm_occup_llc cr8_legacy cx16 cx8 de "
        "decodeassists erms extapic extd_apicid f16c flushbyasid fma fpu fsgsbase fxsr fxsr_opt "
        "ht hw_pstate ibpb ibrs ibs invpcid irperf lahf_lm lbrv lm mba mca mce misalignsse mmx "
        "mmxext monitor movbe msr mtrr mwaitx nonstop_tsc nopl npt nrip_save nx ospke osvw "
        "overflow_recov pae pat pausefilter pcid pclmulqdq pdpe1gb perfctr_core perfctr_llc "
        "perfctr_nb pfthreshold pge pku pni popcnt pse pse36 rapl rdpid rdpru rdrand rdseed "
        "rdt_a rdtscp rep_good sep sha_ni skinit smap smca sme smep ssbd sse sse2 sse4_1 sse4_2 "
        "sse4a ssse3 stibp succor svm svm_lock syscall tce topoext tsc tsc_scale umip "
        "v_spec_ctrl v_vmsave_vmload vaes vgif vmcb_clean vme vmmcall vpclmulqdq wbnoinvd wdt "
        "x2apic xgetbv1 xsave xsavec xsaveerptr xsaveopt xsaves xtopology";

static const char *const tenants[] = { "prod-web", "prod-db", "staging", "ci-runner", "analytics", "mail", "vdi" };

typedef struct World {
        const Scale *sc;
        ClusterState *s;
        NodeVmsCommand *lists;          /* per node, index = id - 1 */
        char **names;                   /* VM g's name; VM g starts on node g % M + 1 */
        char **uuids;
} World;

static void world_free(World *w) {
        for (unsigned i = 0; i < w->sc->nodes; i++)
                free(w->lists[i].vms);   /* names and uuids are in names[]/uuids[] */
        free(w->lists);
        for (unsigned g = 0; g < w->sc->vms; g++) {
                free(w->names[g]);
                free(w->uuids[g]);
        }
        free(w->names);
        free(w->uuids);
        cluster_state_free(w->s);
}

static void node_facts_for(uint32_t id, NodeFacts *f, char *name, char *uri, char *addr) {
        sprintf(name, "hv%03u.example.net", id);
        sprintf(uri, "qemu+tcp://10.40.%u.%u/system", id / 250, id % 250 + 1);
        sprintf(addr, "10.41.%u.%u", id / 250, id % 250 + 1);
        *f = (NodeFacts) {
                .name = name,
                .daemon_version = (char *) "0.1.0",
                .protocol_version = 1,
                .cpu_vendor = (char *) "AuthenticAMD",
                .cpu_model = (char *) "AMD EPYC 7713 64-Core Processor",
                .cpu_features = (char *) cpu_flags,
                .cpus = 128,
                .memory_total = UINT64_C(1) << 40,
                .memory_free = UINT64_C(512) << 30,
                .memory_reserved = UINT64_C(2) << 30,
                .hypervisor_name = (char *) "QEMU",
                .hypervisor_version = (char *) "7.2.0",
                .updated_at = UINT64_C(1700000000000000) + id,
                .backend_uri = uri,
                .migration_address = addr,
                .max_outgoing = 2,
                .max_incoming = 2,
                .max_cluster = 0,
        };
}

/* The nodes and their facts (not timed), and every node's VM list, ready
 * to be applied. */
static void world_init(World *w, const Scale *sc) {
        *w = (World) { .sc = sc };
        CHECK(w->s = cluster_state_new());
        for (uint32_t id = 1; id <= sc->nodes; id++) {
                char name[64], uri[64], addr[64];
                Command c = { .type = COMMAND_NODE_FACTS };
                c.node_facts.node = id;
                node_facts_for(id, &c.node_facts.facts, name, uri, addr);
                CHECK(cluster_state_apply(w->s, id, &c) == 1);
        }
        CHECK(w->lists = calloc(sc->nodes, sizeof(NodeVmsCommand)));
        CHECK(w->names = calloc(sc->vms, sizeof(char *)));
        CHECK(w->uuids = calloc(sc->vms, sizeof(char *)));
        for (unsigned i = 0; i < sc->nodes; i++) {
                unsigned k = sc->vms / sc->nodes + (i < sc->vms % sc->nodes);
                w->lists[i].node = i + 1;
                CHECK(k == 0 || (w->lists[i].vms = calloc(k, sizeof(VmRecord))));
        }
        for (unsigned g = 0; g < sc->vms; g++) {
                unsigned node = g % sc->nodes;
                NodeVmsCommand *l = &w->lists[node];
                uint64_t u1 = rnd(), u2 = rnd();
                CHECK(asprintf(&w->names[g], "%s-%05u", tenants[g % ELEMENTSOF(tenants)], g) > 0);
                CHECK(asprintf(&w->uuids[g], "%08x-%04x-4%03x-a%03x-%012" PRIx64, (unsigned) u1,
                               (unsigned) (u1 >> 32) & 0xffff, (unsigned) (u1 >> 48) & 0xfff,
                               (unsigned) u2 & 0xfff, (uint64_t) ((u2 >> 16) & 0xffffffffffffULL)) > 0);
                l->vms[l->n_vms++] = (VmRecord) {
                        .name = w->names[g],
                        .uuid = w->uuids[g],
                        .state = VM_RUNNING,
                        .vcpus = 1 + rnd_below(8),
                        .memory = (UINT64_C(1) + rnd_below(8)) << 30,
                        .cpu_use_permille = rnd_below(1000),
                        .dirty_rate = (uint64_t) rnd_below(64) << 20,
                };
        }
}

static void apply_inventory(World *w) {
        for (unsigned i = 0; i < w->sc->nodes; i++) {
                Command c = { .type = COMMAND_NODE_VMS, .node_vms = w->lists[i] };
                meter_start();
                int k = cluster_state_apply(w->s, i + 1, &c);
                meter_stop();
                CHECK(k == 1);
        }
}

static size_t encoded_size(const ClusterState *s) {
        Writer wr;
        writer_init(&wr);
        CHECK(cluster_state_encode(s, &wr) >= 0);
        size_t n = wr.size;
        writer_done(&wr);
        return n;
}

/* Job ids that hold a slot right now (harness, not timed). */
static size_t active_jobs(const ClusterState *s, uint64_t *ids) {
        size_t n = 0;
        for (size_t i = 0; i < s->n_jobs; i++)
                if (job_state_holds_slot(s->jobs[i].state))
                        ids[n++] = s->jobs[i].id;
        return n;
}

static void run_scale(const Scale *sc, Result *res) {
        World w;
        *res = (Result) {};
        rng_state = opt_seed * 0x9E3779B97F4A7C15ULL + sc->nodes;
        world_init(&w, sc);

        /* Inventory, first publication. */
        meter_reset();
        apply_inventory(&w);
        meter_record(res, sc, OP_INVENTORY_FIRST, 1);
        CHECK(w.s->n_vms == sc->vms);

        /* A republication round: CPU use changed everywhere. */
        for (unsigned i = 0; i < sc->nodes; i++)
                for (size_t v = 0; v < w.lists[i].n_vms; v++)
                        w.lists[i].vms[v].cpu_use_permille = (w.lists[i].vms[v].cpu_use_permille + 1) % 1000;
        meter_reset();
        apply_inventory(&w);
        meter_record(res, sc, OP_INVENTORY_ROUND, 1);
        res->size_vms = encoded_size(w.s);

        /* Jobs: distinct VMs (partial Fisher-Yates), random destinations. */
        unsigned *perm = calloc(sc->vms, sizeof(unsigned));
        uint64_t *ids = calloc(sc->jobs + 1, sizeof(uint64_t));
        uint32_t *dest = calloc(sc->vms, sizeof(uint32_t));
        CHECK(perm && ids && dest && sc->jobs <= sc->vms && sc->nodes >= 2);
        for (unsigned g = 0; g < sc->vms; g++)
                perm[g] = g;
        meter_reset();
        for (unsigned j = 0; j < sc->jobs; j++) {
                unsigned pick = j + rnd_below(sc->vms - j), g;
                g = perm[pick], perm[pick] = perm[j], perm[j] = g;
                uint32_t src = g % sc->nodes + 1, dst = rnd_below(sc->nodes - 1) + 1;
                if (dst >= src)
                        dst++;
                dest[g] = dst;
                Command c = { .type = COMMAND_JOB_SUBMIT };
                c.job_submit = (JobSubmitCommand) { .vm = w.names[g], .source = src, .destination = dst,
                                                    .created_at = UINT64_C(1700000000000000) + j };
                uint32_t sender = rnd_below(sc->nodes) + 1;
                meter_start();
                int k = cluster_state_apply(w.s, sender, &c);
                meter_stop();
                CHECK(k == 1);
        }
        meter_record(res, sc, OP_JOBS_SUBMIT, 1);

        /* Pre-flights with the queue full: every node is a candidate. */
        uint32_t *members = calloc(sc->nodes, sizeof(uint32_t));
        CHECK(members);
        for (unsigned i = 0; i < sc->nodes; i++)
                members[i] = i + 1;
        MembershipView view = { .members = members, .n_members = sc->nodes, .quorate = true };
        PreflightResult *pr = malloc(sizeof(PreflightResult));
        CHECK(pr);
        meter_reset();
        for (unsigned p = 0; p < sc->preflights; p++) {
                const char *vm = w.names[rnd_below(sc->vms)];
                meter_start();
                preflight_run(w.s, &view, vm, 0, pr);
                meter_stop();
                if (pr->destination != 0)
                        res->preflight_found++;
        }
        meter_record(res, sc, OP_PREFLIGHT_AUTO, 1);

        /* Drain plans of a few nodes, as ferryd computes one for every
         * draining node at every commit (the node objects' fingerprints). */
        unsigned plans = MIN(DRAIN_PLANS, sc->nodes);
        meter_reset();
        for (unsigned n = 1; n <= plans; n++) {
                DrainPlan plan;
                meter_start();
                int k = drain_plan(w.s, &view, n, &plan);
                meter_stop();
                CHECK(k == 0);
                res->drain_moves += plan.n_move;
                res->drain_entries += plan.n_entries;
                drain_plan_done(&plan);
        }
        meter_record(res, sc, OP_DRAIN_PLAN, plans);

        /* Run every job to completion, finishing a random active one. */
        meter_reset();
        for (;;) {
                size_t n = active_jobs(w.s, ids);
                if (n == 0)
                        break;
                if (n > res->max_active)
                        res->max_active = (unsigned) n;
                const JobRecord *j = state_find_job(w.s, ids[rnd_below((unsigned) n)]);
                uint64_t id = j->id;
                uint32_t src = j->source;
                Command u = { .type = COMMAND_JOB_UPDATE };
                u.job_update = (JobUpdateCommand) { .id = id, .started_at = UINT64_C(1700000001000000) + id,
                                                    .log_line = (char *) "" };
                u.job_update.progress = (JobProgress) { .phase = JOB_PHASE_PRECOPY, .memory_total = UINT64_C(4) << 30,
                                                        .memory_processed = UINT64_C(1) << 30, .iteration = 1 };
                Command f = { .type = COMMAND_JOB_FINISH };
                f.job_finish = (JobFinishCommand) { .id = id, .result = JOB_COMPLETED,
                                                    .started_at = UINT64_C(1700000001000000) + id,
                                                    .finished_at = UINT64_C(1700000009000000) + id,
                                                    .error = (char *) "",
                                                    .log_line = (char *) "completed: downtime 42 ms, 3 rounds" };
                f.job_finish.progress = (JobProgress) { .phase = JOB_PHASE_DONE, .downtime_ms = 42, .iteration = 3 };
                meter_start();
                int k1 = cluster_state_apply(w.s, src, &u);
                int k2 = cluster_state_apply(w.s, src, &f);
                meter_stop();
                CHECK(k1 == 1 && k2 == 1);
                res->jobs_completed++;
        }
        meter_record(res, sc, OP_JOBS_RUN, 1);
        CHECK(res->jobs_completed == sc->jobs);
        /* Every VM moved where its job took it, and nothing is left queued. */
        for (unsigned j = 0; j < sc->jobs; j++) {
                unsigned g = perm[j];
                CHECK(state_find_vm(w.s, w.names[g], dest[g]));
                CHECK(!state_find_active_job(w.s, w.names[g]));
        }

        /* Encode, decode, digest of the final state; short, so repeated. */
        const unsigned reps = 5;
        Writer wr;
        meter_reset();
        for (unsigned r = 0; r < reps; r++) {
                writer_init(&wr);
                meter_start();
                int k = cluster_state_encode(w.s, &wr);
                meter_stop();
                CHECK(k >= 0);
                if (r + 1 < reps)
                        writer_done(&wr);
        }
        meter_record(res, sc, OP_ENCODE, reps);
        res->size_final = wr.size;
        meter_reset();
        for (unsigned r = 0; r < reps; r++) {
                Reader rd;
                ClusterState *copy = NULL;
                reader_init(&rd, wr.data, wr.size);
                meter_start();
                int k = cluster_state_decode(&rd, &copy);
                meter_stop();
                CHECK(k == 0);
                cluster_state_free(copy);
        }
        meter_record(res, sc, OP_DECODE, reps);
        writer_done(&wr);
        char digest[STATE_DIGEST_HEX_SIZE];
        meter_reset();
        for (unsigned r = 0; r < reps; r++) {
                meter_start();
                cluster_state_digest(w.s, digest);
                meter_stop();
        }
        meter_record(res, sc, OP_DIGEST, reps);

        /* Worst case of the finished-job history: every kept job's log at
         * its cap (JOB_LOG_MAX) and an error message. Not timed. */
        for (size_t i = 0; i < w.s->n_jobs; i++) {
                JobRecord *j = &w.s->jobs[i];
                free(j->log);
                CHECK(j->log = malloc(JOB_LOG_MAX + 1));
                memset(j->log, 'x', JOB_LOG_MAX);
                j->log[JOB_LOG_MAX] = 0;
                free(j->error);
                CHECK(j->error = strdup("migration failed: internal error: qemu unexpectedly closed the monitor "
                                        "(vm state 'running'), see the destination's log"));
        }
        res->size_worst_logs = encoded_size(w.s);

        free(pr);
        free(members);
        free(perm);
        free(ids);
        free(dest);
        world_free(&w);
}

/* ---- callgrind: run ourselves under valgrind, read the dumps ------------------ */

static int scale_index(const Scale *scales, const char *label) {
        for (int i = 0; i < 2; i++)
                if (strcmp(scales[i].label, label) == 0)
                        return i;
        return -1;
}

static void run_under_callgrind(char **argv, const Scale *scales, Result *res) {
        char dir[] = "/tmp/state-scale-cg.XXXXXX", outopt[128], self[4096];
        ssize_t n;

        CHECK(mkdtemp(dir));
        n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        CHECK(n > 0);
        self[n] = 0;
        snprintf(outopt, sizeof(outopt), "--callgrind-out-file=%s/cg.out", dir);

        char nodes[32], vms[32], jobs[32], pfs[32], factor[32], seed[32];
        snprintf(nodes, sizeof(nodes), "%u", opt_nodes);
        snprintf(vms, sizeof(vms), "%u", opt_vms);
        snprintf(jobs, sizeof(jobs), "%u", opt_jobs);
        snprintf(pfs, sizeof(pfs), "%u", opt_preflights);
        snprintf(factor, sizeof(factor), "%u", opt_factor);
        snprintf(seed, sizeof(seed), "%" PRIu64, opt_seed);
        char *args[] = { (char *) "valgrind", (char *) "-q", (char *) "--tool=callgrind", (char *) "--collect-atstart=no",
                         outopt, self, (char *) "--callgrind-child", (char *) "--nodes", nodes,
                         (char *) "--vms", vms, (char *) "--jobs", jobs, (char *) "--preflights", pfs,
                         (char *) "--factor", factor, (char *) "--seed", seed, NULL };
        (void) argv;
        fprintf(stderr, "state-scale: running under callgrind (this takes minutes): valgrind --tool=callgrind ...\n");
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
                int devnull = open("/dev/null", O_WRONLY);
                if (devnull >= 0)
                        dup2(devnull, STDOUT_FILENO);
                execvp("valgrind", args);
                _exit(127);
        }
        int status;
        CHECK(waitpid(pid, &status, 0) == pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                die("valgrind failed (exit %d): is valgrind installed?", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

        /* Dumps are cg.out.1, cg.out.2, ...; each names its trigger. */
        unsigned found = 0;
        for (unsigned i = 1; i < 1000; i++) {
                char path[256], line[1024], label[256] = "";
                double total = -1;
                snprintf(path, sizeof(path), "%s/cg.out.%u", dir, i);
                FILE *f = fopen(path, "re");
                if (!f)
                        break;
                while (fgets(line, sizeof(line), f)) {
                        const char *p;
                        if ((p = strstr(line, "Client Request: ")))
                                snprintf(label, sizeof(label), "%s", p + strlen("Client Request: "));
                        else if (strncmp(line, "totals: ", 8) == 0 || (total < 0 && strncmp(line, "summary: ", 9) == 0))
                                total = strtod(strchr(line, ' ') + 1, NULL);
                }
                fclose(f);
                unlink(path);
                char sl[64], opname[64];
                unsigned reps;
                if (sscanf(label, "state-scale %63s %63s %u", sl, opname, &reps) != 3 || total < 0)
                        continue;
                int si = scale_index(scales, sl);
                for (int op = 0; op < _OP_MAX && si >= 0; op++)
                        if (strcmp(op_info[op].name, opname) == 0) {
                                res[si].value[op] = total / reps;
                                found++;
                        }
        }
        /* The sizes and counts come from the child's JSON. */
        char path[256];
        snprintf(path, sizeof(path), "%s/cg.out", dir);
        unlink(path);
        rmdir(dir);
        if (found != 2 * _OP_MAX)
                die("found %u of %u callgrind dumps", found, 2 * _OP_MAX);
}

/* ---- report -------------------------------------------------------------------- */

static const char *fmt_value(char *buf, size_t n, double v) {
        if (opt_callgrind) {
                if (v >= 1e9)
                        snprintf(buf, n, "%.2f G Ir", v / 1e9);
                else if (v >= 1e6)
                        snprintf(buf, n, "%.2f M Ir", v / 1e6);
                else
                        snprintf(buf, n, "%.1f k Ir", v / 1e3);
        } else if (v >= 1e9)
                snprintf(buf, n, "%.2f s", v / 1e9);
        else if (v >= 1e6)
                snprintf(buf, n, "%.2f ms", v / 1e6);
        else
                snprintf(buf, n, "%.1f us", v / 1e3);
        return buf;
}

static const char *verdict(double per_item) {
        if (per_item <= 1.6)
                return "linear";
        if (per_item <= 2.5)
                return "~n log n";
        return "SUPERLINEAR";
}

static void report(const Scale *scales, const Result *res, const Result *best) {
        const double F = opt_factor;
        char a[32], b[32];

        printf("state-scale: %s, the pure replicated-state code (ferry-core) in one process\n",
               opt_callgrind ? "instructions (callgrind)" : "CPU time of the thread, best of each run");
        printf("  baseline: %u nodes, %u VMs, %u jobs, %u pre-flights\n", scales[0].nodes, scales[0].vms,
               scales[0].jobs, scales[0].preflights);
        printf("  target:   %u nodes, %u VMs, %u jobs, %u pre-flights (x%u in every dimension)\n", scales[1].nodes,
               scales[1].vms, scales[1].jobs, scales[1].preflights, opt_factor);
        if (!opt_callgrind)
                printf("  runs: %u (interleaved baseline/target; the minimum of each is reported)\n", opt_runs);
        printf("  ratio = target / baseline; linear in the problem size = %u; per item = ratio / %u (1 = linear)\n\n",
               opt_factor, opt_factor);
        printf("%-16s %12s %12s %9s %9s %6s  %-12s %s\n", "operation", "baseline", "target", "ratio", "per item",
               "exp", "verdict", "complexity (from the code)");
        for (int op = 0; op < _OP_MAX; op++) {
                double r = best[1].value[op] / best[0].value[op];
                printf("%-16s %12s %12s %9.1f %9.2f %6.2f  %-12s %s\n", op_info[op].name,
                       fmt_value(a, sizeof(a), best[0].value[op]), fmt_value(b, sizeof(b), best[1].value[op]), r,
                       r / F, log(r) / log(F), verdict(r / F), op_info[op].complexity);
        }
        printf("\n(exp: ratio = %u^exp; 1 linear, 2 quadratic, 3 cubic in the problem size)\n", opt_factor);

        printf("\nper commit, at the target (what every member pays at each delivery):\n");
        printf("  one inventory publication (apply):  %s\n",
               fmt_value(a, sizeof(a), best[1].value[OP_INVENTORY_ROUND] / scales[1].nodes));
        printf("  one job submit (apply):             %s\n",
               fmt_value(a, sizeof(a), best[1].value[OP_JOBS_SUBMIT] / scales[1].jobs));
        printf("  one job update + finish (apply):    %s\n",
               fmt_value(a, sizeof(a), best[1].value[OP_JOBS_RUN] / scales[1].jobs));
        printf("  digest (replica.c refreshes it after every commit): %s\n",
               fmt_value(a, sizeof(a), best[1].value[OP_DIGEST]));
        printf("  one pre-flight with automatic destination (D-Bus, local): %s\n",
               fmt_value(a, sizeof(a), best[1].value[OP_PREFLIGHT_AUTO] / scales[1].preflights));
        printf("  drain plan of one node (every member, every commit, per draining node): %s\n",
               fmt_value(a, sizeof(a), best[1].value[OP_DRAIN_PLAN]));

        printf("\nencoded state (SYNC_STATE payload; frame = +%u bytes of header):\n", FERRY_MESSAGE_HEADER_SIZE);
        for (int i = 0; i < 2; i++) {
                printf("  %-8s VMs only %9zu B (%.0f B/VM); + %u finished jobs %9zu B; worst case (full logs) %9zu B\n",
                       scales[i].label, res[i].size_vms, (double) res[i].size_vms / scales[i].vms, scales[i].jobs,
                       res[i].size_final, res[i].size_worst_logs);
        }
        printf("  frame cap FERRY_MESSAGE_MAX = %u B: the target's worst case fills %.0f%% of it\n", FERRY_MESSAGE_MAX,
               100.0 * (res[1].size_worst_logs + FERRY_MESSAGE_HEADER_SIZE) / FERRY_MESSAGE_MAX);
        printf("  libcpg's atomic message size (corosync 3.1.7) = %u B: at the target the frame is %s "
               "(%.0f%%), in the worst case %s (%.0f%%)\n", CPG_ATOMIC_MAX,
               res[1].size_final + FERRY_MESSAGE_HEADER_SIZE > CPG_ATOMIC_MAX ? "FRAGMENTED" : "atomic",
               100.0 * (res[1].size_final + FERRY_MESSAGE_HEADER_SIZE) / CPG_ATOMIC_MAX,
               res[1].size_worst_logs + FERRY_MESSAGE_HEADER_SIZE > CPG_ATOMIC_MAX ? "FRAGMENTED" : "atomic",
               100.0 * (res[1].size_worst_logs + FERRY_MESSAGE_HEADER_SIZE) / CPG_ATOMIC_MAX);
        double per_vm = (double) (res[1].size_vms - res[0].size_vms) / (scales[1].vms - scales[0].vms);
        printf("  at %.0f B per VM the frame cap is reached at ~%.0fk VMs (~%.0fk with a worst-case job history); "
               "STATE_VMS_MAX is %uk\n", per_vm, FERRY_MESSAGE_MAX / per_vm / 1000,
               (FERRY_MESSAGE_MAX - (double) (res[1].size_worst_logs - res[1].size_vms)) / per_vm / 1000,
               STATE_VMS_MAX / 1000);
        printf("\nchecks: %u/%u jobs completed at the target, at most %u slots held at once; %u/%u pre-flights found a destination;"
               " drain plans: %zu of %zu VMs placed\n",
               res[1].jobs_completed, scales[1].jobs, res[1].max_active, res[1].preflight_found, scales[1].preflights,
               res[1].drain_moves, res[1].drain_entries);
}

static void write_json(const char *path, const Scale *scales, const Result *res, const Result *best) {
        FILE *f = fopen(path, "we");
        if (!f)
                die("cannot write %s: %m", path);
        fprintf(f, "{\n  \"unit\": \"%s\",\n  \"factor\": %u,\n  \"runs\": %u,\n  \"scales\": {\n",
                opt_callgrind ? "instructions" : "ns", opt_factor, opt_callgrind ? 1 : opt_runs);
        for (int i = 0; i < 2; i++)
                fprintf(f, "    \"%s\": { \"nodes\": %u, \"vms\": %u, \"jobs\": %u, \"preflights\": %u, "
                        "\"state_bytes_vms\": %zu, \"state_bytes_final\": %zu, \"state_bytes_worst_logs\": %zu }%s\n",
                        scales[i].label, scales[i].nodes, scales[i].vms, scales[i].jobs, scales[i].preflights,
                        res[i].size_vms, res[i].size_final, res[i].size_worst_logs, i == 0 ? "," : "");
        fprintf(f, "  },\n  \"frame_max\": %u,\n  \"cpg_atomic_max\": %u,\n  \"ops\": {\n", FERRY_MESSAGE_MAX,
                CPG_ATOMIC_MAX);
        for (int op = 0; op < _OP_MAX; op++) {
                double r = best[1].value[op] / best[0].value[op];
                fprintf(f, "    \"%s\": { \"baseline\": %.0f, \"target\": %.0f, \"ratio\": %.3f, \"per_item\": %.3f, "
                        "\"exponent\": %.3f, \"complexity\": \"%s\" }%s\n",
                        op_info[op].name, best[0].value[op], best[1].value[op], r, r / opt_factor,
                        log(r) / log(opt_factor), op_info[op].complexity, op + 1 < _OP_MAX ? "," : "");
        }
        fprintf(f, "  }\n}\n");
        if (fclose(f) != 0)
                die("cannot write %s: %m", path);
}

static void usage(FILE *f) {
        fprintf(f,
                "usage: state-scale [--nodes N] [--vms N] [--jobs N] [--preflights N] [--factor F]\n"
                "                   [--runs R] [--seed S] [--json FILE] [--callgrind] [--verbose]\n"
                "Times the replicated state's operations at a target size (default 64 nodes, 10000 VMs,\n"
                "1000 jobs, 1000 pre-flights) and at a baseline F times smaller (default 8), in the same\n"
                "run, and reports the ratios. --callgrind: instruction counts under valgrind (slow).\n");
}

int main(int argc, char **argv) {
        enum { ARG_NODES = 0x100, ARG_VMS, ARG_JOBS, ARG_PREFLIGHTS, ARG_FACTOR, ARG_RUNS, ARG_SEED, ARG_JSON,
               ARG_CALLGRIND, ARG_CHILD };
        static const struct option options[] = {
                { "nodes", required_argument, NULL, ARG_NODES },
                { "vms", required_argument, NULL, ARG_VMS },
                { "jobs", required_argument, NULL, ARG_JOBS },
                { "preflights", required_argument, NULL, ARG_PREFLIGHTS },
                { "factor", required_argument, NULL, ARG_FACTOR },
                { "runs", required_argument, NULL, ARG_RUNS },
                { "seed", required_argument, NULL, ARG_SEED },
                { "json", required_argument, NULL, ARG_JSON },
                { "callgrind", no_argument, NULL, ARG_CALLGRIND },
                { "callgrind-child", no_argument, NULL, ARG_CHILD },
                { "verbose", no_argument, NULL, 'v' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        int c;
        while ((c = getopt_long(argc, argv, "vh", options, NULL)) >= 0) {
                unsigned long v = 0;
                if (c >= ARG_NODES && c <= ARG_SEED) {
                        char *end;
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno || *end || !*optarg || v == 0 || v > 10000000)
                                die("invalid number \"%s\"", optarg);
                }
                switch (c) {
                case ARG_NODES: opt_nodes = (unsigned) v; break;
                case ARG_VMS: opt_vms = (unsigned) v; break;
                case ARG_JOBS: opt_jobs = (unsigned) v; break;
                case ARG_PREFLIGHTS: opt_preflights = (unsigned) v; break;
                case ARG_FACTOR: opt_factor = (unsigned) v; break;
                case ARG_RUNS: opt_runs = (unsigned) v; break;
                case ARG_SEED: opt_seed = v; break;
                case ARG_JSON: opt_json = optarg; break;
                case ARG_CALLGRIND: opt_callgrind = true; break;
                case ARG_CHILD: in_callgrind = true; break;
                case 'v': opt_verbose = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                usage(stderr);
                return 2;
        }
        if (opt_factor < 2 || opt_nodes / opt_factor < 2 || opt_vms / opt_factor < opt_nodes / opt_factor ||
            opt_jobs > opt_vms || opt_jobs / opt_factor == 0 || opt_preflights / opt_factor == 0)
                die("sizes too small for factor %u (the baseline needs >= 2 nodes, a VM per node, a job and a pre-flight)",
                    opt_factor);
        if (opt_nodes > STATE_NODES_MAX || opt_vms / opt_nodes + 1 > STATE_NODE_VMS_MAX)
                die("beyond the state's limits (%u nodes, %u VMs per node)", STATE_NODES_MAX, STATE_NODE_VMS_MAX);
#if !HAVE_CALLGRIND_H
        if (opt_callgrind || in_callgrind)
                die("built without valgrind/callgrind.h: --callgrind is not available");
#endif
        if (in_callgrind)
                opt_runs = 1;

        const Scale scales[2] = {
                { "baseline", opt_nodes / opt_factor, opt_vms / opt_factor, opt_jobs / opt_factor,
                  opt_preflights / opt_factor },
                { "target", opt_nodes, opt_vms, opt_jobs, opt_preflights },
        };
        Result res[2], best[2], cur;
        for (int i = 0; i < 2; i++)
                for (int op = 0; op < _OP_MAX; op++)
                        best[i].value[op] = INFINITY;

        if (opt_callgrind) {
                /* Sizes and counts are deterministic: one plain run gives them. */
                opt_callgrind = false;
                for (int i = 0; i < 2; i++)
                        run_scale(&scales[i], &res[i]);
                opt_callgrind = true;
                memcpy(best, res, sizeof(best));
                run_under_callgrind(argv, scales, best);
        } else {
                for (unsigned run = 0; run < opt_runs; run++)
                        for (int i = 0; i < 2; i++) {
                                run_scale(&scales[i], &cur);
                                res[i] = cur;
                                for (int op = 0; op < _OP_MAX; op++)
                                        if (cur.value[op] < best[i].value[op])
                                                best[i].value[op] = cur.value[op];
                                if (opt_verbose)
                                        fprintf(stderr, "run %u %s: inventory %.1f ms, jobs %.1f ms\n", run + 1,
                                                scales[i].label, cur.value[OP_INVENTORY_FIRST] / 1e6,
                                                (cur.value[OP_JOBS_SUBMIT] + cur.value[OP_JOBS_RUN]) / 1e6);
                        }
        }
        if (in_callgrind)
                return 0;       /* the parent reads the dumps and reports */

        report(scales, res, best);
        if (opt_json)
                write_json(opt_json, scales, res, best);
        return 0;
}
