/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl status: the cluster as this node's ferryd sees it, from the
 * properties of the Cluster interface. */

#include <errno.h>
#include <stdio.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"

enum {
        STATUS_CLUSTER_NAME,
        STATUS_LOCAL_NODE_ID,
        STATUS_LOCAL_NODE_NAME,
        STATUS_QUORATE,
        STATUS_SYNCED,
        STATUS_MEMBERS,
        STATUS_QUORUM_VOTES,
        STATUS_COMMIT,
        STATUS_DIGEST,
        STATUS_PROTOCOL_VERSION,
        STATUS_VERSION,
        _STATUS_FIELD_MAX,
};

/* The JSON keys are a contract (docs/ferryctl.md). The human output shows
 * the local node's name and id on one line (see print_human()). */
static const Field status_fields[_STATUS_FIELD_MAX] = {
        [STATUS_CLUSTER_NAME]     = { "ClusterName",     "cluster_name",     VALUE_STRING, "Cluster",      FORMAT_PLAIN },
        [STATUS_LOCAL_NODE_ID]    = { "LocalNodeId",     "local_node_id",    VALUE_UINT,   "Local node id", FORMAT_PLAIN },
        [STATUS_LOCAL_NODE_NAME]  = { "LocalNodeName",   "local_node_name",  VALUE_STRING, "Local node",   FORMAT_PLAIN },
        [STATUS_QUORATE]          = { "Quorate",         "quorate",          VALUE_BOOL,   "Quorate",      FORMAT_PLAIN },
        [STATUS_SYNCED]           = { "Synced",          "synced",           VALUE_BOOL,   "Synced",       FORMAT_PLAIN },
        [STATUS_MEMBERS]          = { "Members",         "members",          VALUE_UINT,   "Members",      FORMAT_PLAIN },
        [STATUS_QUORUM_VOTES]     = { "QuorumVotes",     "quorum_votes",     VALUE_UINT,   "Quorum votes", FORMAT_PLAIN },
        [STATUS_COMMIT]           = { "CommitCounter",   "commit",           VALUE_UINT,   "Commit",       FORMAT_PLAIN },
        [STATUS_DIGEST]           = { "Digest",          "digest",           VALUE_STRING, "Digest",       FORMAT_PLAIN },
        [STATUS_PROTOCOL_VERSION] = { "ProtocolVersion", "protocol_version", VALUE_UINT,   "Protocol",     FORMAT_PLAIN },
        [STATUS_VERSION]          = { "Version",         "version",          VALUE_STRING, "Version",      FORMAT_PLAIN },
};

/* One human line, "Label:" and value, for field i. */
static int add_line(Table *t, const Value *values, size_t i) {
        _cleanup_free_ char *label = NULL, *text = NULL;
        int r;

        if (asprintf(&label, "%s:", status_fields[i].label) < 0) {
                label = NULL;
                return -ENOMEM;
        }
        text = value_format(values + i, status_fields[i].format, 0);
        if (!text)
                return -ENOMEM;

        r = table_add_cell(t, label);
        if (r < 0)
                return r;
        return table_add_cell(t, text);
}

static int print_human(const Value *values) {
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_free_ char *name = NULL, *id = NULL, *local = NULL;
        int r;

        t = table_new(2, NULL);
        if (!t)
                return -ENOMEM;

        /* "node1 (1)": operators know nodes by name, corosync logs by id. */
        name = value_format(values + STATUS_LOCAL_NODE_NAME, FORMAT_PLAIN, 0);
        id = value_format(values + STATUS_LOCAL_NODE_ID, FORMAT_PLAIN, 0);
        if (!name || !id)
                return -ENOMEM;
        if (asprintf(&local, "%s (%s)", name, id) < 0) {
                local = NULL;
                return -ENOMEM;
        }

        if ((r = add_line(t, values, STATUS_CLUSTER_NAME)) < 0 ||
            (r = table_add_cell(t, "Local node:")) < 0 ||
            (r = table_add_cell(t, local)) < 0 ||
            (r = add_line(t, values, STATUS_QUORATE)) < 0 ||
            (r = add_line(t, values, STATUS_SYNCED)) < 0 ||
            (r = add_line(t, values, STATUS_MEMBERS)) < 0 ||
            (r = add_line(t, values, STATUS_QUORUM_VOTES)) < 0 ||
            (r = add_line(t, values, STATUS_COMMIT)) < 0 ||
            (r = add_line(t, values, STATUS_DIGEST)) < 0 ||
            (r = add_line(t, values, STATUS_VERSION)) < 0 ||
            (r = add_line(t, values, STATUS_PROTOCOL_VERSION)) < 0)
                return r;

        return table_print(t, stdout);
}

static void status_values_done(Value (*values)[_STATUS_FIELD_MAX]) {
        values_done(*values, _STATUS_FIELD_MAX);
}

static int print_json(const Value *values) {
        JsonWriter w;

        json_init(&w, stdout, true);
        fields_write_json(&w, status_fields, _STATUS_FIELD_MAX, values);
        return json_finish(&w);
}

int cmd_status(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(status_values_done) Value values[_STATUS_FIELD_MAX] = {};
        int r;

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        r = bus_get_all_properties(bus, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE, &error, &reply);
        if (r < 0)
                return bus_error_exit("reading the cluster status", &error, r);

        r = bus_read_properties(reply, status_fields, _STATUS_FIELD_MAX, values);
        if (r < 0)
                return bus_parse_error_exit("reading the cluster status", r);

        r = ctx->json ? print_json(values) : print_human(values);
        return finish_output(r);
}
