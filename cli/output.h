/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What ferryctl prints: a column-sizing table printer, a small JSON writer,
 * human formatting of sizes and times, and the one way errors are printed.
 * Nothing here talks to the bus, so all of it is unit-tested
 * (cli/test-output.c). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"

/* "tools print": every error ferryctl reports goes through here, to stderr,
 * prefixed "ferryctl: ", with a trailing newline added. */
void print_error(const char *fmt, ...) _printf_(1, 2);

/* ---- human formatting ---- */

/* Sizes are formatted by format_size() in common/strutil.h, the inverse of
 * the config parser's parse_size(). */

/* Now, in µs: CLOCK_REALTIME (what ferryd's timestamps are in), and
 * CLOCK_MONOTONIC for measuring intervals. 0 if the clock fails. */
uint64_t clock_realtime_usec(void);
uint64_t clock_monotonic_usec(void);

/* "2026-11-21 23:59:41 UTC" in the local time zone, from CLOCK_REALTIME µs. */
#define FORMAT_TIMESTAMP_MAX 64
char *format_timestamp(char buf[static FORMAT_TIMESTAMP_MAX], uint64_t usec);

/* How long before `now_usec` `usec` was: "12s ago", "5min ago", "3h ago",
 * "2d ago"; "in the future" when the clocks disagree. */
#define FORMAT_RELATIVE_MAX 32
char *format_relative(char buf[static FORMAT_RELATIVE_MAX], uint64_t usec, uint64_t now_usec);

/* A length of time: "850ms", "42s", "3min 12s", "1h 5min", "2d 3h". */
#define FORMAT_DURATION_MAX 32
char *format_duration(char buf[static FORMAT_DURATION_MAX], uint64_t usec);

/* Number of code points of a UTF-8 string: what a terminal shows as its width
 * for the names and versions we print (no wide or combining characters). */
size_t utf8_width(const char *s);

/* ---- tables ---- */

/* Cells are added row by row, left to right; columns are as wide as their
 * widest cell. A table without headers prints "key: value" lists. */
typedef struct Table Table;

/* headers: n_columns strings, or NULL for a table without a header line. */
Table *table_new(size_t n_columns, const char *const *headers);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

/* Right-align a column (numbers and sizes line up on their last digit). */
void table_set_align_right(Table *t, size_t column);
/* Copies s; NULL and "" are shown as "-" so that every cell has a word in it
 * and `awk '{print $N}'` keeps working. Returns 0 or -ENOMEM. */
int table_add_cell(Table *t, const char *s);
/* Returns 0, or -errno if the output could not be written. */
int table_print(const Table *t, FILE *f);

/* ---- JSON ---- */

/* A streaming writer: the caller emits keys and values in order, the writer
 * adds commas, indentation and escaping. It checks nothing about the shape
 * (keys only in objects, ...) -- callers are few and written against it. */
typedef struct JsonWriter {
        FILE *f;
        bool pretty;      /* one member per line, indented by two spaces */
        unsigned depth;
        bool need_comma;  /* the innermost open container has a member */
        bool after_key;   /* the next value completes a "key": pair */
} JsonWriter;

void json_init(JsonWriter *w, FILE *f, bool pretty);
void json_begin_object(JsonWriter *w);
void json_end_object(JsonWriter *w);
void json_begin_array(JsonWriter *w);
void json_end_array(JsonWriter *w);
void json_key(JsonWriter *w, const char *key);
void json_string(JsonWriter *w, const char *s);   /* NULL writes null */
void json_bool(JsonWriter *w, bool b);
void json_uint(JsonWriter *w, uint64_t u);
void json_int(JsonWriter *w, int64_t i);
void json_double(JsonWriter *w, double d);       /* NaN and infinities write null */
void json_null(JsonWriter *w);
/* Ends the document with a newline and flushes; returns 0 or -errno if
 * writing failed. */
int json_finish(JsonWriter *w);

/* Writes s as a quoted JSON string. Control characters are escaped and
 * invalid UTF-8 becomes U+FFFD, so the result is always valid JSON. */
void json_write_string(FILE *f, const char *s);
