/* SPDX-License-Identifier: GPL-2.0-or-later */

/* End to end through the built module, the way ferryd uses it: dlopen(),
 * the ops struct, two instances as two nodes of one world.
 *
 * Usage: test-sim-backend MODULE.so FERRY-SIM-WORLD */

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ferry-backend.h"
#include "generate.h"
#include "migration.h"
#include "sim-test.h"
#include "test-util.h"
#include "volume.h"
#include "world.h"

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)

static const char *module_path, *cli_path;
static const FerryBackendOps *ops;
static void *module;

static void test_load(void) {
        module = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
        if (!module)
                fprintf(stderr, "dlopen: %s\n", dlerror());
        CHECK(module);
        ops = dlsym(module, FERRY_BACKEND_SYMBOL);
        CHECK(ops);
        CHECK_EQ_INT(ops->abi_version, FERRY_BACKEND_ABI_VERSION);
        CHECK_STREQ(ops->name, "sim");
        CHECK(ops->open && ops->close && ops->host_facts && ops->list_vms && ops->free_vms);
        CHECK(ops->cpu_compatible && ops->migrate_start && ops->migrate_progress && ops->migrate_abort);
        CHECK(ops->migrate_set_max_downtime && ops->migrate_set_auto_converge && ops->migrate_start_postcopy);
        CHECK(ops->migrate_release);
        CHECK(ops->volume_prepare && ops->volume_activate && ops->volume_release && ops->volume_held);
        /* Nothing but the ops struct leaves the module. */
        CHECK(!dlsym(module, "sim_world_open"));
        CHECK(!dlsym(module, "parse_size"));
}

static int open_node(const char *node, const char *config, void **ctx, FerryError *err) {
        FerryBackendHost host = {
                .struct_size = sizeof(host),
                .node_name = node,
                .config = config,
                .state_dir = "/nonexistent",
        };
        *err = (FerryError) {};
        return ops->open(&host, ctx, err);
}

static void add_vm(SimWorld *w, const char *node, const char *name, uint64_t memory, uint64_t dirty,
                   uint32_t passthrough) {
        SimVm vm = { .state = FERRY_VM_RUNNING, .vcpus = 2, .memory = memory, .dirty_rate = dirty,
                     .passthrough = passthrough, .n_disks = 1, .disks = { { "vda", "/shared/e2e.img", true } } };
        static unsigned n;
        snprintf(vm.name, sizeof(vm.name), "%s", name);
        snprintf(vm.node, sizeof(vm.node), "%s", node);
        snprintf(vm.uuid, sizeof(vm.uuid), "00000000-0000-4000-8000-%012u", ++n);
        CHECK_EQ_INT(sim_world_write_vm(w, &vm), 0);
}

/* A 3-node world: node1 and node2 AMD, node3 Intel; a few VMs of the
 * generator plus the test's own on node1. */
static void make_world(char *dir, size_t len, SimClock clock) {
        static const char *const vendors[] = { "AuthenticAMD", "AuthenticAMD", "GenuineIntel" };
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        SimGenerateOptions o;
        SimError e = {};

        sim_test_tempdir("world", dir, len);
        sim_generate_options_default(&o);
        o.nodes = 3;
        o.vms = 9;
        o.seed = 7;
        o.vendors = vendors;
        o.n_vendors = 3;
        o.params.clock = clock;
        o.params.time_scale_milli = 100 * 1000;         /* 100 simulated seconds per second */
        CHECK_EQ_INT(sim_world_generate(dir, &o, &e), 0);
        CHECK_EQ_INT(sim_world_open(dir, &w, &e), 0);
        add_vm(w, "node1", "e2e-small", GiB, 10 * MiB, 0);
        add_vm(w, "node1", "e2e-hot", 4 * GiB, 2 * GiB, 0);
        add_vm(w, "node1", "e2e-pt", GiB, 0, 1);
}

static const FerryVm *find_vm(const FerryVm *vms, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(vms[i].name, name))
                        return &vms[i];
        return NULL;
}

/* The VM's state on that node, 0 if it is not listed there. */
static int vm_state(void *ctx, const char *name) {
        FerryVm *vms = NULL;
        size_t n = 0;
        FerryError err = {};
        int state;

        CHECK_EQ_INT(ops->list_vms(ctx, &vms, &n, &err), 0);
        const FerryVm *v = find_vm(vms, n, name);
        state = v ? (int) v->state : 0;
        ops->free_vms(ctx, vms, n);
        return state;
}

static FerryMigrateParams to(const char *node, const char *uri) {
        return (FerryMigrateParams) {
                .struct_size = sizeof(FerryMigrateParams),
                .destination_node = node,
                .destination_uri = uri,
        };
}

static FerryMigratePhase poll_until_end(void *ctx, void *h, FerryMigrateProgress *p) {
        FerryError err = {};
        FerryMigratePhase last = FERRY_MIGRATE_SETUP;

        for (int i = 0; i < 20000; i++) {
                *p = (FerryMigrateProgress) { .struct_size = sizeof(*p) };
                CHECK_EQ_INT(ops->migrate_progress(ctx, h, p, &err), 0);
                CHECK_EQ_INT(p->struct_size, sizeof(*p));
                /* Phases only move forward (post-copy sits before
                 * switchover in the enum but both end in COMPLETED). */
                CHECK(p->phase >= last || (last == FERRY_MIGRATE_POSTCOPY));
                last = p->phase;
                if (p->phase >= FERRY_MIGRATE_COMPLETED)
                        return p->phase;
                usleep(500);
        }
        fprintf(stderr, "migration did not end in 10 s\n");
        exit(1);
}

static void test_open_errors(void) {
        char dir[256], config[512];
        void *ctx = NULL;
        FerryError err;

        make_world(dir, sizeof(dir), SIM_CLOCK_MONOTONIC);
        CHECK_EQ_INT(open_node("node1", "", &ctx, &err), -EINVAL);
        CHECK(strstr(err.message, "world=/path"));
        snprintf(config, sizeof(config), "world=%s bogus=1 speed=2", dir);
        CHECK_EQ_INT(open_node("node1", config, &ctx, &err), -EINVAL);
        CHECK(strstr(err.message, "\"bogus\", \"speed\""));
        CHECK_EQ_INT(open_node("node1", "world=relative/dir", &ctx, &err), -EINVAL);
        CHECK(strstr(err.message, "absolute"));
        CHECK_EQ_INT(open_node("node1", "world", &ctx, &err), -EINVAL);
        snprintf(config, sizeof(config), "world=%s", dir);
        CHECK_EQ_INT(open_node("node7", config, &ctx, &err), -ENOENT);
        CHECK(strstr(err.message, "node7 is not in the world"));
        CHECK_EQ_INT(open_node("../etc", config, &ctx, &err), -EINVAL);
        CHECK_EQ_INT(open_node("node1", "world=/nonexistent/world", &ctx, &err), -ENOENT);
        CHECK(strstr(err.message, "/nonexistent/world/params.conf"));
        CHECK(!ctx);
}

static void test_end_to_end(void) {
        char dir[256], config[512];
        void *n1 = NULL, *n2 = NULL, *h = NULL;
        FerryError err = {};
        FerryHostFacts f1 = { .struct_size = sizeof(f1) }, f2 = { .struct_size = sizeof(f2) };
        FerryHostFacts f2b = { .struct_size = sizeof(f2b) };
        FerryMigrateProgress p;
        FerryMigrateParams mp;
        FerryVm *vms = NULL;
        size_t n = 0;
        uint64_t used = 0;

        make_world(dir, sizeof(dir), SIM_CLOCK_MONOTONIC);
        snprintf(config, sizeof(config), "world=%s", dir);
        CHECK_EQ_INT(open_node("node1", config, &n1, &err), 0);
        CHECK_EQ_INT(open_node("node2", config, &n2, &err), 0);

        CHECK_EQ_INT(ops->host_facts(n1, &f1, &err), 0);
        CHECK_STREQ(f1.cpu_vendor, "AuthenticAMD");
        CHECK_STREQ(f1.hypervisor_name, "sim");
        CHECK_STREQ(f1.hypervisor_version, "8.0.0");
        CHECK(strstr(f1.cpu_features, "avx2"));
        CHECK(f1.cpus > 0);
        CHECK_EQ_INT(ops->list_vms(n1, &vms, &n, &err), 0);
        CHECK(n >= 3);
        for (size_t i = 0; i < n; i++)
                used += vms[i].memory;
        CHECK(f1.memory_free == f1.memory_total - used);
        const FerryVm *small = find_vm(vms, n, "e2e-small");
        CHECK(small);
        CHECK_EQ_INT(small->state, FERRY_VM_RUNNING);
        CHECK(small->memory == GiB);
        CHECK(small->dirty_rate == 10 * MiB);
        CHECK_EQ_INT(small->n_disks, 1);
        CHECK_STREQ(small->disks[0].target, "vda");
        CHECK_STREQ(small->disks[0].path, "/shared/e2e.img");
        CHECK(small->disks[0].shared);
        CHECK_EQ_INT(find_vm(vms, n, "e2e-pt")->n_passthrough, 1);
        ops->free_vms(n1, vms, n);

        /* CPU compatibility: same vendor yes, Intel no, garbage refused. */
        CHECK_EQ_INT(ops->cpu_compatible(n1, "e2e-small", "sim://node2", &err), 0);
        CHECK_EQ_INT(ops->cpu_compatible(n1, "e2e-small", "sim://node3", &err), -ENOTSUP);
        CHECK(strstr(err.message, "GenuineIntel"));
        CHECK_EQ_INT(ops->cpu_compatible(n1, "e2e-small", "qemu+tcp://node2/system", &err), -EINVAL);
        CHECK_EQ_INT(ops->cpu_compatible(n1, "e2e-small", "sim://node9", &err), -ENOENT);
        CHECK_EQ_INT(ops->cpu_compatible(n1, "nosuch", "sim://node2", &err), -ENOENT);

        mp = to("node2", "sim://node2");
        CHECK_EQ_INT(ops->migrate_start(n1, "e2e-pt", &mp, &h, &err), -ENOTSUP);
        CHECK(strstr(err.message, "passed-through"));
        mp = to("node3", "sim://node2");
        CHECK_EQ_INT(ops->migrate_start(n1, "e2e-small", &mp, &h, &err), -EINVAL);
        CHECK(strstr(err.message, "disagree"));

        /* The migration. */
        CHECK_EQ_INT(ops->host_facts(n2, &f2, &err), 0);
        mp = to("node2", "sim://node2");
        CHECK_EQ_INT(ops->migrate_start(n1, "e2e-small", &mp, &h, &err), 0);
        CHECK(h);
        CHECK_EQ_INT(vm_state(n1, "e2e-small"), FERRY_VM_MIGRATING);
        CHECK_EQ_INT(vm_state(n2, "e2e-small"), 0);
        CHECK_EQ_INT(ops->host_facts(n2, &f2b, &err), 0);
        CHECK(f2.memory_free - f2b.memory_free == GiB);
        CHECK_EQ_INT(poll_until_end(n1, h, &p), FERRY_MIGRATE_COMPLETED);
        CHECK(p.memory_total == GiB);
        CHECK(p.memory_processed >= GiB);
        CHECK_EQ_INT(p.memory_remaining, 0);
        CHECK(p.downtime_ms >= 50 && p.downtime_ms < 300 + 50);
        CHECK(p.iteration >= 1);
        CHECK(p.started_usec > 0 && p.finished_usec >= p.started_usec);
        CHECK_EQ_INT(vm_state(n1, "e2e-small"), 0);
        CHECK_EQ_INT(vm_state(n2, "e2e-small"), FERRY_VM_RUNNING);
        CHECK_EQ_INT(ops->migrate_abort(n1, h, &err), -ESTALE);
        ops->migrate_release(n1, h);

        /* Abort before switchover: stays on node1. */
        mp = to("node2", "sim://node2");
        CHECK_EQ_INT(ops->migrate_start(n1, "e2e-hot", &mp, &h, &err), 0);
        CHECK_EQ_INT(ops->migrate_abort(n1, h, &err), 0);
        p = (FerryMigrateProgress) { .struct_size = sizeof(p) };
        CHECK_EQ_INT(ops->migrate_progress(n1, h, &p, &err), 0);
        CHECK_EQ_INT(p.phase, FERRY_MIGRATE_CANCELLED);
        CHECK(p.finished_usec > 0);
        ops->migrate_release(n1, h);
        CHECK_EQ_INT(vm_state(n1, "e2e-hot"), FERRY_VM_RUNNING);
        CHECK_EQ_INT(vm_state(n2, "e2e-hot"), 0);

        /* Convergence actions through the hooks; post-copy finishes it. */
        mp = to("node2", "sim://node2");
        mp.postcopy_allowed = true;
        mp.max_downtime_ms = 100;
        CHECK_EQ_INT(ops->migrate_start(n1, "e2e-hot", &mp, &h, &err), 0);
        CHECK_EQ_INT(ops->migrate_set_max_downtime(n1, h, 200, &err), 0);
        CHECK_EQ_INT(ops->migrate_set_auto_converge(n1, h, true, &err), 0);
        CHECK_EQ_INT(ops->migrate_start_postcopy(n1, h, &err), 0);
        CHECK_EQ_INT(poll_until_end(n1, h, &p), FERRY_MIGRATE_COMPLETED);
        CHECK_EQ_INT(p.downtime_ms, 50);
        ops->migrate_release(n1, h);
        CHECK_EQ_INT(vm_state(n2, "e2e-hot"), FERRY_VM_RUNNING);
        CHECK_EQ_INT(vm_state(n1, "e2e-hot"), 0);

        /* Back again, from node2's instance, and a failure to converge. */
        mp = to("node1", "sim://node1");
        mp.max_downtime_ms = 1;
        CHECK_EQ_INT(ops->migrate_start(n2, "e2e-hot", &mp, &h, &err), 0);
        CHECK_EQ_INT(poll_until_end(n2, h, &p), FERRY_MIGRATE_FAILED);
        CHECK(strstr(p.error.message, "did not converge"));
        ops->migrate_release(n2, h);
        CHECK_EQ_INT(vm_state(n2, "e2e-hot"), FERRY_VM_RUNNING);

        /* An unfinished handle at close becomes an orphan, settled by the
         * next look at the world. */
        mp = to("node1", "sim://node1");
        CHECK_EQ_INT(ops->migrate_start(n2, "e2e-hot", &mp, &h, &err), 0);
        ops->close(n2);
        CHECK_EQ_INT(vm_state(n1, "e2e-hot"), 0);       /* cancelled in pre-copy */
        CHECK_EQ_INT(open_node("node2", config, &n2, &err), 0);
        CHECK_EQ_INT(vm_state(n2, "e2e-hot"), FERRY_VM_RUNNING);

        ops->close(n1);
        ops->close(n2);
}

/* The phase a migration's marker replays to, `elapsed` after its start. */
static PrecopyPhase vm_marker_phase(SimWorld *w, const char *vm, uint64_t elapsed) {
        SimMarker mk;
        Precopy m;
        SimError e = {};

        CHECK_EQ_INT(sim_world_load_marker(w, vm, &mk, &e), 0);
        CHECK_EQ_INT(sim_marker_replay(&mk, elapsed, &m), 0);
        sim_marker_done(&mk);
        return m.phase;
}

/* The ferryd that drove a migration dies: its owner lock goes with it, and
 * the next backend to look settles the migration from the marker. */
static void test_crash(void) {
        char dir[256], config[512];
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        SimError e = {};
        void *n1 = NULL, *n2 = NULL;
        FerryError err = {};
        pid_t pid;
        int status;

        make_world(dir, sizeof(dir), SIM_CLOCK_MANUAL);
        snprintf(config, sizeof(config), "world=%s", dir);
        CHECK_EQ_INT(sim_world_open(dir, &w, &e), 0);

        for (int round = 0; round < 2; round++) {
                const char *vm = round == 0 ? "e2e-hot" : "e2e-small";
                pid = fork();
                CHECK(pid >= 0);
                if (pid == 0) {
                        /* _exit(): no atexit cleanup of the parent's temp dirs. */
                        void *ctx = NULL, *h = NULL;
                        FerryMigrateParams mp = to("node2", "sim://node2");
                        if (open_node("node1", config, &ctx, &err) < 0 ||
                            ops->migrate_start(ctx, vm, &mp, &h, &err) < 0) {
                                fprintf(stderr, "child: %s\n", err.message);
                                _exit(1);
                        }
                        _exit(0);
                }
                CHECK_EQ_INT(waitpid(pid, &status, 0), pid);
                CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                CHECK_EQ_INT(vm_marker_phase(w, vm, 0), PRECOPY_PHASE_SETUP);

                if (round == 0) {
                        /* Died in pre-copy (2 s into a 4G guest at 1250M/s):
                         * cancelled, the VM stays on node1. */
                        CHECK_EQ_INT(sim_world_advance_clock(w, 2000000), 0);
                        CHECK_EQ_INT(vm_marker_phase(w, vm, 2000000), PRECOPY_PHASE_PRECOPY);
                        CHECK_EQ_INT(open_node("node1", config, &n1, &err), 0);
                        CHECK_EQ_INT(vm_state(n1, vm), FERRY_VM_RUNNING);
                } else {
                        /* Died with the migration in switchover: it completes,
                         * whoever looks first (node2 here). */
                        SimHost h1, h2;
                        CHECK_EQ_INT(sim_world_load_host(w, "node1", &h1, &e), 0);
                        CHECK_EQ_INT(sim_world_load_host(w, "node2", &h2, &e), 0);
                        uint64_t bw = MIN(h1.link_bandwidth, h2.link_bandwidth);
                        uint64_t round1 = (GiB * 1000000 + bw - 1) / bw;
                        /* 10M/s for round 1 dirties little: one more short
                         * round, then switchover; stop 1 ms after the
                         * predicted start of the switchover. */
                        PrecopyParams pp;
                        PrecopyPrediction pr;
                        precopy_params_default(&pp);
                        pp.memory = GiB;
                        pp.dirty_rate = 10 * MiB;
                        pp.bandwidth = bw;
                        CHECK_EQ_INT(precopy_predict(&pp, &pr), 0);
                        CHECK(pr.duration_usec > round1);
                        CHECK_EQ_INT(sim_world_advance_clock(w, pr.duration_usec - 49000), 0);
                        CHECK_EQ_INT(vm_marker_phase(w, vm, pr.duration_usec - 49000), PRECOPY_PHASE_SWITCHOVER);
                        CHECK_EQ_INT(open_node("node2", config, &n2, &err), 0);
                        CHECK_EQ_INT(vm_state(n2, vm), FERRY_VM_RUNNING);
                        CHECK_EQ_INT(vm_state(n1, vm), 0);
                }
        }
        SimMarker *mk = NULL;
        size_t n = 0;
        CHECK_EQ_INT(sim_world_load_markers(w, &mk, &n, &e), 0);
        CHECK_EQ_INT(n, 0);
        ops->close(n1);
        ops->close(n2);
}

/* A volume as the world has it; a missing file reads as nobody, epoch 0. */
static SimVolume vol(SimWorld *w, const char *name) {
        SimVolume v = {};
        SimError e = {};
        int r = sim_world_load_volume(w, name, &v, &e);

        if (r < 0 && r != -ENOENT)
                fprintf(stderr, "%s\n", e.message);
        CHECK(r == 0 || r == -ENOENT);
        return v;
}

static bool vol_exists(SimWorld *w, const char *name) {
        SimVolume v;
        return sim_world_load_volume(w, name, &v, NULL) == 0;
}

#define CHECK_VOL(w, name, holder_, holder_epoch_, epoch_)                     \
        do {                                                                    \
                SimVolume _v = vol(w, name);                                    \
                CHECK_STREQ(_v.holder, holder_);                                \
                CHECK_EQ_INT(_v.holder_epoch, holder_epoch_);                   \
                CHECK_EQ_INT(_v.epoch, epoch_);                                 \
        } while (0)

/* Two instances, node1 and node2, contend for volumes with fencing epochs. */
static void test_volumes(void) {
        char dir[256], config[512];
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        SimError e = {};
        void *n1 = NULL, *n2 = NULL;
        FerryError err = {};

        make_world(dir, sizeof(dir), SIM_CLOCK_MANUAL);
        snprintf(config, sizeof(config), "world=%s", dir);
        CHECK_EQ_INT(sim_world_open(dir, &w, &e), 0);
        CHECK_EQ_INT(open_node("node1", config, &n1, &err), 0);
        CHECK_EQ_INT(open_node("node2", config, &n2, &err), 0);

        /* Unknown volumes: held by nobody, releasing one is a no-op, and
         * neither leaves a file behind. */
        CHECK_EQ_INT(ops->volume_held(n1, "data1", "/dev/sdb", &err), 0);
        CHECK_EQ_INT(ops->volume_release(n1, "data1", "/dev/sdb", 4, &err), 0);
        CHECK(!vol_exists(w, "data1"));
        CHECK_EQ_INT(ops->volume_activate(n1, "../data1", NULL, 1, &err), -EINVAL);
        CHECK(strstr(err.message, "not a valid sim volume name"));
        CHECK_EQ_INT(ops->volume_held(n1, "", NULL, &err), -EINVAL);

        /* prepare records the epoch and refuses an older one. */
        CHECK_EQ_INT(ops->volume_prepare(n2, "data1", "/dev/sdb", 3, &err), 0);
        CHECK_VOL(w, "data1", "", 0, 3);
        err = (FerryError) {};
        CHECK_EQ_INT(ops->volume_prepare(n1, "data1", "/dev/sdb", 2, &err), -ESTALE);
        CHECK(strstr(err.message, "sim: volume data1: epoch 2 is older than 3: a newer owner exists"));
        CHECK_VOL(w, "data1", "", 0, 3);
        CHECK_EQ_INT(ops->volume_prepare(n1, "data1", "/dev/sdb", 3, &err), 0);

        /* activate, held, idempotency. */
        CHECK_EQ_INT(ops->volume_activate(n1, "data1", "/dev/sdb", 2, &err), -ESTALE);
        CHECK_VOL(w, "data1", "", 0, 3);
        CHECK_EQ_INT(ops->volume_activate(n1, "data1", "/dev/sdb", 3, &err), 0);
        CHECK_VOL(w, "data1", "node1", 3, 3);
        CHECK_EQ_INT(ops->volume_held(n1, "data1", "/dev/sdb", &err), 1);
        CHECK_EQ_INT(ops->volume_held(n2, "data1", "/dev/sdb", &err), 0);
        CHECK_EQ_INT(ops->volume_activate(n1, "data1", "/dev/sdb", 3, &err), 0);
        CHECK_VOL(w, "data1", "node1", 3, 3);

        /* Another node at the holder's epoch: busy; older: stale. */
        err = (FerryError) {};
        CHECK_EQ_INT(ops->volume_activate(n2, "data1", "/dev/sdb", 3, &err), -EBUSY);
        CHECK(strstr(err.message, "held by node1 at epoch 3"));
        CHECK_EQ_INT(ops->volume_activate(n2, "data1", "/dev/sdb", 1, &err), -ESTALE);
        CHECK_VOL(w, "data1", "node1", 3, 3);
        CHECK_EQ_INT(ops->volume_held(n2, "data1", "/dev/sdb", &err), 0);

        /* An ownership change to node2 at epoch 5: the destination prepares
         * while the source still holds it; the old owner can no longer
         * re-take it with its epoch; the newer grant preempts. */
        CHECK_EQ_INT(ops->volume_prepare(n2, "data1", "/dev/sdb", 5, &err), 0);
        CHECK_VOL(w, "data1", "node1", 3, 5);
        CHECK_EQ_INT(ops->volume_activate(n1, "data1", "/dev/sdb", 4, &err), -ESTALE);
        CHECK(strstr(err.message, "epoch 4 is older than 5"));
        CHECK_EQ_INT(ops->volume_activate(n2, "data1", "/dev/sdb", 5, &err), 0);
        CHECK_VOL(w, "data1", "node2", 5, 5);
        CHECK_EQ_INT(ops->volume_held(n1, "data1", "/dev/sdb", &err), 0);
        CHECK_EQ_INT(ops->volume_held(n2, "data1", "/dev/sdb", &err), 1);
        CHECK_EQ_INT(ops->volume_activate(n1, "data1", "/dev/sdb", 5, &err), -EBUSY);
        CHECK(strstr(err.message, "held by node2 at epoch 5"));

        /* Preemption without a prepare: a newer epoch straight away. */
        CHECK_EQ_INT(ops->volume_activate(n1, "data1", "/dev/sdb", 6, &err), 0);
        CHECK_VOL(w, "data1", "node1", 6, 6);
        CHECK_EQ_INT(ops->volume_activate(n2, "data1", "/dev/sdb", 7, &err), 0);
        CHECK_VOL(w, "data1", "node2", 7, 7);

        /* The holder renews its grant at a newer epoch. */
        CHECK_EQ_INT(ops->volume_activate(n2, "data1", "/dev/sdb", 8, &err), 0);
        CHECK_VOL(w, "data1", "node2", 8, 8);

        /* release: a late release of an older grant does not undo the
         * newer one; a non-holder's release is a no-op (old epoch or not);
         * a newer epoch is recorded. */
        CHECK_EQ_INT(ops->volume_release(n1, "data1", "/dev/sdb", 3, &err), 0);
        CHECK_VOL(w, "data1", "node2", 8, 8);
        err = (FerryError) {};
        CHECK_EQ_INT(ops->volume_release(n2, "data1", "/dev/sdb", 7, &err), -ESTALE);
        CHECK(strstr(err.message, "epoch 7 is older than this node's grant (epoch 8)"));
        CHECK_VOL(w, "data1", "node2", 8, 8);
        CHECK_EQ_INT(ops->volume_held(n2, "data1", "/dev/sdb", &err), 1);
        CHECK_EQ_INT(ops->volume_release(n2, "data1", "/dev/sdb", 8, &err), 0);
        CHECK_VOL(w, "data1", "", 0, 8);
        CHECK_EQ_INT(ops->volume_held(n2, "data1", "/dev/sdb", &err), 0);
        CHECK_EQ_INT(ops->volume_release(n2, "data1", "/dev/sdb", 8, &err), 0);
        CHECK_VOL(w, "data1", "", 0, 8);
        CHECK_EQ_INT(ops->volume_release(n1, "data1", "/dev/sdb", 9, &err), 0);
        CHECK_VOL(w, "data1", "", 0, 9);
        CHECK_EQ_INT(ops->volume_activate(n1, "data1", "/dev/sdb", 9, &err), 0);
        CHECK_EQ_INT(ops->volume_release(n1, "data1", "/dev/sdb", 10, &err), 0);
        CHECK_VOL(w, "data1", "", 0, 10);
        CHECK_EQ_INT(ops->volume_activate(n2, "data1", "/dev/sdb", 9, &err), -ESTALE);

        /* A first activate creates the file; held by node1 here on. */
        CHECK_EQ_INT(ops->volume_activate(n1, "data2", NULL, 1, &err), 0);
        CHECK_VOL(w, "data2", "node1", 1, 1);

        /* Fault knobs: -EIO with a message, nothing read or changed (not
         * even a stale epoch is reported past the fault). */
        SimVolume v = vol(w, "data2");
        v.fail_activate = true;
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        err = (FerryError) {};
        CHECK_EQ_INT(ops->volume_activate(n2, "data2", NULL, 5, &err), -EIO);
        CHECK(strstr(err.message, "volume data2: activate failed"));
        CHECK(strstr(err.message, "fail_activate = yes"));
        CHECK_EQ_INT(ops->volume_activate(n1, "data2", NULL, 0, &err), -EIO);
        CHECK_VOL(w, "data2", "node1", 1, 1);
        CHECK_EQ_INT(ops->volume_release(n1, "data2", NULL, 1, &err), 0);      /* other hooks work */
        CHECK_EQ_INT(ops->volume_prepare(n2, "data2", NULL, 2, &err), 0);
        CHECK_EQ_INT(ops->volume_held(n2, "data2", NULL, &err), 0);
        v = vol(w, "data2");
        CHECK(v.fail_activate);
        v = (SimVolume) { .name = "data2", .holder = "node1", .holder_epoch = 2, .epoch = 2, .fail_prepare = true,
                          .fail_release = true, .fail_held = true };
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        CHECK_EQ_INT(ops->volume_prepare(n2, "data2", NULL, 3, &err), -EIO);
        CHECK(strstr(err.message, "prepare failed"));
        CHECK_EQ_INT(ops->volume_release(n1, "data2", NULL, 2, &err), -EIO);
        CHECK(strstr(err.message, "fail_release = yes"));
        CHECK_EQ_INT(ops->volume_held(n1, "data2", NULL, &err), -EIO);
        CHECK_EQ_INT(ops->volume_activate(n1, "data2", NULL, 2, &err), 0);
        CHECK_VOL(w, "data2", "node1", 2, 2);
        v.fail_prepare = v.fail_release = v.fail_held = false;
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        CHECK_EQ_INT(ops->volume_held(n1, "data2", NULL, &err), 1);

        /* Fencing node1 (the library call; the CLI in test_volumes_cli)
         * drops its holds and keeps the epochs: a newer grant elsewhere
         * proceeds, the old one stays refused. */
        CHECK_EQ_INT(ops->volume_activate(n2, "data3", NULL, 4, &err), 0);
        char **fenced = NULL;
        size_t n_fenced = 0;
        CHECK_EQ_INT(sim_volume_fence(w, "node1", &fenced, &n_fenced, &e), 0);
        CHECK_EQ_INT(n_fenced, 1);
        CHECK_STREQ(fenced[0], "data2");
        sim_strv_free(fenced, n_fenced);
        CHECK_VOL(w, "data2", "", 0, 2);
        CHECK_VOL(w, "data3", "node2", 4, 4);
        CHECK_EQ_INT(ops->volume_held(n1, "data2", NULL, &err), 0);
        CHECK_EQ_INT(ops->volume_activate(n1, "data2", NULL, 1, &err), -ESTALE);
        CHECK_EQ_INT(ops->volume_activate(n2, "data2", NULL, 3, &err), 0);
        CHECK_EQ_INT(sim_volume_fence(w, "node1", &fenced, &n_fenced, &e), 0);
        CHECK_EQ_INT(n_fenced, 0);

        ops->close(n1);
        ops->close(n2);
}

static int run(const char *cmd, char *out, size_t len) {
        FILE *f = popen(cmd, "r");
        size_t k = 0;

        CHECK(f);
        while (k + 1 < len && fgets(out + k, (int) (len - k), f))
                k += strlen(out + k);
        out[k] = 0;
        return pclose(f);
}

static void test_cli(void) {
        char dir[256], cmd[1024], out[65536];
        int r;

        sim_test_tempdir("cli", dir, sizeof(dir));
        snprintf(cmd, sizeof(cmd), "%s create %s --nodes 16 --vms 400 --seed 7 --vendors AuthenticAMD,GenuineIntel "
                 "--versions 8.0.0,9.0.0", cli_path, dir);
        r = run(cmd, out, sizeof(out));
        CHECK_EQ_INT(r, 0);
        CHECK(strstr(out, "16 nodes, 400 VMs"));
        snprintf(cmd, sizeof(cmd), "%s list %s | wc -l", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_EQ_INT(atoi(out), 400);
        snprintf(cmd, sizeof(cmd), "%s list --node node3 %s", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK(strstr(out, " node3 running\n"));
        CHECK(!strstr(out, " node4 "));
        snprintf(cmd, sizeof(cmd), "%s hosts %s", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK(strstr(out, "node2 GenuineIntel 8.0.0 "));
        CHECK(strstr(out, "node3 AuthenticAMD 9.0.0 "));
        snprintf(cmd, sizeof(cmd), "%s check %s", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK(strstr(out, "16 hosts, 400 VMs, 0 migrations in flight, 0 volumes, ok"));
        snprintf(cmd, sizeof(cmd), "%s advance %s 10s 2>&1", cli_path, dir);
        CHECK(run(cmd, out, sizeof(out)) != 0);
        CHECK(strstr(out, "monotonic clock"));
        snprintf(cmd, sizeof(cmd), "%s list %s --node node99 2>&1", cli_path, dir);
        CHECK(run(cmd, out, sizeof(out)) != 0);
        CHECK(strstr(out, "no host node99"));
        snprintf(cmd, sizeof(cmd), "%s create %s --nodes 2 2>&1", cli_path, dir);
        CHECK(run(cmd, out, sizeof(out)) != 0);
        CHECK(strstr(out, "already holds a world"));
}

static void write_file(const char *dir, const char *rel, const char *text) {
        char path[512];
        FILE *f;

        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        f = fopen(path, "we");
        CHECK(f);
        CHECK(fputs(text, f) >= 0);
        CHECK_EQ_INT(fclose(f), 0);
}

/* ferry-sim-world volumes, fence, fault and check on volumes. */
static void test_volumes_cli(void) {
        char dir[256], config[512], cmd[2048], out[8192];
        void *n1 = NULL, *n2 = NULL;
        FerryError err = {};

        sim_test_tempdir("world", dir, sizeof(dir));
        snprintf(cmd, sizeof(cmd), "%s create %s --nodes 3 --vms 0 --vendors AuthenticAMD", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        snprintf(config, sizeof(config), "world=%s", dir);
        CHECK_EQ_INT(open_node("node1", config, &n1, &err), 0);
        CHECK_EQ_INT(open_node("node2", config, &n2, &err), 0);

        snprintf(cmd, sizeof(cmd), "%s volumes %s", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_STREQ(out, "");
        snprintf(cmd, sizeof(cmd), "%s volumes --json %s", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_STREQ(out, "[]\n");

        CHECK_EQ_INT(ops->volume_activate(n1, "vol-a", NULL, 5, &err), 0);
        CHECK_EQ_INT(ops->volume_activate(n1, "vol-b", NULL, 2, &err), 0);
        CHECK_EQ_INT(ops->volume_activate(n2, "vol-c", NULL, 7, &err), 0);
        CHECK_EQ_INT(ops->volume_prepare(n2, "vol-d", NULL, 1, &err), 0);
        CHECK_EQ_INT(ops->volume_prepare(n2, "vol-a", NULL, 6, &err), 0);
        snprintf(cmd, sizeof(cmd), "%s volumes %s", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_STREQ(out,
                    "vol-a node1 5 6\n"
                    "vol-b node1 2 2\n"
                    "vol-c node2 7 7\n"
                    "vol-d - 0 1\n");
        snprintf(cmd, sizeof(cmd), "%s volumes %s --json", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_STREQ(out,
                    "[{\"name\":\"vol-a\",\"holder\":\"node1\",\"holder_epoch\":5,\"epoch\":6},"
                    "{\"name\":\"vol-b\",\"holder\":\"node1\",\"holder_epoch\":2,\"epoch\":2},"
                    "{\"name\":\"vol-c\",\"holder\":\"node2\",\"holder_epoch\":7,\"epoch\":7},"
                    "{\"name\":\"vol-d\",\"holder\":null,\"holder_epoch\":0,\"epoch\":1}]\n");
        snprintf(cmd, sizeof(cmd), "%s check %s", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK(strstr(out, "3 hosts, 0 VMs, 0 migrations in flight, 4 volumes, ok"));

        /* Fencing node1: its holds go, node2's stay, epochs stay. */
        snprintf(cmd, sizeof(cmd), "%s fence %s node1", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_STREQ(out, "fenced node1: 2 hold(s) cleared: vol-a vol-b\n");
        snprintf(cmd, sizeof(cmd), "%s volumes %s", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_STREQ(out,
                    "vol-a - 0 6\n"
                    "vol-b - 0 2\n"
                    "vol-c node2 7 7\n"
                    "vol-d - 0 1\n");
        CHECK_EQ_INT(ops->volume_held(n1, "vol-a", NULL, &err), 0);
        CHECK_EQ_INT(ops->volume_held(n2, "vol-c", NULL, &err), 1);
        snprintf(cmd, sizeof(cmd), "%s fence %s node1", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_STREQ(out, "fenced node1: 0 hold(s) cleared\n");
        snprintf(cmd, sizeof(cmd), "%s fence %s 2>&1", cli_path, dir);
        CHECK(run(cmd, out, sizeof(out)) != 0);
        CHECK(strstr(out, "fence needs DIR and NODE"));

        /* Fault knobs from the CLI; a new volume's file is made for them. */
        snprintf(cmd, sizeof(cmd), "%s fault %s vol-c release on", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_EQ_INT(ops->volume_release(n2, "vol-c", NULL, 7, &err), -EIO);
        CHECK(strstr(err.message, "fail_release = yes"));
        snprintf(cmd, sizeof(cmd), "%s fault %s vol-c release off", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_EQ_INT(ops->volume_release(n2, "vol-c", NULL, 7, &err), 0);
        snprintf(cmd, sizeof(cmd), "%s fault %s vol-new activate on", cli_path, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_EQ_INT(ops->volume_activate(n1, "vol-new", NULL, 1, &err), -EIO);
        snprintf(cmd, sizeof(cmd), "%s fault %s vol-new resize on 2>&1", cli_path, dir);
        CHECK(run(cmd, out, sizeof(out)) != 0);
        CHECK(strstr(out, "unknown hook \"resize\""));

        /* Delay knobs: milliseconds or off, written only when set; the
         * hook through the module takes that long. */
        snprintf(cmd, sizeof(cmd), "%s fault %s vol-c delay-activate 300 && %s fault %s vol-c delay-after-release 7 && "
                 "%s fault %s vol-c delay-held 5 && grep _ms %s/volumes/vol-c.conf",
                 cli_path, dir, cli_path, dir, cli_path, dir, dir);
        CHECK_EQ_INT(run(cmd, out, sizeof(out)), 0);
        CHECK_STREQ(out, "delay_activate_ms = 300\ndelay_held_ms = 5\ndelay_after_release_ms = 7\n");
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        CHECK_EQ_INT(ops->volume_activate(n1, "vol-c", NULL, 8, &err), 0);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        CHECK((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 >= 300);
        snprintf(cmd, sizeof(cmd), "%s fault %s vol-c delay-activate off && %s fault %s vol-c delay-after-release 0 && "
                 "%s fault %s vol-c delay-held 0 && grep -c _ms %s/volumes/vol-c.conf",
                 cli_path, dir, cli_path, dir, cli_path, dir, dir);
        CHECK(run(cmd, out, sizeof(out)) != 0);       /* grep -c finds none */
        CHECK_STREQ(out, "0\n");
        static const char *const bad_delays[][2] = {
                { "delay-activate soon", "expected milliseconds (0 to 3600000) or off, got \"soon\"" },
                { "delay-activate 3600001", "got \"3600001\"" },
                { "delay-after-held 5", "unknown hook \"delay-after-held\"" },
                { "delay-release on", "got \"on\"" },
                { "release 100", "expected on or off" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_delays); i++) {
                snprintf(cmd, sizeof(cmd), "%s fault %s vol-c %s 2>&1", cli_path, dir, bad_delays[i][0]);
                CHECK(run(cmd, out, sizeof(out)) != 0);
                if (!strstr(out, bad_delays[i][1]))
                        fprintf(stderr, "fault %s: \"%s\"\n", bad_delays[i][0], out);
                CHECK(strstr(out, bad_delays[i][1]));
        }

        /* check names bad volume files and unknown holders. */
        write_file(dir, "volumes/vol-x.conf", "holder = node1\nholder_epoch = 9\nepoch = 3\n");
        write_file(dir, "volumes/vol-y.conf", "holder = node9\nholder_epoch = 1\nepoch = 1\n");
        write_file(dir, "volumes/vol-z.conf", "holder = node1\nowner = node1\n");
        snprintf(cmd, sizeof(cmd), "%s check %s 2>&1", cli_path, dir);
        CHECK(run(cmd, out, sizeof(out)) != 0);
        CHECK(strstr(out, "volumes/vol-x.conf: holder_epoch 9 is newer than epoch 3"));
        CHECK(strstr(out, "volumes/vol-y.conf: held by node9, which is not a host"));
        CHECK(strstr(out, "volumes/vol-z.conf:2: unknown key \"owner\""));
        CHECK(strstr(out, "3 problem(s)"));
        snprintf(cmd, sizeof(cmd), "%s volumes %s 2>&1", cli_path, dir);
        CHECK(run(cmd, out, sizeof(out)) != 0);
        CHECK(strstr(out, "vol-x.conf"));
        /* A hook on a bad file fails with the parser's message. */
        CHECK_EQ_INT(ops->volume_held(n1, "vol-x", NULL, &err), -EINVAL);
        CHECK(strstr(err.message, "holder_epoch 9 is newer than epoch 3"));

        ops->close(n1);
        ops->close(n2);
}

int main(int argc, char **argv) {
        static const TestCase tests[] = {
                { "load the module", test_load },
                { "open errors", test_open_errors },
                { "end to end: two nodes, migrate, abort", test_end_to_end },
                { "a ferryd dies mid-migration", test_crash },
                { "ferry-sim-world", test_cli },
                { "volumes: epochs, preemption, release, faults, fence", test_volumes },
                { "ferry-sim-world volumes, fence, fault, check", test_volumes_cli },
        };

        if (argc != 3) {
                fprintf(stderr, "usage: %s MODULE.so FERRY-SIM-WORLD\n", argv[0]);
                return 2;
        }
        module_path = argv[1];
        cli_path = argv[2];
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
