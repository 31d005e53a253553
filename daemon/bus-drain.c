/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bus-drain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "drain.h"
#include "ferry-bus.h"
#include "log.h"
#include "macro.h"
#include "polkit.h"

static int plan_for(Daemon *d, uint32_t id, DrainPlan *ret) {
        MembershipView view;
        daemon_membership_view(d, &view);
        return drain_plan(replica_state(d->replica), &view, id, ret);
}

/* Drain(s node, a{sv} options): options "blockers" = "fail" | "leave". */
static int parse_drain(sd_bus_message *m, const char **node, DrainMode *mode, sd_bus_error *error) {
        int r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        *mode = DRAIN_FAIL_ON_BLOCKERS;
        r = sd_bus_message_read(m, "s", node);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key, *value;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (!streq(key, "blockers"))
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option \"%s\"", key);
                r = sd_bus_message_read(m, "v", "s", &value);
                if (r < 0)
                        return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Option \"blockers\" must be a string");
                if (streq(value, "fail"))
                        *mode = DRAIN_FAIL_ON_BLOCKERS;
                else if (streq(value, "leave"))
                        *mode = DRAIN_LEAVE_BLOCKERS;
                else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "blockers=\"%s\": expected \"fail\" or \"leave\" (shutting blockers down is not supported yet)",
                                                 value);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static int drain_authorized(Daemon *d, sd_bus_message *m, sd_bus_error *error) {
        const char *name;
        DrainMode mode;
        NodeView v;
        int r;

        r = parse_drain(m, &name, &mode, error);
        if (r >= 0)
                r = daemon_resolve_node(d, name, &v, error);
        if (r >= 0)
                r = daemon_check_quorate(d, error);
        if (r < 0)
                return r;
        Command c = { .type = COMMAND_SET_DRAIN, .set_drain = { .node = v.id, .mode = mode } };
        log_info("Drain of node \"%s\" requested by %s (blockers: %s)", v.name,
                 sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "?", drain_mode_to_string(mode));
        return daemon_propose_for_call(d, &c, m, NULL, error);
}

int method_drain(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const char *name;
        DrainMode mode;
        NodeView v;
        int r;

        r = parse_drain(m, &name, &mode, error);
        if (r >= 0)
                r = daemon_resolve_node(d, name, &v, error);
        if (r < 0)
                return r;
        return polkit_authorize(d, m, FERRY_POLKIT_ACTION_MANAGE, drain_authorized, error);
}

/* Undrain(s node, b keep_maintenance) */
static int undrain_authorized(Daemon *d, sd_bus_message *m, sd_bus_error *error) {
        const char *name;
        int keep, r;
        NodeView v;

        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "sb", &name, &keep);
        if (r < 0)
                return r;
        r = daemon_resolve_node(d, name, &v, error);
        if (r >= 0)
                r = daemon_check_quorate(d, error);
        if (r < 0)
                return r;
        Command c = { .type = COMMAND_SET_DRAIN,
                      .set_drain = { .node = v.id, .mode = DRAIN_NONE, .clear_maintenance = !keep } };
        log_info("Undrain of node \"%s\" requested by %s%s", v.name,
                 sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "?", keep ? " (stays in maintenance)" : "");
        return daemon_propose_for_call(d, &c, m, NULL, error);
}

int method_undrain(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const char *name;
        int keep, r;
        NodeView v;

        r = sd_bus_message_read(m, "sb", &name, &keep);
        if (r < 0)
                return r;
        r = daemon_resolve_node(d, name, &v, error);
        if (r < 0)
                return r;
        return polkit_authorize(d, m, FERRY_POLKIT_ACTION_MANAGE, undrain_authorized, error);
}

/* PlanDrain(s node) → (s status, a(ssss) entries): what a drain would do
 * now (or does, if one runs): vm, action, destination, reason. */
int method_plan_drain(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Daemon *d = userdata;
        const char *name;
        DrainPlan plan;
        NodeView v;
        int r;

        r = sd_bus_message_read(m, "s", &name);
        if (r < 0)
                return r;
        r = daemon_resolve_node(d, name, &v, error);
        if (r < 0)
                return r;
        r = plan_for(d, v.id, &plan);
        if (r < 0)
                return r;
        /* A plan for a node not (yet) draining shows what a drain would do. */
        const char *status = plan.status == DRAIN_STATUS_NONE ? "none" : drain_status_to_string(plan.status);
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", status);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssss)");
        for (size_t i = 0; r >= 0 && i < plan.n_entries; i++) {
                const DrainEntry *e = &plan.entries[i];
                char label[VOLUME_NAME_MAX + 16];
                /* Volumes are named "volume NAME": no VM name is mistaken for one. */
                snprintf(label, sizeof(label), "volume %s", e->vm);
                r = sd_bus_message_append(reply, "(ssss)", e->volume ? label : e->vm, drain_action_to_string(e->action),
                                          e->destination ? daemon_node_name(d, e->destination) : "", e->reason);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        drain_plan_done(&plan);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int bus_drain_node_property(Daemon *d, uint32_t id, const char *property, sd_bus_message *reply) {
        const NodeRecord *n = d->replica ? cluster_state_find_node(replica_state(d->replica), id) : NULL;
        DrainMode mode = n ? n->drain : DRAIN_NONE;
        DrainPlan plan = {};
        int r;

        if (streq(property, "DrainMode"))
                return sd_bus_message_append(reply, "s", drain_mode_to_string(mode));
        if (mode != DRAIN_NONE) {
                r = plan_for(d, id, &plan);
                if (r < 0)
                        return r;
        }
        if (streq(property, "DrainState"))
                r = sd_bus_message_append(reply, "s", drain_status_to_string(plan.status));
        else if (streq(property, "DrainRemaining"))
                r = sd_bus_message_append(reply, "u", (uint32_t) plan.n_entries);
        else {
                r = sd_bus_message_open_container(reply, 'a', "(ss)");
                for (size_t i = 0; r >= 0 && i < plan.n_entries; i++)
                        if (plan.entries[i].action == DRAIN_ACTION_BLOCKED) {
                                char name[VOLUME_NAME_MAX + 16];
                                snprintf(name, sizeof(name), "volume %s", plan.entries[i].vm);
                                r = sd_bus_message_append(reply, "(ss)", plan.entries[i].volume ? name : plan.entries[i].vm,
                                                          plan.entries[i].reason);
                        }
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        drain_plan_done(&plan);
        return r;
}

void bus_drain_fingerprint(Daemon *d, uint32_t id, char *buf, size_t len) {
        const NodeRecord *n = d->replica ? cluster_state_find_node(replica_state(d->replica), id) : NULL;
        DrainPlan plan = {};

        if (!n || n->drain == DRAIN_NONE || plan_for(d, id, &plan) < 0) {
                snprintf(buf, len, "none");
                return;
        }
        snprintf(buf, len, "%d/%zu/%zu/%zu/%zu", (int) plan.status, plan.n_entries, plan.n_move, plan.n_moving,
                 plan.n_blocked);
        drain_plan_done(&plan);
}
