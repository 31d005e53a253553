/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* One live migration of a libvirt domain, peer to peer, and the two
 * threads that carry it:
 *
 *   - the migration thread sits in virDomainMigrateToURI3() for the whole
 *     migration (begin, perform, finish, confirm), then fetches the final
 *     statistics from the destination;
 *   - the monitor thread polls virDomainGetJobStats() and the domain's
 *     state every 200 ms into a cached FerryMigrateProgress, and sends an
 *     abort once there is a job to abort.
 *
 * Each thread has its own libvirt connection. ferryd's loop only ever
 * reads the cache (migration_progress() never waits for libvirt: during a
 * switchover a query can take 100 ms and more) or makes a one-off call
 * (maximum downtime, post-copy) on the context's connection. */

#include <stdbool.h>
#include <stdint.h>

#include <libvirt/libvirt.h>

#include "ferry-backend.h"

typedef struct Migration Migration;

typedef struct MigrationTarget {
        const char *vm;
        const char *uuid;
        const char *source_uri;         /* where the threads connect */
        const char *migrate_uri;        /* VIR_MIGRATE_PARAM_URI: tcp://ADDRESS */
} MigrationTarget;

/* Starts the threads; returns at once. */
int migration_start(const MigrationTarget *t, const FerryMigrateParams *p, Migration **ret, FerryError *error);

/* The latest progress; final once the phase is COMPLETED, FAILED or
 * CANCELLED. Fills no more than ret->struct_size. */
void migration_progress(Migration *m, FerryMigrateProgress *ret);

bool migration_done(Migration *m);
const char *migration_uuid(const Migration *m);

/* Asks for a cancel and returns: the monitor thread sends it as soon as
 * libvirt has a job to cancel. -EBUSY once post-copy runs (the VM is on
 * the destination), -EALREADY when over. The outcome shows in the phase:
 * CANCELLED, or COMPLETED if it was too late. */
int migration_abort(Migration *m, FerryError *error);

/* One-off calls on `conn` (the caller's connection to the source). */
int migration_set_max_downtime(Migration *m, virConnectPtr conn, uint64_t ms, FerryError *error);
int migration_start_postcopy(Migration *m, virConnectPtr conn, FerryError *error);
int migration_set_auto_converge(Migration *m, bool on, FerryError *error);

/* Cancels it if it still runs (a post-copy migration is waited for),
 * joins both threads, frees. */
Migration *migration_free(Migration *m);
