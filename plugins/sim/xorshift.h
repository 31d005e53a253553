/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The only source of randomness in the sim backend: xorshift64* (Vigna),
 * seeded explicitly. Same seed, same sequence, on every machine. It is not
 * for anything that needs unpredictability. */

#include <stdint.h>

static inline uint64_t xorshift_seed(uint64_t seed) {
        /* The all-zero state is a fixed point of xorshift. */
        return seed ? seed : UINT64_C(0x9e3779b97f4a7c15);
}

static inline uint64_t xorshift_next(uint64_t *state) {
        uint64_t x = *state;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *state = x;
        return x * UINT64_C(0x2545f4914f6cdd1d);
}

/* Uniform in [0, n), n > 0; the modulo bias is negligible for the small n
 * used here. */
static inline uint64_t xorshift_below(uint64_t *state, uint64_t n) {
        return xorshift_next(state) % n;
}

/* A well-mixed 64-bit hash of a string (FNV-1a, then one xorshift round), to
 * derive per-object seeds from one world seed. */
static inline uint64_t xorshift_hash(uint64_t seed, const char *s) {
        uint64_t h = UINT64_C(0xcbf29ce484222325) ^ seed;
        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= UINT64_C(0x100000001b3);
        }
        h = xorshift_seed(h);
        return xorshift_next(&h);
}
