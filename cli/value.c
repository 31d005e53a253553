/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strutil.h"
#include "value.h"

void value_done(Value *v) {
        switch (v->type) {
        case VALUE_STRING:
                free(v->str);
                break;
        case VALUE_STRV:
        case VALUE_PAIRS:
                for (char **s = v->strv; s && *s; s++)
                        free(*s);
                free(v->strv);
                break;
        default:
                break;
        }
        *v = (Value) {};
}

void values_done(Value *values, size_t n) {
        for (size_t i = 0; i < n; i++)
                value_done(values + i);
}

const char *value_type_to_string(ValueType t) {
        static const char *const names[] = {
                [VALUE_UNSET]  = "unset",
                [VALUE_STRING] = "string",
                [VALUE_BOOL]   = "boolean",
                [VALUE_UINT]   = "unsigned integer",
                [VALUE_INT]    = "integer",
                [VALUE_DOUBLE] = "double",
                [VALUE_STRV]   = "string array",
                [VALUE_PAIRS]  = "array of string pairs",
        };

        return (size_t) t < ELEMENTSOF(names) ? names[t] : "invalid";
}

static char *strv_join(char *const *l, const char *sep) {
        size_t len = 0, n = 0;
        char *s, *p;

        for (char *const *i = l; i && *i; i++, n++)
                len += strlen(*i);
        if (n > 0)
                len += (n - 1) * strlen(sep);

        s = p = malloc(len + 1);
        if (!s)
                return NULL;
        *p = '\0';
        for (char *const *i = l; i && *i; i++) {
                if (i != l)
                        p = stpcpy(p, sep);
                p = stpcpy(p, *i);
        }
        return s;
}

size_t value_n_pairs(const Value *v) {
        size_t n = 0;

        if (v->type != VALUE_PAIRS)
                return 0;
        for (char **s = v->strv; s && s[0] && s[1]; s += 2)
                n++;
        return n;
}

/* "a: b; c: d" */
static char *pairs_join(const Value *v) {
        size_t n = value_n_pairs(v), len = 1;
        char *s, *p;

        for (size_t i = 0; i < 2 * n; i++)
                len += strlen(v->strv[i]) + 2;
        s = p = malloc(len);
        if (!s)
                return NULL;
        *p = '\0';
        for (size_t i = 0; i < n; i++) {
                if (i > 0)
                        p = stpcpy(p, "; ");
                p = stpcpy(p, v->strv[2 * i]);
                p = stpcpy(p, ": ");
                p = stpcpy(p, v->strv[2 * i + 1]);
        }
        return s;
}

static char *format_timestamp_and_age(uint64_t usec, uint64_t now_usec) {
        char ts[FORMAT_TIMESTAMP_MAX], rel[FORMAT_RELATIVE_MAX];
        char *s;

        /* 0 is what the daemon reports for a node that never published. */
        if (usec == 0)
                return strdup("never");

        if (asprintf(&s, "%s (%s)", format_timestamp(ts, usec), format_relative(rel, usec, now_usec)) < 0)
                return NULL;
        return s;
}

char *value_format(const Value *v, ValueFormat format, uint64_t now_usec) {
        char buf[32];
        char *s;
        int r;

        switch (v->type) {
        case VALUE_UNSET:
                return strdup("-");

        case VALUE_STRING:
                return strdup(v->str && *v->str ? v->str : "-");

        case VALUE_BOOL:
                return strdup(v->b ? "yes" : "no");

        case VALUE_UINT:
                switch (format) {
                case FORMAT_BYTES:
                        return strdup(format_size(buf, sizeof(buf), v->u));
                case FORMAT_TIMESTAMP:
                        return format_timestamp_and_age(v->u, now_usec);
                case FORMAT_RATE:
                        r = asprintf(&s, "%s/s", format_size(buf, sizeof(buf), v->u));
                        break;
                case FORMAT_MSEC:
                        r = asprintf(&s, "%" PRIu64 " ms", v->u);
                        break;
                case FORMAT_PERMILLE:
                        r = asprintf(&s, "%" PRIu64 ".%" PRIu64 "%%", v->u / 10, v->u % 10);
                        break;
                case FORMAT_PLAIN:
                default:
                        r = asprintf(&s, "%" PRIu64, v->u);
                        break;
                }
                return r < 0 ? NULL : s;

        case VALUE_INT:
                if (asprintf(&s, "%" PRIi64, v->i) < 0)
                        return NULL;
                return s;

        case VALUE_DOUBLE:
                if (asprintf(&s, "%g", v->d) < 0)
                        return NULL;
                return s;

        case VALUE_STRV:
                if (!v->strv || !v->strv[0])
                        return strdup("-");
                return strv_join(v->strv, " ");

        case VALUE_PAIRS:
                if (value_n_pairs(v) == 0)
                        return strdup("-");
                return pairs_join(v);
        }

        return strdup("-");
}

void value_write_json(JsonWriter *w, const Value *v, const char *const *pair_keys) {
        switch (v->type) {
        case VALUE_UNSET:
                json_null(w);
                break;
        case VALUE_STRING:
                json_string(w, v->str);
                break;
        case VALUE_BOOL:
                json_bool(w, v->b);
                break;
        case VALUE_UINT:
                json_uint(w, v->u);
                break;
        case VALUE_INT:
                json_int(w, v->i);
                break;
        case VALUE_DOUBLE:
                json_double(w, v->d);
                break;
        case VALUE_STRV:
                json_begin_array(w);
                for (char **s = v->strv; s && *s; s++)
                        json_string(w, *s);
                json_end_array(w);
                break;
        case VALUE_PAIRS:
                json_begin_array(w);
                for (size_t i = 0, n = value_n_pairs(v); i < n; i++) {
                        if (pair_keys && pair_keys[0] && pair_keys[1]) {
                                json_begin_object(w);
                                json_key(w, pair_keys[0]);
                                json_string(w, v->strv[2 * i]);
                                json_key(w, pair_keys[1]);
                                json_string(w, v->strv[2 * i + 1]);
                                json_end_object(w);
                        } else {
                                json_begin_array(w);
                                json_string(w, v->strv[2 * i]);
                                json_string(w, v->strv[2 * i + 1]);
                                json_end_array(w);
                        }
                }
                json_end_array(w);
                break;
        }
}

void fields_write_json(JsonWriter *w, const Field *fields, size_t n, const Value *values) {
        json_begin_object(w);
        for (size_t i = 0; i < n; i++) {
                json_key(w, fields[i].json_key);
                value_write_json(w, values + i, fields[i].pair_keys);
        }
        json_end_object(w);
}

int fields_add_to_table(Table *t, const Field *fields, size_t n, const Value *values, uint64_t now_usec) {
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *label = NULL, *text = NULL;
                int r;

                if (asprintf(&label, "%s:", fields[i].label) < 0) {
                        label = NULL;  /* undefined after a failure: don't free it */
                        return -ENOMEM;
                }
                text = value_format(values + i, fields[i].format, now_usec);
                if (!text)
                        return -ENOMEM;

                r = table_add_cell(t, label);
                if (r < 0)
                        return r;
                r = table_add_cell(t, text);
                if (r < 0)
                        return r;
        }
        return 0;
}
