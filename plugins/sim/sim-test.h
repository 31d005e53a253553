/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Helpers of the sim tests: a temporary directory removed at exit, also
 * when a CHECK fails (CHECK exits, and atexit handlers run). */

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "precopy.h"

static char sim_test_dirs[8][256];
static unsigned sim_test_n_dirs;

static int sim_test_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

static void sim_test_cleanup(void) {
        for (unsigned i = 0; i < sim_test_n_dirs; i++)
                if (sim_test_dirs[i][0])
                        (void) nftw(sim_test_dirs[i], sim_test_rm, 16, FTW_DEPTH | FTW_PHYS);
        sim_test_n_dirs = 0;
}

/* A fresh directory, removed at exit; `leaf` is a subdirectory name that
 * is returned (not created) for tests that want to create it themselves. */
static inline const char *sim_test_tempdir(const char *leaf, char *buf, size_t len) {
        const char *tmp = getenv("TMPDIR");
        char *d;

        if (sim_test_n_dirs >= sizeof(sim_test_dirs) / sizeof(sim_test_dirs[0])) {
                fprintf(stderr, "too many temporary directories\n");
                exit(1);
        }
        if (sim_test_n_dirs == 0)
                atexit(sim_test_cleanup);
        snprintf(sim_test_dirs[sim_test_n_dirs], sizeof(sim_test_dirs[0]), "%s/ferry-sim-test.XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        d = mkdtemp(sim_test_dirs[sim_test_n_dirs]);
        if (!d) {
                perror("mkdtemp");
                exit(1);
        }
        sim_test_n_dirs++;
        snprintf(buf, len, "%s/%s", d, leaf);
        return buf;
}

/* Field by field: structs have padding that memcmp() would read. */
static inline bool precopy_params_equal(const PrecopyParams *a, const PrecopyParams *b) {
        return a->memory == b->memory && a->working_set == b->working_set && a->dirty_rate == b->dirty_rate &&
                a->bandwidth == b->bandwidth && a->max_downtime_ms == b->max_downtime_ms &&
                a->max_iterations == b->max_iterations && a->setup_ms == b->setup_ms &&
                a->switchover_ms == b->switchover_ms && a->auto_converge == b->auto_converge &&
                a->throttle_initial == b->throttle_initial && a->throttle_increment == b->throttle_increment &&
                a->throttle_max == b->throttle_max && a->throttle_trigger == b->throttle_trigger &&
                a->jitter_permille == b->jitter_permille && a->seed == b->seed;
}
