/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryd.conf through config_load_file(), the function ferryd calls, on a
 * memfd that holds the input (no temporary files), and through
 * config_load_string() for inputs without a NUL byte.
 *
 * Checked beyond "no crash, no leak, no UB":
 *   - the result is 0 or -EINVAL, and -EINVAL exactly when at least one
 *     error was reported, each with a line number inside the text;
 *   - file and string parse to the same result and the same values;
 *   - an accepted config holds what the parser promises: absolute paths,
 *     a plugin name without path tricks, positive limits and intervals,
 *     1 to 8 increasing downtime steps of at most 60 s. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                       \
        do {                                                            \
                fprintf(stderr, "fuzz-config: " __VA_ARGS__);           \
                fputc('\n', stderr);                                    \
                abort();                                                \
        } while (0)

typedef struct Errors {
        unsigned count;
        unsigned max_line;
} Errors;

static void on_error(const char *file, unsigned line, const char *message, void *userdata) {
        Errors *e = userdata;

        if (!message || !*message)
                FAIL("an error without a message");
        e->count++;
        if (line > e->max_line)
                e->max_line = line;
}

static bool str_equal(const char *a, const char *b) {
        return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static bool config_equal(const FerryConfig *a, const FerryConfig *b) {
        return str_equal(a->plugin_dir, b->plugin_dir) && str_equal(a->state_dir, b->state_dir) &&
               a->host_memory_reserve == b->host_memory_reserve &&
               a->max_outgoing_migrations == b->max_outgoing_migrations &&
               a->max_incoming_migrations == b->max_incoming_migrations &&
               a->max_cluster_migrations == b->max_cluster_migrations && a->log_level == b->log_level &&
               a->log_syslog == b->log_syslog && a->facts_interval_sec == b->facts_interval_sec &&
               str_equal(a->backend, b->backend) && str_equal(a->backend_config, b->backend_config) &&
               str_equal(a->backend_peer_uri, b->backend_peer_uri) &&
               str_equal(a->migration_address, b->migration_address) &&
               a->inventory_interval_sec == b->inventory_interval_sec &&
               a->progress_interval_ms == b->progress_interval_ms && a->n_downtime_steps == b->n_downtime_steps &&
               memcmp(a->downtime_steps_ms, b->downtime_steps_ms, sizeof(a->downtime_steps_ms)) == 0 &&
               a->stall_rounds == b->stall_rounds && a->progress_timeout_sec == b->progress_timeout_sec &&
               a->completion_timeout_per_gib_sec == b->completion_timeout_per_gib_sec;
}

static void check_valid(const FerryConfig *c) {
        if (!c->plugin_dir || c->plugin_dir[0] != '/' || !c->state_dir || c->state_dir[0] != '/')
                FAIL("accepted a relative path");
        if (!c->backend || !*c->backend || strlen(c->backend) > 64 || strpbrk(c->backend, "/.") ||
            strspn(c->backend, "abcdefghijklmnopqrstuvwxyz0123456789-_") != strlen(c->backend))
                FAIL("accepted backend name \"%s\"", c->backend ? c->backend : "(null)");
        if (!c->backend_config || !c->backend_peer_uri || !c->migration_address)
                FAIL("a string setting is NULL");
        if (c->max_outgoing_migrations == 0 || c->max_incoming_migrations == 0 || c->facts_interval_sec == 0 ||
            c->inventory_interval_sec == 0 || c->progress_interval_ms == 0 || c->stall_rounds == 0 ||
            c->progress_timeout_sec == 0 || c->completion_timeout_per_gib_sec == 0)
                FAIL("accepted a zero limit or interval");
        if (c->host_memory_reserve == UINT64_MAX)
                FAIL("accepted an out-of-range host_memory_reserve");
        if (c->n_downtime_steps < 1 || c->n_downtime_steps > 8)
                FAIL("accepted %u downtime steps", c->n_downtime_steps);
        for (unsigned i = 0; i < c->n_downtime_steps; i++)
                if (c->downtime_steps_ms[i] == 0 || c->downtime_steps_ms[i] > 60000 ||
                    (i > 0 && c->downtime_steps_ms[i] <= c->downtime_steps_ms[i - 1]))
                        FAIL("accepted downtime step %u = %u", i, c->downtime_steps_ms[i]);
}

static unsigned count_lines(const uint8_t *data, size_t size) {
        unsigned n = 0;
        for (size_t i = 0; i < size; i++)
                n += data[i] == '\n';
        return n + 1;
}

static void check_result(const char *what, int r, const Errors *e, unsigned lines) {
        if (r != 0 && r != -EINVAL)
                FAIL("%s: returned %d (%s)", what, r, strerror(-r));
        if ((r == 0) != (e->count == 0))
                FAIL("%s: returned %d after %u errors", what, r, e->count);
        if (e->max_line > lines)
                FAIL("%s: an error on line %u of %u", what, e->max_line, lines);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static int fd = -1;
        char path[64];
        FerryConfig from_file, from_string;
        Errors ef = {}, es = {};
        unsigned lines = count_lines(data, size);
        int rf, rs;

        if (fd < 0) {
                fd = memfd_create("fuzz-config", MFD_CLOEXEC);
                if (fd < 0)
                        abort();
        }
        if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t) size)
                abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);

        config_init_defaults(&from_file);
        rf = config_load_file(&from_file, path, on_error, &ef);
        check_result("file", rf, &ef, lines);
        if (rf == 0)
                check_valid(&from_file);

        if (!memchr(data, 0, size)) {
                char *text = malloc(size + 1);
                if (!text)
                        abort();
                memcpy(text, data, size);
                text[size] = 0;
                config_init_defaults(&from_string);
                rs = config_load_string(&from_string, text, "fuzz.conf", on_error, &es);
                check_result("string", rs, &es, lines);
                if (rs != rf || es.count != ef.count)
                        FAIL("file and string disagree: %d/%u errors vs %d/%u errors", rf, ef.count, rs, es.count);
                if (!config_equal(&from_file, &from_string))
                        FAIL("file and string parse to different values");
                config_done(&from_string);
                free(text);
        } else if (rf != -EINVAL)
                FAIL("a file with a NUL byte was accepted");

        config_done(&from_file);
        return 0;
}
