/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A property value as ferryctl holds it after decoding, and the field tables
 * that say, per D-Bus property, which JSON key and which human label it is
 * shown under. Decoding once into a Value and printing twice from it is what
 * keeps the human and the JSON output of a command in agreement. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "output.h"

typedef enum ValueType {
        VALUE_UNSET,    /* the daemon did not send it: JSON null, human "-" */
        VALUE_STRING,   /* D-Bus s, o, g */
        VALUE_BOOL,     /* b */
        VALUE_UINT,     /* y, q, u, t */
        VALUE_INT,      /* n, i, x */
        VALUE_DOUBLE,   /* d */
        VALUE_STRV,     /* as */
        VALUE_PAIRS,    /* a(ss): in strv, flat, first and second of each pair in turn */
} ValueType;

typedef struct Value {
        ValueType type;
        union {
                char *str;
                bool b;
                uint64_t u;
                int64_t i;
                double d;
                char **strv;    /* VALUE_STRV, VALUE_PAIRS */
        };
} Value;

/* Frees what v owns and leaves it VALUE_UNSET. */
void value_done(Value *v);
void values_done(Value *values, size_t n);

const char *value_type_to_string(ValueType t);

/* How a value is shown to humans; JSON always carries the raw value. */
typedef enum ValueFormat {
        FORMAT_PLAIN,      /* strings as they are, bool yes/no, numbers decimal, lists space-separated,
                            * pairs "a: b; c: d" */
        FORMAT_BYTES,      /* "23.4G", see format_size() */
        FORMAT_TIMESTAMP,  /* CLOCK_REALTIME µs: "2026-11-21 23:59:41 UTC (12s ago)", 0 is "never" */
        FORMAT_RATE,       /* bytes per second: "112.0M/s" */
        FORMAT_MSEC,       /* milliseconds: "45 ms" */
        FORMAT_PERMILLE,   /* ‰ as a percentage: 125 is "12.5%" */
} ValueFormat;

/* Human text for v, newly allocated; "-" when unset or empty. NULL on OOM. */
char *value_format(const Value *v, ValueFormat format, uint64_t now_usec);

/* Number of pairs of a VALUE_PAIRS value (0 for any other). */
size_t value_n_pairs(const Value *v);

/* Writes v as a JSON value (null when unset). Pairs are written as
 * two-element arrays unless pair_keys names their members: then as
 * objects {pair_keys[0]: first, pair_keys[1]: second}. */
void value_write_json(JsonWriter *w, const Value *v, const char *const *pair_keys);

/* One row of a field table: the single place where a D-Bus property is tied
 * to its JSON key (a documented contract, see docs/ferryctl.md) and to its
 * human label. Tables are indexed by an enum of the command that owns them. */
typedef struct Field {
        const char *property;   /* D-Bus property name, CamelCase */
        const char *json_key;   /* snake_case */
        ValueType type;         /* what the contract says it decodes to */
        const char *label;      /* human label, "Memory total" */
        ValueFormat format;
        const char *pair_keys[2]; /* VALUE_PAIRS: JSON keys of the members of each pair */
} Field;

/* Writes one JSON object with exactly the keys of the table, in table order,
 * so no property the daemon adds later can leak into the contract. */
void fields_write_json(JsonWriter *w, const Field *fields, size_t n, const Value *values);

/* Adds "Label:" / value rows to a two-column table without headers. */
int fields_add_to_table(Table *t, const Field *fields, size_t n, const Value *values, uint64_t now_usec);
