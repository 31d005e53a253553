/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* SHA-256 (FIPS 180-4), for the state digest. A digest only has to be
 * identical on every member for identical states, but a cryptographic hash
 * also means two different states practically never look equal. Written here
 * because none of the chosen dependencies exports one. */

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32

typedef struct Sha256 {
        uint32_t h[8];
        uint64_t length;        /* bytes hashed so far */
        uint8_t buffer[64];
        size_t buffered;
} Sha256;

void sha256_init(Sha256 *s);
void sha256_update(Sha256 *s, const void *data, size_t n);
void sha256_final(Sha256 *s, uint8_t out[SHA256_DIGEST_SIZE]);
/* Hex of the digest of data, into out[65]. */
void sha256_hex(const void *data, size_t n, char out[2 * SHA256_DIGEST_SIZE + 1]);
