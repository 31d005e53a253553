/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Live-migration jobs and migration slots in the replicated state.
 *
 * A slot is not a separate object: it is a job in state GRANTED or RUNNING.
 * Slots are granted only here, inside cluster_state_apply(), so two nodes
 * asking at the same instant are ordered by CPG and can never both get one.
 * After every change that can free or need a slot, state_jobs_schedule()
 * walks the queue in FIFO order (job id) and grants what fits:
 *   - at most one active job per unordered node pair;
 *   - at most max_outgoing active jobs out of a node and max_incoming into
 *     one (each node publishes its limits with its facts);
 *   - at most max_cluster active jobs in all, if any node sets a cap (the
 *     smallest non-zero cap wins).
 * A job that does not fit yet stays queued; later jobs that fit may pass it.
 *
 * Life of a job: QUEUED → GRANTED (slot held) → RUNNING (the source started
 * the hypervisor migration) → COMPLETED | FAILED | CANCELLED. The source
 * node reports progress and outcome; the destination may only declare a
 * job completed, once its own inventory shows the VM (the source may have
 * left the cluster after the point of no return). A job whose source is
 * gone and whose VM is not on the destination stays open: only the source
 * can say the VM is not running there, so its slot is held until it
 * returns (or, with issue #4, is confirmed fenced). A cancel of a queued job ends it
 * at once; of a granted or running one, it asks the source to abort. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct ClusterState ClusterState;

typedef enum JobState {
        JOB_QUEUED = 1,
        JOB_GRANTED = 2,
        JOB_RUNNING = 3,
        JOB_COMPLETED = 4,
        JOB_FAILED = 5,
        JOB_CANCELLED = 6,
        _JOB_STATE_MAX,
} JobState;

typedef enum JobPhase {
        JOB_PHASE_NONE = 0,
        JOB_PHASE_SETUP = 1,
        JOB_PHASE_PRECOPY = 2,
        JOB_PHASE_POSTCOPY = 3,
        JOB_PHASE_SWITCHOVER = 4,
        JOB_PHASE_DONE = 5,
        _JOB_PHASE_MAX,
} JobPhase;

typedef struct JobOptions {
        uint64_t bandwidth;             /* bytes/s, 0 = unlimited */
        uint32_t max_downtime_ms;       /* first step of the downtime ladder, 0 = default */
        bool auto_converge_allowed;
        bool postcopy_allowed;
} JobOptions;

typedef struct JobProgress {
        JobPhase phase;
        uint64_t memory_total;
        uint64_t memory_processed;
        uint64_t memory_remaining;
        uint64_t rate;
        uint64_t dirty_rate;
        uint32_t iteration;
        uint64_t downtime_ms;
} JobProgress;

typedef struct JobRecord {
        uint64_t id;
        char *vm;
        uint32_t source;
        uint32_t destination;
        uint32_t requested_by;
        JobState state;
        bool cancel_requested;
        JobOptions options;
        JobProgress progress;
        uint64_t created_at;            /* CLOCK_REALTIME µs, from the requester */
        uint64_t started_at;            /* when the hypervisor migration started (source's clock) */
        uint64_t finished_at;           /* when it ended (source's clock); 0 while active */
        char *error;                    /* why it failed or was cancelled */
        char *log;                      /* convergence steps and notes, one per line */
} JobRecord;

typedef struct JobSubmitCommand {
        char *vm;
        uint32_t source;
        uint32_t destination;
        JobOptions options;
        uint64_t created_at;
} JobSubmitCommand;

typedef struct JobUpdateCommand {
        uint64_t id;
        JobProgress progress;
        uint64_t started_at;
        char *log_line;                 /* "" = nothing to log */
} JobUpdateCommand;

typedef struct JobFinishCommand {
        uint64_t id;
        JobState result;                /* COMPLETED, FAILED or CANCELLED */
        JobProgress progress;
        uint64_t started_at;
        uint64_t finished_at;
        char *error;
        char *log_line;
} JobFinishCommand;

/* Finished jobs kept for `ferryctl jobs`; the oldest go first. */
#define STATE_FINISHED_JOBS_KEPT 1000U
/* A job's log is capped; the oldest lines go first. */
#define JOB_LOG_MAX 4096U

void job_record_done(JobRecord *j);
void job_submit_command_done(JobSubmitCommand *c);
void job_update_command_done(JobUpdateCommand *c);
void job_finish_command_done(JobFinishCommand *c);

void job_submit_command_encode(const JobSubmitCommand *c, Writer *w);
int job_submit_command_decode(Reader *r, JobSubmitCommand *ret);
void job_update_command_encode(const JobUpdateCommand *c, Writer *w);
int job_update_command_decode(Reader *r, JobUpdateCommand *ret);
void job_finish_command_encode(const JobFinishCommand *c, Writer *w);
int job_finish_command_decode(Reader *r, JobFinishCommand *ret);

/* Return values as cluster_state_apply(). Refusals:
 *   submit: -ENOENT unknown node or VM not reported by the source,
 *           -EINVAL source == destination or bad values,
 *           -EBUSY the VM already has an active job,
 *           -EHOSTDOWN the destination is in maintenance;
 *   update/finish: -ENOENT unknown job, -EPERM sender is not the source
 *           (nor the destination declaring completion with the VM in its
 *           inventory), -EALREADY the job already ended;
 *   cancel: -ENOENT unknown job, -EALREADY the job already ended. */
int state_apply_job_submit(ClusterState *s, uint32_t sender, const JobSubmitCommand *c);
int state_apply_job_update(ClusterState *s, uint32_t sender, const JobUpdateCommand *c);
int state_apply_job_finish(ClusterState *s, uint32_t sender, const JobFinishCommand *c);
int state_apply_job_cancel(ClusterState *s, uint32_t sender, uint64_t id);

/* Grants slots to queued jobs that fit; returns how many it granted. */
unsigned state_jobs_schedule(ClusterState *s);

void state_jobs_encode(const ClusterState *s, Writer *w);
int state_jobs_decode(ClusterState *s, Reader *r);
void state_jobs_free(ClusterState *s);

const JobRecord *state_find_job(const ClusterState *s, uint64_t id);
/* The active (queued, granted or running) job of a VM, or NULL. */
const JobRecord *state_find_active_job(const ClusterState *s, const char *vm);
/* Position in the queue (1 = next), 0 if not queued. */
unsigned state_job_queue_position(const ClusterState *s, uint64_t id);
bool job_state_is_final(JobState st);
bool job_state_holds_slot(JobState st);
const char *job_state_to_string(JobState st);
const char *job_phase_to_string(JobPhase p);
