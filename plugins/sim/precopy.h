/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A pure model of a live migration by pre-copy, in the shape QEMU runs it:
 *
 *   setup       a fixed delay (the destination's skeleton VM)
 *   round 1     sends all of memory while the guest runs and dirties pages
 *   round i+1   sends what was dirtied during round i
 *   check       after every round: if what is dirty could be sent within the
 *               maximum downtime, stop the guest and copy it (switchover);
 *               if not, and max_iterations rounds are done, give up
 *   switchover  the guest is paused: the last dirty bytes, then a fixed cost
 *               (CPU and device state, starting the destination)
 *   post-copy   on request: after the fixed cost the guest runs on the
 *               destination, which pulls the rest; it cannot fail to finish
 *
 * The model does no I/O and reads no clock: time is simulated microseconds
 * since the start, moved forward by precopy_advance*(). Rates are constant
 * between events, and every quantity is computed from the start of its
 * current constant-rate segment, never accumulated per call: advancing
 * in one step or in a thousand gives the same state to the byte, which is
 * what lets a restarted backend replay a migration exactly from its start
 * time and the list of control actions.
 *
 * Randomness: none, unless jitter_permille > 0, which varies bandwidth and
 * dirty rate per round by up to that much, from an explicitly seeded
 * xorshift. */

#include <stdbool.h>
#include <stdint.h>

typedef enum PrecopyPhase {
        PRECOPY_PHASE_SETUP,
        PRECOPY_PHASE_PRECOPY,
        PRECOPY_PHASE_POSTCOPY,
        PRECOPY_PHASE_SWITCHOVER,
        PRECOPY_PHASE_COMPLETED,
        PRECOPY_PHASE_FAILED,
        PRECOPY_PHASE_CANCELLED,
        _PRECOPY_PHASE_MAX,
} PrecopyPhase;

typedef struct PrecopyParams {
        uint64_t memory;                /* bytes of guest RAM, > 0 */
        uint64_t working_set;           /* bytes the guest dirties at most; 0 = memory */
        uint64_t dirty_rate;            /* bytes/s the guest dirties unthrottled */
        uint64_t bandwidth;             /* bytes/s this migration gets, > 0 */
        uint64_t max_downtime_ms;       /* switchover allowed when the rest fits in this */
        uint32_t max_iterations;        /* rounds before giving up, > 0 */
        uint64_t setup_ms;              /* fixed delay before round 1 */
        uint64_t switchover_ms;         /* fixed cost of the stop, on top of the last bytes */
        bool auto_converge;             /* throttle the guest's CPUs when rounds don't shrink */
        uint32_t throttle_initial;      /* percent (QEMU cpu-throttle-initial, 20) */
        uint32_t throttle_increment;    /* percent (cpu-throttle-increment, 10) */
        uint32_t throttle_max;          /* percent (max-cpu-throttle, 99) */
        uint32_t throttle_trigger;      /* percent (throttle-trigger-threshold, 50) */
        uint32_t jitter_permille;       /* 0..999; 0 = none */
        uint64_t seed;
} PrecopyParams;

/* The state. Embed it by value; its fields are the model's own. */
typedef struct Precopy {
        PrecopyParams p;
        PrecopyPhase phase;
        uint64_t now;                   /* usec since the start */
        uint64_t finished_at;           /* usec, once terminal */
        uint32_t iteration;             /* round, 1-based; 0 in setup */
        uint32_t throttle;              /* percent of guest CPU taken away */
        bool postcopy_requested;        /* asked for during setup */
        bool in_delay;                  /* waiting out a fixed delay, not sending */
        uint64_t delay_end;
        /* The current transfer: a round, the last bytes of the switchover
         * or the post-copy pull. */
        uint64_t xfer_total;
        uint64_t done_before;           /* bytes sent by earlier transfers */
        uint64_t prev_round;            /* bytes of the previous round */
        uint64_t last_remaining;        /* kept for a failed or cancelled model */
        /* The current constant-rate segment. */
        uint64_t seg_start;
        uint64_t seg_sent;              /* of xfer_total, at seg_start */
        uint64_t seg_dirtied;           /* since the round began, at seg_start */
        uint32_t bw_factor;             /* permille, this round's jitter */
        uint32_t dirty_factor;
        uint64_t paused_at;             /* when the guest stopped on the source */
        uint64_t downtime_us;           /* measured, once known */
        uint64_t rng;
        char error[256];
} Precopy;

typedef struct PrecopyStatus {
        PrecopyPhase phase;
        uint64_t elapsed_usec;          /* until now, or until the end */
        uint64_t memory_total;
        uint64_t processed;             /* bytes sent so far */
        uint64_t remaining;             /* bytes left in the current pass (as QEMU reports it) */
        uint64_t pending;               /* bytes a stop now would have to send: remaining + dirtied */
        uint64_t rate;                  /* bytes/s now */
        uint64_t dirty_rate;            /* bytes/s now, after throttling */
        uint32_t iteration;
        uint32_t throttle;              /* percent */
        uint64_t downtime_ms;           /* measured once the guest resumed, else the estimate for a stop now */
        bool converging;                /* this round smaller than the previous one */
        const char *error;              /* why, when FAILED; points into the model */
} PrecopyStatus;

typedef struct PrecopyPrediction {
        PrecopyPhase outcome;           /* COMPLETED or FAILED */
        uint64_t duration_usec;         /* from the start to the end */
        uint64_t downtime_ms;           /* when COMPLETED */
        uint32_t iterations;
        uint64_t transferred;           /* bytes */
        uint32_t throttle;              /* percent reached */
} PrecopyPrediction;

const char *precopy_phase_to_string(PrecopyPhase p);

/* QEMU's defaults: 300 ms downtime, 30 rounds here (QEMU has no limit; a
 * manager gives up instead), 100 ms setup, 50 ms switchover cost,
 * throttle 20% + 10% up to 99% when a round dirties more than half of what
 * it sent. Memory, dirty rate and bandwidth are zero: the caller sets them. */
void precopy_params_default(PrecopyParams *p);

/* -EINVAL if memory, bandwidth or max_iterations is 0, the working set
 * exceeds memory, or a percentage is out of range. */
int precopy_init(Precopy *m, const PrecopyParams *p);

/* Moves simulated time forward; a time in the past is ignored. */
void precopy_advance_to(Precopy *m, uint64_t t_usec);
void precopy_advance(Precopy *m, uint64_t dt_usec);
/* Time of the next internal event (end of a round, of a delay...);
 * UINT64_MAX if there is none (a terminal phase). */
uint64_t precopy_next_event(const Precopy *m);
/* Runs event by event to a terminal phase. */
void precopy_run(Precopy *m);

bool precopy_is_terminal(const Precopy *m);

/* Control actions, taking effect at m->now. They return -ESTALE on a
 * terminal model. */
int precopy_set_bandwidth(Precopy *m, uint64_t bytes_per_sec);          /* -EINVAL for 0 */
int precopy_set_dirty_rate(Precopy *m, uint64_t bytes_per_sec);
/* Applies at the next check, the end of the current round. */
int precopy_set_max_downtime(Precopy *m, uint64_t ms);
/* Off: the throttle is lifted at once. On: it rises at round ends. */
int precopy_set_auto_converge(Precopy *m, bool on);
/* In pre-copy: switches now. In setup: as soon as round 1 would begin.
 * -EBUSY in switchover or post-copy. */
int precopy_start_postcopy(Precopy *m);
/* Before switchover only: -EBUSY in switchover and post-copy. */
int precopy_cancel(Precopy *m);

void precopy_status(const Precopy *m, PrecopyStatus *ret);

/* The outcome of a migration left alone with these parameters, in
 * O(rounds) (event to event, the same code as the model, so prediction and
 * simulation never disagree). Returns -EINVAL like precopy_init(), or
 * -ERANGE if the model stalls (a bandwidth so low that a round never ends
 * in 64-bit microseconds). */
int precopy_predict(const PrecopyParams *p, PrecopyPrediction *ret);

/* The smallest bandwidth with which precopy_predict() completes, by
 * bisection; auto_converge and the other parameters are taken from p.
 * -ERANGE if no bandwidth does (max downtime 0 and a guest that dirties,
 * or a working set too large for the downtime at any speed that fits in
 * 64 bits). Assumes the outcome is monotonic in bandwidth, which holds with
 * jitter off. */
int precopy_min_bandwidth(const PrecopyParams *p, uint64_t *ret);
