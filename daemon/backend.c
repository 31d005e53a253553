/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "backend.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "macro.h"

int backend_load(const FerryConfig *config, const char *node_name, Backend **ret) {
        char path[PATH_MAX], resolved[PATH_MAX];
        const FerryBackendOps *ops;
        FerryError err = {};
        Backend *b;
        void *dl;
        int r;

        *ret = NULL;
        if (streq(config->backend, "none"))
                return 0;
        snprintf(path, sizeof(path), "%s/ferry-backend-%s.so", config->plugin_dir, config->backend);
        if (!realpath(path, resolved))
                return log_error_errno(errno, "Backend \"%s\" not found at \"%s\": %m", config->backend, path);
        /* RTLD_NODELETE: a backend is never unloaded (its threads may
         * outlive a handle we think we are done with). */
        dl = dlopen(resolved, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!dl) {
                log_error("Failed to load backend \"%s\": %s", resolved, dlerror());
                return -ELIBBAD;
        }
        ops = dlsym(dl, FERRY_BACKEND_SYMBOL);
        if (!ops) {
                log_error("\"%s\" is not a ferry backend: no symbol %s", resolved, FERRY_BACKEND_SYMBOL);
                return -ELIBBAD;
        }
        /* The version first: nothing else in the struct can be trusted
         * until it matches. */
        if (ops->abi_version != FERRY_BACKEND_ABI_VERSION) {
                log_error("Backend \"%s\" has ABI version %u, this ferryd needs %u; rebuild the backend",
                          resolved, ops->abi_version, FERRY_BACKEND_ABI_VERSION);
                return -ELIBBAD;
        }
        if (!ops->open || !ops->close || !ops->host_facts || !ops->list_vms || !ops->free_vms) {
                log_error("Backend \"%s\" lacks a required hook", resolved);
                return -ELIBBAD;
        }
        b = calloc(1, sizeof(Backend));
        if (!b)
                return -ENOMEM;
        b->ops = ops;
        b->path = strdup(resolved);
        if (*config->backend_peer_uri)
                b->peer_uri = strdup(config->backend_peer_uri);
        else if (streq(config->backend, "sim"))
                r = asprintf(&b->peer_uri, "sim://%s", node_name), (void) r;
        else
                r = asprintf(&b->peer_uri, "qemu+tls://%s/system", node_name), (void) r;
        if (!b->path || !b->peer_uri) {
                backend_free(b);
                return -ENOMEM;
        }
        FerryBackendHost host = {
                .struct_size = sizeof(FerryBackendHost),
                .node_name = node_name,
                .config = config->backend_config,
                .state_dir = config->state_dir,
        };
        r = ops->open(&host, &b->ctx, &err);
        if (r < 0) {
                log_error_errno(r, "Backend \"%s\" failed to open: %s", resolved, *err.message ? err.message : "(no detail)");
                b->ops = NULL;
                backend_free(b);
                return r;
        }
        log_info("Loaded backend \"%s\" from \"%s\" (peers reach it as %s)", ops->name, resolved, b->peer_uri);
        *ret = b;
        return 0;
}

Backend *backend_free(Backend *b) {
        if (!b)
                return NULL;
        if (b->ops && b->ctx)
                b->ops->close(b->ctx);
        free(b->path);
        free(b->peer_uri);
        free(b);
        return NULL;
}

int backend_host_facts(Backend *b, FerryHostFacts *ret, FerryError *error) {
        *ret = (FerryHostFacts) { .struct_size = sizeof(FerryHostFacts) };
        return b->ops->host_facts(b->ctx, ret, error);
}

static VmState vm_state_from_backend(FerryVmState s) {
        switch (s) {
        case FERRY_VM_RUNNING: return VM_RUNNING;
        case FERRY_VM_PAUSED: return VM_PAUSED;
        case FERRY_VM_SHUTOFF: return VM_SHUTOFF;
        case FERRY_VM_MIGRATING: return VM_MIGRATING;
        default: return VM_OTHER;
        }
}

int backend_list_vms(Backend *b, const ClusterState *s, NodeVmsCommand *ret, FerryError *error) {
        FerryVm *vms = NULL;
        size_t n = 0;
        int r;

        r = b->ops->list_vms(b->ctx, &vms, &n, error);
        if (r < 0)
                return r;
        *ret = (NodeVmsCommand) {};
        if (n > STATE_NODE_VMS_MAX) {
                b->ops->free_vms(b->ctx, vms, n);
                snprintf(error->message, sizeof(error->message), "%zu VMs is more than ferry tracks per node (%u)",
                         n, STATE_NODE_VMS_MAX);
                return -E2BIG;
        }
        if (n > 0 && !(ret->vms = calloc(n, sizeof(VmRecord)))) {
                b->ops->free_vms(b->ctx, vms, n);
                return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                VmRecord *v = &ret->vms[i];
                /* Bounded copies: never trust a plugin's terminators. */
                v->name = strndup(vms[i].name, sizeof(vms[i].name));
                v->uuid = strndup(vms[i].uuid, sizeof(vms[i].uuid));
                v->state = vm_state_from_backend(vms[i].state);
                v->vcpus = vms[i].vcpus;
                v->memory = vms[i].memory;
                v->cpu_use_permille = vms[i].cpu_use_permille;
                v->dirty_rate = vms[i].dirty_rate;
                v->n_passthrough = vms[i].n_passthrough;
                /* Which shared volumes its disks live on: what volume
                 * moves and removals check against (state-volumes.h). */
                const char *paths[FERRY_VM_DISKS_MAX];
                size_t n_paths = 0;
                for (uint32_t k = 0; k < vms[i].n_disks && k < FERRY_VM_DISKS_MAX; k++) {
                        vms[i].disks[k].path[sizeof(vms[i].disks[k].path) - 1] = 0;
                        paths[n_paths++] = vms[i].disks[k].path;
                }
                v->volumes = s ? state_volumes_for_disks(s, paths, n_paths) : strdup("");
                ret->n_vms++;
                if (!v->name || !v->uuid || !v->volumes) {
                        b->ops->free_vms(b->ctx, vms, n);
                        node_vms_command_done(ret);
                        return -ENOMEM;
                }
        }
        b->ops->free_vms(b->ctx, vms, n);
        return 0;
}
