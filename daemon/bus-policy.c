/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bus-policy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "daemon.h"
#include "ferry-bus.h"
#include "log.h"
#include "macro.h"
#include "polkit.h"

/* Settings as a{sv}, only the fields that are set; with sources, a second
 * a{ss} naming where each came from. */
static int append_settings(sd_bus_message *reply, const ConvergenceSettings *s) {
        int r = sd_bus_message_open_container(reply, 'a', "{sv}");
        for (uint32_t b = 0; r >= 0 && (1U << b) <= _CONVERGENCE_FIELD_ALL; b++) {
                ConvergenceField f = (ConvergenceField) (1U << b);
                const char *key = convergence_field_to_string(f);
                if (!(s->set & f))
                        continue;
                r = sd_bus_message_open_container(reply, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "s", key);
                if (r < 0)
                        return r;
                switch (f) {
                case CONVERGENCE_FIELD_DOWNTIME_STEPS:
                        r = sd_bus_message_open_container(reply, 'v', "au");
                        if (r >= 0)
                                r = sd_bus_message_append_array(reply, 'u', s->downtime_steps_ms,
                                                                s->n_downtime_steps * sizeof(uint32_t));
                        if (r >= 0)
                                r = sd_bus_message_close_container(reply);
                        break;
                case CONVERGENCE_FIELD_STALL_ROUNDS:
                        r = sd_bus_message_append(reply, "v", "u", s->stall_rounds);
                        break;
                case CONVERGENCE_FIELD_PROGRESS_TIMEOUT:
                        r = sd_bus_message_append(reply, "v", "u", s->progress_timeout_sec);
                        break;
                case CONVERGENCE_FIELD_COMPLETION_TIMEOUT:
                        r = sd_bus_message_append(reply, "v", "u", s->completion_timeout_per_gib_sec);
                        break;
                case CONVERGENCE_FIELD_AUTO_CONVERGE:
                        r = sd_bus_message_append(reply, "v", "b", (int) s->auto_converge);
                        break;
                case CONVERGENCE_FIELD_POSTCOPY:
                        r = sd_bus_message_append(reply, "v", "b", (int) s->postcopy);
                        break;
                default:
                        break;
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r < 0)
                return r;
        return sd_bus_message_close_container(reply);
}

static int read_setting(sd_bus_message *m, const char *key, ConvergenceSettings *s, sd_bus_error *error) {
        ConvergenceField f = convergence_field_from_string(key);
        const char *want = NULL;
        int r, b;

        switch (f) {
        case CONVERGENCE_FIELD_DOWNTIME_STEPS: {
                const void *p;
                size_t size;
                r = sd_bus_message_enter_container(m, 'v', "au");
                if (r < 0) {
                        want = "an array of uint32 (au)";
                        break;
                }
                r = sd_bus_message_read_array(m, 'u', &p, &size);
                if (r < 0)
                        return r;
                if (size == 0 || size / sizeof(uint32_t) > POLICY_DOWNTIME_STEPS_MAX)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "downtime_steps needs 1 to %u steps, not %zu", POLICY_DOWNTIME_STEPS_MAX,
                                                 size / sizeof(uint32_t));
                memcpy(s->downtime_steps_ms, p, size);
                s->n_downtime_steps = (uint32_t) (size / sizeof(uint32_t));
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
                break;
        }
        case CONVERGENCE_FIELD_STALL_ROUNDS:
        case CONVERGENCE_FIELD_PROGRESS_TIMEOUT:
        case CONVERGENCE_FIELD_COMPLETION_TIMEOUT: {
                uint32_t v;
                r = sd_bus_message_read(m, "v", "u", &v);
                if (r < 0) {
                        want = "a uint32 (u)";
                        break;
                }
                if (f == CONVERGENCE_FIELD_STALL_ROUNDS)
                        s->stall_rounds = v;
                else if (f == CONVERGENCE_FIELD_PROGRESS_TIMEOUT)
                        s->progress_timeout_sec = v;
                else
                        s->completion_timeout_per_gib_sec = v;
                break;
        }
        case CONVERGENCE_FIELD_AUTO_CONVERGE:
        case CONVERGENCE_FIELD_POSTCOPY:
                r = sd_bus_message_read(m, "v", "b", &b);
                if (r < 0) {
                        want = "a boolean (b)";
                        break;
                }
                if (f == CONVERGENCE_FIELD_AUTO_CONVERGE)
                        s->auto_converge = b;
                else
                        s->postcopy = b;
                break;
        default:
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Unknown policy setting \"%s\" (known: downtime_steps, stall_rounds, "
                                         "progress_timeout, completion_timeout_per_gib, auto_converge, postcopy)",
                                         key);
        }
        if (want)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Policy setting \"%s\" must be %s", key, want);
        if (s->set & f)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Policy setting \"%s\" given twice", key);
        s->set |= f;
        return 0;
}

/* SetConvergencePolicy(s vm, a{sv} set, as clear) into a command. */
static int parse_set(Daemon *d, sd_bus_message *m, SetPolicyCommand *c, sd_bus_error *error) {
        const ClusterState *s = replica_state(d->replica);
        const char *scope, *key;
        char err[160];
        size_t count;
        int r;

        *c = (SetPolicyCommand) {};
        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_read(m, "s", &scope);
        if (r < 0)
                return r;
        if (strlen(scope) >= POLICY_SCOPE_MAX)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "VM name too long");
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = read_setting(m, key, &c->values, error);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "s");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_read(m, "s", &key)) > 0) {
                ConvergenceField f = convergence_field_from_string(key);
                if (!f)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown policy setting \"%s\"", key);
                if (c->values.set & f)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Policy setting \"%s\" is both set and cleared", key);
                c->clear |= f;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        if (c->values.set == 0 && c->clear == 0)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Nothing to set or clear");
        if (convergence_settings_validate(&c->values, err, sizeof(err)) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid policy: %s", err);
        /* The state machine refuses a new record for an unknown VM too;
         * saying so here gives the operator the reason. */
        if (*scope && c->values.set && !state_find_policy(s, scope) && !state_find_vm_any(s, scope, &count))
                return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_VM,
                                         "No such VM: \"%s\" is in no node's inventory", scope);
        c->scope = (char *) scope;      /* borrowed from the message */
        return 0;
}

static int set_authorized(Daemon *d, sd_bus_message *m, sd_bus_error *error) {
        SetPolicyCommand c;
        char text[320];
        int r;

        r = parse_set(d, m, &c, error);
        if (r < 0)
                return r;
        r = daemon_check_quorate(d, error);
        if (r < 0)
                return r;
        log_info("Convergence policy of %s%s%s changed by %s: %s%s", *c.scope ? "VM \"" : "the cluster", c.scope,
                 *c.scope ? "\"" : "", sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "?",
                 convergence_settings_format(&c.values, NULL, text, sizeof(text)), c.clear ? " (and clearing some)" : "");
        Command cmd = { .type = COMMAND_SET_POLICY, .set_policy = c };
        return daemon_propose_for_call(d, &cmd, m, NULL, error);
}

int method_set_convergence_policy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        SetPolicyCommand c;
        int r;

        /* Bad arguments are refused before asking polkit anything. */
        r = parse_set(d, m, &c, error);
        if (r < 0)
                return r;
        return polkit_authorize(d, m, FERRY_POLKIT_ACTION_MANAGE, set_authorized, error);
}

/* GetConvergencePolicy(s vm) -> (a{sv} effective, a{ss} sources): what a
 * migration of the VM from this node would run with ("" = a VM without a
 * policy of its own), and where each value came from. */
int method_get_convergence_policy(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const ClusterState *s = replica_state(d->replica);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ConvergenceSettings node, eff;
        const char *vm;
        int source[8];
        size_t count;
        int r;

        r = sd_bus_message_read(m, "s", &vm);
        if (r < 0)
                return r;
        if (*vm && !state_find_policy(s, vm) && !state_find_vm_any(s, vm, &count))
                return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_VM, "No such VM: \"%s\" is in no node's inventory",
                                         vm);
        config_convergence_settings(&d->config, &node);
        state_policy_effective(s, vm, NULL, &node, &eff, source);
        /* Built-in defaults of the two switches, so that every field shows. */
        if (!(eff.set & CONVERGENCE_FIELD_AUTO_CONVERGE))
                eff.set |= CONVERGENCE_FIELD_AUTO_CONVERGE;
        if (!(eff.set & CONVERGENCE_FIELD_POSTCOPY))
                eff.set |= CONVERGENCE_FIELD_POSTCOPY;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = append_settings(reply, &eff);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "{ss}");
        for (uint32_t b = 0; r >= 0 && (1U << b) <= _CONVERGENCE_FIELD_ALL; b++)
                r = sd_bus_message_append(reply, "{ss}", convergence_field_to_string((ConvergenceField) (1U << b)),
                                          policy_source_to_string(source[b]));
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ListPolicies() -> a(sba{sv}): every record as stored: scope ("" = the
 * cluster), whether that VM is in the inventory, its settings. */
int method_list_policies(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const ClusterState *s = replica_state(d->replica);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        size_t count;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sba{sv})");
        for (size_t i = 0; r >= 0 && i < s->n_policies; i++) {
                const PolicyRecord *p = &s->policies[i];
                bool known = !*p->scope || state_find_vm_any(s, p->scope, &count);
                r = sd_bus_message_open_container(reply, 'r', "sba{sv}");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "sb", p->scope, (int) known);
                if (r >= 0)
                        r = append_settings(reply, &p->convergence);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}
