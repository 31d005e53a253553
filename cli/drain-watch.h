/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* drain --wait: follows the drain of one node until it ends. */

#include <systemd/sd-bus.h>

#include "ferryctl.h"
#include "macro.h"

typedef struct DrainWatch DrainWatch;

/* Gets ready to follow the drain of the node at `path` (name_or_id is the
 * node as typed, for the messages): subscribes to the changes of the node
 * object and of the job objects, then reads both once. Called before
 * Cluster.Drain, so that every migration the drain queues is seen, and
 * prints nothing. Returns an exit code, having printed the error if it is
 * not 0. */
int drain_watch_new(sd_bus *bus, const char *name_or_id, const char *path, const CommandContext *ctx,
                    DrainWatch **ret);

/* Once Cluster.Drain succeeded: follows the node's DrainState,
 * DrainRemaining and DrainBlockers (PropertiesChanged, and a full read
 * every second, so a missed signal costs a second, never a hang) and the
 * migrations of its VMs (the job objects whose source it is). On a
 * terminal a status area is redrawn in place; otherwise a line is printed
 * per change. A migration that ends is reported on a line of its own.
 * When nothing moves for DRAIN_STALL_USEC, says what the drain waits for
 * and goes on waiting. With ctx->json only the final node object goes to
 * stdout.
 *
 * Ctrl-C (or SIGTERM) stops watching, never the drain.
 *
 * Returns the exit code: 0 drained, 8 drain-blocked (once nothing but the
 * blocked VMs is left to move), 1 the drain was ended by someone else
 * (DrainMode none), 130 interrupted, or that of the error that stopped
 * it. */
int drain_watch_run(DrainWatch *w);

DrainWatch *drain_watch_free(DrainWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(DrainWatch *, drain_watch_free);
