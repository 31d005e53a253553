/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The source side of live migrations: for every job the replicated state
 * granted to a migration out of this node, start it in the backend, follow
 * its progress, apply the convergence policy, honour cancel requests, and
 * report progress and the outcome back through the replicated log.
 *
 * The runner owns no truth: the replicated state says which jobs exist and
 * who may run; the backend says what the hypervisor is doing. After a
 * restart it reconciles jobs it no longer has a handle for from what the
 * hypervisor shows (the VM still here, or gone to the destination). */

typedef struct Daemon Daemon;
typedef struct Runner Runner;

int runner_new(Daemon *d, Runner **ret);
Runner *runner_free(Runner *r);
/* Called after every change of the replicated state. */
void runner_state_changed(Runner *r);
/* How many migrations this node is driving now. */
unsigned runner_active(const Runner *r);
