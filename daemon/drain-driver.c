/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "drain-driver.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "drain.h"
#include "log.h"
#include "macro.h"

void drain_driver_state_changed(Daemon *d) {
        const ClusterState *s;
        const NodeRecord *self;
        MembershipView view;
        DrainPlan plan;
        unsigned submitted = 0;

        if (!d->replica || !replica_quorate(d->replica))
                return;
        s = replica_state(d->replica);
        self = cluster_state_find_node(s, d->node_id);
        if (!self || self->drain == DRAIN_NONE)
                return;
        /* One batch of submissions at a time: the next plan is made once
         * they are committed, when their jobs count against the memory of
         * the destinations. */
        if (d->n_drain_seqs > 0)
                return;
        daemon_membership_view(d, &view);
        if (drain_plan(s, &view, d->node_id, &plan) < 0)
                return;
        for (size_t i = 0; i < plan.n_entries; i++) {
                const DrainEntry *e = &plan.entries[i];
                if (e->action != DRAIN_ACTION_MOVE)
                        continue;
                if (e->volume) {
                        Command c = { .type = COMMAND_VOLUME };
                        c.volume = (VolumeCommand) { .op = VOLUME_OP_MOVE, .name = (char *) e->vm, .node = e->destination };
                        uint64_t seq, *ns = realloc(d->drain_seqs, (d->n_drain_seqs + 1) * sizeof(uint64_t));
                        if (!ns)
                                break;
                        d->drain_seqs = ns;
                        if (replica_propose(d->replica, &c, &seq) < 0)
                                break;
                        d->drain_seqs[d->n_drain_seqs++] = seq;
                        submitted++;
                        log_info("Drain: moving volume %s to %s (%s)", e->vm,
                                 cluster_state_node_name(s, e->destination), e->reason);
                        continue;
                }
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                Command c = { .type = COMMAND_JOB_SUBMIT };
                c.job_submit = (JobSubmitCommand) {
                        .vm = (char *) e->vm,
                        .source = d->node_id,
                        .destination = e->destination,
                        .created_at = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000,
                };
                uint64_t seq, *ns = realloc(d->drain_seqs, (d->n_drain_seqs + 1) * sizeof(uint64_t));
                if (!ns)
                        break;
                d->drain_seqs = ns;
                if (replica_propose(d->replica, &c, &seq) < 0)
                        break;
                d->drain_seqs[d->n_drain_seqs++] = seq;
                submitted++;
                const NodeRecord *dst = cluster_state_find_node(s, e->destination);
                log_info("Drain: moving %s to %s (%s)", e->vm, dst && dst->facts.name ? dst->facts.name : "?",
                         e->reason);
        }
        if (submitted == 0 && (unsigned) plan.status != d->drain_last_status) {
                if (plan.status == DRAIN_STATUS_DRAINED)
                        log_notice("Drain of this node complete%s", plan.n_blocked ? " (blocked VMs left running)" : "");
                else if (plan.status == DRAIN_STATUS_BLOCKED)
                        for (size_t i = 0; i < plan.n_entries; i++)
                                if (plan.entries[i].action == DRAIN_ACTION_BLOCKED)
                                        log_warning("Drain blocked by %s%s: %s", plan.entries[i].volume ? "volume " : "",
                                                    plan.entries[i].vm, plan.entries[i].reason);
        }
        d->drain_last_status = plan.status;
        drain_plan_done(&plan);
}

bool drain_driver_proposal_done(Daemon *d, uint64_t seq, int result) {
        for (size_t i = 0; i < d->n_drain_seqs; i++) {
                if (d->drain_seqs[i] != seq)
                        continue;
                d->drain_seqs[i] = d->drain_seqs[--d->n_drain_seqs];
                if (result < 0 && result != -ETIME && result != -ESTALE)
                        log_info("Drain: a submission was refused (%s); replanning", strerror(-result));
                /* Replan once the whole batch is back. */
                if (d->n_drain_seqs == 0)
                        drain_driver_state_changed(d);
                return true;
        }
        return false;
}
