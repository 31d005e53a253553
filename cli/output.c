/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "output.h"

void print_error(const char *fmt, ...) {
        va_list ap;

        /* Not program_invocation_short_name: scripts and docs match on the
         * prefix, which must not depend on how the binary was called. */
        fputs("ferryctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

/* Whether everything written to f so far reached its destination; flushing
 * here is what reports "no space left" for output redirected to a file. */
static int flush_result(FILE *f) {
        if (fflush(f) != 0)
                return negative_errno();
        return ferror(f) ? -EIO : 0;
}

/* ---- human formatting ---- */

static uint64_t clock_usec(clockid_t clock) {
        struct timespec ts;

        if (clock_gettime(clock, &ts) < 0)
                return 0;
        return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;
}

uint64_t clock_realtime_usec(void) {
        return clock_usec(CLOCK_REALTIME);
}

uint64_t clock_monotonic_usec(void) {
        return clock_usec(CLOCK_MONOTONIC);
}

char *format_timestamp(char buf[static FORMAT_TIMESTAMP_MAX], uint64_t usec) {
        time_t sec = (time_t) (usec / UINT64_C(1000000));
        struct tm tm;

        if (!localtime_r(&sec, &tm) ||
            strftime(buf, FORMAT_TIMESTAMP_MAX, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                /* Out of range for the calendar: still show something exact. */
                snprintf(buf, FORMAT_TIMESTAMP_MAX, "@%" PRIu64 "us", usec);
        return buf;
}

char *format_relative(char buf[static FORMAT_RELATIVE_MAX], uint64_t usec, uint64_t now_usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "d",   UINT64_C(86400000000) },
                { "h",   UINT64_C(3600000000) },
                { "min", UINT64_C(60000000) },
                { "s",   UINT64_C(1000000) },
        };
        uint64_t delta;

        if (usec > now_usec) {
                snprintf(buf, FORMAT_RELATIVE_MAX, "in the future");
                return buf;
        }

        delta = now_usec - usec;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (delta >= units[i].usec) {
                        snprintf(buf, FORMAT_RELATIVE_MAX, "%" PRIu64 "%s ago",
                                 delta / units[i].usec, units[i].suffix);
                        return buf;
                }

        snprintf(buf, FORMAT_RELATIVE_MAX, "just now");
        return buf;
}

char *format_duration(char buf[static FORMAT_DURATION_MAX], uint64_t usec) {
        const uint64_t ms = usec / 1000, s = usec / UINT64_C(1000000);

        if (s == 0)
                snprintf(buf, FORMAT_DURATION_MAX, "%" PRIu64 "ms", ms);
        else if (s < 60)
                snprintf(buf, FORMAT_DURATION_MAX, "%" PRIu64 "s", s);
        else if (s < 3600)
                snprintf(buf, FORMAT_DURATION_MAX, "%" PRIu64 "min %" PRIu64 "s", s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, FORMAT_DURATION_MAX, "%" PRIu64 "h %" PRIu64 "min", s / 3600, s % 3600 / 60);
        else
                snprintf(buf, FORMAT_DURATION_MAX, "%" PRIu64 "d %" PRIu64 "h", s / 86400, s % 86400 / 3600);
        return buf;
}

size_t utf8_width(const char *s) {
        size_t n = 0;

        /* Count every byte that does not continue a sequence. */
        for (; *s; s++)
                if (((unsigned char) *s & 0xc0) != 0x80)
                        n++;
        return n;
}

/* ---- tables ---- */

struct Table {
        size_t n_columns;
        char **headers;   /* n_columns strings, or NULL */
        bool *align_right;
        char **cells;     /* row-major */
        size_t n_cells;
        size_t n_allocated;
};

Table *table_new(size_t n_columns, const char *const *headers) {
        _cleanup_(table_freep) Table *t = NULL;

        if (n_columns == 0)
                return NULL;

        t = calloc(1, sizeof(Table));
        if (!t)
                return NULL;
        t->n_columns = n_columns;

        t->align_right = calloc(n_columns, sizeof(bool));
        if (!t->align_right)
                return NULL;

        if (headers) {
                t->headers = calloc(n_columns, sizeof(char *));
                if (!t->headers)
                        return NULL;
                for (size_t i = 0; i < n_columns; i++) {
                        t->headers[i] = strdup(headers[i]);
                        if (!t->headers[i])
                                return NULL;
                }
        }

        return TAKE_PTR(t);
}

Table *table_free(Table *t) {
        if (!t)
                return NULL;

        if (t->headers)
                for (size_t i = 0; i < t->n_columns; i++)
                        free(t->headers[i]);
        free(t->headers);
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->align_right);
        free(t);
        return NULL;
}

void table_set_align_right(Table *t, size_t column) {
        if (column < t->n_columns)
                t->align_right[column] = true;
}

int table_add_cell(Table *t, const char *s) {
        char *copy;

        if (t->n_cells == t->n_allocated) {
                size_t n = MAX(t->n_allocated * 2, (size_t) 16);
                char **cells = reallocarray(t->cells, n, sizeof(char *));
                if (!cells)
                        return -ENOMEM;
                t->cells = cells;
                t->n_allocated = n;
        }

        copy = strdup(s && *s ? s : "-");
        if (!copy)
                return -ENOMEM;
        t->cells[t->n_cells++] = copy;
        return 0;
}

static void print_row(const Table *t, char *const *row, size_t n, const size_t *widths, FILE *f) {
        for (size_t i = 0; i < n; i++) {
                size_t pad = widths[i] - utf8_width(row[i]);
                bool last = i + 1 == n;

                if (t->align_right[i])
                        fprintf(f, "%*s", (int) pad, "");
                fputs(row[i], f);
                /* No trailing blanks after the last cell. */
                if (!t->align_right[i] && !last)
                        fprintf(f, "%*s", (int) pad, "");
                if (!last)
                        fputs("  ", f);
        }
        fputc('\n', f);
}

int table_print(const Table *t, FILE *f) {
        _cleanup_free_ size_t *widths = NULL;

        widths = calloc(t->n_columns, sizeof(size_t));
        if (!widths)
                return -ENOMEM;

        if (t->headers)
                for (size_t i = 0; i < t->n_columns; i++)
                        widths[i] = utf8_width(t->headers[i]);
        for (size_t i = 0; i < t->n_cells; i++)
                widths[i % t->n_columns] = MAX(widths[i % t->n_columns], utf8_width(t->cells[i]));

        if (t->headers)
                print_row(t, t->headers, t->n_columns, widths, f);
        /* A partly filled last row is printed as far as it goes. */
        for (size_t i = 0; i < t->n_cells; i += t->n_columns)
                print_row(t, t->cells + i, MIN(t->n_columns, t->n_cells - i), widths, f);

        return flush_result(f);
}

/* ---- JSON ---- */

void json_init(JsonWriter *w, FILE *f, bool pretty) {
        *w = (JsonWriter) {
                .f = f,
                .pretty = pretty,
        };
}

static void json_newline(JsonWriter *w) {
        fputc('\n', w->f);
        for (unsigned i = 0; i < w->depth; i++)
                fputs("  ", w->f);
}

/* Whatever must come before a value or a key in the current position. */
static void json_prefix(JsonWriter *w) {
        if (w->after_key) {
                w->after_key = false;
                return;
        }

        if (w->need_comma)
                fputc(',', w->f);
        if (w->depth == 0)
                return;
        if (w->pretty)
                json_newline(w);
        else if (w->need_comma)
                fputc(' ', w->f);
}

static void json_begin(JsonWriter *w, char c) {
        json_prefix(w);
        fputc(c, w->f);
        w->depth++;
        w->need_comma = false;
}

static void json_end(JsonWriter *w, char c) {
        bool had_members = w->need_comma;

        w->depth--;
        if (w->pretty && had_members)
                json_newline(w);
        fputc(c, w->f);
        /* The container just closed is a member of its parent. */
        w->need_comma = true;
}

void json_begin_object(JsonWriter *w) {
        json_begin(w, '{');
}

void json_end_object(JsonWriter *w) {
        json_end(w, '}');
}

void json_begin_array(JsonWriter *w) {
        json_begin(w, '[');
}

void json_end_array(JsonWriter *w) {
        json_end(w, ']');
}

void json_key(JsonWriter *w, const char *key) {
        json_prefix(w);
        json_write_string(w->f, key);
        fputs(": ", w->f);
        w->need_comma = true;
        w->after_key = true;
}

static void json_value_done(JsonWriter *w) {
        w->need_comma = true;
}

void json_string(JsonWriter *w, const char *s) {
        json_prefix(w);
        if (s)
                json_write_string(w->f, s);
        else
                fputs("null", w->f);
        json_value_done(w);
}

void json_bool(JsonWriter *w, bool b) {
        json_prefix(w);
        fputs(b ? "true" : "false", w->f);
        json_value_done(w);
}

void json_uint(JsonWriter *w, uint64_t u) {
        json_prefix(w);
        fprintf(w->f, "%" PRIu64, u);
        json_value_done(w);
}

void json_int(JsonWriter *w, int64_t i) {
        json_prefix(w);
        fprintf(w->f, "%" PRIi64, i);
        json_value_done(w);
}

void json_double(JsonWriter *w, double d) {
        json_prefix(w);
        if (isfinite(d))
                /* %.17g round-trips every double. */
                fprintf(w->f, "%.17g", d);
        else
                fputs("null", w->f);
        json_value_done(w);
}

void json_null(JsonWriter *w) {
        json_prefix(w);
        fputs("null", w->f);
        json_value_done(w);
}

int json_finish(JsonWriter *w) {
        fputc('\n', w->f);
        return flush_result(w->f);
}

/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), or 0 if there is none. */
static size_t utf8_sequence_length(const unsigned char *s) {
        size_t n;
        uint32_t c;

        if (s[0] < 0x80)
                return 1;
        else if ((s[0] & 0xe0) == 0xc0) {
                n = 2;
                c = s[0] & 0x1f;
        } else if ((s[0] & 0xf0) == 0xe0) {
                n = 3;
                c = s[0] & 0x0f;
        } else if ((s[0] & 0xf8) == 0xf0) {
                n = 4;
                c = s[0] & 0x07;
        } else
                return 0;

        /* A NUL terminator fails the continuation test: no overread. */
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0;
                c = (c << 6) | (s[i] & 0x3f);
        }

        if ((n == 2 && c < 0x80) ||
            (n == 3 && c < 0x800) ||
            (n == 4 && c < 0x10000) ||
            (c >= 0xd800 && c <= 0xdfff) ||
            c > 0x10ffff)
                return 0;

        return n;
}

void json_write_string(FILE *f, const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        fputc('"', f);
        while (*p) {
                size_t n;

                switch (*p) {
                case '"':  fputs("\\\"", f); p++; continue;
                case '\\': fputs("\\\\", f); p++; continue;
                case '\b': fputs("\\b", f);  p++; continue;
                case '\f': fputs("\\f", f);  p++; continue;
                case '\n': fputs("\\n", f);  p++; continue;
                case '\r': fputs("\\r", f);  p++; continue;
                case '\t': fputs("\\t", f);  p++; continue;
                default:
                        break;
                }

                /* DEL is legal in JSON, but escaping it keeps the output
                 * free of bytes that upset terminals. */
                if (*p < 0x20 || *p == 0x7f) {
                        fprintf(f, "\\u%04x", *p);
                        p++;
                        continue;
                }

                n = utf8_sequence_length(p);
                if (n == 0) {
                        fputs("\\ufffd", f);
                        p++;
                        continue;
                }
                fwrite(p, 1, n, f);
                p += n;
        }
        fputc('"', f);
}
