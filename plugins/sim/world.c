/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "world.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "strutil.h"

/* ---- errors ---------------------------------------------------------- */

_printf_(4, 5)
static int fail(SimError *e, const char *name, unsigned line, const char *fmt, ...) {
        va_list ap;
        int n;

        if (!e)
                return -EINVAL;
        e->line = line;
        /* "FILE:LINE: what", cut at the buffer's end if it must be. */
        if (line > 0)
                n = snprintf(e->message, sizeof(e->message), "%s:%u: ", name, line);
        else
                n = snprintf(e->message, sizeof(e->message), "%s: ", name);
        if (n >= 0 && (size_t) n < sizeof(e->message)) {
                va_start(ap, fmt);
                vsnprintf(e->message + n, sizeof(e->message) - (size_t) n, fmt, ap);
                va_end(ap);
        }
        return -EINVAL;
}

static int fail_errno(SimError *e, const char *name, int r, const char *what) {
        if (e) {
                e->line = 0;
                snprintf(e->message, sizeof(e->message), "%s: %s: %s", name, what, strerror(-r));
        }
        return r;
}

/* ---- small helpers --------------------------------------------------- */

bool sim_name_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n >= SIM_NAME_MAX || s[0] == '.')
                return false;
        for (const char *p = s; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("._-", *p))
                        return false;
        return true;
}

const char *sim_format_size(char *buf, size_t len, uint64_t bytes) {
        static const char suffix[] = "TGMK";

        for (unsigned i = 0; i < 4; i++) {
                uint64_t unit = UINT64_C(1) << (10 * (4 - i));
                if (bytes >= unit && bytes % unit == 0) {
                        snprintf(buf, len, "%" PRIu64 "%c", bytes / unit, suffix[i]);
                        return buf;
                }
        }
        snprintf(buf, len, "%" PRIu64, bytes);
        return buf;
}

static bool has_word(const char *list, const char *w, size_t wl) {
        for (const char *p = list; *p;) {
                while (*p == ' ')
                        p++;
                size_t n = strcspn(p, " ");
                if (n == wl && memcmp(p, w, n) == 0)
                        return true;
                p += n;
        }
        return false;
}

bool sim_features_subset(const char *needed, const char *have, char *missing, size_t len) {
        bool ok = true;
        size_t used = 0;

        if (missing && len > 0)
                missing[0] = 0;
        for (const char *p = needed; *p;) {
                while (*p == ' ')
                        p++;
                size_t n = strcspn(p, " ");
                if (n > 0 && !has_word(have, p, n)) {
                        ok = false;
                        if (missing && used + n + 2 < len) {
                                if (used > 0)
                                        missing[used++] = ' ';
                                memcpy(missing + used, p, n);
                                used += n;
                                missing[used] = 0;
                        }
                }
                p += n;
        }
        return ok;
}

void sim_strv_free(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

_printf_(2, 3)
static char *world_path(const SimWorld *w, const char *fmt, ...) {
        _cleanup_free_ char *rel = NULL;
        char *p = NULL;
        va_list ap;

        va_start(ap, fmt);
        int r = vasprintf(&rel, fmt, ap);
        va_end(ap);
        if (r < 0) {
                rel = NULL;
                return NULL;
        }
        if (asprintf(&p, "%s/%s", w->dir, rel) < 0)
                return NULL;
        return p;
}

/* Whole file into a NUL-terminated string; -EBADMSG if it contains a NUL. */
static int read_text(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;

        if (!f)
                return negative_errno();
        FILE *m = open_memstream(&buf, &size);
        if (!m)
                return -ENOMEM;
        char chunk[4096];
        size_t n;
        bool ok = true;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                if (fwrite(chunk, 1, n, m) != n)
                        ok = false;
        if (fclose(m) != 0 || !ok)
                return -ENOMEM;
        if (ferror(f))
                return -EIO;
        if (memchr(buf, 0, size))
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        return 0;
}

/* A temporary file beside the target, then rename(2): readers see the old
 * file or the new one, never a mix. No fsync: the world models hosts, and
 * what it must survive is a process dying, not the machine losing power. */
static int write_atomic(const char *path, const char *text) {
        _cleanup_free_ char *tmp = NULL;
        const char *slash = strrchr(path, '/');
        size_t dl = slash ? (size_t) (slash - path) + 1 : 0;

        if (asprintf(&tmp, "%.*s.%s.XXXXXX", (int) dl, path, path + dl) < 0)
                return -ENOMEM;
        _cleanup_close_ int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t len = strlen(text);
        for (size_t done = 0; done < len;) {
                ssize_t k = write(fd, text + done, len - done);
                if (k < 0) {
                        int r = negative_errno();
                        (void) unlink(tmp);
                        return r;
                }
                done += (size_t) k;
        }
        if (fchmod(fd, 0644) < 0 || rename(tmp, path) < 0) {
                int r = negative_errno();
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

static int mkdir_ok(const char *path) {
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
                return negative_errno();
        return 0;
}

static int compare_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Names of "*.conf" files in a directory (without the suffix), sorted;
 * hidden files (temporaries) are skipped. A missing directory is empty. */
static int list_conf(const char *dir, char ***ret, size_t *ret_n) {
        DIR *d = opendir(dir);
        char **v = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;

        if (!d) {
                if (errno != ENOENT)
                        return negative_errno();
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        while ((errno = 0, de = readdir(d))) {
                size_t l = strlen(de->d_name);
                if (de->d_name[0] == '.' || l <= 5 || !streq(de->d_name + l - 5, ".conf"))
                        continue;
                if (n == allocated) {
                        allocated = allocated ? allocated * 2 : 64;
                        char **nv = realloc(v, allocated * sizeof(char *));
                        if (!nv)
                                goto nomem;
                        v = nv;
                }
                v[n] = strndup(de->d_name, l - 5);
                if (!v[n])
                        goto nomem;
                n++;
        }
        if (errno != 0) {
                int r = negative_errno();
                closedir(d);
                sim_strv_free(v, n);
                return r;
        }
        closedir(d);
        if (n > 0)
                qsort(v, n, sizeof(char *), compare_str);
        *ret = v;
        *ret_n = n;
        return 0;
nomem:
        closedir(d);
        sim_strv_free(v, n);
        return -ENOMEM;
}

/* ---- the key = value parser ------------------------------------------ */

typedef struct KeyDef KeyDef;
typedef int (*ValueParser)(const char *value, void *obj, const KeyDef *k);

struct KeyDef {
        const char *key;
        ValueParser parse;
        size_t offset;
        size_t size;            /* of a string field */
        bool required;
        bool repeats;
        const char *expects;
};

#define FIELD(obj, k) ((void *) ((uint8_t *) (obj) + (k)->offset))

static int p_string(const char *value, void *obj, const KeyDef *k) {
        if (strlen(value) >= k->size)
                return -ERANGE;
        memcpy(FIELD(obj, k), value, strlen(value) + 1);
        return 0;
}

static int p_nonempty(const char *value, void *obj, const KeyDef *k) {
        return *value ? p_string(value, obj, k) : -EINVAL;
}

static int p_name(const char *value, void *obj, const KeyDef *k) {
        return sim_name_is_valid(value) ? p_string(value, obj, k) : -EINVAL;
}

/* Words of [A-Za-z0-9._-], stored with single spaces. */
static int p_words(const char *value, void *obj, const KeyDef *k) {
        char *out = FIELD(obj, k);
        size_t n = 0;

        for (const char *p = value; *p;) {
                while (isspace((unsigned char) *p))
                        p++;
                if (!*p)
                        break;
                if (n > 0) {
                        if (n + 1 >= k->size)
                                return -ERANGE;
                        out[n++] = ' ';
                }
                for (; *p && !isspace((unsigned char) *p); p++) {
                        if (!isalnum((unsigned char) *p) && !strchr("._-", *p))
                                return -EINVAL;
                        if (n + 1 >= k->size)
                                return -ERANGE;
                        out[n++] = *p;
                }
        }
        out[n] = 0;
        return 0;
}

static int p_version(const char *value, void *obj, const KeyDef *k) {
        if (!isdigit((unsigned char) value[0]))
                return -EINVAL;
        for (const char *p = value; *p; p++)
                if (!isdigit((unsigned char) *p) && *p != '.')
                        return -EINVAL;
        return p_string(value, obj, k);
}

static int p_uuid(const char *value, void *obj, const KeyDef *k) {
        if (strlen(value) != 36)
                return -EINVAL;
        for (size_t i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? value[i] != '-' : !isxdigit((unsigned char) value[i]))
                        return -EINVAL;
        }
        return p_string(value, obj, k);
}

static int p_size(const char *value, void *obj, const KeyDef *k) {
        return parse_size(value, FIELD(obj, k));
}

static int p_size_positive(const char *value, void *obj, const KeyDef *k) {
        uint64_t v;
        int r = parse_size(value, &v);
        if (r < 0)
                return r;
        if (v == 0)
                return -ERANGE;
        *(uint64_t *) FIELD(obj, k) = v;
        return 0;
}

static int p_u64(const char *value, void *obj, const KeyDef *k) {
        return parse_u64(value, FIELD(obj, k));
}

static int p_u32(const char *value, void *obj, const KeyDef *k) {
        return parse_u32(value, FIELD(obj, k));
}

static int p_u32_max(const char *value, void *obj, uint32_t lo, uint32_t hi, const KeyDef *k) {
        uint32_t v;
        int r = parse_u32(value, &v);
        if (r < 0)
                return r;
        if (v < lo || v > hi)
                return -ERANGE;
        *(uint32_t *) FIELD(obj, k) = v;
        return 0;
}

static int p_u32_positive(const char *value, void *obj, const KeyDef *k) {
        return p_u32_max(value, obj, 1, UINT32_MAX, k);
}

static int p_percent99(const char *value, void *obj, const KeyDef *k) {
        return p_u32_max(value, obj, 0, 99, k);
}

static int p_percent100(const char *value, void *obj, const KeyDef *k) {
        return p_u32_max(value, obj, 0, 100, k);
}

static int p_permille999(const char *value, void *obj, const KeyDef *k) {
        return p_u32_max(value, obj, 0, 999, k);
}

static int p_bool(const char *value, void *obj, const KeyDef *k) {
        return parse_boolean(value, FIELD(obj, k));
}

static const char *const state_names[] = {
        [FERRY_VM_RUNNING] = "running",
        [FERRY_VM_PAUSED] = "paused",
        [FERRY_VM_SHUTOFF] = "shutoff",
        [FERRY_VM_MIGRATING] = "migrating",
        [FERRY_VM_OTHER] = "other",
};

static int p_state(const char *value, void *obj, const KeyDef *k) {
        /* "migrating" is never stored: it is what a marker adds. */
        for (FerryVmState s = FERRY_VM_RUNNING; s <= FERRY_VM_OTHER; s++)
                if (s != FERRY_VM_MIGRATING && streq(value, state_names[s])) {
                        *(FerryVmState *) FIELD(obj, k) = s;
                        return 0;
                }
        return -EINVAL;
}

/* "vda:/shared/vm1.qcow2:shared vdb:/local/x.img:local" */
static int p_disks(const char *value, void *obj, const KeyDef *k) {
        SimVm *vm = obj;
        _cleanup_free_ char *copy = strdup(value);
        uint32_t n = 0;

        if (!copy)
                return -ENOMEM;
        for (char *save = NULL, *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                char *c1 = strchr(w, ':'), *c2 = strrchr(w, ':');
                if (!c1 || c1 == c2 || c1 == w || c2 == c1 + 1)
                        return -EINVAL;
                if (n >= FERRY_VM_DISKS_MAX)
                        return -ERANGE;
                FerryDisk *d = &vm->disks[n];
                *c1 = *c2 = 0;
                if (strlen(w) >= sizeof(d->target) || strlen(c1 + 1) >= sizeof(d->path))
                        return -ERANGE;
                for (const char *p = w; *p; p++)
                        if (!isalnum((unsigned char) *p))
                                return -EINVAL;
                if (streq(c2 + 1, "shared"))
                        d->shared = true;
                else if (streq(c2 + 1, "local"))
                        d->shared = false;
                else
                        return -EINVAL;
                strcpy(d->target, w);
                strcpy(d->path, c1 + 1);
                n++;
        }
        vm->n_disks = n;
        return 0;
}

/* A decimal with up to three places, > 0, into thousandths. */
static int p_scale(const char *value, void *obj, const KeyDef *k) {
        uint64_t whole = 0, frac = 0;
        unsigned places = 0;
        const char *p = value;

        if (!isdigit((unsigned char) *p))
                return -EINVAL;
        for (; isdigit((unsigned char) *p); p++) {
                if (whole > UINT64_MAX / 10000)
                        return -ERANGE;
                whole = whole * 10 + (uint64_t) (*p - '0');
        }
        if (*p == '.') {
                for (p++; isdigit((unsigned char) *p); p++) {
                        if (++places > 3)
                                return -EINVAL;
                        frac = frac * 10 + (uint64_t) (*p - '0');
                }
        }
        if (*p)
                return -EINVAL;
        while (places++ < 3)
                frac *= 10;
        uint64_t v = whole * 1000 + frac;
        if (v == 0)
                return -ERANGE;
        *(uint64_t *) FIELD(obj, k) = v;
        return 0;
}

static int p_clock(const char *value, void *obj, const KeyDef *k) {
        SimClock *c = (SimClock *) FIELD(obj, k);
        if (streq(value, "monotonic"))
                *c = SIM_CLOCK_MONOTONIC;
        else if (streq(value, "manual"))
                *c = SIM_CLOCK_MANUAL;
        else
                return -EINVAL;
        return 0;
}

static const char *const event_names[_SIM_EVENT_MAX] = {
        [SIM_EVENT_BANDWIDTH] = "bandwidth",
        [SIM_EVENT_MAX_DOWNTIME] = "max_downtime",
        [SIM_EVENT_AUTO_CONVERGE] = "auto_converge",
        [SIM_EVENT_POSTCOPY] = "postcopy",
};

const char *sim_event_type_to_string(SimEventType t) {
        return (unsigned) t < _SIM_EVENT_MAX ? event_names[t] : "unknown";
}

int sim_marker_add_event(SimMarker *m, uint64_t at, SimEventType type, uint64_t value) {
        /* Events are in time order; a replay relies on it. */
        if (m->n_events > 0 && at < m->events[m->n_events - 1].at)
                return -EINVAL;
        SimEvent *n = realloc(m->events, (m->n_events + 1) * sizeof(SimEvent));
        if (!n)
                return -ENOMEM;
        m->events = n;
        m->events[m->n_events++] = (SimEvent) { .at = at, .type = type, .value = value };
        return 0;
}

void sim_marker_done(SimMarker *m) {
        free(m->events);
        m->events = NULL;
        m->n_events = 0;
}

/* "AT TYPE [VALUE]" */
static int p_event(const char *value, void *obj, const KeyDef *k) {
        SimMarker *m = obj;
        _cleanup_free_ char *copy = strdup(value);
        char *save = NULL, *at, *type, *val, *extra;
        uint64_t t, v = 0;

        if (!copy)
                return -ENOMEM;
        at = strtok_r(copy, " \t", &save);
        type = strtok_r(NULL, " \t", &save);
        val = strtok_r(NULL, " \t", &save);
        extra = strtok_r(NULL, " \t", &save);
        if (!at || !type || extra || parse_u64(at, &t) < 0)
                return -EINVAL;
        for (SimEventType e = 0; e < _SIM_EVENT_MAX; e++) {
                if (!streq(type, event_names[e]))
                        continue;
                if ((e == SIM_EVENT_POSTCOPY) != !val)
                        return -EINVAL;
                if (val && parse_u64(val, &v) < 0)
                        return -EINVAL;
                if (e == SIM_EVENT_BANDWIDTH && v == 0)
                        return -EINVAL;
                return sim_marker_add_event(m, t, e, v);
        }
        return -EINVAL;
}

/* Parses `text` into `obj` with the key table; stops at the first error,
 * which names the file and the line. Keys may appear once unless marked
 * as repeating, and required ones must appear. */
static int parse_text(const char *text, const char *name, const KeyDef *keys, size_t n_keys, void *obj, SimError *e) {
        uint64_t seen = 0;
        unsigned line = 0;

        for (const char *p = text; *p;) {
                size_t n = strcspn(p, "\n");
                _cleanup_free_ char *l = strndup(p, n);
                char *s, *eq, *key, *value;
                size_t i;

                if (!l)
                        return -ENOMEM;
                line++;
                p += n;
                if (*p == '\n')
                        p++;

                s = strstrip(l);
                if (!*s || *s == '#')
                        continue;
                eq = strchr(s, '=');
                if (!eq)
                        return fail(e, name, line, "expected \"key = value\", got \"%s\"", s);
                *eq = 0;
                key = strstrip(s);
                value = strstrip(eq + 1);
                size_t vl = strlen(value);
                if (vl >= 2 && value[0] == '"' && value[vl - 1] == '"') {
                        value[vl - 1] = 0;
                        value++;
                }
                for (i = 0; i < n_keys; i++)
                        if (streq(keys[i].key, key))
                                break;
                if (i == n_keys)
                        return fail(e, name, line, "unknown key \"%s\"", key);
                if (!keys[i].repeats && (seen & (UINT64_C(1) << i)))
                        return fail(e, name, line, "key \"%s\" given twice", key);
                seen |= UINT64_C(1) << i;
                int r = keys[i].parse(value, obj, &keys[i]);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return fail(e, name, line, "invalid value \"%s\" for %s: expected %s", value, key,
                                    keys[i].expects);
        }
        for (size_t i = 0; i < n_keys; i++)
                if (keys[i].required && !(seen & (UINT64_C(1) << i)))
                        return fail(e, name, 0, "missing key \"%s\"", keys[i].key);
        return 0;
}

/* ---- params.conf ----------------------------------------------------- */

#define P(f) offsetof(SimParams, f)
static const KeyDef params_keys[] = {
        { "time_scale",         p_scale,         P(time_scale_milli),   0, false, false, "a positive number of simulated seconds per real second, e.g. 10 or 0.5" },
        { "clock",              p_clock,         P(clock),              0, false, false, "monotonic or manual" },
        { "seed",               p_u64,           P(seed),               0, false, false, "an unsigned integer" },
        { "setup_ms",           p_u64,           P(setup_ms),           0, false, false, "milliseconds" },
        { "switchover_ms",      p_u64,           P(switchover_ms),      0, false, false, "milliseconds" },
        { "max_downtime_ms",    p_u64,           P(max_downtime_ms),    0, false, false, "milliseconds" },
        { "max_iterations",     p_u32_positive,  P(max_iterations),     0, false, false, "a positive integer" },
        { "jitter_permille",    p_permille999,   P(jitter_permille),    0, false, false, "0 to 999" },
        { "throttle_initial",   p_percent99,     P(throttle_initial),   0, false, false, "a percentage, 0 to 99" },
        { "throttle_increment", p_percent99,     P(throttle_increment), 0, false, false, "a percentage, 0 to 99" },
        { "throttle_max",       p_percent99,     P(throttle_max),       0, false, false, "a percentage, 0 to 99" },
        { "throttle_trigger",   p_percent100,    P(throttle_trigger),   0, false, false, "a percentage, 0 to 100" },
};
#undef P

void sim_params_default(SimParams *p) {
        PrecopyParams d;

        precopy_params_default(&d);
        *p = (SimParams) {
                .time_scale_milli = 1000,
                .clock = SIM_CLOCK_MONOTONIC,
                .seed = 1,
                .setup_ms = d.setup_ms,
                .switchover_ms = d.switchover_ms,
                .max_downtime_ms = d.max_downtime_ms,
                .max_iterations = d.max_iterations,
                .jitter_permille = 0,
                .throttle_initial = d.throttle_initial,
                .throttle_increment = d.throttle_increment,
                .throttle_max = d.throttle_max,
                .throttle_trigger = d.throttle_trigger,
        };
}

int sim_parse_params(const char *text, const char *name, SimParams *ret, SimError *e) {
        SimParams p;
        int r;

        sim_params_default(&p);
        r = parse_text(text, name, params_keys, ELEMENTSOF(params_keys), &p, e);
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}

static const char *format_scale(char *buf, size_t len, uint64_t milli) {
        if (milli % 1000 == 0)
                snprintf(buf, len, "%" PRIu64, milli / 1000);
        else {
                snprintf(buf, len, "%" PRIu64 ".%03" PRIu64, milli / 1000, milli % 1000);
                /* 0.500 -> 0.5 */
                size_t n = strlen(buf);
                while (buf[n - 1] == '0')
                        buf[--n] = 0;
        }
        return buf;
}

static int finish_memstream(FILE *f, char **buf, char **ret) {
        if (fclose(f) != 0) {
                free(*buf);
                *buf = NULL;
                return -ENOMEM;
        }
        *ret = TAKE_PTR(*buf);
        return 0;
}

int sim_format_params(const SimParams *p, char **ret) {
        char *buf = NULL, scale[32];
        size_t size;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# sim world parameters (see plugins/sim/README.md)\n"
                "time_scale = %s\n"
                "clock = %s\n"
                "seed = %" PRIu64 "\n"
                "setup_ms = %" PRIu64 "\n"
                "switchover_ms = %" PRIu64 "\n"
                "max_downtime_ms = %" PRIu64 "\n"
                "max_iterations = %" PRIu32 "\n"
                "jitter_permille = %" PRIu32 "\n"
                "throttle_initial = %" PRIu32 "\n"
                "throttle_increment = %" PRIu32 "\n"
                "throttle_max = %" PRIu32 "\n"
                "throttle_trigger = %" PRIu32 "\n",
                format_scale(scale, sizeof(scale), p->time_scale_milli),
                p->clock == SIM_CLOCK_MANUAL ? "manual" : "monotonic",
                p->seed, p->setup_ms, p->switchover_ms, p->max_downtime_ms, p->max_iterations,
                p->jitter_permille, p->throttle_initial, p->throttle_increment, p->throttle_max,
                p->throttle_trigger);
        return finish_memstream(f, &buf, ret);
}

/* ---- hosts/NODE.conf ------------------------------------------------- */

#define H(f) offsetof(SimHost, f), sizeof(((SimHost *) 0)->f)
static const KeyDef host_keys[] = {
        { "cpu_vendor",         p_nonempty,      H(cpu_vendor),         true,  false, "a vendor string such as AuthenticAMD" },
        { "cpu_model",          p_string,        H(cpu_model),          false, false, "a model name" },
        { "cpu_features",       p_words,         H(cpu_features),       false, false, "space-separated feature names" },
        { "cpus",               p_u32_positive,  H(cpus),               true,  false, "a positive integer" },
        { "memory_total",       p_size_positive, H(memory_total),       true,  false, "a size such as 512G" },
        { "hypervisor_version", p_version,       H(hypervisor_version), false, false, "a dotted version such as 8.0.0" },
        { "link_bandwidth",     p_size_positive, H(link_bandwidth),     true,  false, "bytes per second, e.g. 1250M" },
        { "stream_cap",         p_size,          H(stream_cap),         false, false, "bytes per second, 0 = none" },
};
#undef H

int sim_parse_host(const char *text, const char *name, SimHost *ret, SimError *e) {
        SimHost h = {
                .hypervisor_version = "1.0.0",
        };
        int r;

        r = parse_text(text, name, host_keys, ELEMENTSOF(host_keys), &h, e);
        if (r < 0)
                return r;
        *ret = h;
        return 0;
}

int sim_format_host(const SimHost *h, char **ret) {
        char *buf = NULL, a[32], b[32], c[32];
        size_t size;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        fprintf(f,
                "cpu_vendor = %s\n"
                "cpu_model = %s\n"
                "cpu_features = %s\n"
                "cpus = %" PRIu32 "\n"
                "memory_total = %s\n"
                "hypervisor_version = %s\n"
                "link_bandwidth = %s\n"
                "stream_cap = %s\n",
                h->cpu_vendor, h->cpu_model, h->cpu_features, h->cpus,
                sim_format_size(a, sizeof(a), h->memory_total), h->hypervisor_version,
                sim_format_size(b, sizeof(b), h->link_bandwidth), sim_format_size(c, sizeof(c), h->stream_cap));
        return finish_memstream(f, &buf, ret);
}

/* ---- vms/NODE/VM.conf ------------------------------------------------ */

#define V(f) offsetof(SimVm, f), sizeof(((SimVm *) 0)->f)
static const KeyDef vm_keys[] = {
        { "uuid",               p_uuid,          V(uuid),               true,  false, "a UUID" },
        { "state",              p_state,         V(state),              false, false, "running, paused, shutoff or other" },
        { "vcpus",              p_u32_positive,  V(vcpus),              false, false, "a positive integer" },
        { "memory",             p_size_positive, V(memory),             true,  false, "a size such as 8G" },
        { "working_set",        p_size,          V(working_set),        false, false, "a size no larger than memory" },
        { "dirty_rate",         p_size,          V(dirty_rate),         false, false, "bytes per second, e.g. 50M" },
        { "cpu_use_permille",   p_u32,           V(cpu_use_permille),   false, false, "an integer" },
        { "passthrough",        p_u32,           V(passthrough),        false, false, "a number of host devices" },
        { "disks",              p_disks,         V(disks),              false, false, "TARGET:PATH:shared|local ..." },
        { "cpu_model_required", p_words,         V(cpu_model_required), false, false, "space-separated feature names" },
        { "machine",            p_version,       V(machine),            false, false, "a dotted hypervisor version" },
};
#undef V

int sim_parse_vm(const char *text, const char *name, SimVm *ret, SimError *e) {
        SimVm vm = {
                .state = FERRY_VM_RUNNING,
                .vcpus = 1,
        };
        int r;

        r = parse_text(text, name, vm_keys, ELEMENTSOF(vm_keys), &vm, e);
        if (r < 0)
                return r;
        if (vm.working_set > vm.memory)
                return fail(e, name, 0, "working_set is larger than memory");
        *ret = vm;
        return 0;
}

int sim_format_vm(const SimVm *vm, char **ret) {
        char *buf = NULL, a[32], b[32], c[32];
        size_t size;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        fprintf(f,
                "uuid = %s\n"
                "state = %s\n"
                "vcpus = %" PRIu32 "\n"
                "memory = %s\n"
                "working_set = %s\n"
                "dirty_rate = %s\n"
                "cpu_use_permille = %" PRIu32 "\n"
                "passthrough = %" PRIu32 "\n"
                "disks =",
                vm->uuid, state_names[vm->state == FERRY_VM_MIGRATING ? FERRY_VM_RUNNING : vm->state], vm->vcpus,
                sim_format_size(a, sizeof(a), vm->memory), sim_format_size(b, sizeof(b), vm->working_set),
                sim_format_size(c, sizeof(c), vm->dirty_rate), vm->cpu_use_permille, vm->passthrough);
        for (uint32_t i = 0; i < vm->n_disks; i++)
                fprintf(f, " %s:%s:%s", vm->disks[i].target, vm->disks[i].path,
                        vm->disks[i].shared ? "shared" : "local");
        fputc('\n', f);
        if (vm->cpu_model_required[0])
                fprintf(f, "cpu_model_required = %s\n", vm->cpu_model_required);
        if (vm->machine[0])
                fprintf(f, "machine = %s\n", vm->machine);
        return finish_memstream(f, &buf, ret);
}

/* ---- migrations/VM.conf ---------------------------------------------- */

#define M(f) offsetof(SimMarker, f), sizeof(((SimMarker *) 0)->f)
static const KeyDef marker_keys[] = {
        { "vm",                 p_name,          M(vm),                 true,  false, "a VM name" },
        { "source",             p_name,          M(source),             true,  false, "a node name" },
        { "destination",        p_name,          M(destination),        true,  false, "a node name" },
        { "boot_id",            p_string,        M(boot_id),            false, false, "a boot id" },
        { "start",              p_u64,           M(start),              true,  false, "simulated microseconds" },
        { "started_realtime",   p_u64,           M(started_realtime),   false, false, "microseconds" },
        { "reserved",           p_u64,           M(reserved),           false, false, "bytes" },
        { "bandwidth_cap",      p_u64,           M(bandwidth_cap),      false, false, "bytes per second" },
        { "postcopy_allowed",   p_bool,          M(postcopy_allowed),   false, false, "yes or no" },
        { "memory",             p_u64,           M(model.memory),       true,  false, "bytes" },
        { "working_set",        p_u64,           M(model.working_set),  false, false, "bytes" },
        { "dirty_rate",         p_u64,           M(model.dirty_rate),   false, false, "bytes per second" },
        { "bandwidth",          p_u64,           M(model.bandwidth),    true,  false, "bytes per second" },
        { "max_downtime_ms",    p_u64,           M(model.max_downtime_ms), false, false, "milliseconds" },
        { "max_iterations",     p_u32_positive,  M(model.max_iterations), false, false, "a positive integer" },
        { "setup_ms",           p_u64,           M(model.setup_ms),     false, false, "milliseconds" },
        { "switchover_ms",      p_u64,           M(model.switchover_ms), false, false, "milliseconds" },
        { "auto_converge",      p_bool,          M(model.auto_converge), false, false, "yes or no" },
        { "throttle_initial",   p_percent99,     M(model.throttle_initial), false, false, "a percentage" },
        { "throttle_increment", p_percent99,     M(model.throttle_increment), false, false, "a percentage" },
        { "throttle_max",       p_percent99,     M(model.throttle_max), false, false, "a percentage" },
        { "throttle_trigger",   p_percent100,    M(model.throttle_trigger), false, false, "a percentage" },
        { "jitter_permille",    p_permille999,   M(model.jitter_permille), false, false, "0 to 999" },
        { "seed",               p_u64,           M(model.seed),         false, false, "an unsigned integer" },
        { "event",              p_event,         0, 0,                  false, true,  "AT TYPE [VALUE]" },
};
#undef M

int sim_parse_marker(const char *text, const char *name, SimMarker *ret, SimError *e) {
        SimMarker m = {};
        int r;

        precopy_params_default(&m.model);
        r = parse_text(text, name, marker_keys, ELEMENTSOF(marker_keys), &m, e);
        if (r < 0) {
                sim_marker_done(&m);
                return r;
        }
        if (m.model.memory == 0 || m.model.bandwidth == 0 || m.model.working_set > m.model.memory) {
                sim_marker_done(&m);
                return fail(e, name, 0, "memory, bandwidth or working_set out of range");
        }
        *ret = m;
        return 0;
}

int sim_format_marker(const SimMarker *m, char **ret) {
        char *buf = NULL;
        size_t size;
        FILE *f = open_memstream(&buf, &size);
        const PrecopyParams *p = &m->model;

        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# a migration in flight; removed when it ends (see plugins/sim/README.md)\n"
                "vm = %s\n"
                "source = %s\n"
                "destination = %s\n"
                "boot_id = %s\n"
                "start = %" PRIu64 "\n"
                "started_realtime = %" PRIu64 "\n"
                "reserved = %" PRIu64 "\n"
                "bandwidth_cap = %" PRIu64 "\n"
                "postcopy_allowed = %s\n"
                "memory = %" PRIu64 "\n"
                "working_set = %" PRIu64 "\n"
                "dirty_rate = %" PRIu64 "\n"
                "bandwidth = %" PRIu64 "\n"
                "max_downtime_ms = %" PRIu64 "\n"
                "max_iterations = %" PRIu32 "\n"
                "setup_ms = %" PRIu64 "\n"
                "switchover_ms = %" PRIu64 "\n"
                "auto_converge = %s\n"
                "throttle_initial = %" PRIu32 "\n"
                "throttle_increment = %" PRIu32 "\n"
                "throttle_max = %" PRIu32 "\n"
                "throttle_trigger = %" PRIu32 "\n"
                "jitter_permille = %" PRIu32 "\n"
                "seed = %" PRIu64 "\n",
                m->vm, m->source, m->destination, m->boot_id, m->start, m->started_realtime, m->reserved,
                m->bandwidth_cap, m->postcopy_allowed ? "yes" : "no", p->memory, p->working_set, p->dirty_rate,
                p->bandwidth, p->max_downtime_ms, p->max_iterations, p->setup_ms, p->switchover_ms,
                p->auto_converge ? "yes" : "no", p->throttle_initial, p->throttle_increment, p->throttle_max,
                p->throttle_trigger, p->jitter_permille, p->seed);
        for (size_t i = 0; i < m->n_events; i++) {
                fprintf(f, "event = %" PRIu64 " %s", m->events[i].at, sim_event_type_to_string(m->events[i].type));
                if (m->events[i].type != SIM_EVENT_POSTCOPY)
                        fprintf(f, " %" PRIu64, m->events[i].value);
                fputc('\n', f);
        }
        return finish_memstream(f, &buf, ret);
}

/* ---- volumes/NAME.conf ----------------------------------------------- */

/* A node name, or empty for nobody. */
static int p_holder(const char *value, void *obj, const KeyDef *k) {
        return !*value || sim_name_is_valid(value) ? p_string(value, obj, k) : -EINVAL;
}

static int p_delay_ms(const char *value, void *obj, const KeyDef *k) {
        return p_u32_max(value, obj, 0, SIM_VOLUME_DELAY_MAX_MS, k);
}

#define VOL(f) offsetof(SimVolume, f), sizeof(((SimVolume *) 0)->f)
#define MS "milliseconds, 0 to 3600000"
static const KeyDef volume_keys[] = {
        { "holder",                  p_holder,   VOL(holder),                  false, false, "a node name, or nothing for nobody" },
        { "holder_epoch",            p_u64,      VOL(holder_epoch),            false, false, "an unsigned integer" },
        { "epoch",                   p_u64,      VOL(epoch),                   false, false, "an unsigned integer" },
        { "fail_prepare",            p_bool,     VOL(fail_prepare),            false, false, "yes or no" },
        { "fail_activate",           p_bool,     VOL(fail_activate),           false, false, "yes or no" },
        { "fail_release",            p_bool,     VOL(fail_release),            false, false, "yes or no" },
        { "fail_held",               p_bool,     VOL(fail_held),               false, false, "yes or no" },
        { "delay_prepare_ms",        p_delay_ms, VOL(delay_prepare_ms),        false, false, MS },
        { "delay_activate_ms",       p_delay_ms, VOL(delay_activate_ms),       false, false, MS },
        { "delay_release_ms",        p_delay_ms, VOL(delay_release_ms),        false, false, MS },
        { "delay_held_ms",           p_delay_ms, VOL(delay_held_ms),           false, false, MS },
        { "delay_after_prepare_ms",  p_delay_ms, VOL(delay_after_prepare_ms),  false, false, MS },
        { "delay_after_activate_ms", p_delay_ms, VOL(delay_after_activate_ms), false, false, MS },
        { "delay_after_release_ms",  p_delay_ms, VOL(delay_after_release_ms),  false, false, MS },
};
#undef MS
#undef VOL

int sim_parse_volume(const char *text, const char *name, SimVolume *ret, SimError *e) {
        SimVolume v = {};
        int r;

        r = parse_text(text, name, volume_keys, ELEMENTSOF(volume_keys), &v, e);
        if (r < 0)
                return r;
        if (!v.holder[0] && v.holder_epoch > 0)
                return fail(e, name, 0, "holder_epoch %" PRIu64 " without a holder", v.holder_epoch);
        if (v.holder_epoch > v.epoch)
                return fail(e, name, 0, "holder_epoch %" PRIu64 " is newer than epoch %" PRIu64, v.holder_epoch,
                            v.epoch);
        *ret = v;
        return 0;
}

int sim_format_volume(const SimVolume *v, char **ret) {
        char *buf = NULL;
        size_t size;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        fprintf(f,
                "# a shared volume's holder and fencing epochs (see plugins/sim/README.md)\n"
                "holder = %s\n"
                "holder_epoch = %" PRIu64 "\n"
                "epoch = %" PRIu64 "\n",
                v->holder, v->holder_epoch, v->epoch);
        /* Fault knobs only when set: they are a test's doing. */
        if (v->fail_prepare)
                fputs("fail_prepare = yes\n", f);
        if (v->fail_activate)
                fputs("fail_activate = yes\n", f);
        if (v->fail_release)
                fputs("fail_release = yes\n", f);
        if (v->fail_held)
                fputs("fail_held = yes\n", f);
        const struct {
                const char *key;
                uint32_t ms;
        } delays[] = {
                { "delay_prepare_ms", v->delay_prepare_ms },
                { "delay_activate_ms", v->delay_activate_ms },
                { "delay_release_ms", v->delay_release_ms },
                { "delay_held_ms", v->delay_held_ms },
                { "delay_after_prepare_ms", v->delay_after_prepare_ms },
                { "delay_after_activate_ms", v->delay_after_activate_ms },
                { "delay_after_release_ms", v->delay_after_release_ms },
        };
        for (size_t i = 0; i < ELEMENTSOF(delays); i++)
                if (delays[i].ms > 0)
                        fprintf(f, "%s = %" PRIu32 "\n", delays[i].key, delays[i].ms);
        return finish_memstream(f, &buf, ret);
}

/* ---- the world directory --------------------------------------------- */

/* The error of a failed read_text(), for the caller's SimError. */
static int read_error(SimError *e, const char *path, int r) {
        if (r == -EBADMSG)
                return fail(e, path, 0, "file contains a NUL byte");
        return fail_errno(e, path, r, "cannot read");
}

static void read_boot_id(char buf[static 37]) {
        _cleanup_free_ char *t = NULL;

        buf[0] = 0;
        if (read_text("/proc/sys/kernel/random/boot_id", &t) < 0)
                return;
        snprintf(buf, 37, "%s", strstrip(t));
}

int sim_world_open(const char *dir, SimWorld **ret, SimError *e) {
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        _cleanup_free_ char *text = NULL, *params = NULL, *lock = NULL, *migrations = NULL;
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->lock_fd = -1;
        w->dir = strdup(dir);
        if (!w->dir)
                return -ENOMEM;
        /* Trailing slashes would double in every path. */
        for (size_t n = strlen(w->dir); n > 1 && w->dir[n - 1] == '/'; n--)
                w->dir[n - 1] = 0;
        params = world_path(w, "params.conf");
        lock = world_path(w, ".lock");
        migrations = world_path(w, "migrations");
        if (!params || !lock || !migrations)
                return -ENOMEM;
        r = read_text(params, &text);
        if (r == -ENOENT)
                return fail_errno(e, params, r, "not a sim world (ferry-sim-world create makes one)");
        if (r < 0)
                return read_error(e, params, r);
        r = sim_parse_params(text, params, &w->params, e);
        if (r < 0)
                return r;
        w->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (w->lock_fd < 0)
                return fail_errno(e, lock, negative_errno(), "cannot open");
        r = mkdir_ok(migrations);
        if (r < 0)
                return fail_errno(e, migrations, r, "cannot create");
        read_boot_id(w->boot_id);
        *ret = TAKE_PTR(w);
        return 0;
}

SimWorld *sim_world_free(SimWorld *w) {
        if (!w)
                return NULL;
        if (w->lock_fd >= 0)
                (void) close(w->lock_fd);
        free(w->dir);
        free(w);
        return NULL;
}

int sim_world_create(const char *dir, const SimParams *p, SimWorld **ret, SimError *e) {
        _cleanup_free_ char *params = NULL, *text = NULL;
        static const char *const subdirs[] = { "hosts", "vms", "migrations" };
        int r;

        r = mkdir_ok(dir);
        if (r < 0)
                return fail_errno(e, dir, r, "cannot create");
        if (asprintf(&params, "%s/params.conf", dir) < 0)
                return -ENOMEM;
        if (access(params, F_OK) == 0)
                return fail_errno(e, dir, -EEXIST, "already holds a world");
        for (size_t i = 0; i < ELEMENTSOF(subdirs); i++) {
                _cleanup_free_ char *s = NULL;
                if (asprintf(&s, "%s/%s", dir, subdirs[i]) < 0)
                        return -ENOMEM;
                r = mkdir_ok(s);
                if (r < 0)
                        return fail_errno(e, s, r, "cannot create");
        }
        r = sim_format_params(p, &text);
        if (r < 0)
                return r;
        r = write_atomic(params, text);
        if (r < 0)
                return fail_errno(e, params, r, "cannot write");
        return sim_world_open(dir, ret, e);
}

int sim_world_lock(SimWorld *w) {
        if (w->lock_depth == 0)
                while (flock(w->lock_fd, LOCK_EX) < 0)
                        if (errno != EINTR)
                                return negative_errno();
        w->lock_depth++;
        return 0;
}

void sim_world_unlock(SimWorld *w) {
        if (w->lock_depth == 0)
                return;
        if (--w->lock_depth == 0)
                (void) flock(w->lock_fd, LOCK_UN);
}

int sim_world_now(SimWorld *w, uint64_t *ret) {
        if (w->params.clock == SIM_CLOCK_MANUAL) {
                _cleanup_free_ char *path = world_path(w, "clock"), *text = NULL;
                int r;

                if (!path)
                        return -ENOMEM;
                r = read_text(path, &text);
                if (r == -ENOENT) {
                        *ret = 0;
                        return 0;
                }
                if (r < 0)
                        return r;
                return parse_u64(strstrip(text), ret);
        }

        struct timespec ts;
        if (clock_gettime(CLOCK_MONOTONIC, &ts) < 0)
                return negative_errno();
        unsigned __int128 real = (unsigned __int128) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        unsigned __int128 sim = real * w->params.time_scale_milli / 1000;
        *ret = sim > UINT64_MAX ? UINT64_MAX : (uint64_t) sim;
        return 0;
}

int sim_world_advance_clock(SimWorld *w, uint64_t usec) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        _cleanup_free_ char *path = NULL, *text = NULL;
        uint64_t now;
        int r;

        if (w->params.clock != SIM_CLOCK_MANUAL)
                return -EOPNOTSUPP;
        path = world_path(w, "clock");
        if (!path)
                return -ENOMEM;
        r = sim_world_lock(w);
        if (r < 0)
                return r;
        locked = w;
        r = sim_world_now(w, &now);
        if (r < 0)
                return r;
        if (now > UINT64_MAX - usec)
                return -ERANGE;
        if (asprintf(&text, "%" PRIu64 "\n", now + usec) < 0)
                return -ENOMEM;
        return write_atomic(path, text);
}

int sim_world_list_nodes(SimWorld *w, char ***ret, size_t *ret_n) {
        _cleanup_free_ char *dir = world_path(w, "hosts");
        if (!dir)
                return -ENOMEM;
        return list_conf(dir, ret, ret_n);
}

int sim_world_load_host(SimWorld *w, const char *node, SimHost *ret, SimError *e) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        SimHost h;
        int r;

        if (!sim_name_is_valid(node))
                return fail(e, node, 0, "invalid node name");
        path = world_path(w, "hosts/%s.conf", node);
        if (!path)
                return -ENOMEM;
        r = read_text(path, &text);
        if (r == -ENOENT) {
                (void) fail_errno(e, path, r, "no such host");
                return -ENOENT;
        }
        if (r < 0)
                return read_error(e, path, r);
        r = sim_parse_host(text, path, &h, e);
        if (r < 0)
                return r;
        snprintf(h.name, sizeof(h.name), "%s", node);
        *ret = h;
        return 0;
}

static int load_vm_file(SimWorld *w, const char *node, const char *name, SimVm *ret, SimError *e) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        path = world_path(w, "vms/%s/%s.conf", node, name);
        if (!path)
                return -ENOMEM;
        if (!sim_name_is_valid(name))
                return fail(e, path, 0, "invalid VM name \"%s\"", name);
        r = read_text(path, &text);
        if (r == -ENOENT) {
                (void) fail_errno(e, path, r, "no such VM");
                return -ENOENT;
        }
        if (r < 0)
                return read_error(e, path, r);
        r = sim_parse_vm(text, path, ret, e);
        if (r < 0)
                return r;
        snprintf(ret->name, sizeof(ret->name), "%s", name);
        snprintf(ret->node, sizeof(ret->node), "%s", node);
        return 0;
}

int sim_world_load_vm(SimWorld *w, const char *node, const char *vm, SimVm *ret, SimError *e) {
        if (!sim_name_is_valid(node))
                return fail(e, node, 0, "invalid node name");
        return load_vm_file(w, node, vm, ret, e);
}

int sim_world_load_vms(SimWorld *w, const char *node, SimVm **ret, size_t *ret_n, SimError *e) {
        _cleanup_free_ char *dir = NULL;
        _cleanup_free_ SimVm *vms = NULL;
        char **names = NULL;
        size_t n = 0;
        int r;

        if (!sim_name_is_valid(node))
                return fail(e, node, 0, "invalid node name");
        dir = world_path(w, "vms/%s", node);
        if (!dir)
                return -ENOMEM;
        r = list_conf(dir, &names, &n);
        if (r < 0)
                return fail_errno(e, dir, r, "cannot list");
        if (n > 0) {
                vms = calloc(n, sizeof(SimVm));
                if (!vms) {
                        sim_strv_free(names, n);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n; i++) {
                r = load_vm_file(w, node, names[i], &vms[i], e);
                /* Gone between readdir() and open(): it moved away. */
                if (r == -ENOENT) {
                        memmove(&names[i], &names[i + 1], (n - i - 1) * sizeof(char *));
                        n--;
                        i--;
                        continue;
                }
                if (r < 0) {
                        sim_strv_free(names, n);
                        return r;
                }
        }
        sim_strv_free(names, n);
        *ret = TAKE_PTR(vms);
        *ret_n = n;
        return 0;
}

void sim_markers_free(SimMarker *m, size_t n) {
        if (!m)
                return;
        for (size_t i = 0; i < n; i++)
                sim_marker_done(&m[i]);
        free(m);
}

int sim_world_load_marker(SimWorld *w, const char *vm, SimMarker *ret, SimError *e) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        int r;

        path = world_path(w, "migrations/%s.conf", vm);
        if (!path)
                return -ENOMEM;
        r = read_text(path, &text);
        if (r == -ENOENT)
                return -ENOENT;
        if (r < 0)
                return read_error(e, path, r);
        r = sim_parse_marker(text, path, ret, e);
        if (r < 0)
                return r;
        if (!streq(ret->vm, vm)) {
                sim_marker_done(ret);
                return fail(e, path, 0, "names VM \"%s\", not \"%s\"", ret->vm, vm);
        }
        return 0;
}

int sim_world_load_markers(SimWorld *w, SimMarker **ret, size_t *ret_n, SimError *e) {
        _cleanup_free_ char *dir = world_path(w, "migrations");
        char **names = NULL;
        SimMarker *m = NULL;
        size_t n = 0, k = 0;
        int r;

        if (!dir)
                return -ENOMEM;
        r = list_conf(dir, &names, &n);
        if (r < 0)
                return fail_errno(e, dir, r, "cannot list");
        if (n > 0) {
                m = calloc(n, sizeof(SimMarker));
                if (!m) {
                        sim_strv_free(names, n);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n; i++) {
                r = sim_world_load_marker(w, names[i], &m[k], e);
                if (r == -ENOENT)
                        continue;
                if (r < 0) {
                        sim_strv_free(names, n);
                        sim_markers_free(m, k);
                        return r;
                }
                k++;
        }
        sim_strv_free(names, n);
        *ret = m;
        *ret_n = k;
        return 0;
}

int sim_world_list_volumes(SimWorld *w, char ***ret, size_t *ret_n) {
        _cleanup_free_ char *dir = world_path(w, "volumes");
        if (!dir)
                return -ENOMEM;
        return list_conf(dir, ret, ret_n);
}

int sim_world_load_volume(SimWorld *w, const char *volume, SimVolume *ret, SimError *e) {
        _cleanup_free_ char *path = NULL, *text = NULL;
        SimVolume v;
        int r;

        if (!sim_name_is_valid(volume))
                return fail(e, volume, 0, "invalid volume name");
        path = world_path(w, "volumes/%s.conf", volume);
        if (!path)
                return -ENOMEM;
        r = read_text(path, &text);
        if (r == -ENOENT) {
                (void) fail_errno(e, path, r, "no such volume");
                return -ENOENT;
        }
        if (r < 0)
                return read_error(e, path, r);
        r = sim_parse_volume(text, path, &v, e);
        if (r < 0)
                return r;
        snprintf(v.name, sizeof(v.name), "%s", volume);
        *ret = v;
        return 0;
}

int sim_world_load_volumes(SimWorld *w, SimVolume **ret, size_t *ret_n, SimError *e) {
        _cleanup_free_ char *dir = world_path(w, "volumes");
        _cleanup_free_ SimVolume *v = NULL;
        char **names = NULL;
        size_t n = 0, k = 0;
        int r;

        if (!dir)
                return -ENOMEM;
        r = list_conf(dir, &names, &n);
        if (r < 0)
                return fail_errno(e, dir, r, "cannot list");
        if (n > 0) {
                v = calloc(n, sizeof(SimVolume));
                if (!v) {
                        sim_strv_free(names, n);
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n; i++) {
                r = sim_world_load_volume(w, names[i], &v[k], e);
                if (r == -ENOENT)
                        continue;
                if (r < 0) {
                        sim_strv_free(names, n);
                        return r;
                }
                k++;
        }
        sim_strv_free(names, n);
        *ret = TAKE_PTR(v);
        *ret_n = k;
        return 0;
}

/* Takes `text` (NULL: out of memory) and `path`. */
static int write_owned(char *text, char *path) {
        _cleanup_free_ char *t = text, *p = path;

        if (!t || !p)
                return -ENOMEM;
        return write_atomic(p, t);
}

int sim_world_write_params(SimWorld *w, const SimParams *p) {
        char *text = NULL;
        int r = sim_format_params(p, &text);
        if (r < 0)
                return r;
        r = write_owned(text, world_path(w, "params.conf"));
        if (r >= 0)
                w->params = *p;
        return r;
}

int sim_world_write_host(SimWorld *w, const SimHost *h) {
        char *text = NULL;
        int r;

        if (!sim_name_is_valid(h->name))
                return -EINVAL;
        r = sim_format_host(h, &text);
        if (r < 0)
                return r;
        return write_owned(text, world_path(w, "hosts/%s.conf", h->name));
}

int sim_world_write_vm(SimWorld *w, const SimVm *vm) {
        char *text = NULL;
        int r;

        if (!sim_name_is_valid(vm->name) || !sim_name_is_valid(vm->node))
                return -EINVAL;
        _cleanup_free_ char *dir = world_path(w, "vms/%s", vm->node);
        if (!dir)
                return -ENOMEM;
        r = mkdir_ok(dir);
        if (r < 0)
                return r;
        r = sim_format_vm(vm, &text);
        if (r < 0)
                return r;
        return write_owned(text, world_path(w, "vms/%s/%s.conf", vm->node, vm->name));
}

int sim_world_write_marker(SimWorld *w, const SimMarker *m) {
        char *text = NULL;
        int r;

        if (!sim_name_is_valid(m->vm))
                return -EINVAL;
        r = sim_format_marker(m, &text);
        if (r < 0)
                return r;
        return write_owned(text, world_path(w, "migrations/%s.conf", m->vm));
}

int sim_world_write_volume(SimWorld *w, const SimVolume *v) {
        _cleanup_free_ char *dir = NULL;
        char *text = NULL;
        int r;

        if (!sim_name_is_valid(v->name) || (v->holder[0] && !sim_name_is_valid(v->holder)))
                return -EINVAL;
        dir = world_path(w, "volumes");
        if (!dir)
                return -ENOMEM;
        r = mkdir_ok(dir);
        if (r < 0)
                return r;
        r = sim_format_volume(v, &text);
        if (r < 0)
                return r;
        return write_owned(text, world_path(w, "volumes/%s.conf", v->name));
}

int sim_world_remove_marker(SimWorld *w, const char *vm) {
        _cleanup_free_ char *path = world_path(w, "migrations/%s.conf", vm);

        if (!path)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

int sim_world_move_vm(SimWorld *w, const char *vm, const char *source, const char *destination) {
        _cleanup_free_ char *from = NULL, *to = NULL, *dir = NULL;
        int r;

        from = world_path(w, "vms/%s/%s.conf", source, vm);
        to = world_path(w, "vms/%s/%s.conf", destination, vm);
        dir = world_path(w, "vms/%s", destination);
        if (!from || !to || !dir)
                return -ENOMEM;
        r = mkdir_ok(dir);
        if (r < 0)
                return r;
        /* RENAME_NOREPLACE: a VM of that name on the destination would
         * otherwise vanish under the one arriving. */
        if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
                return 0;
        if (errno != EINVAL && errno != ENOSYS)
                return negative_errno();
        /* A file system without RENAME_NOREPLACE: the world lock makes the
         * check and the rename one step for every ferryd. */
        if (access(to, F_OK) == 0)
                return -EEXIST;
        if (rename(from, to) < 0)
                return negative_errno();
        return 0;
}

int sim_world_take_owner(SimWorld *w, const char *vm, int *ret_fd) {
        _cleanup_free_ char *path = world_path(w, "migrations/%s.owner", vm);
        _cleanup_close_ int fd = -1;

        if (!path)
                return -ENOMEM;
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0)
                return negative_errno();
        if (flock(fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

void sim_world_drop_owner(SimWorld *w, const char *vm, int fd) {
        _cleanup_free_ char *path = world_path(w, "migrations/%s.owner", vm);

        if (path)
                (void) unlink(path);
        if (fd >= 0)
                (void) close(fd);
}
