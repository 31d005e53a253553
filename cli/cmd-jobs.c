/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl jobs, job ID and cancel ID: the migration jobs ferryd exports,
 * one object each (docs/DBUS.md). All of them decode through job_fields
 * (job.c), so a job looks the same in the list, on its own and at the end
 * of `migrate --wait`. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"
#include "job-watch.h"
#include "job.h"
#include "strutil.h"

/* Finished jobs `jobs` shows without --all. */
#define JOBS_FINISHED_SHOWN 10

/* Active jobs first, oldest first (the order in which they get a slot);
 * then finished ones, newest first. */
static int job_compare(const void *a, const void *b) {
        const JobInfo *x = a, *y = b;
        bool ax = job_is_active(x), ay = job_is_active(y);
        uint64_t ix = job_uint(x, JOB_ID), iy = job_uint(y, JOB_ID);

        if (ax != ay)
                return ax ? -1 : 1;
        if (ix == iy)
                return 0;
        if (ax)
                return ix < iy ? -1 : 1;
        return ix > iy ? -1 : 1;
}

/* How many of the sorted list to show: every active job, and the first
 * JOBS_FINISHED_SHOWN finished ones unless all. */
static size_t jobs_shown(const JobList *l, bool all) {
        size_t finished = 0;

        if (all)
                return l->n;
        for (size_t i = 0; i < l->n; i++)
                if (!job_is_active(l->jobs + i) && ++finished > JOBS_FINISHED_SHOWN)
                        return i;
        return l->n;
}

/* PROGRESS: "45%", "queue:2" while queued, "-" before numbers exist. */
static char *progress_cell(const JobInfo *j) {
        int percent = job_percent(j);
        char *s;

        if (streq(job_string(j, JOB_STATE), "queued") && job_uint(j, JOB_QUEUE_POSITION) > 0) {
                if (asprintf(&s, "queue:%" PRIu64, job_uint(j, JOB_QUEUE_POSITION)) < 0)
                        return NULL;
                return s;
        }
        if (percent < 0)
                return strdup("-");
        if (asprintf(&s, "%d%%", percent) < 0)
                return NULL;
        return s;
}

/* STARTED: "5min ago" (the last column: its blank breaks no awk field). */
static char *started_cell(const JobInfo *j, uint64_t now) {
        char buf[FORMAT_RELATIVE_MAX];
        uint64_t started = job_uint(j, JOB_STARTED_AT);

        return strdup(started > 0 ? format_relative(buf, started, now) : "-");
}

static int print_jobs_human(const JobList *l, size_t n) {
        static const char *const headers[] = { "ID", "VM", "SOURCE", "DEST", "STATE", "PHASE", "PROGRESS", "STARTED" };
        static const size_t plain[] = { JOB_ID, JOB_VM, JOB_SOURCE, JOB_DESTINATION, JOB_STATE, JOB_PHASE };
        _cleanup_(table_freep) Table *t = NULL;
        uint64_t now = clock_realtime_usec();
        int r;

        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return -ENOMEM;
        table_set_align_right(t, 0);
        table_set_align_right(t, 6);

        for (size_t i = 0; i < n; i++) {
                const JobInfo *j = l->jobs + i;
                _cleanup_free_ char *progress = NULL, *started = NULL;

                for (size_t c = 0; c < ELEMENTSOF(plain); c++) {
                        _cleanup_free_ char *text = job_field_format(j, plain[c], now);

                        if (!text)
                                return -ENOMEM;
                        r = table_add_cell(t, text);
                        if (r < 0)
                                return r;
                }

                progress = progress_cell(j);
                started = started_cell(j, now);
                if (!progress || !started)
                        return -ENOMEM;
                if ((r = table_add_cell(t, progress)) < 0 ||
                    (r = table_add_cell(t, started)) < 0)
                        return r;
        }

        return table_print(t, stdout);
}

static int print_jobs_json(const JobList *l, size_t n) {
        JsonWriter w;

        json_init(&w, stdout, true);
        json_begin_array(&w);
        for (size_t i = 0; i < n; i++)
                job_write_json(&w, l->jobs + i);
        json_end_array(&w);
        return json_finish(&w);
}

int cmd_jobs(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(job_list_done) JobList l = {};
        size_t n;
        int r;

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        r = bus_get_managed_objects(bus, &error, &reply);
        if (r < 0)
                return bus_error_exit("listing jobs", &error, r);

        r = bus_read_managed_objects(reply, FERRY_JOB_INTERFACE, job_fields, _JOB_FIELD_MAX, job_list_add, &l);
        if (r < 0)
                return bus_parse_error_exit("listing jobs", r);

        if (l.n > 1)
                qsort(l.jobs, l.n, sizeof(JobInfo), job_compare);
        n = jobs_shown(&l, ctx->all);

        r = ctx->json ? print_jobs_json(&l, n) : print_jobs_human(&l, n);
        return finish_output(r);
}

static int parse_job_id(const char *s, uint64_t *ret) {
        if (parse_u64(s, ret) < 0)
                return usage_error("a job id is a number, not '%s'", s);
        return FERRYCTL_EXIT_SUCCESS;
}

/* GetAll of job `id`; an unknown job is exit 5. */
static int read_job(sd_bus *bus, uint64_t id, JobInfo *job) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char path[BUS_JOB_PATH_MAX], operation[64];
        int r;

        snprintf(operation, sizeof(operation), "reading job %" PRIu64, id);

        r = bus_get_all_properties(bus, bus_job_path(path, id), FERRY_JOB_INTERFACE, &error, &reply);
        if (r < 0) {
                /* One object per job: no object, no job. */
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE) ||
                    sd_bus_error_has_name(&error, FERRY_ERROR_NO_SUCH_JOB)) {
                        print_error("no such job: %" PRIu64, id);
                        return FERRYCTL_EXIT_NOT_FOUND;
                }
                return bus_error_exit(operation, &error, r);
        }

        r = bus_read_properties(reply, job_fields, _JOB_FIELD_MAX, job->values);
        if (r < 0)
                return bus_parse_error_exit(operation, r);
        return FERRYCTL_EXIT_SUCCESS;
}

static int print_job_json(const JobInfo *job) {
        JsonWriter w;

        json_init(&w, stdout, true);
        job_write_json(&w, job);
        return json_finish(&w);
}

int cmd_job(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(job_info_done) JobInfo job = {};
        uint64_t id;
        int r;

        r = parse_job_id(args[0], &id);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        if (ctx->wait)
                return job_watch(bus, id, ctx);

        r = read_job(bus, id, &job);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        r = ctx->json ? print_job_json(&job) : job_print_detail(&job, stdout, clock_realtime_usec());
        return finish_output(r);
}

int cmd_cancel(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(job_info_done) JobInfo job = {};
        char operation[64];
        const char *state;
        uint64_t id;
        int r;

        r = parse_job_id(args[0], &id);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        snprintf(operation, sizeof(operation), "cancelling job %" PRIu64, id);

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                           FERRY_CLUSTER_INTERFACE, "CancelJob");
        if (r >= 0)
                r = sd_bus_message_append(m, "t", id);
        if (r < 0) {
                print_error("%s failed: %s", operation, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, &error, NULL);
        if (r < 0) {
                if (bus_error_is_no_answer(&error)) {
                        print_error("%s: no answer from ferryd (%s); the cancel may still be committed, "
                                    "check with 'ferryctl job %" PRIu64 "'",
                                    operation, bus_error_text(&error, r), id);
                        return FERRYCTL_EXIT_FAILURE;
                }
                return bus_error_exit(operation, &error, r);
        }

        /* The cancel is committed. What it did depends on where the job
         * was: read it back to say so. */
        r = read_job(bus, id, &job);
        if (r != FERRYCTL_EXIT_SUCCESS) {
                job_info_done(&job);
                job.values[JOB_ID] = (Value) { .type = VALUE_UINT, .u = id };
                job.values[JOB_CANCEL_REQUESTED] = (Value) { .type = VALUE_BOOL, .b = true };
        }

        if (ctx->json)
                return finish_output(print_job_json(&job));

        state = job_string(&job, JOB_STATE);
        if (streq(state, "cancelled"))
                r = printf("job %" PRIu64 ": cancelled\n", id);
        else if (job_is_final(&job))
                /* It ended some other way before the cancel reached it. */
                r = printf("job %" PRIu64 ": cancel requested, but the job had already %s\n", id, state);
        else
                r = printf("job %" PRIu64 ": cancel requested; the source aborts the migration unless it is past "
                           "switchover. Follow it with 'ferryctl job %" PRIu64 " --wait'\n", id, id);
        return finish_output(r < 0 ? -EIO : 0);
}
