/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "convergence.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "strutil.h"

void convergence_policy_default(ConvergencePolicy *p, uint64_t memory_bytes) {
        uint64_t gib = (memory_bytes + (UINT64_C(1) << 30) - 1) >> 30;

        *p = (ConvergencePolicy) {
                .downtime_steps_ms = { 300, 400, 500 },
                .n_downtime_steps = 3,
                .stall_rounds = 2,
                .progress_timeout_usec = UINT64_C(60) * 1000000,
                .completion_timeout_usec = MAX(gib * 120, UINT64_C(300)) * 1000000,
        };
}

void convergence_policy_from(ConvergencePolicy *p, const uint32_t *steps, size_t n_steps, uint32_t stall_rounds,
                             uint32_t progress_timeout_sec, uint32_t completion_per_gib_sec, uint64_t memory_bytes) {
        uint64_t gib = (memory_bytes + (UINT64_C(1) << 30) - 1) >> 30;

        convergence_policy_default(p, memory_bytes);
        if (n_steps > 0) {
                n_steps = MIN(n_steps, (size_t) CONVERGENCE_STEPS_MAX);
                memcpy(p->downtime_steps_ms, steps, n_steps * sizeof(uint32_t));
                p->n_downtime_steps = n_steps;
        }
        if (stall_rounds > 0)
                p->stall_rounds = stall_rounds;
        if (progress_timeout_sec > 0)
                p->progress_timeout_usec = (uint64_t) progress_timeout_sec * 1000000;
        if (completion_per_gib_sec > 0)
                p->completion_timeout_usec = MAX(gib * completion_per_gib_sec, UINT64_C(300)) * 1000000;
}

void convergence_init(Convergence *c, const ConvergencePolicy *p, uint64_t now_usec) {
        *c = (Convergence) {
                .policy = *p,
                .last_progress_usec = now_usec,
                .start_usec = now_usec,
        };
        if (c->policy.n_downtime_steps == 0) {
                c->policy.downtime_steps_ms[0] = 300;
                c->policy.n_downtime_steps = 1;
        }
}

uint32_t convergence_initial_downtime(const Convergence *c) {
        return c->policy.downtime_steps_ms[0];
}

void convergence_auto_converge_unavailable(Convergence *c) {
        c->auto_converge_unavailable = true;
}

static ConvergenceAction escalate(Convergence *c, const ConvergenceSample *s, uint64_t *arg, char *why, size_t n) {
        char rate[32], dirty[32];

        format_size(rate, sizeof(rate), s->rate);
        format_size(dirty, sizeof(dirty), s->dirty_rate);
        if (c->step + 1 < c->policy.n_downtime_steps) {
                c->step++;
                *arg = c->policy.downtime_steps_ms[c->step];
                snprintf(why, n, "not converging (dirty %s/s, sending %s/s): max downtime raised to %" PRIu64 " ms",
                         dirty, rate, *arg);
                return CONVERGENCE_SET_DOWNTIME;
        }
        if (c->policy.auto_converge_allowed && !c->auto_converge_on && !c->auto_converge_unavailable) {
                c->auto_converge_on = true;
                *arg = 0;
                snprintf(why, n, "not converging at %u ms downtime (dirty %s/s, sending %s/s): auto-converge on",
                         c->policy.downtime_steps_ms[c->step], dirty, rate);
                return CONVERGENCE_AUTO_CONVERGE;
        }
        if (c->policy.postcopy_allowed && !c->postcopy_on) {
                c->postcopy_on = true;
                *arg = 0;
                snprintf(why, n, "not converging (dirty %s/s, sending %s/s): switching to post-copy", dirty, rate);
                return CONVERGENCE_POSTCOPY;
        }
        *arg = 0;
        snprintf(why, n,
                 "not converging: the guest dirties %s/s and %s/s get through, after raising the downtime to %u ms%s%s",
                 dirty, rate, c->policy.downtime_steps_ms[c->step],
                 c->auto_converge_on ? " and auto-converge" :
                 c->policy.auto_converge_allowed ? " (auto-converge unavailable)" : " (auto-converge not allowed)",
                 c->policy.postcopy_allowed ? "" : "; post-copy not allowed");
        return CONVERGENCE_ABORT;
}

ConvergenceAction convergence_next(Convergence *c, const ConvergenceSample *s, uint64_t now_usec,
                                   uint64_t *arg, char *why, size_t why_len) {
        *arg = 0;
        if (s->processed > c->last_processed) {
                c->last_processed = s->processed;
                c->last_progress_usec = now_usec;
        } else if (now_usec - c->last_progress_usec > c->policy.progress_timeout_usec) {
                snprintf(why, why_len, "no progress for %" PRIu64 " s",
                         (now_usec - c->last_progress_usec) / 1000000);
                return CONVERGENCE_ABORT;
        }
        if (c->policy.completion_timeout_usec > 0 && now_usec - c->start_usec > c->policy.completion_timeout_usec) {
                snprintf(why, why_len, "not completed within %" PRIu64 " s", c->policy.completion_timeout_usec / 1000000);
                return CONVERGENCE_ABORT;
        }
        if (!s->precopy || c->postcopy_on)
                return CONVERGENCE_NONE;

        if (s->iteration > c->last_iteration) {
                /* A new round began: what it must send is what the last one
                 * left dirty. Round 1 is the full copy: nothing to judge yet. */
                if (c->last_iteration >= 1 && c->round_start_remaining > 0) {
                        bool shrank = s->remaining * 10 < c->round_start_remaining * 9;
                        c->stalled_rounds = shrank ? 0 : c->stalled_rounds + 1;
                }
                c->last_iteration = s->iteration;
                c->round_start_remaining = s->remaining;
                if (c->stalled_rounds >= c->policy.stall_rounds) {
                        c->stalled_rounds = 0;
                        return escalate(c, s, arg, why, why_len);
                }
        }
        return CONVERGENCE_NONE;
}
