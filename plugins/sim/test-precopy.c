/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include "precopy.h"
#include "test-util.h"

#define MiB (UINT64_C(1) << 20)
#define GiB (UINT64_C(1) << 30)
#define SEC UINT64_C(1000000)
#define LINK (1250 * MiB)                       /* ~10 Gbit/s */

static PrecopyParams params(uint64_t memory, uint64_t working_set, uint64_t dirty, uint64_t bw) {
        PrecopyParams p;
        precopy_params_default(&p);
        p.memory = memory;
        p.working_set = working_set;
        p.dirty_rate = dirty;
        p.bandwidth = bw;
        return p;
}

static void test_outcomes(void) {
        static const struct {
                const char *name;
                uint64_t memory, working_set, dirty, bw, max_downtime_ms;
                bool auto_converge;
                PrecopyPhase outcome;
                uint32_t min_iter, max_iter;
        } cases[] = {
                /* Nothing dirtied: round 1 and done. */
                { "idle",               8 * GiB, 0,       0,          LINK,      300,  false, PRECOPY_PHASE_COMPLETED, 1, 1 },
                /* Round 1 dirties 328M: 262 ms at 1250M/s, under 300. */
                { "light",              8 * GiB, 0,       50 * MiB,   LINK,      300,  false, PRECOPY_PHASE_COMPLETED, 1, 2 },
                /* 2621M, 839M, 268M: three rounds. */
                { "moderate",           8 * GiB, 0,       400 * MiB,  LINK,      300,  false, PRECOPY_PHASE_COMPLETED, 3, 3 },
                /* Dirties faster than the link: every round is all of it. */
                { "hot",                8 * GiB, 0,       2 * GiB,    LINK,      300,  false, PRECOPY_PHASE_FAILED,    30, 30 },
                { "hot, auto-converge", 8 * GiB, 0,       2 * GiB,    LINK,      300,  true,  PRECOPY_PHASE_COMPLETED, 4, 29 },
                /* A 2G hot set takes 1.64 s to send: fits in 2 s, not in 0.3. */
                { "hot set, 300 ms",    8 * GiB, 2 * GiB, 2 * GiB,    LINK,      300,  false, PRECOPY_PHASE_FAILED,    30, 30 },
                { "hot set, 2000 ms",   8 * GiB, 2 * GiB, 2 * GiB,    LINK,      2000, false, PRECOPY_PHASE_COMPLETED, 1, 2 },
                /* Shared link: the same light VM with a quarter of it. */
                { "light, 1/4 link",    8 * GiB, 0,       50 * MiB,   LINK / 4,  300,  false, PRECOPY_PHASE_COMPLETED, 2, 3 },
                /* Max downtime 0 converges only with nothing dirty. */
                { "zero downtime",      1 * GiB, 0,       1 * MiB,    LINK,      0,    false, PRECOPY_PHASE_FAILED,    30, 30 },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                PrecopyParams p = params(cases[i].memory, cases[i].working_set, cases[i].dirty, cases[i].bw);
                PrecopyPrediction pr;

                p.max_downtime_ms = cases[i].max_downtime_ms;
                p.auto_converge = cases[i].auto_converge;
                CHECK_EQ_INT(precopy_predict(&p, &pr), 0);
                if (pr.outcome != cases[i].outcome || pr.iterations < cases[i].min_iter ||
                    pr.iterations > cases[i].max_iter) {
                        fprintf(stderr, "case \"%s\": %s after %u iterations\n", cases[i].name,
                                precopy_phase_to_string(pr.outcome), pr.iterations);
                        exit(1);
                }
                if (pr.outcome == PRECOPY_PHASE_COMPLETED) {
                        CHECK(pr.downtime_ms >= p.switchover_ms);
                        CHECK(pr.downtime_ms <= p.max_downtime_ms + p.switchover_ms + 1);
                        CHECK(pr.transferred >= p.memory);
                }
                CHECK_EQ_INT(cases[i].auto_converge, pr.throttle > 0);
        }
}

static void test_idle_exact(void) {
        PrecopyParams p = params(8 * GiB, 0, 0, LINK);
        PrecopyPrediction pr;
        Precopy m;
        PrecopyStatus s;

        CHECK_EQ_INT(precopy_predict(&p, &pr), 0);
        /* 100 ms setup + 8G at 1250M/s (6.5536 s) + 50 ms stop. */
        CHECK_EQ_INT(pr.duration_usec, 100000 + 6553600 + 50000);
        CHECK_EQ_INT(pr.downtime_ms, 50);
        CHECK_EQ_INT(pr.transferred, 8 * GiB);

        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_SETUP);
        CHECK_EQ_INT(s.remaining, 8 * GiB);
        CHECK_EQ_INT(s.rate, 0);
        precopy_advance(&m, 100000 + SEC);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_PRECOPY);
        CHECK_EQ_INT(s.iteration, 1);
        CHECK_EQ_INT(s.processed, LINK);
        CHECK_EQ_INT(s.remaining, 8 * GiB - LINK);
        CHECK_EQ_INT(s.rate, LINK);
        CHECK(s.converging);
        precopy_advance_to(&m, 100000 + 6553600 + 10000);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_SWITCHOVER);
        CHECK_EQ_INT(s.downtime_ms, 50);
        precopy_advance(&m, 40000);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_COMPLETED);
        CHECK_EQ_INT(s.remaining, 0);
        CHECK_EQ_INT(s.elapsed_usec, pr.duration_usec);
        CHECK(precopy_is_terminal(&m));
        CHECK_EQ_INT(precopy_next_event(&m), UINT64_MAX);
        /* Nothing moves a finished model. */
        CHECK_EQ_INT(precopy_cancel(&m), -ESTALE);
        CHECK_EQ_INT(precopy_set_bandwidth(&m, 1), -ESTALE);
}

static void test_not_converging_flag(void) {
        Precopy hot, moderate;
        PrecopyStatus s;
        PrecopyParams ph = params(8 * GiB, 0, 2 * GiB, LINK), pm = params(8 * GiB, 0, 400 * MiB, LINK);

        CHECK_EQ_INT(precopy_init(&hot, &ph), 0);
        CHECK_EQ_INT(precopy_init(&moderate, &pm), 0);
        precopy_advance(&hot, 20 * SEC);               /* round 3 */
        precopy_advance(&moderate, 7 * SEC);           /* round 2 */
        precopy_status(&hot, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_PRECOPY);
        CHECK(s.iteration >= 3);
        CHECK(!s.converging);
        CHECK_EQ_INT(s.dirty_rate, 2 * GiB);
        CHECK(s.pending >= s.remaining);
        precopy_status(&moderate, &s);
        CHECK_EQ_INT(s.iteration, 2);
        CHECK(s.converging);
        CHECK(s.remaining < 8 * GiB);
}

static void test_raise_downtime_at_runtime(void) {
        PrecopyParams p = params(8 * GiB, 2 * GiB, 2 * GiB, LINK);
        Precopy m;
        PrecopyStatus s;

        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        precopy_advance(&m, 10 * SEC);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_PRECOPY);
        CHECK(s.downtime_ms > 300);
        CHECK_EQ_INT(precopy_set_max_downtime(&m, 2000), 0);
        precopy_run(&m);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_COMPLETED);
        /* 2G at 1250M/s + 50 ms */
        CHECK(s.downtime_ms > 1600 && s.downtime_ms <= 2050);
}

static void test_auto_converge_steps(void) {
        PrecopyParams p = params(8 * GiB, 0, 2 * GiB, LINK);
        Precopy m;
        uint32_t last = 0, rounds = 0;

        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        CHECK_EQ_INT(precopy_set_auto_converge(&m, true), 0);
        while (!precopy_is_terminal(&m) && rounds < 100) {
                PrecopyStatus s;
                precopy_advance_to(&m, precopy_next_event(&m));
                precopy_status(&m, &s);
                if (s.throttle != last) {
                        /* 20, then +10 a step, like QEMU's cpu-throttle */
                        CHECK_EQ_INT(s.throttle, last == 0 ? 20 : last + 10);
                        CHECK_EQ_INT(s.dirty_rate, s.phase == PRECOPY_PHASE_PRECOPY
                                                           ? 2 * GiB * (100 - s.throttle) / 100 : 0);
                        last = s.throttle;
                }
                rounds++;
        }
        CHECK_EQ_INT(m.phase, PRECOPY_PHASE_COMPLETED);
        CHECK(last >= 40);

        /* Turning it off lifts the throttle at once. */
        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        CHECK_EQ_INT(precopy_set_auto_converge(&m, true), 0);
        precopy_advance(&m, 15 * SEC);
        CHECK(m.throttle > 0);
        CHECK_EQ_INT(precopy_set_auto_converge(&m, false), 0);
        CHECK_EQ_INT(m.throttle, 0);
        precopy_run(&m);
        CHECK_EQ_INT(m.phase, PRECOPY_PHASE_FAILED);
        PrecopyStatus s;
        precopy_status(&m, &s);
        CHECK(s.error && strstr(s.error, "did not converge in 30 iterations"));
        CHECK(!s.converging);
}

static void test_postcopy(void) {
        PrecopyParams p = params(8 * GiB, 0, 2 * GiB, LINK);
        Precopy m;
        PrecopyStatus s;

        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        precopy_advance(&m, 10 * SEC);
        CHECK_EQ_INT(precopy_start_postcopy(&m), 0);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_POSTCOPY);
        CHECK_EQ_INT(s.dirty_rate, 0);
        CHECK_EQ_INT(s.rate, 0);                /* paused for the device state */
        CHECK_EQ_INT(precopy_cancel(&m), -EBUSY);
        CHECK_EQ_INT(precopy_start_postcopy(&m), -EBUSY);
        precopy_advance(&m, 60000);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_POSTCOPY);
        CHECK_EQ_INT(s.rate, LINK);
        CHECK(s.remaining > 0);
        precopy_run(&m);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_COMPLETED);
        CHECK_EQ_INT(s.downtime_ms, 50);
        CHECK(s.processed >= 8 * GiB);
        /* Whatever was left (at most all of memory) at the link's speed. */
        CHECK(m.finished_at <= 10 * SEC + 50000 + 6553600 + 1);

        /* Asked for during setup: switches as round 1 would begin. */
        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        CHECK_EQ_INT(precopy_start_postcopy(&m), 0);
        precopy_run(&m);
        CHECK_EQ_INT(m.phase, PRECOPY_PHASE_COMPLETED);
        CHECK_EQ_INT(m.finished_at, 100000 + 50000 + 6553600);
}

static void test_cancel(void) {
        PrecopyParams p = params(8 * GiB, 0, 0, LINK);
        Precopy m;
        PrecopyStatus s;

        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        precopy_advance(&m, 100000 + SEC);
        CHECK_EQ_INT(precopy_cancel(&m), 0);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.phase, PRECOPY_PHASE_CANCELLED);
        CHECK_EQ_INT(s.processed, LINK);
        CHECK_EQ_INT(s.remaining, 8 * GiB - LINK);
        CHECK_EQ_INT(s.elapsed_usec, 100000 + SEC);
        precopy_advance(&m, 100 * SEC);
        CHECK_EQ_INT(m.phase, PRECOPY_PHASE_CANCELLED);

        /* In switchover: too late. */
        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        precopy_advance_to(&m, 100000 + 6553600 + 1);
        CHECK_EQ_INT(m.phase, PRECOPY_PHASE_SWITCHOVER);
        CHECK_EQ_INT(precopy_cancel(&m), -EBUSY);
}

static void test_bandwidth_change(void) {
        PrecopyParams p = params(8 * GiB, 0, 0, LINK);
        Precopy m;
        PrecopyStatus s;

        /* Half the link after 1 s of round 1: the rest takes twice as long. */
        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        precopy_advance(&m, 100000 + SEC);
        CHECK_EQ_INT(precopy_set_bandwidth(&m, LINK / 2), 0);
        CHECK_EQ_INT(precopy_set_bandwidth(&m, 0), -EINVAL);
        precopy_status(&m, &s);
        CHECK_EQ_INT(s.rate, LINK / 2);
        CHECK_EQ_INT(s.processed, LINK);
        precopy_run(&m);
        CHECK_EQ_INT(m.finished_at, 100000 + SEC + 2 * (6553600 - SEC) + 50000);
}

static bool same_status(const Precopy *a, const Precopy *b) {
        PrecopyStatus x, y;
        precopy_status(a, &x);
        precopy_status(b, &y);
        return x.phase == y.phase && x.processed == y.processed && x.remaining == y.remaining &&
                x.pending == y.pending && x.iteration == y.iteration && x.throttle == y.throttle &&
                x.downtime_ms == y.downtime_ms && x.rate == y.rate && x.dirty_rate == y.dirty_rate &&
                a->finished_at == b->finished_at && a->rng == b->rng;
}

/* One leap or many small steps: the same state, to the byte. This is what
 * lets a replay from a marker agree with the live run. */
static void test_step_invariance(void) {
        PrecopyParams p = params(4 * GiB, 3 * GiB, 700 * MiB, LINK);
        Precopy a, b;

        p.jitter_permille = 200;
        p.auto_converge = true;
        p.seed = 42;
        CHECK_EQ_INT(precopy_init(&a, &p), 0);
        CHECK_EQ_INT(precopy_init(&b, &p), 0);
        for (uint64_t t = 0; t <= 5 * SEC; t += 997)
                precopy_advance_to(&a, t);
        precopy_advance_to(&a, 5 * SEC);
        precopy_advance_to(&b, 5 * SEC);
        CHECK(same_status(&a, &b));
        CHECK_EQ_INT(precopy_set_bandwidth(&a, LINK / 3), 0);
        CHECK_EQ_INT(precopy_set_bandwidth(&b, LINK / 3), 0);
        for (uint64_t t = 5 * SEC; t <= 40 * SEC; t += 1013)
                precopy_advance_to(&a, t);
        precopy_advance_to(&a, 40 * SEC);
        precopy_advance_to(&b, 40 * SEC);
        CHECK(same_status(&a, &b));
        precopy_run(&a);
        precopy_run(&b);
        CHECK(same_status(&a, &b));
        CHECK(precopy_is_terminal(&a));
}

static void test_determinism_and_jitter(void) {
        PrecopyParams p = params(8 * GiB, 0, 400 * MiB, LINK);
        PrecopyPrediction x, y, z, plain;

        CHECK_EQ_INT(precopy_predict(&p, &plain), 0);
        p.jitter_permille = 300;
        p.seed = 7;
        CHECK_EQ_INT(precopy_predict(&p, &x), 0);
        CHECK_EQ_INT(precopy_predict(&p, &y), 0);
        CHECK(x.outcome == y.outcome && x.duration_usec == y.duration_usec && x.downtime_ms == y.downtime_ms &&
              x.iterations == y.iterations && x.transferred == y.transferred && x.throttle == y.throttle);
        p.seed = 8;
        CHECK_EQ_INT(precopy_predict(&p, &z), 0);
        CHECK(z.duration_usec != x.duration_usec);
        CHECK(x.duration_usec != plain.duration_usec);

        /* Prediction is the simulation: step through it and compare. */
        Precopy m;
        p.seed = 7;
        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        while (!precopy_is_terminal(&m))
                precopy_advance(&m, 250000);
        CHECK_EQ_INT(m.finished_at, x.duration_usec);
        CHECK_EQ_INT(m.iteration, x.iterations);
}

static void test_min_bandwidth(void) {
        PrecopyParams p = params(8 * GiB, 0, 400 * MiB, LINK);
        PrecopyPrediction pr;
        uint64_t b;

        CHECK_EQ_INT(precopy_min_bandwidth(&p, &b), 0);
        CHECK(b > 400 * MiB && b < LINK);
        p.bandwidth = b;
        CHECK_EQ_INT(precopy_predict(&p, &pr), 0);
        CHECK_EQ_INT(pr.outcome, PRECOPY_PHASE_COMPLETED);
        p.bandwidth = b - 1;
        CHECK_EQ_INT(precopy_predict(&p, &pr), 0);
        CHECK_EQ_INT(pr.outcome, PRECOPY_PHASE_FAILED);

        /* Idle: any bandwidth will do. */
        p = params(1 * GiB, 0, 0, 1);
        CHECK_EQ_INT(precopy_min_bandwidth(&p, &b), 0);
        CHECK_EQ_INT(b, 1);
        /* Never with no downtime and a busy guest. */
        p = params(1 * GiB, 0, 100 * MiB, LINK);
        p.max_downtime_ms = 0;
        CHECK_EQ_INT(precopy_min_bandwidth(&p, &b), -ERANGE);
}

static void test_invalid(void) {
        Precopy m;
        PrecopyParams p;

        p = params(0, 0, 0, LINK);
        CHECK_EQ_INT(precopy_init(&m, &p), -EINVAL);
        p = params(GiB, 0, 0, 0);
        CHECK_EQ_INT(precopy_init(&m, &p), -EINVAL);
        p = params(GiB, 2 * GiB, 0, LINK);
        CHECK_EQ_INT(precopy_init(&m, &p), -EINVAL);
        p = params(GiB, 0, 0, LINK);
        p.max_iterations = 0;
        CHECK_EQ_INT(precopy_init(&m, &p), -EINVAL);
        p = params(GiB, 0, 0, LINK);
        p.jitter_permille = 1000;
        CHECK_EQ_INT(precopy_init(&m, &p), -EINVAL);
        CHECK_STREQ(precopy_phase_to_string(PRECOPY_PHASE_SWITCHOVER), "switchover");
        CHECK_STREQ(precopy_phase_to_string(99), "unknown");
}

/* A slow link and a huge VM: times stay in range, nothing overflows. */
static void test_extremes(void) {
        PrecopyParams p = params(UINT64_C(4) << 40, 0, 10 * GiB, 1);
        PrecopyPrediction pr;
        Precopy m;

        CHECK_EQ_INT(precopy_init(&m, &p), 0);
        precopy_advance(&m, UINT64_MAX / 2);
        CHECK_EQ_INT(m.phase, PRECOPY_PHASE_PRECOPY);
        precopy_advance(&m, UINT64_MAX);
        CHECK(!precopy_is_terminal(&m));        /* stalled: no end in 64 bits */
        CHECK_EQ_INT(precopy_predict(&p, &pr), -ERANGE);

        p = params(UINT64_C(4) << 40, 0, 10 * GiB, UINT64_C(1) << 50);
        CHECK_EQ_INT(precopy_predict(&p, &pr), 0);
        CHECK_EQ_INT(pr.outcome, PRECOPY_PHASE_COMPLETED);
}

int main(void) {
        static const TestCase tests[] = {
                { "outcomes (table)", test_outcomes },
                { "idle VM, exact timeline", test_idle_exact },
                { "converging flag", test_not_converging_flag },
                { "raise max downtime at runtime", test_raise_downtime_at_runtime },
                { "auto-converge steps", test_auto_converge_steps },
                { "post-copy", test_postcopy },
                { "cancel", test_cancel },
                { "bandwidth change mid-round", test_bandwidth_change },
                { "step invariance", test_step_invariance },
                { "determinism and jitter", test_determinism_and_jitter },
                { "minimum bandwidth", test_min_bandwidth },
                { "invalid parameters", test_invalid },
                { "extremes", test_extremes },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
