/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <syslog.h>

#include "config.h"
#include "facts.h"
#include "strutil.h"
#include "test-util.h"

typedef struct Errors {
        unsigned count;
        unsigned last_line;
        char last[512];
} Errors;

static void collect(const char *file, unsigned line, const char *message, void *userdata) {
        Errors *e = userdata;
        e->count++;
        e->last_line = line;
        snprintf(e->last, sizeof(e->last), "%s", message);
}

static void test_defaults_and_values(void) {
        FerryConfig c;
        Errors e = {};

        config_init_defaults(&c);
        CHECK(c.host_memory_reserve == UINT64_C(2) << 30);
        CHECK_EQ_INT(c.max_outgoing_migrations, 2);
        CHECK_EQ_INT(c.max_incoming_migrations, 2);
        CHECK_EQ_INT(c.max_cluster_migrations, 0);
        CHECK_STREQ(c.metrics_file, "");
        CHECK_EQ_INT(c.metrics_interval_sec, 15);
        CHECK_EQ_INT(config_load_string(&c,
                "# comment\n"
                "\n"
                "  plugin_dir = /opt/ferry/plugins  \n"
                "state_dir=/var/tmp/ferry\n"
                "host_memory_reserve = 1.5G\n"
                "max_outgoing_migrations = 3\n"
                "max_incoming_migrations = 4\n"
                "max_cluster_migrations = 8\n"
                "log_level = debug\n"
                "log_syslog = yes\n"
                "facts_interval = 10\n"
                "downtime_steps = 200, 500,1000\n"
                "stall_rounds = 3\n"
                "metrics_file = /var/lib/prometheus/node-exporter/ferry.prom\n"
                "metrics_interval = 60\n", "test.conf", collect, &e), 0);
        CHECK_EQ_INT(e.count, 0);
        CHECK_STREQ(c.plugin_dir, "/opt/ferry/plugins");
        CHECK_STREQ(c.state_dir, "/var/tmp/ferry");
        CHECK(c.host_memory_reserve == (UINT64_C(3) << 30) / 2);
        CHECK_EQ_INT(c.max_outgoing_migrations, 3);
        CHECK_EQ_INT(c.max_incoming_migrations, 4);
        CHECK_EQ_INT(c.max_cluster_migrations, 8);
        CHECK_EQ_INT(c.log_level, LOG_DEBUG);
        CHECK(c.log_syslog);
        CHECK_EQ_INT(c.facts_interval_sec, 10);
        CHECK_EQ_INT(c.n_downtime_steps, 3);
        CHECK_EQ_INT(c.downtime_steps_ms[0], 200);
        CHECK_EQ_INT(c.downtime_steps_ms[2], 1000);
        CHECK_EQ_INT(c.stall_rounds, 3);
        CHECK_STREQ(c.metrics_file, "/var/lib/prometheus/node-exporter/ferry.prom");
        CHECK_EQ_INT(c.metrics_interval_sec, 60);
        /* Empty turns the metrics file off again. */
        CHECK_EQ_INT(config_load_string(&c, "metrics_file =\n", "test.conf", collect, &e), 0);
        CHECK_STREQ(c.metrics_file, "");
        config_done(&c);
}

static void test_errors_have_lines(void) {
        static const struct {
                const char *text;
                unsigned line;
                const char *contains;
        } cases[] = {
                { "bogus = 1\n", 1, "unknown key \"bogus\"" },
                { "\n\nhost_memory_reserve = lots\n", 3, "host_memory_reserve" },
                { "max_outgoing_migrations = 0\n", 1, "positive" },
                { "max_incoming_migrations = -1\n", 1, "max_incoming_migrations" },
                { "plugin_dir = relative/path\n", 1, "absolute" },
                { "log_level = loud\n", 1, "log_level" },
                { "just words\n", 1, "key = value" },
                { "facts_interval = 99999999999\n", 1, "facts_interval" },
                { "downtime_steps = 500,300\n", 1, "increasing" },
                { "downtime_steps = \n", 1, "downtime_steps" },
                { "metrics_file = ferry.prom\n", 1, "absolute" },
                { "metrics_interval = 0\n", 1, "metrics_interval" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                FerryConfig c;
                Errors e = {};
                config_init_defaults(&c);
                uint32_t before = c.max_outgoing_migrations;
                CHECK_EQ_INT(config_load_string(&c, cases[i].text, "t.conf", collect, &e), -EINVAL);
                CHECK_EQ_INT(e.count, 1);
                CHECK_EQ_INT(e.last_line, cases[i].line);
                if (!strstr(e.last, cases[i].contains)) {
                        fprintf(stderr, "case %zu: \"%s\" does not mention \"%s\"\n", i, e.last, cases[i].contains);
                        exit(1);
                }
                /* A refused value leaves the setting alone. */
                CHECK_EQ_INT(c.max_outgoing_migrations, before);
                config_done(&c);
        }

        /* Every bad line is reported, not just the first. */
        FerryConfig c;
        Errors e = {};
        config_init_defaults(&c);
        CHECK_EQ_INT(config_load_string(&c, "a = 1\nb = 2\nlog_level = info\nc = 3\n", "t.conf", collect, &e), -EINVAL);
        CHECK_EQ_INT(e.count, 3);
        CHECK_EQ_INT(e.last_line, 4);
        config_done(&c);
}

static void test_parse_size(void) {
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } cases[] = {
                { "0", 0, 0 },
                { "512", 0, 512 },
                { "4K", 0, 4096 },
                { "2G", 0, UINT64_C(2) << 30 },
                { "2GiB", 0, UINT64_C(2) << 30 },
                { "2 GB", 0, UINT64_C(2) << 30 },
                { "0.5M", 0, UINT64_C(1) << 19 },
                { "1T", 0, UINT64_C(1) << 40 },
                { "", -EINVAL, 0 },
                { "G", -EINVAL, 0 },
                { "1X", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "99999999999999999999", -ERANGE, 0 },
                { "99999999999T", -ERANGE, 0 },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                uint64_t v = 12345;
                int r = parse_size(cases[i].s, &v);
                if (r != cases[i].r || (r == 0 && v != cases[i].v)) {
                        fprintf(stderr, "parse_size(\"%s\") = %d, %llu\n", cases[i].s, r, (unsigned long long) v);
                        exit(1);
                }
                if (r < 0)
                        CHECK(v == 12345);
        }
        char buf[32];
        CHECK_STREQ(format_size(buf, sizeof(buf), 512), "512");
        CHECK_STREQ(format_size(buf, sizeof(buf), UINT64_C(3) << 30), "3.0G");
}

static void test_cpuinfo(void) {
        char *vendor, *model, *features;
        CHECK_EQ_INT(facts_parse_cpuinfo(
                "processor\t: 0\n"
                "vendor_id\t: GenuineIntel\n"
                "model name\t: Intel(R) Xeon(R) Gold\n"
                "flags\t\t: sse2 avx fpu avx\n"
                "\n"
                "processor\t: 1\n"
                "vendor_id\t: Other\n", &vendor, &model, &features), 0);
        CHECK_STREQ(vendor, "GenuineIntel");
        CHECK_STREQ(model, "Intel(R) Xeon(R) Gold");
        CHECK_STREQ(features, "avx fpu sse2");  /* sorted, unique */
        free(vendor);
        free(model);
        free(features);

        CHECK_EQ_INT(facts_parse_cpuinfo("", &vendor, &model, &features), 0);
        CHECK_STREQ(vendor, "unknown");
        free(vendor);
        free(model);
        free(features);
}

static void test_facts_significance(void) {
        NodeFacts a = { .name = (char *) "n", .memory_total = UINT64_C(64) << 30, .memory_free = UINT64_C(10) << 30 };
        NodeFacts b = a;

        b.updated_at = 99;
        CHECK(!facts_differ_significantly(&a, &b));
        b.memory_free += UINT64_C(100) << 20;   /* 100 MiB of 64 GiB: noise */
        CHECK(!facts_differ_significantly(&a, &b));
        b.memory_free += UINT64_C(2) << 30;     /* 2 GiB: worth a commit */
        CHECK(facts_differ_significantly(&a, &b));
        b = a;
        b.cpus = 3;
        CHECK(facts_differ_significantly(&a, &b));
}

/* SIGHUP: run-time keys are taken, restart-only keys named and kept. */
static void test_reload(void) {
        FerryConfig cur, next;
        char restart[256];

        config_init_defaults(&cur);
        config_init_defaults(&next);
        CHECK_EQ_INT(config_reload(&cur, &next, restart, sizeof(restart)), 0);
        CHECK_STREQ(restart, "");

        CHECK_EQ_INT(config_load_string(&next, "stall_rounds = 7\ndowntime_steps = 100,200\nbackend = sim\n"
                                        "migration_address = 10.0.0.9\nstate_dir = /srv/ferry\n", "next.conf",
                                        NULL, NULL), 0);
        CHECK_EQ_INT(config_reload(&cur, &next, restart, sizeof(restart)), 3);
        CHECK_EQ_INT(cur.stall_rounds, 7);
        CHECK_EQ_INT(cur.n_downtime_steps, 2);
        CHECK_EQ_INT(cur.downtime_steps_ms[1], 200);
        CHECK_STREQ(cur.migration_address, "10.0.0.9");
        CHECK_STREQ(cur.backend, "none");               /* kept until a restart */
        CHECK(strstr(restart, "backend") && strstr(restart, "state_dir"));
        /* Again: nothing left to change. */
        CHECK_EQ_INT(config_reload(&cur, &next, restart, sizeof(restart)), 0);
        config_done(&cur);
        config_done(&next);
}

int main(void) {
        static const TestCase tests[] = {
                { "reload takes run-time keys only", test_reload },
                { "config defaults and values", test_defaults_and_values },
                { "config errors name file and line", test_errors_have_lines },
                { "parse_size", test_parse_size },
                { "cpuinfo parsing", test_cpuinfo },
                { "facts significance", test_facts_significance },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
