/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Loading a hypervisor backend plugin (plugins/ferry-backend.h) and the
 * daemon's side of calling it: typed errors for missing hooks, and the
 * conversion of what it reports into replicated-state records. */

#include "cluster-state.h"
#include "config.h"
#include "ferry-backend.h"

typedef struct Backend {
        const FerryBackendOps *ops;
        void *ctx;
        char *path;             /* resolved path of the module */
        char *peer_uri;         /* how peers reach this hypervisor */
} Backend;

/* Loads plugin_dir/ferry-backend-NAME.so and opens it. *ret is NULL for
 * backend = none. Errors are logged with the path and the reason. */
int backend_load(const FerryConfig *config, const char *node_name, Backend **ret);
Backend *backend_free(Backend *b);

/* NULL hook → -EOPNOTSUPP with a message naming backend and hook. */
#define BACKEND_HAS(b, hook) ((b) && (b)->ops->hook)

int backend_host_facts(Backend *b, FerryHostFacts *ret, FerryError *error);
/* The VM list as state records (caller frees with node_vms_command_done). */
/* The VMs the hypervisor runs, each with the volumes of `s` (may be NULL)
 * its disks live on. */
int backend_list_vms(Backend *b, const ClusterState *s, NodeVmsCommand *ret, FerryError *error);
