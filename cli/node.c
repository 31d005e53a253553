/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "strutil.h"

/* The node's JSON keys are a contract (docs/ferryctl.md): change them only
 * together with the documentation, and only by adding. */
const Field node_fields[_NODE_FIELD_MAX] = {
        [NODE_ID]                 = { "Id",                "id",                 VALUE_UINT,   "Id",                 FORMAT_PLAIN, {} },
        [NODE_NAME]               = { "Name",              "name",               VALUE_STRING, "Name",               FORMAT_PLAIN, {} },
        [NODE_ONLINE]             = { "Online",            "online",             VALUE_BOOL,   "Online",             FORMAT_PLAIN, {} },
        [NODE_QUORATE]            = { "Quorate",           "quorate",            VALUE_BOOL,   "Quorate",            FORMAT_PLAIN, {} },
        [NODE_MAINTENANCE]        = { "Maintenance",       "maintenance",        VALUE_BOOL,   "Maintenance",        FORMAT_PLAIN, {} },
        [NODE_DAEMON_VERSION]     = { "DaemonVersion",     "daemon_version",     VALUE_STRING, "Daemon version",     FORMAT_PLAIN, {} },
        [NODE_PROTOCOL_VERSION]   = { "ProtocolVersion",   "protocol_version",   VALUE_UINT,   "Protocol version",   FORMAT_PLAIN, {} },
        [NODE_CPU_VENDOR]         = { "CpuVendor",         "cpu_vendor",         VALUE_STRING, "CPU vendor",         FORMAT_PLAIN, {} },
        [NODE_CPU_MODEL]          = { "CpuModel",          "cpu_model",          VALUE_STRING, "CPU model",          FORMAT_PLAIN, {} },
        [NODE_CPU_FEATURES]       = { "CpuFeatures",       "cpu_features",       VALUE_STRV,   "CPU features",       FORMAT_PLAIN, {} },
        [NODE_CPUS]               = { "Cpus",              "cpus",               VALUE_UINT,   "CPUs",               FORMAT_PLAIN, {} },
        [NODE_MEMORY_TOTAL]       = { "MemoryTotal",       "memory_total",       VALUE_UINT,   "Memory total",       FORMAT_BYTES, {} },
        [NODE_MEMORY_FREE]        = { "MemoryFree",        "memory_free",        VALUE_UINT,   "Memory free",        FORMAT_BYTES, {} },
        [NODE_MEMORY_RESERVED]    = { "MemoryReserved",    "memory_reserved",    VALUE_UINT,   "Memory reserved",    FORMAT_BYTES, {} },
        [NODE_HYPERVISOR_NAME]    = { "HypervisorName",    "hypervisor_name",    VALUE_STRING, "Hypervisor",         FORMAT_PLAIN, {} },
        [NODE_HYPERVISOR_VERSION] = { "HypervisorVersion", "hypervisor_version", VALUE_STRING, "Hypervisor version", FORMAT_PLAIN, {} },
        [NODE_FACTS_UPDATED_AT]   = { "FactsUpdatedAt",    "facts_updated_at",   VALUE_UINT,   "Facts updated",      FORMAT_TIMESTAMP, {} },
        [NODE_DRAIN_MODE]         = { "DrainMode",         "drain_mode",         VALUE_STRING, "Drain mode",         FORMAT_PLAIN, {} },
        [NODE_DRAIN_STATE]        = { "DrainState",        "drain_state",        VALUE_STRING, "Drain state",        FORMAT_PLAIN, {} },
        [NODE_DRAIN_REMAINING]    = { "DrainRemaining",    "drain_remaining",    VALUE_UINT,   "Drain remaining",    FORMAT_PLAIN, {} },
        [NODE_DRAIN_BLOCKERS]     = { "DrainBlockers",     "drain_blockers",     VALUE_PAIRS,  "Drain blockers",     FORMAT_PLAIN, { "vm", "reason" } },
};

void node_info_done(NodeInfo *n) {
        values_done(n->values, _NODE_FIELD_MAX);
}

const char *node_string(const NodeInfo *n, size_t field) {
        const Value *v = n->values + field;

        return v->type == VALUE_STRING && v->str ? v->str : "";
}

uint64_t node_uint(const NodeInfo *n, size_t field) {
        const Value *v = n->values + field;

        return v->type == VALUE_UINT ? v->u : 0;
}

bool node_bool(const NodeInfo *n, size_t field) {
        const Value *v = n->values + field;

        return v->type == VALUE_BOOL && v->b;
}

size_t node_n_blockers(const NodeInfo *n) {
        return value_n_pairs(n->values + NODE_DRAIN_BLOCKERS);
}

const char *node_blocker_vm(const NodeInfo *n, size_t i) {
        return i < node_n_blockers(n) ? n->values[NODE_DRAIN_BLOCKERS].strv[2 * i] : "";
}

const char *node_blocker_reason(const NodeInfo *n, size_t i) {
        return i < node_n_blockers(n) ? n->values[NODE_DRAIN_BLOCKERS].strv[2 * i + 1] : "";
}

const char *node_drain_state_text(const NodeInfo *n) {
        const char *state = node_string(n, NODE_DRAIN_STATE);

        return !*state || streq(state, "none") ? "-" : state;
}

int node_print_detail(const NodeInfo *n, FILE *f, uint64_t now_usec) {
        _cleanup_(table_freep) Table *t = NULL;
        size_t n_blockers = node_n_blockers(n);
        int r;

        t = table_new(2, NULL);
        if (!t)
                return -ENOMEM;

        /* Everything but the blockers: they are sentences, one per line
         * below the others; only "none" fits in the table. */
        r = fields_add_to_table(t, node_fields, NODE_DRAIN_BLOCKERS, n->values, now_usec);
        if (r < 0)
                return r;
        if (n_blockers == 0) {
                _cleanup_free_ char *label = NULL;

                if (asprintf(&label, "%s:", node_fields[NODE_DRAIN_BLOCKERS].label) < 0) {
                        label = NULL;
                        return -ENOMEM;
                }
                if ((r = table_add_cell(t, label)) < 0 || (r = table_add_cell(t, "-")) < 0)
                        return r;
        }
        r = fields_add_to_table(t, node_fields + NODE_DRAIN_BLOCKERS + 1, _NODE_FIELD_MAX - NODE_DRAIN_BLOCKERS - 1,
                                n->values + NODE_DRAIN_BLOCKERS + 1, now_usec);
        if (r < 0)
                return r;
        r = table_print(t, f);
        if (r < 0)
                return r;

        if (n_blockers > 0) {
                fprintf(f, "%s:\n", node_fields[NODE_DRAIN_BLOCKERS].label);
                for (size_t i = 0; i < n_blockers; i++)
                        fprintf(f, "  %s: %s\n", node_blocker_vm(n, i), node_blocker_reason(n, i));
        }

        if (fflush(f) != 0)
                return negative_errno();
        return ferror(f) ? -EIO : 0;
}

void node_write_json(JsonWriter *w, const NodeInfo *n) {
        fields_write_json(w, node_fields, _NODE_FIELD_MAX, n->values);
}

const char *node_blocked_word(const NodeInfo *n) {
        return streq(node_string(n, NODE_DRAIN_MODE), "leave") ? "left behind" : "blocked";
}

const char *plural_vms(char buf[static 32], uint64_t n) {
        snprintf(buf, 32, "%" PRIu64 " VM%s", n, n == 1 ? "" : "s");
        return buf;
}

char *node_drain_line(const NodeInfo *n, const char *name, size_t n_moving) {
        const char *state = node_string(n, NODE_DRAIN_STATE);
        uint64_t remaining = node_uint(n, NODE_DRAIN_REMAINING);
        size_t n_blockers = node_n_blockers(n);
        char vms[32], detail[96] = "";
        char *s;

        if (!*state || streq(state, "none"))
                return asprintf(&s, "%s: not draining", name) < 0 ? NULL : s;

        if (streq(state, "drained")) {
                /* Only VMs that --blockers leave left behind. */
                if (remaining == 0)
                        return asprintf(&s, "%s: drained", name) < 0 ? NULL : s;
                return asprintf(&s, "%s: drained, %s left on it", name, plural_vms(vms, remaining)) < 0 ? NULL : s;
        }

        if (n_moving > 0 && n_blockers > 0)
                snprintf(detail, sizeof(detail), " (%zu moving, %zu %s)", n_moving, n_blockers, node_blocked_word(n));
        else if (n_moving > 0)
                snprintf(detail, sizeof(detail), " (%zu moving)", n_moving);
        else if (n_blockers > 0)
                snprintf(detail, sizeof(detail), " (%zu %s)", n_blockers, node_blocked_word(n));

        return asprintf(&s, "%s: %s, %s left%s", name, state, plural_vms(vms, remaining), detail) < 0 ? NULL : s;
}
