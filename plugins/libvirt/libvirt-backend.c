/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The libvirt backend: a ferry host is a libvirtd (qemu:///system by
 * default), a VM a libvirt domain, a migration a peer-to-peer live
 * migration (migration.c).
 *
 * backend_config (space-separated key=value):
 *   uri=URI                 libvirt URI of this host (qemu:///system)
 *   migration_address=ADDR  this host's address on the migration network;
 *                           see the note at migrate_start()
 *   shared_paths=/a:/b      disks on these paths are reachable from every
 *                           node (NFS, cluster filesystem, shared LUNs)
 *   dirty_rate_sample=SEC   measure each running VM's dirty rate for SEC
 *                           seconds after every inventory (0 = never; 1)
 *
 * Threads: every hook runs on ferryd's loop thread and uses one connection,
 * the context's (plus cached ones to destinations for cpu_compatible()).
 * A migration's threads have connections of their own and share with the
 * loop only what migration.c keeps under its lock. libvirt reports errors
 * per thread (virGetLastError()), so a message always belongs to the call
 * that just failed. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "domain-xml.h"
#include "ferry-backend.h"
#include "macro.h"
#include "migration.h"
#include "strutil.h"
#include "virt-util.h"

#define DEFAULT_URI "qemu:///system"
#define DEFAULT_DIRTY_RATE_SAMPLE_SEC 1
/* Below this interval between two inventories the CPU use of the previous
 * one is repeated: a ratio over a few milliseconds is noise. */
#define CPU_SAMPLE_MIN_USEC USEC_PER_SEC

/* What the previous inventory saw of a domain. */
typedef struct DomainSample {
        char uuid[VIR_UUID_STRING_BUFLEN];
        unsigned long long cpu_time;    /* ns */
        uint64_t at_usec;               /* CLOCK_MONOTONIC */
        uint32_t cpu_use_permille;
        uint64_t dirty_rate;            /* bytes/s, last measured */
} DomainSample;

typedef struct DestinationConnection {
        char *uri;
        virConnectPtr conn;
} DestinationConnection;

typedef struct Context {
        char *uri;
        char *migration_address;
        char **shared_paths;
        unsigned dirty_rate_sample_sec;
        bool dirty_rate_unsupported;

        virConnectPtr conn;
        bool was_connected;

        DomainSample *samples;
        size_t n_samples;

        DestinationConnection *destinations;
        size_t n_destinations;

        Migration **migrations;         /* handles not yet released */
        size_t n_migrations;
} Context;

/* libvirt prints every error to stderr unless told otherwise; ferryd logs
 * what we return instead. */
static void silence_libvirt_errors(void *userdata, virErrorPtr e) {
}

/* ---- configuration ----------------------------------------------------- */

static const char *const known_keys = "uri, migration_address, shared_paths, dirty_rate_sample";

static int parse_config(Context *c, const char *config, FerryError *error) {
        _cleanup_free_ char *copy = strdup(config ?: "");
        char unknown[FERRY_TEXT_MAX] = "";
        int r;

        if (!copy)
                return -ENOMEM;
        for (char *save = NULL, *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
                char *eq = strchr(w, '=');
                if (!eq || eq == w)
                        return fail(error, -EINVAL, "backend_config: expected key=value, got \"%s\"", w);
                *eq = 0;
                const char *key = w, *value = eq + 1;

                if (streq(key, "uri")) {
                        if (!*value)
                                return fail(error, -EINVAL, "backend_config: uri is empty");
                        free(c->uri);
                        if (!(c->uri = strdup(value)))
                                return -ENOMEM;
                } else if (streq(key, "migration_address")) {
                        if (!*value || strchr(value, '/'))
                                return fail(error, -EINVAL, "backend_config: migration_address \"%s\" is not "
                                            "a host name or address", value);
                        free(c->migration_address);
                        if (!(c->migration_address = strdup(value)))
                                return -ENOMEM;
                } else if (streq(key, "shared_paths")) {
                        char **l;
                        r = shared_paths_parse(value, &l);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                return fail(error, -EINVAL, "backend_config: shared_paths \"%s\" must be "
                                            "absolute paths separated by ':'", value);
                        strv_free(c->shared_paths);
                        c->shared_paths = l;
                } else if (streq(key, "dirty_rate_sample")) {
                        uint32_t sec;
                        if (parse_u32(value, &sec) < 0 || sec > 60)
                                return fail(error, -EINVAL, "backend_config: dirty_rate_sample \"%s\" must be "
                                            "0 (off) to 60 seconds", value);
                        c->dirty_rate_sample_sec = sec;
                } else {
                        /* Collect them all: one round trip to fix a config. */
                        size_t l = strlen(unknown);
                        snprintf(unknown + l, sizeof(unknown) - l, "%s\"%s\"", l > 0 ? ", " : "", key);
                }
        }
        if (*unknown)
                return fail(error, -EINVAL, "backend_config: unknown key %s (known: %s)", unknown, known_keys);
        return 0;
}

/* ---- connections ------------------------------------------------------- */

static void context_disconnect(Context *c) {
        if (c->conn) {
                (void) virConnectClose(c->conn);
                c->conn = NULL;
        }
}

/* One connection, kept open, with keepalives: a libvirtd that died or
 * hangs is noticed (the call fails, or keepalive closes the connection),
 * and the next hook reconnects. */
static int context_connect(Context *c, FerryError *error) {
        if (c->conn) {
                if (virConnectIsAlive(c->conn) == 1)
                        return 0;
                context_disconnect(c);
        }
        c->conn = virConnectOpen(c->uri);
        if (!c->conn)
                return fail_virt(error, -ECONNREFUSED, c->was_connected ?
                                 "connection to libvirt at %s lost, reconnecting failed" :
                                 "cannot connect to libvirt at %s", c->uri);
        virt_keepalive(c->conn);
        c->was_connected = true;
        return 0;
}

static bool connection_lost(Context *c) {
        return !c->conn || virConnectIsAlive(c->conn) != 1;
}

/* Destination connections for cpu_compatible(), cached: the planner asks
 * about many VMs and the same few hosts. */
static int destination_connect(Context *c, const char *uri, virConnectPtr *ret, FerryError *error) {
        DestinationConnection *d = NULL;

        for (size_t i = 0; i < c->n_destinations; i++)
                if (streq(c->destinations[i].uri, uri)) {
                        d = &c->destinations[i];
                        break;
                }
        if (d && d->conn && virConnectIsAlive(d->conn) == 1) {
                *ret = d->conn;
                return 0;
        }
        if (!d) {
                DestinationConnection *n = realloc(c->destinations, (c->n_destinations + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                c->destinations = n;
                d = &c->destinations[c->n_destinations];
                *d = (DestinationConnection) { .uri = strdup(uri) };
                if (!d->uri)
                        return -ENOMEM;
                c->n_destinations++;
        }
        if (d->conn)
                (void) virConnectClose(d->conn);
        d->conn = virConnectOpen(uri);
        if (!d->conn)
                return fail_virt(error, -ECONNREFUSED, "cannot connect to destination libvirt at %s", uri);
        virt_keepalive(d->conn);
        *ret = d->conn;
        return 0;
}

/* ---- host facts -------------------------------------------------------- */

/* The host's memory as /proc/meminfo has it (what ferryd reports without
 * a backend, too): total, and free + buffers + page cache as what new
 * guests can have (libvirt does not pass MemAvailable on). Not
 * virNodeGetInfo()'s figure: that is the sum over NUMA nodes, which leaves
 * out memory that is online but in no node's meminfo (seen on VMs with
 * hot-plugged memory: 5 GiB of 24). */
static int host_memory(Context *c, uint64_t *ret_total, uint64_t *ret_available) {
        _cleanup_free_ virNodeMemoryStatsPtr stats = NULL;
        uint64_t total = 0, available = 0;
        int n = 0;

        if (virNodeGetMemoryStats(c->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, NULL, &n, 0) < 0 || n <= 0)
                return errno_from_virt(virGetLastError(), -EIO);
        stats = calloc((size_t) n, sizeof(virNodeMemoryStats));
        if (!stats)
                return -ENOMEM;
        if (virNodeGetMemoryStats(c->conn, VIR_NODE_MEMORY_STATS_ALL_CELLS, stats, &n, 0) < 0)
                return errno_from_virt(virGetLastError(), -EIO);
        for (int i = 0; i < n; i++) {
                /* KiB */
                if (streq(stats[i].field, VIR_NODE_MEMORY_STATS_TOTAL))
                        total = stats[i].value * 1024;
                else if (streq(stats[i].field, VIR_NODE_MEMORY_STATS_FREE) ||
                         streq(stats[i].field, VIR_NODE_MEMORY_STATS_BUFFERS) ||
                         streq(stats[i].field, VIR_NODE_MEMORY_STATS_CACHED))
                        available += stats[i].value * 1024;
        }
        if (total == 0)
                return -EOPNOTSUPP;
        *ret_total = total;
        *ret_available = MIN(available, total);
        return 0;
}

static int host_facts_once(Context *c, FerryHostFacts *ret, FerryError *error) {
        _cleanup_free_ char *caps = NULL;
        FerryHostFacts f = { .struct_size = sizeof(f) };
        virNodeInfo info;
        unsigned long version;
        unsigned long long free_bytes;
        const char *type;
        int r;

        caps = virConnectGetCapabilities(c->conn);
        if (!caps)
                return fail_virt(error, -EIO, "virConnectGetCapabilities");
        r = capabilities_xml_parse(caps, &f, error);
        if (r < 0)
                return r;

        if (virNodeGetInfo(c->conn, &info) < 0)
                return fail_virt(error, -EIO, "virNodeGetInfo");
        f.cpus = info.cpus;
        /* Drivers that leave the model out of the capabilities (the test
         * driver) still name one here. */
        if (!f.cpu_model[0])
                snprintf(f.cpu_model, sizeof(f.cpu_model), "%.*s", (int) sizeof(info.model), info.model);

        r = host_memory(c, &f.memory_total, &f.memory_free);
        if (r == -EOPNOTSUPP) {
                /* Drivers without memory statistics (the test driver):
                 * the sum over NUMA cells. */
                f.memory_total = (uint64_t) info.memory * 1024;
                virResetLastError();
                free_bytes = virNodeGetFreeMemory(c->conn);
                if (free_bytes == 0 && virGetLastError())
                        return fail_virt(error, -EIO, "virNodeGetFreeMemory");
                f.memory_free = free_bytes;
        } else if (r == -ENOMEM)
                return r;
        else if (r < 0)
                return fail_virt(error, r, "virNodeGetMemoryStats");

        type = virConnectGetType(c->conn);
        if (!type)
                return fail_virt(error, -EIO, "virConnectGetType");
        snprintf(f.hypervisor_name, sizeof(f.hypervisor_name), "%s", type);
        if (virConnectGetVersion(c->conn, &version) < 0)
                return fail_virt(error, -EIO, "virConnectGetVersion");
        /* libvirt encodes major * 1000000 + minor * 1000 + release. */
        snprintf(f.hypervisor_version, sizeof(f.hypervisor_version), "%lu.%lu.%lu",
                 version / 1000000, version / 1000 % 1000, version % 1000);

        /* Fill no more than the caller's struct holds: an older ferryd may
         * know a shorter FerryHostFacts. */
        size_t size = ret->struct_size;
        memcpy(ret, &f, MIN(size, sizeof(f)));
        ret->struct_size = size;
        return 0;
}

static int host_facts(void *userdata, FerryHostFacts *ret, FerryError *error) {
        Context *c = userdata;
        int r;

        if (!ret || ret->struct_size < offsetof(FerryHostFacts, cpu_vendor))
                return fail(error, -EINVAL, "host_facts: struct_size not set");
        r = context_connect(c, error);
        if (r < 0)
                return r;
        r = host_facts_once(c, ret, error);
        if (r < 0 && connection_lost(c)) {
                /* libvirtd restarted under us: once more, on a new connection. */
                r = context_connect(c, error);
                if (r >= 0)
                        r = host_facts_once(c, ret, error);
        }
        return r;
}

/* ---- inventory --------------------------------------------------------- */

static bool migrating(Context *c, const char *uuid) {
        for (size_t i = 0; i < c->n_migrations; i++)
                if (streq(migration_uuid(c->migrations[i]), uuid) && !migration_done(c->migrations[i]))
                        return true;
        return false;
}

/* A migration out of this host that libvirtd runs without a handle of
 * ours: started by an earlier ferryd (which died), or by hand. A restarted
 * ferryd must see it as migrating, or it would take the VM as idle. */
static bool outgoing_migration_job(virDomainPtr dom) {
        virTypedParameterPtr params = NULL;
        int type = VIR_DOMAIN_JOB_NONE, nparams = 0, op = 0;
        bool out = false;

        if (virDomainGetJobStats(dom, &type, &params, &nparams, 0) < 0) {
                virResetLastError();
                return false;
        }
        if (type != VIR_DOMAIN_JOB_NONE &&
            virTypedParamsGetInt(params, nparams, VIR_DOMAIN_JOB_OPERATION, &op) == 1)
                out = op == VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT;
        virTypedParamsFree(params, nparams);
        return out;
}

static FerryVmState vm_state(int state, int reason) {
        switch (state) {
        case VIR_DOMAIN_RUNNING:
                /* On the destination while post-copy pulls the rest. */
                return reason == VIR_DOMAIN_RUNNING_POSTCOPY ? FERRY_VM_MIGRATING : FERRY_VM_RUNNING;
        case VIR_DOMAIN_BLOCKED:
                return FERRY_VM_RUNNING;
        case VIR_DOMAIN_PAUSED:
                switch (reason) {
                case VIR_DOMAIN_PAUSED_MIGRATION:       /* switchover, or incoming */
                case VIR_DOMAIN_PAUSED_POSTCOPY:        /* source during post-copy */
                        return FERRY_VM_MIGRATING;
                case VIR_DOMAIN_PAUSED_POSTCOPY_FAILED:
                        /* Neither host has the whole VM: needs recovery
                         * (a post-copy resume), not a plain resume. */
                        return FERRY_VM_OTHER;
                default:
                        return FERRY_VM_PAUSED;
                }
        case VIR_DOMAIN_SHUTOFF:
                return FERRY_VM_SHUTOFF;
        default:
                return FERRY_VM_OTHER;
        }
}

static const DomainSample *sample_find(const DomainSample *s, size_t n, const char *uuid) {
        for (size_t i = 0; i < n; i++)
                if (streq(s[i].uuid, uuid))
                        return &s[i];
        return NULL;
}

/* One domain → one FerryVm. -ENOENT if it vanished meanwhile. */
static int vm_from_domain(Context *c, virDomainPtr dom, uint64_t now, FerryVm *vm, DomainSample *sample,
                          FerryError *error) {
        _cleanup_free_ char *xml = NULL;
        virDomainInfo info;
        int state, reason, r;

        xml = virDomainGetXMLDesc(dom, 0);
        if (!xml) {
                if (last_error_is(VIR_ERR_NO_DOMAIN))
                        return -ENOENT;
                return fail_virt(error, -EIO, "cannot get XML of domain \"%s\"", virDomainGetName(dom));
        }
        r = domain_xml_parse(xml, c->shared_paths, vm, error);
        if (r < 0)
                return r;
        if (virDomainGetInfo(dom, &info) < 0 || virDomainGetState(dom, &state, &reason, 0) < 0) {
                if (last_error_is(VIR_ERR_NO_DOMAIN))
                        return -ENOENT;
                return fail_virt(error, -EIO, "cannot get state of domain \"%s\"", vm->name);
        }
        vm->state = vm_state(state, reason);
        if ((vm->state == FERRY_VM_RUNNING || vm->state == FERRY_VM_PAUSED) &&
            (migrating(c, vm->uuid) || outgoing_migration_job(dom)))
                vm->state = FERRY_VM_MIGRATING;
        /* The live count, where the XML has the configured one. */
        if (info.nrVirtCpu > 0)
                vm->vcpus = info.nrVirtCpu;

        /* CPU use: the growth of the domain's CPU time since the previous
         * inventory; ns of CPU per µs of wall time is permille of one CPU. */
        const DomainSample *prev = sample_find(c->samples, c->n_samples, vm->uuid);
        *sample = (DomainSample) {
                .cpu_time = info.cpuTime,
                .at_usec = now,
                .dirty_rate = prev ? prev->dirty_rate : 0,
        };
        memcpy(sample->uuid, vm->uuid, sizeof(sample->uuid));
        if (vm->state == FERRY_VM_SHUTOFF)
                sample->dirty_rate = 0;
        else if (prev && now - prev->at_usec < CPU_SAMPLE_MIN_USEC)
                /* Keep the older baseline and what it gave. */
                *sample = *prev;
        else if (prev && info.cpuTime >= prev->cpu_time) {
                uint64_t permille = (info.cpuTime - prev->cpu_time) / (now - prev->at_usec);
                sample->cpu_use_permille = (uint32_t) MIN(permille, (uint64_t) UINT32_MAX);
        }
        vm->cpu_use_permille = sample->cpu_use_permille;
        /* The last measured; dirty_rates_update() may have a newer one. */
        vm->dirty_rate = sample->dirty_rate;
        return 0;
}

/* Dirty rates: read what the last measurement found, then start the next
 * one (QEMU's calc-dirty-rate, page sampling: it hashes a few pages per GiB
 * now and again after the period; cheap, no dirty logging). A rate is
 * therefore one inventory old. Best effort: a driver or QEMU without it
 * leaves the rates at 0 ("unknown"). */
static void dirty_rates_update(Context *c, virDomainPtr *doms, FerryVm *vms, DomainSample *samples, size_t n) {
        _cleanup_free_ virDomainPtr *running = NULL;
        virDomainStatsRecordPtr *records = NULL;
        size_t n_running = 0;

        if (c->dirty_rate_sample_sec == 0 || c->dirty_rate_unsupported || n == 0)
                return;
        running = calloc(n + 1, sizeof(virDomainPtr));
        if (!running)
                return;
        for (size_t i = 0; i < n; i++)
                if (vms[i].state == FERRY_VM_RUNNING)
                        running[n_running++] = doms[i];
        if (n_running == 0)
                return;

        int k = virDomainListGetStats(running, VIR_DOMAIN_STATS_DIRTYRATE, &records, 0);
        if (k < 0 && last_error_is(VIR_ERR_NO_SUPPORT))
                c->dirty_rate_unsupported = true;
        for (int j = 0; j < k; j++) {
                char uuid[VIR_UUID_STRING_BUFLEN];
                int status = -1;
                long long mib_per_sec;

                if (virDomainGetUUIDString(records[j]->dom, uuid) < 0)
                        continue;
                for (size_t i = 0; i < n; i++) {
                        if (!streq(samples[i].uuid, uuid))
                                continue;
                        (void) virTypedParamsGetInt(records[j]->params, records[j]->nparams, "dirtyrate.calc_status",
                                                    &status);
                        /* 2 = measured; QEMU's "MB" are MiB. */
                        if (status == 2 &&
                            virTypedParamsGetLLong(records[j]->params, records[j]->nparams,
                                                   "dirtyrate.megabytes_per_second", &mib_per_sec) == 1 &&
                            mib_per_sec >= 0)
                                samples[i].dirty_rate = (uint64_t) mib_per_sec << 20;
                        vms[i].dirty_rate = samples[i].dirty_rate;
                        /* 1 = still measuring: leave it be. */
                        if (status != 1 &&
                            virDomainStartDirtyRateCalc(records[j]->dom, (int) c->dirty_rate_sample_sec, 0) < 0 &&
                            last_error_is(VIR_ERR_NO_SUPPORT))
                                c->dirty_rate_unsupported = true;
                }
        }
        if (records)
                virDomainStatsRecordListFree(records);
        virResetLastError();
}

static int list_vms_once(Context *c, FerryVm **ret, size_t *ret_n, FerryError *error) {
        virDomainPtr *doms = NULL;
        _cleanup_free_ FerryVm *vms = NULL;
        _cleanup_free_ DomainSample *samples = NULL;
        _cleanup_free_ virDomainPtr *kept = NULL;
        size_t k = 0;
        int n, r = 0;

        n = virConnectListAllDomains(c->conn, &doms, 0);
        if (n < 0)
                return fail_virt(error, -EIO, "virConnectListAllDomains");

        uint64_t now = now_usec(CLOCK_MONOTONIC);
        vms = calloc((size_t) MAX(n, 1), sizeof(FerryVm));
        samples = calloc((size_t) MAX(n, 1), sizeof(DomainSample));
        kept = calloc((size_t) MAX(n, 1), sizeof(virDomainPtr));
        if (!vms || !samples || !kept) {
                r = -ENOMEM;
                goto finish;
        }
        for (int i = 0; i < n; i++) {
                r = vm_from_domain(c, doms[i], now, &vms[k], &samples[k], error);
                if (r == -ENOENT) {
                        /* Gone between the listing and now (undefined,
                         * migrated away): not part of this inventory. */
                        r = 0;
                        continue;
                }
                if (r < 0)
                        goto finish;
                kept[k++] = doms[i];
        }
        dirty_rates_update(c, kept, vms, samples, k);

        /* Samples of domains that are gone are dropped here. */
        free(c->samples);
        c->samples = TAKE_PTR(samples);
        c->n_samples = k;
        *ret = TAKE_PTR(vms);
        *ret_n = k;
finish:
        for (int i = 0; i < n; i++)
                virDomainFree(doms[i]);
        free(doms);
        return r;
}

static int list_vms(void *userdata, FerryVm **ret, size_t *ret_n, FerryError *error) {
        Context *c = userdata;
        int r;

        r = context_connect(c, error);
        if (r < 0)
                return r;
        r = list_vms_once(c, ret, ret_n, error);
        if (r < 0 && connection_lost(c)) {
                r = context_connect(c, error);
                if (r >= 0)
                        r = list_vms_once(c, ret, ret_n, error);
        }
        return r;
}

static void free_vms(void *userdata, FerryVm *vms, size_t n) {
        free(vms);
}

/* ---- CPU compatibility ------------------------------------------------- */

/* 0 if `conn`'s hypervisor runs `cpu_xml` as it is, -ENOTSUP (with
 * libvirt's list of what is missing) if not, another error if it cannot
 * tell. */
static int compare_cpu(virConnectPtr conn, const DomainCpu *cpu, const char *cpu_xml, FerryError *error,
                       const char *what) {
        /* FAIL_INCOMPATIBLE: libvirt then says which features are missing,
         * instead of a bare VIR_CPU_COMPARE_INCOMPATIBLE. */
        int result = virConnectCompareHypervisorCPU(conn, NULL, cpu->arch, cpu->machine, cpu->virttype, cpu_xml,
                                                    VIR_CONNECT_COMPARE_CPU_FAIL_INCOMPATIBLE);
        switch (result) {
        case VIR_CPU_COMPARE_IDENTICAL:
        case VIR_CPU_COMPARE_SUPERSET:
                return 0;
        case VIR_CPU_COMPARE_INCOMPATIBLE:
                return fail(error, -ENOTSUP, "%s", what);
        default:
                if (last_error_is(VIR_ERR_CPU_INCOMPATIBLE))
                        return fail_virt(error, -ENOTSUP, "%s", what);
                int r = fail_virt(error, -EIO, "cannot compare CPUs (%s)", what);
                /* On Linux ENOTSUP == EOPNOTSUPP: a driver that cannot
                 * compare must not read as "incompatible". */
                return r == -EOPNOTSUPP ? -ENOSYS : r;
        }
}

/* What the source hypervisor offers as host-model, as a CPU definition. */
static int source_host_model(Context *c, const DomainCpu *cpu, char **ret, FerryError *error) {
        _cleanup_free_ char *domcaps = NULL;
        int r;

        domcaps = virConnectGetDomainCapabilities(c->conn, NULL, cpu->arch, cpu->machine, cpu->virttype, 0);
        if (!domcaps) {
                r = fail_virt(error, -EIO, "virConnectGetDomainCapabilities");
                return r == -EOPNOTSUPP ? -ENOSYS : r;
        }
        r = domcaps_xml_host_model_cpu(domcaps, ret, error);
        if (r < 0)
                return r;
        if (!*ret)
                return fail(error, -ENOSYS, "the %s hypervisor here has no host-model CPU to compare with",
                            cpu->virttype);
        return 0;
}

/* Whether the destination can run the VM's CPU, in up to three questions:
 *
 * 1. Does the destination's hypervisor provide the VM's CPU definition?
 *    Yes: compatible.
 * 2. If not: does this host's? Yes: the VM has features the destination
 *    lacks: incompatible.
 * 3. Neither does, yet the VM runs: its CPU is checked with check='none'
 *    and QEMU quietly left out what this host lacks (the testbed's qemu64
 *    guests under nested KVM without "pni" are such). The VM then has at
 *    most what this hypervisor offers: compatible if the destination
 *    offers all of that (this host's host-model CPU).
 *
 * host-passthrough, maximum and a host-model not yet expanded describe no
 * model libvirt could compare, only "this host's CPU": question 3 alone. */
static int cpu_compatible_once(Context *c, const char *vm, const char *destination_uri, FerryError *error) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        _cleanup_free_ char *xml = NULL, *host_model = NULL, *what = NULL;
        _cleanup_(domain_cpu_done) DomainCpu cpu = {};
        virConnectPtr dconn = NULL;
        int r;

        dom = virDomainLookupByName(c->conn, vm);
        if (!dom)
                return fail_virt(error, -ENOENT, "VM \"%s\"", vm);
        /* The migratable XML is what libvirt itself sends to the
         * destination, so it is what the destination will have to run. */
        xml = virDomainGetXMLDesc(dom, VIR_DOMAIN_XML_MIGRATABLE);
        if (!xml)
                return fail_virt(error, -EIO, "cannot get XML of VM \"%s\"", vm);
        r = domain_xml_cpu(xml, &cpu, error);
        if (r < 0)
                return r;
        if (!cpu.cpu_xml)
                /* No <cpu>: QEMU's default model of the architecture
                 * (qemu64 on x86), which every host of it provides. */
                return 0;

        r = destination_connect(c, destination_uri, &dconn, error);
        if (r < 0)
                return r;
        bool has_model = strstr(cpu.cpu_xml, "<model");
        if (streq(cpu.mode, "custom") && has_model) {
                if (asprintf(&what, "the CPU of VM \"%s\" is not compatible with %s", vm, destination_uri) < 0)
                        return -ENOMEM;
                r = compare_cpu(dconn, &cpu, cpu.cpu_xml, error, what);
                if (r != -ENOTSUP)
                        return r;
                FerryError here = {};
                if (compare_cpu(c->conn, &cpu, cpu.cpu_xml, &here, what) != -ENOTSUP)
                        /* Provided in full here (or no answer here): the
                         * destination's "no" stands. */
                        return -ENOTSUP;
                free(what);
                what = NULL;
        }

        r = source_host_model(c, &cpu, &host_model, error);
        if (r < 0)
                return r;
        if (asprintf(&what, "%s does not offer every CPU feature that VM \"%s\" may use here (%s CPU%s)",
                     destination_uri, vm, cpu.mode, has_model ? " trimmed to this host by check='none'" : "") < 0)
                return -ENOMEM;
        return compare_cpu(dconn, &cpu, host_model, error, what);
}

static int cpu_compatible(void *userdata, const char *vm, const char *destination_uri, FerryError *error) {
        Context *c = userdata;
        int r;

        if (!vm || !destination_uri || !*destination_uri)
                return fail(error, -EINVAL, "cpu_compatible: VM name and destination URI are required");
        r = context_connect(c, error);
        if (r < 0)
                return r;
        r = cpu_compatible_once(c, vm, destination_uri, error);
        if (r < 0 && r != -ENOTSUP && connection_lost(c)) {
                r = context_connect(c, error);
                if (r >= 0)
                        r = cpu_compatible_once(c, vm, destination_uri, error);
        }
        return r;
}

/* ---- migration --------------------------------------------------------- */

/* This host's own migration_address (backend_config) says where incoming
 * migrations should arrive; a source needs it in params->migration_address
 * (see migration.c for what happens without), and the ABI has no field to
 * publish it to the peers, so it is only checked and kept here. */
static int migrate_start(void *userdata, const char *vm, const FerryMigrateParams *params, void **ret_handle,
                         FerryError *error) {
        Context *c = userdata;
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        char uuid[VIR_UUID_STRING_BUFLEN];
        FerryMigrateParams p = {};
        Migration *m;
        int r;

        if (!vm || !params || !ret_handle)
                return fail(error, -EINVAL, "migrate_start: missing arguments");
        /* An older ferryd's shorter struct: the fields it lacks stay 0. */
        memcpy(&p, params, MIN(params->struct_size, sizeof(p)));
        p.struct_size = sizeof(p);
        if (!p.destination_uri || !*p.destination_uri)
                return fail(error, -EINVAL, "migrate_start: no destination URI for VM \"%s\"", vm);

        r = context_connect(c, error);
        if (r < 0)
                return r;
        dom = virDomainLookupByName(c->conn, vm);
        if (!dom)
                return fail_virt(error, -ENOENT, "VM \"%s\"", vm);
        r = virDomainIsActive(dom);
        if (r < 0)
                return fail_virt(error, -EIO, "VM \"%s\"", vm);
        if (r == 0)
                return fail(error, -ESRCH, "VM \"%s\" is not running: a live migration needs a running VM", vm);
        if (virDomainGetUUIDString(dom, uuid) < 0)
                return fail_virt(error, -EIO, "VM \"%s\"", vm);
        if (migrating(c, uuid))
                return fail(error, -EBUSY, "VM \"%s\" is already being migrated", vm);

        Migration **l = realloc(c->migrations, (c->n_migrations + 1) * sizeof(Migration *));
        if (!l)
                return -ENOMEM;
        c->migrations = l;
        r = migration_start(&(MigrationTarget) { .vm = vm, .uuid = uuid, .source_uri = c->uri }, &p, &m, error);
        if (r < 0)
                return r;
        c->migrations[c->n_migrations++] = m;
        *ret_handle = m;
        return 0;
}

static int migrate_adopt_once(Context *c, const char *vm, Migration **ret, FerryError *error) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        char uuid[VIR_UUID_STRING_BUFLEN];

        dom = virDomainLookupByName(c->conn, vm);
        if (!dom)
                return fail_virt(error, last_error_is(VIR_ERR_NO_DOMAIN) ? -ENOENT : -EIO,
                                 "no outgoing migration of VM \"%s\" is in flight", vm);
        if (virDomainGetUUIDString(dom, uuid) < 0)
                return fail_virt(error, -EIO, "VM \"%s\"", vm);
        if (migrating(c, uuid))
                return fail(error, -EBUSY, "the migration of VM \"%s\" already has a handle here", vm);
        return migration_adopt(&(MigrationTarget) { .vm = vm, .uuid = uuid, .source_uri = c->uri }, dom, ret, error);
}

/* A migration that libvirtd carries on after the ferryd that started it
 * died (see migration_adopt() for how its outcome is decided). */
static int migrate_adopt(void *userdata, const char *vm, void **ret_handle, FerryError *error) {
        Context *c = userdata;
        Migration *m = NULL;
        int r;

        if (!vm || !ret_handle)
                return fail(error, -EINVAL, "migrate_adopt: missing arguments");
        Migration **l = realloc(c->migrations, (c->n_migrations + 1) * sizeof(Migration *));
        if (!l)
                return -ENOMEM;
        c->migrations = l;
        r = context_connect(c, error);
        if (r < 0)
                return r;
        r = migrate_adopt_once(c, vm, &m, error);
        if (r < 0 && r != -ENOENT && r != -EBUSY && connection_lost(c)) {
                r = context_connect(c, error);
                if (r >= 0)
                        r = migrate_adopt_once(c, vm, &m, error);
        }
        if (r < 0)
                return r;
        c->migrations[c->n_migrations++] = m;
        *ret_handle = m;
        return 0;
}

static int migrate_progress(void *userdata, void *handle, FerryMigrateProgress *ret, FerryError *error) {
        if (!handle || !ret || ret->struct_size < offsetof(FerryMigrateProgress, memory_total))
                return fail(error, -EINVAL, "migrate_progress: bad arguments (struct_size not set?)");
        migration_progress(handle, ret);
        return 0;
}

static int migrate_abort(void *userdata, void *handle, FerryError *error) {
        return migration_abort(handle, error);
}

static int migrate_set_max_downtime(void *userdata, void *handle, uint64_t ms, FerryError *error) {
        Context *c = userdata;
        int r = context_connect(c, error);
        return r < 0 ? r : migration_set_max_downtime(handle, c->conn, ms, error);
}

static int migrate_set_auto_converge(void *userdata, void *handle, bool on, FerryError *error) {
        return migration_set_auto_converge(handle, on, error);
}

static int migrate_start_postcopy(void *userdata, void *handle, FerryError *error) {
        Context *c = userdata;
        int r = context_connect(c, error);
        return r < 0 ? r : migration_start_postcopy(handle, c->conn, error);
}

static void migrate_release(void *userdata, void *handle) {
        Context *c = userdata;

        for (size_t i = 0; i < c->n_migrations; i++)
                if (c->migrations[i] == handle) {
                        c->migrations[i] = c->migrations[--c->n_migrations];
                        break;
                }
        migration_free(handle);
}

/* ---- open/close -------------------------------------------------------- */

static void context_free(Context *c) {
        if (!c)
                return;
        /* Handles ferryd did not release: cancelled and joined. */
        for (size_t i = 0; i < c->n_migrations; i++)
                migration_free(c->migrations[i]);
        free(c->migrations);
        for (size_t i = 0; i < c->n_destinations; i++) {
                if (c->destinations[i].conn)
                        (void) virConnectClose(c->destinations[i].conn);
                free(c->destinations[i].uri);
        }
        free(c->destinations);
        context_disconnect(c);
        free(c->samples);
        free(c->uri);
        free(c->migration_address);
        strv_free(c->shared_paths);
        free(c);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Context *, context_free);

static int backend_open(const FerryBackendHost *host, void **ret_ctx, FerryError *error) {
        _cleanup_(context_freep) Context *c = NULL;
        int r;

        if (!host || host->struct_size < offsetof(FerryBackendHost, config) + sizeof(host->config))
                return fail(error, -EINVAL, "open: FerryBackendHost too small");
        if (virInitialize() < 0)
                return fail_virt(error, -EIO, "virInitialize");
        virSetErrorFunc(NULL, silence_libvirt_errors);
        /* Best effort: without it, no keepalives and no job-completed
         * events (migration.c then asks the destination). */
        (void) virt_event_loop_start();

        c = calloc(1, sizeof(Context));
        if (!c)
                return -ENOMEM;
        c->dirty_rate_sample_sec = DEFAULT_DIRTY_RATE_SAMPLE_SEC;
        r = parse_config(c, host->config, error);
        if (r < 0)
                return r;
        if (!c->uri && !(c->uri = strdup(DEFAULT_URI)))
                return -ENOMEM;
        /* Connect now: a wrong URI or a libvirtd that is not running is
         * best reported when ferryd starts, not at the first migration. */
        r = context_connect(c, error);
        if (r < 0)
                return r;
        *ret_ctx = TAKE_PTR(c);
        return 0;
}

static void backend_close(void *userdata) {
        context_free(userdata);
}

__attribute__((visibility("default")))
const FerryBackendOps ferry_backend = {
        .abi_version = FERRY_BACKEND_ABI_VERSION,
        .name = "libvirt",
        .open = backend_open,
        .close = backend_close,
        .host_facts = host_facts,
        .list_vms = list_vms,
        .free_vms = free_vms,
        .cpu_compatible = cpu_compatible,
        .migrate_start = migrate_start,
        .migrate_progress = migrate_progress,
        .migrate_abort = migrate_abort,
        .migrate_set_max_downtime = migrate_set_max_downtime,
        .migrate_set_auto_converge = migrate_set_auto_converge,
        .migrate_start_postcopy = migrate_start_postcopy,
        .migrate_release = migrate_release,
        .migrate_adopt = migrate_adopt,
        /* Volumes (issue #4) are not the hypervisor's business here. */
};
