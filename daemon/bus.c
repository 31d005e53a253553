/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bus.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "ferry-build.h"
#include "ferry-bus.h"
#include "log.h"
#include "macro.h"
#include "message.h"
#include "bus-drain.h"
#include "bus-events.h"
#include "bus-policy.h"
#include "bus-balance.h"
#include "bus-volume.h"
#include "bus-migration.h"
#include "polkit.h"

typedef struct EmittedNode {
        uint32_t id;
        char digest[STATE_DIGEST_HEX_SIZE];
} EmittedNode;

/* ---- cluster object ---------------------------------------------------- */

static int property_cluster_name(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        return sd_bus_message_append(reply, "s", d->ring ? ring_cluster_name(d->ring) : "");
}

static int property_local_node_id(sd_bus *bus, const char *path, const char *interface, const char *property,
                                  sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        return sd_bus_message_append(reply, "u", d->node_id);
}

static int property_local_node_name(sd_bus *bus, const char *path, const char *interface, const char *property,
                                    sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        return sd_bus_message_append(reply, "s", d->node_name ? d->node_name : "");
}

static int property_quorate(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "b", daemon_is_quorate(userdata));
}

static int property_synced(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        return sd_bus_message_append(reply, "b", d->replica && replica_mode(d->replica) == REPLICA_SYNCED);
}

static int property_members(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        return sd_bus_message_append(reply, "u", d->replica ? (uint32_t) replica_n_members(d->replica) : 0);
}

static int property_quorum_votes(sd_bus *bus, const char *path, const char *interface, const char *property,
                                 sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        return sd_bus_message_append(reply, "u", d->replica ? replica_quorum_votes(d->replica) : d->quorum_votes);
}

static int property_commit(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        return sd_bus_message_append(reply, "t", d->replica ? replica_state(d->replica)->commit : UINT64_C(0));
}

static int property_digest(sd_bus *bus, const char *path, const char *interface, const char *property,
                           sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        return sd_bus_message_append(reply, "s", d->replica ? replica_digest(d->replica) : "");
}

static int property_protocol_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                     sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "u", (uint32_t) FERRY_PROTOCOL_VERSION);
}

static int property_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                            sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", FERRY_VERSION);
}

/* ---- mutating calls ----------------------------------------------------- */

/* Resolves the node named by the call's first argument. */
static int call_node(Daemon *d, sd_bus_message *m, const char *name, NodeView *ret, sd_bus_error *error) {
        if (!name || !*name)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Node name must not be empty");
        if (!daemon_find_node(d, name, ret))
                return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_NODE, "No such node: \"%s\" is unknown to the cluster", name);
        return 0;
}

static int check_can_change(Daemon *d, sd_bus_error *error) {
        if (!d->replica || replica_mode(d->replica) == REPLICA_DETACHED)
                return sd_bus_error_set(error, FERRY_ERROR_NOT_QUORATE,
                                        "This node is not connected to the cluster (corosync unreachable): refusing to change cluster state");
        if (replica_mode(d->replica) != REPLICA_SYNCED)
                return sd_bus_error_set(error, FERRY_ERROR_NOT_SYNCED,
                                        "Cluster membership is changing and the state sync has not finished; retry in a moment");
        if (!daemon_is_quorate(d))
                return sd_bus_error_setf(error, FERRY_ERROR_NOT_QUORATE,
                                         "This node's partition is not quorate (%zu members, %u votes needed): refusing to change cluster state",
                                         replica_n_members(d->replica), replica_quorum_votes(d->replica));
        return 0;
}

static int read_maintenance_args(sd_bus_message *m, const char **name, int *enabled, bool per_node) {
        int r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        if (per_node) {
                *name = NULL;
                return sd_bus_message_read(m, "b", enabled);
        }
        return sd_bus_message_read(m, "sb", name, enabled);
}

static uint32_t node_id_from_path(const char *path) {
        const char *prefix = FERRY_NODE_PATH_PREFIX "/";
        uint32_t id = 0;

        if (strncmp(path, prefix, strlen(prefix)) != 0)
                return 0;
        const char *p = path + strlen(prefix);
        if (!*p || strlen(p) > 10)
                return 0;
        for (; *p; p++) {
                if (*p < '0' || *p > '9')
                        return 0;
                uint64_t v = (uint64_t) id * 10 + (uint64_t) (*p - '0');
                if (v > UINT32_MAX)
                        return 0;
                id = (uint32_t) v;
        }
        return id;
}

static int set_maintenance_authorized(Daemon *d, sd_bus_message *m, sd_bus_error *error) {
        const char *name = NULL;
        int enabled, r;
        bool per_node = streq(sd_bus_message_get_interface(m), FERRY_NODE_INTERFACE);
        NodeView v;

        r = read_maintenance_args(m, &name, &enabled, per_node);
        if (r < 0)
                return r;
        /* Re-resolve: the answer from polkit may come after a change. */
        if (per_node) {
                uint32_t id = node_id_from_path(sd_bus_message_get_path(m));
                if (!daemon_node_view(d, id, &v))
                        return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_NODE, "No such node: %u", id);
        } else {
                r = call_node(d, m, name, &v, error);
                if (r < 0)
                        return r;
        }
        if (!v.record)
                return sd_bus_error_setf(error, FERRY_ERROR_REJECTED,
                                         "Node \"%s\" has never joined the cluster with ferryd; its maintenance flag cannot be set yet",
                                         v.name);
        r = check_can_change(d, error);
        if (r < 0)
                return r;

        Command c = {
                .type = COMMAND_SET_MAINTENANCE,
                .set_maintenance = { .node = v.id, .enabled = enabled },
        };
        log_info("Maintenance %s for node \"%s\" (%u) requested by %s", enabled ? "on" : "off", v.name, v.id,
                 sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "?");
        return daemon_propose_for_call(d, &c, m, NULL, error);
}

static int method_set_maintenance(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const char *name = NULL;
        int enabled, r;
        bool per_node = streq(sd_bus_message_get_interface(m), FERRY_NODE_INTERFACE);
        NodeView v;

        /* parse, validate, authorize, apply */
        r = read_maintenance_args(m, &name, &enabled, per_node);
        if (r < 0)
                return r;
        if (!per_node) {
                r = call_node(d, m, name, &v, error);
                if (r < 0)
                        return r;
        }
        return polkit_authorize(d, m, FERRY_POLKIT_ACTION_MANAGE, set_maintenance_authorized, error);
}

static int method_get_node(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const char *name;
        char path[128];
        NodeView v;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = call_node(d, m, name, &v, error);
        if (r < 0)
                return r;
        snprintf(path, sizeof(path), FERRY_NODE_PATH_PREFIX "/%" PRIu32, v.id);
        return sd_bus_reply_method_return(m, "o", path);
}

static const sd_bus_vtable cluster_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("ClusterName", "s", property_cluster_name, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LocalNodeId", "u", property_local_node_id, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("LocalNodeName", "s", property_local_node_name, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Quorate", "b", property_quorate, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Synced", "b", property_synced, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Members", "u", property_members, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("QuorumVotes", "u", property_quorum_votes, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("CommitCounter", "t", property_commit, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Digest", "s", property_digest, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("ProtocolVersion", "u", property_protocol_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Version", "s", property_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("GetNode", SD_BUS_ARGS("s", name_or_id), SD_BUS_RESULT("o", path),
                                method_get_node, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetMaintenance", SD_BUS_ARGS("s", name_or_id, "b", enabled), SD_BUS_NO_RESULT,
                                method_set_maintenance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListVms", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(ssssuttu)", vms),
                                method_list_vms, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CheckMigration", SD_BUS_ARGS("s", vm, "s", destination),
                                SD_BUS_RESULT("s", destination, "a(sbs)", checks),
                                method_check_migration, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Migrate", SD_BUS_ARGS("s", vm, "s", destination, "a{sv}", options),
                                SD_BUS_RESULT("o", job), method_migrate, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("CancelJob", SD_BUS_ARGS("t", id), SD_BUS_NO_RESULT,
                                method_cancel_job, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Drain", SD_BUS_ARGS("s", node, "a{sv}", options), SD_BUS_NO_RESULT,
                                method_drain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Undrain", SD_BUS_ARGS("s", node, "b", keep_maintenance), SD_BUS_NO_RESULT,
                                method_undrain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PlanDrain", SD_BUS_ARGS("s", node), SD_BUS_RESULT("s", status, "a(ssss)", entries),
                                method_plan_drain, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetConvergencePolicy", SD_BUS_ARGS("s", vm, "a{sv}", set, "as", clear),
                                SD_BUS_NO_RESULT, method_set_convergence_policy, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetConvergencePolicy", SD_BUS_ARGS("s", vm),
                                SD_BUS_RESULT("a{sv}", effective, "a{ss}", sources),
                                method_get_convergence_policy, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListPolicies", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sba{sv})", policies),
                                method_list_policies, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("PlanBalance", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("u", score, "u", final_score, "b", needed, "s", why_not, "a(ssstus)", moves),
                                method_plan_balance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("Balance", SD_BUS_NO_ARGS,
                                SD_BUS_RESULT("u", score, "u", final_score, "b", needed, "s", why_not, "a(ssstus)", moves),
                                method_balance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetBalance", SD_BUS_NO_ARGS, SD_BUS_RESULT("a{sv}", settings, "s", leader, "u", score),
                                method_get_balance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("SetBalance", SD_BUS_ARGS("a{sv}", changes), SD_BUS_NO_RESULT,
                                method_set_balance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ListVolumes", SD_BUS_NO_ARGS, SD_BUS_RESULT("a(sssssstsas)", volumes),
                                method_list_volumes, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("AddVolume", SD_BUS_ARGS("s", name, "s", kind, "s", backing, "s", owner),
                                SD_BUS_NO_RESULT, method_volume_call, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("RemoveVolume", SD_BUS_ARGS("s", name), SD_BUS_NO_RESULT,
                                method_volume_call, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("MoveVolume", SD_BUS_ARGS("s", name, "s", destination), SD_BUS_NO_RESULT,
                                method_volume_call, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("ConfirmFenced", SD_BUS_ARGS("s", node), SD_BUS_RESULT("u", volumes_freed),
                                method_volume_call, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

/* ---- node objects ------------------------------------------------------- */

static bool view_from_userdata(Daemon *d, const char *path, NodeView *v) {
        return daemon_node_view(d, node_id_from_path(path), v);
}

#define NODE_VIEW_OR_FAIL(v)                                                                   \
        NodeView v;                                                                             \
        if (!view_from_userdata(userdata, path, &v))                                            \
                return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_NODE, "No such node: %s", path)

static const char *str_or_empty(const char *s) {
        return s ? s : "";
}

static int node_property(sd_bus *bus, const char *path, const char *interface, const char *property,
                         sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        NODE_VIEW_OR_FAIL(v);
        const NodeFacts *f = v.record ? &v.record->facts : &(NodeFacts) {};

        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "u", v.id);
        if (streq(property, "Name"))
                return sd_bus_message_append(reply, "s", v.name);
        if (streq(property, "Online"))
                return sd_bus_message_append(reply, "b", v.online);
        if (streq(property, "Quorate"))
                return sd_bus_message_append(reply, "b", v.quorate);
        if (streq(property, "Maintenance"))
                return sd_bus_message_append(reply, "b", v.record && v.record->maintenance);
        if (streq(property, "DaemonVersion"))
                return sd_bus_message_append(reply, "s", str_or_empty(f->daemon_version));
        if (streq(property, "ProtocolVersion"))
                return sd_bus_message_append(reply, "u", f->protocol_version);
        if (streq(property, "CpuVendor"))
                return sd_bus_message_append(reply, "s", str_or_empty(f->cpu_vendor));
        if (streq(property, "CpuModel"))
                return sd_bus_message_append(reply, "s", str_or_empty(f->cpu_model));
        if (streq(property, "Cpus"))
                return sd_bus_message_append(reply, "u", f->cpus);
        if (streq(property, "MemoryTotal"))
                return sd_bus_message_append(reply, "t", f->memory_total);
        if (streq(property, "MemoryFree"))
                return sd_bus_message_append(reply, "t", f->memory_free);
        if (streq(property, "MemoryReserved"))
                return sd_bus_message_append(reply, "t", f->memory_reserved);
        if (streq(property, "HypervisorName"))
                return sd_bus_message_append(reply, "s", str_or_empty(f->hypervisor_name));
        if (streq(property, "HypervisorVersion"))
                return sd_bus_message_append(reply, "s", str_or_empty(f->hypervisor_version));
        if (streq(property, "FactsUpdatedAt"))
                return sd_bus_message_append(reply, "t", f->updated_at);
        if (strncmp(property, "Drain", 5) == 0)
                return bus_drain_node_property(userdata, v.id, property, reply);
        if (streq(property, "CpuFeatures")) {
                _cleanup_free_ char *copy = strdup(str_or_empty(f->cpu_features));
                int r;
                if (!copy)
                        return -ENOMEM;
                r = sd_bus_message_open_container(reply, 'a', "s");
                for (char *save = NULL, *w = strtok_r(copy, " ", &save); r >= 0 && w; w = strtok_r(NULL, " ", &save))
                        r = sd_bus_message_append(reply, "s", w);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(reply);
        }
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s", property);
}

static int method_node_set_maintenance(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        NodeView v;
        int enabled, r;

        r = sd_bus_message_read(m, "b", &enabled);
        if (r < 0)
                return r;
        if (!daemon_node_view(d, node_id_from_path(sd_bus_message_get_path(m)), &v))
                return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_NODE, "No such node: %s", sd_bus_message_get_path(m));
        return polkit_authorize(d, m, FERRY_POLKIT_ACTION_MANAGE, set_maintenance_authorized, error);
}

#define NODE_PROPERTY(name, sig) SD_BUS_PROPERTY(name, sig, node_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

static const sd_bus_vtable node_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "u", node_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        NODE_PROPERTY("Name", "s"),
        NODE_PROPERTY("Online", "b"),
        NODE_PROPERTY("Quorate", "b"),
        NODE_PROPERTY("Maintenance", "b"),
        NODE_PROPERTY("DaemonVersion", "s"),
        NODE_PROPERTY("ProtocolVersion", "u"),
        NODE_PROPERTY("CpuVendor", "s"),
        NODE_PROPERTY("CpuModel", "s"),
        NODE_PROPERTY("CpuFeatures", "as"),
        NODE_PROPERTY("Cpus", "u"),
        NODE_PROPERTY("MemoryTotal", "t"),
        NODE_PROPERTY("MemoryFree", "t"),
        NODE_PROPERTY("MemoryReserved", "t"),
        NODE_PROPERTY("HypervisorName", "s"),
        NODE_PROPERTY("HypervisorVersion", "s"),
        NODE_PROPERTY("FactsUpdatedAt", "t"),
        NODE_PROPERTY("DrainMode", "s"),
        NODE_PROPERTY("DrainState", "s"),
        NODE_PROPERTY("DrainRemaining", "u"),
        NODE_PROPERTY("DrainBlockers", "a(ss)"),
        SD_BUS_METHOD_WITH_ARGS("SetMaintenance", SD_BUS_ARGS("b", enabled), SD_BUS_NO_RESULT,
                                method_node_set_maintenance, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static int node_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata,
                            void **found, sd_bus_error *error) {
        Daemon *d = userdata;
        NodeView v;

        if (!daemon_node_view(d, node_id_from_path(path), &v))
                return 0;
        *found = d;
        return 1;
}

static int node_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Daemon *d = userdata;
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n;
        char **l;
        int r;

        r = daemon_node_ids(d, &ids, &n);
        if (r < 0)
                return r;
        l = calloc(n + 1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (asprintf(&l[i], FERRY_NODE_PATH_PREFIX "/%" PRIu32, ids[i]) < 0) {
                        for (size_t k = 0; k < i; k++)
                                free(l[k]);
                        free(l);
                        return -ENOMEM;
                }
        *nodes = l;
        return 0;
}

/* ---- change notification ------------------------------------------------ */

/* A fingerprint of everything a node object shows. */
static void node_fingerprint(Daemon *d, const NodeView *v, char out[STATE_DIGEST_HEX_SIZE]) {
        Writer w;

        writer_init(&w);
        writer_put_u32(&w, v->id);
        writer_put_string(&w, v->name);
        writer_put_bool(&w, v->online);
        writer_put_bool(&w, v->quorate);
        writer_put_bool(&w, v->record && v->record->maintenance);
        char drain[128];
        bus_drain_fingerprint(d, v->id, drain, sizeof(drain));
        writer_put_string(&w, drain);
        if (v->record) {
                ClusterState one = { .n_nodes = 1, .nodes = (NodeRecord *) v->record };
                (void) cluster_state_encode(&one, &w);
        }
        if (writer_error(&w) < 0)
                memset(out, 0, STATE_DIGEST_HEX_SIZE);
        else
                sha256_hex(w.data, w.size, out);
        writer_done(&w);
}

static char *cluster_fingerprint(Daemon *d) {
        char *s = NULL;
        if (asprintf(&s, "%s|%u|%s|%d|%d|%zu|%u|%" PRIu64 "|%s",
                     d->ring ? ring_cluster_name(d->ring) : "", d->node_id, d->node_name ? d->node_name : "",
                     daemon_is_quorate(d), d->replica && replica_mode(d->replica) == REPLICA_SYNCED,
                     d->replica ? replica_n_members(d->replica) : 0,
                     d->replica ? replica_quorum_votes(d->replica) : d->quorum_votes,
                     d->replica ? replica_state(d->replica)->commit : 0,
                     d->replica ? replica_digest(d->replica) : "") < 0)
                return NULL;
        return s;
}

static EmittedNode *find_emitted(Daemon *d, uint32_t id) {
        for (size_t i = 0; i < d->n_emitted_nodes; i++)
                if (d->emitted_nodes[i].id == id)
                        return &d->emitted_nodes[i];
        return NULL;
}

void bus_emit_changes(Daemon *d) {
        _cleanup_free_ uint32_t *ids = NULL;
        char *fp;
        size_t n;
        int r;

        if (!d->bus)
                return;
        fp = cluster_fingerprint(d);
        if (fp && (!d->emitted_cluster || !streq(fp, d->emitted_cluster))) {
                r = sd_bus_emit_properties_changed_strv(d->bus, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE, NULL);
                if (r < 0)
                        log_debug_errno(r, "Failed to emit PropertiesChanged for the cluster: %m");
                free(d->emitted_cluster);
                d->emitted_cluster = fp;
        } else
                free(fp);

        bus_migration_emit_changes(d);
        if (daemon_node_ids(d, &ids, &n) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                char path[128], digest[STATE_DIGEST_HEX_SIZE];
                NodeView v;

                if (!daemon_node_view(d, ids[i], &v))
                        continue;
                node_fingerprint(d, &v, digest);
                snprintf(path, sizeof(path), FERRY_NODE_PATH_PREFIX "/%" PRIu32, ids[i]);
                EmittedNode *e = find_emitted(d, ids[i]);
                if (!e) {
                        EmittedNode *ne = realloc(d->emitted_nodes, (d->n_emitted_nodes + 1) * sizeof(EmittedNode));
                        if (!ne)
                                return;
                        d->emitted_nodes = ne;
                        e = &d->emitted_nodes[d->n_emitted_nodes++];
                        e->id = ids[i];
                        memcpy(e->digest, digest, sizeof(digest));
                        r = sd_bus_emit_object_added(d->bus, path);
                        if (r < 0)
                                log_debug_errno(r, "Failed to emit InterfacesAdded for %s: %m", path);
                        continue;
                }
                if (streq(e->digest, digest))
                        continue;
                memcpy(e->digest, digest, sizeof(digest));
                r = sd_bus_emit_properties_changed_strv(d->bus, path, FERRY_NODE_INTERFACE, NULL);
                if (r < 0)
                        log_debug_errno(r, "Failed to emit PropertiesChanged for %s: %m", path);
        }
}

int bus_setup(Daemon *d) {
        int r;

        /* sd_bus_open_system() honours DBUS_SYSTEM_BUS_ADDRESS. */
        r = sd_bus_open_system(&d->bus);
        if (r < 0)
                return log_error_errno(r, "Failed to connect to the system bus: %m");
        r = sd_bus_add_object_vtable(d->bus, NULL, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE, cluster_vtable, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the cluster object: %m");
        r = sd_bus_add_fallback_vtable(d->bus, NULL, FERRY_NODE_PATH_PREFIX, FERRY_NODE_INTERFACE, node_vtable,
                                       node_object_find, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the node objects: %m");
        r = sd_bus_add_node_enumerator(d->bus, NULL, FERRY_NODE_PATH_PREFIX, node_enumerator, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the node enumerator: %m");
        r = bus_migration_setup(d);
        if (r < 0)
                return r;
        r = bus_events_setup(d);
        if (r < 0)
                return r;
        r = sd_bus_add_object_manager(d->bus, NULL, FERRY_OBJECT_PATH);
        if (r < 0)
                return log_error_errno(r, "Failed to register the object manager: %m");
        r = sd_bus_attach_event(d->bus, d->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return log_error_errno(r, "Failed to attach the bus to the event loop: %m");
        /* Losing the bus ends the loop: there is no API without it, and the
         * service manager restarts us. */
        (void) sd_bus_set_exit_on_disconnect(d->bus, true);
        r = sd_bus_request_name(d->bus, FERRY_BUS_NAME, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to acquire the bus name %s (is another ferryd running, or does the bus policy not allow it?): %m",
                                       FERRY_BUS_NAME);
        log_info("Serving %s on the system bus", FERRY_BUS_NAME);
        return 0;
}

void bus_done(Daemon *d) {
        bus_events_done(d);
        d->bus = sd_bus_flush_close_unref(d->bus);
        free(d->emitted_cluster);
        d->emitted_cluster = NULL;
        free(d->emitted_nodes);
        d->emitted_nodes = NULL;
        d->n_emitted_nodes = 0;
        free(d->emitted_jobs);
        d->emitted_jobs = NULL;
        d->n_emitted_jobs = 0;
}
