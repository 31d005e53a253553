/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The replicated state on disk (STATE_DIR/state), so that a whole-cluster
 * restart does not forget maintenance flags and, later, jobs and volume
 * owners. It is only a starting point: at the first sync the members adopt
 * whichever state has the highest commit counter, so a stale file is
 * corrected by the cluster, never the other way round. */

#include "cluster-state.h"

#define STATE_FILE_NAME "state"

/* 0 and *ret set; -ENOENT if there is no file; -EBADMSG if it is corrupt. */
int state_file_load(const char *dir, ClusterState **ret);
/* Atomic: write to a temporary file, fsync, rename. */
int state_file_save(const char *dir, const ClusterState *s);
