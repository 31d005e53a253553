/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "state-jobs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster-state.h"
#include "macro.h"

void job_record_done(JobRecord *j) {
        free(j->vm);
        free(j->error);
        free(j->log);
        *j = (JobRecord) {};
}

void job_submit_command_done(JobSubmitCommand *c) {
        free(c->vm);
        *c = (JobSubmitCommand) {};
}

void job_update_command_done(JobUpdateCommand *c) {
        free(c->log_line);
        *c = (JobUpdateCommand) {};
}

void job_finish_command_done(JobFinishCommand *c) {
        free(c->error);
        free(c->log_line);
        *c = (JobFinishCommand) {};
}

bool job_state_is_final(JobState st) {
        return st == JOB_COMPLETED || st == JOB_FAILED || st == JOB_CANCELLED;
}

bool job_state_holds_slot(JobState st) {
        return st == JOB_GRANTED || st == JOB_RUNNING;
}

/* ---- wire ------------------------------------------------------------------ */

static void options_encode(const JobOptions *o, Writer *w) {
        writer_put_u64(w, o->bandwidth);
        writer_put_u32(w, o->max_downtime_ms);
        writer_put_bool(w, o->auto_converge_allowed);
        writer_put_bool(w, o->postcopy_allowed);
}

static void options_decode(Reader *r, JobOptions *o) {
        o->bandwidth = reader_get_u64(r);
        o->max_downtime_ms = reader_get_u32(r);
        o->auto_converge_allowed = reader_get_bool(r);
        o->postcopy_allowed = reader_get_bool(r);
}

static void progress_encode(const JobProgress *p, Writer *w) {
        writer_put_u8(w, (uint8_t) p->phase);
        writer_put_u64(w, p->memory_total);
        writer_put_u64(w, p->memory_processed);
        writer_put_u64(w, p->memory_remaining);
        writer_put_u64(w, p->rate);
        writer_put_u64(w, p->dirty_rate);
        writer_put_u32(w, p->iteration);
        writer_put_u64(w, p->downtime_ms);
}

static void progress_decode(Reader *r, JobProgress *p) {
        p->phase = (JobPhase) reader_get_u8(r);
        p->memory_total = reader_get_u64(r);
        p->memory_processed = reader_get_u64(r);
        p->memory_remaining = reader_get_u64(r);
        p->rate = reader_get_u64(r);
        p->dirty_rate = reader_get_u64(r);
        p->iteration = reader_get_u32(r);
        p->downtime_ms = reader_get_u64(r);
        if (p->phase >= _JOB_PHASE_MAX)
                r->failed = true;
}

void job_submit_command_encode(const JobSubmitCommand *c, Writer *w) {
        writer_put_string(w, c->vm);
        writer_put_u32(w, c->source);
        writer_put_u32(w, c->destination);
        options_encode(&c->options, w);
        writer_put_u64(w, c->created_at);
}

int job_submit_command_decode(Reader *r, JobSubmitCommand *ret) {
        JobSubmitCommand c = {};

        c.vm = reader_dup_string(r);
        c.source = reader_get_u32(r);
        c.destination = reader_get_u32(r);
        options_decode(r, &c.options);
        c.created_at = reader_get_u64(r);
        if (reader_error(r) < 0) {
                job_submit_command_done(&c);
                return -EBADMSG;
        }
        *ret = c;
        return 0;
}

void job_update_command_encode(const JobUpdateCommand *c, Writer *w) {
        writer_put_u64(w, c->id);
        progress_encode(&c->progress, w);
        writer_put_u64(w, c->started_at);
        writer_put_string(w, c->log_line);
}

int job_update_command_decode(Reader *r, JobUpdateCommand *ret) {
        JobUpdateCommand c = {};

        c.id = reader_get_u64(r);
        progress_decode(r, &c.progress);
        c.started_at = reader_get_u64(r);
        c.log_line = reader_dup_string(r);
        if (reader_error(r) < 0) {
                job_update_command_done(&c);
                return -EBADMSG;
        }
        *ret = c;
        return 0;
}

void job_finish_command_encode(const JobFinishCommand *c, Writer *w) {
        writer_put_u64(w, c->id);
        writer_put_u8(w, (uint8_t) c->result);
        progress_encode(&c->progress, w);
        writer_put_u64(w, c->started_at);
        writer_put_u64(w, c->finished_at);
        writer_put_string(w, c->error);
        writer_put_string(w, c->log_line);
}

int job_finish_command_decode(Reader *r, JobFinishCommand *ret) {
        JobFinishCommand c = {};

        c.id = reader_get_u64(r);
        c.result = (JobState) reader_get_u8(r);
        progress_decode(r, &c.progress);
        c.started_at = reader_get_u64(r);
        c.finished_at = reader_get_u64(r);
        c.error = reader_dup_string(r);
        c.log_line = reader_dup_string(r);
        if (reader_error(r) < 0 || !job_state_is_final(c.result)) {
                job_finish_command_done(&c);
                return -EBADMSG;
        }
        *ret = c;
        return 0;
}

/* ---- lookups ----------------------------------------------------------------- */

static JobRecord *find_job(ClusterState *s, uint64_t id) {
        size_t lo = 0, hi = s->n_jobs;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (s->jobs[mid].id < id)
                        lo = mid + 1;
                else if (s->jobs[mid].id > id)
                        hi = mid;
                else
                        return &s->jobs[mid];
        }
        return NULL;
}

const JobRecord *state_find_job(const ClusterState *s, uint64_t id) {
        return find_job((ClusterState *) s, id);
}

const JobRecord *state_find_active_job(const ClusterState *s, const char *vm) {
        for (size_t i = 0; i < s->n_jobs; i++)
                if (!job_state_is_final(s->jobs[i].state) && streq(s->jobs[i].vm, vm))
                        return &s->jobs[i];
        return NULL;
}

unsigned state_job_queue_position(const ClusterState *s, uint64_t id) {
        unsigned pos = 0;
        for (size_t i = 0; i < s->n_jobs; i++) {
                if (s->jobs[i].state != JOB_QUEUED)
                        continue;
                pos++;
                if (s->jobs[i].id == id)
                        return pos;
        }
        return 0;
}

/* ---- scheduling -------------------------------------------------------------- */

static uint32_t node_limit(const ClusterState *s, uint32_t node, bool outgoing) {
        const NodeRecord *n = cluster_state_find_node(s, node);
        uint32_t v = n ? (outgoing ? n->facts.max_outgoing : n->facts.max_incoming) : 0;
        /* A node that never said: one at a time, the safe choice. */
        return v > 0 ? v : 1;
}

static uint32_t cluster_cap(const ClusterState *s) {
        uint32_t cap = 0;
        for (size_t i = 0; i < s->n_nodes; i++) {
                uint32_t c = s->nodes[i].facts.max_cluster;
                if (c > 0 && (cap == 0 || c < cap))
                        cap = c;
        }
        return cap;
}

unsigned state_jobs_schedule(ClusterState *s) {
        uint32_t cap = cluster_cap(s);
        unsigned granted = 0;
        size_t n_active = 0;
        struct { uint32_t source, destination; } *active;

        /* The slots in use: few (bounded by the limits), however many jobs
         * are queued or kept, so each queued job is checked against them
         * rather than against every job. */
        for (size_t i = 0; i < s->n_jobs; i++)
                if (job_state_holds_slot(s->jobs[i].state))
                        n_active++;
        active = malloc((n_active + s->n_jobs + 1) * sizeof(*active));
        if (!active)
                return 0;       /* nothing granted now; the next commit retries */
        n_active = 0;
        for (size_t i = 0; i < s->n_jobs; i++)
                if (job_state_holds_slot(s->jobs[i].state)) {
                        active[n_active].source = s->jobs[i].source;
                        active[n_active++].destination = s->jobs[i].destination;
                }

        for (size_t i = 0; i < s->n_jobs; i++) {
                JobRecord *j = &s->jobs[i];
                uint32_t out = 0, in = 0;
                bool pair_busy = false;

                if (j->state != JOB_QUEUED)
                        continue;
                if (cap > 0 && n_active >= cap)
                        break;
                for (size_t k = 0; k < n_active; k++) {
                        if ((active[k].source == j->source && active[k].destination == j->destination) ||
                            (active[k].source == j->destination && active[k].destination == j->source))
                                pair_busy = true;
                        out += active[k].source == j->source;
                        in += active[k].destination == j->destination;
                }
                if (pair_busy || out >= node_limit(s, j->source, true) ||
                    in >= node_limit(s, j->destination, false))
                        continue;
                j->state = JOB_GRANTED;
                active[n_active].source = j->source;
                active[n_active++].destination = j->destination;
                granted++;
        }
        free(active);
        return granted;
}

/* ---- apply ---------------------------------------------------------------------- */

static int append_log(JobRecord *j, const char *line) {
        size_t old, add, total;
        char *n;

        if (!line || !*line)
                return 0;
        old = j->log ? strlen(j->log) : 0;
        add = strlen(line);
        total = old + add + 1;
        n = malloc(total + 1);
        if (!n)
                return -ENOMEM;
        if (old)
                memcpy(n, j->log, old);
        memcpy(n + old, line, add);
        n[old + add] = '\n';
        n[total] = 0;
        /* Over the cap: drop whole lines from the front. */
        char *start = n;
        while (strlen(start) > JOB_LOG_MAX) {
                char *nl = strchr(start, '\n');
                if (!nl)
                        break;
                start = nl + 1;
        }
        if (start != n)
                memmove(n, start, strlen(start) + 1);
        free(j->log);
        j->log = n;
        return 0;
}

static void prune_finished(ClusterState *s) {
        size_t finished = 0;
        for (size_t i = 0; i < s->n_jobs; i++)
                if (job_state_is_final(s->jobs[i].state))
                        finished++;
        if (finished <= STATE_FINISHED_JOBS_KEPT)
                return;
        size_t drop = finished - STATE_FINISHED_JOBS_KEPT, w = 0;
        for (size_t i = 0; i < s->n_jobs; i++) {
                if (drop > 0 && job_state_is_final(s->jobs[i].state)) {
                        job_record_done(&s->jobs[i]);
                        drop--;
                        continue;
                }
                s->jobs[w++] = s->jobs[i];
        }
        s->n_jobs = w;
}

static bool valid_options(const JobOptions *o) {
        /* Downtime beyond a minute is not live migration any more. */
        return o->max_downtime_ms <= 60000;
}

int state_apply_job_submit(ClusterState *s, uint32_t sender, const JobSubmitCommand *c) {
        const NodeRecord *dst;
        JobRecord *n, j = {};

        if (!c->vm || !*c->vm || c->source == c->destination || !valid_options(&c->options))
                return -EINVAL;
        if (!cluster_state_find_node(s, c->source) || !(dst = cluster_state_find_node(s, c->destination)))
                return -ENOENT;
        if (!state_find_vm(s, c->vm, c->source))
                return -ENOENT;
        if (state_find_active_job(s, c->vm))
                return -EBUSY;
        if (dst->maintenance)
                return -EHOSTDOWN;
        if (s->n_jobs >= STATE_JOBS_MAX)
                return -E2BIG;

        n = realloc(s->jobs, (s->n_jobs + 1) * sizeof(JobRecord));
        if (!n)
                return -ENOMEM;
        s->jobs = n;
        j.vm = strdup(c->vm);
        if (!j.vm)
                return -ENOMEM;
        j.id = ++s->next_job_id;
        j.source = c->source;
        j.destination = c->destination;
        j.requested_by = sender;
        j.state = JOB_QUEUED;
        j.options = c->options;
        j.created_at = c->created_at;
        /* Ids only grow, so appending keeps the array sorted. */
        s->jobs[s->n_jobs++] = j;
        state_jobs_schedule(s);
        s->commit++;
        return 1;
}

static int check_source_update(ClusterState *s, uint32_t sender, uint64_t id, JobRecord **ret) {
        JobRecord *j = find_job(s, id);
        if (!j)
                return -ENOENT;
        if (j->source != sender)
                return -EPERM;
        if (job_state_is_final(j->state))
                return -EALREADY;
        if (j->state == JOB_QUEUED)
                return -EINVAL;         /* no slot yet: nothing may run */
        *ret = j;
        return 0;
}

int state_apply_job_update(ClusterState *s, uint32_t sender, const JobUpdateCommand *c) {
        JobRecord *j;
        int r = check_source_update(s, sender, c->id, &j);
        if (r < 0)
                return r;
        if (append_log(j, c->log_line) < 0)
                return -ENOMEM;
        j->state = JOB_RUNNING;
        j->progress = c->progress;
        if (j->started_at == 0)
                j->started_at = c->started_at;
        s->commit++;
        return 1;
}

/* A completed migration moves the VM's record to the destination now, so
 * that the inventory never shows it nowhere; the nodes' next publications
 * confirm it. */
static int move_vm_record(ClusterState *s, const JobRecord *j) {
        VmRecord *v = (VmRecord *) state_find_vm(s, j->vm, j->source);
        const VmRecord *there = state_find_vm(s, j->vm, j->destination);
        /* The VM's shared volumes follow it, in the same commit: the source
         * lets go now that the VM runs on the destination, then the
         * destination activates them under the next epoch. */
        const char *volumes = v && v->volumes && *v->volumes ? v->volumes : there ? there->volumes : NULL;
        if (volumes && *volumes)
                state_volumes_follow_vm(s, volumes, j->source, j->destination);
        if (!v)
                return 0;
        if (there) {
                /* The destination already reports it: the source's record
                 * is stale (the source may be gone and never republish). */
                size_t i = (size_t) (v - s->vms);
                vm_record_done(v);
                memmove(&s->vms[i], &s->vms[i + 1], (s->n_vms - i - 1) * sizeof(VmRecord));
                s->n_vms--;
                return 0;
        }
        v->node = j->destination;
        v->state = VM_RUNNING;
        /* (name, node) order may have changed for this one entry. */
        size_t i = (size_t) (v - s->vms);
        VmRecord tmp = *v;
        while (i + 1 < s->n_vms && streq(s->vms[i + 1].name, tmp.name) && s->vms[i + 1].node < tmp.node) {
                s->vms[i] = s->vms[i + 1];
                i++;
        }
        while (i > 0 && streq(s->vms[i - 1].name, tmp.name) && s->vms[i - 1].node > tmp.node) {
                s->vms[i] = s->vms[i - 1];
                i--;
        }
        s->vms[i] = tmp;
        return 0;
}

int state_apply_job_finish(ClusterState *s, uint32_t sender, const JobFinishCommand *c) {
        JobRecord *j = find_job(s, c->id);
        int r;

        /* The destination may close a job only as completed, and only once
         * its own published inventory shows the VM: that is how a job ends
         * whose source left the cluster after the point of no return. */
        if (j && sender == j->destination && sender != j->source) {
                if (job_state_is_final(j->state))
                        return -EALREADY;
                if (c->result != JOB_COMPLETED || j->state == JOB_QUEUED || !state_find_vm(s, j->vm, sender))
                        return -EPERM;
        } else {
                r = check_source_update(s, sender, c->id, &j);
                if (r < 0)
                        return r;
        }
        if (append_log(j, c->log_line) < 0)
                return -ENOMEM;
        free(j->error);
        j->error = strdup(c->error ? c->error : "");
        if (!j->error)
                return -ENOMEM;
        j->state = c->result;
        j->progress = c->progress;
        if (j->started_at == 0)
                j->started_at = c->started_at;
        j->finished_at = c->finished_at;
        if (c->result == JOB_COMPLETED)
                move_vm_record(s, j);
        state_jobs_schedule(s);
        prune_finished(s);
        s->commit++;
        return 1;
}

int state_apply_job_cancel(ClusterState *s, uint32_t sender, uint64_t id) {
        JobRecord *j = find_job(s, id);
        if (!j)
                return -ENOENT;
        if (job_state_is_final(j->state))
                return -EALREADY;
        if (j->state == JOB_QUEUED) {
                j->state = JOB_CANCELLED;
                free(j->error);
                j->error = strdup("cancelled while queued");
                if (!j->error)
                        return -ENOMEM;
                prune_finished(s);
        } else {
                if (j->cancel_requested)
                        return 0;
                j->cancel_requested = true;
        }
        s->commit++;
        return 1;
}

/* ---- state encoding -------------------------------------------------------------- */

void state_jobs_encode(const ClusterState *s, Writer *w) {
        writer_put_u64(w, s->next_job_id);
        writer_put_u32(w, (uint32_t) s->n_jobs);
        for (size_t i = 0; i < s->n_jobs; i++) {
                const JobRecord *j = &s->jobs[i];
                writer_put_u64(w, j->id);
                writer_put_string(w, j->vm);
                writer_put_u32(w, j->source);
                writer_put_u32(w, j->destination);
                writer_put_u32(w, j->requested_by);
                writer_put_u8(w, (uint8_t) j->state);
                writer_put_bool(w, j->cancel_requested);
                options_encode(&j->options, w);
                progress_encode(&j->progress, w);
                writer_put_u64(w, j->created_at);
                writer_put_u64(w, j->started_at);
                writer_put_u64(w, j->finished_at);
                writer_put_string(w, j->error);
                writer_put_string(w, j->log);
        }
}

int state_jobs_decode(ClusterState *s, Reader *r) {
        uint32_t n;

        s->next_job_id = reader_get_u64(r);
        n = reader_get_u32(r);
        if (reader_error(r) < 0 || n > STATE_JOBS_MAX)
                return -EBADMSG;
        if (n > 0 && !(s->jobs = calloc(n, sizeof(JobRecord))))
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
                JobRecord *j = &s->jobs[i];
                j->id = reader_get_u64(r);
                j->vm = reader_dup_string(r);
                j->source = reader_get_u32(r);
                j->destination = reader_get_u32(r);
                j->requested_by = reader_get_u32(r);
                j->state = (JobState) reader_get_u8(r);
                j->cancel_requested = reader_get_bool(r);
                options_decode(r, &j->options);
                progress_decode(r, &j->progress);
                j->created_at = reader_get_u64(r);
                j->started_at = reader_get_u64(r);
                j->finished_at = reader_get_u64(r);
                j->error = reader_dup_string(r);
                j->log = reader_dup_string(r);
                s->n_jobs++;
                if (reader_error(r) < 0 || j->state == 0 || j->state >= _JOB_STATE_MAX ||
                    j->id == 0 || j->id > s->next_job_id || (i > 0 && s->jobs[i - 1].id >= j->id))
                        return -EBADMSG;
        }
        return 0;
}

void state_jobs_free(ClusterState *s) {
        for (size_t i = 0; i < s->n_jobs; i++)
                job_record_done(&s->jobs[i]);
        free(s->jobs);
        s->jobs = NULL;
        s->n_jobs = 0;
}

const char *job_state_to_string(JobState st) {
        switch (st) {
        case JOB_QUEUED: return "queued";
        case JOB_GRANTED: return "granted";
        case JOB_RUNNING: return "running";
        case JOB_COMPLETED: return "completed";
        case JOB_FAILED: return "failed";
        case JOB_CANCELLED: return "cancelled";
        default: return "unknown";
        }
}

const char *job_phase_to_string(JobPhase p) {
        switch (p) {
        case JOB_PHASE_NONE: return "none";
        case JOB_PHASE_SETUP: return "setup";
        case JOB_PHASE_PRECOPY: return "precopy";
        case JOB_PHASE_POSTCOPY: return "postcopy";
        case JOB_PHASE_SWITCHOVER: return "switchover";
        case JOB_PHASE_DONE: return "done";
        default: return "unknown";
        }
}
