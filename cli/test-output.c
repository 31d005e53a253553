/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Unit tests for what ferryctl prints: JSON escaping and structure, times
 * for humans, the table printer and value formatting (sizes come from
 * format_size() in common/, tested with it). Table-driven;
 * every failure is reported, the exit code says whether there was one. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "node.h"
#include "output.h"
#include "value.h"

static unsigned failures;

static void check_str(const char *what, const char *got, const char *expected) {
        if (got && streq(got, expected))
                return;
        fprintf(stderr, "FAIL %s:\n  expected: [%s]\n  got:      [%s]\n", what, expected, got ? got : "(null)");
        failures++;
}

/* Runs f(stream, arg) into a memory stream and returns what it wrote. */
static char *capture(void (*f)(FILE *, const void *), const void *arg) {
        char *buf = NULL;
        size_t size = 0;
        FILE *m;

        m = open_memstream(&buf, &size);
        if (!m) {
                perror("open_memstream");
                exit(EXIT_FAILURE);
        }
        f(m, arg);
        if (fclose(m) != 0) {
                perror("fclose");
                exit(EXIT_FAILURE);
        }
        return buf;
}

static void write_string(FILE *f, const void *s) {
        json_write_string(f, s);
}

static void test_json_string(void) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "",                     "\"\"" },
                { "node1",                "\"node1\"" },
                { "a\"b",                 "\"a\\\"b\"" },
                { "back\\slash",          "\"back\\\\slash\"" },
                { "/",                    "\"/\"" },
                { "\b\f\n\r\t",           "\"\\b\\f\\n\\r\\t\"" },
                { "\x01\x1f",             "\"\\u0001\\u001f\"" },
                { "\x1b[31m",             "\"\\u001b[31m\"" },
                { "del\x7f",              "\"del\\u007f\"" },
                /* Valid UTF-8 passes through untouched. */
                { "caf\xc3\xa9",          "\"caf\xc3\xa9\"" },
                { "\xe2\x82\xac",         "\"\xe2\x82\xac\"" },
                { "\xf0\x9f\x98\x80",     "\"\xf0\x9f\x98\x80\"" },
                { "\xf4\x8f\xbf\xbf",     "\"\xf4\x8f\xbf\xbf\"" },
                /* Invalid UTF-8 becomes U+FFFD, byte by byte. */
                { "\xff",                 "\"\\ufffd\"" },
                { "a\xc3",                "\"a\\ufffd\"" },
                { "\xc3(",                "\"\\ufffd(\"" },
                { "\xc0\xaf",             "\"\\ufffd\\ufffd\"" },      /* overlong "/" */
                { "\xe0\x80\xaf",         "\"\\ufffd\\ufffd\\ufffd\"" }, /* overlong "/" */
                { "\xed\xa0\x80",         "\"\\ufffd\\ufffd\\ufffd\"" }, /* surrogate */
                { "\xf4\x90\x80\x80",     "\"\\ufffd\\ufffd\\ufffd\\ufffd\"" }, /* above U+10FFFF */
                { "\x80",                 "\"\\ufffd\"" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *got = capture(write_string, cases[i].in);
                char what[64];

                snprintf(what, sizeof(what), "json_write_string case %zu", i);
                check_str(what, got, cases[i].out);
        }
}

/* {"a": [1, -2, "x", {}, true, null, 0.5], "b": [], "c": {"d": null}} */
static void write_document(FILE *f, const void *pretty) {
        JsonWriter w;

        json_init(&w, f, *(const bool *) pretty);
        json_begin_object(&w);
        json_key(&w, "a");
        json_begin_array(&w);
        json_uint(&w, 1);
        json_int(&w, -2);
        json_string(&w, "x");
        json_begin_object(&w);
        json_end_object(&w);
        json_bool(&w, true);
        json_string(&w, NULL);
        json_double(&w, 0.5);
        json_end_array(&w);
        json_key(&w, "b");
        json_begin_array(&w);
        json_end_array(&w);
        json_key(&w, "c");
        json_begin_object(&w);
        json_key(&w, "d");
        json_null(&w);
        json_end_object(&w);
        json_end_object(&w);
        (void) json_finish(&w);
}

static void write_top_level_array(FILE *f, const void *pretty) {
        JsonWriter w;

        json_init(&w, f, *(const bool *) pretty);
        json_begin_array(&w);
        json_uint(&w, UINT64_MAX);
        json_int(&w, INT64_MIN);
        json_end_array(&w);
        (void) json_finish(&w);
}

static void test_json_writer(void) {
        static const bool compact = false, pretty = true;
        _cleanup_free_ char *c = NULL, *p = NULL, *a = NULL, *ap = NULL;

        c = capture(write_document, &compact);
        check_str("json compact", c,
                  "{\"a\": [1, -2, \"x\", {}, true, null, 0.5], \"b\": [], \"c\": {\"d\": null}}\n");

        p = capture(write_document, &pretty);
        check_str("json pretty", p,
                  "{\n"
                  "  \"a\": [\n"
                  "    1,\n"
                  "    -2,\n"
                  "    \"x\",\n"
                  "    {},\n"
                  "    true,\n"
                  "    null,\n"
                  "    0.5\n"
                  "  ],\n"
                  "  \"b\": [],\n"
                  "  \"c\": {\n"
                  "    \"d\": null\n"
                  "  }\n"
                  "}\n");

        a = capture(write_top_level_array, &compact);
        check_str("json integer limits", a, "[18446744073709551615, -9223372036854775808]\n");

        ap = capture(write_top_level_array, &pretty);
        check_str("json pretty array", ap, "[\n  18446744073709551615,\n  -9223372036854775808\n]\n");
}

static void test_format_time(void) {
        static const uint64_t S = UINT64_C(1000000);
        static const uint64_t now = UINT64_C(1700000000) * UINT64_C(1000000);
        static const struct {
                uint64_t then;
                const char *out;
        } cases[] = {
                { now,                     "just now" },
                { now - S / 2,             "just now" },
                { now - 12 * S,            "12s ago" },
                { now - 59 * S,            "59s ago" },
                { now - 60 * S,            "1min ago" },
                { now - 3599 * S,          "59min ago" },
                { now - 3 * 3600 * S,      "3h ago" },
                { now - 2 * 86400 * S,     "2d ago" },
                { now + S,                 "in the future" },
        };
        char ts[FORMAT_TIMESTAMP_MAX];

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char buf[FORMAT_RELATIVE_MAX], what[64];

                snprintf(what, sizeof(what), "format_relative case %zu", i);
                check_str(what, format_relative(buf, cases[i].then, now), cases[i].out);
        }

        check_str("format_timestamp", format_timestamp(ts, now), "2023-11-14 22:13:20 UTC");
}

static void test_format_duration(void) {
        static const uint64_t S = UINT64_C(1000000);
        static const struct {
                uint64_t usec;
                const char *out;
        } cases[] = {
                { 0,                                   "0ms" },
                { 850000,                              "850ms" },
                { S,                                   "1s" },
                { 59 * S + 999999,                     "59s" },
                { 72 * S,                              "1min 12s" },
                { 3599 * S,                            "59min 59s" },
                { 3900 * S,                            "1h 5min" },
                { (2 * 86400 + 3 * 3600 + 59) * S,     "2d 3h" },
                { UINT64_MAX,                          "213503982d 8h" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char buf[FORMAT_DURATION_MAX], what[64];

                snprintf(what, sizeof(what), "format_duration case %zu", i);
                check_str(what, format_duration(buf, cases[i].usec), cases[i].out);
        }
}

static void print_table(FILE *f, const void *arg) {
        const Table *t = arg;

        (void) table_print(t, f);
}

static void test_table(void) {
        static const char *const headers[] = { "ID", "NAME", "MEM" };
        static const char *const cells[] = {
                "1",  "node1",         "23.4G",
                "12", "n\xc3\xb6" "de12", "512.0M",
                "3",  "",              NULL,
        };
        _cleanup_(table_freep) Table *t = NULL, *kv = NULL;
        _cleanup_free_ char *got = NULL, *got_kv = NULL;

        t = table_new(ELEMENTSOF(headers), headers);
        if (!t) {
                check_str("table_new", NULL, "a table");
                return;
        }
        table_set_align_right(t, 0);
        table_set_align_right(t, 2);
        for (size_t i = 0; i < ELEMENTSOF(cells); i++)
                if (table_add_cell(t, cells[i]) < 0)
                        check_str("table_add_cell", NULL, "0");

        /* Columns sized by code points ("nöde12" is 6 wide), numbers
         * right-aligned, empty cells "-", no blanks at line ends. */
        got = capture(print_table, t);
        check_str("table", got,
                  "ID  NAME       MEM\n"
                  " 1  node1    23.4G\n"
                  "12  n\xc3\xb6" "de12  512.0M\n"
                  " 3  -            -\n");

        kv = table_new(2, NULL);
        if (!kv) {
                check_str("table_new", NULL, "a table");
                return;
        }
        (void) table_add_cell(kv, "Cluster:");
        (void) table_add_cell(kv, "prod");
        (void) table_add_cell(kv, "Quorum votes:");
        (void) table_add_cell(kv, "2");
        got_kv = capture(print_table, kv);
        check_str("key-value table", got_kv,
                  "Cluster:       prod\n"
                  "Quorum votes:  2\n");
}

static void test_utf8_width(void) {
        char what[32];

        snprintf(what, sizeof(what), "%zu", utf8_width("n\xc3\xb6" "de\xe2\x82\xac"));
        check_str("utf8_width", what, "5");
}

static void test_value_format(void) {
        char *features[] = { (char *) "avx", (char *) "avx2", (char *) "sse4_2", NULL };
        char *empty[] = { NULL };
        const uint64_t now = UINT64_C(1700000000) * UINT64_C(1000000);
        const struct {
                Value v;
                ValueFormat format;
                const char *out;
        } cases[] = {
                { { .type = VALUE_UNSET },                                  FORMAT_PLAIN,     "-" },
                { { .type = VALUE_STRING, .str = (char *) "" },             FORMAT_PLAIN,     "-" },
                { { .type = VALUE_STRING, .str = (char *) "QEMU" },         FORMAT_PLAIN,     "QEMU" },
                { { .type = VALUE_BOOL, .b = true },                        FORMAT_PLAIN,     "yes" },
                { { .type = VALUE_BOOL, .b = false },                       FORMAT_PLAIN,     "no" },
                { { .type = VALUE_UINT, .u = 4294967295u },                 FORMAT_PLAIN,     "4294967295" },
                { { .type = VALUE_INT, .i = -7 },                           FORMAT_PLAIN,     "-7" },
                { { .type = VALUE_DOUBLE, .d = 1.5 },                       FORMAT_PLAIN,     "1.5" },
                { { .type = VALUE_UINT, .u = UINT64_C(25125558682) },       FORMAT_BYTES,     "23.4G" },
                { { .type = VALUE_UINT, .u = 0 },                           FORMAT_TIMESTAMP, "never" },
                { { .type = VALUE_UINT, .u = now - 12 * UINT64_C(1000000) }, FORMAT_TIMESTAMP, "2023-11-14 22:13:08 UTC (12s ago)" },
                { { .type = VALUE_STRV, .strv = features },                 FORMAT_PLAIN,     "avx avx2 sse4_2" },
                { { .type = VALUE_STRV, .strv = empty },                    FORMAT_PLAIN,     "-" },
                { { .type = VALUE_UINT, .u = UINT64_C(117440512) },         FORMAT_RATE,      "112.0M/s" },
                { { .type = VALUE_UINT, .u = 0 },                           FORMAT_RATE,      "0/s" },
                { { .type = VALUE_UINT, .u = 45 },                          FORMAT_MSEC,      "45 ms" },
                { { .type = VALUE_UINT, .u = 125 },                         FORMAT_PERMILLE,  "12.5%" },
                { { .type = VALUE_UINT, .u = 1500 },                        FORMAT_PERMILLE,  "150.0%" },
                { { .type = VALUE_UINT, .u = 0 },                           FORMAT_PERMILLE,  "0.0%" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *got = value_format(&cases[i].v, cases[i].format, now);
                char what[64];

                snprintf(what, sizeof(what), "value_format case %zu", i);
                check_str(what, got, cases[i].out);
        }
}

static void write_fields(FILE *f, const void *arg) {
        static const Field fields[] = {
                { "Id",          "id",           VALUE_UINT,   "Id",           FORMAT_PLAIN, {} },
                { "Name",        "name",         VALUE_STRING, "Name",         FORMAT_PLAIN, {} },
                { "CpuFeatures", "cpu_features", VALUE_STRV,   "CPU features", FORMAT_PLAIN, {} },
                { "Online",      "online",       VALUE_BOOL,   "Online",       FORMAT_PLAIN, {} },
                { "Blockers",    "blockers",     VALUE_PAIRS,  "Blockers",     FORMAT_PLAIN, { "vm", "reason" } },
                { "Pairs",       "pairs",        VALUE_PAIRS,  "Pairs",        FORMAT_PLAIN, {} },
                { "None",        "none",         VALUE_PAIRS,  "None",         FORMAT_PLAIN, { "vm", "reason" } },
        };
        char *features[] = { (char *) "avx", (char *) "x\"y", NULL };
        char *blockers[] = { (char *) "web9", (char *) "pinned", (char *) "db1", (char *) "no \"room\"", NULL };
        char *empty[] = { NULL };
        const Value values[ELEMENTSOF(fields)] = {
                { .type = VALUE_UINT, .u = 2 },
                { .type = VALUE_STRING, .str = (char *) "node2" },
                { .type = VALUE_STRV, .strv = features },
                { .type = VALUE_UNSET },
                { .type = VALUE_PAIRS, .strv = blockers },
                { .type = VALUE_PAIRS, .strv = blockers },
                { .type = VALUE_PAIRS, .strv = empty },
        };
        JsonWriter w;

        json_init(&w, f, false);
        fields_write_json(&w, fields, ELEMENTSOF(fields), values);
        (void) json_finish(&w);
}

static void test_fields_json(void) {
        _cleanup_free_ char *got = capture(write_fields, NULL);

        /* Exactly the table's keys, in order; unset is null; pairs are
         * objects with the field's keys, or two-element arrays. */
        check_str("fields_write_json", got,
                  "{\"id\": 2, \"name\": \"node2\", \"cpu_features\": [\"avx\", \"x\\\"y\"], \"online\": null, "
                  "\"blockers\": [{\"vm\": \"web9\", \"reason\": \"pinned\"}, {\"vm\": \"db1\", \"reason\": \"no \\\"room\\\"\"}], "
                  "\"pairs\": [[\"web9\", \"pinned\"], [\"db1\", \"no \\\"room\\\"\"]], "
                  "\"none\": []}\n");
}

static void test_value_pairs(void) {
        char *two[] = { (char *) "web9", (char *) "pinned", (char *) "db1", (char *) "full", NULL };
        char *odd[] = { (char *) "web9", NULL };
        char *empty[] = { NULL };
        const Value v2 = { .type = VALUE_PAIRS, .strv = two };
        const Value vodd = { .type = VALUE_PAIRS, .strv = odd };
        const Value vempty = { .type = VALUE_PAIRS, .strv = empty };
        const Value vstrv = { .type = VALUE_STRV, .strv = two };
        _cleanup_free_ char *f2 = value_format(&v2, FORMAT_PLAIN, 0);
        _cleanup_free_ char *fodd = value_format(&vodd, FORMAT_PLAIN, 0);
        _cleanup_free_ char *fempty = value_format(&vempty, FORMAT_PLAIN, 0);

        check_str("pairs format", f2, "web9: pinned; db1: full");
        check_str("pairs format, half a pair", fodd, "-");
        check_str("pairs format, empty", fempty, "-");
        if (value_n_pairs(&v2) != 2 || value_n_pairs(&vodd) != 0 || value_n_pairs(&vempty) != 0 ||
            value_n_pairs(&vstrv) != 0) {
                fprintf(stderr, "FAIL value_n_pairs\n");
                failures++;
        }
}

static void node_set(NodeInfo *n, const char *mode, const char *state, uint64_t remaining, char **blockers) {
        *n = (NodeInfo) {};
        n->values[NODE_DRAIN_MODE] = (Value) { .type = VALUE_STRING, .str = strdup(mode) };
        n->values[NODE_DRAIN_STATE] = (Value) { .type = VALUE_STRING, .str = strdup(state) };
        n->values[NODE_DRAIN_REMAINING] = (Value) { .type = VALUE_UINT, .u = remaining };
        n->values[NODE_DRAIN_BLOCKERS] = (Value) { .type = VALUE_PAIRS, .strv = blockers };
}

static void test_node_drain(void) {
        char *one[] = { (char *) "gpu1", (char *) "passed through", NULL };
        char *none[] = { NULL };
        static const struct {
                const char *mode, *state;
                uint64_t remaining;
                bool blocked;
                size_t moving;
                const char *line, *state_text;
        } cases[] = {
                { "none",  "none",          0, false, 0, "node1: not draining", "-" },
                { "fail",  "draining",      6, false, 0, "node1: draining, 6 VMs left", "draining" },
                { "fail",  "draining",      1, false, 1, "node1: draining, 1 VM left (1 moving)", "draining" },
                { "fail",  "drain-blocked", 6, true,  5, "node1: drain-blocked, 6 VMs left (5 moving, 1 blocked)", "drain-blocked" },
                { "fail",  "drain-blocked", 1, true,  0, "node1: drain-blocked, 1 VM left (1 blocked)", "drain-blocked" },
                { "leave", "draining",      3, true,  2, "node1: draining, 3 VMs left (2 moving, 1 left behind)", "draining" },
                { "leave", "drained",       1, true,  0, "node1: drained, 1 VM left on it", "drained" },
                { "fail",  "drained",       0, false, 0, "node1: drained", "drained" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                NodeInfo n;
                _cleanup_free_ char *line = NULL;
                char what[64];

                /* The blockers are the test's: not freed with the node. */
                node_set(&n, cases[i].mode, cases[i].state, cases[i].remaining, cases[i].blocked ? one : none);
                line = node_drain_line(&n, "node1", cases[i].moving);
                snprintf(what, sizeof(what), "node_drain_line case %zu", i);
                check_str(what, line, cases[i].line);
                snprintf(what, sizeof(what), "node_drain_state_text case %zu", i);
                check_str(what, node_drain_state_text(&n), cases[i].state_text);
                if (node_n_blockers(&n) != (cases[i].blocked ? 1 : 0)) {
                        fprintf(stderr, "FAIL node_n_blockers case %zu\n", i);
                        failures++;
                }
                n.values[NODE_DRAIN_BLOCKERS] = (Value) {};
                node_info_done(&n);
        }

        {
                NodeInfo n;

                node_set(&n, "fail", "drain-blocked", 1, one);
                check_str("node_blocker_vm", node_blocker_vm(&n, 0), "gpu1");
                check_str("node_blocker_reason", node_blocker_reason(&n, 0), "passed through");
                check_str("node_blocker_vm out of range", node_blocker_vm(&n, 1), "");
                n.values[NODE_DRAIN_BLOCKERS] = (Value) {};
                node_info_done(&n);
        }

        {
                /* An older ferryd: no drain properties at all. */
                NodeInfo n = {};
                _cleanup_free_ char *line = node_drain_line(&n, "node1", 0);

                check_str("node_drain_line without properties", line, "node1: not draining");
                check_str("node_drain_state_text without properties", node_drain_state_text(&n), "-");
        }
}

int main(void) {
        /* format_timestamp() shows local time. */
        setenv("TZ", "UTC", 1);
        tzset();

        test_json_string();
        test_json_writer();
        test_format_time();
        test_format_duration();
        test_table();
        test_utf8_width();
        test_value_format();
        test_fields_json();
        test_value_pairs();
        test_node_drain();

        if (failures > 0) {
                fprintf(stderr, "%u check(s) failed\n", failures);
                return EXIT_FAILURE;
        }
        printf("all checks passed\n");
        return EXIT_SUCCESS;
}
