/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Carries out, on this node's hypervisor, the volume steps the replicated
 * state assigns to this node (state-volumes.h), and confirms each one with
 * a command: release what this node is asked to let go, activate what it
 * is asked to take. It also enforces the fencing rules locally:
 *   - a volume held here that the record does not give to this node is
 *     released (a stale owner releases, it never reclaims);
 *   - after `volume_release_timeout` seconds without quorum, everything held
 *     here is released;
 *   - the lowest member id marks volumes of nodes that left the ring
 *     orphaned; only `ConfirmFenced` frees them for reassignment.
 * The backend's hooks are called from the event loop: fine for the sim
 * backend; a backend with slow hooks needs them off the loop. */

#include <stdbool.h>
#include <stdint.h>

typedef struct Daemon Daemon;
typedef struct VolumeManager VolumeManager;

int volume_manager_new(Daemon *d, VolumeManager **ret);
VolumeManager *volume_manager_free(VolumeManager *m);
void volume_manager_state_changed(VolumeManager *m);
/* A proposal came back; true if it was one of ours. */
bool volume_manager_proposal_done(VolumeManager *m, uint64_t seq, int result);
/* Releases done because quorum was lost, since start (for tests and metrics). */
uint64_t volume_manager_quorum_loss_releases(const VolumeManager *m);
