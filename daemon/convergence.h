/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The convergence policy of a live migration: what to do when pre-copy
 * does not converge. Pure: fed progress samples and the time, it answers
 * with the next action; the runner carries it out and logs it on the job.
 *
 * Escalation, one step each time the remaining memory has failed to shrink
 * (by at least 10%) for `stall_rounds` consecutive pre-copy rounds:
 *   1. raise the allowed downtime along the ladder (300→400→500 ms by
 *      default: 300 ms is QEMU's own default, and starting lower only buys
 *      extra pre-copy rounds for guests that converge anyway);
 *   2. auto-converge (throttle the guest's CPUs), if allowed and supported;
 *   3. switch to post-copy, if allowed;
 *   4. abort, saying why.
 * Independently: abort when no byte moved for progress_timeout, or when the
 * whole migration exceeds completion_timeout. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONVERGENCE_STEPS_MAX 8

typedef struct ConvergencePolicy {
        uint32_t downtime_steps_ms[CONVERGENCE_STEPS_MAX];
        size_t n_downtime_steps;
        bool auto_converge_allowed;
        bool postcopy_allowed;
        uint32_t stall_rounds;
        uint64_t progress_timeout_usec;
        uint64_t completion_timeout_usec;       /* 0 = none */
} ConvergencePolicy;

typedef enum ConvergenceAction {
        CONVERGENCE_NONE,
        CONVERGENCE_SET_DOWNTIME,       /* arg = ms */
        CONVERGENCE_AUTO_CONVERGE,
        CONVERGENCE_POSTCOPY,
        CONVERGENCE_ABORT,
} ConvergenceAction;

typedef struct ConvergenceSample {
        bool precopy;                   /* in the pre-copy phase */
        uint32_t iteration;
        uint64_t processed;
        uint64_t remaining;
        uint64_t rate;
        uint64_t dirty_rate;
} ConvergenceSample;

typedef struct Convergence {
        ConvergencePolicy policy;
        size_t step;                    /* index of the downtime in force */
        bool auto_converge_on;
        bool postcopy_on;
        bool auto_converge_unavailable;
        uint32_t last_iteration;
        uint64_t round_start_remaining; /* remaining when the current round began */
        uint32_t stalled_rounds;
        uint64_t last_processed;
        uint64_t last_progress_usec;
        uint64_t start_usec;
} Convergence;

/* The default ladder and timeouts: 300, 400, 500 ms; 2 stalled rounds;
 * 60 s without progress; 120 s per GiB of guest memory, at least 300 s. */
void convergence_policy_default(ConvergencePolicy *p, uint64_t memory_bytes);
/* The same from configured values (ferryd.conf); the completion timeout is
 * per GiB of guest memory, at least 300 s. */
void convergence_policy_from(ConvergencePolicy *p, const uint32_t *steps, size_t n_steps, uint32_t stall_rounds,
                             uint32_t progress_timeout_sec, uint32_t completion_per_gib_sec, uint64_t memory_bytes);
void convergence_init(Convergence *c, const ConvergencePolicy *p, uint64_t now_usec);
/* The downtime to start with (the first step). */
uint32_t convergence_initial_downtime(const Convergence *c);
/* Next action for this sample. *arg and `why` (a sentence for the job log)
 * are set for every action but NONE. */
ConvergenceAction convergence_next(Convergence *c, const ConvergenceSample *s, uint64_t now_usec,
                                   uint64_t *arg, char *why, size_t why_len);
/* The runner could not carry out AUTO_CONVERGE (backend lacks it): the next
 * escalation skips it. */
void convergence_auto_converge_unavailable(Convergence *c);
