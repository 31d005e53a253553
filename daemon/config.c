/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "ferry-build.h"
#include "log.h"
#include "macro.h"
#include "strutil.h"

#ifndef FERRY_PLUGIN_DIR
#error "config.h of the build is missing"
#endif

typedef int (*ParseFn)(const char *value, void *field);

static int parse_string_field(const char *value, void *field) {
        char **s = field;
        if (!*value)
                return -EINVAL;
        char *d = strdup(value);
        if (!d)
                return -ENOMEM;
        free(*s);
        *s = d;
        return 0;
}

/* May be empty. */
static int parse_any_string_field(const char *value, void *field) {
        char **s = field;
        char *d = strdup(value);
        if (!d)
                return -ENOMEM;
        free(*s);
        *s = d;
        return 0;
}

/* A plugin name: it becomes part of a file name, so no path tricks. */
static int parse_name_field(const char *value, void *field) {
        if (!*value || strlen(value) > 64)
                return -EINVAL;
        for (const char *p = value; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
                        return -EINVAL;
        return parse_string_field(value, field);
}

static int parse_path_field(const char *value, void *field) {
        if (value[0] != '/')
                return -EINVAL;
        return parse_string_field(value, field);
}

/* "" turns the feature off. */
static int parse_optional_path_field(const char *value, void *field) {
        if (!*value)
                return parse_any_string_field(value, field);
        return parse_path_field(value, field);
}

static int parse_size_field(const char *value, void *field) {
        return parse_size(value, field);
}

static int parse_u32_field(const char *value, void *field) {
        return parse_u32(value, field);
}

static int parse_positive_u32_field(const char *value, void *field) {
        uint32_t v;
        int r = parse_u32(value, &v);
        if (r < 0)
                return r;
        if (v == 0)
                return -ERANGE;
        *(uint32_t *) field = v;
        return 0;
}

/* "300,400,500": increasing downtimes in ms, at most 8. */
static int parse_downtime_steps_field(const char *value, void *field) {
        FerryConfig *c = (FerryConfig *) ((uint8_t *) field - offsetof(FerryConfig, downtime_steps_ms));
        uint32_t steps[8], n = 0;
        _cleanup_free_ char *copy = strdup(value);

        if (!copy)
                return -ENOMEM;
        for (char *save = NULL, *w = strtok_r(copy, ", ", &save); w; w = strtok_r(NULL, ", ", &save)) {
                if (n >= 8 || parse_u32(w, &steps[n]) < 0 || steps[n] == 0 || steps[n] > 60000 ||
                    (n > 0 && steps[n] <= steps[n - 1]))
                        return -EINVAL;
                n++;
        }
        if (n == 0)
                return -EINVAL;
        memcpy(c->downtime_steps_ms, steps, n * sizeof(uint32_t));
        c->n_downtime_steps = n;
        return 0;
}

static int parse_bool_field(const char *value, void *field) {
        return parse_boolean(value, field);
}

static int parse_log_level_field(const char *value, void *field) {
        int l = log_level_from_string(value);
        if (l < 0)
                return l;
        *(int *) field = l;
        return 0;
}

static const struct {
        const char *key;
        ParseFn parse;
        size_t offset;
        const char *expects;
} keys[] = {
        { "plugin_dir",              parse_path_field,          offsetof(FerryConfig, plugin_dir),              "an absolute path" },
        { "state_dir",               parse_path_field,          offsetof(FerryConfig, state_dir),               "an absolute path" },
        { "host_memory_reserve",     parse_size_field,          offsetof(FerryConfig, host_memory_reserve),     "a size such as 2G or 512M" },
        { "max_outgoing_migrations", parse_positive_u32_field,  offsetof(FerryConfig, max_outgoing_migrations), "a positive integer" },
        { "max_incoming_migrations", parse_positive_u32_field,  offsetof(FerryConfig, max_incoming_migrations), "a positive integer" },
        { "max_cluster_migrations",  parse_u32_field,           offsetof(FerryConfig, max_cluster_migrations),  "an integer (0 = no cap)" },
        { "log_level",               parse_log_level_field,     offsetof(FerryConfig, log_level),               "error, warning, notice, info, debug or trace" },
        { "log_syslog",              parse_bool_field,          offsetof(FerryConfig, log_syslog),              "yes or no" },
        { "facts_interval",          parse_positive_u32_field,  offsetof(FerryConfig, facts_interval_sec),      "a positive number of seconds" },
        { "backend",                 parse_name_field,          offsetof(FerryConfig, backend),                 "none or a backend name such as libvirt or sim" },
        { "backend_config",          parse_any_string_field,    offsetof(FerryConfig, backend_config),          "a string" },
        { "backend_peer_uri",        parse_any_string_field,    offsetof(FerryConfig, backend_peer_uri),        "a URI" },
        { "migration_address",       parse_any_string_field,    offsetof(FerryConfig, migration_address),       "an address" },
        { "inventory_interval",      parse_positive_u32_field,  offsetof(FerryConfig, inventory_interval_sec),  "a positive number of seconds" },
        { "progress_interval_ms",    parse_positive_u32_field,  offsetof(FerryConfig, progress_interval_ms),    "a positive number of milliseconds" },
        { "downtime_steps",          parse_downtime_steps_field, offsetof(FerryConfig, downtime_steps_ms),      "up to 8 increasing downtimes in ms, such as 300,400,500" },
        { "stall_rounds",            parse_positive_u32_field,  offsetof(FerryConfig, stall_rounds),            "a positive number of pre-copy rounds" },
        { "progress_timeout",        parse_positive_u32_field,  offsetof(FerryConfig, progress_timeout_sec),    "a positive number of seconds" },
        { "completion_timeout_per_gib", parse_positive_u32_field, offsetof(FerryConfig, completion_timeout_per_gib_sec), "a positive number of seconds" },
        { "metrics_file",            parse_optional_path_field, offsetof(FerryConfig, metrics_file),            "an absolute path, or nothing" },
        { "metrics_interval",        parse_positive_u32_field,  offsetof(FerryConfig, metrics_interval_sec),    "a positive number of seconds" },
        { "volume_release_timeout",  parse_positive_u32_field,  offsetof(FerryConfig, volume_release_timeout_sec), "a positive number of seconds" },
        { "balance_interval",        parse_positive_u32_field,  offsetof(FerryConfig, balance_interval_sec),    "a positive number of seconds" },
};

void config_init_defaults(FerryConfig *c) {
        *c = (FerryConfig) {
                .plugin_dir = strdup(FERRY_PLUGIN_DIR),
                .state_dir = strdup(FERRY_STATE_DIR),
                .host_memory_reserve = UINT64_C(2) << 30,
                .max_outgoing_migrations = 2,
                .max_incoming_migrations = 2,
                .max_cluster_migrations = 0,
                .log_level = LOG_INFO,
                .log_syslog = false,
                .facts_interval_sec = 30,
                .backend = strdup("none"),
                .backend_config = strdup(""),
                .backend_peer_uri = strdup(""),
                .migration_address = strdup(""),
                .inventory_interval_sec = 5,
                .progress_interval_ms = 1000,
                .downtime_steps_ms = { 300, 400, 500 },
                .n_downtime_steps = 3,
                .stall_rounds = 2,
                .progress_timeout_sec = 60,
                .completion_timeout_per_gib_sec = 120,
                .metrics_file = strdup(""),
                .metrics_interval_sec = 15,
                .volume_release_timeout_sec = 10,
                .balance_interval_sec = 60,
        };
}

void config_done(FerryConfig *c) {
        free(c->plugin_dir);
        free(c->state_dir);
        free(c->backend);
        free(c->backend_config);
        free(c->backend_peer_uri);
        free(c->migration_address);
        free(c->metrics_file);
        *c = (FerryConfig) {};
}

_printf_(5, 6)
static void report(ConfigErrorFn fn, void *userdata, const char *file, unsigned line, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        if (fn)
                fn(file, line, buf, userdata);
}

static int parse_line(FerryConfig *c, char *l, const char *name, unsigned line, ConfigErrorFn fn, void *userdata) {
        char *eq, *key, *value;

        l = strstrip(l);
        if (!*l || *l == '#' || *l == ';')
                return 0;
        eq = strchr(l, '=');
        if (!eq) {
                report(fn, userdata, name, line, "expected \"key = value\", got \"%s\"", l);
                return -EINVAL;
        }
        *eq = 0;
        key = strstrip(l);
        value = strstrip(eq + 1);
        /* Values may be quoted to keep leading/trailing blanks explicit. */
        size_t vl = strlen(value);
        if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
                value[vl - 1] = 0;
                value++;
        }
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                if (!streq(keys[i].key, key))
                        continue;
                int r = keys[i].parse(value, (uint8_t *) c + keys[i].offset);
                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        report(fn, userdata, name, line, "invalid value \"%s\" for %s: expected %s", value, key, keys[i].expects);
                        return -EINVAL;
                }
                return 0;
        }
        report(fn, userdata, name, line, "unknown key \"%s\"", key);
        return -EINVAL;
}

int config_load_string(FerryConfig *c, const char *text, const char *name, ConfigErrorFn fn, void *userdata) {
        unsigned line = 0;
        bool failed = false;
        const char *p = text;

        while (*p) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t) (nl - p) : strlen(p);
                _cleanup_free_ char *l = strndup(p, n);
                if (!l)
                        return -ENOMEM;
                line++;
                if (memchr(p, 0, n)) {
                        report(fn, userdata, name, line, "NUL byte in line");
                        failed = true;
                } else {
                        int r = parse_line(c, l, name, line, fn, userdata);
                        if (r == -ENOMEM)
                                return r;
                        if (r < 0)
                                failed = true;
                }
                p += n;
                if (*p == '\n')
                        p++;
        }
        if (c->host_memory_reserve == UINT64_MAX) {
                report(fn, userdata, name, 0, "host_memory_reserve is out of range");
                failed = true;
        }
        return failed ? -EINVAL : 0;
}

int config_load_file(FerryConfig *c, const char *path, ConfigErrorFn fn, void *userdata) {
        _cleanup_fclose_ FILE *f = NULL;
        _cleanup_free_ char *text = NULL;
        size_t size = 0;

        f = fopen(path, "re");
        if (!f)
                return negative_errno();
        /* Read it whole: the config is tiny, and one code path for files and
         * strings keeps the line numbering honest. A NUL inside stops
         * strlen-based parsing, so check the length we read. */
        _cleanup_fclose_ FILE *m = open_memstream(&text, &size);
        if (!m)
                return -ENOMEM;
        char buf[4096];
        size_t n;
        while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
                if (fwrite(buf, 1, n, m) != n)
                        return -ENOMEM;
        if (ferror(f))
                return -EIO;
        if (fflush(m) != 0)
                return -ENOMEM;
        if (memchr(text, 0, size)) {
                report(fn, userdata, path, 0, "file contains a NUL byte");
                return -EINVAL;
        }
        return config_load_string(c, text, path, fn, userdata);
}

void config_convergence_settings(const FerryConfig *c, ConvergenceSettings *out) {
        *out = (ConvergenceSettings) {
                .set = CONVERGENCE_FIELD_DOWNTIME_STEPS | CONVERGENCE_FIELD_STALL_ROUNDS |
                       CONVERGENCE_FIELD_PROGRESS_TIMEOUT | CONVERGENCE_FIELD_COMPLETION_TIMEOUT,
                .n_downtime_steps = MIN(c->n_downtime_steps, (uint32_t) POLICY_DOWNTIME_STEPS_MAX),
                .stall_rounds = c->stall_rounds,
                .progress_timeout_sec = c->progress_timeout_sec,
                .completion_timeout_per_gib_sec = c->completion_timeout_per_gib_sec,
        };
        memcpy(out->downtime_steps_ms, c->downtime_steps_ms, out->n_downtime_steps * sizeof(uint32_t));
}

static bool str_differs(const char *a, const char *b) {
        return !streq(a ? a : "", b ? b : "");
}

static void note_restart(char *buf, size_t len, const char *key) {
        size_t n = strlen(buf);
        if (n < len)
                snprintf(buf + n, len - n, "%s%s", n ? ", " : "", key);
}

int config_reload(FerryConfig *cur, const FerryConfig *next, char *restart, size_t restart_len) {
        int changed = 0;

        if (restart_len)
                restart[0] = 0;
        /* What the running daemon set up once: the plugin it loaded, where it
         * keeps its state, how peers reach its hypervisor (published with
         * the plugin's facts), where it logs, the metrics file's timer. */
        if (str_differs(cur->plugin_dir, next->plugin_dir))
                note_restart(restart, restart_len, "plugin_dir");
        if (str_differs(cur->state_dir, next->state_dir))
                note_restart(restart, restart_len, "state_dir");
        if (str_differs(cur->backend, next->backend))
                note_restart(restart, restart_len, "backend");
        if (str_differs(cur->backend_config, next->backend_config))
                note_restart(restart, restart_len, "backend_config");
        if (str_differs(cur->backend_peer_uri, next->backend_peer_uri))
                note_restart(restart, restart_len, "backend_peer_uri");
        if (cur->log_syslog != next->log_syslog)
                note_restart(restart, restart_len, "log_syslog");
        if (str_differs(cur->metrics_file, next->metrics_file))
                note_restart(restart, restart_len, "metrics_file");

#define TAKE(field)                                             \
        do {                                                    \
                if (cur->field != next->field) {                \
                        cur->field = next->field;               \
                        changed++;                              \
                }                                               \
        } while (0)
        /* Read where they are used, each time: they change at once. */
        TAKE(host_memory_reserve);
        TAKE(max_outgoing_migrations);
        TAKE(max_incoming_migrations);
        TAKE(max_cluster_migrations);
        TAKE(log_level);
        TAKE(facts_interval_sec);
        TAKE(inventory_interval_sec);
        TAKE(progress_interval_ms);
        TAKE(stall_rounds);
        TAKE(progress_timeout_sec);
        TAKE(completion_timeout_per_gib_sec);
        TAKE(metrics_interval_sec);
        TAKE(volume_release_timeout_sec);
        TAKE(balance_interval_sec);
#undef TAKE
        if (cur->n_downtime_steps != next->n_downtime_steps ||
            memcmp(cur->downtime_steps_ms, next->downtime_steps_ms, sizeof(cur->downtime_steps_ms)) != 0) {
                memcpy(cur->downtime_steps_ms, next->downtime_steps_ms, sizeof(cur->downtime_steps_ms));
                cur->n_downtime_steps = next->n_downtime_steps;
                changed++;
        }
        if (str_differs(cur->migration_address, next->migration_address)) {
                char *m = strdup(next->migration_address ? next->migration_address : "");
                if (m) {
                        free(cur->migration_address);
                        cur->migration_address = m;
                        changed++;
                }
        }
        return changed;
}
