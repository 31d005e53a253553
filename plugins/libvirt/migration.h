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
 * An adopted migration (migration_adopt()) has the monitor thread only.
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

/* Takes over an outgoing migration of `dom` (looked up by the caller on
 * its own connection to the source) that libvirtd runs without us: the
 * peer-to-peer job of a migration whose caller died (an earlier ferryd).
 * -ENOENT with a reason if the domain has no outgoing migration job.
 *
 * No migration thread: the monitor thread alone follows libvirt's job
 * (progress, the abort to send) and, once the job is over, decides the
 * outcome from what libvirt shows:
 *   - COMPLETED: the domain left this host (gone, or shut off with reason
 *     "migrated"), or the job-completed event came; the final statistics
 *     (downtime, ...) from that event, or from the completed job of a
 *     domain still defined here;
 *   - CANCELLED: active here, no job, after an abort of ours that libvirt
 *     accepted;
 *   - FAILED: active here, no job, no abort of ours (libvirt's reason when
 *     it gave one, "cancelled by someone else" when the job said so); or
 *     shut off for another reason; or a failed post-copy.
 * started_usec is now minus libvirt's time_elapsed of the job. Whether it
 * was started with post-copy allowed is not known: migration_start_postcopy()
 * tries, and a refusal is -EPERM with libvirt's reason. */
int migration_adopt(const MigrationTarget *t, virDomainPtr dom, Migration **ret, FerryError *error);

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

/* Cancels it if it still runs (a post-copy migration is waited for; an
 * adopted one whose libvirtd stays unreachable is let go after 10 s),
 * joins the threads, frees. */
Migration *migration_free(Migration *m);
