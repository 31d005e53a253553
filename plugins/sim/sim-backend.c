/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The "sim" hypervisor backend: the plugin ABI (ferry-backend.h) over a
 * simulated world (world.h), its migrations (migration.h) and its shared
 * volumes (volume.h). It holds no thread: a migration advances when ferryd
 * polls it.
 *
 * backend_config: space-separated key=value pairs.
 *   world=/abs/path   the world directory (required)
 * This host is ferryd's node name; its destination URI is "sim://NODE".
 *
 * Every hook that reads the world first settles orphaned migrations (those
 * whose driving ferryd died), so a restarted ferryd finds its VMs where the
 * rules in migration.h put them. */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry-backend.h"
#include "macro.h"
#include "migration.h"
#include "volume.h"
#include "world.h"

#define URI_PREFIX "sim://"

typedef struct SimBackend {
        SimWorld *world;
        char node[SIM_NAME_MAX];
        SimMigration **handles;
        size_t n_handles;
} SimBackend;

_printf_(3, 4)
static int set_error(FerryError *error, int r, const char *fmt, ...) {
        va_list ap;

        if (error) {
                va_start(ap, fmt);
                vsnprintf(error->message, sizeof(error->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

static int sim_error(FerryError *error, int r, const SimError *e) {
        if (r == -ENOMEM)
                return set_error(error, r, "out of memory");
        return set_error(error, r, "%s", e->message[0] ? e->message : strerror(-r));
}

/* Output structs: fill what this build knows, and no more than the
 * caller's struct_size if it set one (an older ferryd). */
static void copy_out(void *dst, const void *src, size_t size) {
        size_t want = *(const size_t *) dst;
        size_t n = want > 0 && want < size ? want : size;

        memcpy(dst, src, n);
        *(size_t *) dst = n;
}

static int parse_config(const char *config, char **ret_world, FerryError *error) {
        _cleanup_free_ char *copy = strdup(config ? config : "");
        _cleanup_free_ char *world = NULL;
        char unknown[FERRY_TEXT_MAX] = "";

        if (!copy)
                return -ENOMEM;
        for (char *save = NULL, *w = strtok_r(copy, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save)) {
                char *eq = strchr(w, '=');
                if (!eq)
                        return set_error(error, -EINVAL, "sim: backend_config item \"%s\" is not key=value", w);
                *eq = 0;
                if (streq(w, "world")) {
                        if (eq[1] != '/')
                                return set_error(error, -EINVAL, "sim: world=%s is not an absolute path", eq + 1);
                        free(world);
                        world = strdup(eq + 1);
                        if (!world)
                                return -ENOMEM;
                } else {
                        size_t l = strlen(unknown);
                        snprintf(unknown + l, sizeof(unknown) - l, "%s\"%s\"", l ? ", " : "", w);
                }
        }
        if (unknown[0])
                return set_error(error, -EINVAL, "sim: unknown backend_config key(s) %s (known: world)", unknown);
        if (!world)
                return set_error(error, -EINVAL, "sim: backend_config lacks world=/path/to/world");
        *ret_world = TAKE_PTR(world);
        return 0;
}

static void backend_close(void *ctx) {
        SimBackend *b = ctx;

        if (!b)
                return;
        /* Unfinished migrations become orphans; the next reconcile (this
         * node's or any other's) settles them. */
        for (size_t i = 0; i < b->n_handles; i++)
                sim_migration_free(b->handles[i]);
        free(b->handles);
        sim_world_free(b->world);
        free(b);
}

static void backend_closep(SimBackend **b) {
        backend_close(*b);
}

static int backend_open(const FerryBackendHost *host, void **ret_ctx, FerryError *error) {
        _cleanup_(backend_closep) SimBackend *b = NULL;
        _cleanup_free_ char *world = NULL;
        SimError e = {};
        SimHost h;
        int r;

        if (!host || host->struct_size < offsetof(FerryBackendHost, config) + sizeof(host->config))
                return set_error(error, -EINVAL, "sim: FerryBackendHost too small");
        if (!host->node_name || !sim_name_is_valid(host->node_name))
                return set_error(error, -EINVAL, "sim: node name \"%s\" is not usable as a sim node name",
                                 host->node_name ? host->node_name : "");
        r = parse_config(host->config, &world, error);
        if (r < 0)
                return r == -ENOMEM ? set_error(error, r, "out of memory") : r;

        b = calloc(1, sizeof(*b));
        if (!b)
                return set_error(error, -ENOMEM, "out of memory");
        snprintf(b->node, sizeof(b->node), "%s", host->node_name);
        r = sim_world_open(world, &b->world, &e);
        if (r < 0)
                return sim_error(error, r, &e);
        r = sim_world_load_host(b->world, b->node, &h, &e);
        if (r == -ENOENT)
                return set_error(error, r, "sim: node %s is not in the world %s (no hosts/%s.conf)", b->node, world,
                                 b->node);
        if (r < 0)
                return sim_error(error, r, &e);
        r = sim_world_reconcile(b->world, NULL, &e);
        if (r < 0)
                return sim_error(error, r, &e);
        *ret_ctx = TAKE_PTR(b);
        return 0;
}

static int backend_host_facts(void *ctx, FerryHostFacts *ret, FerryError *error) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        SimBackend *b = ctx;
        FerryHostFacts f = {};
        SimError e = {};
        SimHost h;
        uint64_t used, incoming;
        int r;

        /* One consistent view: no migration starts or ends meanwhile. */
        r = sim_world_lock(b->world);
        if (r < 0)
                return set_error(error, r, "sim: locking the world: %s", strerror(-r));
        locked = b->world;
        r = sim_world_reconcile(b->world, NULL, &e);
        if (r < 0)
                return sim_error(error, r, &e);
        r = sim_world_load_host(b->world, b->node, &h, &e);
        if (r < 0)
                return sim_error(error, r, &e);
        r = sim_world_memory_used(b->world, b->node, &used, &incoming, &e);
        if (r < 0)
                return sim_error(error, r, &e);

        f.struct_size = sizeof(f);
        snprintf(f.cpu_vendor, sizeof(f.cpu_vendor), "%s", h.cpu_vendor);
        snprintf(f.cpu_model, sizeof(f.cpu_model), "%s", h.cpu_model);
        snprintf(f.cpu_features, sizeof(f.cpu_features), "%s", h.cpu_features);
        f.cpus = h.cpus;
        f.memory_total = h.memory_total;
        /* Memory held for incoming migrations is not free: QEMU on the
         * destination has it already. */
        f.memory_free = h.memory_total - MIN(h.memory_total, used + incoming);
        snprintf(f.hypervisor_name, sizeof(f.hypervisor_name), "sim");
        snprintf(f.hypervisor_version, sizeof(f.hypervisor_version), "%s", h.hypervisor_version);
        copy_out(ret, &f, sizeof(f));
        return 0;
}

static int backend_list_vms(void *ctx, FerryVm **ret, size_t *ret_n, FerryError *error) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        SimBackend *b = ctx;
        _cleanup_free_ SimVm *vms = NULL;
        _cleanup_free_ FerryVm *out = NULL;
        SimMarker *mk = NULL;
        size_t n = 0, n_mk = 0;
        SimError e = {};
        int r;

        r = sim_world_lock(b->world);
        if (r < 0)
                return set_error(error, r, "sim: locking the world: %s", strerror(-r));
        locked = b->world;
        r = sim_world_reconcile(b->world, NULL, &e);
        if (r < 0)
                return sim_error(error, r, &e);
        r = sim_world_load_vms(b->world, b->node, &vms, &n, &e);
        if (r < 0)
                return sim_error(error, r, &e);
        r = sim_world_load_markers(b->world, &mk, &n_mk, &e);
        if (r < 0)
                return sim_error(error, r, &e);
        if (n > 0) {
                out = calloc(n, sizeof(FerryVm));
                if (!out) {
                        sim_markers_free(mk, n_mk);
                        return set_error(error, -ENOMEM, "out of memory");
                }
        }
        for (size_t i = 0; i < n; i++) {
                const SimVm *v = &vms[i];
                FerryVm *o = &out[i];

                snprintf(o->name, sizeof(o->name), "%s", v->name);
                memcpy(o->uuid, v->uuid, sizeof(o->uuid));
                o->state = v->state;
                for (size_t j = 0; j < n_mk; j++)
                        if (streq(mk[j].vm, v->name) && streq(mk[j].source, b->node))
                                o->state = FERRY_VM_MIGRATING;
                o->vcpus = v->vcpus;
                o->memory = v->memory;
                o->cpu_use_permille = v->cpu_use_permille;
                o->dirty_rate = v->state == FERRY_VM_PAUSED ? 0 : v->dirty_rate;
                o->n_disks = v->n_disks;
                memcpy(o->disks, v->disks, sizeof(o->disks));
                o->n_passthrough = v->passthrough;
        }
        sim_markers_free(mk, n_mk);
        *ret = TAKE_PTR(out);
        *ret_n = n;
        return 0;
}

static void backend_free_vms(void *ctx, FerryVm *vms, size_t n) {
        free(vms);
}

static int parse_uri(const char *uri, char node[static SIM_NAME_MAX], FerryError *error) {
        size_t l;

        if (!uri || strncmp(uri, URI_PREFIX, strlen(URI_PREFIX)) != 0)
                return set_error(error, -EINVAL, "sim: destination URI \"%s\" is not sim://NODE", uri ? uri : "");
        uri += strlen(URI_PREFIX);
        l = strcspn(uri, "/");
        if (l == 0 || l >= SIM_NAME_MAX || (uri[l] == '/' && uri[l + 1]))
                return set_error(error, -EINVAL, "sim: destination URI \"sim://%s\" does not name one node", uri);
        memcpy(node, uri, l);
        node[l] = 0;
        if (!sim_name_is_valid(node))
                return set_error(error, -EINVAL, "sim: \"%s\" is not a valid node name", node);
        return 0;
}

static int backend_cpu_compatible(void *ctx, const char *vm, const char *destination_uri, FerryError *error) {
        SimBackend *b = ctx;
        char dst_node[SIM_NAME_MAX], reason[FERRY_TEXT_MAX];
        SimHost src, dst;
        SimVm v;
        SimError e = {};
        int r;

        r = parse_uri(destination_uri, dst_node, error);
        if (r < 0)
                return r;
        r = sim_world_load_vm(b->world, b->node, vm, &v, &e);
        if (r == -ENOENT)
                return set_error(error, r, "sim: no VM %s on %s", vm, b->node);
        if (r < 0)
                return sim_error(error, r, &e);
        r = sim_world_load_host(b->world, b->node, &src, &e);
        if (r < 0)
                return sim_error(error, r, &e);
        r = sim_world_load_host(b->world, dst_node, &dst, &e);
        if (r == -ENOENT)
                return set_error(error, r, "sim: unknown destination %s", dst_node);
        if (r < 0)
                return sim_error(error, r, &e);
        r = sim_check_cpu(&src, &v, &dst, reason, sizeof(reason));
        if (r < 0)
                return set_error(error, r, "%s", reason);
        return 0;
}

static int track(SimBackend *b, SimMigration *m) {
        SimMigration **n = realloc(b->handles, (b->n_handles + 1) * sizeof(SimMigration *));
        if (!n)
                return -ENOMEM;
        b->handles = n;
        b->handles[b->n_handles++] = m;
        return 0;
}

static int backend_migrate_start(void *ctx, const char *vm, const FerryMigrateParams *params, void **ret_handle,
                                 FerryError *error) {
        SimBackend *b = ctx;
        _cleanup_(sim_migration_freep) SimMigration *m = NULL;
        char dst_node[SIM_NAME_MAX];
        SimError e = {};
        int r;

        if (!params || params->struct_size < offsetof(FerryMigrateParams, postcopy_allowed) + sizeof(bool))
                return set_error(error, -EINVAL, "sim: FerryMigrateParams too small");
        if (params->destination_uri && params->destination_uri[0]) {
                r = parse_uri(params->destination_uri, dst_node, error);
                if (r < 0)
                        return r;
                if (params->destination_node && params->destination_node[0] &&
                    !streq(params->destination_node, dst_node))
                        return set_error(error, -EINVAL, "sim: destination node %s and URI %s disagree",
                                         params->destination_node, params->destination_uri);
        } else if (params->destination_node && sim_name_is_valid(params->destination_node))
                snprintf(dst_node, sizeof(dst_node), "%s", params->destination_node);
        else
                return set_error(error, -EINVAL, "sim: no destination");

        SimStartParams p = {
                .vm = vm,
                .source = b->node,
                .destination = dst_node,
                .bandwidth_limit = params->bandwidth,
                .max_downtime_ms = params->max_downtime_ms,
                .streams = params->parallel_connections,
                .auto_converge = params->auto_converge,
                .postcopy_allowed = params->postcopy_allowed,
        };
        r = sim_migration_start(b->world, &p, &m, &e);
        if (r < 0)
                return sim_error(error, r, &e);
        r = track(b, m);
        if (r < 0)
                return set_error(error, r, "out of memory");
        *ret_handle = TAKE_PTR(m);
        return 0;
}

static const FerryMigratePhase phase_map[_PRECOPY_PHASE_MAX] = {
        [PRECOPY_PHASE_SETUP] = FERRY_MIGRATE_SETUP,
        [PRECOPY_PHASE_PRECOPY] = FERRY_MIGRATE_PRECOPY,
        [PRECOPY_PHASE_POSTCOPY] = FERRY_MIGRATE_POSTCOPY,
        [PRECOPY_PHASE_SWITCHOVER] = FERRY_MIGRATE_SWITCHOVER,
        [PRECOPY_PHASE_COMPLETED] = FERRY_MIGRATE_COMPLETED,
        [PRECOPY_PHASE_FAILED] = FERRY_MIGRATE_FAILED,
        [PRECOPY_PHASE_CANCELLED] = FERRY_MIGRATE_CANCELLED,
};

static int backend_migrate_progress(void *ctx, void *handle, FerryMigrateProgress *ret, FerryError *error) {
        SimMigration *m = handle;
        FerryMigrateProgress p = {};
        PrecopyStatus s;
        SimError e = {};
        int r;

        r = sim_migration_update(m, &e);
        if (r < 0)
                return sim_error(error, r, &e);
        sim_migration_status(m, &s);
        p.struct_size = sizeof(p);
        p.phase = phase_map[s.phase];
        p.memory_total = s.memory_total;
        p.memory_processed = s.processed;
        p.memory_remaining = s.remaining;
        p.rate = s.rate;
        p.dirty_rate = s.dirty_rate;
        p.iteration = s.iteration;
        p.downtime_ms = s.phase == PRECOPY_PHASE_COMPLETED ? s.downtime_ms : 0;
        p.started_usec = m->marker.started_realtime;
        p.finished_usec = m->settled ? m->finished_realtime : 0;
        if (s.phase == PRECOPY_PHASE_FAILED && s.error)
                snprintf(p.error.message, sizeof(p.error.message), "%s", s.error);
        copy_out(ret, &p, sizeof(p));
        return 0;
}

static int backend_migrate_abort(void *ctx, void *handle, FerryError *error) {
        SimError e = {};
        int r = sim_migration_abort(handle, &e);
        return r < 0 ? sim_error(error, r, &e) : 0;
}

static int backend_migrate_set_max_downtime(void *ctx, void *handle, uint64_t ms, FerryError *error) {
        SimError e = {};
        int r = sim_migration_set_max_downtime(handle, ms, &e);
        return r < 0 ? sim_error(error, r, &e) : 0;
}

static int backend_migrate_set_auto_converge(void *ctx, void *handle, bool on, FerryError *error) {
        SimError e = {};
        int r = sim_migration_set_auto_converge(handle, on, &e);
        return r < 0 ? sim_error(error, r, &e) : 0;
}

static int backend_migrate_start_postcopy(void *ctx, void *handle, FerryError *error) {
        SimError e = {};
        int r = sim_migration_start_postcopy(handle, &e);
        return r < 0 ? sim_error(error, r, &e) : 0;
}

static void backend_migrate_release(void *ctx, void *handle) {
        SimBackend *b = ctx;

        for (size_t i = 0; i < b->n_handles; i++)
                if (b->handles[i] == handle) {
                        b->handles[i] = b->handles[--b->n_handles];
                        break;
                }
        sim_migration_free(handle);
}

/* Volumes: the rules are volume.h's; this node is the holder. `backing`
 * (the device or image behind the volume) is not modelled. */
static int volume_error(FerryError *error, int r, const SimError *e) {
        if (r == -ENOMEM)
                return set_error(error, r, "out of memory");
        return set_error(error, r, "sim: %s", e->message[0] ? e->message : strerror(-r));
}

static int backend_volume_prepare(void *ctx, const char *volume, const char *backing, uint64_t epoch,
                                  FerryError *error) {
        SimBackend *b = ctx;
        SimError e = {};
        int r = sim_volume_prepare(b->world, b->node, volume, epoch, &e);
        return r < 0 ? volume_error(error, r, &e) : 0;
}

static int backend_volume_activate(void *ctx, const char *volume, const char *backing, uint64_t epoch,
                                   FerryError *error) {
        SimBackend *b = ctx;
        SimError e = {};
        int r = sim_volume_activate(b->world, b->node, volume, epoch, &e);
        return r < 0 ? volume_error(error, r, &e) : 0;
}

static int backend_volume_release(void *ctx, const char *volume, const char *backing, uint64_t epoch,
                                  FerryError *error) {
        SimBackend *b = ctx;
        SimError e = {};
        int r = sim_volume_release(b->world, b->node, volume, epoch, &e);
        return r < 0 ? volume_error(error, r, &e) : 0;
}

static int backend_volume_held(void *ctx, const char *volume, const char *backing, FerryError *error) {
        SimBackend *b = ctx;
        SimError e = {};
        int r = sim_volume_held(b->world, b->node, volume, &e);
        return r < 0 ? volume_error(error, r, &e) : r;
}

__attribute__((visibility("default")))
const FerryBackendOps ferry_backend = {
        .abi_version = FERRY_BACKEND_ABI_VERSION,
        .name = "sim",
        .open = backend_open,
        .close = backend_close,
        .host_facts = backend_host_facts,
        .list_vms = backend_list_vms,
        .free_vms = backend_free_vms,
        .cpu_compatible = backend_cpu_compatible,
        .migrate_start = backend_migrate_start,
        .migrate_progress = backend_migrate_progress,
        .migrate_abort = backend_migrate_abort,
        .migrate_set_max_downtime = backend_migrate_set_max_downtime,
        .migrate_set_auto_converge = backend_migrate_set_auto_converge,
        .migrate_start_postcopy = backend_migrate_start_postcopy,
        .migrate_release = backend_migrate_release,
        .volume_prepare = backend_volume_prepare,
        .volume_activate = backend_volume_activate,
        .volume_release = backend_volume_release,
        .volume_held = backend_volume_held,
};
