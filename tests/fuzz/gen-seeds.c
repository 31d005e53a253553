/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Writes the seed corpus of the fuzz targets:
 *
 *   fuzz-seeds DIR     DIR/fuzz-message/..., DIR/fuzz-state/..., DIR/fuzz-config/...
 *
 * The seeds are made with the encoders, so they follow the wire format:
 * after a format change, `tests/fuzz/run --regenerate-seeds` rewrites the
 * committed corpus (tests/fuzz/corpus/), and tests/fuzz/run always adds a
 * fresh set next to it. File names are stable, so regenerating an
 * unchanged format changes nothing. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz-samples.h"

static const char *out_dir;
static unsigned written;

static void die(const char *what) {
        fprintf(stderr, "fuzz-seeds: %s: %s\n", what, strerror(errno));
        exit(EXIT_FAILURE);
}

__attribute__((format(printf, 4, 5)))
static void seed(const char *target, const void *data, size_t size, const char *fmt, ...) {
        char name[128], path[4096];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(name, sizeof(name), fmt, ap);
        va_end(ap);
        snprintf(path, sizeof(path), "%s/%s", out_dir, target);
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                die(path);
        snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
        FILE *f = fopen(path, "we");
        if (!f)
                die(path);
        if ((size > 0 && fwrite(data, 1, size, f) != size) || fclose(f) != 0)
                die(path);
        written++;
}

static void seed_writer(const char *target, Writer *w, const char *name) {
        if (writer_error(w) < 0) {
                fprintf(stderr, "fuzz-seeds: %s/%s: out of memory\n", target, name);
                exit(EXIT_FAILURE);
        }
        seed(target, w->data, w->size, "%s", name);
        writer_done(w);
}

static void encode_state(const ClusterState *s, Writer *w) {
        writer_init(w);
        if (cluster_state_encode(s, w) < 0) {
                fprintf(stderr, "fuzz-seeds: cannot encode a sample state\n");
                exit(EXIT_FAILURE);
        }
}

static void state_seeds(void) {
        const SampleStep *steps;
        size_t n = sample_history(&steps);
        Writer w;

        /* Every state the sample history passes through. */
        for (size_t i = 0; i <= n; i++) {
                ClusterState *s = sample_state(i);
                encode_state(s, &w);
                char name[64];
                snprintf(name, sizeof(name), "state-after-%02zu-steps", i);
                seed_writer("fuzz-state", &w, name);
                cluster_state_free(s);
        }

        /* Hand-made edges, from the encodings above. */
        ClusterState *full = sample_state(SIZE_MAX), *empty = cluster_state_new();
        seed("fuzz-state", "", 0, "edge-empty-input");
        encode_state(full, &w);
        seed("fuzz-state", w.data, w.size - 1, "edge-truncated-by-one");
        writer_put_u8(&w, 0);
        seed_writer("fuzz-state", &w, "edge-trailing-byte");
        encode_state(empty, &w);
        seed("fuzz-state", w.data, 4, "edge-version-only");
        /* u32 version, u64 commit, u64 generation, then the node count:
         * claim the most nodes there can be, and bring none. */
        if (w.size >= 24)
                memset(w.data + 20, 0xff, 4);
        seed_writer("fuzz-state", &w, "edge-node-count-without-nodes");
        cluster_state_free(full);
        cluster_state_free(empty);
}

static void frame_to_input(Writer *in, Writer *frame) {
        if (writer_error(frame) < 0 || frame->size < FERRY_MESSAGE_HEADER_SIZE) {
                fprintf(stderr, "fuzz-seeds: cannot build a frame\n");
                exit(EXIT_FAILURE);
        }
        fuzz_input_frame(in, frame);
        writer_done(frame);
}

static void message_seeds(void) {
        const SampleStep *steps;
        size_t n = sample_history(&steps);
        Writer in, f;

        /* The protocol alone, run to the end from each starting point. */
        for (Scenario sc = 0; sc < _SCENARIO_MAX; sc++) {
                fuzz_input_begin(&in, sc, 0);
                fuzz_input_loopback(&in, 16);
                char name[64];
                snprintf(name, sizeof(name), "scenario-%u-run-protocol", sc);
                seed_writer("fuzz-message", &in, name);
        }

        /* The whole sample history as proposals in epoch 1, each followed
         * by delivering the acks it draws. */
        fuzz_input_begin(&in, SCENARIO_SYNCED_EMPTY, 0);
        for (size_t i = 0; i < n; i++) {
                (void) sample_frame_proposal(&f, steps[i].sender, FUZZ_EPOCH(1), 100 + i, &steps[i].command);
                frame_to_input(&in, &f);
                fuzz_input_loopback(&in, 3);
        }
        seed_writer("fuzz-message", &in, "synced-empty-history");

        /* Each step alone on the full state (most are refused there: the
         * refusals are paths too). */
        for (size_t i = 0; i < n; i++) {
                fuzz_input_begin(&in, SCENARIO_SYNCED_FULL, 0);
                (void) sample_frame_proposal(&f, steps[i].sender, FUZZ_EPOCH(1), 1, &steps[i].command);
                frame_to_input(&in, &f);
                fuzz_input_loopback(&in, 4);
                char name[64];
                snprintf(name, sizeof(name), "synced-full-step-%02zu-%s", i, command_type_to_string(steps[i].command.type));
                seed_writer("fuzz-message", &in, name);
        }

        /* A leader's full state, offered in the diverged sync once the
         * summaries are in (and, stale, to synced members). */
        ClusterState *full = sample_state(SIZE_MAX);
        fuzz_input_begin(&in, SCENARIO_DIVERGED, 0);
        fuzz_input_loopback(&in, 4);
        (void) sample_frame_state(&f, 1, FUZZ_EPOCH(1), full);
        frame_to_input(&in, &f);
        fuzz_input_loopback(&in, 4);
        seed_writer("fuzz-message", &in, "diverged-leader-state");
        fuzz_input_begin(&in, SCENARIO_SYNCED_FULL, 0);
        (void) sample_frame_state(&f, 1, FUZZ_EPOCH(1), full);
        frame_to_input(&in, &f);
        seed_writer("fuzz-message", &in, "synced-stale-state");
        cluster_state_free(full);

        /* Membership changes: a majority resyncs, a minority may not commit,
         * the whole group merges again. */
        fuzz_input_begin(&in, SCENARIO_ACKING, 0);
        fuzz_input_membership(&in, 0x3);
        fuzz_input_loopback(&in, 8);
        fuzz_input_membership(&in, 0x4);
        fuzz_input_loopback(&in, 4);
        fuzz_input_membership(&in, 0x7);
        fuzz_input_loopback(&in, 12);
        seed_writer("fuzz-message", &in, "acking-partition-and-merge");

        /* Frames every member must refuse. */
        static const struct {
                const char *name;
                size_t offset;          /* into the header; SIZE_MAX: none */
                uint8_t value;
                unsigned inject_as;
                int truncate;
        } bad[] = {
                { "bad-magic", 0, 'X', 0, 0 },
                { "bad-version-zero", 5, 0, 0, 0 },
                { "newer-version", 5, FERRY_PROTOCOL_VERSION + 1, 0, 0 },
                { "bad-type-zero", 7, 0, 0, 0 },
                { "bad-type-unknown", 7, 0x7f, 0, 0 },
                { "bad-length", 31, 0xff, 0, 0 },
                { "sender-mismatch", SIZE_MAX, 0, 3, 0 },
                { "truncated-payload", SIZE_MAX, 0, 0, 3 },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                fuzz_input_begin(&in, SCENARIO_SYNCED_FULL, bad[i].inject_as);
                (void) sample_frame_proposal(&f, 1, FUZZ_EPOCH(1), 7, &steps[6].command);
                if (bad[i].offset != SIZE_MAX)
                        f.data[bad[i].offset] = bad[i].value;
                f.size -= (size_t) bad[i].truncate;
                frame_to_input(&in, &f);
                seed_writer("fuzz-message", &in, bad[i].name);
        }
}

static void config_seeds(void) {
        static const struct {
                const char *name;
                const char *text;
        } configs[] = {
                { "every-key",
                  "# every key, valid\n"
                  "plugin_dir = /usr/lib/ferry/plugins\n"
                  "state_dir = /var/lib/ferry\n"
                  "host_memory_reserve = 1.5GiB\n"
                  "max_outgoing_migrations = 2\n"
                  "max_incoming_migrations = 3\n"
                  "max_cluster_migrations = 0\n"
                  "log_level = debug\n"
                  "log_syslog = yes\n"
                  "facts_interval = 30\n"
                  "backend = sim\n"
                  "backend_config = \"  hosts=4 seed=7  \"\n"
                  "backend_peer_uri = qemu+tls://%s/system\n"
                  "migration_address = 10.0.0.1\n"
                  "inventory_interval = 5\n"
                  "progress_interval_ms = 500\n"
                  "downtime_steps = 300, 400,500 1000\n"
                  "stall_rounds = 2\n"
                  "progress_timeout = 60\n"
                  "completion_timeout_per_gib = 120\n" },
                { "sizes", "host_memory_reserve = 512M\nhost_memory_reserve = 2 G\nhost_memory_reserve = 1.25t\n"
                           "host_memory_reserve = 4096\nhost_memory_reserve = 0.5KiB\n" },
                { "errors", "log_level = loud\nmax_outgoing_migrations = 0\nno equals sign\nunknown_key = 1\n"
                            "plugin_dir = relative/path\nbackend = ../evil\ndowntime_steps = 500,400\n"
                            "host_memory_reserve = 99999999999999999999T\n" },
                { "blanks-and-comments", "\n   \n# comment\n; also a comment\n\t log_syslog\t=\tno \t\n" },
                { "crlf", "log_level = info\r\nfacts_interval = 10\r\n" },
                { "quotes", "backend_config = \"\"\nmigration_address = \"\nbackend_peer_uri = \"a\"b\"\n" },
                { "no-final-newline", "stall_rounds = 3" },
                { "empty", "" },
        };

        for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++)
                seed("fuzz-config", configs[i].text, strlen(configs[i].text), "%s", configs[i].name);
        seed("fuzz-config", "log_level = info\n\0facts_interval = 1\n", 37, "nul-byte");
}

static ClusterState *apply_steps(const size_t *which, size_t n, const Command *extra, uint32_t extra_sender) {
        const SampleStep *steps;
        (void) sample_history(&steps);
        ClusterState *s = cluster_state_new();

        for (size_t i = 0; i < n; i++)
                (void) cluster_state_apply(s, steps[which[i]].sender, &steps[which[i]].command);
        if (extra && cluster_state_apply(s, extra_sender, extra) <= 0)
                fprintf(stderr, "fuzz-seeds: a regression seed's last command was not applied\n");
        return s;
}

/* Every bug the fuzzers found, rebuilt with the encoders: unlike the raw
 * crash inputs in tests/fuzz/regressions/, these follow format changes.
 * tests/fuzz/run replays both before fuzzing. */
static void regression_seeds(void) {
        const SampleStep *steps;
        (void) sample_history(&steps);
        Writer w, in, f;
        ClusterState *s;

        /* A drain plan of a node without VMs: qsort(NULL, 0). */
        Command drain = { .type = COMMAND_SET_DRAIN, .set_drain = { .node = 1, .mode = DRAIN_FAIL_ON_BLOCKERS } };
        s = apply_steps((const size_t[]) { 0, 1 }, 2, &drain, 1);
        encode_state(s, &w);
        seed_writer("fuzz-state", &w, "regress-drain-plan-node-without-vms");
        cluster_state_free(s);

        /* A host reserve past INT64_MAX: signed overflow in the memory a
         * destination has left. */
        Command facts = steps[1].command;
        facts.node_facts.facts.memory_reserved = (UINT64_C(1) << 63) + (UINT64_C(2) << 30);
        s = apply_steps((const size_t[]) { 0, 2, 3 }, 3, &facts, 2);
        encode_state(s, &w);
        seed_writer("fuzz-state", &w, "regress-available-memory-overflow");
        cluster_state_free(s);

        /* A job submitted while no node reports any VM: bsearch(NULL). */
        fuzz_input_begin(&in, SCENARIO_SYNCED_EMPTY, 0);
        static const size_t order[] = { 0, 1, 8 };
        for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
                const SampleStep *st = &steps[order[i]];
                (void) sample_frame_proposal(&f, st->sender, FUZZ_EPOCH(1), 1 + i, &st->command);
                frame_to_input(&in, &f);
                fuzz_input_loopback(&in, 3);
        }
        seed_writer("fuzz-message", &in, "regress-job-submit-without-vms");
}

int main(int argc, char *argv[]) {
        if (argc != 2) {
                fprintf(stderr, "Usage: %s DIR\n", argv[0]);
                return EXIT_FAILURE;
        }
        out_dir = argv[1];
        if (mkdir(out_dir, 0755) < 0 && errno != EEXIST)
                die(out_dir);
        state_seeds();
        message_seeds();
        config_seeds();
        regression_seeds();
        printf("fuzz-seeds: %u seeds in %s\n", written, out_dir);
        return EXIT_SUCCESS;
}
