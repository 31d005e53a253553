/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "codec.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void writer_init(Writer *w) {
        *w = (Writer) {};
}

void writer_done(Writer *w) {
        free(w->data);
        *w = (Writer) {};
}

static uint8_t *writer_reserve(Writer *w, size_t n) {
        if (w->failed)
                return NULL;
        if (n > SIZE_MAX - w->size) {
                w->failed = true;
                return NULL;
        }
        if (w->size + n > w->allocated) {
                size_t a = w->allocated ? w->allocated : 256;
                while (a < w->size + n)
                        a = a > SIZE_MAX / 2 ? w->size + n : a * 2;
                uint8_t *d = realloc(w->data, a);
                if (!d) {
                        w->failed = true;
                        return NULL;
                }
                w->data = d;
                w->allocated = a;
        }
        uint8_t *p = w->data + w->size;
        w->size += n;
        return p;
}

void writer_put_u8(Writer *w, uint8_t v) {
        uint8_t *p = writer_reserve(w, 1);
        if (p)
                p[0] = v;
}

void writer_put_u16(Writer *w, uint16_t v) {
        uint8_t *p = writer_reserve(w, 2);
        if (p) {
                p[0] = (uint8_t) (v >> 8);
                p[1] = (uint8_t) v;
        }
}

static void put_be32(uint8_t *p, uint32_t v) {
        p[0] = (uint8_t) (v >> 24);
        p[1] = (uint8_t) (v >> 16);
        p[2] = (uint8_t) (v >> 8);
        p[3] = (uint8_t) v;
}

void writer_put_u32(Writer *w, uint32_t v) {
        uint8_t *p = writer_reserve(w, 4);
        if (p)
                put_be32(p, v);
}

void writer_put_u64(Writer *w, uint64_t v) {
        writer_put_u32(w, (uint32_t) (v >> 32));
        writer_put_u32(w, (uint32_t) v);
}

void writer_put_bool(Writer *w, bool v) {
        writer_put_u8(w, v ? 1 : 0);
}

void writer_put_bytes(Writer *w, const void *src, size_t n) {
        uint8_t *p = writer_reserve(w, n);
        if (p && n > 0)
                memcpy(p, src, n);
}

void writer_put_string(Writer *w, const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n >= CODEC_STRING_MAX) {
                /* Never emit what our own reader would refuse. */
                w->failed = true;
                return;
        }
        writer_put_u32(w, (uint32_t) n + 1);
        writer_put_bytes(w, s ? s : "", n);
        writer_put_u8(w, 0);
}

void writer_patch_u32(Writer *w, size_t offset, uint32_t v) {
        if (w->failed || offset + 4 > w->size)
                return;
        put_be32(w->data + offset, v);
}

int writer_error(const Writer *w) {
        return w->failed ? -ENOMEM : 0;
}

void reader_init(Reader *r, const void *p, size_t n) {
        *r = (Reader) { .p = p, .left = n };
}

const void *reader_get_bytes(Reader *r, size_t n) {
        if (r->failed || n > r->left) {
                r->failed = true;
                return NULL;
        }
        const void *p = r->p;
        r->p += n;
        r->left -= n;
        return p;
}

uint8_t reader_get_u8(Reader *r) {
        const uint8_t *p = reader_get_bytes(r, 1);
        return p ? p[0] : 0;
}

uint16_t reader_get_u16(Reader *r) {
        const uint8_t *p = reader_get_bytes(r, 2);
        return p ? (uint16_t) ((p[0] << 8) | p[1]) : 0;
}

uint32_t reader_get_u32(Reader *r) {
        const uint8_t *p = reader_get_bytes(r, 4);
        return p ? ((uint32_t) p[0] << 24) | ((uint32_t) p[1] << 16) | ((uint32_t) p[2] << 8) | p[3] : 0;
}

uint64_t reader_get_u64(Reader *r) {
        uint64_t hi = reader_get_u32(r);
        return (hi << 32) | reader_get_u32(r);
}

bool reader_get_bool(Reader *r) {
        uint8_t v = reader_get_u8(r);
        if (v > 1)
                r->failed = true;
        return v == 1;
}

const char *reader_get_string(Reader *r) {
        uint32_t n = reader_get_u32(r);
        if (r->failed)
                return NULL;
        if (n == 0 || n > CODEC_STRING_MAX) {
                r->failed = true;
                return NULL;
        }
        const char *s = reader_get_bytes(r, n);
        if (!s)
                return NULL;
        /* Terminated exactly at the end, no NUL inside. */
        if (s[n - 1] != 0 || memchr(s, 0, n - 1)) {
                r->failed = true;
                return NULL;
        }
        return s;
}

char *reader_dup_string(Reader *r) {
        const char *s = reader_get_string(r);
        if (!s)
                return NULL;
        char *d = strdup(s);
        if (!d)
                r->failed = true;
        return d;
}

int reader_error(const Reader *r) {
        return r->failed ? -EBADMSG : 0;
}

int reader_finish(const Reader *r) {
        if (r->failed || r->left != 0)
                return -EBADMSG;
        return 0;
}
