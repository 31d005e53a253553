/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job.h"
#include "strutil.h"

/* The job's JSON keys are a contract (docs/ferryctl.md): change them only
 * together with the documentation, and only by adding. */
const Field job_fields[_JOB_FIELD_MAX] = {
        [JOB_ID]                    = { "Id",                  "id",                    VALUE_UINT,   "Job",                   FORMAT_PLAIN },
        [JOB_VM]                    = { "Vm",                  "vm",                    VALUE_STRING, "VM",                    FORMAT_PLAIN },
        [JOB_SOURCE]                = { "Source",              "source",                VALUE_STRING, "Source",                FORMAT_PLAIN },
        [JOB_DESTINATION]           = { "Destination",         "destination",           VALUE_STRING, "Destination",           FORMAT_PLAIN },
        [JOB_REQUESTED_BY]          = { "RequestedBy",         "requested_by",          VALUE_STRING, "Requested by",          FORMAT_PLAIN },
        [JOB_STATE]                 = { "State",               "state",                 VALUE_STRING, "State",                 FORMAT_PLAIN },
        [JOB_PHASE]                 = { "Phase",               "phase",                 VALUE_STRING, "Phase",                 FORMAT_PLAIN },
        [JOB_QUEUE_POSITION]        = { "QueuePosition",       "queue_position",        VALUE_UINT,   "Queue position",        FORMAT_PLAIN },
        [JOB_CANCEL_REQUESTED]      = { "CancelRequested",     "cancel_requested",      VALUE_BOOL,   "Cancel requested",      FORMAT_PLAIN },
        [JOB_MEMORY_TOTAL]          = { "MemoryTotal",         "memory_total",          VALUE_UINT,   "Memory total",          FORMAT_BYTES },
        [JOB_MEMORY_PROCESSED]      = { "MemoryProcessed",     "memory_processed",      VALUE_UINT,   "Memory processed",      FORMAT_BYTES },
        [JOB_MEMORY_REMAINING]      = { "MemoryRemaining",     "memory_remaining",      VALUE_UINT,   "Memory remaining",      FORMAT_BYTES },
        [JOB_RATE]                  = { "Rate",                "rate",                  VALUE_UINT,   "Rate",                  FORMAT_RATE },
        [JOB_DIRTY_RATE]            = { "DirtyRate",           "dirty_rate",            VALUE_UINT,   "Dirty rate",            FORMAT_RATE },
        [JOB_ITERATION]             = { "Iteration",           "iteration",             VALUE_UINT,   "Iteration",             FORMAT_PLAIN },
        [JOB_DOWNTIME_MS]           = { "DowntimeMs",          "downtime_ms",           VALUE_UINT,   "Downtime",              FORMAT_MSEC },
        [JOB_CREATED_AT]            = { "CreatedAt",           "created_at",            VALUE_UINT,   "Created",               FORMAT_TIMESTAMP },
        [JOB_STARTED_AT]            = { "StartedAt",           "started_at",            VALUE_UINT,   "Started",               FORMAT_TIMESTAMP },
        [JOB_FINISHED_AT]           = { "FinishedAt",          "finished_at",           VALUE_UINT,   "Finished",              FORMAT_TIMESTAMP },
        [JOB_ERROR]                 = { "Error",               "error",                 VALUE_STRING, "Error",                 FORMAT_PLAIN },
        [JOB_LOG]                   = { "Log",                 "log",                   VALUE_STRV,   "Log",                   FORMAT_PLAIN },
        [JOB_BANDWIDTH]             = { "Bandwidth",           "bandwidth",             VALUE_UINT,   "Bandwidth",             FORMAT_RATE },
        [JOB_POSTCOPY_ALLOWED]      = { "PostcopyAllowed",     "postcopy_allowed",      VALUE_BOOL,   "Post-copy allowed",     FORMAT_PLAIN },
        [JOB_AUTO_CONVERGE_ALLOWED] = { "AutoConvergeAllowed", "auto_converge_allowed", VALUE_BOOL,   "Auto-converge allowed", FORMAT_PLAIN },
};

/* What an unsigned 0 means where it is not a number: "not yet", "none". */
static const char *const job_zero_text[_JOB_FIELD_MAX] = {
        [JOB_QUEUE_POSITION] = "-",
        [JOB_DOWNTIME_MS]    = "-",
        [JOB_CREATED_AT]     = "-",
        [JOB_STARTED_AT]     = "-",
        [JOB_FINISHED_AT]    = "-",
        [JOB_BANDWIDTH]      = "unlimited",
};

void job_info_done(JobInfo *j) {
        values_done(j->values, _JOB_FIELD_MAX);
}

void job_list_done(JobList *l) {
        for (size_t i = 0; i < l->n; i++)
                job_info_done(l->jobs + i);
        free(l->jobs);
        *l = (JobList) {};
}

Value *job_list_add(void *userdata) {
        JobList *l = userdata;
        JobInfo *jobs;

        jobs = reallocarray(l->jobs, l->n + 1, sizeof(JobInfo));
        if (!jobs)
                return NULL;
        l->jobs = jobs;
        /* Counted before filling: a half-read job is freed with the list. */
        l->jobs[l->n++] = (JobInfo) {};
        return l->jobs[l->n - 1].values;
}

const char *job_string(const JobInfo *j, size_t field) {
        const Value *v = j->values + field;

        return v->type == VALUE_STRING && v->str ? v->str : "";
}

uint64_t job_uint(const JobInfo *j, size_t field) {
        const Value *v = j->values + field;

        return v->type == VALUE_UINT ? v->u : 0;
}

bool job_bool(const JobInfo *j, size_t field) {
        const Value *v = j->values + field;

        return v->type == VALUE_BOOL && v->b;
}

static bool job_state_is(const JobInfo *j, const char *state) {
        return streq(job_string(j, JOB_STATE), state);
}

bool job_is_final(const JobInfo *j) {
        return job_state_is(j, "completed") || job_state_is(j, "failed") || job_state_is(j, "cancelled");
}

bool job_is_active(const JobInfo *j) {
        /* A state this ferryctl does not know yet counts as active: it may
         * still change, and hiding it would be worse than listing it. */
        return !job_is_final(j);
}

int job_percent(const JobInfo *j) {
        uint64_t total = job_uint(j, JOB_MEMORY_TOTAL), processed = job_uint(j, JOB_MEMORY_PROCESSED);

        if (job_state_is(j, "completed"))
                return 100;
        if (total == 0)
                return -1;
        /* Pages dirtied again are sent again: processed can pass the total,
         * and 100% is kept for a migration that is done. */
        if (processed >= total)
                return 99;
        /* processed < total, so processed / (total / 100) cannot overflow. */
        if (total > UINT64_MAX / 100)
                return (int) (processed / (total / 100));
        return (int) (processed * 100 / total);
}

/* s or "-", for names in sentences. */
static const char *word(const char *s) {
        return *s ? s : "-";
}

char *job_summary_line(const JobInfo *j, const char *arrow) {
        char *s;

        if (asprintf(&s, "job %" PRIu64 ": %s %s %s %s %s",
                     job_uint(j, JOB_ID), word(job_string(j, JOB_VM)),
                     word(job_string(j, JOB_SOURCE)), arrow, word(job_string(j, JOB_DESTINATION)),
                     word(job_string(j, JOB_STATE))) < 0)
                return NULL;
        return s;
}

char *job_state_line(const JobInfo *j) {
        const char *state = word(job_string(j, JOB_STATE)), *phase = job_string(j, JOB_PHASE);
        const char *cancel = job_bool(j, JOB_CANCEL_REQUESTED) && !job_is_final(j) ? ", cancel requested" : "";
        char *s;
        int r;

        if (job_state_is(j, "queued") && job_uint(j, JOB_QUEUE_POSITION) > 0)
                r = asprintf(&s, "queued (position %" PRIu64 ")%s", job_uint(j, JOB_QUEUE_POSITION), cancel);
        else if (*phase && !streq(phase, "none"))
                r = asprintf(&s, "%s/%s%s", state, phase, cancel);
        else
                r = asprintf(&s, "%s%s", state, cancel);
        return r < 0 ? NULL : s;
}

char *job_progress_line(const JobInfo *j, Eta eta, const char *dash) {
        _cleanup_free_ char *state = NULL;
        char total[32], processed[32], remaining[32], rate[32], dirty[32], left[FORMAT_DURATION_MAX];
        const char *eta_text;
        int percent;
        char *s;

        state = job_state_line(j);
        if (!state)
                return NULL;

        /* Numbers only once the hypervisor reports them. */
        percent = job_percent(j);
        if (!job_state_is(j, "running") || percent < 0)
                return TAKE_PTR(state);

        switch (eta.kind) {
        case ETA_KNOWN:
                eta_text = format_duration(left, eta.usec);
                break;
        case ETA_NOT_CONVERGING:
                eta_text = "not converging";
                break;
        case ETA_UNKNOWN:
        default:
                eta_text = dash;
                break;
        }

        /* The ETA up front: on a narrow terminal the end of the line is cut. */
        if (asprintf(&s, "%s  %d%%  ETA %s  sent %s of %s  left %s  %s/s  dirty %s/s  iteration %" PRIu64,
                     state, percent, eta_text,
                     format_size(processed, sizeof(processed), job_uint(j, JOB_MEMORY_PROCESSED)),
                     format_size(total, sizeof(total), job_uint(j, JOB_MEMORY_TOTAL)),
                     format_size(remaining, sizeof(remaining), job_uint(j, JOB_MEMORY_REMAINING)),
                     format_size(rate, sizeof(rate), job_uint(j, JOB_RATE)),
                     format_size(dirty, sizeof(dirty), job_uint(j, JOB_DIRTY_RATE)),
                     job_uint(j, JOB_ITERATION)) < 0)
                return NULL;
        return s;
}

char *job_brief_line(const JobInfo *j, const char *arrow) {
        _cleanup_free_ char *state = NULL;
        char numbers[64] = "", rate[32];
        int percent = job_percent(j);
        char *s;

        state = job_state_line(j);
        if (!state)
                return NULL;

        if (job_state_is(j, "running") && percent >= 0) {
                if (job_uint(j, JOB_RATE) > 0)
                        snprintf(numbers, sizeof(numbers), "  %d%%  %s/s", percent,
                                 format_size(rate, sizeof(rate), job_uint(j, JOB_RATE)));
                else
                        snprintf(numbers, sizeof(numbers), "  %d%%", percent);
        }

        if (asprintf(&s, "job %" PRIu64 ": %s %s %s  %s%s", job_uint(j, JOB_ID), word(job_string(j, JOB_VM)), arrow,
                     word(job_string(j, JOB_DESTINATION)), state, numbers) < 0)
                return NULL;
        return s;
}

char *job_result_line(const JobInfo *j) {
        const char *vm = word(job_string(j, JOB_VM)), *src = word(job_string(j, JOB_SOURCE));
        const char *dst = word(job_string(j, JOB_DESTINATION)), *error = job_string(j, JOB_ERROR);
        uint64_t started = job_uint(j, JOB_STARTED_AT), finished = job_uint(j, JOB_FINISHED_AT);
        char duration[FORMAT_DURATION_MAX + 8] = "";
        char *s;
        int r;

        if (started > 0 && finished >= started) {
                char d[FORMAT_DURATION_MAX];

                snprintf(duration, sizeof(duration), " in %s", format_duration(d, finished - started));
        }

        if (job_state_is(j, "completed"))
                r = asprintf(&s, "%s migrated from %s to %s%s, downtime %" PRIu64 " ms",
                             vm, src, dst, duration, job_uint(j, JOB_DOWNTIME_MS));
        else if (job_state_is(j, "failed"))
                r = asprintf(&s, "migration of %s from %s to %s failed%s%s",
                             vm, src, dst, *error ? ": " : "", error);
        else if (job_state_is(j, "cancelled"))
                r = asprintf(&s, "migration of %s from %s to %s cancelled%s%s",
                             vm, src, dst, *error ? ": " : "", error);
        else
                r = asprintf(&s, "migration of %s from %s to %s is %s", vm, src, dst, word(job_string(j, JOB_STATE)));
        return r < 0 ? NULL : s;
}

char *job_field_format(const JobInfo *j, size_t field, uint64_t now_usec) {
        const Value *v = j->values + field;
        _cleanup_free_ char *text = NULL;
        char *s;
        int percent;

        /* A completed migration may really have had no measurable pause. */
        if (field == JOB_DOWNTIME_MS && job_state_is(j, "completed"))
                return value_format(v, FORMAT_MSEC, now_usec);

        if (job_zero_text[field] && v->type == VALUE_UINT && v->u == 0)
                return strdup(job_zero_text[field]);

        text = value_format(v, job_fields[field].format, now_usec);
        if (!text)
                return NULL;

        percent = job_percent(j);
        if (field == JOB_MEMORY_PROCESSED && percent >= 0 && v->type == VALUE_UINT) {
                if (asprintf(&s, "%s (%d%%)", text, percent) < 0)
                        return NULL;
                return s;
        }
        return TAKE_PTR(text);
}

int job_print_detail(const JobInfo *j, FILE *f, uint64_t now_usec) {
        _cleanup_(table_freep) Table *t = NULL;
        const Value *log = j->values + JOB_LOG;
        int r;

        t = table_new(2, NULL);
        if (!t)
                return -ENOMEM;

        for (size_t i = 0; i < _JOB_FIELD_MAX; i++) {
                _cleanup_free_ char *label = NULL, *text = NULL;

                if (i == JOB_LOG)
                        continue;

                if (asprintf(&label, "%s:", job_fields[i].label) < 0) {
                        label = NULL;
                        return -ENOMEM;
                }
                text = job_field_format(j, i, now_usec);
                if (!text)
                        return -ENOMEM;
                r = table_add_cell(t, label);
                if (r < 0)
                        return r;
                r = table_add_cell(t, text);
                if (r < 0)
                        return r;
        }

        r = table_print(t, f);
        if (r < 0)
                return r;

        /* Log lines are sentences: one per line, indented, as they are. */
        if (log->type != VALUE_STRV || !log->strv || !log->strv[0])
                fprintf(f, "%s: -\n", job_fields[JOB_LOG].label);
        else {
                fprintf(f, "%s:\n", job_fields[JOB_LOG].label);
                for (char **l = log->strv; *l; l++)
                        fprintf(f, "  %s\n", *l);
        }

        if (fflush(f) != 0)
                return negative_errno();
        return ferror(f) ? -EIO : 0;
}

void job_write_json(JsonWriter *w, const JobInfo *j) {
        fields_write_json(w, job_fields, _JOB_FIELD_MAX, j->values);
}
