/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "balancer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "balance.h"
#include "daemon.h"
#include "log.h"
#include "macro.h"

struct Balancer {
        Daemon *daemon;
        sd_event_source *timer;
        bool leader;                    /* as of the last tick */
        bool running;                   /* leader with the automatic balancer on, for the log */
        bool automatic;                 /* as of the last commit seen */
        char **round_vms;               /* the VMs the last automatic round moves */
        size_t n_round_vms;
        uint64_t rounds, moves;         /* since start, for status */
};

void balance_params_from_settings(const BalanceSettings *b, BalanceParams *p) {
        balance_params_default(p);
        if (b->threshold_permille)
                p->threshold_permille = b->threshold_permille;
        if (b->target_permille)
                p->target_permille = b->target_permille;
        if (p->target_permille >= p->threshold_permille)
                p->target_permille = p->threshold_permille / 2;
        if (b->max_moves)
                p->max_moves = b->max_moves;
        if (b->max_bytes)
                p->max_bytes = b->max_bytes;
        if (b->min_gain_permille)
                p->min_gain_permille = b->min_gain_permille;
}

bool balancer_is_leader(Daemon *d) {
        Replica *r = d->replica;
        if (!r || replica_mode(r) != REPLICA_SYNCED || !daemon_is_quorate(d) || replica_n_members(r) == 0)
                return false;
        /* The lowest member id of the quorate partition: every member
         * derives the same answer, and when that node leaves the next one
         * takes over at the next membership change. */
        return replica_members(r)[0] == d->node_id;
}

static uint64_t now_realtime(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int balancer_submit(Daemon *d, const BalancePlan *plan, size_t *ret_submitted) {
        size_t n = 0;

        for (size_t i = 0; i < plan->n_moves; i++) {
                const BalanceMove *m = &plan->moves[i];
                Command c = { .type = COMMAND_JOB_SUBMIT };
                uint64_t seq;
                c.job_submit = (JobSubmitCommand) {
                        .vm = (char *) m->vm,
                        .source = m->source,
                        .destination = m->destination,
                        .created_at = now_realtime(),
                };
                int k = replica_propose(d->replica, &c, &seq);
                if (k < 0) {
                        *ret_submitted = n;
                        return k;
                }
                n++;
                log_info("Balance: moving %s from %s to %s (%s)", m->vm, daemon_node_name(d, m->source),
                         daemon_node_name(d, m->destination), m->reason);
        }
        *ret_submitted = n;
        return 0;
}

static void round_forget(Balancer *b) {
        for (size_t i = 0; i < b->n_round_vms; i++)
                free(b->round_vms[i]);
        free(b->round_vms);
        b->round_vms = NULL;
        b->n_round_vms = 0;
}

/* A round is over when none of its VMs has a job still under way: the next
 * plan then sees where they really went. */
static bool round_running(Balancer *b, const ClusterState *s) {
        for (size_t i = 0; i < b->n_round_vms; i++)
                if (state_find_active_job(s, b->round_vms[i]))
                        return true;
        return false;
}

static void tick(Balancer *b) {
        Daemon *d = b->daemon;
        const ClusterState *s;
        MembershipView view;
        BalanceParams params;
        BalancePlan plan;
        bool leader = balancer_is_leader(d);

        if (!d->replica)
                return;
        s = replica_state(d->replica);
        if ((leader && s->balance.automatic) != b->running)
                log_notice(!b->running ? "This node now runs the automatic balancer" :
                                         "This node no longer runs the automatic balancer");
        b->running = leader && s->balance.automatic;
        b->leader = leader;
        if (!leader || !s->balance.automatic)
                return;
        if (round_running(b, s))
                return;
        round_forget(b);

        daemon_membership_view(d, &view);
        balance_params_from_settings(&s->balance, &params);
        if (balance_plan(s, &view, &params, &plan) < 0)
                return;
        if (plan.n_moves > 0) {
                size_t submitted = 0;
                log_notice("Balance: score %u.%03u above %u.%03u: %zu move(s), to %u.%03u", plan.score_permille / 1000,
                           plan.score_permille % 1000, params.threshold_permille / 1000, params.threshold_permille % 1000,
                           plan.n_moves, plan.final_score_permille / 1000, plan.final_score_permille % 1000);
                b->round_vms = calloc(plan.n_moves, sizeof(char *));
                for (size_t i = 0; b->round_vms && i < plan.n_moves; i++)
                        if ((b->round_vms[b->n_round_vms] = strdup(plan.moves[i].vm)))
                                b->n_round_vms++;
                (void) balancer_submit(d, &plan, &submitted);
                b->rounds++;
                b->moves += submitted;
        }
        balance_plan_done(&plan);
}

void balancer_state_changed(Balancer *b) {
        /* Not a plan per commit (progress updates commit every second):
         * only when leadership or the automatic switch changed, so that a
         * new leader or a switched-on balancer does not wait for the timer. */
        if (!b || !b->daemon->replica)
                return;
        bool automatic = replica_state(b->daemon->replica)->balance.automatic;
        if (automatic != b->automatic || balancer_is_leader(b->daemon) != b->leader) {
                b->automatic = automatic;
                tick(b);
        }
}

static int on_timer(sd_event_source *source, uint64_t usec, void *userdata) {
        Balancer *b = userdata;
        tick(b);
        (void) sd_event_source_set_time_relative(source, (uint64_t) b->daemon->config.balance_interval_sec * 1000000);
        return 0;
}

int balancer_new(Daemon *d, Balancer **ret) {
        Balancer *b = calloc(1, sizeof(Balancer));
        int r;

        if (!b)
                return -ENOMEM;
        b->daemon = d;
        r = sd_event_add_time_relative(d->event, &b->timer, CLOCK_MONOTONIC,
                                       (uint64_t) d->config.balance_interval_sec * 1000000, 0, on_timer, b);
        if (r < 0) {
                free(b);
                return r;
        }
        (void) sd_event_source_set_enabled(b->timer, SD_EVENT_ON);
        *ret = b;
        return 0;
}

Balancer *balancer_free(Balancer *b) {
        if (!b)
                return NULL;
        sd_event_source_disable_unref(b->timer);
        round_forget(b);
        free(b);
        return NULL;
}

void balancer_counters(const Balancer *b, uint64_t *rounds, uint64_t *moves) {
        *rounds = b ? b->rounds : 0;
        *moves = b ? b->moves : 0;
}
