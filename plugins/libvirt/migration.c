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

struct Migration {
        /* Set before the threads start, read-only afterwards. */
        char uuid[VIR_UUID_STRING_BUFLEN];
        char *vm;
        char *source_uri;
        char *destination_uri;
        virTypedParameterPtr params;
        int n_params;
        unsigned long flags;
        uint64_t max_downtime_ms;
        bool postcopy_allowed;
        bool auto_converge;

        pthread_t migrate_thread, monitor_thread;
        bool migrate_started, monitor_started;

        pthread_mutex_t lock;
        pthread_cond_t wake;            /* done, or an abort to send */
        /* Under lock. */
        bool in_call;                   /* inside virDomainMigrateToURI3() */
        bool done;
        bool abort_requested;
        bool postcopy_requested;
        bool callback_registered;       /* job_completed() may run */
        bool callback_freed;            /* ... and libvirt let go of it */
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
        m->callback_freed = true;
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
                m->callback_registered = true;
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
        bool gone;              /* the domain left this host */
        bool seen_job;          /* an active job was seen */
        bool abort_sent;
} Monitor;

/* One look at the domain; false if there was nothing to learn. */
static bool monitor_sample(Migration *m, Monitor *mon, bool send_abort, FerryMigrateProgress *p) {
        virTypedParameterPtr params = NULL;
        int type, n = 0, state, reason;

        if (!mon->conn && !(mon->conn = virConnectOpen(m->source_uri)))
                return false;   /* again next time */
        if (!mon->dom && !mon->gone) {
                mon->dom = virDomainLookupByUUIDString(mon->conn, m->uuid);
                mon->gone = !mon->dom && last_error_is(VIR_ERR_NO_DOMAIN);
        }
        if (!mon->dom || mon->gone) {
                if (!mon->gone)
                        return false;
                /* Removed from this host: being confirmed, the call
                 * returns any moment. */
                p->phase = FERRY_MIGRATE_SWITCHOVER;
                return true;
        }
        if (virDomainGetState(mon->dom, &state, &reason, 0) < 0 ||
            virDomainGetJobStats(mon->dom, &type, &params, &n, 0) < 0) {
                if (!last_error_is(VIR_ERR_NO_DOMAIN))
                        return false;
                mon->gone = true;
                p->phase = FERRY_MIGRATE_SWITCHOVER;
                return true;
        }
        bool active = type == VIR_DOMAIN_JOB_BOUNDED || type == VIR_DOMAIN_JOB_UNBOUNDED;
        if (active) {
                progress_from_stats(params, n, p);
                /* QEMU's "expected downtime" of a running pre-copy is not
                 * the downtime this field reports once completed. */
                p->downtime_ms = 0;
                mon->seen_job = true;
        }
        virTypedParamsFree(params, n);
        p->phase = phase_from_job(active, p, state, reason, mon->seen_job);

        if (send_abort && !mon->abort_sent && p->phase != FERRY_MIGRATE_POSTCOPY) {
                if (virDomainAbortJob(mon->dom) == 0)
                        mon->abort_sent = true;
                else if (!last_error_is(VIR_ERR_OPERATION_INVALID))
                        /* Refused for good (e.g. post-copy began meanwhile);
                         * "no job yet" (OPERATION_INVALID) is tried again. */
                        mon->abort_sent = true;
        }
        return true;
}

static void *monitor_thread(void *userdata) {
        Migration *m = userdata;
        Monitor mon = {};

        pthread_mutex_lock(&m->lock);
        while (!m->done) {
                bool in_call = m->in_call, send_abort = m->abort_requested;
                FerryMigrateProgress p = m->progress;
                pthread_mutex_unlock(&m->lock);

                bool updated = in_call && monitor_sample(m, &mon, send_abort, &p);

                pthread_mutex_lock(&m->lock);
                if (m->done)
                        break;
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

        if (mon.dom)
                virDomainFree(mon.dom);
        if (mon.conn)
                (void) virConnectClose(mon.conn);
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

int migration_start(const MigrationTarget *t, const FerryMigrateParams *p, Migration **ret, FerryError *error) {
        _cleanup_free_ char *uri = NULL;
        pthread_condattr_t attr;
        Migration *m;
        int max_params = 0, r;

        r = migrate_uri(p, &uri, error);
        if (r < 0)
                return r;

        m = calloc(1, sizeof(Migration));
        if (!m)
                return -ENOMEM;
        pthread_mutex_init(&m->lock, NULL);
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&m->wake, &attr);
        pthread_condattr_destroy(&attr);
        m->progress = (FerryMigrateProgress) { .struct_size = sizeof(m->progress), .phase = FERRY_MIGRATE_SETUP };
        snprintf(m->uuid, sizeof(m->uuid), "%s", t->uuid);
        m->vm = strdup(t->vm);
        m->source_uri = strdup(t->source_uri);
        m->destination_uri = strdup(p->destination_uri);
        if (!m->vm || !m->source_uri || !m->destination_uri) {
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

        if (!m->postcopy_allowed)
                return fail(error, -EPERM, "post-copy was not permitted when the migration of \"%s\" started", m->vm);
        r = running_domain(m, conn, "start_postcopy", &dom, error);
        if (r < 0)
                return r;
        if (virDomainMigrateStartPostCopy(dom, 0) < 0)
                return fail_virt(error, -EIO, "cannot switch the migration of \"%s\" to post-copy", m->vm);
        pthread_mutex_lock(&m->lock);
        m->postcopy_requested = true;
        pthread_mutex_unlock(&m->lock);
        return 0;
}

int migration_set_auto_converge(Migration *m, bool on, FerryError *error) {
        /* QEMU fixes migration capabilities when a migration starts, and
         * libvirt has no call to change auto-converge afterwards. */
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
                 * whole migration (post-copy cannot be, and is waited for). */
                m->abort_requested = true;
                if (!m->migrate_started)
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
        while (m->callback_registered && !m->callback_freed)
                if (pthread_cond_timedwait(&m->wake, &m->lock, &deadline) != 0)
                        break;
        bool leak = m->callback_registered && !m->callback_freed;
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
