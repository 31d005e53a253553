/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)

typedef struct Bucket {
        const char *le;                 /* as printed */
        uint64_t usec;
} Bucket;

/* A live migration takes seconds to an hour. */
static const Bucket duration_buckets[] = {
        { "1", 1 * USEC_PER_SEC },       { "5", 5 * USEC_PER_SEC },       { "10", 10 * USEC_PER_SEC },
        { "30", 30 * USEC_PER_SEC },     { "60", 60 * USEC_PER_SEC },     { "120", 120 * USEC_PER_SEC },
        { "300", 300 * USEC_PER_SEC },   { "600", 600 * USEC_PER_SEC },   { "1800", 1800 * USEC_PER_SEC },
        { "3600", 3600 * USEC_PER_SEC },
};

/* Downtime is aimed at 300 ms (the default first step). */
static const Bucket downtime_buckets[] = {
        { "0.005", 5 * USEC_PER_MSEC },  { "0.01", 10 * USEC_PER_MSEC },  { "0.025", 25 * USEC_PER_MSEC },
        { "0.05", 50 * USEC_PER_MSEC },  { "0.1", 100 * USEC_PER_MSEC },  { "0.25", 250 * USEC_PER_MSEC },
        { "0.5", 500 * USEC_PER_MSEC },  { "1", 1000 * USEC_PER_MSEC },   { "2.5", 2500 * USEC_PER_MSEC },
        { "5", 5000 * USEC_PER_MSEC },
};

_Static_assert(ELEMENTSOF(duration_buckets) <= METRICS_BUCKETS_MAX, "too many duration buckets");
_Static_assert(ELEMENTSOF(downtime_buckets) <= METRICS_BUCKETS_MAX, "too many downtime buckets");

static void observe(MetricsHistogram *h, const Bucket *b, size_t n, uint64_t usec) {
        for (size_t i = 0; i < n; i++)
                if (usec <= b[i].usec)
                        h->buckets[i]++;
        h->count++;
        h->sum_usec += usec;
}

void metrics_observe(MetricsCounters *m, const Event *e) {
        m->events++;
        if (streq(e->type, EVENT_NODE_JOINED) || streq(e->type, EVENT_NODE_LEFT))
                m->membership_changes++;
        else if (streq(e->type, EVENT_JOB_QUEUED))
                m->jobs_queued++;
        else if (streq(e->type, EVENT_JOB_RUNNING))
                m->migrations_started++;
        else if (streq(e->type, EVENT_JOB_COMPLETED)) {
                m->migrations_succeeded++;
                const EventField *f = event_field(e, "duration_usec");
                if (f)
                        observe(&m->duration, duration_buckets, ELEMENTSOF(duration_buckets), f->u);
                f = event_field(e, "downtime_ms");
                if (f)
                        observe(&m->downtime, downtime_buckets, ELEMENTSOF(downtime_buckets),
                                f->u > UINT64_MAX / USEC_PER_MSEC ? UINT64_MAX : f->u * USEC_PER_MSEC);
        } else if (streq(e->type, EVENT_JOB_FAILED))
                m->migrations_failed++;
        else if (streq(e->type, EVENT_JOB_CANCELLED))
                m->migrations_cancelled++;

        if (streq(e->type, EVENT_JOB_COMPLETED) || streq(e->type, EVENT_JOB_FAILED) ||
            streq(e->type, EVENT_JOB_CANCELLED))
                m->bytes += event_uint(e, "bytes", 0);
}

static void family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample(FILE *f, const char *name, const char *type, const char *help, uint64_t value) {
        family(f, name, type, help);
        fprintf(f, "%s %" PRIu64 "\n", name, value);
}

static void put_seconds(FILE *f, uint64_t usec) {
        fprintf(f, "%" PRIu64 ".%06" PRIu64, usec / USEC_PER_SEC, usec % USEC_PER_SEC);
}

static void histogram(FILE *f, const char *name, const char *help, const MetricsHistogram *h,
                      const Bucket *b, size_t n) {
        family(f, name, "histogram", help);
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, b[i].le, h->buckets[i]);
        fprintf(f, "%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->count);
        fprintf(f, "%s_sum ", name);
        put_seconds(f, h->sum_usec);
        fprintf(f, "\n%s_count %" PRIu64 "\n", name, h->count);
}

/* A label value: backslash, double quote and newline escaped. */
static void put_label_value(FILE *f, const char *s) {
        for (; *s; s++) {
                if (*s == '\\' || *s == '"')
                        fprintf(f, "\\%c", *s);
                else if (*s == '\n')
                        fputs("\\n", f);
                else
                        fputc(*s, f);
        }
}

char *metrics_render(const MetricsCounters *m, const MetricsView *view) {
        const ClusterState *s = view->state;
        uint64_t queued = 0, slots = 0, maintenance = 0;
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        for (size_t i = 0; s && i < s->n_jobs; i++) {
                if (s->jobs[i].state == JOB_QUEUED)
                        queued++;
                else if (job_state_holds_slot(s->jobs[i].state))
                        slots++;
        }
        for (size_t i = 0; s && i < s->n_nodes; i++)
                if (s->nodes[i].maintenance)
                        maintenance++;

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;

        family(f, "ferry_build_info", "gauge", "Version of this ferryd, as a label.");
        fputs("ferry_build_info{version=\"", f);
        put_label_value(f, view->version ? view->version : "");
        fputs("\"} 1\n", f);
        family(f, "ferry_daemon_start_time_seconds", "gauge",
               "When this ferryd started counting (Unix time); the counters below start there.");
        fputs("ferry_daemon_start_time_seconds ", f);
        put_seconds(f, m->start_time_usec);
        fputc('\n', f);

        sample(f, "ferry_quorate", "gauge", "1 if this node's partition is quorate and synced, else 0.",
               view->quorate ? 1 : 0);
        sample(f, "ferry_members", "gauge", "ferryd daemons in this node's membership, itself included.",
               view->members);
        sample(f, "ferry_nodes", "gauge", "Nodes the cluster knows (replicated records and corosync's nodelist).",
               view->nodes);
        sample(f, "ferry_nodes_maintenance", "gauge", "Nodes in maintenance.", maintenance);
        sample(f, "ferry_vms", "gauge", "VMs in the cluster's inventory.", s ? s->n_vms : 0);
        sample(f, "ferry_state_commit", "gauge", "Changes committed to the replicated state (CommitCounter).",
               s ? s->commit : 0);
        sample(f, "ferry_jobs_queued", "gauge", "Migration jobs waiting for a slot.", queued);
        sample(f, "ferry_migration_slots_in_use", "gauge", "Migration slots held (jobs granted or running).", slots);

        sample(f, "ferry_events_total", "counter", "Cluster events this ferryd reported.", m->events);
        sample(f, "ferry_membership_changes_total", "counter",
               "Nodes that joined or left this node's membership.", m->membership_changes);
        sample(f, "ferry_migrations_queued_total", "counter", "Migration jobs queued.", m->jobs_queued);
        sample(f, "ferry_migrations_started_total", "counter",
               "Migrations whose hypervisor migration started (job running).", m->migrations_started);
        sample(f, "ferry_migrations_succeeded_total", "counter", "Migrations completed.", m->migrations_succeeded);
        sample(f, "ferry_migrations_failed_total", "counter", "Migrations failed.", m->migrations_failed);
        sample(f, "ferry_migrations_cancelled_total", "counter", "Migrations cancelled.", m->migrations_cancelled);
        sample(f, "ferry_migration_bytes_total", "counter",
               "Guest memory transferred by finished migrations (any outcome), bytes.", m->bytes);

        histogram(f, "ferry_migration_duration_seconds",
                  "Time from the start of the hypervisor migration to its end, of completed migrations.",
                  &m->duration, duration_buckets, ELEMENTSOF(duration_buckets));
        histogram(f, "ferry_migration_downtime_seconds", "Guest downtime measured at switchover, of completed migrations.",
                  &m->downtime, downtime_buckets, ELEMENTSOF(downtime_buckets));

        if (fclose(f) != 0 || !buf) {
                free(buf);
                return NULL;
        }
        return buf;
}

int metrics_write_file(const char *path, const char *text) {
        _cleanup_free_ char *dir = NULL, *tmp = NULL;
        const char *slash = strrchr(path, '/');
        size_t len = strlen(text);
        int r;

        if (!slash)
                return -EINVAL;
        dir = strndup(path, (size_t) (slash - path));
        /* Hidden and without the .prom suffix: the collector skips it. */
        if (!dir || asprintf(&tmp, "%s/.%s.XXXXXX", *dir ? dir : "", slash + 1) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        /* Readable by the exporter, which seldom runs as root. */
        if (fchmod(fd, 0644) < 0) {
                r = negative_errno();
                goto fail;
        }
        for (size_t done = 0; done < len;) {
                ssize_t n = write(fd, text + done, len - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto fail;
                }
                done += (size_t) n;
        }
        if (close(TAKE_FD(fd)) < 0) {
                r = negative_errno();
                goto fail;
        }
        if (rename(tmp, path) < 0) {
                r = negative_errno();
                goto fail;
        }
        return 0;

fail:
        (void) unlink(tmp);
        return r;
}
