/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Migrations in a shared world: admission, the pre-copy model driven by the
 * world's clock, bandwidth sharing, the move of the VM at the end, and the
 * resolution of migrations whose driver died.
 *
 * A migration is a marker, migrations/VM.conf, that records everything a
 * replay needs: the model's parameters at the start, the start in world
 * time, and each control action with its simulated time (bandwidth share
 * changes included). Its driver holds an flock on migrations/VM.owner. The
 * model is advanced lazily, when someone looks (no thread, no timer).
 *
 * Lifecycle, all changes under the world lock:
 *   start     checks, takes the owner lock, writes the marker; the VM file
 *             stays in vms/SRC/ and is listed as migrating there
 *   update    advances the model to the world's now; re-shares the source's
 *             and the destination's links among their migrations (recorded
 *             as an event when the share changes)
 *   end       completed: one rename of vms/SRC/VM.conf to vms/DST/VM.conf;
 *             failed or cancelled: nothing moves; then marker and owner
 *             file are removed
 *   orphan    a marker whose owner lock is free: its driver died (or let
 *             go unfinished). sim_world_reconcile() replays it from the
 *             marker to the world's now and settles it deterministically:
 *             still in setup or pre-copy -> cancelled (the hypervisor drops
 *             a migration whose controlling client is gone), in switchover
 *             or post-copy -> run to completion (past the point of no
 *             return), already ended -> that outcome. A marker from another
 *             boot (monotonic clock) is replayed to its natural end. */

#include "precopy.h"
#include "world.h"

typedef struct SimStartParams {
        const char *vm;
        const char *source;
        const char *destination;
        uint64_t bandwidth_limit;       /* bytes/s, 0 = none */
        uint64_t max_downtime_ms;       /* 0 = the world's default */
        uint32_t streams;               /* parallel connections, 0 = 1 */
        bool auto_converge;
        bool postcopy_allowed;
} SimStartParams;

typedef struct SimMigration {
        SimWorld *world;                /* not owned */
        SimMarker marker;
        Precopy model;
        int owner_fd;
        bool settled;                   /* outcome applied, marker gone */
        bool failed_to_settle;          /* model completed, the move did not */
        uint64_t finished_realtime;
        char error[FERRY_TEXT_MAX];
} SimMigration;

/* 0 if a VM running on `src` may run on `dst`'s CPU; -ENOTSUP with the
 * reason otherwise: the vendor must match and the VM's required features
 * must all be offered. */
int sim_check_cpu(const SimHost *src, const SimVm *vm, const SimHost *dst, char *reason, size_t len);

/* Memory of a node's VMs and the memory held for migrations coming in. */
int sim_world_memory_used(SimWorld *w, const char *node, uint64_t *ret_vms, uint64_t *ret_incoming, SimError *e);

/* Refusals: -ENOENT (no such VM on source, unknown destination), -EBUSY
 * (already migrating), -ENOTSUP (not running, passthrough devices, a local
 * disk, CPU, destination's hypervisor older than the VM's machine),
 * -EEXIST (a VM of that name on the destination), -ENOSPC (destination's
 * free memory); e says which. */
int sim_migration_start(SimWorld *w, const SimStartParams *p, SimMigration **ret, SimError *e);
/* Advances to the world's now, settles at the end, re-shares bandwidth. */
int sim_migration_update(SimMigration *m, SimError *e);
/* -EBUSY past switchover, -ESTALE once ended. */
int sim_migration_abort(SimMigration *m, SimError *e);
int sim_migration_set_max_downtime(SimMigration *m, uint64_t ms, SimError *e);
int sim_migration_set_auto_converge(SimMigration *m, bool on, SimError *e);
/* -EPERM unless postcopy_allowed at the start. */
int sim_migration_start_postcopy(SimMigration *m, SimError *e);
void sim_migration_status(const SimMigration *m, PrecopyStatus *ret);
/* Frees the handle. An unsettled migration becomes an orphan, settled by
 * the next sim_world_reconcile(). */
SimMigration *sim_migration_free(SimMigration *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(SimMigration *, sim_migration_free);

/* The model of a marker at `elapsed` usec after its start, from its
 * parameters and events (UINT64_MAX: run to its end). */
int sim_marker_replay(const SimMarker *mk, uint64_t elapsed, Precopy *ret);

/* Settles every orphaned migration, as described above; *ret_resolved
 * (may be NULL) counts them. */
int sim_world_reconcile(SimWorld *w, unsigned *ret_resolved, SimError *e);
