/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Minimal assertions for the unit tests: print where and what, exit 1.
 * The closing line "N passed, N failed" is what CI reads. */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned test_checks;

#define CHECK(cond)                                                                     \
        do {                                                                            \
                test_checks++;                                                          \
                if (!(cond)) {                                                          \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
                        exit(1);                                                        \
                }                                                                       \
        } while (0)

#define CHECK_EQ_INT(a, b)                                                              \
        do {                                                                            \
                long long _a = (long long) (a), _b = (long long) (b);                  \
                test_checks++;                                                          \
                if (_a != _b) {                                                         \
                        fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n",     \
                                __FILE__, __LINE__, #a, _a, #b, _b);                    \
                        exit(1);                                                        \
                }                                                                       \
        } while (0)

#define CHECK_STREQ(a, b)                                                               \
        do {                                                                            \
                const char *_a = (a), *_b = (b);                                        \
                test_checks++;                                                          \
                if (!_a || !_b || strcmp(_a, _b) != 0) {                                \
                        fprintf(stderr, "%s:%d: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                                _a ? _a : "(null)", _b ? _b : "(null)");                \
                        exit(1);                                                        \
                }                                                                       \
        } while (0)

typedef struct TestCase {
        const char *name;
        void (*fn)(void);
} TestCase;

static inline int run_tests(const TestCase *t, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned before = test_checks;
                t[i].fn();
                printf("ok %zu - %s (%u checks)\n", i + 1, t[i].name, test_checks - before);
        }
        printf("%zu passed, 0 failed\n", n);
        return 0;
}
