/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "precopy.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "xorshift.h"

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define NEVER UINT64_MAX

/* a * b / c without intermediate overflow, saturating. Integers rather than
 * doubles so that a replay on another node gives the same bytes. */
static uint64_t muldiv(uint64_t a, uint64_t b, uint64_t c) {
        unsigned __int128 r = (unsigned __int128) a * b / c;
        return r > UINT64_MAX ? UINT64_MAX : (uint64_t) r;
}

static uint64_t muldiv_up(uint64_t a, uint64_t b, uint64_t c) {
        unsigned __int128 r = ((unsigned __int128) a * b + c - 1) / c;
        return r > UINT64_MAX ? UINT64_MAX : (uint64_t) r;
}

static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static const char *const phase_names[_PRECOPY_PHASE_MAX] = {
        [PRECOPY_PHASE_SETUP] = "setup",
        [PRECOPY_PHASE_PRECOPY] = "precopy",
        [PRECOPY_PHASE_POSTCOPY] = "postcopy",
        [PRECOPY_PHASE_SWITCHOVER] = "switchover",
        [PRECOPY_PHASE_COMPLETED] = "completed",
        [PRECOPY_PHASE_FAILED] = "failed",
        [PRECOPY_PHASE_CANCELLED] = "cancelled",
};

const char *precopy_phase_to_string(PrecopyPhase p) {
        return (unsigned) p < _PRECOPY_PHASE_MAX ? phase_names[p] : "unknown";
}

void precopy_params_default(PrecopyParams *p) {
        *p = (PrecopyParams) {
                .max_downtime_ms = 300,
                .max_iterations = 30,
                .setup_ms = 100,
                .switchover_ms = 50,
                .throttle_initial = 20,
                .throttle_increment = 10,
                .throttle_max = 99,
                .throttle_trigger = 50,
                .seed = 1,
        };
}

bool precopy_is_terminal(const Precopy *m) {
        return m->phase == PRECOPY_PHASE_COMPLETED || m->phase == PRECOPY_PHASE_FAILED ||
                m->phase == PRECOPY_PHASE_CANCELLED;
}

static uint64_t working_set(const Precopy *m) {
        return m->p.working_set ? m->p.working_set : m->p.memory;
}

static uint64_t bw_eff(const Precopy *m) {
        return MAX(muldiv(m->p.bandwidth, m->bw_factor, 1000), UINT64_C(1));
}

/* The guest dirties memory only while it runs on the source: in setup and
 * pre-copy. Throttling takes that percentage of its CPU time away, and the
 * dirty rate with it. */
static uint64_t dirty_eff(const Precopy *m) {
        if (m->phase != PRECOPY_PHASE_SETUP && m->phase != PRECOPY_PHASE_PRECOPY)
                return 0;
        return muldiv(muldiv(m->p.dirty_rate, m->dirty_factor, 1000), 100 - m->throttle, 100);
}

static bool sending(const Precopy *m) {
        return !m->in_delay && !precopy_is_terminal(m) && m->phase != PRECOPY_PHASE_SETUP;
}

static uint64_t sent_at(const Precopy *m, uint64_t t) {
        if (!sending(m))
                return m->seg_sent;
        return MIN(m->xfer_total, add_sat(m->seg_sent, muldiv(bw_eff(m), t - m->seg_start, USEC_PER_SEC)));
}

/* Distinct bytes dirtied since the round began: they saturate at the working
 * set, since a page dirtied twice is sent once. */
static uint64_t dirtied_at(const Precopy *m, uint64_t t) {
        if (m->phase != PRECOPY_PHASE_PRECOPY)
                return m->seg_dirtied;
        return MIN(working_set(m), add_sat(m->seg_dirtied, muldiv(dirty_eff(m), t - m->seg_start, USEC_PER_SEC)));
}

static uint64_t transfer_end(const Precopy *m) {
        uint64_t left = m->xfer_total - m->seg_sent;
        if (left == 0)
                return m->seg_start;
        return add_sat(m->seg_start, muldiv_up(left, USEC_PER_SEC, bw_eff(m)));
}

/* Closes the current segment at m->now. Call before any rate changes. */
static void new_segment(Precopy *m) {
        m->seg_sent = sent_at(m, m->now);
        m->seg_dirtied = dirtied_at(m, m->now);
        m->seg_start = m->now;
}

static void draw_jitter(Precopy *m) {
        uint32_t j = m->p.jitter_permille;
        if (j == 0) {
                m->bw_factor = m->dirty_factor = 1000;
                return;
        }
        m->bw_factor = 1000 - j + (uint32_t) xorshift_below(&m->rng, 2 * j + 1);
        m->dirty_factor = 1000 - j + (uint32_t) xorshift_below(&m->rng, 2 * j + 1);
}

static void begin_transfer(Precopy *m, uint64_t bytes) {
        m->xfer_total = bytes;
        m->seg_start = m->now;
        m->seg_sent = 0;
        m->seg_dirtied = 0;
        m->in_delay = false;
}

static void begin_delay(Precopy *m, uint64_t ms) {
        m->in_delay = true;
        m->delay_end = add_sat(m->now, ms * USEC_PER_MSEC);
}

static void finish(Precopy *m, PrecopyPhase phase) {
        m->phase = phase;
        m->finished_at = m->now;
        m->in_delay = false;
}

static void begin_round(Precopy *m, uint64_t bytes) {
        m->iteration++;
        draw_jitter(m);
        begin_transfer(m, bytes);
}

static void begin_switchover(Precopy *m, uint64_t bytes) {
        m->phase = PRECOPY_PHASE_SWITCHOVER;
        m->paused_at = m->now;
        begin_transfer(m, bytes);
}

static void begin_postcopy(Precopy *m) {
        /* What is left of this round plus what it dirtied (the two may
         * overlap; their sum, capped at memory, errs on the long side). */
        uint64_t sent = sent_at(m, m->now);
        uint64_t rest = MIN(m->p.memory, m->xfer_total - sent + dirtied_at(m, m->now));

        m->done_before += sent;
        m->phase = PRECOPY_PHASE_POSTCOPY;
        m->paused_at = m->now;
        m->xfer_total = rest;
        m->seg_sent = m->seg_dirtied = 0;
        m->seg_start = m->now;
        begin_delay(m, m->p.switchover_ms);
}

static void end_round(Precopy *m) {
        uint64_t dirtied = dirtied_at(m, m->now);
        uint64_t bw = bw_eff(m);

        m->done_before += m->xfer_total;
        /* remaining / bandwidth <= max downtime, in integers */
        if ((unsigned __int128) dirtied * USEC_PER_MSEC <= (unsigned __int128) m->p.max_downtime_ms * bw) {
                begin_switchover(m, dirtied);
                return;
        }
        if (m->iteration >= m->p.max_iterations) {
                m->last_remaining = dirtied;
                snprintf(m->error, sizeof(m->error),
                         "did not converge in %" PRIu32 " iterations: %" PRIu64 " bytes dirty at %" PRIu64
                         " bytes/s need %" PRIu64 " ms, max downtime is %" PRIu64 " ms",
                         m->iteration, dirtied, bw, muldiv_up(dirtied, 1000, bw), m->p.max_downtime_ms);
                finish(m, PRECOPY_PHASE_FAILED);
                return;
        }
        /* QEMU raises the throttle when a period dirtied more than
         * throttle_trigger percent of what it sent (it waits for two such
         * periods; one round here is coarser than its sync period). */
        if (m->p.auto_converge &&
            (unsigned __int128) dirtied * 100 > (unsigned __int128) m->p.throttle_trigger * m->xfer_total)
                m->throttle = m->throttle == 0 ? m->p.throttle_initial
                                               : MIN(m->throttle + m->p.throttle_increment, m->p.throttle_max);
        m->prev_round = m->xfer_total;
        begin_round(m, dirtied);
}

static void handle_event(Precopy *m) {
        switch (m->phase) {
        case PRECOPY_PHASE_SETUP:
                m->phase = PRECOPY_PHASE_PRECOPY;
                begin_round(m, m->p.memory);
                if (m->postcopy_requested)
                        begin_postcopy(m);
                break;
        case PRECOPY_PHASE_PRECOPY:
                end_round(m);
                break;
        case PRECOPY_PHASE_SWITCHOVER:
                if (!m->in_delay) {
                        m->done_before += m->xfer_total;
                        m->xfer_total = m->seg_sent = 0;
                        begin_delay(m, m->p.switchover_ms);
                } else {
                        m->downtime_us = m->now - m->paused_at;
                        finish(m, PRECOPY_PHASE_COMPLETED);
                }
                break;
        case PRECOPY_PHASE_POSTCOPY:
                if (m->in_delay) {
                        /* The guest resumes on the destination. */
                        m->downtime_us = m->now - m->paused_at;
                        begin_transfer(m, m->xfer_total);
                        if (m->xfer_total == 0)
                                finish(m, PRECOPY_PHASE_COMPLETED);
                } else {
                        m->done_before += m->xfer_total;
                        m->xfer_total = m->seg_sent = 0;
                        finish(m, PRECOPY_PHASE_COMPLETED);
                }
                break;
        default:
                break;
        }
}

int precopy_init(Precopy *m, const PrecopyParams *p) {
        if (p->memory == 0 || p->bandwidth == 0 || p->max_iterations == 0)
                return -EINVAL;
        if (p->working_set > p->memory)
                return -EINVAL;
        if (p->throttle_initial > 99 || p->throttle_max > 99 || p->throttle_trigger > 100 ||
            p->jitter_permille > 999)
                return -EINVAL;

        *m = (Precopy) {
                .p = *p,
                .phase = PRECOPY_PHASE_SETUP,
                .rng = xorshift_seed(p->seed),
                .bw_factor = 1000,
                .dirty_factor = 1000,
        };
        begin_delay(m, p->setup_ms);
        return 0;
}

uint64_t precopy_next_event(const Precopy *m) {
        if (precopy_is_terminal(m))
                return NEVER;
        if (m->in_delay)
                return m->delay_end;
        return transfer_end(m);
}

void precopy_advance_to(Precopy *m, uint64_t t) {
        while (!precopy_is_terminal(m)) {
                uint64_t e = precopy_next_event(m);
                /* NEVER: a transfer so slow its end does not fit in 64 bits. */
                if (e == NEVER || e > t)
                        break;
                m->now = MAX(m->now, e);
                handle_event(m);
        }
        if (t > m->now)
                m->now = t;
}

void precopy_advance(Precopy *m, uint64_t dt) {
        precopy_advance_to(m, add_sat(m->now, dt));
}

void precopy_run(Precopy *m) {
        while (!precopy_is_terminal(m)) {
                uint64_t e = precopy_next_event(m);
                if (e == NEVER)
                        break;
                precopy_advance_to(m, e);
        }
}

int precopy_set_bandwidth(Precopy *m, uint64_t bw) {
        if (bw == 0)
                return -EINVAL;
        if (precopy_is_terminal(m))
                return -ESTALE;
        new_segment(m);
        m->p.bandwidth = bw;
        return 0;
}

int precopy_set_dirty_rate(Precopy *m, uint64_t d) {
        if (precopy_is_terminal(m))
                return -ESTALE;
        new_segment(m);
        m->p.dirty_rate = d;
        return 0;
}

int precopy_set_max_downtime(Precopy *m, uint64_t ms) {
        if (precopy_is_terminal(m))
                return -ESTALE;
        m->p.max_downtime_ms = ms;
        return 0;
}

int precopy_set_auto_converge(Precopy *m, bool on) {
        if (precopy_is_terminal(m))
                return -ESTALE;
        m->p.auto_converge = on;
        if (!on && m->throttle > 0) {
                new_segment(m);
                m->throttle = 0;
        }
        return 0;
}

int precopy_start_postcopy(Precopy *m) {
        switch (m->phase) {
        case PRECOPY_PHASE_SETUP:
                m->postcopy_requested = true;
                return 0;
        case PRECOPY_PHASE_PRECOPY:
                begin_postcopy(m);
                return 0;
        case PRECOPY_PHASE_SWITCHOVER:
        case PRECOPY_PHASE_POSTCOPY:
                return -EBUSY;
        default:
                return -ESTALE;
        }
}

int precopy_cancel(Precopy *m) {
        switch (m->phase) {
        case PRECOPY_PHASE_SETUP:
        case PRECOPY_PHASE_PRECOPY:
                new_segment(m);
                m->done_before += m->seg_sent;
                m->last_remaining = m->phase == PRECOPY_PHASE_SETUP ? m->p.memory : m->xfer_total - m->seg_sent;
                m->xfer_total = m->seg_sent = 0;
                finish(m, PRECOPY_PHASE_CANCELLED);
                return 0;
        case PRECOPY_PHASE_SWITCHOVER:
        case PRECOPY_PHASE_POSTCOPY:
                return -EBUSY;
        default:
                return -ESTALE;
        }
}

void precopy_status(const Precopy *m, PrecopyStatus *ret) {
        uint64_t t = m->now;
        uint64_t sent = sent_at(m, t);
        uint64_t bw = bw_eff(m);
        PrecopyStatus s = {
                .phase = m->phase,
                .elapsed_usec = precopy_is_terminal(m) ? m->finished_at : t,
                .memory_total = m->p.memory,
                .processed = m->done_before + (sending(m) ? sent : 0),
                .iteration = m->iteration,
                .throttle = m->throttle,
                .converging = true,
        };

        switch (m->phase) {
        case PRECOPY_PHASE_SETUP:
                s.remaining = s.pending = m->p.memory;
                s.dirty_rate = dirty_eff(m);
                s.downtime_ms = muldiv_up(m->p.memory, 1000, bw) + m->p.switchover_ms;
                break;
        case PRECOPY_PHASE_PRECOPY:
                s.remaining = m->xfer_total - sent;
                s.pending = MIN(m->p.memory, add_sat(s.remaining, dirtied_at(m, t)));
                s.rate = bw;
                s.dirty_rate = dirty_eff(m);
                s.downtime_ms = muldiv_up(s.pending, 1000, bw) + m->p.switchover_ms;
                s.converging = m->iteration <= 1 || m->xfer_total < m->prev_round;
                break;
        case PRECOPY_PHASE_SWITCHOVER:
                s.remaining = s.pending = m->xfer_total - sent;
                s.rate = m->in_delay ? 0 : bw;
                /* Paused since paused_at; the rest is known. */
                s.downtime_ms = (m->in_delay ? m->delay_end
                                             : add_sat(transfer_end(m), m->p.switchover_ms * USEC_PER_MSEC)) -
                                m->paused_at;
                s.downtime_ms = (s.downtime_ms + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                break;
        case PRECOPY_PHASE_POSTCOPY:
                s.remaining = s.pending = m->xfer_total - sent;
                s.rate = m->in_delay ? 0 : bw;
                s.downtime_ms = m->p.switchover_ms;
                break;
        case PRECOPY_PHASE_COMPLETED:
                s.downtime_ms = (m->downtime_us + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                break;
        case PRECOPY_PHASE_FAILED:
                s.remaining = s.pending = m->last_remaining;
                s.converging = false;
                s.error = m->error;
                break;
        case PRECOPY_PHASE_CANCELLED:
                s.remaining = s.pending = m->last_remaining;
                break;
        default:
                break;
        }
        *ret = s;
}

int precopy_predict(const PrecopyParams *p, PrecopyPrediction *ret) {
        Precopy m;
        PrecopyStatus s;
        int r;

        r = precopy_init(&m, p);
        if (r < 0)
                return r;
        precopy_run(&m);
        if (!precopy_is_terminal(&m))
                return -ERANGE;
        precopy_status(&m, &s);
        *ret = (PrecopyPrediction) {
                .outcome = m.phase,
                .duration_usec = m.finished_at,
                .downtime_ms = m.phase == PRECOPY_PHASE_COMPLETED ? s.downtime_ms : 0,
                .iterations = m.iteration,
                .transferred = s.processed,
                .throttle = m.throttle,
        };
        return 0;
}

static bool completes_with(const PrecopyParams *p, uint64_t bw) {
        PrecopyParams q = *p;
        PrecopyPrediction pr;

        q.bandwidth = bw;
        return precopy_predict(&q, &pr) >= 0 && pr.outcome == PRECOPY_PHASE_COMPLETED;
}

int precopy_min_bandwidth(const PrecopyParams *p, uint64_t *ret) {
        PrecopyParams q = *p;
        uint64_t lo = 1, hi;

        q.bandwidth = 1;
        {
                Precopy probe;
                int r = precopy_init(&probe, &q);
                if (r < 0)
                        return r;
        }
        /* With this much, round 1 alone fits in the downtime whatever it
         * dirtied; with max downtime 0 only a guest that dirties nothing
         * during one microsecond completes. */
        if (p->max_downtime_ms > 0)
                hi = MAX(muldiv_up(p->memory, 1000, p->max_downtime_ms), UINT64_C(1));
        else
                hi = UINT64_MAX >> 16;
        if (!completes_with(p, hi))
                return -ERANGE;
        if (completes_with(p, lo)) {
                *ret = lo;
                return 0;
        }
        while (hi - lo > 1) {
                uint64_t mid = lo + (hi - lo) / 2;
                if (completes_with(p, mid))
                        hi = mid;
                else
                        lo = mid;
        }
        *ret = hi;
        return 0;
}
