/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Pre-flight checks of a live migration, from the replicated state and the
 * membership view only (pure: no hypervisor calls). Each check has its own
 * verdict and message, so `ferryctl migrate --check` can print all of them
 * and a refusal names the one that failed. The CPU model check needs the
 * hypervisor and runs on the source when the job starts. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster-state.h"

#define PREFLIGHT_CHECKS_MAX 24

typedef struct PreflightCheck {
        const char *name;
        bool passed;
        char message[256];
} PreflightCheck;

typedef struct PreflightResult {
        uint32_t source;                /* 0 if the VM is unknown */
        uint32_t destination;           /* chosen or given; 0 if none */
        char destination_reason[256];   /* why this destination, when chosen */
        PreflightCheck checks[PREFLIGHT_CHECKS_MAX];
        size_t n_checks;
        bool passed;                    /* every check passed */
} PreflightResult;

typedef struct MembershipView {
        const uint32_t *members;        /* node ids of this partition */
        size_t n_members;
        bool quorate;
} MembershipView;

/* destination 0 = choose the best valid one. */
void preflight_run(const ClusterState *s, const MembershipView *view, const char *vm, uint32_t destination,
                   PreflightResult *ret);
/* The first failed check, or NULL. */
const PreflightCheck *preflight_first_failure(const PreflightResult *r);
/* Memory a node can still give guests: free − reserve − what active jobs
 * are already bringing in. May be negative. */
int64_t preflight_available_memory(const ClusterState *s, uint32_t node);
