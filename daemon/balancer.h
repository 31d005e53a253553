/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The automatic load balancer (policies/balance.c plans it): while the
 * replicated settings say so, the lowest member id of the quorate
 * partition plans a round every `balance_interval` seconds and submits
 * its moves to the migration engine; the next round waits until the last
 * one's jobs have ended. When that node leaves, the next lowest takes over
 * at the next membership change: one balancer at a time, without an
 * election of its own. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balance.h"
#include "state-balance.h"

typedef struct Daemon Daemon;
typedef struct Balancer Balancer;

int balancer_new(Daemon *d, Balancer **ret);
Balancer *balancer_free(Balancer *b);
void balancer_state_changed(Balancer *b);
/* Whether this node is the one that runs the automatic balancer now. */
bool balancer_is_leader(Daemon *d);
/* The planner's parameters: the replicated settings over the defaults. */
void balance_params_from_settings(const BalanceSettings *b, BalanceParams *p);
/* Proposes a job for each move of the plan (manual or automatic). */
int balancer_submit(Daemon *d, const BalancePlan *plan, size_t *ret_submitted);
void balancer_counters(const Balancer *b, uint64_t *rounds, uint64_t *moves);
