/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Endian-safe encoding of the wire format and of the canonical state.
 * Integers are big-endian; a string is a u32 length that counts the
 * terminating NUL, then the bytes, then the NUL. The reader never trusts a
 * length: every read is bounds-checked, and a string must end in its NUL and
 * hold no other. Pure code: no logging, no I/O. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest string the decoder accepts; names, versions and CPU flag lists
 * are far shorter. Bounds what a hostile frame can make us allocate. */
#define CODEC_STRING_MAX (64U * 1024U)

typedef struct Writer {
        uint8_t *data;
        size_t size;
        size_t allocated;
        bool failed;            /* sticky: an allocation failed */
} Writer;

void writer_init(Writer *w);
void writer_done(Writer *w);
void writer_put_u8(Writer *w, uint8_t v);
void writer_put_u16(Writer *w, uint16_t v);
void writer_put_u32(Writer *w, uint32_t v);
void writer_put_u64(Writer *w, uint64_t v);
void writer_put_bool(Writer *w, bool v);
void writer_put_bytes(Writer *w, const void *p, size_t n);
void writer_put_string(Writer *w, const char *s);     /* NULL is written as "" */
/* Overwrites a u32 written earlier at offset (for length fields). */
void writer_patch_u32(Writer *w, size_t offset, uint32_t v);
/* 0, or -ENOMEM if any put failed. */
int writer_error(const Writer *w);

typedef struct Reader {
        const uint8_t *p;
        size_t left;
        bool failed;            /* sticky: a read ran past the end or met bad data */
} Reader;

void reader_init(Reader *r, const void *p, size_t n);
uint8_t reader_get_u8(Reader *r);
uint16_t reader_get_u16(Reader *r);
uint32_t reader_get_u32(Reader *r);
uint64_t reader_get_u64(Reader *r);
bool reader_get_bool(Reader *r);        /* anything but 0 or 1 fails the reader */
const void *reader_get_bytes(Reader *r, size_t n);
/* Returns a pointer into the buffer (valid as long as the buffer) or NULL
 * and fails the reader. */
const char *reader_get_string(Reader *r);
/* Duplicates the next string; NULL on failure (reader failed, or -ENOMEM
 * which also fails the reader). */
char *reader_dup_string(Reader *r);
/* 0 if every read so far was valid, -EBADMSG otherwise. */
int reader_error(const Reader *r);
/* Like reader_error(), and additionally requires that nothing is left. */
int reader_finish(const Reader *r);
