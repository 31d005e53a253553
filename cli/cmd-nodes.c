/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl nodes and ferryctl node: the node objects ferryd exports. Both
 * commands decode through node_fields, so a node looks the same in the list
 * and on its own, in JSON and for humans. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"

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
        _NODE_FIELD_MAX,
};

/* The node's JSON keys are a contract (docs/ferryctl.md): change them only
 * together with the documentation, and only by adding. */
static const Field node_fields[_NODE_FIELD_MAX] = {
        [NODE_ID]                 = { "Id",                "id",                 VALUE_UINT,   "Id",                 FORMAT_PLAIN },
        [NODE_NAME]               = { "Name",              "name",               VALUE_STRING, "Name",               FORMAT_PLAIN },
        [NODE_ONLINE]             = { "Online",            "online",             VALUE_BOOL,   "Online",             FORMAT_PLAIN },
        [NODE_QUORATE]            = { "Quorate",           "quorate",            VALUE_BOOL,   "Quorate",            FORMAT_PLAIN },
        [NODE_MAINTENANCE]        = { "Maintenance",       "maintenance",        VALUE_BOOL,   "Maintenance",        FORMAT_PLAIN },
        [NODE_DAEMON_VERSION]     = { "DaemonVersion",     "daemon_version",     VALUE_STRING, "Daemon version",     FORMAT_PLAIN },
        [NODE_PROTOCOL_VERSION]   = { "ProtocolVersion",   "protocol_version",   VALUE_UINT,   "Protocol version",   FORMAT_PLAIN },
        [NODE_CPU_VENDOR]         = { "CpuVendor",         "cpu_vendor",         VALUE_STRING, "CPU vendor",         FORMAT_PLAIN },
        [NODE_CPU_MODEL]          = { "CpuModel",          "cpu_model",          VALUE_STRING, "CPU model",          FORMAT_PLAIN },
        [NODE_CPU_FEATURES]       = { "CpuFeatures",       "cpu_features",       VALUE_STRV,   "CPU features",       FORMAT_PLAIN },
        [NODE_CPUS]               = { "Cpus",              "cpus",               VALUE_UINT,   "CPUs",               FORMAT_PLAIN },
        [NODE_MEMORY_TOTAL]       = { "MemoryTotal",       "memory_total",       VALUE_UINT,   "Memory total",       FORMAT_BYTES },
        [NODE_MEMORY_FREE]        = { "MemoryFree",        "memory_free",        VALUE_UINT,   "Memory free",        FORMAT_BYTES },
        [NODE_MEMORY_RESERVED]    = { "MemoryReserved",    "memory_reserved",    VALUE_UINT,   "Memory reserved",    FORMAT_BYTES },
        [NODE_HYPERVISOR_NAME]    = { "HypervisorName",    "hypervisor_name",    VALUE_STRING, "Hypervisor",         FORMAT_PLAIN },
        [NODE_HYPERVISOR_VERSION] = { "HypervisorVersion", "hypervisor_version", VALUE_STRING, "Hypervisor version", FORMAT_PLAIN },
        [NODE_FACTS_UPDATED_AT]   = { "FactsUpdatedAt",    "facts_updated_at",   VALUE_UINT,   "Facts updated",      FORMAT_TIMESTAMP },
};

/* The columns of `ferryctl nodes`; a cell shows its field as `ferryctl node`
 * does. */
static const struct {
        const char *header;
        size_t field;
        bool align_right;
} node_columns[] = {
        { "ID",         NODE_ID,             true  },
        { "NAME",       NODE_NAME,           false },
        { "ONLINE",     NODE_ONLINE,         false },
        { "QUORATE",    NODE_QUORATE,        false },
        { "MAINT",      NODE_MAINTENANCE,    false },
        { "CPU-VENDOR", NODE_CPU_VENDOR,     false },
        { "CPUS",       NODE_CPUS,           true  },
        { "MEM-TOTAL",  NODE_MEMORY_TOTAL,   true  },
        { "MEM-FREE",   NODE_MEMORY_FREE,    true  },
        { "VERSION",    NODE_DAEMON_VERSION, false },
};

typedef struct NodeRecord {
        Value values[_NODE_FIELD_MAX];
} NodeRecord;

typedef struct NodeList {
        NodeRecord *nodes;
        size_t n;
} NodeList;

static void node_record_done(NodeRecord *node) {
        values_done(node->values, _NODE_FIELD_MAX);
}

static void node_list_done(NodeList *l) {
        for (size_t i = 0; i < l->n; i++)
                node_record_done(l->nodes + i);
        free(l->nodes);
        *l = (NodeList) {};
}

/* By id; a node without one (a daemon that broke the contract) goes last,
 * then by name so that the order is still stable. */
static int node_compare(const void *a, const void *b) {
        const Value *x = ((const NodeRecord *) a)->values, *y = ((const NodeRecord *) b)->values;
        uint64_t ix = x[NODE_ID].type == VALUE_UINT ? x[NODE_ID].u : UINT64_MAX;
        uint64_t iy = y[NODE_ID].type == VALUE_UINT ? y[NODE_ID].u : UINT64_MAX;
        const char *nx = x[NODE_NAME].type == VALUE_STRING ? x[NODE_NAME].str : "";
        const char *ny = y[NODE_NAME].type == VALUE_STRING ? y[NODE_NAME].str : "";

        if (ix != iy)
                return ix < iy ? -1 : 1;
        return strcmp(nx, ny);
}

/* Hands bus_read_managed_objects() the values of one more node. */
static Value *node_list_add(void *userdata) {
        NodeList *l = userdata;
        NodeRecord *nodes;

        nodes = reallocarray(l->nodes, l->n + 1, sizeof(NodeRecord));
        if (!nodes)
                return NULL;
        l->nodes = nodes;
        /* Counted before filling: a half-read record is freed with the list. */
        l->nodes[l->n++] = (NodeRecord) {};
        return l->nodes[l->n - 1].values;
}

static int print_nodes_human(const NodeList *l) {
        _cleanup_(table_freep) Table *t = NULL;
        const char *headers[ELEMENTSOF(node_columns)];
        uint64_t now = clock_realtime_usec();
        int r;

        for (size_t c = 0; c < ELEMENTSOF(node_columns); c++)
                headers[c] = node_columns[c].header;

        t = table_new(ELEMENTSOF(node_columns), headers);
        if (!t)
                return -ENOMEM;
        for (size_t c = 0; c < ELEMENTSOF(node_columns); c++)
                if (node_columns[c].align_right)
                        table_set_align_right(t, c);

        for (size_t i = 0; i < l->n; i++)
                for (size_t c = 0; c < ELEMENTSOF(node_columns); c++) {
                        size_t f = node_columns[c].field;
                        _cleanup_free_ char *text = NULL;

                        text = value_format(l->nodes[i].values + f, node_fields[f].format, now);
                        if (!text)
                                return -ENOMEM;
                        r = table_add_cell(t, text);
                        if (r < 0)
                                return r;
                }

        return table_print(t, stdout);
}

static int print_nodes_json(const NodeList *l) {
        JsonWriter w;

        json_init(&w, stdout, true);
        json_begin_array(&w);
        for (size_t i = 0; i < l->n; i++)
                fields_write_json(&w, node_fields, _NODE_FIELD_MAX, l->nodes[i].values);
        json_end_array(&w);
        return json_finish(&w);
}

int cmd_nodes(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(node_list_done) NodeList l = {};
        int r;

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        r = bus_get_managed_objects(bus, &error, &reply);
        if (r < 0)
                return bus_error_exit("listing nodes", &error, r);

        /* GetManagedObjects returns every object below ferryd's root, jobs
         * too; only the nodes count here. */
        r = bus_read_managed_objects(reply, FERRY_NODE_INTERFACE, node_fields, _NODE_FIELD_MAX,
                                     node_list_add, &l);
        if (r < 0)
                return bus_parse_error_exit("listing nodes", r);

        if (l.n > 1)
                qsort(l.nodes, l.n, sizeof(NodeRecord), node_compare);

        r = ctx->json ? print_nodes_json(&l) : print_nodes_human(&l);
        return finish_output(r);
}

static int print_node_human(const NodeRecord *node) {
        _cleanup_(table_freep) Table *t = NULL;
        int r;

        t = table_new(2, NULL);
        if (!t)
                return -ENOMEM;

        r = fields_add_to_table(t, node_fields, _NODE_FIELD_MAX, node->values, clock_realtime_usec());
        if (r < 0)
                return r;

        return table_print(t, stdout);
}

static int print_node_json(const NodeRecord *node) {
        JsonWriter w;

        json_init(&w, stdout, true);
        fields_write_json(&w, node_fields, _NODE_FIELD_MAX, node->values);
        return json_finish(&w);
}

int cmd_node(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(node_record_done) NodeRecord node = {};
        _cleanup_free_ char *operation = NULL, *path = NULL;
        const char *p;
        int r;

        if (asprintf(&operation, "looking up node '%s'", args[0]) < 0) {
                operation = NULL;
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        /* The name or id goes to ferryd as typed: it alone knows which nodes
         * exist and how names and ids resolve. */
        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                               "GetNode", &error, &reply, "s", args[0]);
        if (r < 0)
                return bus_error_exit(operation, &error, r);

        r = sd_bus_message_read(reply, "o", &p);
        if (r < 0)
                return bus_parse_error_exit(operation, r);
        /* p points into reply, which is about to be replaced. */
        path = strdup(p);
        if (!path)
                return bus_parse_error_exit(operation, -ENOMEM);
        reply = sd_bus_message_unref(reply);

        r = bus_get_all_properties(bus, path, FERRY_NODE_INTERFACE, &error, &reply);
        if (r < 0) {
                /* Removed between the two calls: as unknown as it gets. */
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE)) {
                        print_error("node '%s' disappeared while it was being read: %s",
                                    args[0], bus_error_text(&error, r));
                        return FERRYCTL_EXIT_NOT_FOUND;
                }
                return bus_error_exit(operation, &error, r);
        }

        r = bus_read_properties(reply, node_fields, _NODE_FIELD_MAX, node.values);
        if (r < 0)
                return bus_parse_error_exit(operation, r);

        r = ctx->json ? print_node_json(&node) : print_node_human(&node);
        return finish_output(r);
}
