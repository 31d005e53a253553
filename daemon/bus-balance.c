/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bus-balance.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "balancer.h"
#include "daemon.h"
#include "ferry-bus.h"
#include "log.h"
#include "macro.h"
#include "polkit.h"

static int plan_now(Daemon *d, BalancePlan *plan) {
        const ClusterState *s = replica_state(d->replica);
        MembershipView view;
        BalanceParams params;

        daemon_membership_view(d, &view);
        balance_params_from_settings(&s->balance, &params);
        return balance_plan(s, &view, &params, plan);
}

/* (u score, u final_score, b needed, s why_not, a(ssstus) moves) */
static int reply_plan(Daemon *d, sd_bus_message *m, const BalancePlan *plan) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "uubs", plan->score_permille, plan->final_score_permille,
                                          (int) plan->needed, plan->why_not);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(ssstus)");
        for (size_t i = 0; r >= 0 && i < plan->n_moves; i++) {
                const BalanceMove *mv = &plan->moves[i];
                r = sd_bus_message_append(reply, "(ssstus)", mv->vm, daemon_node_name(d, mv->source),
                                          daemon_node_name(d, mv->destination), mv->memory, mv->score_after_permille,
                                          mv->reason);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

int method_plan_balance(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        BalancePlan plan;
        int r = plan_now(d, &plan);
        if (r < 0)
                return r;
        r = reply_plan(d, m, &plan);
        balance_plan_done(&plan);
        return r;
}

static int balance_authorized(Daemon *d, sd_bus_message *m, sd_bus_error *error) {
        BalancePlan plan;
        size_t submitted = 0;
        int r;

        r = daemon_check_quorate(d, error);
        if (r < 0)
                return r;
        r = plan_now(d, &plan);
        if (r < 0)
                return r;
        log_info("Balance requested by %s: score %u, %zu move(s)",
                 sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "?", plan.score_permille, plan.n_moves);
        r = balancer_submit(d, &plan, &submitted);
        if (r < 0) {
                balance_plan_done(&plan);
                return sd_bus_error_setf(error, FERRY_ERROR_REJECTED, "Submitting the moves failed after %zu of %zu: %s",
                                         submitted, plan.n_moves, strerror(-r));
        }
        /* The jobs appear once committed; the reply is the plan submitted. */
        r = reply_plan(d, m, &plan);
        balance_plan_done(&plan);
        return r;
}

int method_balance(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        return polkit_authorize(userdata, m, FERRY_POLKIT_ACTION_MANAGE, balance_authorized, error);
}

static const char *leader_name(Daemon *d) {
        Replica *r = d->replica;
        if (!r || replica_mode(r) != REPLICA_SYNCED || !daemon_is_quorate(d) || replica_n_members(r) == 0)
                return "";
        return daemon_node_name(d, replica_members(r)[0]);
}

/* GetBalance() -> (a{sv} settings, s leader, u score): the settings in
 * force (defaults filled in), the node that runs the automatic balancer
 * ("" without a quorate partition), the score now. */
int method_get_balance(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const ClusterState *s = replica_state(d->replica);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        MembershipView view;
        BalanceParams p;
        int r;

        balance_params_from_settings(&s->balance, &p);
        daemon_membership_view(d, &view);
        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "a{sv}", 6, "automatic", "b", (int) s->balance.automatic,
                                          "threshold", "u", p.threshold_permille, "target", "u", p.target_permille,
                                          "max_moves", "u", p.max_moves, "max_bytes", "t", p.max_bytes,
                                          "min_gain", "u", p.min_gain_permille);
        if (r >= 0)
                r = sd_bus_message_append(reply, "su", leader_name(d), balance_score(s, &view));
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* SetBalance(a{sv} changes): the keys of GetBalance's settings; others stay. */
static int parse_set(Daemon *d, sd_bus_message *m, BalanceSettings *b, sd_bus_error *error) {
        const char *key;
        char err[160];
        int r;

        *b = replica_state(d->replica)->balance;
        r = sd_bus_message_rewind(m, true);
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                int bv;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "automatic")) {
                        r = sd_bus_message_read(m, "v", "b", &bv);
                        b->automatic = bv;
                } else if (streq(key, "threshold"))
                        r = sd_bus_message_read(m, "v", "u", &b->threshold_permille);
                else if (streq(key, "target"))
                        r = sd_bus_message_read(m, "v", "u", &b->target_permille);
                else if (streq(key, "max_moves"))
                        r = sd_bus_message_read(m, "v", "u", &b->max_moves);
                else if (streq(key, "max_bytes"))
                        r = sd_bus_message_read(m, "v", "t", &b->max_bytes);
                else if (streq(key, "min_gain"))
                        r = sd_bus_message_read(m, "v", "u", &b->min_gain_permille);
                else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown balance setting \"%s\" (known: automatic, threshold, target, "
                                                 "max_moves, max_bytes, min_gain)", key);
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Balance setting \"%s\" has the wrong type (automatic b, max_bytes t, "
                                                 "the others u)", key);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;
        if (balance_settings_validate(b, err, sizeof(err)) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Invalid balance settings: %s", err);
        /* Defaults fill in the rest: the pair in force must still have its gap. */
        BalanceParams p;
        balance_params_from_settings(b, &p);
        if (b->target_permille && b->target_permille >= p.threshold_permille)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid balance settings: the target (%u) must be below the threshold (%u)",
                                         (unsigned) b->target_permille, (unsigned) p.threshold_permille);
        return 0;
}

static int set_authorized(Daemon *d, sd_bus_message *m, sd_bus_error *error) {
        BalanceSettings b;
        int r = parse_set(d, m, &b, error);
        if (r < 0)
                return r;
        r = daemon_check_quorate(d, error);
        if (r < 0)
                return r;
        log_info("Balance settings changed by %s: automatic %s",
                 sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "?", b.automatic ? "on" : "off");
        Command c = { .type = COMMAND_SET_BALANCE, .set_balance = b };
        return daemon_propose_for_call(d, &c, m, NULL, error);
}

int method_set_balance(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        BalanceSettings b;
        int r = parse_set(d, m, &b, error);
        if (r < 0)
                return r;
        return polkit_authorize(d, m, FERRY_POLKIT_ACTION_MANAGE, set_authorized, error);
}
