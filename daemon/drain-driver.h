/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Carries out the drain of this node (policies/drain.c plans it): while
 * the replicated state says this node drains, every VM it still runs that
 * has a valid destination and no job gets one. The slot scheduler queues
 * them; the migration runner moves them. The drained node drives its own
 * drain so that a drain survives the ferryd that asked for it, and resumes
 * when this one restarts. */

typedef struct Daemon Daemon;

#include <stdbool.h>
#include <stdint.h>

void drain_driver_state_changed(Daemon *d);
/* A proposal came back; true if it was one of the drain's. */
bool drain_driver_proposal_done(Daemon *d, uint64_t seq, int result);
