/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "convergence.h"
#include "test-util.h"

#define S(x) ((uint64_t) (x) * 1000000)

/* Feeds rounds whose remaining memory is `remaining[i]` at the start of
 * round i+1, one sample a second, and records the actions. */
static size_t run(Convergence *c, const uint64_t *remaining, size_t n, ConvergenceAction *out, uint64_t *args) {
        size_t k = 0;
        uint64_t processed = 0;
        for (size_t i = 0; i < n; i++) {
                ConvergenceSample s = { .precopy = true, .iteration = (uint32_t) i + 1, .remaining = remaining[i],
                                        .rate = 100, .dirty_rate = 200 };
                processed += 1000;
                s.processed = processed;
                char why[256];
                uint64_t arg;
                ConvergenceAction a = convergence_next(c, &s, S(i + 1), &arg, why, sizeof(why));
                if (a != CONVERGENCE_NONE) {
                        CHECK(strlen(why) > 10);
                        out[k] = a;
                        args[k++] = arg;
                }
        }
        return k;
}

static void test_converging_guest_needs_nothing(void) {
        ConvergencePolicy p;
        Convergence c;
        uint64_t rem[] = { 1000, 500, 200, 50, 10 };
        ConvergenceAction a[16];
        uint64_t args[16];

        convergence_policy_default(&p, UINT64_C(1) << 30);
        convergence_init(&c, &p, 0);
        CHECK_EQ_INT(convergence_initial_downtime(&c), 300);
        CHECK_EQ_INT(run(&c, rem, 5, a, args), 0);
}

static void test_ladder_then_abort(void) {
        ConvergencePolicy p;
        Convergence c;
        uint64_t rem[20];
        ConvergenceAction a[16];
        uint64_t args[16];

        for (size_t i = 0; i < 20; i++)
                rem[i] = 1000;          /* never shrinks */
        convergence_policy_default(&p, UINT64_C(1) << 30);
        convergence_init(&c, &p, 0);
        size_t k = run(&c, rem, 20, a, args);
        /* 400, 500 ms, then abort (no auto-converge, no post-copy). */
        CHECK(k >= 3);
        CHECK_EQ_INT(a[0], CONVERGENCE_SET_DOWNTIME);
        CHECK_EQ_INT(args[0], 400);
        CHECK_EQ_INT(a[1], CONVERGENCE_SET_DOWNTIME);
        CHECK_EQ_INT(args[1], 500);
        CHECK_EQ_INT(a[2], CONVERGENCE_ABORT);
}

static void test_auto_converge_then_postcopy(void) {
        ConvergencePolicy p;
        Convergence c;
        uint64_t rem[30];
        ConvergenceAction a[16];
        uint64_t args[16];

        for (size_t i = 0; i < 30; i++)
                rem[i] = 1000;
        convergence_policy_default(&p, UINT64_C(1) << 30);
        p.auto_converge_allowed = true;
        p.postcopy_allowed = true;
        convergence_init(&c, &p, 0);
        size_t k = run(&c, rem, 30, a, args);
        CHECK(k >= 4);
        CHECK_EQ_INT(a[2], CONVERGENCE_AUTO_CONVERGE);
        CHECK_EQ_INT(a[3], CONVERGENCE_POSTCOPY);
        /* Once in post-copy, pre-copy escalation stops. */
        CHECK_EQ_INT(k, 4);
}

static void test_auto_converge_unavailable_is_skipped(void) {
        ConvergencePolicy p;
        Convergence c;
        uint64_t rem[30];
        ConvergenceAction a[16];
        uint64_t args[16];

        for (size_t i = 0; i < 30; i++)
                rem[i] = 1000;
        convergence_policy_default(&p, UINT64_C(1) << 30);
        p.auto_converge_allowed = true;
        convergence_init(&c, &p, 0);
        convergence_auto_converge_unavailable(&c);
        size_t k = run(&c, rem, 30, a, args);
        CHECK(k >= 3);
        CHECK_EQ_INT(a[2], CONVERGENCE_ABORT);
}

static void test_timeouts(void) {
        ConvergencePolicy p;
        Convergence c;
        char why[256];
        uint64_t arg;
        ConvergenceSample s = { .precopy = true, .iteration = 1, .processed = 10, .remaining = 100 };

        convergence_policy_default(&p, UINT64_C(1) << 30);
        convergence_init(&c, &p, 0);
        CHECK_EQ_INT(convergence_next(&c, &s, S(1), &arg, why, sizeof(why)), CONVERGENCE_NONE);
        /* Nothing moves for longer than the progress timeout. */
        CHECK_EQ_INT(convergence_next(&c, &s, S(30), &arg, why, sizeof(why)), CONVERGENCE_NONE);
        CHECK_EQ_INT(convergence_next(&c, &s, S(62), &arg, why, sizeof(why)), CONVERGENCE_ABORT);
        CHECK(strstr(why, "no progress"));

        /* Progress, but too slow overall: 1 GiB gets at least 300 s. */
        convergence_init(&c, &p, 0);
        for (unsigned t = 1; t < 300; t += 10) {
                s.processed += 1;
                CHECK_EQ_INT(convergence_next(&c, &s, S(t), &arg, why, sizeof(why)), CONVERGENCE_NONE);
        }
        s.processed += 1;
        CHECK_EQ_INT(convergence_next(&c, &s, S(301), &arg, why, sizeof(why)), CONVERGENCE_ABORT);
        CHECK(strstr(why, "not completed within 300 s"));
}

int main(void) {
        static const TestCase tests[] = {
                { "a converging guest needs nothing", test_converging_guest_needs_nothing },
                { "downtime ladder, then abort", test_ladder_then_abort },
                { "auto-converge, then post-copy", test_auto_converge_then_postcopy },
                { "unavailable auto-converge is skipped", test_auto_converge_unavailable_is_skipped },
                { "progress and completion timeouts", test_timeouts },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
