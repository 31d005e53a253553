/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The load balancer's settings in the replicated state: whether the
 * automatic balancer runs, and the bounds of each round. Replicated rather
 * than per-node configuration because exactly one node runs the balancer
 * at a time (the lowest member id of the quorate partition) and a handover
 * to another node must not change what "balanced" means. 0 in a bound
 * means the built-in default (policies/balance.h). */

#include <stdbool.h>
#include <stdint.h>

#include "codec.h"

typedef struct ClusterState ClusterState;

typedef struct BalanceSettings {
        bool automatic;
        uint32_t threshold_permille;    /* start when the imbalance score exceeds this */
        uint32_t target_permille;       /* and stop at this (hysteresis) */
        uint32_t max_moves;             /* per round */
        uint64_t max_bytes;             /* guest memory per round */
        uint32_t min_gain_permille;     /* each move must lower the score this much */
} BalanceSettings;

#define BALANCE_PERMILLE_MAX 1000000U
#define BALANCE_MOVES_MAX 10000U

void balance_settings_encode(const BalanceSettings *b, Writer *w);
int balance_settings_decode(Reader *r, BalanceSettings *ret);
/* Bounds; on error says which and why. */
int balance_settings_validate(const BalanceSettings *b, char *err, size_t err_len);
/* Replaces the settings; 0 no change, 1 changed, -EINVAL bad values. */
int state_apply_set_balance(ClusterState *s, const BalanceSettings *b);
