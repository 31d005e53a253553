/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The drain policy: empty a node for patching.
 *
 * Pure: from the replicated state and the membership view it answers what
 * a drained node still runs, where each VM should go, and what cannot
 * move and why. The node's own ferryd carries the plan out through the
 * migration engine (daemon/drain-driver.c) and every node derives the
 * same status from the same state.
 *
 * Destinations: every VM on the node goes to the node that passes all of
 * its pre-flight checks and has the most memory to spare, counting the
 * memory of jobs already under way and of earlier moves in the same plan;
 * the biggest VMs are placed first, so that they find room while there is
 * most of it.
 *
 * Volumes the node owns leave too: a shared volume of a VM that moves
 * follows its VM (the migration hands it over); one whose VM runs on
 * another node goes there; an unused one goes to the online node, not in
 * maintenance, that owns the fewest volumes. A volume whose VM cannot move
 * blocks with it. Entries for volumes come after the VMs, `volume` set. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster-state.h"
#include "preflight.h"

typedef enum DrainAction {
        DRAIN_ACTION_MOVE,      /* submit a migration to `destination` */
        DRAIN_ACTION_MOVING,    /* a job already moves it */
        DRAIN_ACTION_BLOCKED,   /* cannot move: `reason` */
} DrainAction;

typedef struct DrainEntry {
        const char *vm;                 /* points into the state; a volume's name if `volume` */
        bool volume;                    /* a shared volume the node owns, not a VM */
        uint64_t memory;
        DrainAction action;
        uint32_t destination;           /* MOVE, MOVING */
        uint64_t job;                   /* MOVING */
        char reason[256];               /* BLOCKED: why; MOVE: why this destination */
} DrainEntry;

typedef enum DrainStatus {
        DRAIN_STATUS_NONE,              /* no drain asked */
        DRAIN_STATUS_DRAINING,          /* work remains and can proceed */
        DRAIN_STATUS_BLOCKED,           /* some VMs cannot move (DRAIN_FAIL_ON_BLOCKERS) */
        DRAIN_STATUS_DRAINED,           /* runs nothing (or only VMs left by DRAIN_LEAVE_BLOCKERS) */
} DrainStatus;

typedef struct DrainPlan {
        uint32_t node;
        DrainEntry *entries;
        size_t n_entries;
        size_t n_move, n_moving, n_blocked;
        DrainStatus status;
} DrainPlan;

int drain_plan(const ClusterState *s, const MembershipView *view, uint32_t node, DrainPlan *ret);
void drain_plan_done(DrainPlan *p);
const char *drain_status_to_string(DrainStatus st);
const char *drain_mode_to_string(DrainMode m);
const char *drain_action_to_string(DrainAction a);
