/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Unit tests for the ETA of `ferryctl migrate --wait` (eta.c) and the job
 * texts around it (job.c): percentages, the progress line, the lines per
 * state and the end of a job. Table-driven; every failure is reported,
 * the exit code says whether there was one. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eta.h"
#include "job.h"

#define S UINT64_C(1000000)
#define M (UINT64_C(1024) * 1024)
#define G (UINT64_C(1024) * M)

static unsigned failures;

static void check_str(const char *what, const char *got, const char *expected) {
        if (got && streq(got, expected))
                return;
        fprintf(stderr, "FAIL %s:\n  expected: [%s]\n  got:      [%s]\n", what, expected, got ? got : "(null)");
        failures++;
}

static const char *eta_kind_name(EtaKind k) {
        return k == ETA_KNOWN ? "known" : k == ETA_NOT_CONVERGING ? "not converging" : "unknown";
}

static void check_eta(const char *what, Eta got, EtaKind kind, uint64_t usec) {
        if (got.kind == kind && (kind != ETA_KNOWN || got.usec == usec))
                return;
        fprintf(stderr, "FAIL %s:\n  expected: %s %" PRIu64 "us\n  got:      %s %" PRIu64 "us\n",
                what, eta_kind_name(kind), usec, eta_kind_name(got.kind), got.usec);
        failures++;
}

/* A reading per second: remaining, rate, dirty rate. */
typedef struct Reading {
        uint64_t remaining, rate, dirty_rate;
} Reading;

#define MAX_READINGS 6

static void test_eta_estimate(void) {
        static const struct {
                const char *name;
                Reading readings[MAX_READINGS];
                size_t n;
                EtaKind kind;
                uint64_t usec;
        } cases[] = {
                { "no readings", {}, 0, ETA_UNKNOWN, 0 },
                { "one reading", { { 900 * M, 100 * M, 20 * M } }, 1, ETA_UNKNOWN, 0 },
                { "two readings", { { 900 * M, 100 * M, 20 * M }, { 800 * M, 100 * M, 20 * M } }, 2, ETA_UNKNOWN, 0 },
                { "converging: 800M at 100M/s - 20M/s",
                  { { 1000 * M, 100 * M, 20 * M }, { 900 * M, 100 * M, 20 * M }, { 800 * M, 100 * M, 20 * M } }, 3,
                  ETA_KNOWN, 10 * S },
                { "rounding down to the microsecond",
                  { { 3 * G, 3 * M, 0 }, { 2 * G, 3 * M, 0 }, { 1 * G, 3 * M, 0 } }, 3,
                  ETA_KNOWN, UINT64_C(341333333) },
                { "the latest rates count",
                  { { 1000 * M, 10 * M, 50 * M }, { 900 * M, 10 * M, 50 * M }, { 800 * M, 200 * M, 40 * M } }, 3,
                  ETA_KNOWN, 5 * S },
                { "dirtied as fast as sent",
                  { { 1000 * M, 100 * M, 20 * M }, { 900 * M, 100 * M, 20 * M }, { 800 * M, 100 * M, 100 * M } }, 3,
                  ETA_NOT_CONVERGING, 0 },
                { "dirtied faster than sent",
                  { { 1000 * M, 100 * M, 20 * M }, { 900 * M, 100 * M, 20 * M }, { 800 * M, 100 * M, 150 * M } }, 3,
                  ETA_NOT_CONVERGING, 0 },
                { "nothing sent, nothing dirtied",
                  { { 1000 * M, 0, 0 }, { 900 * M, 0, 0 }, { 800 * M, 0, 0 } }, 3,
                  ETA_NOT_CONVERGING, 0 },
                { "remaining grew in the window (rate says converging: it lies)",
                  { { 500 * M, 100 * M, 20 * M }, { 600 * M, 100 * M, 20 * M }, { 400 * M, 100 * M, 20 * M } }, 3,
                  ETA_NOT_CONVERGING, 0 },
                { "remaining grows at the end",
                  { { 500 * M, 100 * M, 20 * M }, { 400 * M, 100 * M, 20 * M }, { 450 * M, 100 * M, 20 * M } }, 3,
                  ETA_NOT_CONVERGING, 0 },
                { "remaining flat",
                  { { 500 * M, 100 * M, 20 * M }, { 500 * M, 100 * M, 20 * M }, { 500 * M, 100 * M, 20 * M } }, 3,
                  ETA_NOT_CONVERGING, 0 },
                { "one flat step, then shrinking",
                  { { 500 * M, 100 * M, 20 * M }, { 500 * M, 100 * M, 20 * M }, { 400 * M, 100 * M, 20 * M } }, 3,
                  ETA_KNOWN, 5 * S },
                { "only the last window counts",
                  { { 100 * M, 1, 2 }, { 900 * M, 1, 2 }, { 2 * G, 1, 2 }, { 700 * M, 100 * M, 20 * M },
                    { 600 * M, 100 * M, 20 * M }, { 400 * M, 100 * M, 20 * M } }, 6,
                  ETA_KNOWN, 5 * S },
                { "a new iteration starts in the window",
                  { { 700 * M, 100 * M, 20 * M }, { 600 * M, 100 * M, 20 * M }, { 100 * M, 100 * M, 20 * M },
                    { 300 * M, 100 * M, 20 * M } }, 4,
                  ETA_NOT_CONVERGING, 0 },
                { "done",
                  { { 200 * M, 100 * M, 20 * M }, { 100 * M, 100 * M, 20 * M }, { 0, 0, 0 } }, 3,
                  ETA_KNOWN, 0 },
                { "beyond 16 TiB: whole seconds, no overflow",
                  { { UINT64_MAX, 1 * G, 0 }, { UINT64_MAX - 1, 1 * G, 0 }, { UINT64_MAX / 2, 1 * G, 0 } }, 3,
                  ETA_KNOWN, (UINT64_MAX / 2) / G * S },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                EtaSample samples[MAX_READINGS];
                char what[128];

                for (size_t k = 0; k < cases[i].n; k++)
                        samples[k] = (EtaSample) {
                                .time_usec = k * S,
                                .remaining = cases[i].readings[k].remaining,
                                .rate = cases[i].readings[k].rate,
                                .dirty_rate = cases[i].readings[k].dirty_rate,
                        };

                snprintf(what, sizeof(what), "eta_estimate: %s", cases[i].name);
                check_eta(what, eta_estimate(samples, cases[i].n), cases[i].kind, cases[i].usec);
        }
}

static void test_eta_history(void) {
        /* time (s), remaining (M), rate, dirty; whether it is recorded. */
        static const struct {
                uint64_t t, remaining, rate, dirty;
                bool recorded;
                EtaKind kind;
        } steps[] = {
                { 0,  1000, 100, 20, true,  ETA_UNKNOWN },
                /* The poll reads what the signal just said: a repeat. */
                { 0,  1000, 100, 20, false, ETA_UNKNOWN },
                { 1,  900,  100, 20, true,  ETA_UNKNOWN },
                { 2,  800,  100, 20, true,  ETA_KNOWN },
                { 3,  800,  100, 20, false, ETA_KNOWN },
                { 6,  800,  100, 20, false, ETA_KNOWN },
                /* No news for ETA_STALL_USEC: a stall, and it counts. */
                { 7,  800,  100, 20, true,  ETA_KNOWN },
                { 12, 800,  100, 20, true,  ETA_NOT_CONVERGING },
                /* Same remaining, other rates: news. */
                { 13, 800,  90,  20, true,  ETA_NOT_CONVERGING },
                { 14, 700,  90,  20, true,  ETA_KNOWN },
        };
        EtaHistory h;

        eta_history_reset(&h);
        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                EtaSample s = {
                        .time_usec = steps[i].t * S,
                        .remaining = steps[i].remaining * M,
                        .rate = steps[i].rate * M,
                        .dirty_rate = steps[i].dirty * M,
                };
                char what[64];
                bool recorded;
                Eta eta;

                recorded = eta_history_add(&h, &s);
                if (recorded != steps[i].recorded) {
                        fprintf(stderr, "FAIL eta_history_add step %zu: recorded %d, expected %d\n",
                                i, recorded, steps[i].recorded);
                        failures++;
                }
                if (h.n > ETA_WINDOW) {
                        fprintf(stderr, "FAIL eta_history_add step %zu: %zu samples kept\n", i, h.n);
                        failures++;
                }

                eta = eta_history_estimate(&h);
                snprintf(what, sizeof(what), "eta_history step %zu", i);
                check_eta(what, eta, steps[i].kind, eta.usec);
        }

        eta_history_reset(&h);
        check_eta("eta_history after reset", eta_history_estimate(&h), ETA_UNKNOWN, 0);
}

/* A job from a compact description; strings are copied. */
typedef struct JobSpec {
        const char *state, *phase, *error;
        uint64_t queue_position, total, processed, remaining, rate, dirty_rate, iteration, downtime_ms;
        uint64_t started_at, finished_at;
        bool cancel_requested;
} JobSpec;

static void set_string(JobInfo *j, size_t field, const char *s) {
        if (!s)
                return;
        j->values[field] = (Value) { .type = VALUE_STRING, .str = strdup(s) };
        if (!j->values[field].str) {
                perror("strdup");
                exit(EXIT_FAILURE);
        }
}

static void set_uint(JobInfo *j, size_t field, uint64_t u) {
        j->values[field] = (Value) { .type = VALUE_UINT, .u = u };
}

static void job_from_spec(JobInfo *j, const JobSpec *s) {
        *j = (JobInfo) {};
        set_uint(j, JOB_ID, 17);
        set_string(j, JOB_VM, "web1");
        set_string(j, JOB_SOURCE, "node1");
        set_string(j, JOB_DESTINATION, "node2");
        set_string(j, JOB_STATE, s->state);
        set_string(j, JOB_PHASE, s->phase);
        set_string(j, JOB_ERROR, s->error ? s->error : "");
        set_uint(j, JOB_QUEUE_POSITION, s->queue_position);
        set_uint(j, JOB_MEMORY_TOTAL, s->total);
        set_uint(j, JOB_MEMORY_PROCESSED, s->processed);
        set_uint(j, JOB_MEMORY_REMAINING, s->remaining);
        set_uint(j, JOB_RATE, s->rate);
        set_uint(j, JOB_DIRTY_RATE, s->dirty_rate);
        set_uint(j, JOB_ITERATION, s->iteration);
        set_uint(j, JOB_DOWNTIME_MS, s->downtime_ms);
        set_uint(j, JOB_STARTED_AT, s->started_at);
        set_uint(j, JOB_FINISHED_AT, s->finished_at);
        j->values[JOB_CANCEL_REQUESTED] = (Value) { .type = VALUE_BOOL, .b = s->cancel_requested };
}

static void test_job_percent(void) {
        static const struct {
                JobSpec spec;
                int percent;
        } cases[] = {
                { { .state = "queued" },                                           -1 },
                { { .state = "running", .total = 4 * G, .processed = 0 },            0 },
                { { .state = "running", .total = 4 * G, .processed = 1 * G },        25 },
                { { .state = "running", .total = 3, .processed = 2 },                66 },
                /* Pages sent twice: processed passes the total. */
                { { .state = "running", .total = 4 * G, .processed = 6 * G },        99 },
                { { .state = "running", .total = 4 * G, .processed = 4 * G },        99 },
                { { .state = "completed" },                                          100 },
                { { .state = "running", .total = UINT64_MAX, .processed = UINT64_MAX / 2 }, 50 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(job_info_done) JobInfo j;
                int got;

                job_from_spec(&j, &cases[i].spec);
                got = job_percent(&j);
                if (got != cases[i].percent) {
                        fprintf(stderr, "FAIL job_percent case %zu: expected %d, got %d\n", i, cases[i].percent, got);
                        failures++;
                }
        }
}

static void test_job_lines(void) {
        static const struct {
                JobSpec spec;
                Eta eta;
                const char *state_line, *progress_line, *result_line;
        } cases[] = {
                { { .state = "queued", .phase = "none", .queue_position = 2 }, { ETA_UNKNOWN, 0 },
                  "queued (position 2)",
                  "queued (position 2)",
                  "migration of web1 from node1 to node2 is queued" },
                { { .state = "queued", .phase = "none", .queue_position = 1, .cancel_requested = true }, { ETA_UNKNOWN, 0 },
                  "queued (position 1), cancel requested",
                  "queued (position 1), cancel requested",
                  "migration of web1 from node1 to node2 is queued" },
                { { .state = "granted", .phase = "none" }, { ETA_UNKNOWN, 0 },
                  "granted", "granted",
                  "migration of web1 from node1 to node2 is granted" },
                { { .state = "running", .phase = "setup" }, { ETA_UNKNOWN, 0 },
                  "running/setup", "running/setup",
                  "migration of web1 from node1 to node2 is running" },
                { { .state = "running", .phase = "precopy", .total = 4 * G, .processed = 1844 * M,
                    .remaining = 2253 * M, .rate = 112 * M, .dirty_rate = 8 * M, .iteration = 2 }, { ETA_UNKNOWN, 0 },
                  "running/precopy",
                  "running/precopy  45%  ETA -  sent 1.8G of 4.0G  left 2.2G  112.0M/s  dirty 8.0M/s  iteration 2",
                  "migration of web1 from node1 to node2 is running" },
                { { .state = "running", .phase = "precopy", .total = 4 * G, .processed = 1844 * M,
                    .remaining = 2253 * M, .rate = 112 * M, .dirty_rate = 8 * M, .iteration = 2 }, { ETA_KNOWN, 21 * S + 600000 },
                  "running/precopy",
                  "running/precopy  45%  ETA 21s  sent 1.8G of 4.0G  left 2.2G  112.0M/s  dirty 8.0M/s  iteration 2",
                  "migration of web1 from node1 to node2 is running" },
                { { .state = "running", .phase = "precopy", .total = 4 * G, .processed = 6 * G,
                    .remaining = 3 * G, .rate = 100 * M, .dirty_rate = 300 * M, .iteration = 9,
                    .cancel_requested = true }, { ETA_NOT_CONVERGING, 0 },
                  "running/precopy, cancel requested",
                  "running/precopy, cancel requested  99%  ETA not converging  sent 6.0G of 4.0G  left 3.0G  100.0M/s  dirty 300.0M/s  iteration 9",
                  "migration of web1 from node1 to node2 is running" },
                { { .state = "completed", .phase = "done", .total = 4 * G, .processed = 4 * G, .downtime_ms = 45,
                    .started_at = 1000 * S, .finished_at = 1072 * S }, { ETA_UNKNOWN, 0 },
                  "completed/done", "completed/done",
                  "web1 migrated from node1 to node2 in 1min 12s, downtime 45 ms" },
                { { .state = "completed", .phase = "done", .downtime_ms = 0, .started_at = 0, .finished_at = 5 * S },
                  { ETA_UNKNOWN, 0 },
                  "completed/done", "completed/done",
                  "web1 migrated from node1 to node2, downtime 0 ms" },
                { { .state = "failed", .phase = "precopy", .error = "libvirt: connection reset by peer",
                    .cancel_requested = true }, { ETA_UNKNOWN, 0 },
                  "failed/precopy", "failed/precopy",
                  "migration of web1 from node1 to node2 failed: libvirt: connection reset by peer" },
                { { .state = "cancelled", .phase = "none", .error = "" }, { ETA_UNKNOWN, 0 },
                  "cancelled", "cancelled",
                  "migration of web1 from node1 to node2 cancelled" },
                { { .state = "cancelled", .phase = "precopy", .error = "cancelled by root on node1" }, { ETA_UNKNOWN, 0 },
                  "cancelled/precopy", "cancelled/precopy",
                  "migration of web1 from node1 to node2 cancelled: cancelled by root on node1" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(job_info_done) JobInfo j;
                _cleanup_free_ char *state = NULL, *progress = NULL, *result = NULL;
                char what[64];

                job_from_spec(&j, &cases[i].spec);
                state = job_state_line(&j);
                progress = job_progress_line(&j, cases[i].eta, "-");
                result = job_result_line(&j);

                snprintf(what, sizeof(what), "job_state_line case %zu", i);
                check_str(what, state, cases[i].state_line);
                snprintf(what, sizeof(what), "job_progress_line case %zu", i);
                check_str(what, progress, cases[i].progress_line);
                snprintf(what, sizeof(what), "job_result_line case %zu", i);
                check_str(what, result, cases[i].result_line);
        }
}

static void test_job_summary(void) {
        _cleanup_(job_info_done) JobInfo j, empty = {};
        _cleanup_free_ char *a = NULL, *b = NULL;
        static const JobSpec spec = { .state = "queued", .phase = "none" };

        job_from_spec(&j, &spec);
        a = job_summary_line(&j, "->");
        check_str("job_summary_line", a, "job 17: web1 node1 -> node2 queued");

        /* A ferryd that sent nothing still gives a readable line. */
        b = job_summary_line(&empty, "->");
        check_str("job_summary_line without properties", b, "job 0: - - -> - -");
}

static void test_job_brief(void) {
        static const struct {
                JobSpec spec;
                const char *line;
        } cases[] = {
                { { .state = "queued", .phase = "none", .queue_position = 3 }, "job 17: web1 -> node2  queued (position 3)" },
                { { .state = "granted", .phase = "none" }, "job 17: web1 -> node2  granted" },
                { { .state = "running", .phase = "setup" }, "job 17: web1 -> node2  running/setup" },
                { { .state = "running", .phase = "precopy", .total = 4 * G, .processed = 1844 * M, .rate = 112 * M },
                  "job 17: web1 -> node2  running/precopy  45%  112.0M/s" },
                { { .state = "running", .phase = "precopy", .total = 4 * G, .processed = 1844 * M },
                  "job 17: web1 -> node2  running/precopy  45%" },
                { { .state = "completed", .phase = "done", .total = 4 * G, .processed = 4 * G, .rate = 112 * M },
                  "job 17: web1 -> node2  completed/done" },
        };
        _cleanup_(job_info_done) JobInfo empty = {};
        _cleanup_free_ char *e = NULL;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(job_info_done) JobInfo j;
                _cleanup_free_ char *line = NULL;
                char what[64];

                job_from_spec(&j, &cases[i].spec);
                line = job_brief_line(&j, "->");
                snprintf(what, sizeof(what), "job_brief_line case %zu", i);
                check_str(what, line, cases[i].line);
        }

        e = job_brief_line(&empty, "->");
        check_str("job_brief_line without properties", e, "job 0: - -> -  -");
}

int main(void) {
        test_eta_estimate();
        test_eta_history();
        test_job_percent();
        test_job_lines();
        test_job_summary();
        test_job_brief();

        if (failures > 0) {
                fprintf(stderr, "%u check(s) failed\n", failures);
                return EXIT_FAILURE;
        }
        printf("all checks passed\n");
        return EXIT_SUCCESS;
}
