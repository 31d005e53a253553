/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The libvirt backend as ferryd sees it: dlopen()ed, ABI version checked,
 * driven through FerryBackendOps only.
 *
 *   test-libvirt-backend MODULE
 *       the test: against libvirt's built-in test driver (test:///default,
 *       in this process, no daemon)
 *   test-libvirt-backend MODULE facts URI
 *       print host facts and the VM inventory of URI
 *   test-libvirt-backend MODULE cpu URI VM DEST_URI
 *       ask cpu_compatible()
 *   test-libvirt-backend MODULE watch URI SECONDS
 *       host_facts() and list_vms() once a second on one context, printing
 *       results or errors (restart libvirtd meanwhile to see a reconnect)
 *   test-libvirt-backend MODULE migrate SRC_URI VM DEST_URI MIGRATION_ADDR [OPTION...]
 *       migrate for real, printing progress every 200 ms; exit 0 if the
 *       outcome is the expected one (completed unless --expect says so).
 *       Options: --bandwidth BYTES/S (suffix K, M, G: 4M)  --max-downtime MS
 *       --compression  --parallel N  --auto-converge  --postcopy (allowed)
 *       --postcopy-after SEC  --abort-after SEC  --downtime-after SEC:MS
 *       --speed-after SEC:MIB/S (virDomainMigrateSetMaxSpeed, not a hook)
 *       --expect completed|cancelled|failed  --timeout SEC
 *   test-libvirt-backend MODULE adopt SRC_URI VM [OPTION...]
 *       take over with migrate_adopt() a migration that libvirtd runs for a
 *       caller that died (a `migrate` above killed with SIGKILL mid-way),
 *       print when libvirt's job started, try a second adopt (refused) and
 *       auto-converge (refused: not known), then follow and steer it as
 *       `migrate` does; exit 0 if the outcome is the expected one (any
 *       without --expect; --expect none: there was nothing to adopt).
 *       Options: --max-downtime MS (set at once)  --dest URI (print where
 *       the VM is there too)  --postcopy-after SEC  --abort-after SEC
 *       --downtime-after SEC:MS  --speed-after SEC:MIB/S  --expect OUTCOME
 *       --release-after SEC (release the running handle; both modes)
 *       --timeout SEC
 */

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "ferry-backend.h"
#include "macro.h"
#include "test-util.h"

static const FerryBackendOps *ops;

static void load(const char *path) {
        void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!dl) {
                fprintf(stderr, "cannot load %s: %s\n", path, dlerror());
                exit(1);
        }
        ops = dlsym(dl, FERRY_BACKEND_SYMBOL);
        if (!ops) {
                fprintf(stderr, "%s exports no %s\n", path, FERRY_BACKEND_SYMBOL);
                exit(1);
        }
        CHECK_EQ_INT(ops->abi_version, FERRY_BACKEND_ABI_VERSION);
        CHECK_STREQ(ops->name, "libvirt");
        CHECK(ops->open && ops->close && ops->host_facts && ops->list_vms && ops->free_vms);
        /* Not its business (yet): volumes. */
        CHECK(!ops->volume_prepare && !ops->volume_activate && !ops->volume_release && !ops->volume_held);
}

static int open_backend(const char *config, void **ret, FerryError *error) {
        FerryBackendHost host = {
                .struct_size = sizeof(host),
                .node_name = "node1",
                .config = config,
                .state_dir = "/nonexistent",
        };
        *error = (FerryError) {};
        return ops->open(&host, ret, error);
}

static void *open_or_die(const char *config) {
        FerryError e;
        void *ctx = NULL;
        int r = open_backend(config, &ctx, &e);
        if (r < 0) {
                fprintf(stderr, "open(\"%s\"): %s: %s\n", config, strerror(-r), e.message);
                exit(1);
        }
        return ctx;
}

static const FerryVm *find_vm(const FerryVm *vms, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(vms[i].name, name))
                        return &vms[i];
        return NULL;
}

static uint64_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

/* ---- against test:///default ------------------------------------------ */

/* A second domain with what the inventory has to tell apart: a disk on
 * shared storage, a local one, a shareable one, pass-through devices and a
 * CPU model. Defined through libvirt directly: the test driver's state is
 * shared by all connections of a process, the backend's included. */
static const char extra_domain[] =
        "<domain type='test'>"
        "  <name>ferry-extra</name>"
        "  <uuid>7c1e9a52-3b4d-4f6e-8a9b-0c1d2e3f4a5b</uuid>"
        "  <memory unit='MiB'>512</memory>"
        "  <vcpu current='1'>2</vcpu>"
        "  <os><type arch='i686'>hvm</type></os>"
        "  <cpu mode='custom' match='exact'><model>pentium3</model></cpu>"
        "  <devices>"
        "    <disk type='file' device='disk'><source file='/srv/shared/extra.img'/><target dev='vda'/></disk>"
        "    <disk type='file' device='disk'><source file='/var/lib/extra-local.img'/><target dev='vdb'/></disk>"
        "    <disk type='block' device='disk'><source dev='/dev/sdz'/><target dev='vdc'/><shareable/></disk>"
        "    <hostdev mode='subsystem' type='pci' managed='yes'><source>"
        "      <address domain='0x0000' bus='0x41' slot='0x00' function='0x0'/></source></hostdev>"
        "  </devices>"
        "</domain>";

static void test_open_config(void) {
        FerryError e;
        void *ctx = NULL;

        CHECK_EQ_INT(open_backend("uri=test:///default colour=blue flavour=mint", &ctx, &e), -EINVAL);
        CHECK(strstr(e.message, "\"colour\"") && strstr(e.message, "\"flavour\""));
        CHECK_EQ_INT(open_backend("uri=test:///default justaword", &ctx, &e), -EINVAL);
        CHECK(strstr(e.message, "justaword"));
        CHECK_EQ_INT(open_backend("uri=test:///default shared_paths=relative/path", &ctx, &e), -EINVAL);
        CHECK(strstr(e.message, "shared_paths"));
        CHECK_EQ_INT(open_backend("uri=test:///default dirty_rate_sample=many", &ctx, &e), -EINVAL);
        CHECK_EQ_INT(open_backend("uri=test:///default migration_address=tcp://x/", &ctx, &e), -EINVAL);
        /* A URI libvirt has no driver for: refused at open, with the URI. */
        int r = open_backend("uri=nosuchdriver:///system", &ctx, &e);
        CHECK(r < 0);
        CHECK(strstr(e.message, "nosuchdriver:///system"));

        ctx = open_or_die("uri=test:///default migration_address=10.0.0.1 shared_paths=/srv/shared:/mnt/x "
                          "dirty_rate_sample=0");
        ops->close(ctx);
}

static void test_host_facts(void) {
        void *ctx = open_or_die("uri=test:///default");
        FerryHostFacts f = { .struct_size = sizeof(f) };
        FerryError e = {};

        CHECK_EQ_INT(ops->host_facts(ctx, &f, &e), 0);
        CHECK_EQ_INT(f.struct_size, sizeof(f));
        /* The test driver's capabilities name no CPU vendor or model; the
         * model then comes from virNodeGetInfo(). */
        CHECK_STREQ(f.cpu_vendor, "");
        CHECK_STREQ(f.cpu_model, "i686");
        /* Its <features><pae/>... are not CPU feature names. */
        CHECK_STREQ(f.cpu_features, "");
        CHECK_EQ_INT(f.cpus, 16);
        CHECK_EQ_INT(f.memory_total, UINT64_C(3145728) * 1024);
        CHECK(f.memory_free > 0 && f.memory_free <= f.memory_total);
        CHECK_STREQ(f.hypervisor_name, "TEST");
        CHECK(f.hypervisor_version[0] >= '0' && f.hypervisor_version[0] <= '9');
        CHECK(strchr(f.hypervisor_version, '.'));

        /* An older ferryd with a shorter struct: nothing past its end. */
        struct {
                FerryHostFacts facts;
                char guard[8];
        } small;
        memset(&small, 0x5a, sizeof(small));
        small.facts.struct_size = offsetof(FerryHostFacts, memory_total);
        CHECK_EQ_INT(ops->host_facts(ctx, &small.facts, &e), 0);
        CHECK_EQ_INT(small.facts.struct_size, offsetof(FerryHostFacts, memory_total));
        CHECK_EQ_INT(small.facts.cpus, 16);
        CHECK_EQ_INT((unsigned char) ((char *) &small.facts)[offsetof(FerryHostFacts, memory_total)], 0x5a);
        ops->close(ctx);
}

/* The test driver's state lives as long as a connection to it: this one
 * keeps it (and ferry-extra) for the whole run. */
static virConnectPtr fixture;
static virDomainPtr extra;

static void test_list_vms(void) {
        void *ctx = open_or_die("uri=test:///default shared_paths=/srv/shared");
        FerryVm *vms = NULL;
        size_t n = 0;
        FerryError e = {};

        CHECK_EQ_INT(ops->list_vms(ctx, &vms, &n, &e), 0);
        CHECK_EQ_INT(n, 2);
        const FerryVm *t = find_vm(vms, n, "test");
        CHECK(t);
        CHECK_STREQ(t->uuid, "6695eb01-f6a4-8304-79aa-97f2502e193f");
        CHECK_EQ_INT(t->state, FERRY_VM_RUNNING);
        CHECK_EQ_INT(t->vcpus, 2);
        CHECK_EQ_INT(t->memory, UINT64_C(8388608) * 1024);
        CHECK_EQ_INT(t->n_disks, 1);
        CHECK_STREQ(t->disks[0].target, "vda");
        CHECK_STREQ(t->disks[0].path, "/guest/diskimage1");
        CHECK(!t->disks[0].shared);
        CHECK_EQ_INT(t->n_passthrough, 0);
        /* No earlier sample: no CPU figure yet. */
        CHECK_EQ_INT(t->cpu_use_permille, 0);

        const FerryVm *x = find_vm(vms, n, "ferry-extra");
        CHECK(x);
        CHECK_EQ_INT(x->state, FERRY_VM_RUNNING);
        CHECK_EQ_INT(x->vcpus, 1);
        CHECK_EQ_INT(x->memory, UINT64_C(512) << 20);
        CHECK_EQ_INT(x->n_disks, 3);
        CHECK(x->disks[0].shared);      /* below shared_paths */
        CHECK(!x->disks[1].shared);     /* local */
        CHECK(x->disks[2].shared);      /* <shareable/> */
        CHECK_EQ_INT(x->n_passthrough, 1);
        ops->free_vms(ctx, vms, n);

        /* The test driver counts wall-clock time as CPU time: a second
         * inventory a little over a second later sees one full CPU. */
        usleep(1100 * 1000);
        CHECK_EQ_INT(ops->list_vms(ctx, &vms, &n, &e), 0);
        t = find_vm(vms, n, "test");
        CHECK(t);
        if (t->cpu_use_permille < 900 || t->cpu_use_permille > 1100) {
                fprintf(stderr, "cpu_use_permille = %" PRIu32 ", expected about 1000\n", t->cpu_use_permille);
                exit(1);
        }
        ops->free_vms(ctx, vms, n);

        /* Paused and shut off. */
        CHECK_EQ_INT(virDomainSuspend(extra), 0);
        CHECK_EQ_INT(ops->list_vms(ctx, &vms, &n, &e), 0);
        CHECK_EQ_INT(find_vm(vms, n, "ferry-extra")->state, FERRY_VM_PAUSED);
        ops->free_vms(ctx, vms, n);
        CHECK_EQ_INT(virDomainDestroy(extra), 0);
        CHECK_EQ_INT(ops->list_vms(ctx, &vms, &n, &e), 0);
        CHECK_EQ_INT(find_vm(vms, n, "ferry-extra")->state, FERRY_VM_SHUTOFF);
        CHECK_EQ_INT(find_vm(vms, n, "ferry-extra")->cpu_use_permille, 0);
        ops->free_vms(ctx, vms, n);
        CHECK_EQ_INT(virDomainCreate(extra), 0);
        ops->close(ctx);
}

static void test_cpu_compatible(void) {
        void *ctx = open_or_die("uri=test:///default");
        FerryError e = {};

        CHECK(ops->cpu_compatible);
        /* No <cpu> element: QEMU's default model, nothing to compare. */
        CHECK_EQ_INT(ops->cpu_compatible(ctx, "test", "test:///default", &e), 0);
        CHECK_EQ_INT(ops->cpu_compatible(ctx, "no-such-vm", "test:///default", &e), -ENOENT);
        CHECK(strstr(e.message, "no-such-vm"));
        /* A CPU model: the test driver cannot compare. That must not read
         * as "incompatible" (-ENOTSUP, which is -EOPNOTSUPP on Linux). */
        e = (FerryError) {};
        int r = ops->cpu_compatible(ctx, "ferry-extra", "test:///default", &e);
        CHECK_EQ_INT(r, -ENOSYS);
        CHECK(strstr(e.message, "not supported"));
        CHECK_EQ_INT(ops->cpu_compatible(ctx, "test", "nosuchdriver:///x", &e), 0);   /* nothing to compare */
        e = (FerryError) {};
        r = ops->cpu_compatible(ctx, "ferry-extra", "nosuchdriver:///x", &e);
        CHECK(r < 0 && r != -ENOTSUP);
        CHECK(strstr(e.message, "nosuchdriver:///x"));
        ops->close(ctx);
}

static void test_migration_hooks(void) {
        void *ctx = open_or_die("uri=test:///default");
        FerryError e = {};
        void *handle = NULL;
        FerryMigrateParams p = {
                .struct_size = sizeof(p),
                .destination_node = "node2",
                .destination_uri = "test:///default",
                .migration_address = "192.0.2.1",
                .bandwidth = 1,                 /* rounds up to 1 MiB/s, not 0 */
                .compression = true,
                .parallel_connections = 2,
        };

        CHECK(ops->migrate_start && ops->migrate_progress && ops->migrate_abort && ops->migrate_set_max_downtime &&
              ops->migrate_set_auto_converge && ops->migrate_start_postcopy && ops->migrate_release &&
              ops->migrate_adopt);

        /* Nothing to take over: no such VM. The test driver reports no
         * jobs at all (virDomainGetJobStats is not supported): it cannot
         * tell, which must not read as "none in flight". The rest of
         * migrate_adopt() needs a real migration (see `adopt` below). */
        CHECK_EQ_INT(ops->migrate_adopt(ctx, "no-such-vm", &handle, &e), -ENOENT);
        CHECK(strstr(e.message, "no outgoing migration of VM \"no-such-vm\""));
        e = (FerryError) {};
        CHECK_EQ_INT(ops->migrate_adopt(ctx, "test", &handle, &e), -EOPNOTSUPP);
        CHECK(strstr(e.message, "VM \"test\"") && strstr(e.message, "not supported"));
        CHECK_EQ_INT(ops->migrate_start(ctx, "no-such-vm", &p, &handle, &e), -ENOENT);
        p.destination_uri = "";
        CHECK_EQ_INT(ops->migrate_start(ctx, "test", &p, &handle, &e), -EINVAL);
        CHECK(strstr(e.message, "destination URI"));
        p.destination_uri = "test:///default";
        p.migration_address = NULL;
        CHECK_EQ_INT(ops->migrate_start(ctx, "test", &p, &handle, &e), -EINVAL);
        CHECK(strstr(e.message, "migration address"));
        p.migration_address = "192.0.2.1";

        /* The test driver cannot migrate: the thread reports FAILED with
         * libvirt's reason, and the VM stays where it is. */
        CHECK_EQ_INT(ops->migrate_start(ctx, "test", &p, &handle, &e), 0);
        CHECK(handle);
        FerryMigrateProgress pr = { .struct_size = sizeof(pr) };
        for (int i = 0; i < 100; i++) {
                pr = (FerryMigrateProgress) { .struct_size = sizeof(pr) };
                CHECK_EQ_INT(ops->migrate_progress(ctx, handle, &pr, &e), 0);
                if (pr.phase >= FERRY_MIGRATE_COMPLETED)
                        break;
                CHECK(pr.phase == FERRY_MIGRATE_SETUP || pr.phase == FERRY_MIGRATE_SWITCHOVER);
                usleep(20 * 1000);
        }
        CHECK_EQ_INT(pr.phase, FERRY_MIGRATE_FAILED);
        CHECK(strstr(pr.error.message, "migration of \"test\" to test:///default failed: "));
        CHECK(pr.finished_usec > 0);

        /* Over: nothing left to steer. */
        CHECK_EQ_INT(ops->migrate_abort(ctx, handle, &e), -EALREADY);
        CHECK_EQ_INT(ops->migrate_set_max_downtime(ctx, handle, 300, &e), -EALREADY);
        CHECK_EQ_INT(ops->migrate_start_postcopy(ctx, handle, &e), -EPERM);
        CHECK(strstr(e.message, "not permitted"));
        CHECK_EQ_INT(ops->migrate_set_auto_converge(ctx, handle, true, &e), -EOPNOTSUPP);
        CHECK(strstr(e.message, "auto-converge"));
        CHECK_EQ_INT(ops->migrate_set_auto_converge(ctx, handle, false, &e), 0);  /* as it is */
        ops->migrate_release(ctx, handle);

        FerryVm *vms = NULL;
        size_t n = 0;
        CHECK_EQ_INT(ops->list_vms(ctx, &vms, &n, &e), 0);
        CHECK(find_vm(vms, n, "test"));
        CHECK_EQ_INT(find_vm(vms, n, "test")->state, FERRY_VM_RUNNING);
        ops->free_vms(ctx, vms, n);

        /* A downtime limit the driver refuses fails the migration before
         * it starts, saying so. An unreleased handle is cleaned up by
         * close(). */
        p.max_downtime_ms = 100;
        CHECK_EQ_INT(ops->migrate_start(ctx, "test", &p, &handle, &e), 0);
        for (int i = 0; i < 100; i++) {
                pr = (FerryMigrateProgress) { .struct_size = sizeof(pr) };
                CHECK_EQ_INT(ops->migrate_progress(ctx, handle, &pr, &e), 0);
                if (pr.phase >= FERRY_MIGRATE_COMPLETED)
                        break;
                usleep(20 * 1000);
        }
        CHECK_EQ_INT(pr.phase, FERRY_MIGRATE_FAILED);
        CHECK(strstr(pr.error.message, "maximum downtime"));
        CHECK_EQ_INT(pr.started_usec, 0);
        ops->close(ctx);
}

static int run_test_driver(void) {
        static const TestCase tests[] = {
                { "open and its configuration", test_open_config },
                { "host facts", test_host_facts },
                { "VM inventory", test_list_vms },
                { "CPU compatibility", test_cpu_compatible },
                { "migration hooks", test_migration_hooks },
        };
        fixture = virConnectOpen("test:///default");
        CHECK(fixture);
        extra = virDomainDefineXML(fixture, extra_domain);
        CHECK(extra);
        CHECK_EQ_INT(virDomainCreate(extra), 0);
        int r = run_tests(tests, ELEMENTSOF(tests));
        virDomainFree(extra);
        virConnectClose(fixture);
        return r;
}

/* ---- by hand ----------------------------------------------------------- */

static const char *state_name(FerryVmState s) {
        switch (s) {
        case FERRY_VM_RUNNING: return "running";
        case FERRY_VM_PAUSED: return "paused";
        case FERRY_VM_SHUTOFF: return "shutoff";
        case FERRY_VM_MIGRATING: return "migrating";
        default: return "other";
        }
}

static const char *phase_name(FerryMigratePhase p) {
        switch (p) {
        case FERRY_MIGRATE_SETUP: return "setup";
        case FERRY_MIGRATE_PRECOPY: return "precopy";
        case FERRY_MIGRATE_POSTCOPY: return "postcopy";
        case FERRY_MIGRATE_SWITCHOVER: return "switchover";
        case FERRY_MIGRATE_COMPLETED: return "completed";
        case FERRY_MIGRATE_FAILED: return "failed";
        case FERRY_MIGRATE_CANCELLED: return "cancelled";
        default: return "?";
        }
}

static int print_facts(const char *uri) {
        _cleanup_free_ char *config = NULL;
        FerryHostFacts f = { .struct_size = sizeof(f) };
        FerryVm *vms = NULL;
        size_t n = 0;
        FerryError e = {};
        int r;

        CHECK(asprintf(&config, "uri=%s", uri) > 0);
        void *ctx = open_or_die(config);
        r = ops->host_facts(ctx, &f, &e);
        if (r < 0) {
                fprintf(stderr, "host_facts: %s\n", e.message);
                return 1;
        }
        printf("vendor=%s model=%s cpus=%" PRIu32 " memory=%" PRIu64 "/%" PRIu64 " MiB free hypervisor=%s %s\n"
               "features=%s\n", f.cpu_vendor, f.cpu_model, f.cpus, f.memory_free >> 20, f.memory_total >> 20,
               f.hypervisor_name, f.hypervisor_version, f.cpu_features);
        r = ops->list_vms(ctx, &vms, &n, &e);
        if (r < 0) {
                fprintf(stderr, "list_vms: %s\n", e.message);
                return 1;
        }
        for (size_t i = 0; i < n; i++) {
                printf("vm %s %s %s vcpus=%" PRIu32 " memory=%" PRIu64 "MiB cpu=%" PRIu32 "%% dirty=%" PRIu64
                       "MiB/s passthrough=%" PRIu32 "\n", vms[i].name, vms[i].uuid, state_name(vms[i].state),
                       vms[i].vcpus, vms[i].memory >> 20, vms[i].cpu_use_permille / 10, vms[i].dirty_rate >> 20,
                       vms[i].n_passthrough);
                for (uint32_t d = 0; d < vms[i].n_disks; d++)
                        printf("  disk %s %s %s\n", vms[i].disks[d].target, vms[i].disks[d].path,
                               vms[i].disks[d].shared ? "shared" : "local");
        }
        ops->free_vms(ctx, vms, n);
        ops->close(ctx);
        return 0;
}

static int print_cpu(const char *uri, const char *vm, const char *dest) {
        _cleanup_free_ char *config = NULL;
        FerryError e = {};

        CHECK(asprintf(&config, "uri=%s", uri) > 0);
        void *ctx = open_or_die(config);
        int r = ops->cpu_compatible(ctx, vm, dest, &e);
        printf("cpu_compatible(%s, %s) = %d (%s)%s%s\n", vm, dest, r, r < 0 ? strerror(-r) : "compatible",
               r < 0 ? ": " : "", r < 0 ? e.message : "");
        ops->close(ctx);
        return r == 0 ? 0 : 1;
}

static int watch(const char *uri, int seconds) {
        _cleanup_free_ char *config = NULL;

        CHECK(asprintf(&config, "uri=%s", uri) > 0);
        void *ctx = open_or_die(config);
        for (int i = 0; i < seconds; i++) {
                FerryHostFacts f = { .struct_size = sizeof(f) };
                FerryVm *vms = NULL;
                size_t n = 0;
                FerryError e = {};
                uint64_t t0 = now_usec();
                int r = ops->host_facts(ctx, &f, &e);
                if (r >= 0)
                        r = ops->list_vms(ctx, &vms, &n, &e);
                printf("%2d: %s (%.1f ms)", i, r < 0 ? strerror(-r) : "ok", (double) (now_usec() - t0) / 1000);
                if (r < 0)
                        printf(": %s", e.message);
                for (size_t k = 0; r >= 0 && k < n; k++)
                        printf(" %s:%s:cpu=%" PRIu32 "%%", vms[k].name, state_name(vms[k].state),
                               vms[k].cpu_use_permille / 10);
                printf("\n");
                fflush(stdout);
                if (r >= 0)
                        ops->free_vms(ctx, vms, n);
                sleep(1);
        }
        ops->close(ctx);
        return 0;
}

/* "4M", "512K", "1G" (binary multiples) or plain bytes. */
static uint64_t parse_size(const char *v) {
        char *end;
        uint64_t n = strtoull(v, &end, 10);
        switch (*end) {
        case 'k': case 'K': return n << 10;
        case 'm': case 'M': return n << 20;
        case 'g': case 'G': return n << 30;
        default: return n;
        }
}

/* What to do to a running migration, and when (seconds since the start
 * of the hand tool's follow(); -1 = never). */
typedef struct Steering {
        const char *source_uri, *vm;
        double postcopy_after, abort_after, downtime_after, speed_after, release_after, timeout;
        bool released;          /* by --release-after, while it ran */
        uint64_t downtime_after_ms;
        unsigned long speed_mib;
        const char *expect;
} Steering;

/* Options both hand modes take; false if `argv[*i]` is none of them. */
static bool steering_option(int argc, char *argv[], int *i, Steering *s, int *ret) {
        const char *a = argv[*i], *v = *i + 1 < argc ? argv[*i + 1] : NULL;
        char *colon;

        *ret = 0;
        if (!v)
                return false;
        if (streq(a, "--abort-after"))
                s->abort_after = strtod(v, NULL);
        else if (streq(a, "--postcopy-after"))
                s->postcopy_after = strtod(v, NULL);
        else if (streq(a, "--release-after"))
                s->release_after = strtod(v, NULL);
        else if (streq(a, "--downtime-after") || streq(a, "--speed-after")) {
                colon = strchr(v, ':');
                if (!colon) {
                        fprintf(stderr, "%s SEC:%s\n", a, streq(a, "--speed-after") ? "MIB/S" : "MS");
                        *ret = 2;
                        return true;
                }
                if (streq(a, "--downtime-after")) {
                        s->downtime_after = strtod(v, NULL);
                        s->downtime_after_ms = strtoull(colon + 1, NULL, 10);
                } else {
                        s->speed_after = strtod(v, NULL);
                        s->speed_mib = strtoul(colon + 1, NULL, 10);
                }
        } else if (streq(a, "--expect"))
                s->expect = v;
        else if (streq(a, "--timeout"))
                s->timeout = strtod(v, NULL);
        else
                return false;
        (*i)++;
        return true;
}

/* Not a backend hook: libvirt's own call, as an operator would make it
 * (virsh migrate-setspeed), to lift the cap of a migration we do not own. */
static void set_max_speed(const Steering *s) {
        virConnectPtr conn = virConnectOpen(s->source_uri);
        virDomainPtr dom = conn ? virDomainLookupByName(conn, s->vm) : NULL;
        int r = dom ? virDomainMigrateSetMaxSpeed(dom, s->speed_mib, 0) : -1;
        const virError *e = r < 0 ? virGetLastError() : NULL;
        printf("virDomainMigrateSetMaxSpeed(%lu MiB/s): %s\n", s->speed_mib, r < 0 ? (e ? e->message : "failed") : "ok");
        if (dom)
                virDomainFree(dom);
        if (conn)
                virConnectClose(conn);
}

/* Prints progress every 200 ms and steers as asked, until the end. */
static FerryMigrateProgress follow(void *ctx, void *handle, Steering *s, uint64_t t0, uint64_t *ret_slowest_usec) {
        FerryMigrateProgress pr;
        FerryError e = {};
        uint64_t slowest = 0;
        int r;

        for (;;) {
                double t = (double) (now_usec() - t0) / 1e6;
                uint64_t c0 = now_usec();
                pr = (FerryMigrateProgress) { .struct_size = sizeof(pr) };
                r = ops->migrate_progress(ctx, handle, &pr, &e);
                slowest = MAX(slowest, now_usec() - c0);
                if (r < 0) {
                        fprintf(stderr, "migrate_progress: %s: %s\n", strerror(-r), e.message);
                        exit(1);
                }
                printf("t=%6.2fs %-10s iter=%-3" PRIu32 " total=%" PRIu64 "MiB sent=%" PRIu64 "MiB left=%" PRIu64
                       "MiB rate=%" PRIu64 "MiB/s dirty=%" PRIu64 "MiB/s\n", t, phase_name(pr.phase), pr.iteration,
                       pr.memory_total >> 20, pr.memory_processed >> 20, pr.memory_remaining >> 20, pr.rate >> 20,
                       pr.dirty_rate >> 20);
                fflush(stdout);
                if (pr.phase >= FERRY_MIGRATE_COMPLETED)
                        break;
                if (s->postcopy_after >= 0 && t >= s->postcopy_after) {
                        s->postcopy_after = -1;
                        r = ops->migrate_start_postcopy(ctx, handle, &e);
                        printf("migrate_start_postcopy: %s %s\n", r < 0 ? strerror(-r) : "ok", r < 0 ? e.message : "");
                }
                if (s->abort_after >= 0 && t >= s->abort_after) {
                        s->abort_after = -1;
                        r = ops->migrate_abort(ctx, handle, &e);
                        printf("migrate_abort: %s %s\n", r < 0 ? strerror(-r) : "ok", r < 0 ? e.message : "");
                }
                if (s->downtime_after >= 0 && t >= s->downtime_after) {
                        s->downtime_after = -1;
                        r = ops->migrate_set_max_downtime(ctx, handle, s->downtime_after_ms, &e);
                        printf("migrate_set_max_downtime(%" PRIu64 "): %s %s\n", s->downtime_after_ms,
                               r < 0 ? strerror(-r) : "ok", r < 0 ? e.message : "");
                }
                if (s->speed_after >= 0 && t >= s->speed_after) {
                        s->speed_after = -1;
                        set_max_speed(s);
                }
                if (s->release_after >= 0 && t >= s->release_after) {
                        /* Released while it runs (ferryd stopping): it is
                         * cancelled, and release returns once it is over. */
                        uint64_t r0 = now_usec();
                        ops->migrate_release(ctx, handle);
                        printf("migrate_release while %s took %.1f ms\n", phase_name(pr.phase),
                               (double) (now_usec() - r0) / 1000);
                        s->released = true;
                        break;
                }
                if (t > s->timeout) {
                        fprintf(stderr, "timeout: aborting\n");
                        (void) ops->migrate_abort(ctx, handle, &e);
                        s->timeout = 1e9;
                }
                fflush(stdout);
                usleep(200 * 1000);
        }
        *ret_slowest_usec = slowest;
        return pr;
}

static void print_outcome(const FerryMigrateProgress *pr, uint64_t slowest_usec) {
        printf("outcome: %s\n", phase_name(pr->phase));
        if (pr->error.message[0])
                printf("error: %s\n", pr->error.message);
        if (pr->started_usec && pr->finished_usec)
                printf("hypervisor migration wall time: %.3f s\n",
                       (double) (pr->finished_usec - pr->started_usec) / 1e6);
        printf("downtime: %" PRIu64 " ms, iterations: %" PRIu32 ", memory sent: %" PRIu64 " MiB of %" PRIu64 " MiB\n",
               pr->downtime_ms, pr->iteration, pr->memory_processed >> 20, pr->memory_total >> 20);
        printf("slowest migrate_progress call: %.1f ms\n", (double) slowest_usec / 1000);
}

/* Where is it now? */
static void print_where(const char *what, const char *uri, const char *vm) {
        _cleanup_free_ char *config = NULL;
        FerryVm *vms = NULL;
        FerryError e = {};
        size_t n = 0;

        CHECK(asprintf(&config, "uri=%s", uri) > 0);
        void *ctx = open_or_die(config);
        if (ops->list_vms(ctx, &vms, &n, &e) == 0) {
                const FerryVm *v = find_vm(vms, n, vm);
                printf("on %s: %s\n", what, v ? state_name(v->state) : "absent");
                ops->free_vms(ctx, vms, n);
        } else
                printf("on %s: unknown (%s)\n", what, e.message);
        ops->close(ctx);
}

static int migrate(int argc, char *argv[]) {
        const char *src = argv[0], *vm = argv[1], *dest = argv[2], *addr = argv[3];
        Steering s = {
                .source_uri = src, .vm = vm, .expect = "completed", .timeout = 300,
                .postcopy_after = -1, .abort_after = -1, .downtime_after = -1, .speed_after = -1, .release_after = -1,
        };
        FerryMigrateParams p = {
                .struct_size = sizeof(p),
                .destination_node = "destination",
                .destination_uri = dest,
                .migration_address = addr,
        };
        _cleanup_free_ char *config = NULL;
        FerryError e = {};
        void *handle = NULL;
        int r;

        for (int i = 4; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (steering_option(argc, argv, &i, &s, &r)) {
                        if (r)
                                return r;
                        if (streq(a, "--postcopy-after"))
                                p.postcopy_allowed = true;
                } else if (streq(a, "--compression"))
                        p.compression = true;
                else if (streq(a, "--auto-converge"))
                        p.auto_converge = true;
                else if (streq(a, "--postcopy"))
                        p.postcopy_allowed = true;
                else if (v && streq(a, "--bandwidth"))
                        p.bandwidth = parse_size(v), i++;
                else if (v && streq(a, "--max-downtime"))
                        p.max_downtime_ms = strtoull(v, NULL, 10), i++;
                else if (v && streq(a, "--parallel"))
                        p.parallel_connections = (uint32_t) strtoul(v, NULL, 10), i++;
                else {
                        fprintf(stderr, "unknown option %s\n", a);
                        return 2;
                }
        }

        CHECK(asprintf(&config, "uri=%s", src) > 0);
        void *ctx = open_or_die(config);
        if (ops->cpu_compatible) {
                r = ops->cpu_compatible(ctx, vm, dest, &e);
                printf("cpu_compatible: %s%s%s\n", r == 0 ? "yes" : strerror(-r), r < 0 ? ": " : "",
                       r < 0 ? e.message : "");
        }
        uint64_t t0 = now_usec(), slowest;
        r = ops->migrate_start(ctx, vm, &p, &handle, &e);
        if (r < 0) {
                fprintf(stderr, "migrate_start: %s: %s\n", strerror(-r), e.message);
                return 1;
        }
        printf("migrate_start returned after %.1f ms\n", (double) (now_usec() - t0) / 1000);

        FerryMigrateProgress pr = follow(ctx, handle, &s, t0, &slowest);
        if (!s.released) {
                print_outcome(&pr, slowest);
                ops->migrate_release(ctx, handle);
        }
        ops->close(ctx);
        print_where("source", src, vm);
        print_where("destination", dest, vm);
        if (s.released)
                return 0;
        return streq(phase_name(pr.phase), s.expect) ? 0 : 1;
}

/* Takes over a migration that an earlier process started and left to
 * libvirtd (kill `migrate` with SIGKILL mid-way), then steers it. */
static int adopt(int argc, char *argv[]) {
        const char *src = argv[0], *vm = argv[1], *dest = NULL;
        Steering s = {
                .source_uri = src, .vm = vm, .expect = NULL, .timeout = 300,
                .postcopy_after = -1, .abort_after = -1, .downtime_after = -1, .speed_after = -1, .release_after = -1,
        };
        uint64_t max_downtime_ms = 0;
        _cleanup_free_ char *config = NULL;
        FerryError e = {};
        void *handle = NULL;
        int r;

        for (int i = 2; i < argc; i++) {
                const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
                if (steering_option(argc, argv, &i, &s, &r)) {
                        if (r)
                                return r;
                } else if (v && streq(a, "--max-downtime"))
                        max_downtime_ms = strtoull(v, NULL, 10), i++;
                else if (v && streq(a, "--dest"))
                        dest = v, i++;
                else {
                        fprintf(stderr, "unknown option %s\n", a);
                        return 2;
                }
        }

        CHECK(asprintf(&config, "uri=%s", src) > 0);
        void *ctx = open_or_die(config);
        if (!ops->migrate_adopt) {
                fprintf(stderr, "the module has no migrate_adopt\n");
                return 1;
        }
        uint64_t t0 = now_usec(), slowest;
        r = ops->migrate_adopt(ctx, vm, &handle, &e);
        if (r < 0) {
                printf("migrate_adopt: %s: %s\n", strerror(-r), e.message);
                ops->close(ctx);
                return s.expect && streq(s.expect, "none") ? 0 : 1;
        }
        printf("migrate_adopt returned after %.1f ms\n", (double) (now_usec() - t0) / 1000);

        FerryMigrateProgress pr = { .struct_size = sizeof(pr) };
        CHECK_EQ_INT(ops->migrate_progress(ctx, handle, &pr, &e), 0);
        if (pr.started_usec)
                printf("libvirt's job started %.1f s ago\n", (double) (t0 - MIN(pr.started_usec, t0)) / 1e6);
        else
                printf("libvirt's job gave no start time\n");
        /* A second handle on the same migration is refused. */
        void *second = NULL;
        r = ops->migrate_adopt(ctx, vm, &second, &e);
        printf("migrate_adopt again: %s%s%s\n", r < 0 ? strerror(-r) : "ok (unexpected)", r < 0 ? ": " : "",
               r < 0 ? e.message : "");
        if (r >= 0)
                ops->migrate_release(ctx, second);
        r = ops->migrate_set_auto_converge(ctx, handle, true, &e);
        printf("migrate_set_auto_converge(on): %s%s%s\n", r < 0 ? strerror(-r) : "ok", r < 0 ? ": " : "",
               r < 0 ? e.message : "");
        if (max_downtime_ms > 0) {
                r = ops->migrate_set_max_downtime(ctx, handle, max_downtime_ms, &e);
                printf("migrate_set_max_downtime(%" PRIu64 "): %s %s\n", max_downtime_ms, r < 0 ? strerror(-r) : "ok",
                       r < 0 ? e.message : "");
        }

        pr = follow(ctx, handle, &s, t0, &slowest);
        if (!s.released) {
                print_outcome(&pr, slowest);
                ops->migrate_release(ctx, handle);
        }
        ops->close(ctx);
        print_where("source", src, vm);
        if (dest)
                print_where("destination", dest, vm);
        if (s.released)
                return 0;
        return !s.expect || streq(phase_name(pr.phase), s.expect) ? 0 : 1;
}

int main(int argc, char *argv[]) {
        if (argc < 2) {
                fprintf(stderr, "usage: %s MODULE [facts URI | cpu URI VM DEST_URI | "
                        "watch URI SECONDS | migrate SRC_URI VM DEST_URI MIGRATION_ADDR [OPTION...] | "
                        "adopt SRC_URI VM [OPTION...]]\n", argv[0]);
                return 2;
        }
        load(argv[1]);
        if (argc == 2)
                return run_test_driver();
        if (streq(argv[2], "facts") && argc == 4)
                return print_facts(argv[3]);
        if (streq(argv[2], "cpu") && argc == 6)
                return print_cpu(argv[3], argv[4], argv[5]);
        if (streq(argv[2], "watch") && argc == 5)
                return watch(argv[3], atoi(argv[4]));
        if (streq(argv[2], "migrate") && argc >= 7)
                return migrate(argc - 3, argv + 3);
        if (streq(argv[2], "adopt") && argc >= 5)
                return adopt(argc - 3, argv + 3);
        fprintf(stderr, "bad arguments; see the head of %s\n", __FILE__);
        return 2;
}
