/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The VM inventory in the replicated state: what each node says it runs.
 * A node publishes its whole list (COMMAND_NODE_VMS) when it changes; only
 * the node itself may. Records are keyed by (name, node) rather than by
 * name alone, so that a VM reported by two nodes at once, the one thing
 * that must never happen, is visible instead of silently overwritten. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct ClusterState ClusterState;

typedef enum VmState {
        VM_RUNNING = 1,
        VM_PAUSED = 2,
        VM_SHUTOFF = 3,
        VM_MIGRATING = 4,
        VM_OTHER = 5,
        _VM_STATE_MAX,
} VmState;

typedef struct VmRecord {
        char *name;
        uint32_t node;
        char *uuid;
        VmState state;
        uint32_t vcpus;
        uint64_t memory;                /* bytes */
        uint32_t cpu_use_permille;
        uint64_t dirty_rate;            /* bytes/s, 0 = unknown */
        uint32_t n_passthrough;         /* host devices: not live-migratable */
        char *volumes;                  /* the shared volumes its disks live on: names, space-separated, sorted */
} VmRecord;

typedef struct NodeVmsCommand {
        uint32_t node;
        size_t n_vms;
        VmRecord *vms;                  /* node fields ignored: set from `node` */
} NodeVmsCommand;

/* Per node, at most this many VMs in one command. */
#define STATE_NODE_VMS_MAX 20000U

void vm_record_done(VmRecord *v);
void node_vms_command_done(NodeVmsCommand *c);
void node_vms_command_encode(const NodeVmsCommand *c, Writer *w);
int node_vms_command_decode(Reader *r, NodeVmsCommand *ret);
int state_apply_node_vms(ClusterState *s, uint32_t sender, const NodeVmsCommand *c);
/* Whether the state already holds exactly this list for `node`. */
bool state_node_vms_equal(const ClusterState *s, uint32_t node, const NodeVmsCommand *c);

void state_vms_encode(const ClusterState *s, Writer *w);
int state_vms_decode(ClusterState *s, Reader *r);
void state_vms_free(ClusterState *s);

/* The record of `name` on `node`, or NULL. */
const VmRecord *state_find_vm(const ClusterState *s, const char *name, uint32_t node);
/* The first node that reports `name`, or NULL; *count = how many do. */
const VmRecord *state_find_vm_any(const ClusterState *s, const char *name, size_t *count);
/* Sum of memory of the VMs a node reports. */
uint64_t state_node_vm_memory(const ClusterState *s, uint32_t node);

const char *vm_state_to_string(VmState s);
