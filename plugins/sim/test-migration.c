/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Migrations in a world with a manual clock: every time is chosen by the
 * test, so every outcome is exact. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "migration.h"
#include "sim-test.h"
#include "test-util.h"
#include "world.h"

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)
#define SEC UINT64_C(1000000)
#define LINK (1000 * MiB)

static char world_dir[256];

static void add_host(SimWorld *w, const char *name, const char *vendor, const char *features, uint64_t memory,
                     const char *version) {
        SimHost h = { .cpus = 16, .memory_total = memory, .link_bandwidth = LINK };
        snprintf(h.name, sizeof(h.name), "%s", name);
        snprintf(h.cpu_vendor, sizeof(h.cpu_vendor), "%s", vendor);
        snprintf(h.cpu_features, sizeof(h.cpu_features), "%s", features);
        snprintf(h.hypervisor_version, sizeof(h.hypervisor_version), "%s", version);
        CHECK_EQ_INT(sim_world_write_host(w, &h), 0);
}

static SimVm *add_vm(SimWorld *w, const char *node, const char *name, uint64_t memory, uint64_t dirty) {
        static SimVm vm;
        static unsigned n;
        vm = (SimVm) { .state = FERRY_VM_RUNNING, .vcpus = 1, .memory = memory, .dirty_rate = dirty, .n_disks = 1,
                       .disks = { { "vda", "/shared/x.img", true } } };
        snprintf(vm.name, sizeof(vm.name), "%s", name);
        snprintf(vm.node, sizeof(vm.node), "%s", node);
        snprintf(vm.uuid, sizeof(vm.uuid), "00000000-0000-4000-8000-%012u", ++n);
        CHECK_EQ_INT(sim_world_write_vm(w, &vm), 0);
        return &vm;
}

/* A fresh world: node1..2 AMD, node3 Intel, node4 a small, old AMD. */
static SimWorld *make_world(void) {
        SimWorld *w = NULL;
        SimParams p;
        SimError e = {};

        sim_test_tempdir("world", world_dir, sizeof(world_dir));
        sim_params_default(&p);
        p.clock = SIM_CLOCK_MANUAL;
        CHECK_EQ_INT(sim_world_create(world_dir, &p, &w, &e), 0);
        add_host(w, "node1", "AuthenticAMD", "sse2 avx avx2", 64 * GiB, "8.0.0");
        add_host(w, "node2", "AuthenticAMD", "sse2 avx avx2 avx512f", 64 * GiB, "9.0.0");
        add_host(w, "node3", "GenuineIntel", "sse2 avx avx2 avx512f", 64 * GiB, "9.0.0");
        add_host(w, "node4", "AuthenticAMD", "sse2 avx avx2", 4 * GiB, "7.0.0");
        add_vm(w, "node1", "idle", GiB, 0);
        add_vm(w, "node1", "hot", 4 * GiB, 2 * GiB);
        add_vm(w, "node1", "big", 8 * GiB, 0);
        SimVm *v = add_vm(w, "node1", "pt", GiB, 0);
        v->passthrough = 1;
        CHECK_EQ_INT(sim_world_write_vm(w, v), 0);
        v = add_vm(w, "node1", "local", GiB, 0);
        v->n_disks = 2;
        v->disks[1] = (FerryDisk) { "vdb", "/local/l.img", false };
        CHECK_EQ_INT(sim_world_write_vm(w, v), 0);
        v = add_vm(w, "node1", "off", GiB, 0);
        v->state = FERRY_VM_SHUTOFF;
        CHECK_EQ_INT(sim_world_write_vm(w, v), 0);
        v = add_vm(w, "node1", "avx512", GiB, 0);
        snprintf(v->cpu_model_required, sizeof(v->cpu_model_required), "avx2 avx512f");
        CHECK_EQ_INT(sim_world_write_vm(w, v), 0);
        v = add_vm(w, "node1", "machine8", GiB, 0);
        snprintf(v->machine, sizeof(v->machine), "8.0.0");
        CHECK_EQ_INT(sim_world_write_vm(w, v), 0);
        add_vm(w, "node1", "twin", GiB, 0);
        add_vm(w, "node2", "twin", GiB, 0);
        add_vm(w, "node2", "other", GiB, 10 * MiB);
        return w;
}

static SimStartParams to(const char *vm, const char *dst) {
        return (SimStartParams) { .vm = vm, .source = "node1", .destination = dst };
}

static bool vm_on(SimWorld *w, const char *node, const char *vm) {
        SimVm v;
        return sim_world_load_vm(w, node, vm, &v, NULL) >= 0;
}

static bool has_marker(SimWorld *w, const char *vm) {
        SimMarker m;
        if (sim_world_load_marker(w, vm, &m, NULL) < 0)
                return false;
        sim_marker_done(&m);
        return true;
}

static void test_refusals(void) {
        _cleanup_(sim_world_freep) SimWorld *w = make_world();
        static const struct {
                const char *vm, *dst;
                int r;
                const char *contains;
        } cases[] = {
                { "pt", "node2", -ENOTSUP, "passed-through" },
                { "local", "node2", -ENOTSUP, "local disk vdb" },
                { "off", "node2", -ENOTSUP, "not running" },
                { "idle", "node3", -ENOTSUP, "GenuineIntel" },
                { "avx512", "node4", -ENOTSUP, "avx512f" },
                { "machine8", "node4", -ENOTSUP, "needs hypervisor 8.0.0" },
                { "big", "node4", -ENOSPC, "lacks memory" },
                { "twin", "node2", -EEXIST, "already has a VM named twin" },
                { "nosuch", "node2", -ENOENT, "no VM nosuch on node1" },
                { "idle", "node9", -ENOENT, "unknown destination node9" },
                { "idle", "node1", -EINVAL, "both node1" },
                { "../x", "node2", -EINVAL, "invalid" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                SimStartParams p = to(cases[i].vm, cases[i].dst);
                SimMigration *m = NULL;
                SimError e = {};
                int r = sim_migration_start(w, &p, &m, &e);
                bool ok = r == cases[i].r && !m && strstr(e.message, cases[i].contains);
                if (!ok)
                        fprintf(stderr, "case %zu (%s -> %s): %d \"%s\"\n", i, cases[i].vm, cases[i].dst, r,
                                e.message);
                CHECK(ok);
        }
        /* Nothing was left behind. */
        SimMarker *mk = NULL;
        size_t n = 0;
        CHECK_EQ_INT(sim_world_load_markers(w, &mk, &n, NULL), 0);
        CHECK_EQ_INT(n, 0);

        /* cpu check on its own */
        SimHost a, b;
        SimVm v;
        char reason[256];
        CHECK_EQ_INT(sim_world_load_host(w, "node1", &a, NULL), 0);
        CHECK_EQ_INT(sim_world_load_host(w, "node2", &b, NULL), 0);
        CHECK_EQ_INT(sim_world_load_vm(w, "node1", "avx512", &v, NULL), 0);
        CHECK_EQ_INT(sim_check_cpu(&a, &v, &b, reason, sizeof(reason)), 0);
        CHECK_EQ_INT(sim_check_cpu(&b, &v, &a, reason, sizeof(reason)), -ENOTSUP);
        CHECK_STREQ(reason, "node1 lacks CPU features VM avx512 needs: avx512f");
}

static void test_complete(void) {
        _cleanup_(sim_world_freep) SimWorld *w = make_world();
        _cleanup_(sim_migration_freep) SimMigration *m = NULL;
        SimStartParams p = to("idle", "node2");
        SimMigration *again = NULL;
        SimError e = {};
        PrecopyStatus s;
        uint64_t used, incoming;
        char path[512];

        CHECK_EQ_INT(sim_world_advance_clock(w, 1000 * SEC), 0);     /* not at 0: start is relative */
        CHECK_EQ_INT(sim_migration_start(w, &p, &m, &e), 0);
        CHECK(has_marker(w, "idle"));
        CHECK_EQ_INT(m->marker.start, 1000 * SEC);
        CHECK_EQ_INT(m->model.p.bandwidth, LINK);
        CHECK_EQ_INT(sim_migration_start(w, &p, &again, &e), -EBUSY);
        CHECK(strstr(e.message, "already migrating to node2"));
        /* The destination holds the memory from the start. */
        CHECK_EQ_INT(sim_world_memory_used(w, "node2", &used, &incoming, &e), 0);
        CHECK_EQ_INT(incoming, GiB);

        /* 100 ms setup + 1G at 1000M/s (1.024 s) + 50 ms */
        CHECK_EQ_INT(sim_world_advance_clock(w, 100000 + 1024000 - 1), 0);
        CHECK_EQ_INT(sim_migration_update(m, &e), 0);
        sim_migration_status(m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_PRECOPY);
        CHECK(vm_on(w, "node1", "idle"));
        CHECK_EQ_INT(sim_world_advance_clock(w, 1), 0);
        CHECK_EQ_INT(sim_migration_update(m, &e), 0);
        sim_migration_status(m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_SWITCHOVER);
        CHECK_EQ_INT(sim_migration_abort(m, &e), -EBUSY);
        CHECK(strstr(e.message, "past the point"));
        CHECK(vm_on(w, "node1", "idle") && !vm_on(w, "node2", "idle"));
        CHECK_EQ_INT(sim_world_advance_clock(w, 50000), 0);
        CHECK_EQ_INT(sim_migration_update(m, &e), 0);
        sim_migration_status(m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_COMPLETED);
        CHECK_EQ_INT(s.downtime_ms, 50);
        CHECK(m->settled);
        CHECK(!vm_on(w, "node1", "idle") && vm_on(w, "node2", "idle"));
        CHECK(!has_marker(w, "idle"));
        snprintf(path, sizeof(path), "%s/migrations/idle.owner", world_dir);
        CHECK(access(path, F_OK) < 0);
        CHECK_EQ_INT(sim_world_memory_used(w, "node2", &used, &incoming, &e), 0);
        CHECK_EQ_INT(incoming, 0);
        /* Ended: controls are refused, updates are no-ops. */
        CHECK_EQ_INT(sim_migration_set_max_downtime(m, 1000, &e), -ESTALE);
        CHECK_EQ_INT(sim_migration_update(m, &e), 0);
}

static void test_abort(void) {
        _cleanup_(sim_world_freep) SimWorld *w = make_world();
        _cleanup_(sim_migration_freep) SimMigration *m = NULL;
        SimStartParams p = to("hot", "node2");
        SimError e = {};
        PrecopyStatus s;

        CHECK_EQ_INT(sim_migration_start(w, &p, &m, &e), 0);
        CHECK_EQ_INT(sim_world_advance_clock(w, 3 * SEC), 0);
        CHECK_EQ_INT(sim_migration_abort(m, &e), 0);
        sim_migration_status(m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_CANCELLED);
        CHECK(vm_on(w, "node1", "hot") && !vm_on(w, "node2", "hot"));
        CHECK(!has_marker(w, "hot"));
        CHECK_EQ_INT(sim_migration_abort(m, &e), -ESTALE);
}

static void test_fail_and_convergence_actions(void) {
        _cleanup_(sim_world_freep) SimWorld *w = make_world();
        _cleanup_(sim_migration_freep) SimMigration *m = NULL, *m2 = NULL;
        SimStartParams p = to("hot", "node2");
        SimError e = {};
        PrecopyStatus s;

        /* Left alone, a guest dirtying twice the link never converges. */
        CHECK_EQ_INT(sim_migration_start(w, &p, &m, &e), 0);
        CHECK_EQ_INT(sim_world_advance_clock(w, 3600 * SEC), 0);
        CHECK_EQ_INT(sim_migration_update(m, &e), 0);
        sim_migration_status(m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_FAILED);
        CHECK_EQ_INT(s.iteration, 30);
        CHECK(strstr(s.error, "did not converge"));
        CHECK(vm_on(w, "node1", "hot"));
        CHECK(!has_marker(w, "hot"));

        /* Auto-converge switched on at runtime gets it there. */
        CHECK_EQ_INT(sim_migration_start(w, &p, &m2, &e), 0);
        CHECK_EQ_INT(sim_migration_start_postcopy(m2, &e), -EPERM);
        CHECK_EQ_INT(sim_world_advance_clock(w, 10 * SEC), 0);
        CHECK_EQ_INT(sim_migration_set_auto_converge(m2, true, &e), 0);
        CHECK_EQ_INT(sim_world_advance_clock(w, 3600 * SEC), 0);
        CHECK_EQ_INT(sim_migration_update(m2, &e), 0);
        sim_migration_status(m2, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_COMPLETED);
        CHECK(vm_on(w, "node2", "hot") && !vm_on(w, "node1", "hot"));
}

static void test_postcopy(void) {
        _cleanup_(sim_world_freep) SimWorld *w = make_world();
        _cleanup_(sim_migration_freep) SimMigration *m = NULL;
        SimStartParams p = to("hot", "node2");
        SimError e = {};
        PrecopyStatus s;

        p.postcopy_allowed = true;
        CHECK_EQ_INT(sim_migration_start(w, &p, &m, &e), 0);
        CHECK_EQ_INT(sim_world_advance_clock(w, 6 * SEC), 0);
        CHECK_EQ_INT(sim_migration_start_postcopy(m, &e), 0);
        sim_migration_status(m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_POSTCOPY);
        CHECK_EQ_INT(sim_migration_abort(m, &e), -EBUSY);
        CHECK_EQ_INT(sim_world_advance_clock(w, 10 * SEC), 0);
        CHECK_EQ_INT(sim_migration_update(m, &e), 0);
        sim_migration_status(m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_COMPLETED);
        CHECK_EQ_INT(s.downtime_ms, 50);
        CHECK(vm_on(w, "node2", "hot"));
}

static void test_bandwidth_sharing_and_replay(void) {
        _cleanup_(sim_world_freep) SimWorld *w = make_world();
        _cleanup_(sim_migration_freep) SimMigration *a = NULL, *b = NULL, *c = NULL;
        SimStartParams pa = to("hot", "node2"), pb = to("big", "node4"), pc = { .vm = "other", .source = "node2", .destination = "node1" };
        SimMarker mk = {};
        SimError e = {};
        Precopy replay;
        PrecopyStatus x, y;

        pa.auto_converge = true;
        pb.bandwidth_limit = 100 * MiB;
        CHECK_EQ_INT(sim_migration_start(w, &pa, &a, &e), 0);
        CHECK_EQ_INT(a->model.p.bandwidth, LINK);
        CHECK_EQ_INT(sim_world_advance_clock(w, 2 * SEC), 0);
        /* Refused for memory (node4 is small), so nothing changes. */
        CHECK_EQ_INT(sim_migration_start(w, &pb, &b, &e), -ENOSPC);
        pb.destination = "node3";
        pb.vm = "idle";
        CHECK_EQ_INT(sim_migration_start(w, &pb, &b, &e), -ENOTSUP);  /* Intel */
        pb.vm = "avx512";
        pb.destination = "node2";
        /* Second on node1's link: half of it, but ferryd capped it lower. */
        CHECK_EQ_INT(sim_migration_start(w, &pb, &b, &e), 0);
        CHECK_EQ_INT(b->model.p.bandwidth, 100 * MiB);
        CHECK_EQ_INT(sim_world_advance_clock(w, SEC), 0);
        CHECK_EQ_INT(sim_migration_update(a, &e), 0);
        /* Two out of node1, two into node2. */
        CHECK_EQ_INT(a->model.p.bandwidth, LINK / 2);
        /* A third, out of node2 into node1: links are full duplex, so it
         * takes nothing from the two above. */
        CHECK_EQ_INT(sim_migration_start(w, &pc, &c, &e), 0);
        CHECK_EQ_INT(c->model.p.bandwidth, LINK);
        CHECK_EQ_INT(sim_world_advance_clock(w, SEC), 0);
        CHECK_EQ_INT(sim_migration_set_max_downtime(a, 500, &e), 0);
        CHECK_EQ_INT(sim_world_advance_clock(w, 9 * SEC), 0);
        CHECK_EQ_INT(sim_migration_update(b, &e), 0);
        CHECK(b->settled);                      /* 1G at 100M/s: 10.4 s */
        CHECK_EQ_INT(sim_migration_update(a, &e), 0);
        CHECK_EQ_INT(a->model.p.bandwidth, LINK);   /* alone again */

        /* The marker on disk replays to exactly the live state. */
        CHECK_EQ_INT(sim_world_load_marker(w, "hot", &mk, &e), 0);
        CHECK_EQ_INT(mk.n_events, 3);
        CHECK_EQ_INT(mk.events[0].type, SIM_EVENT_BANDWIDTH);
        CHECK_EQ_INT(mk.events[1].type, SIM_EVENT_MAX_DOWNTIME);
        CHECK_EQ_INT(mk.events[2].type, SIM_EVENT_BANDWIDTH);
        CHECK_EQ_INT(mk.events[0].at, 3 * SEC);
        CHECK_EQ_INT(mk.events[2].at, 13 * SEC);
        CHECK_EQ_INT(sim_marker_replay(&mk, 13 * SEC, &replay), 0);
        precopy_status(&replay, &x);
        sim_migration_status(a, &y);
        CHECK(precopy_params_equal(&replay.p, &a->model.p));
        CHECK_EQ_INT(x.phase, y.phase);
        CHECK_EQ_INT(x.processed, y.processed);
        CHECK_EQ_INT(x.remaining, y.remaining);
        CHECK_EQ_INT(x.pending, y.pending);
        CHECK_EQ_INT(x.iteration, y.iteration);
        CHECK_EQ_INT(x.throttle, y.throttle);
        sim_marker_done(&mk);
}

static void test_orphans(void) {
        _cleanup_(sim_world_freep) SimWorld *w = make_world();
        SimMigration *m = NULL, *keep = NULL;
        SimStartParams p;
        SimError e = {};
        unsigned n = 0;

        /* An owner alive: untouched. */
        p = to("big", "node2");
        CHECK_EQ_INT(sim_migration_start(w, &p, &keep, &e), 0);
        CHECK_EQ_INT(sim_world_reconcile(w, &n, &e), 0);
        CHECK_EQ_INT(n, 0);
        CHECK(has_marker(w, "big"));

        /* Orphaned in pre-copy: cancelled, the VM stays. */
        p = to("hot", "node2");
        CHECK_EQ_INT(sim_migration_start(w, &p, &m, &e), 0);
        m = sim_migration_free(m);
        CHECK_EQ_INT(sim_world_advance_clock(w, 2 * SEC), 0);
        CHECK_EQ_INT(sim_world_reconcile(w, &n, &e), 0);
        CHECK_EQ_INT(n, 1);
        CHECK(vm_on(w, "node1", "hot") && !vm_on(w, "node2", "hot"));
        CHECK(!has_marker(w, "hot"));

        /* Orphaned in switchover: run to the end, the VM moves. The idle
         * 1G VM shares node1's and node2's links with "big": 500M/s. */
        p = to("idle", "node2");
        CHECK_EQ_INT(sim_migration_start(w, &p, &m, &e), 0);
        CHECK_EQ_INT(m->model.p.bandwidth, LINK / 2);
        m = sim_migration_free(m);
        CHECK_EQ_INT(sim_world_advance_clock(w, 100000 + 2 * 1024000 + 10000), 0);
        CHECK_EQ_INT(sim_world_reconcile(w, &n, &e), 0);
        CHECK_EQ_INT(n, 1);
        CHECK(!vm_on(w, "node1", "idle") && vm_on(w, "node2", "idle"));

        /* Ended while nobody looked: its outcome. */
        p = to("avx512", "node2");
        CHECK_EQ_INT(sim_migration_start(w, &p, &m, &e), 0);
        m = sim_migration_free(m);
        CHECK_EQ_INT(sim_world_advance_clock(w, 60 * SEC), 0);
        CHECK_EQ_INT(sim_world_reconcile(w, &n, &e), 0);
        CHECK(vm_on(w, "node2", "avx512"));

        /* The live owner still finishes its own. */
        CHECK_EQ_INT(sim_migration_update(keep, &e), 0);
        CHECK(keep->settled);
        CHECK(vm_on(w, "node2", "big"));
        sim_migration_free(keep);
}

static void test_other_boot(void) {
        char dir[256];
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        SimMigration *m = NULL;
        SimParams p;
        SimError e = {};
        SimMarker mk;
        unsigned n;

        /* A monotonic world whose marker says another boot: the migration
         * is taken to have run its course. */
        sim_test_tempdir("mono", dir, sizeof(dir));
        sim_params_default(&p);
        CHECK_EQ_INT(sim_world_create(dir, &p, &w, &e), 0);
        add_host(w, "node1", "AuthenticAMD", "", 64 * GiB, "8.0.0");
        add_host(w, "node2", "AuthenticAMD", "", 64 * GiB, "8.0.0");
        add_vm(w, "node1", "a", GiB, 0);
        SimStartParams sp = { .vm = "a", .source = "node1", .destination = "node2" };
        CHECK_EQ_INT(sim_migration_start(w, &sp, &m, &e), 0);
        CHECK_EQ_INT(sim_world_load_marker(w, "a", &mk, &e), 0);
        snprintf(mk.boot_id, sizeof(mk.boot_id), "00000000-0000-0000-0000-000000000000");
        CHECK_EQ_INT(sim_world_write_marker(w, &mk), 0);
        sim_marker_done(&mk);
        m = sim_migration_free(m);
        CHECK_EQ_INT(sim_world_reconcile(w, &n, &e), 0);
        CHECK_EQ_INT(n, 1);
        CHECK(vm_on(w, "node2", "a"));
}

int main(void) {
        static const TestCase tests[] = {
                { "refusals", test_refusals },
                { "complete, exact timeline", test_complete },
                { "abort", test_abort },
                { "failure and convergence actions", test_fail_and_convergence_actions },
                { "post-copy", test_postcopy },
                { "bandwidth sharing and replay", test_bandwidth_sharing_and_replay },
                { "orphans", test_orphans },
                { "orphan from another boot", test_other_boot },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
