/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A node as ferryctl shows it: the one field table that ties the properties
 * of org.ferry.Ferry1.Node to their JSON keys and labels (shared by
 * `nodes`, `node`, `drain` and `undrain`), and the texts made from a node's
 * drain. No bus here, so all of it is unit-tested (cli/test-output.c). */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "value.h"

enum {
        NODE_ID,
        NODE_NAME,
        NODE_ONLINE,
        NODE_QUORATE,
        NODE_MAINTENANCE,
        NODE_DAEMON_VERSION,
        NODE_PROTOCOL_VERSION,
        NODE_CPU_VENDOR,
        NODE_CPU_MODEL,
        NODE_CPU_FEATURES,
        NODE_CPUS,
        NODE_MEMORY_TOTAL,
        NODE_MEMORY_FREE,
        NODE_MEMORY_RESERVED,
        NODE_HYPERVISOR_NAME,
        NODE_HYPERVISOR_VERSION,
        NODE_FACTS_UPDATED_AT,
        NODE_DRAIN_MODE,
        NODE_DRAIN_STATE,
        NODE_DRAIN_REMAINING,
        NODE_DRAIN_BLOCKERS,
        _NODE_FIELD_MAX,
};

extern const Field node_fields[_NODE_FIELD_MAX];

typedef struct NodeInfo {
        Value values[_NODE_FIELD_MAX];
} NodeInfo;

void node_info_done(NodeInfo *n);

/* A field's value, or "" / 0 / false when ferryd did not report it. */
const char *node_string(const NodeInfo *n, size_t field);
uint64_t node_uint(const NodeInfo *n, size_t field);
bool node_bool(const NodeInfo *n, size_t field);

/* DrainBlockers: how many, and the VM and the reason of the i-th. */
size_t node_n_blockers(const NodeInfo *n);
const char *node_blocker_vm(const NodeInfo *n, size_t i);
const char *node_blocker_reason(const NodeInfo *n, size_t i);

/* DrainState for humans: "-" for none (or not reported). */
const char *node_drain_state_text(const NodeInfo *n);

/* `ferryctl node`: "Label: value" lines, the drain blockers indented below
 * them, one per line. */
int node_print_detail(const NodeInfo *n, FILE *f, uint64_t now_usec);

/* The node object of every --json output that shows a node. */
void node_write_json(JsonWriter *w, const NodeInfo *n);

/* What a VM in DrainBlockers is: "blocked", or "left behind" in mode
 * leave. */
const char *node_blocked_word(const NodeInfo *n);

/* "1 VM", "6 VMs" */
const char *plural_vms(char buf[static 32], uint64_t n);

/* The drain of `name` in one line, for the status area of `drain --wait`:
 * "node1: draining, 6 VMs left (2 moving, 1 blocked)". n_moving: the
 * migrations of its VMs that are under way. NULL on OOM. */
char *node_drain_line(const NodeInfo *n, const char *name, size_t n_moving);
