/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "volume-manager.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "log.h"
#include "macro.h"

#define TICK_USEC (1000 * UINT64_C(1000))

typedef struct InFlight {
        char *volume;
        uint64_t seq;
} InFlight;

struct VolumeManager {
        Daemon *daemon;
        sd_event_source *timer;
        InFlight *in_flight;            /* our proposals about a volume, not yet back */
        size_t n_in_flight;
        uint64_t quorum_lost_usec;      /* CLOCK_MONOTONIC; 0 while quorate */
        bool released_on_quorum_loss;
        uint64_t quorum_loss_releases;  /* backend releases done for it, since start */
        uint64_t *prepared_jobs;        /* incoming migrations whose volumes were prepared here */
        size_t n_prepared_jobs;
};

static uint64_t now_monotonic(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

static bool has_hooks(const Backend *b) {
        return b && b->ops->volume_prepare && b->ops->volume_activate && b->ops->volume_release &&
               b->ops->volume_held;
}

static bool in_flight(const VolumeManager *m, const char *volume) {
        for (size_t i = 0; i < m->n_in_flight; i++)
                if (streq(m->in_flight[i].volume, volume))
                        return true;
        return false;
}

static void propose(VolumeManager *m, const VolumeCommand *vc) {
        Command c = { .type = COMMAND_VOLUME, .volume = *vc };
        InFlight *n;
        uint64_t seq;
        char *name;

        if (vc->name && in_flight(m, vc->name))
                return;
        name = strdup(vc->name ? vc->name : "");
        n = realloc(m->in_flight, (m->n_in_flight + 1) * sizeof(InFlight));
        if (!name || !n) {
                free(name);
                if (n)
                        m->in_flight = n;
                return;
        }
        m->in_flight = n;
        if (replica_propose(m->daemon->replica, &c, &seq) < 0) {
                free(name);
                return;
        }
        m->in_flight[m->n_in_flight++] = (InFlight) { .volume = name, .seq = seq };
}

bool volume_manager_proposal_done(VolumeManager *m, uint64_t seq, int result) {
        if (!m)
                return false;
        for (size_t i = 0; i < m->n_in_flight; i++) {
                if (m->in_flight[i].seq != seq)
                        continue;
                if (result < 0 && result != -ETIME && result != -ESTALE)
                        log_info("Volume %s: the cluster refused this node's step (%s); looking again",
                                 m->in_flight[i].volume, strerror(-result));
                free(m->in_flight[i].volume);
                m->in_flight[i] = m->in_flight[--m->n_in_flight];
                return true;
        }
        return false;
}

/* The hypervisor side of one step. Returns 0 or a negative errno with the
 * backend's message in err. */
static int do_release(Backend *b, const VolumeRecord *v, uint64_t epoch, FerryError *err) {
        return b->ops->volume_release(b->ctx, v->name, v->backing, epoch, err);
}

static int do_acquire(Backend *b, const VolumeRecord *v, uint64_t epoch, FerryError *err) {
        int k = b->ops->volume_prepare(b->ctx, v->name, v->backing, epoch, err);
        if (k < 0)
                return k;
        return b->ops->volume_activate(b->ctx, v->name, v->backing, epoch, err);
}

static void step_failed(VolumeManager *m, const VolumeRecord *v, const char *what, int k, const FerryError *err) {
        char msg[VOLUME_ERROR_MAX];
        snprintf(msg, sizeof(msg), "%s on %.64s failed: %.400s", what, m->daemon->node_name ? m->daemon->node_name : "?",
                 *err->message ? err->message : strerror(-k));
        log_warning("Volume %s: %s", v->name, msg);
        VolumeCommand vc = { .op = VOLUME_OP_FAILED, .name = v->name, .epoch = v->epoch, .error = msg };
        propose(m, &vc);
}

/* A node that lost quorum may be the side the others are about to declare
 * gone: after the configured time it lets go of every volume, so that when
 * the majority reassigns them (after fencing confirmation) it no longer
 * writes. It takes them again through the normal steps once quorate. */
static void quorum_loss(VolumeManager *m, const ClusterState *s) {
        Daemon *d = m->daemon;
        uint64_t now = now_monotonic();

        if (m->quorum_lost_usec == 0) {
                m->quorum_lost_usec = now;
                return;
        }
        if (now - m->quorum_lost_usec < (uint64_t) d->config.volume_release_timeout_sec * 1000000)
                return;
        /* Past the deadline: every tick, whatever is still held (a failed
         * release is tried again). */
        m->released_on_quorum_loss = true;
        for (size_t i = 0; i < s->n_volumes; i++) {
                const VolumeRecord *v = &s->volumes[i];
                FerryError err = {};
                if (d->backend->ops->volume_held(d->backend->ctx, v->name, v->backing, &err) != 1)
                        continue;
                /* The newest epoch this node may know: its own grant, or
                 * higher. */
                int k = do_release(d->backend, v, v->epoch, &err);
                m->quorum_loss_releases++;
                if (k < 0)
                        log_error("Volume %s: quorum lost for %us, but releasing it failed: %s", v->name,
                                  d->config.volume_release_timeout_sec, *err.message ? err.message : strerror(-k));
                else
                        log_warning("Volume %s: released, quorum lost for %us (fencing rule)", v->name,
                                    d->config.volume_release_timeout_sec);
        }
}

/* The lowest member id speaks for the partition: volumes whose owner (or
 * acquiring node) is not a member become orphaned. Never reassigned here. */
static void orphan_absent(VolumeManager *m, const ClusterState *s) {
        Replica *r = m->daemon->replica;
        const uint32_t *members = replica_members(r);

        if (replica_n_members(r) == 0 || members[0] != m->daemon->node_id)
                return;
        for (size_t i = 0; i < s->n_volumes; i++) {
                const VolumeRecord *v = &s->volumes[i];
                uint32_t node = v->state == VOLUME_ACQUIRING ? v->target :
                                (v->state == VOLUME_OWNED || v->state == VOLUME_RELEASING) ? v->owner : 0;
                if (node == 0 || replica_is_member(r, node) || in_flight(m, v->name))
                        continue;
                log_warning("Volume %s: %s left the ring; orphaned until it is confirmed fenced", v->name,
                            cluster_state_node_name(s, node));
                VolumeCommand vc = { .op = VOLUME_OP_ORPHAN, .name = v->name, .node = node };
                propose(m, &vc);
        }
}

static bool job_prepared(const VolumeManager *m, uint64_t id) {
        for (size_t i = 0; i < m->n_prepared_jobs; i++)
                if (m->prepared_jobs[i] == id)
                        return true;
        return false;
}

/* Before a VM whose disks live on shared volumes arrives here, check that
 * this node can take them (prepare, for the epoch it will get): if it
 * cannot, the migration is cancelled before the switchover rather than
 * leaving the VM on a node that cannot own its disks. The ownership itself
 * follows the VM in the commit that completes the job (state-jobs.c). */
static void prepare_incoming(VolumeManager *m, const ClusterState *s) {
        Daemon *d = m->daemon;
        Backend *b = d->backend;
        size_t w = 0;

        /* Forget jobs that ended. */
        for (size_t i = 0; i < m->n_prepared_jobs; i++) {
                const JobRecord *j = state_find_job(s, m->prepared_jobs[i]);
                if (j && !job_state_is_final(j->state))
                        m->prepared_jobs[w++] = m->prepared_jobs[i];
        }
        m->n_prepared_jobs = w;

        for (size_t i = 0; i < s->n_jobs; i++) {
                const JobRecord *j = &s->jobs[i];
                if (j->destination != d->node_id || (j->state != JOB_GRANTED && j->state != JOB_RUNNING) ||
                    job_prepared(m, j->id))
                        continue;
                const VmRecord *vm = state_find_vm(s, j->vm, j->source);
                if (!vm || !vm->volumes || !*vm->volumes)
                        continue;
                uint64_t *n = realloc(m->prepared_jobs, (m->n_prepared_jobs + 1) * sizeof(uint64_t));
                if (!n)
                        return;
                m->prepared_jobs = n;
                m->prepared_jobs[m->n_prepared_jobs++] = j->id;
                for (size_t k = 0; k < s->n_volumes; k++) {
                        const VolumeRecord *v = &s->volumes[k];
                        FerryError err = {};
                        int r;
                        if (v->kind != VOLUME_SHARED || v->owner != j->source || !vm_uses_volume(vm, v->name))
                                continue;
                        r = has_hooks(b) ? b->ops->volume_prepare(b->ctx, v->name, v->backing, v->epoch + 1, &err) :
                                           -ENOTSUP;
                        if (r >= 0) {
                                log_info("Job %" PRIu64 ": volume %s prepared here for %s", j->id, v->name, j->vm);
                                continue;
                        }
                        log_error("Job %" PRIu64 ": this node cannot take volume %s of %s (%s); cancelling the migration",
                                  j->id, v->name, j->vm,
                                  r == -ENOTSUP ? "no volume hooks" : *err.message ? err.message : strerror(-r));
                        Command c = { .type = COMMAND_JOB_CANCEL, .job_cancel = { .id = j->id } };
                        uint64_t seq;
                        (void) replica_propose(d->replica, &c, &seq);
                        break;
                }
        }
}

static void step(VolumeManager *m) {
        Daemon *d = m->daemon;
        const ClusterState *s;
        uint32_t me = d->node_id;

        if (!d->replica)
                return;
        s = replica_state(d->replica);
        if (s->n_volumes == 0)
                return;

        /* Detached from corosync, or syncing: no quorum either. */
        if (replica_mode(d->replica) != REPLICA_SYNCED || !daemon_is_quorate(d)) {
                if (has_hooks(d->backend))
                        quorum_loss(m, s);
                return;
        }
        m->quorum_lost_usec = 0;
        m->released_on_quorum_loss = false;

        orphan_absent(m, s);
        prepare_incoming(m, s);

        for (size_t i = 0; i < s->n_volumes; i++) {
                const VolumeRecord *v = &s->volumes[i];
                Backend *b = d->backend;
                FerryError err = {};
                int k;

                if (in_flight(m, v->name))
                        continue;
                bool mine_to_release = v->state == VOLUME_RELEASING && v->owner == me;
                bool mine_to_acquire = v->state == VOLUME_ACQUIRING && v->target == me;
                if (!has_hooks(b)) {
                        if (mine_to_acquire || mine_to_release) {
                                err = (FerryError) {};
                                snprintf(err.message, sizeof(err.message), "%s",
                                         b ? "this node's backend cannot handle volumes (no volume hooks)" :
                                             "this node has no hypervisor backend");
                                step_failed(m, v, mine_to_acquire ? "activating" : "releasing", -ENOTSUP, &err);
                        }
                        continue;
                }

                if (mine_to_release) {
                        k = do_release(b, v, v->epoch, &err);
                        if (k < 0) {
                                step_failed(m, v, "releasing", k, &err);
                                continue;
                        }
                        log_info("Volume %s: released (epoch %" PRIu64 ")%s", v->name, v->epoch,
                                 v->target ? "" : " for removal");
                        VolumeCommand vc = { .op = VOLUME_OP_RELEASED, .name = v->name, .epoch = v->epoch };
                        propose(m, &vc);
                } else if (mine_to_acquire) {
                        k = do_acquire(b, v, v->epoch, &err);
                        if (k < 0) {
                                step_failed(m, v, "activating", k, &err);
                                continue;
                        }
                        log_info("Volume %s: activated (epoch %" PRIu64 ")", v->name, v->epoch);
                        VolumeCommand vc = { .op = VOLUME_OP_ACQUIRED, .name = v->name, .epoch = v->epoch };
                        propose(m, &vc);
                } else if (v->state == VOLUME_ORPHANED && v->owner == me && v->target != 0) {
                        /* Back while it was handing the volume over (a
                         * VM that moved, a move): finish letting go. */
                        k = do_release(b, v, v->epoch, &err);
                        if (k < 0) {
                                step_failed(m, v, "releasing", k, &err);
                                continue;
                        }
                        log_notice("Volume %s: released after rejoining (epoch %" PRIu64 ")", v->name, v->epoch);
                        VolumeCommand vc = { .op = VOLUME_OP_RELEASED, .name = v->name, .epoch = v->epoch };
                        propose(m, &vc);
                } else if (v->state == VOLUME_ORPHANED && v->owner == me) {
                        /* Back before anyone confirmed us fenced: take it
                         * again, under a new epoch. */
                        k = do_acquire(b, v, v->epoch + 1, &err);
                        if (k < 0) {
                                log_warning("Volume %s: could not take it back after rejoining: %s", v->name,
                                            *err.message ? err.message : strerror(-k));
                                continue;
                        }
                        log_notice("Volume %s: taken back after rejoining (epoch %" PRIu64 ")", v->name, v->epoch + 1);
                        VolumeCommand vc = { .op = VOLUME_OP_ACQUIRED, .name = v->name, .epoch = v->epoch + 1 };
                        propose(m, &vc);
                } else {
                        bool mine = (v->state == VOLUME_OWNED || v->state == VOLUME_RELEASING) && v->owner == me;
                        k = b->ops->volume_held(b->ctx, v->name, v->backing, &err);
                        if (k < 0)
                                continue;
                        if (mine && k == 0 && v->state == VOLUME_OWNED) {
                                /* Released on a quorum loss, and the cluster
                                 * never took it away: take it up again. */
                                if (do_acquire(b, v, v->epoch, &err) >= 0)
                                        log_notice("Volume %s: activated again (epoch %" PRIu64 ")", v->name, v->epoch);
                        } else if (!mine && k == 1) {
                                /* The record says this node is not the owner:
                                 * a stale owner releases, it never reclaims. */
                                if (do_release(b, v, v->epoch, &err) >= 0)
                                        log_warning("Volume %s: this node still held it but is not its owner "
                                                    "(%s, epoch %" PRIu64 "); released",
                                                    v->name, volume_state_to_string(v->state), v->epoch);
                                else
                                        log_error("Volume %s: held here without ownership, and releasing failed: %s",
                                                  v->name, *err.message ? err.message : "?");
                        }
                }
        }
}

void volume_manager_state_changed(VolumeManager *m) {
        if (m)
                step(m);
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        VolumeManager *m = userdata;
        step(m);
        (void) sd_event_source_set_time_relative(source, TICK_USEC);
        return 0;
}

int volume_manager_new(Daemon *d, VolumeManager **ret) {
        VolumeManager *m = calloc(1, sizeof(VolumeManager));
        int r;

        if (!m)
                return -ENOMEM;
        m->daemon = d;
        /* Besides every commit: a timer, for the quorum-loss deadline and
         * for holds that change behind ferry's back. */
        r = sd_event_add_time_relative(d->event, &m->timer, CLOCK_MONOTONIC, TICK_USEC, 0, on_timer, m);
        if (r < 0) {
                free(m);
                return r;
        }
        (void) sd_event_source_set_enabled(m->timer, SD_EVENT_ON);
        *ret = m;
        return 0;
}

VolumeManager *volume_manager_free(VolumeManager *m) {
        if (!m)
                return NULL;
        sd_event_source_disable_unref(m->timer);
        for (size_t i = 0; i < m->n_in_flight; i++)
                free(m->in_flight[i].volume);
        free(m->in_flight);
        free(m->prepared_jobs);
        free(m);
        return NULL;
}

uint64_t volume_manager_quorum_loss_releases(const VolumeManager *m) {
        return m ? m->quorum_loss_releases : 0;
}
