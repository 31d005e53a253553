/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "migration-runner.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend.h"
#include "convergence.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"

typedef struct LocalMigration {
        struct LocalMigration *next;
        uint64_t job;
        char *vm;
        void *handle;                   /* NULL: being reconciled, or start failed */
        Convergence convergence;
        FerryMigrateProgress last;
        uint64_t last_published_usec;
        bool finishing;                 /* FINISH proposed, waiting for the commit */
        bool abort_sent;
        char abort_reason[400];         /* why the policy gave up, if it did */
        uint64_t pending_seq;           /* a proposal of ours in flight */
        char log_line[512];             /* to go out with the next update */
        char policy_text[320];          /* the convergence policy in force, for the log */
} LocalMigration;

struct Runner {
        Daemon *daemon;
        LocalMigration *migrations;
        sd_event_source *timer;
};

static uint64_t now_realtime(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static uint64_t now_monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static JobPhase phase_from_backend(FerryMigratePhase p) {
        switch (p) {
        case FERRY_MIGRATE_SETUP: return JOB_PHASE_SETUP;
        case FERRY_MIGRATE_PRECOPY: return JOB_PHASE_PRECOPY;
        case FERRY_MIGRATE_POSTCOPY: return JOB_PHASE_POSTCOPY;
        case FERRY_MIGRATE_SWITCHOVER: return JOB_PHASE_SWITCHOVER;
        default: return JOB_PHASE_DONE;
        }
}

static JobProgress progress_from_backend(const FerryMigrateProgress *p) {
        return (JobProgress) {
                .phase = phase_from_backend(p->phase),
                .memory_total = p->memory_total,
                .memory_processed = p->memory_processed,
                .memory_remaining = p->memory_remaining,
                .rate = p->rate,
                .dirty_rate = p->dirty_rate,
                .iteration = p->iteration,
                .downtime_ms = p->downtime_ms,
        };
}

static LocalMigration *find_local(Runner *r, uint64_t job) {
        for (LocalMigration *m = r->migrations; m; m = m->next)
                if (m->job == job)
                        return m;
        return NULL;
}

static void local_free(Runner *r, LocalMigration *m) {
        Backend *b = r->daemon->backend;
        if (m->handle && b && b->ops->migrate_release)
                b->ops->migrate_release(b->ctx, m->handle);
        free(m->vm);
        free(m);
}

static LocalMigration *add_local(Runner *r, const JobRecord *j) {
        LocalMigration *m = calloc(1, sizeof(LocalMigration));
        if (!m || !(m->vm = strdup(j->vm))) {
                free(m);
                log_error("Out of memory tracking job %" PRIu64, j->id);
                return NULL;
        }
        m->job = j->id;
        m->next = r->migrations;
        r->migrations = m;
        return m;
}

static void remove_local(Runner *r, LocalMigration *gone) {
        for (LocalMigration **pp = &r->migrations; *pp; pp = &(*pp)->next)
                if (*pp == gone) {
                        *pp = gone->next;
                        local_free(r, gone);
                        return;
                }
}

/* Proposes the outcome; the entry stays until the commit is seen. */
static void propose_finish(Runner *r, LocalMigration *m, JobState result, const FerryMigrateProgress *p,
                           const char *error, const char *log_line) {
        Command c = { .type = COMMAND_JOB_FINISH };
        c.job_finish = (JobFinishCommand) {
                .id = m->job,
                .result = result,
                .progress = p ? progress_from_backend(p) : (JobProgress) {},
                .started_at = p ? p->started_usec : 0,
                .finished_at = p && p->finished_usec ? p->finished_usec : now_realtime(),
                .error = (char *) (error ? error : ""),
                .log_line = (char *) (log_line ? log_line : ""),
        };
        if (result == JOB_COMPLETED)
                c.job_finish.progress.phase = JOB_PHASE_DONE;
        int k = replica_propose(r->daemon->replica, &c, &m->pending_seq);
        if (k < 0) {
                /* Not quorate or syncing: the job stays open in the state;
                 * we try again on the next tick. */
                log_warning_errno(k, "Cannot report the end of job %" PRIu64 " yet: %m", m->job);
                return;
        }
        m->finishing = true;
        log_info("Job %" PRIu64 " (%s): %s%s%s", m->job, m->vm, job_state_to_string(result),
                 error && *error ? ": " : "", error ? error : "");
}

static void propose_update(Runner *r, LocalMigration *m, const FerryMigrateProgress *p) {
        Command c = { .type = COMMAND_JOB_UPDATE };
        c.job_update = (JobUpdateCommand) {
                .id = m->job,
                .progress = progress_from_backend(p),
                .started_at = p->started_usec ? p->started_usec : now_realtime(),
                .log_line = m->log_line,
        };
        if (replica_propose(r->daemon->replica, &c, &m->pending_seq) >= 0) {
                m->log_line[0] = 0;
                m->last_published_usec = now_monotonic();
        }
}

/* The convergence policy of a job, resolved field by field: the job's own
 * options, the VM's policy, the cluster's, this node's ferryd.conf (see
 * state-policies.h); timeouts scaled to the VM's memory. What it resolved
 * to goes on the job's log, with where each operator choice came from. */
static void init_convergence(Runner *r, LocalMigration *m, const JobRecord *j) {
        const ClusterState *s = replica_state(r->daemon->replica);
        Backend *b = r->daemon->backend;
        const VmRecord *vm = state_find_vm(s, j->vm, j->source);
        ConvergenceSettings job = {}, node, eff;
        int source[8];
        ConvergencePolicy policy;

        /* The job's flags only ever allow more; they cannot forbid what the
         * policy allows. */
        if (j->options.auto_converge_allowed) {
                job.set |= CONVERGENCE_FIELD_AUTO_CONVERGE;
                job.auto_converge = true;
        }
        if (j->options.postcopy_allowed) {
                job.set |= CONVERGENCE_FIELD_POSTCOPY;
                job.postcopy = true;
        }
        config_convergence_settings(&r->daemon->config, &node);
        state_policy_effective(s, j->vm, &job, &node, &eff, source);
        convergence_settings_format(&eff, source, m->policy_text, sizeof(m->policy_text));

        convergence_policy_from(&policy, eff.downtime_steps_ms, eff.n_downtime_steps, eff.stall_rounds,
                                eff.progress_timeout_sec, eff.completion_timeout_per_gib_sec, vm ? vm->memory : 0);
        if (j->options.max_downtime_ms > 0) {
                /* The operator's value is the first step; the steps of the
                 * policy above it stay on the ladder. */
                uint32_t ladder[CONVERGENCE_STEPS_MAX];
                size_t w = 0;
                ladder[w++] = j->options.max_downtime_ms;
                for (size_t i = 0; i < policy.n_downtime_steps && w < CONVERGENCE_STEPS_MAX; i++)
                        if (policy.downtime_steps_ms[i] > j->options.max_downtime_ms)
                                ladder[w++] = policy.downtime_steps_ms[i];
                memcpy(policy.downtime_steps_ms, ladder, w * sizeof(uint32_t));
                policy.n_downtime_steps = w;
        }
        policy.auto_converge_allowed = (eff.set & CONVERGENCE_FIELD_AUTO_CONVERGE) && eff.auto_converge;
        policy.postcopy_allowed = (eff.set & CONVERGENCE_FIELD_POSTCOPY) && eff.postcopy &&
                                  b->ops->migrate_start_postcopy;
        convergence_init(&m->convergence, &policy, now_monotonic());
}

static void start_job(Runner *r, const JobRecord *j) {
        Daemon *d = r->daemon;
        Backend *b = d->backend;
        const ClusterState *s = replica_state(d->replica);
        const NodeRecord *dst = cluster_state_find_node(s, j->destination);
        FerryError err = {};
        LocalMigration *m;
        int k;

        m = add_local(r, j);
        if (!m)
                return;

        if (!b || !b->ops->migrate_start || !b->ops->migrate_progress) {
                propose_finish(r, m, JOB_FAILED, NULL,
                               b ? "this node's backend cannot live-migrate (no migrate_start hook)" :
                                   "this node has no hypervisor backend (backend = none)", NULL);
                return;
        }
        if (!dst || !dst->facts.backend_uri || !*dst->facts.backend_uri) {
                propose_finish(r, m, JOB_FAILED, NULL, "the destination has not published how to reach its hypervisor",
                               NULL);
                return;
        }
        /* The check that needs the hypervisor: the VM's CPU on the destination. */
        if (b->ops->cpu_compatible) {
                k = b->ops->cpu_compatible(b->ctx, j->vm, dst->facts.backend_uri, &err);
                if (k == -ENOTSUP || k == -EOPNOTSUPP) {
                        char msg[FERRY_TEXT_MAX + 64];
                        snprintf(msg, sizeof(msg), "the destination does not accept the VM's CPU: %s", err.message);
                        propose_finish(r, m, JOB_FAILED, NULL, msg, NULL);
                        return;
                }
                if (k < 0)
                        log_warning("CPU check of %s against %s failed (%s); letting the hypervisor decide",
                                    j->vm, dst->facts.backend_uri, err.message);
        }

        init_convergence(r, m, j);
        bool postcopy_allowed = m->convergence.policy.postcopy_allowed;
        bool auto_converge_allowed = m->convergence.policy.auto_converge_allowed;

        FerryMigrateParams params = {
                .struct_size = sizeof(FerryMigrateParams),
                .destination_node = dst->facts.name,
                .destination_uri = dst->facts.backend_uri,
                .migration_address = dst->facts.migration_address && *dst->facts.migration_address ?
                                     dst->facts.migration_address : NULL,
                .bandwidth = j->options.bandwidth,
                .max_downtime_ms = convergence_initial_downtime(&m->convergence),
                .postcopy_allowed = postcopy_allowed,
        };
        k = b->ops->migrate_start(b->ctx, j->vm, &params, &m->handle, &err);
        if (k < 0) {
                m->handle = NULL;
                char msg[FERRY_TEXT_MAX + 64];
                snprintf(msg, sizeof(msg), "the hypervisor refused to start: %s", *err.message ? err.message : strerror(-k));
                propose_finish(r, m, JOB_FAILED, NULL, msg, NULL);
                return;
        }
        log_info("Job %" PRIu64 ": live-migrating %s to %s (%s), downtime %u ms", j->id, j->vm, dst->facts.name,
                 dst->facts.backend_uri, (unsigned) params.max_downtime_ms);
        snprintf(m->log_line, sizeof(m->log_line), "started: to %s, max downtime %u ms%s%s; policy: %s",
                 dst->facts.name, (unsigned) params.max_downtime_ms,
                 auto_converge_allowed ? ", auto-converge allowed" : "", postcopy_allowed ? ", post-copy allowed" : "",
                 m->policy_text);
        FerryMigrateProgress p = { .struct_size = sizeof(p), .phase = FERRY_MIGRATE_SETUP,
                                   .started_usec = now_realtime() };
        m->last = p;
        propose_update(r, m, &p);
}

enum {
        LOCAL_VM_UNKNOWN,       /* the backend could not answer */
        LOCAL_VM_IDLE,          /* here, not migrating */
        LOCAL_VM_MIGRATING,
        LOCAL_VM_ABSENT,
};

static int local_vm_status(Runner *r, const char *vm) {
        NodeVmsCommand local = {};
        FerryError err = {};
        int status = LOCAL_VM_ABSENT;

        if (!r->daemon->backend)
                return LOCAL_VM_IDLE;   /* start_job reports "no backend" */
        if (backend_list_vms(r->daemon->backend, replica_state(r->daemon->replica), &local, &err) < 0)
                return LOCAL_VM_UNKNOWN;
        for (size_t i = 0; i < local.n_vms; i++)
                if (streq(local.vms[i].name, vm))
                        status = local.vms[i].state == VM_MIGRATING ? LOCAL_VM_MIGRATING : LOCAL_VM_IDLE;
        node_vms_command_done(&local);
        return status;
}

/* After a restart: a job of ours we have no handle for. The hypervisor
 * tells what happened. */
static void reconcile_job(Runner *r, const JobRecord *j) {
        Daemon *d = r->daemon;
        NodeVmsCommand local = {};
        FerryError err = {};
        LocalMigration *m;
        bool here = false, migrating = false;

        if (!d->backend || backend_list_vms(d->backend, replica_state(d->replica), &local, &err) < 0)
                return;         /* try again later */
        for (size_t i = 0; i < local.n_vms; i++)
                if (streq(local.vms[i].name, j->vm)) {
                        here = true;
                        migrating = local.vms[i].state == VM_MIGRATING;
                }
        node_vms_command_done(&local);
        if (migrating) {
                /* Still in flight in the hypervisor, started by the ferryd
                 * before us: take it over if the backend can, so that the
                 * policy, cancel and the outcome work again; else look
                 * again later. */
                void *handle = NULL;
                if (!d->backend->ops->migrate_adopt ||
                    d->backend->ops->migrate_adopt(d->backend->ctx, j->vm, &handle, &err) < 0)
                        return;
                m = add_local(r, j);
                if (!m) {
                        if (d->backend->ops->migrate_release)
                                d->backend->ops->migrate_release(d->backend->ctx, handle);
                        return;
                }
                m->handle = handle;
                init_convergence(r, m, j);
                snprintf(m->log_line, sizeof(m->log_line), "re-attached to the hypervisor's migration after a restart");
                log_notice("Job %" PRIu64 " (%s): re-attached to the migration in flight", j->id, j->vm);
                return;
        }

        m = add_local(r, j);
        if (!m)
                return;
        if (here)
                propose_finish(r, m, JOB_FAILED, NULL,
                               "ferryd restarted during the migration; the VM still runs on the source",
                               "reconciled after restart: VM found on the source");
        else
                propose_finish(r, m, JOB_COMPLETED, NULL, NULL,
                               "reconciled after restart: VM no longer on the source, it runs on the destination");
}

static void apply_convergence(Runner *r, LocalMigration *m, const FerryMigrateProgress *p) {
        Backend *b = r->daemon->backend;
        ConvergenceSample s = {
                .precopy = p->phase == FERRY_MIGRATE_PRECOPY,
                .iteration = p->iteration,
                .processed = p->memory_processed,
                .remaining = p->memory_remaining,
                .rate = p->rate,
                .dirty_rate = p->dirty_rate,
        };
        FerryError err = {};
        char why[256];
        uint64_t arg;
        int k = 0;

        switch (convergence_next(&m->convergence, &s, now_monotonic(), &arg, why, sizeof(why))) {
        case CONVERGENCE_NONE:
                return;
        case CONVERGENCE_SET_DOWNTIME:
                k = b->ops->migrate_set_max_downtime ? b->ops->migrate_set_max_downtime(b->ctx, m->handle, arg, &err)
                                                     : -EOPNOTSUPP;
                break;
        case CONVERGENCE_AUTO_CONVERGE:
                k = b->ops->migrate_set_auto_converge ? b->ops->migrate_set_auto_converge(b->ctx, m->handle, true, &err)
                                                      : -EOPNOTSUPP;
                if (k < 0) {
                        convergence_auto_converge_unavailable(&m->convergence);
                        snprintf(why, sizeof(why), "auto-converge unavailable on this backend: %.180s",
                                 *err.message ? err.message : strerror(-k));
                }
                break;
        case CONVERGENCE_POSTCOPY:
                k = b->ops->migrate_start_postcopy(b->ctx, m->handle, &err);
                break;
        case CONVERGENCE_ABORT:
                if (b->ops->migrate_abort)
                        (void) b->ops->migrate_abort(b->ctx, m->handle, &err);
                m->abort_sent = true;
                snprintf(m->abort_reason, sizeof(m->abort_reason), "%s", why);
                snprintf(m->log_line, sizeof(m->log_line), "aborting: %s", why);
                log_notice("Job %" PRIu64 " (%s): %s", m->job, m->vm, m->log_line);
                return;
        }
        if (k < 0 && !*err.message)
                snprintf(err.message, sizeof(err.message), "%s", strerror(-k));
        if (k < 0)
                snprintf(m->log_line, sizeof(m->log_line), "%s (failed: %.200s)", why, err.message);
        else
                snprintf(m->log_line, sizeof(m->log_line), "%s", why);
        log_notice("Job %" PRIu64 " (%s): %s", m->job, m->vm, m->log_line);
        propose_update(r, m, p);
}

static void poll_one(Runner *r, LocalMigration *m) {
        Backend *b = r->daemon->backend;
        const JobRecord *j = state_find_job(replica_state(r->daemon->replica), m->job);
        FerryMigrateProgress p = { .struct_size = sizeof(p) };
        FerryError err = {};

        if (!j || !m->handle || m->finishing || job_state_is_final(j->state))
                return;
        if (b->ops->migrate_progress(b->ctx, m->handle, &p, &err) < 0) {
                log_warning("Job %" PRIu64 ": cannot read progress: %s", m->job, err.message);
                return;
        }
        if (j->cancel_requested && !m->abort_sent && p.phase < FERRY_MIGRATE_SWITCHOVER) {
                if (b->ops->migrate_abort && b->ops->migrate_abort(b->ctx, m->handle, &err) >= 0) {
                        m->abort_sent = true;
                        snprintf(m->log_line, sizeof(m->log_line), "cancel requested: aborting before switchover");
                } else
                        log_warning("Job %" PRIu64 ": abort failed: %s", m->job, err.message);
        }
        switch (p.phase) {
        case FERRY_MIGRATE_COMPLETED:
                propose_finish(r, m, JOB_COMPLETED, &p, NULL, m->log_line[0] ? m->log_line : NULL);
                return;
        case FERRY_MIGRATE_FAILED:
        case FERRY_MIGRATE_CANCELLED: {
                /* Aborted on request → cancelled; aborted by the policy, or
                 * failed in the hypervisor → failed, with the reason. */
                const char *log_line = m->log_line[0] ? m->log_line : NULL;
                if (m->abort_sent && j->cancel_requested && !m->abort_reason[0])
                        propose_finish(r, m, JOB_CANCELLED, &p, "cancelled by request", log_line);
                else if (m->abort_reason[0])
                        propose_finish(r, m, JOB_FAILED, &p, m->abort_reason, log_line);
                else
                        propose_finish(r, m, JOB_FAILED, &p, *p.error.message ? p.error.message : "migration failed",
                                       log_line);
                return;
        }
        default:
                break;
        }
        if (!m->abort_sent)
                apply_convergence(r, m, &p);
        bool moved = p.phase != m->last.phase || p.iteration != m->last.iteration;
        bool due = now_monotonic() - m->last_published_usec >= (uint64_t) r->daemon->config.progress_interval_ms * 1000;
        m->last = p;
        if ((moved || due || m->log_line[0]) && replica_quorate(r->daemon->replica))
                propose_update(r, m, &p);
}

/* Polling the backend is cheap (it answers from a cache); the end of a
 * migration should be seen within a fifth of a second, progress is
 * published at its own pace (progress_interval_ms). */
static uint64_t runner_tick_usec(const Runner *r) {
        return MIN((uint64_t) r->daemon->config.progress_interval_ms * 1000 / 2, UINT64_C(200000));
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Runner *r = userdata;

        for (LocalMigration *m = r->migrations; m; m = m->next)
                if (m->finishing)
                        continue;
                else if (m->handle)
                        poll_one(r, m);
        /* A FINISH that could not be proposed (no quorum) is retried here. */
        runner_state_changed(r);
        (void) sd_event_source_set_time_relative(s, runner_tick_usec(r));
        return 0;
}

void runner_state_changed(Runner *r) {
        Daemon *d = r->daemon;
        const ClusterState *s;

        if (!d->replica || replica_mode(d->replica) != REPLICA_SYNCED)
                return;
        s = replica_state(d->replica);

        /* Forget what the state says has ended; retry lost FINISH proposals. */
        for (LocalMigration *m = r->migrations, *next; m; m = next) {
                next = m->next;
                const JobRecord *j = state_find_job(s, m->job);
                if (!j || job_state_is_final(j->state)) {
                        remove_local(r, m);
                        continue;
                }
                if (!m->handle && !m->finishing && replica_quorate(d->replica)) {
                        /* A start that failed and whose FINISH was not accepted. */
                        propose_finish(r, m, JOB_FAILED, NULL, "could not start the migration", NULL);
                }
        }
        if (!replica_quorate(d->replica))
                return;         /* start nothing without quorum */

        for (size_t i = 0; i < s->n_jobs; i++) {
                const JobRecord *j = &s->jobs[i];
                if (j->destination == d->node_id && job_state_holds_slot(j->state) &&
                    !replica_is_member(d->replica, j->source) && state_find_vm(s, j->vm, d->node_id) &&
                    !find_local(r, j->id)) {
                        /* The source left, and the VM runs here (our own
                         * inventory says so): past the point of no return.
                         * Only "completed" is ours to declare. */
                        LocalMigration *m = add_local(r, j);
                        if (m)
                                propose_finish(r, m, JOB_COMPLETED, NULL, NULL,
                                               "the source left the cluster; the VM runs on the destination");
                        continue;
                }
                if (j->source != d->node_id || find_local(r, j->id))
                        continue;
                if (j->state == JOB_GRANTED && !j->cancel_requested) {
                        /* Normally the VM is here and idle. After a restart
                         * it may already be on its way or gone: then it is
                         * not ours to start again. */
                        int where = local_vm_status(r, j->vm);
                        if (where == LOCAL_VM_IDLE)
                                start_job(r, j);
                        else if (where != LOCAL_VM_UNKNOWN)
                                reconcile_job(r, j);
                }
                else if (j->state == JOB_GRANTED && j->cancel_requested) {
                        LocalMigration *m = add_local(r, j);
                        if (m)
                                propose_finish(r, m, JOB_CANCELLED, NULL, "cancelled before it started", NULL);
                } else if (j->state == JOB_RUNNING)
                        reconcile_job(r, j);
        }
}

unsigned runner_active(const Runner *r) {
        unsigned n = 0;
        for (LocalMigration *m = r->migrations; m; m = m->next)
                n++;
        return n;
}

int runner_new(Daemon *d, Runner **ret) {
        Runner *r = calloc(1, sizeof(Runner));
        int k;

        if (!r)
                return -ENOMEM;
        r->daemon = d;
        k = sd_event_add_time_relative(d->event, &r->timer, CLOCK_MONOTONIC, runner_tick_usec(r), 0, on_timer, r);
        if (k < 0) {
                free(r);
                return k;
        }
        (void) sd_event_source_set_enabled(r->timer, SD_EVENT_ON);
        *ret = r;
        return 0;
}

Runner *runner_free(Runner *r) {
        if (!r)
                return NULL;
        sd_event_source_disable_unref(r->timer);
        while (r->migrations) {
                LocalMigration *m = r->migrations;
                r->migrations = m->next;
                local_free(r, m);
        }
        free(r);
        return NULL;
}
