/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* --wait: follows one job until it ends. */

#include <stdint.h>

#include <systemd/sd-bus.h>

#include "ferryctl.h"

/* Follows job `id` until it reaches completed, failed or cancelled, and
 * reports the end. Changes arrive as PropertiesChanged signals of the job
 * object; the properties are also read again every second, so a missed
 * signal costs a second, never a hang. On a terminal a progress line is
 * redrawn in place; otherwise a line is printed per change of state or
 * phase. With ctx->json only the final job object goes to stdout.
 *
 * Ctrl-C (or SIGTERM) stops watching, never the job.
 *
 * Returns the exit code: 0 completed, 1 failed, 7 cancelled, 130
 * interrupted, or that of the error that stopped it. */
int job_watch(sd_bus *bus, uint64_t id, const CommandContext *ctx);
