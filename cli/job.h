/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A migration job as ferryctl shows it: the one field table that ties the
 * properties of org.ferry.Ferry1.Job to their JSON keys and labels (shared
 * by `jobs`, `job`, `migrate` and `cancel`), and the texts made from a
 * job: its detail view, its progress line and the sentence that reports
 * its end. No bus here, so all of it is unit-tested (cli/test-eta.c). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "eta.h"
#include "value.h"

enum {
        JOB_ID,
        JOB_VM,
        JOB_SOURCE,
        JOB_DESTINATION,
        JOB_REQUESTED_BY,
        JOB_STATE,
        JOB_PHASE,
        JOB_QUEUE_POSITION,
        JOB_CANCEL_REQUESTED,
        JOB_MEMORY_TOTAL,
        JOB_MEMORY_PROCESSED,
        JOB_MEMORY_REMAINING,
        JOB_RATE,
        JOB_DIRTY_RATE,
        JOB_ITERATION,
        JOB_DOWNTIME_MS,
        JOB_CREATED_AT,
        JOB_STARTED_AT,
        JOB_FINISHED_AT,
        JOB_ERROR,
        JOB_LOG,
        JOB_BANDWIDTH,
        JOB_POSTCOPY_ALLOWED,
        JOB_AUTO_CONVERGE_ALLOWED,
        _JOB_FIELD_MAX,
};

extern const Field job_fields[_JOB_FIELD_MAX];

typedef struct JobInfo {
        Value values[_JOB_FIELD_MAX];
} JobInfo;

void job_info_done(JobInfo *j);

/* Jobs as read from GetManagedObjects (bus_read_managed_objects() with
 * job_list_add() and the list as userdata). */
typedef struct JobList {
        JobInfo *jobs;
        size_t n;
} JobList;

void job_list_done(JobList *l);
/* An ObjectAddFunc: the values of one more job, or NULL on OOM. */
Value *job_list_add(void *userdata);

/* A field's value, or "" / 0 / false when ferryd did not report it. */
const char *job_string(const JobInfo *j, size_t field);
uint64_t job_uint(const JobInfo *j, size_t field);
bool job_bool(const JobInfo *j, size_t field);

/* The human text of a field: as job_fields says, except where a 0 means
 * "not yet" or "none", and memory processed with its percentage. NULL on
 * OOM. */
char *job_field_format(const JobInfo *j, size_t field, uint64_t now_usec);

/* completed, failed or cancelled: the job will not change any more. */
bool job_is_final(const JobInfo *j);
bool job_is_active(const JobInfo *j);

/* Memory processed as a percentage of the total, rounded down: at most 99
 * until the job completed, 100 then; -1 while the total is not known. */
int job_percent(const JobInfo *j);

/* "job 17: web1 node1 → node2 queued"; arrow is "→" or "->". */
char *job_summary_line(const JobInfo *j, const char *arrow);

/* The progress line of --wait: "running/precopy  45%  ETA 21s  sent 1.8G
 * of 4.0G  left 2.2G  112.0M/s  dirty 8.0M/s  iteration 2". dash is what
 * stands for "no estimate yet" ("—" or "-"). NULL on OOM. */
char *job_progress_line(const JobInfo *j, Eta eta, const char *dash);

/* "queued (position 2)", "running/precopy": what --wait prints, one line
 * per change, when it cannot redraw a line in place. */
char *job_state_line(const JobInfo *j);

/* One job in the status area of `drain --wait`: "job 17: web1 → node2
 * running/precopy  45%  112.0M/s", "job 18: web2 → node3  queued
 * (position 1)". NULL on OOM. */
char *job_brief_line(const JobInfo *j, const char *arrow);

/* The end of a job in one sentence, without the "job N: " prefix:
 * "web1 migrated from node1 to node2 in 1min 12s, downtime 45 ms",
 * "migration of web1 from node1 to node2 failed: <error>", ... */
char *job_result_line(const JobInfo *j);

/* `ferryctl job`: "Label: value" lines, the log indented below them. */
int job_print_detail(const JobInfo *j, FILE *f, uint64_t now_usec);

/* The job object of every --json output that shows a job. */
void job_write_json(JsonWriter *w, const JobInfo *j);
