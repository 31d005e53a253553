/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl nodes and ferryctl node: the node objects ferryd exports. Both
 * commands decode through node_fields (node.c), so a node looks the same in
 * the list and on its own, in JSON and for humans. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"
#include "node.h"

/* The columns of `ferryctl nodes`; a cell shows its field as `ferryctl node`
 * does, except DRAIN, which shows "-" rather than "none". */
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
        { "DRAIN",      NODE_DRAIN_STATE,    false },
        { "CPU-VENDOR", NODE_CPU_VENDOR,     false },
        { "CPUS",       NODE_CPUS,           true  },
        { "MEM-TOTAL",  NODE_MEMORY_TOTAL,   true  },
        { "MEM-FREE",   NODE_MEMORY_FREE,    true  },
        { "VERSION",    NODE_DAEMON_VERSION, false },
};

typedef struct NodeList {
        NodeInfo *nodes;
        size_t n;
} NodeList;

static void node_list_done(NodeList *l) {
        for (size_t i = 0; i < l->n; i++)
                node_info_done(l->nodes + i);
        free(l->nodes);
        *l = (NodeList) {};
}

/* By id; a node without one (a daemon that broke the contract) goes last,
 * then by name so that the order is still stable. */
static int node_compare(const void *a, const void *b) {
        const Value *x = ((const NodeInfo *) a)->values, *y = ((const NodeInfo *) b)->values;
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
        NodeInfo *nodes;

        nodes = reallocarray(l->nodes, l->n + 1, sizeof(NodeInfo));
        if (!nodes)
                return NULL;
        l->nodes = nodes;
        /* Counted before filling: a half-read record is freed with the list. */
        l->nodes[l->n++] = (NodeInfo) {};
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

                        if (f == NODE_DRAIN_STATE)
                                text = strdup(node_drain_state_text(l->nodes + i));
                        else
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
                node_write_json(&w, l->nodes + i);
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
                qsort(l.nodes, l.n, sizeof(NodeInfo), node_compare);

        r = ctx->json ? print_nodes_json(&l) : print_nodes_human(&l);
        return finish_output(r);
}

int cmd_node(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(node_info_done) NodeInfo node = {};
        _cleanup_free_ char *path = NULL;
        int r;

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        r = bus_get_node_path(bus, args[0], &path);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;
        r = bus_read_node(bus, args[0], path, &node);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        if (ctx->json) {
                JsonWriter w;

                json_init(&w, stdout, true);
                node_write_json(&w, &node);
                r = json_finish(&w);
        } else
                r = node_print_detail(&node, stdout, clock_realtime_usec());
        return finish_output(r);
}
