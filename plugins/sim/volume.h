/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Shared volumes in a world: which node holds (has open) each one, with
 * fencing tokens. ferryd's replicated state records each volume's owner and
 * an epoch that grows with every ownership change; every action carries
 * its epoch. The world keeps, per volume (volumes/NAME.conf, SimVolume):
 *
 *   holder, holder_epoch   the node holding it and the epoch of its grant
 *   epoch                  the highest epoch any action has used on it
 *
 * and refuses what a newer owner makes stale, the way SCSI-3 persistent
 * reservations (preempt-and-abort) or lease generations fence an old
 * owner that was partitioned or fenced:
 *
 *   prepare(E)   -ESTALE if E < epoch; else raises epoch to E (creating
 *                the file). Does not look at the holder: during a live
 *                migration the source still holds it, activate decides.
 *   activate(E)  -ESTALE if E < epoch. Held by another node at an epoch
 *                < E: preempted (the newer grant wins); at >= E: -EBUSY.
 *                Then holder = this node, holder_epoch = E, epoch = E
 *                (creating the file). Again on the same node at the same
 *                epoch: nothing changes, 0.
 *   release(E)   this node holds it: -ESTALE if E < holder_epoch (a late
 *                release of an older grant must not undo a newer one),
 *                else the hold goes. Not held here: 0. Raises epoch to E
 *                in an existing file; never creates one.
 *   held()       1 if this node holds it, else 0.
 *   fence(N)     clears every hold of node N (what powering N off does);
 *                epochs stay.
 *
 * A set fail_HOOK knob makes that hook fail with -EIO before it reads or
 * changes anything (the storage is unreachable). A delay_HOOK_ms knob
 * makes it wait that long before it starts, delay_after_HOOK_ms after its
 * change and before it returns (slow storage; the caller is blocked, which
 * for ferryd means its event loop). Delays are real time, do not hold the
 * world lock, and follow the knob while they last: lowering it ends them
 * early. The caller must not hold the world lock. Everything else runs
 * under the world lock. Like world.h, this does not log: -errno and a
 * SimError. */

#include <stddef.h>
#include <stdint.h>

#include "world.h"

int sim_volume_prepare(SimWorld *w, const char *node, const char *volume, uint64_t epoch, SimError *e);
int sim_volume_activate(SimWorld *w, const char *node, const char *volume, uint64_t epoch, SimError *e);
int sim_volume_release(SimWorld *w, const char *node, const char *volume, uint64_t epoch, SimError *e);
/* 1 or 0, or -errno. */
int sim_volume_held(SimWorld *w, const char *node, const char *volume, SimError *e);

/* Clears every hold of `node`; the names of the volumes it held go to
 * *ret_volumes (sim_strv_free()), sorted. A node that holds nothing, or
 * is not a host (any more), is no error. */
int sim_volume_fence(SimWorld *w, const char *node, char ***ret_volumes, size_t *ret_n, SimError *e);
