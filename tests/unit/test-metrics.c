/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Metrics: what the events add up to, and that the text is valid
 * Prometheus exposition format (every family with HELP and TYPE before its
 * samples, histogram buckets cumulative up to +Inf, _count equal to the
 * +Inf bucket); metrics_file written atomically. */

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <unistd.h>

#include "cluster-state.h"
#include "macro.h"
#include "metrics.h"
#include "test-util.h"

static Event job_event(const char *type, uint64_t duration_usec, uint64_t downtime_ms, uint64_t bytes) {
        Event e = { .type = type };
        e.fields[e.n_fields++] = (EventField) { .key = "job", .type = 't', .u = 1 };
        if (duration_usec > 0)
                e.fields[e.n_fields++] = (EventField) { .key = "duration_usec", .type = 't', .u = duration_usec };
        if (streq(type, EVENT_JOB_COMPLETED))
                e.fields[e.n_fields++] = (EventField) { .key = "downtime_ms", .type = 't', .u = downtime_ms };
        e.fields[e.n_fields++] = (EventField) { .key = "bytes", .type = 't', .u = bytes };
        return e;
}

static bool has_line(const char *text, const char *line) {
        size_t n = strlen(line);
        for (const char *p = text; (p = strstr(p, line)); p += n)
                if ((p == text || p[-1] == '\n') && p[n] == '\n')
                        return true;
        return false;
}

/* The family a sample belongs to: its name, less a histogram's suffix. */
static void family_of(const char *name, const char *types, char *out, size_t len) {
        snprintf(out, len, "%s", name);
        static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t n = strlen(out), k = strlen(suffixes[i]);
                if (n > k && streq(out + n - k, suffixes[i])) {
                        char base[128], needle[160];
                        snprintf(base, sizeof(base), "%.*s", (int) (n - k), out);
                        snprintf(needle, sizeof(needle), "\n%s histogram\n", base);
                        if (strstr(types, needle))
                                snprintf(out, len, "%s", base);
                }
        }
}

/* A validator of the text format, as the cluster test's awk one. */
static void check_exposition(const char *text) {
        char types[8192] = "\n", helps[8192] = "\n";
        char last_family[128] = "";
        uint64_t last_bucket = 0, inf = 0;
        bool in_histogram = false, saw_inf = false;

        CHECK(*text && text[strlen(text) - 1] == '\n');
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                char line[512];
                CHECK(nl && (size_t) (nl - p) < sizeof(line));
                snprintf(line, sizeof(line), "%.*s", (int) (nl - p), p);
                p = nl + 1;

                char name[128], kind[32], rest[384];
                if (sscanf(line, "# HELP %127s %383[^\n]", name, rest) == 2) {
                        CHECK(strlen(helps) + strlen(name) + 2 < sizeof(helps));
                        strcat(helps, name);
                        strcat(helps, "\n");
                        continue;
                }
                if (sscanf(line, "# TYPE %127s %31s", name, kind) == 2) {
                        char h[160];
                        snprintf(h, sizeof(h), "\n%s\n", name);
                        CHECK(strstr(helps, h));                /* HELP first */
                        CHECK(streq(kind, "counter") || streq(kind, "gauge") || streq(kind, "histogram"));
                        CHECK(strlen(types) + strlen(name) + strlen(kind) + 3 < sizeof(types));
                        strcat(types, name);
                        strcat(types, " ");
                        strcat(types, kind);
                        strcat(types, "\n");
                        continue;
                }
                CHECK(line[0] != '#');

                /* name{labels} value */
                char labels[256] = "", value[64];
                if (sscanf(line, "%127[a-zA-Z0-9_:]{%255[^}]} %63s", name, labels, value) != 3)
                        CHECK_EQ_INT(sscanf(line, "%127[a-zA-Z0-9_:] %63s", name, value), 2);
                char *end;
                (void) strtod(value, &end);
                CHECK(*end == 0 || streq(value, "+Inf"));

                char fam[128];
                family_of(name, types, fam, sizeof(fam));
                char t[160];
                snprintf(t, sizeof(t), "\n%s ", fam);
                CHECK(strstr(types, t));                       /* TYPE before the samples */

                if (!streq(fam, last_family)) {
                        CHECK(!in_histogram || saw_inf);
                        snprintf(last_family, sizeof(last_family), "%s", fam);
                        in_histogram = !streq(fam, name) || strstr(name, "_bucket");
                        last_bucket = 0;
                        saw_inf = false;
                }
                if (strstr(name, "_bucket") && !streq(fam, name)) {
                        uint64_t v = strtoull(value, NULL, 10);
                        CHECK(v >= last_bucket);                /* cumulative */
                        last_bucket = v;
                        if (streq(labels, "le=\"+Inf\"")) {
                                saw_inf = true;
                                inf = v;
                        }
                } else if (strstr(name, "_count") && !streq(fam, name)) {
                        CHECK(saw_inf);
                        CHECK_EQ_INT(strtoull(value, NULL, 10), inf);
                }
        }
        CHECK(!in_histogram || saw_inf);
}

static void test_counts_and_format(void) {
        MetricsCounters m = { .start_time_usec = 1700000000123456 };
        Event e;

        e = job_event(EVENT_JOB_QUEUED, 0, 0, 0);
        metrics_observe(&m, &e);
        e = job_event(EVENT_JOB_RUNNING, 0, 0, 0);
        metrics_observe(&m, &e);
        e = job_event(EVENT_JOB_COMPLETED, 2500000, 42, 1000);
        metrics_observe(&m, &e);
        e = job_event(EVENT_JOB_COMPLETED, 90000000, 300, 2000);
        metrics_observe(&m, &e);
        e = job_event(EVENT_JOB_FAILED, 1000000, 0, 10);
        metrics_observe(&m, &e);
        e = job_event(EVENT_JOB_CANCELLED, 0, 0, 0);
        metrics_observe(&m, &e);
        e = (Event) { .type = EVENT_NODE_LEFT };
        metrics_observe(&m, &e);
        e = (Event) { .type = EVENT_NODE_JOINED };
        metrics_observe(&m, &e);
        e = (Event) { .type = EVENT_MAINTENANCE_ON };
        metrics_observe(&m, &e);

        CHECK_EQ_INT(m.events, 9);
        CHECK_EQ_INT(m.migrations_succeeded, 2);
        CHECK_EQ_INT(m.migrations_failed, 1);
        CHECK_EQ_INT(m.migrations_cancelled, 1);
        CHECK_EQ_INT(m.bytes, 3010);
        CHECK_EQ_INT(m.membership_changes, 2);
        CHECK_EQ_INT(m.duration.count, 2);

        ClusterState *s = cluster_state_new();
        s->commit = 77;
        MetricsView v = { .state = s, .quorate = true, .members = 3, .nodes = 4, .version = "1.2\"3" };
        char *text = metrics_render(&m, &v);
        CHECK(text);
        check_exposition(text);

        CHECK(has_line(text, "ferry_build_info{version=\"1.2\\\"3\"} 1"));
        CHECK(has_line(text, "ferry_daemon_start_time_seconds 1700000000.123456"));
        CHECK(has_line(text, "ferry_quorate 1"));
        CHECK(has_line(text, "ferry_members 3"));
        CHECK(has_line(text, "ferry_nodes 4"));
        CHECK(has_line(text, "ferry_state_commit 77"));
        CHECK(has_line(text, "ferry_jobs_queued 0"));
        CHECK(has_line(text, "# TYPE ferry_migrations_succeeded_total counter"));
        CHECK(has_line(text, "ferry_migrations_started_total 1"));
        CHECK(has_line(text, "ferry_migrations_succeeded_total 2"));
        CHECK(has_line(text, "ferry_migrations_failed_total 1"));
        CHECK(has_line(text, "ferry_migrations_cancelled_total 1"));
        CHECK(has_line(text, "ferry_migration_bytes_total 3010"));
        CHECK(has_line(text, "ferry_membership_changes_total 2"));
        CHECK(has_line(text, "# TYPE ferry_migration_duration_seconds histogram"));
        CHECK(has_line(text, "ferry_migration_duration_seconds_bucket{le=\"1\"} 0"));
        CHECK(has_line(text, "ferry_migration_duration_seconds_bucket{le=\"5\"} 1"));
        CHECK(has_line(text, "ferry_migration_duration_seconds_bucket{le=\"60\"} 1"));
        CHECK(has_line(text, "ferry_migration_duration_seconds_bucket{le=\"120\"} 2"));
        CHECK(has_line(text, "ferry_migration_duration_seconds_bucket{le=\"+Inf\"} 2"));
        CHECK(has_line(text, "ferry_migration_duration_seconds_sum 92.500000"));
        CHECK(has_line(text, "ferry_migration_duration_seconds_count 2"));
        CHECK(has_line(text, "ferry_migration_downtime_seconds_bucket{le=\"0.025\"} 0"));
        CHECK(has_line(text, "ferry_migration_downtime_seconds_bucket{le=\"0.05\"} 1"));
        CHECK(has_line(text, "ferry_migration_downtime_seconds_bucket{le=\"0.25\"} 1"));
        CHECK(has_line(text, "ferry_migration_downtime_seconds_bucket{le=\"0.5\"} 2"));
        CHECK(has_line(text, "ferry_migration_downtime_seconds_sum 0.342000"));
        free(text);

        /* Before the replica exists: zeros, still valid. */
        v = (MetricsView) { .version = "x" };
        text = metrics_render(&(MetricsCounters) {}, &v);
        CHECK(text);
        check_exposition(text);
        CHECK(has_line(text, "ferry_vms 0"));
        free(text);
        cluster_state_free(s);
}

static void test_write_file(void) {
        char dir[] = "/tmp/test-metrics.XXXXXX", path[256];
        CHECK(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/ferry.prom", dir);

        CHECK_EQ_INT(metrics_write_file(path, "a 1\n"), 0);
        CHECK_EQ_INT(metrics_write_file(path, "a 2\n"), 0);
        FILE *f = fopen(path, "re");
        CHECK(f);
        char buf[64] = "";
        CHECK(fgets(buf, sizeof(buf), f));
        fclose(f);
        CHECK_STREQ(buf, "a 2\n");

        /* No temporary file is left behind. */
        DIR *dh = opendir(dir);
        CHECK(dh);
        unsigned n = 0;
        for (struct dirent *de; (de = readdir(dh));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        n++;
        closedir(dh);
        CHECK_EQ_INT(n, 1);

        char missing[300];
        snprintf(missing, sizeof(missing), "%s/nosuchdir/ferry.prom", dir);
        CHECK_EQ_INT(metrics_write_file(missing, "a 1\n"), -ENOENT);
        CHECK_EQ_INT(metrics_write_file("relative.prom", "a 1\n"), -EINVAL);

        CHECK_EQ_INT(unlink(path), 0);
        CHECK_EQ_INT(rmdir(dir), 0);
}

int main(void) {
        static const TestCase tests[] = {
                { "counts and exposition format", test_counts_and_format },
                { "metrics_file written atomically", test_write_file },
        };
        return run_tests(tests, ELEMENTSOF(tests));
}
