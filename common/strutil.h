/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

/* Parsing helpers shared by the config parser and ferryctl. They do not log:
 * they return 0 or a negative errno and leave the output untouched on error. */

/* Decimal unsigned integer, whole string, no sign, no overflow. */
int parse_u64(const char *s, uint64_t *ret);
int parse_u32(const char *s, uint32_t *ret);

/* A byte size with an optional binary suffix: "512", "512K", "2G", "1.5G",
 * "1T" (K/M/G/T = 1024^n, an optional trailing "B" or "iB" is accepted). */
int parse_size(const char *s, uint64_t *ret);

/* "yes"/"no", "true"/"false", "on"/"off", "1"/"0". */
int parse_boolean(const char *s, bool *ret);

/* Strips leading and trailing whitespace in place; returns its argument
 * advanced past the leading whitespace. */
char *strstrip(char *s);

/* Human size with one decimal: "23.4G", "512M", "0". Writes into buf. */
const char *format_size(char *buf, size_t len, uint64_t bytes);
