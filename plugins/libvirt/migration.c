/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "migration.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libvirt/virterror.h>

#include "virt-util.h"

#define MONITOR_INTERVAL_USEC (200 * 1000)
/* How long to wait for the job-completed event after a successful call;
 * libvirtd sends it while it confirms, so it is normally there already. */
#define COMPLETED_EVENT_WAIT_USEC (3 * USEC_PER_SEC)
/* An adopted migration released while its libvirtd cannot be reached:
 * how long the monitor keeps trying before it lets go (outcome unknown). */
#define RELEASE_UNREACHABLE_USEC (10 * USEC_PER_SEC)

struct Migration {
        /* Set before the threads start, read-only afterwards. */
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *vm;
        char *source_uri;
        char *destination_uri;          /* NULL when adopted: libvirt does not tell */
        virTypedParameterPtr params;
        int n_params;
        unsigned long flags;
        uint64_t max_downtime_ms;
        bool postcopy_allowed;
        bool auto_converge;
        /* Taken over from libvirtd (migration_adopt()): no migration thread,
         * the monitor thread decides the outcome; the flags it was started
         * with (post-copy, auto-converge) are not known. */
        bool adopted;

        pthread_t migrate_thread, monitor_thread;
        bool migrate_started, monitor_started;

        pthread_mutex_t lock;
        pthread_cond_t wake;            /* done, or an abort to send */
        /* Under lock. */
        bool in_call;                   /* inside virDomainMigrateToURI3() (adopted: until the job ends) */
        bool done;
        bool abort_requested;
        bool postcopy_requested;
        bool releasing;                 /* migration_free() waits for the threads */
        unsigned callbacks;             /* job_completed() registrations libvirt has not let go of */
        bool have_completed;            /* the job-completed event came */
        FerryMigrateProgress completed; /* its statistics */
        FerryMigrateProgress progress;  /* latest; final once done */
};

/* Job statistics → progress. Memory counters where the hypervisor has them
 * (data_* would include disks copied along, which ferry does not do). */
static void progress_from_stats(virTypedParameterPtr ps, int n, FerryMigrateProgress *p) {
        unsigned long long v, page_size = 4096;

        if (virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_MEMORY_TOTAL, &v) == 1 ||
            virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_DATA_TOTAL, &v) == 1)
                p->memory_total = v;
        if (virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_MEMORY_PROCESSED, &v) == 1 ||
            virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_DATA_PROCESSED, &v) == 1)
                p->memory_processed = v;
        if (virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_MEMORY_REMAINING, &v) == 1 ||
            virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_DATA_REMAINING, &v) == 1)
                p->memory_remaining = v;
        if (virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_MEMORY_BPS, &v) == 1)
                p->rate = v;
        (void) virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_MEMORY_PAGE_SIZE, &page_size);
        /* Pages per second, not bytes. */
        if (virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_MEMORY_DIRTY_RATE, &v) == 1)
                p->dirty_rate = v * page_size;
        if (virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_MEMORY_ITERATION, &v) == 1)
                p->iteration = (uint32_t) MIN(v, (unsigned long long) UINT32_MAX);
        if (virTypedParamsGetULLong(ps, n, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1)
                p->downtime_ms = v;
}

/* ---- the migration thread ---------------------------------------------- */

/* The final statistics of the job, as the source's libvirtd reports them
 * in the job-completed event: downtime, iterations, totals, for pre-copy
 * and post-copy alike. Runs in the event loop thread. */
static void job_completed(virConnectPtr conn, virDomainPtr dom, virTypedParameterPtr params, int n, void *opaque) {
        Migration *m = opaque;
        FerryMigrateProgress p = {};

        progress_from_stats(params, n, &p);
        pthread_mutex_lock(&m->lock);
        m->completed = p;
        m->have_completed = true;
        pthread_cond_broadcast(&m->wake);
        pthread_mutex_unlock(&m->lock);
}

/* libvirt is done with the callback: it will not run again. */
static void job_completed_freed(void *opaque) {
        Migration *m = opaque;

        pthread_mutex_lock(&m->lock);
        if (m->callbacks > 0)
                m->callbacks--;
        pthread_cond_broadcast(&m->wake);
        pthread_mutex_unlock(&m->lock);
}

static bool wait_for_completed_event(Migration *m, FerryMigrateProgress *ret) {
        struct timespec deadline;

        clock_gettime(CLOCK_MONOTONIC, &deadline);
        uint64_t ns = (uint64_t) deadline.tv_nsec + COMPLETED_EVENT_WAIT_USEC * 1000;
        deadline.tv_sec += (time_t) (ns / 1000000000);
        deadline.tv_nsec = (long) (ns % 1000000000);
        pthread_mutex_lock(&m->lock);
        while (!m->have_completed)
                if (pthread_cond_timedwait(&m->wake, &m->lock, &deadline) != 0)
                        break;
        bool have = m->have_completed;
        if (have)
                *ret = m->completed;
        pthread_mutex_unlock(&m->lock);
        return have;
}

/* Without the event (no event loop): after success the source domain is
 * gone (UNDEFINE_SOURCE, or a transient domain that stopped), and with it
 * its statistics. After a pre-copy migration the destination has them:
 * libvirt hands them over in the migration cookie and keeps them as the
 * domain's completed job (KEEP_COMPLETED leaves them for anyone else who
 * asks). After post-copy, libvirt 9.0 keeps none there. */
static bool completed_stats_from_destination(Migration *m, FerryMigrateProgress *p) {
        _cleanup_(virConnectClosep) virConnectPtr dconn = NULL;
        _cleanup_(virDomainFreep) virDomainPtr ddom = NULL;
        virTypedParameterPtr params = NULL;
        int type, n = 0;

        dconn = virConnectOpen(m->destination_uri);
        if (!dconn)
                return false;
        ddom = virDomainLookupByUUIDString(dconn, m->uuid);
        if (!ddom)
                return false;
        if (virDomainGetJobStats(ddom, &type, &params, &n,
                                 VIR_DOMAIN_JOB_STATS_COMPLETED | VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) < 0)
                return false;
        bool ok = type == VIR_DOMAIN_JOB_COMPLETED;
        if (ok)
                progress_from_stats(params, n, p);
        virTypedParamsFree(params, n);
        return ok;
}

static void *migrate_thread(void *userdata) {
        Migration *m = userdata;
        _cleanup_(virConnectClosep) virConnectPtr conn = NULL;
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        FerryMigrateProgress final = { .struct_size = sizeof(final) };
        bool cancelled, postcopy;
        int r = 0, callback = -1;

        conn = virConnectOpen(m->source_uri);
        if (!conn) {
                r = fail_virt(&final.error, -ECONNREFUSED, "migration thread cannot connect to %s", m->source_uri);
                goto finish;
        }
        virt_keepalive(conn);
        dom = virDomainLookupByUUIDString(conn, m->uuid);
        if (!dom) {
                r = fail_virt(&final.error, -ENOENT, "VM \"%s\"", m->vm);
                goto finish;
        }
        /* Fails without an event loop; then we ask the destination. */
        callback = virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                                    VIR_DOMAIN_EVENT_CALLBACK(job_completed), m,
                                                    job_completed_freed);
        if (callback >= 0) {
                pthread_mutex_lock(&m->lock);
                m->callbacks++;
                pthread_mutex_unlock(&m->lock);
        }
        /* There is no migration parameter for the downtime limit; libvirt
         * sets it on the running QEMU, and the migration uses it. */
        if (m->max_downtime_ms > 0 && virDomainMigrateSetMaxDowntime(dom, m->max_downtime_ms, 0) < 0) {
                r = fail_virt(&final.error, -EIO, "cannot set the maximum downtime of VM \"%s\" to %" PRIu64 " ms",
                              m->vm, m->max_downtime_ms);
                goto finish;
        }

        pthread_mutex_lock(&m->lock);
        cancelled = m->abort_requested;
        if (!cancelled) {
                m->in_call = true;
                m->progress.started_usec = now_usec(CLOCK_REALTIME);
        }
        final.started_usec = m->progress.started_usec;
        pthread_mutex_unlock(&m->lock);
        if (cancelled) {
                r = fail(&final.error, -ECANCELED, "cancelled before it started");
                goto finish;
        }

        if (virDomainMigrateToURI3(dom, m->destination_uri, m->params, (unsigned) m->n_params, m->flags) < 0)
                r = fail_virt(&final.error, -EIO, "migration of \"%s\" to %s failed", m->vm, m->destination_uri);
        final.finished_usec = now_usec(CLOCK_REALTIME);

finish:
        pthread_mutex_lock(&m->lock);
        postcopy = m->progress.phase == FERRY_MIGRATE_POSTCOPY;
        pthread_mutex_unlock(&m->lock);
        if (r < 0 && dom) {
                /* Where is the VM? A failed post-copy leaves it paused (or,
                 * since libvirt 8.5, running on the destination) with its
                 * memory split between the hosts; anything else means it
                 * still runs here. What the monitor saw is the fallback. */
                int state, reason;
                if (virDomainGetState(dom, &state, &reason, 0) == 0)
                        postcopy = (state == VIR_DOMAIN_PAUSED && (reason == VIR_DOMAIN_PAUSED_POSTCOPY ||
                                                                   reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED)) ||
                                   (state == VIR_DOMAIN_RUNNING && (reason == VIR_DOMAIN_RUNNING_POSTCOPY ||
                                                                    reason == VIR_DOMAIN_RUNNING_POSTCOPY_FAILED));
        }

        pthread_mutex_lock(&m->lock);
        /* The last figures seen while it ran. */
        final.memory_total = m->progress.memory_total;
        final.memory_processed = m->progress.memory_processed;
        final.memory_remaining = m->progress.memory_remaining;
        final.rate = m->progress.rate;
        final.dirty_rate = m->progress.dirty_rate;
        final.iteration = m->progress.iteration;
        /* Whatever libvirt said, we asked for it; and an abort someone
         * else sent (virsh domjobabort) is a failure to us. */
        if (r < 0 && m->abort_requested && !postcopy)
                r = -ECANCELED;
        else if (r == -ECANCELED && !m->abort_requested)
                r = -EIO;
        pthread_mutex_unlock(&m->lock);

        if (r == 0) {
                FerryMigrateProgress stats = {};
                final.phase = FERRY_MIGRATE_COMPLETED;
                if ((callback >= 0 && wait_for_completed_event(m, &stats)) ||
                    completed_stats_from_destination(m, &stats)) {
                        final.memory_total = stats.memory_total;
                        final.memory_processed = stats.memory_processed;
                        final.rate = stats.rate;
                        final.iteration = stats.iteration;
                        final.downtime_ms = stats.downtime_ms;
                }
                final.memory_remaining = 0;
        } else if (r == -ECANCELED) {
                final.phase = FERRY_MIGRATE_CANCELLED;
        } else {
                final.phase = FERRY_MIGRATE_FAILED;
                if (postcopy) {
                        /* Past the switch to post-copy the source no longer
                         * has the whole VM: say so where it will be read. */
                        size_t l = strlen(final.error.message);
                        snprintf(final.error.message + l, sizeof(final.error.message) - l,
                                 " (post-copy had started: neither host has the whole VM; it needs "
                                 "'virsh migrate --postcopy-resume' or a restart)");
                }
        }
        if (!final.finished_usec)
                final.finished_usec = now_usec(CLOCK_REALTIME);
        if (callback >= 0)
                (void) virConnectDomainEventDeregisterAny(conn, callback);

        pthread_mutex_lock(&m->lock);
        m->progress = final;
        m->in_call = false;
        m->done = true;
        pthread_cond_broadcast(&m->wake);
        pthread_mutex_unlock(&m->lock);
        return NULL;
}

/* ---- the monitor thread ------------------------------------------------ */

static FerryMigratePhase phase_from_job(bool active, const FerryMigrateProgress *p, int state, int reason,
                                        bool seen_job) {
        if (state == VIR_DOMAIN_PAUSED && (reason == VIR_DOMAIN_PAUSED_POSTCOPY ||
                                           reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED))
                return FERRY_MIGRATE_POSTCOPY;
        if (!active)
                /* No job yet: begin/prepare. No job any more, but the call
                 * has not returned: finish/confirm, the VM already stopped
                 * here. */
                return seen_job ? FERRY_MIGRATE_SWITCHOVER : FERRY_MIGRATE_SETUP;
        /* QEMU stopped the vCPUs for the last pages and the device state. */
        if (state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_MIGRATION)
                return FERRY_MIGRATE_SWITCHOVER;
        /* The destination QEMU is being started and connected. */
        if (p->memory_total == 0 && p->memory_processed == 0)
                return FERRY_MIGRATE_SETUP;
        return FERRY_MIGRATE_PRECOPY;
}

typedef struct Monitor {
        virConnectPtr conn;
        virDomainPtr dom;
        int callback;           /* adopted: job_completed() on conn, or -1 */
        bool gone;              /* the domain left this host */
        bool seen_job;          /* an active job was seen */
        bool abort_sent;        /* sent, or refused for good */
        bool abort_accepted;    /* ... and libvirt took it */
        /* What an adopted migration's end is decided from. */
        bool over;              /* the last look found no job, or the domain stopped or gone */
        int state, reason;      /* the domain's, at the last look */
        bool saw_cancelled;     /* the job said "cancelled" on its way out */
        bool saw_failed;        /* ... or "failed" */
        char errmsg[FERRY_TEXT_MAX];    /* ... or "failed", with this reason */
        uint64_t last_seen_usec;        /* CLOCK_MONOTONIC of the last successful look */
} Monitor;

static void monitor_disconnect(Monitor *mon) {
        if (mon->dom) {
                virDomainFree(mon->dom);
                mon->dom = NULL;
        }
        if (mon->conn) {
                if (mon->callback >= 0)
                        (void) virConnectDomainEventDeregisterAny(mon->conn, mon->callback);
                (void) virConnectClose(mon->conn);
                mon->conn = NULL;
        }
        mon->callback = -1;
}

/* The monitor's own connection, reopened when it died (libvirtd
 * restarted: an adopted migration is watched until its end). */
static bool monitor_connect(Migration *m, Monitor *mon) {
        if (mon->conn && m->adopted && virConnectIsAlive(mon->conn) != 1)
                monitor_disconnect(mon);
        if (mon->conn)
                return true;
        mon->conn = virConnectOpen(m->source_uri);
        if (!mon->conn)
                return false;
        if (m->adopted)
                virt_keepalive(mon->conn);
        return true;
}

/* An adopted migration has no migration thread: the monitor listens for
 * the job-completed event itself, on its connection. A migration that
 * succeeded comes with its final statistics there; a failed or cancelled
 * one has none (libvirt 9.0 keeps no completed job for them either). */
static void monitor_register_completed(Migration *m, Monitor *mon) {
        if (!m->adopted || mon->callback >= 0 || !mon->dom)
                return;
        mon->callback = virConnectDomainEventRegisterAny(mon->conn, mon->dom, VIR_DOMAIN_EVENT_ID_JOB_COMPLETED,
                                                         VIR_DOMAIN_EVENT_CALLBACK(job_completed), m,
                                                         job_completed_freed);
        if (mon->callback >= 0) {
                pthread_mutex_lock(&m->lock);
                m->callbacks++;
                pthread_mutex_unlock(&m->lock);
        } else
                virResetLastError();    /* no event loop: the domain's state decides alone */
}

static bool postcopy_failed(int state, int reason) {
        return (state == VIR_DOMAIN_PAUSED && reason == VIR_DOMAIN_PAUSED_POSTCOPY_FAILED) ||
               (state == VIR_DOMAIN_RUNNING && reason == VIR_DOMAIN_RUNNING_POSTCOPY_FAILED);
}

/* A call on the domain failed: it left this host, or we learnt nothing. */
static bool monitor_failed_call(Monitor *mon, FerryMigrateProgress *p) {
        if (!last_error_is(VIR_ERR_NO_DOMAIN))
                return false;
        mon->gone = true;
        mon->over = true;
        p->phase = FERRY_MIGRATE_SWITCHOVER;
        return true;
}

/* One look at the domain; false if there was nothing to learn. */
static bool monitor_sample(Migration *m, Monitor *mon, bool send_abort, FerryMigrateProgress *p) {
        virTypedParameterPtr params = NULL;
        int type, n = 0, state, reason;

        mon->over = false;
        if (!monitor_connect(m, mon))
                return false;   /* again next time */
        if (!mon->dom && !mon->gone) {
                mon->dom = virDomainLookupByUUIDString(mon->conn, m->uuid);
                mon->gone = !mon->dom && last_error_is(VIR_ERR_NO_DOMAIN);
                monitor_register_completed(m, mon);
        }
        if (!mon->dom || mon->gone) {
                if (!mon->gone)
                        return false;
                /* Removed from this host: being confirmed, the call
                 * returns any moment. */
                p->phase = FERRY_MIGRATE_SWITCHOVER;
                mon->over = true;
                return true;
        }
        if (virDomainGetState(mon->dom, &state, &reason, 0) < 0)
                return monitor_failed_call(mon, p);
        mon->state = state;
        mon->reason = reason;
        if (state == VIR_DOMAIN_SHUTOFF) {
                /* No job statistics for an inactive domain. Migrated: the
                 * source QEMU stopped at the end of the confirm phase; the
                 * domain is undefined next (UNDEFINE_SOURCE). */
                if (reason == VIR_DOMAIN_SHUTOFF_MIGRATED)
                        p->phase = FERRY_MIGRATE_SWITCHOVER;
                mon->over = true;
                return true;
        }
        if (virDomainGetJobStats(mon->dom, &type, &params, &n, 0) < 0)
                return monitor_failed_call(mon, p);
        bool active = type == VIR_DOMAIN_JOB_BOUNDED || type == VIR_DOMAIN_JOB_UNBOUNDED;
        if (active) {
                progress_from_stats(params, n, p);
                /* QEMU's "expected downtime" of a running pre-copy is not
                 * the downtime this field reports once completed. */
                p->downtime_ms = 0;
                mon->seen_job = true;
        } else if (type == VIR_DOMAIN_JOB_FAILED || type == VIR_DOMAIN_JOB_CANCELLED) {
                /* The job has ended but libvirt is still cleaning up
                 * (resuming the VM): the only moment it says how it ended. */
                const char *msg = NULL;
                if (type == VIR_DOMAIN_JOB_CANCELLED)
                        mon->saw_cancelled = true;
                else
                        mon->saw_failed = true;
                if (virTypedParamsGetString(params, n, VIR_DOMAIN_JOB_ERRMSG, &msg) == 1 && msg)
                        snprintf(mon->errmsg, sizeof(mon->errmsg), "%s", msg);
        }
        virTypedParamsFree(params, n);
        /* A job that failed or was cancelled is no switchover: until
         * libvirt is done, the phase stays what it was. */
        if (type != VIR_DOMAIN_JOB_FAILED && type != VIR_DOMAIN_JOB_CANCELLED)
                p->phase = phase_from_job(active, p, state, reason, mon->seen_job);
        /* No job at all any more (libvirt is done with it), or a post-copy
         * that failed and waits for a recovery that is not ours to do. */
        mon->over = type == VIR_DOMAIN_JOB_NONE || postcopy_failed(state, reason);

        if (send_abort && !mon->abort_sent && p->phase != FERRY_MIGRATE_POSTCOPY) {
                if (virDomainAbortJob(mon->dom) == 0)
                        mon->abort_sent = mon->abort_accepted = true;
                else if (!last_error_is(VIR_ERR_OPERATION_INVALID))
                        /* Refused for good (e.g. post-copy began meanwhile);
                         * "no job yet" (OPERATION_INVALID) is tried again. */
                        mon->abort_sent = true;
        }
        return true;
}

static const char *shutoff_reason(int reason) {
        switch (reason) {
        case VIR_DOMAIN_SHUTOFF_SHUTDOWN: return "shut down by the guest";
        case VIR_DOMAIN_SHUTOFF_DESTROYED: return "destroyed";
        case VIR_DOMAIN_SHUTOFF_CRASHED: return "crashed";
        case VIR_DOMAIN_SHUTOFF_FAILED: return "failed";
        default: return "shut off";
        }
}

/* The final statistics libvirt keeps for a domain still defined here
 * (shut off "migrated": a persistent domain migrated without
 * UNDEFINE_SOURCE). */
static bool completed_stats_here(Monitor *mon, FerryMigrateProgress *p) {
        virTypedParameterPtr params = NULL;
        int type, n = 0;

        if (!mon->dom || mon->gone)
                return false;
        if (virDomainGetJobStats(mon->dom, &type, &params, &n,
                                 VIR_DOMAIN_JOB_STATS_COMPLETED | VIR_DOMAIN_JOB_STATS_KEEP_COMPLETED) < 0) {
                virResetLastError();
                return false;
        }
        bool ok = type == VIR_DOMAIN_JOB_COMPLETED;
        if (ok)
                progress_from_stats(params, n, p);
        virTypedParamsFree(params, n);
        return ok;
}

/* How an adopted migration ended, once libvirt's job is over (see
 * migration_adopt() in migration.h). */
static void adopted_final(Migration *m, Monitor *mon, const FerryMigrateProgress *last, FerryMigrateProgress *ret) {
        FerryMigrateProgress f = {
                .struct_size = sizeof(f),
                .memory_total = last->memory_total,
                .memory_processed = last->memory_processed,
                .memory_remaining = last->memory_remaining,
                .rate = last->rate,
                .dirty_rate = last->dirty_rate,
                .iteration = last->iteration,
                .started_usec = last->started_usec,
                .finished_usec = now_usec(CLOCK_REALTIME),
        };

        pthread_mutex_lock(&m->lock);
        bool event = m->have_completed;
        pthread_mutex_unlock(&m->lock);
        bool left = mon->gone || (mon->state == VIR_DOMAIN_SHUTOFF && mon->reason == VIR_DOMAIN_SHUTOFF_MIGRATED);

        if (left || event) {
                FerryMigrateProgress stats = {};
                f.phase = FERRY_MIGRATE_COMPLETED;
                if ((mon->callback >= 0 && wait_for_completed_event(m, &stats)) || completed_stats_here(mon, &stats)) {
                        f.memory_total = stats.memory_total;
                        f.memory_processed = stats.memory_processed;
                        f.rate = stats.rate;
                        f.iteration = stats.iteration;
                        f.downtime_ms = stats.downtime_ms;
                }
                f.memory_remaining = 0;
        } else if (postcopy_failed(mon->state, mon->reason)) {
                f.phase = FERRY_MIGRATE_FAILED;
                fail(&f.error, 0, "the post-copy migration of \"%s\" failed: neither host has the whole VM; it needs "
                     "'virsh migrate --postcopy-resume' or a restart", m->vm);
        } else if (mon->state == VIR_DOMAIN_SHUTOFF) {
                f.phase = FERRY_MIGRATE_FAILED;
                fail(&f.error, 0, "VM \"%s\" stopped on this host during its migration (%s)", m->vm,
                     shutoff_reason(mon->reason));
        } else if (mon->abort_accepted) {
                /* Running here, no job, after an abort of ours. */
                f.phase = FERRY_MIGRATE_CANCELLED;
        } else {
                /* Running here, no job, and we did not ask for that. With
                 * libvirt 9.0 the reason is in its log only: the failed job
                 * carries no message and no completed job is kept. */
                f.phase = FERRY_MIGRATE_FAILED;
                fail(&f.error, 0, "the migration of \"%s\" ended without completing; the VM still runs on this host: %s",
                     m->vm, mon->errmsg[0] ? mon->errmsg :
                     mon->saw_cancelled ? "cancelled by someone else (virsh domjobabort, or the ferryd that started it)" :
                     mon->saw_failed ? "libvirt reported it failed, without a reason (see libvirtd's log here)" :
                     "libvirt gave no reason (see libvirtd's log here)");
        }
        *ret = f;
}

static void *monitor_thread(void *userdata) {
        Migration *m = userdata;
        /* An adopted migration had a job when it was adopted. */
        Monitor mon = { .callback = -1, .seen_job = m->adopted, .last_seen_usec = now_usec(CLOCK_MONOTONIC) };

        pthread_mutex_lock(&m->lock);
        while (!m->done) {
                bool in_call = m->in_call, send_abort = m->abort_requested, releasing = m->releasing;
                FerryMigrateProgress p = m->progress, final;
                bool finished = false;
                pthread_mutex_unlock(&m->lock);

                bool updated = in_call && monitor_sample(m, &mon, send_abort, &p);
                if (m->adopted) {
                        /* Nobody sits in a call that returns at the end:
                         * the end is when libvirt's job is over. */
                        uint64_t now = now_usec(CLOCK_MONOTONIC);
                        if (updated)
                                mon.last_seen_usec = now;
                        if (updated && mon.over) {
                                adopted_final(m, &mon, &p, &final);
                                finished = true;
                        } else if (!updated && releasing && now - mon.last_seen_usec > RELEASE_UNREACHABLE_USEC) {
                                final = p;
                                final.phase = FERRY_MIGRATE_FAILED;
                                final.finished_usec = now_usec(CLOCK_REALTIME);
                                fail(&final.error, 0, "released while libvirt at %s could not be reached: the "
                                     "outcome of the migration of \"%s\" is unknown", m->source_uri, m->vm);
                                finished = true;
                        }
                }

                pthread_mutex_lock(&m->lock);
                if (m->done)
                        break;
                if (finished) {
                        m->progress = final;
                        m->in_call = false;
                        m->done = true;
                        pthread_cond_broadcast(&m->wake);
                        break;
                }
                if (updated) {
                        p.started_usec = m->progress.started_usec;
                        m->progress = p;
                }
                /* Until the next round, an abort to send, or the end. */
                if (!(m->abort_requested && !send_abort)) {
                        struct timespec deadline;
                        clock_gettime(CLOCK_MONOTONIC, &deadline);
                        deadline.tv_nsec += MONITOR_INTERVAL_USEC * 1000;
                        deadline.tv_sec += deadline.tv_nsec / 1000000000;
                        deadline.tv_nsec %= 1000000000;
                        (void) pthread_cond_timedwait(&m->wake, &m->lock, &deadline);
                }
        }
        pthread_mutex_unlock(&m->lock);

        monitor_disconnect(&mon);
        return NULL;
}

/* ---- the object -------------------------------------------------------- */

/* "qemu+tcp://user@host:16509/system" → "host" (brackets kept for IPv6). */
static char *uri_host(const char *uri) {
        const char *p = strstr(uri, "://"), *end;

        if (!p)
                return NULL;
        p += 3;
        end = p + strcspn(p, "/?");
        const char *at = memchr(p, '@', (size_t) (end - p));
        if (at)
                p = at + 1;
        if (*p == '[') {
                const char *close = memchr(p, ']', (size_t) (end - p));
                if (close)
                        end = close + 1;
        } else {
                const char *colon = memchr(p, ':', (size_t) (end - p));
                if (colon)
                        end = colon;
        }
        return end > p ? strndup(p, (size_t) (end - p)) : NULL;
}

/* The memory stream goes to the destination's address on the migration
 * network. Without one, libvirt lets the destination name itself (its
 * host name, or qemu.conf's migration_host), which on hosts that share a
 * name goes nowhere; the host part of the destination URI at least reaches
 * that host. A full URI (tcp://host:port, rdma://...) is taken as is. */
static int migrate_uri(const FerryMigrateParams *p, char **ret, FerryError *error) {
        _cleanup_free_ char *host = NULL;
        const char *address = p->migration_address;

        if (!address || !*address) {
                host = uri_host(p->destination_uri);
                if (!host)
                        return fail(error, -EINVAL,
                                    "no migration address given and the destination URI %s names no host",
                                    p->destination_uri);
                address = host;
        }
        if (strstr(address, "://"))
                return (*ret = strdup(address)) ? 0 : -ENOMEM;
        bool ipv6 = strchr(address, ':') && address[0] != '[';
        return asprintf(ret, "tcp://%s%s%s", ipv6 ? "[" : "", address, ipv6 ? "]" : "") < 0 ? -ENOMEM : 0;
}

static int start_thread(pthread_t *thread, void *(*fn)(void *), void *userdata) {
        sigset_t all, saved;
        int r;

        /* Our threads must not take the signals ferryd handles in its loop
         * (signalfd): they start with all of them blocked. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        r = pthread_create(thread, NULL, fn, userdata);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        return -r;
}

static Migration *migration_new(const MigrationTarget *t) {
        pthread_condattr_t attr;
        Migration *m;

        m = calloc(1, sizeof(Migration));
        if (!m)
                return NULL;
        pthread_mutex_init(&m->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&m->wake, &attr);
        pthread_condattr_destroy(&attr);
        m->progress = (FerryMigrateProgress) { .struct_size = sizeof(m->progress), .phase = FERRY_MIGRATE_SETUP };
        snprintf(m->uuid, sizeof(m->uuid), "%s", t->uuid);
        m->vm = strdup(t->vm);
        m->source_uri = strdup(t->source_uri);
        if (!m->vm || !m->source_uri)
                return migration_free(m);
        return m;
}

int migration_start(const MigrationTarget *t, const FerryMigrateParams *p, Migration **ret, FerryError *error) {
        _cleanup_free_ char *uri = NULL;
        Migration *m;
        int max_params = 0, r;

        r = migrate_uri(p, &uri, error);
        if (r < 0)
                return r;

        m = migration_new(t);
        if (!m)
                return -ENOMEM;
        m->destination_uri = strdup(p->destination_uri);
        if (!m->destination_uri) {
                migration_free(m);
                return -ENOMEM;
        }
        m->max_downtime_ms = p->max_downtime_ms;
        m->postcopy_allowed = p->postcopy_allowed;
        m->auto_converge = p->auto_converge;

        /* PERSIST_DEST | UNDEFINE_SOURCE: the definition moves with the
         * VM; a transient VM stays transient. */
        m->flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE;
        if (p->postcopy_allowed)
                m->flags |= VIR_MIGRATE_POSTCOPY;
        if (p->auto_converge)
                m->flags |= VIR_MIGRATE_AUTO_CONVERGE;
        if (p->compression)
                m->flags |= VIR_MIGRATE_COMPRESSED;     /* xbzrle, libvirt's default method */
        r = virTypedParamsAddString(&m->params, &m->n_params, &max_params, VIR_MIGRATE_PARAM_URI, uri);
        if (r >= 0 && p->bandwidth > 0) {
                /* MiB/s, rounded up: a small cap must not become 0, which
                 * means "no cap". The cap holds for post-copy too. */
                unsigned long long mib = (p->bandwidth + (UINT64_C(1) << 20) - 1) >> 20;
                r = virTypedParamsAddULLong(&m->params, &m->n_params, &max_params, VIR_MIGRATE_PARAM_BANDWIDTH, mib);
                if (r >= 0 && p->postcopy_allowed)
                        r = virTypedParamsAddULLong(&m->params, &m->n_params, &max_params,
                                                    VIR_MIGRATE_PARAM_BANDWIDTH_POSTCOPY, mib);
        }
        if (r >= 0 && p->parallel_connections > 1) {
                m->flags |= VIR_MIGRATE_PARALLEL;
                r = virTypedParamsAddInt(&m->params, &m->n_params, &max_params, VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS,
                                         (int) MIN(p->parallel_connections, (uint32_t) 255));
        }
        if (r < 0) {
                migration_free(m);
                return -ENOMEM;
        }

        r = start_thread(&m->monitor_thread, monitor_thread, m);
        if (r < 0) {
                migration_free(m);
                return fail(error, r, "cannot start a migration thread: %s", strerror(-r));
        }
        m->monitor_started = true;
        r = start_thread(&m->migrate_thread, migrate_thread, m);
        if (r < 0) {
                migration_free(m);
                return fail(error, r, "cannot start a migration thread: %s", strerror(-r));
        }
        m->migrate_started = true;
        (void) pthread_setname_np(m->migrate_thread, "ferry-migrate");
        (void) pthread_setname_np(m->monitor_thread, "ferry-mig-poll");
        *ret = m;
        return 0;
}

static const char *job_operation_name(int op) {
        switch (op) {
        case VIR_DOMAIN_JOB_OPERATION_START: return "a start";
        case VIR_DOMAIN_JOB_OPERATION_SAVE: return "a save";
        case VIR_DOMAIN_JOB_OPERATION_RESTORE: return "a restore";
        case VIR_DOMAIN_JOB_OPERATION_MIGRATION_IN: return "an incoming migration";
        case VIR_DOMAIN_JOB_OPERATION_SNAPSHOT: return "a snapshot";
        case VIR_DOMAIN_JOB_OPERATION_SNAPSHOT_REVERT: return "a snapshot revert";
        case VIR_DOMAIN_JOB_OPERATION_DUMP: return "a dump";
        case VIR_DOMAIN_JOB_OPERATION_BACKUP: return "a backup";
        default: return "not a migration";
        }
}

int migration_adopt(const MigrationTarget *t, virDomainPtr dom, Migration **ret, FerryError *error) {
        FerryMigrateProgress p = { .struct_size = sizeof(p) };
        virTypedParameterPtr params = NULL;
        int type = VIR_DOMAIN_JOB_NONE, n = 0, op = VIR_DOMAIN_JOB_OPERATION_UNKNOWN, state, reason, r;
        unsigned long long elapsed_ms = 0;
        bool have_elapsed = false;
        Migration *m;

        if (virDomainGetState(dom, &state, &reason, 0) < 0)
                return fail_virt(error, -EIO, "cannot get the state of VM \"%s\"", t->vm);
        if (state == VIR_DOMAIN_SHUTOFF)
                return fail(error, -ENOENT, "no outgoing migration of VM \"%s\" is in flight: it is not running here",
                            t->vm);
        if (virDomainGetJobStats(dom, &type, &params, &n, 0) < 0) {
                if (last_error_is(VIR_ERR_NO_DOMAIN))
                        return fail_virt(error, -ENOENT, "no outgoing migration of VM \"%s\" is in flight", t->vm);
                return fail_virt(error, -EIO, "cannot get the job of VM \"%s\"", t->vm);
        }
        bool active = type == VIR_DOMAIN_JOB_BOUNDED || type == VIR_DOMAIN_JOB_UNBOUNDED;
        if (active) {
                (void) virTypedParamsGetInt(params, n, VIR_DOMAIN_JOB_OPERATION, &op);
                have_elapsed = virTypedParamsGetULLong(params, n, VIR_DOMAIN_JOB_TIME_ELAPSED, &elapsed_ms) == 1;
                progress_from_stats(params, n, &p);
                p.downtime_ms = 0;
        }
        virTypedParamsFree(params, n);
        if (!active)
                return fail(error, -ENOENT, "no outgoing migration of VM \"%s\" is in flight: it has no job", t->vm);
        if (op != VIR_DOMAIN_JOB_OPERATION_MIGRATION_OUT)
                return fail(error, -ENOENT, "no outgoing migration of VM \"%s\" is in flight: its job is %s", t->vm,
                            job_operation_name(op));

        m = migration_new(t);
        if (!m)
                return -ENOMEM;
        m->adopted = true;
        /* Not known: post-copy is tried when asked (libvirt refuses it if
         * the migration was started without), auto-converge cannot be
         * changed anyway. */
        m->postcopy_allowed = false;
        p.phase = phase_from_job(true, &p, state, reason, true);
        /* libvirt's own clock: when its job (the migration API call) began. */
        uint64_t now = now_usec(CLOCK_REALTIME);
        if (have_elapsed)
                p.started_usec = now - MIN((uint64_t) elapsed_ms * 1000, now);
        m->progress = p;
        m->in_call = true;      /* "in libvirt's job", which the monitor watches */

        r = start_thread(&m->monitor_thread, monitor_thread, m);
        if (r < 0) {
                m->done = true;
                migration_free(m);
                return fail(error, r, "cannot start a migration thread: %s", strerror(-r));
        }
        m->monitor_started = true;
        (void) pthread_setname_np(m->monitor_thread, "ferry-mig-poll");
        *ret = m;
        return 0;
}

void migration_progress(Migration *m, FerryMigrateProgress *ret) {
        size_t size = ret->struct_size;

        pthread_mutex_lock(&m->lock);
        /* An older ferryd may know a shorter struct. */
        memcpy(ret, &m->progress, MIN(size, sizeof(m->progress)));
        pthread_mutex_unlock(&m->lock);
        ret->struct_size = size;
}

bool migration_done(Migration *m) {
        pthread_mutex_lock(&m->lock);
        bool done = m->done;
        pthread_mutex_unlock(&m->lock);
        return done;
}

const char *migration_uuid(const Migration *m) {
        return m->uuid;
}

int migration_abort(Migration *m, FerryError *error) {
        int r = 0;

        pthread_mutex_lock(&m->lock);
        if (m->done)
                r = fail(error, -EALREADY, "abort: the migration of \"%s\" has already ended", m->vm);
        else if (m->progress.phase == FERRY_MIGRATE_POSTCOPY)
                r = fail(error, -EBUSY, "abort: VM \"%s\" already runs on the destination (post-copy); "
                         "the migration can only complete", m->vm);
        else {
                m->abort_requested = true;
                pthread_cond_broadcast(&m->wake);
        }
        pthread_mutex_unlock(&m->lock);
        return r;
}

/* The source domain of a running migration, or why there is none. */
static int running_domain(Migration *m, virConnectPtr conn, const char *what, virDomainPtr *ret, FerryError *error) {
        if (migration_done(m))
                return fail(error, -EALREADY, "%s: the migration of \"%s\" has already ended", what, m->vm);
        *ret = virDomainLookupByUUIDString(conn, m->uuid);
        if (!*ret)
                return fail_virt(error, -EALREADY, "%s: VM \"%s\" is no longer on this host", what, m->vm);
        return 0;
}

int migration_set_max_downtime(Migration *m, virConnectPtr conn, uint64_t ms, FerryError *error) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        int r;

        if (ms == 0)
                return fail(error, -EINVAL, "set_max_downtime: 0 ms is not a downtime QEMU can reach");
        r = running_domain(m, conn, "set_max_downtime", &dom, error);
        if (r < 0)
                return r;
        if (virDomainMigrateSetMaxDowntime(dom, ms, 0) < 0)
                return fail_virt(error, -EIO, "cannot set the maximum downtime of \"%s\" to %" PRIu64 " ms", m->vm, ms);
        return 0;
}

int migration_start_postcopy(Migration *m, virConnectPtr conn, FerryError *error) {
        _cleanup_(virDomainFreep) virDomainPtr dom = NULL;
        int r;

        if (!m->postcopy_allowed && !m->adopted)
                return fail(error, -EPERM, "post-copy was not permitted when the migration of \"%s\" started", m->vm);
        r = running_domain(m, conn, "start_postcopy", &dom, error);
        if (r < 0)
                return r;
        if (virDomainMigrateStartPostCopy(dom, 0) < 0) {
                pthread_mutex_lock(&m->lock);
                bool in_postcopy = m->progress.phase == FERRY_MIGRATE_POSTCOPY;
                pthread_mutex_unlock(&m->lock);
                if (m->adopted && !in_postcopy && last_error_is(VIR_ERR_OPERATION_INVALID) && !migration_done(m)) {
                        /* Whoever started it did not allow post-copy (or
                         * the job is just ending): libvirt says which. */
                        (void) fail_virt(error, -EPERM, "cannot switch the adopted migration of \"%s\" to post-copy",
                                         m->vm);
                        return -EPERM;
                }
                return fail_virt(error, -EIO, "cannot switch the migration of \"%s\" to post-copy", m->vm);
        }
        pthread_mutex_lock(&m->lock);
        m->postcopy_requested = true;
        pthread_mutex_unlock(&m->lock);
        return 0;
}

int migration_set_auto_converge(Migration *m, bool on, FerryError *error) {
        /* QEMU fixes migration capabilities when a migration starts, and
         * libvirt has no call to change auto-converge afterwards. */
        if (m->adopted)
                return fail(error, -EOPNOTSUPP,
                            "libvirt cannot turn auto-converge %s during a migration, and whether the adopted "
                            "migration of \"%s\" was started with it is not known here", on ? "on" : "off", m->vm);
        if (on == m->auto_converge)
                return 0;
        return fail(error, -EOPNOTSUPP,
                    "libvirt cannot turn auto-converge %s during a migration: it is chosen when the migration "
                    "starts (FerryMigrateParams.auto_converge), and QEMU throttles only once pre-copy stops converging",
                    on ? "on" : "off");
}

Migration *migration_free(Migration *m) {
        if (!m)
                return NULL;
        pthread_mutex_lock(&m->lock);
        if (!m->done) {
                /* Released while running: cancel rather than wait for a
                 * whole migration (post-copy cannot be, and is waited for).
                 * An adopted one ends when the monitor sees libvirt's job
                 * end (or gives up on an unreachable libvirtd). */
                m->abort_requested = true;
                m->releasing = true;
                if (!m->migrate_started && !(m->adopted && m->monitor_started))
                        m->done = true;         /* nobody else would set it */
                pthread_cond_broadcast(&m->wake);
        }
        pthread_mutex_unlock(&m->lock);
        if (m->migrate_started)
                (void) pthread_join(m->migrate_thread, NULL);
        if (m->monitor_started)
                (void) pthread_join(m->monitor_thread, NULL);

        /* The event loop thread may still be inside job_completed(): wait
         * until libvirt lets go of it. Should it never, keep the memory
         * rather than free what a callback may touch. */
        pthread_mutex_lock(&m->lock);
        struct timespec deadline;
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += 5;
        while (m->callbacks > 0)
                if (pthread_cond_timedwait(&m->wake, &m->lock, &deadline) != 0)
                        break;
        bool leak = m->callbacks > 0;
        pthread_mutex_unlock(&m->lock);
        if (leak)
                return NULL;

        free(m->vm);
        free(m->source_uri);
        free(m->destination_uri);
        virTypedParamsFree(m->params, m->n_params);
        pthread_cond_destroy(&m->wake);
        pthread_mutex_destroy(&m->lock);
        free(m);
        return NULL;
}
