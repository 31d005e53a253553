/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "strutil.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "macro.h"

int parse_u64(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (!s || !*s)
                return -EINVAL;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EINVAL;
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        return 0;
}

int parse_u32(const char *s, uint32_t *ret) {
        uint64_t v;
        int r = parse_u64(s, &v);
        if (r < 0)
                return r;
        if (v > UINT32_MAX)
                return -ERANGE;
        *ret = (uint32_t) v;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        uint64_t whole = 0, frac = 0, frac_div = 1, mult = 1;
        const char *p = s;
        bool digits = false;

        if (!s)
                return -EINVAL;
        while (isspace((unsigned char) *p))
                p++;
        for (; *p >= '0' && *p <= '9'; p++) {
                digits = true;
                if (whole > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                whole = whole * 10 + (uint64_t) (*p - '0');
        }
        if (*p == '.') {
                p++;
                for (; *p >= '0' && *p <= '9'; p++) {
                        digits = true;
                        if (frac_div < 1000000) {
                                frac = frac * 10 + (uint64_t) (*p - '0');
                                frac_div *= 10;
                        }
                }
        }
        if (!digits)
                return -EINVAL;
        while (isspace((unsigned char) *p))
                p++;
        switch (toupper((unsigned char) *p)) {
        case 'K': mult = UINT64_C(1) << 10; p++; break;
        case 'M': mult = UINT64_C(1) << 20; p++; break;
        case 'G': mult = UINT64_C(1) << 30; p++; break;
        case 'T': mult = UINT64_C(1) << 40; p++; break;
        default: break;
        }
        if (mult > 1 && toupper((unsigned char) *p) == 'I')
                p++;
        if (toupper((unsigned char) *p) == 'B')
                p++;
        while (isspace((unsigned char) *p))
                p++;
        if (*p)
                return -EINVAL;
        if (whole > UINT64_MAX / mult)
                return -ERANGE;
        uint64_t v = whole * mult;
        uint64_t f = frac * mult / frac_div;
        if (v > UINT64_MAX - f)
                return -ERANGE;
        *ret = v + f;
        return 0;
}

int parse_boolean(const char *s, bool *ret) {
        static const char *const yes[] = { "1", "yes", "y", "true", "on" };
        static const char *const no[] = { "0", "no", "n", "false", "off" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
        for (size_t i = 0; i < ELEMENTSOF(no); i++)
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        return -EINVAL;
}

char *strstrip(char *s) {
        while (isspace((unsigned char) *s))
                s++;
        size_t n = strlen(s);
        while (n > 0 && isspace((unsigned char) s[n - 1]))
                s[--n] = 0;
        return s;
}

const char *format_size(char *buf, size_t len, uint64_t bytes) {
        static const char suffix[] = "KMGTPE";
        double v = (double) bytes;
        int i = -1;

        if (bytes < 1024) {
                snprintf(buf, len, "%" PRIu64, bytes);
                return buf;
        }
        while (v >= 1024.0 && i < (int) sizeof(suffix) - 2) {
                v /= 1024.0;
                i++;
        }
        snprintf(buf, len, "%.1f%c", v, suffix[i]);
        return buf;
}
