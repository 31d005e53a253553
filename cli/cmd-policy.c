/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl policy: the convergence policy of the cluster and of single VMs,
 * kept in the replicated state (Cluster.SetConvergencePolicy,
 * GetConvergencePolicy, ListPolicies).
 *
 *   policy [show] [--vm VM]           what a migration would run with, and why
 *   policy list                       every policy record as stored
 *   policy set [--vm VM] KEY=VALUE... set fields (the others stay)
 *   policy unset [--vm VM] KEY...|all clear fields (inherit again) */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"
#include "strutil.h"

typedef enum SettingKind {
        SETTING_STEPS,          /* au, milliseconds */
        SETTING_SECONDS,        /* u */
        SETTING_COUNT,          /* u */
        SETTING_BOOL,           /* b */
} SettingKind;

static const struct {
        const char *key;
        SettingKind kind;
        const char *help;
} settings[] = {
        { "downtime_steps",             SETTING_STEPS,   "rising downtimes in ms, e.g. 100,300,500" },
        { "stall_rounds",               SETTING_COUNT,   "pre-copy rounds without progress before the next step" },
        { "progress_timeout",           SETTING_SECONDS, "seconds without a byte moved before aborting" },
        { "completion_timeout_per_gib", SETTING_SECONDS, "seconds per GiB of guest memory before aborting" },
        { "auto_converge",              SETTING_BOOL,    "yes/no: throttle the guest's vCPUs when not converging" },
        { "postcopy",                   SETTING_BOOL,    "yes/no: switch to post-copy when not converging" },
};

#define STEPS_MAX 8

typedef struct Setting {
        bool set;
        uint32_t steps[STEPS_MAX];
        size_t n_steps;
        uint32_t u;
        bool b;
        char *source;
} Setting;

static int setting_index(const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                if (streq(settings[i].key, key))
                        return (int) i;
        return -1;
}

static int unknown_key(const char *key) {
        return usage_error("unknown policy key '%s' (known: downtime_steps, stall_rounds, progress_timeout, "
                           "completion_timeout_per_gib, auto_converge, postcopy)", key);
}

static void settings_done(Setting *s) {
        for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                free(s[i].source);
}

/* a{sv} of settings; unknown keys (a newer ferryd) are skipped. */
static int read_settings(sd_bus_message *m, Setting *out) {
        const char *key;
        int r;

        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                int i = setting_index(key);
                if (i < 0)
                        r = sd_bus_message_skip(m, "v");
                else if (settings[i].kind == SETTING_STEPS) {
                        const void *p;
                        size_t size;
                        r = sd_bus_message_enter_container(m, 'v', "au");
                        if (r >= 0)
                                r = sd_bus_message_read_array(m, 'u', &p, &size);
                        if (r >= 0) {
                                out[i].n_steps = MIN(size / sizeof(uint32_t), (size_t) STEPS_MAX);
                                memcpy(out[i].steps, p, out[i].n_steps * sizeof(uint32_t));
                                r = sd_bus_message_exit_container(m);
                        }
                } else if (settings[i].kind == SETTING_BOOL) {
                        int b;
                        r = sd_bus_message_read(m, "v", "b", &b);
                        out[i].b = b;
                } else
                        r = sd_bus_message_read(m, "v", "u", &out[i].u);
                if (r < 0)
                        return r;
                if (i >= 0)
                        out[i].set = true;
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

static void format_value(const Setting *s, size_t i, char *buf, size_t len, bool units) {
        size_t w = 0;

        buf[0] = 0;
        switch (settings[i].kind) {
        case SETTING_STEPS:
                for (size_t k = 0; k < s->n_steps && w < len; k++)
                        w += (size_t) snprintf(buf + w, len - w, "%s%" PRIu32, k > 0 ? "," : "", s->steps[k]);
                if (units && w < len)
                        snprintf(buf + w, len - w, " ms");
                break;
        case SETTING_SECONDS:
                snprintf(buf, len, "%" PRIu32 "%s", s->u, units ? " s" : "");
                break;
        case SETTING_COUNT:
                snprintf(buf, len, "%" PRIu32, s->u);
                break;
        case SETTING_BOOL:
                snprintf(buf, len, "%s", s->b ? "yes" : "no");
                break;
        }
}

static void json_settings(JsonWriter *w, const Setting *s) {
        json_begin_object(w);
        for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
                if (!s[i].set)
                        continue;
                json_key(w, settings[i].key);
                switch (settings[i].kind) {
                case SETTING_STEPS:
                        json_begin_array(w);
                        for (size_t k = 0; k < s[i].n_steps; k++)
                                json_uint(w, s[i].steps[k]);
                        json_end_array(w);
                        break;
                case SETTING_BOOL:
                        json_bool(w, s[i].b);
                        break;
                default:
                        json_uint(w, s[i].u);
                        break;
                }
        }
        json_end_object(w);
}

static sd_bus_message *new_call(sd_bus *bus, const char *method, int *r) {
        sd_bus_message *m = NULL;
        *r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                                            method);
        return m;
}

static int policy_show(const CommandContext *ctx, sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Setting s[ELEMENTSOF(settings)] = {};
        const char *key, *source;
        int r;

        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                               "GetConvergencePolicy", &error, &reply, "s", ctx->vm ? ctx->vm : "");
        if (r < 0)
                return bus_error_exit("reading the convergence policy", &error, r);
        r = read_settings(reply, s);
        if (r >= 0)
                r = sd_bus_message_enter_container(reply, 'a', "{ss}");
        while (r >= 0 && (r = sd_bus_message_read(reply, "{ss}", &key, &source)) > 0) {
                int i = setting_index(key);
                if (i >= 0 && !(s[i].source = strdup(source)))
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0) {
                settings_done(s);
                return bus_parse_error_exit("reading the convergence policy", r);
        }

        if (ctx->json) {
                JsonWriter w;
                json_init(&w, stdout, false);
                json_begin_object(&w);
                json_key(&w, "vm");
                json_string(&w, ctx->vm);
                json_key(&w, "settings");
                json_settings(&w, s);
                json_key(&w, "sources");
                json_begin_object(&w);
                for (size_t i = 0; i < ELEMENTSOF(settings); i++)
                        if (s[i].source) {
                                json_key(&w, settings[i].key);
                                json_string(&w, s[i].source);
                        }
                json_end_object(&w);
                json_end_object(&w);
                r = json_finish(&w);
        } else {
                if (ctx->vm)
                        printf("Convergence policy of VM %s, for a migration from this node:\n", ctx->vm);
                else
                        printf("Convergence policy of the cluster, for a migration from this node:\n");
                for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
                        char value[128];
                        if (!s[i].set)
                                continue;
                        format_value(&s[i], i, value, sizeof(value), true);
                        printf("  %-27s %-18s (%s)\n", settings[i].key, value, s[i].source ? s[i].source : "?");
                }
                printf("Sources: job options > vm > cluster > ferryd.conf > default.\n");
                r = ferror(stdout) ? -EIO : 0;
        }
        settings_done(s);
        return finish_output(r);
}

static int policy_list(const CommandContext *ctx, sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(table_freep) Table *t = NULL;
        JsonWriter w;
        int r;

        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE, "ListPolicies",
                               &error, &reply, "");
        if (r < 0)
                return bus_error_exit("listing policies", &error, r);

        if (ctx->json) {
                json_init(&w, stdout, false);
                json_begin_array(&w);
        } else {
                static const char *const headers[] = { "SCOPE", "IN INVENTORY", "SETTINGS" };
                t = table_new(ELEMENTSOF(headers), headers);
                if (!t)
                        return finish_output(-ENOMEM);
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sba{sv})");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "sba{sv}")) > 0) {
                Setting s[ELEMENTSOF(settings)] = {};
                const char *scope;
                int known;

                r = sd_bus_message_read(reply, "sb", &scope, &known);
                if (r >= 0)
                        r = read_settings(reply, s);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        break;
                if (ctx->json) {
                        json_begin_object(&w);
                        json_key(&w, "vm");
                        json_string(&w, *scope ? scope : NULL);
                        json_key(&w, "in_inventory");
                        json_bool(&w, known);
                        json_key(&w, "settings");
                        json_settings(&w, s);
                        json_end_object(&w);
                } else {
                        char text[512] = "", value[128];
                        size_t n = 0;
                        for (size_t i = 0; i < ELEMENTSOF(settings); i++) {
                                if (!s[i].set || n >= sizeof(text))
                                        continue;
                                format_value(&s[i], i, value, sizeof(value), false);
                                n += (size_t) snprintf(text + n, sizeof(text) - n, "%s%s=%s", n ? " " : "",
                                                       settings[i].key, value);
                        }
                        table_add_cell(t, *scope ? scope : "(cluster)");
                        table_add_cell(t, *scope ? (known ? "yes" : "no") : "-");
                        table_add_cell(t, text);
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return bus_parse_error_exit("listing policies", r);
        if (ctx->json) {
                json_end_array(&w);
                r = json_finish(&w);
        } else
                r = table_print(t, stdout);
        return finish_output(r);
}

/* KEY=VALUE into the a{sv} of the call; a usage error for a bad one. */
static int append_assignment(sd_bus_message *m, const char *arg, int *r) {
        _cleanup_free_ char *key = NULL;
        const char *eq = strchr(arg, '=');
        int i;

        if (!eq)
                return usage_error("'%s' is not KEY=VALUE", arg);
        key = strndup(arg, (size_t) (eq - arg));
        if (!key) {
                *r = -ENOMEM;
                return FERRYCTL_EXIT_FAILURE;
        }
        i = setting_index(key);
        if (i < 0)
                return unknown_key(key);
        const char *value = eq + 1;

        switch (settings[i].kind) {
        case SETTING_STEPS: {
                uint32_t steps[STEPS_MAX];
                size_t n = 0;
                _cleanup_free_ char *copy = strdup(value);
                char *save = NULL;
                if (!copy) {
                        *r = -ENOMEM;
                        return FERRYCTL_EXIT_FAILURE;
                }
                for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                        if (n == STEPS_MAX)
                                return usage_error("%s takes at most %d steps", key, STEPS_MAX);
                        if (parse_u32(tok, &steps[n]) < 0)
                                return usage_error("%s: '%s' is not a number of milliseconds", key, tok);
                        n++;
                }
                if (n == 0)
                        return usage_error("%s needs at least one step, e.g. %s=100,300,500", key, key);
                *r = sd_bus_message_open_container(m, 'e', "sv");
                if (*r >= 0)
                        *r = sd_bus_message_append(m, "s", key);
                if (*r >= 0)
                        *r = sd_bus_message_open_container(m, 'v', "au");
                if (*r >= 0)
                        *r = sd_bus_message_append_array(m, 'u', steps, n * sizeof(uint32_t));
                if (*r >= 0)
                        *r = sd_bus_message_close_container(m);
                if (*r >= 0)
                        *r = sd_bus_message_close_container(m);
                break;
        }
        case SETTING_SECONDS:
        case SETTING_COUNT: {
                uint32_t u;
                if (parse_u32(value, &u) < 0)
                        return usage_error("%s: '%s' is not a whole number%s", key, value,
                                           settings[i].kind == SETTING_SECONDS ? " of seconds" : "");
                *r = sd_bus_message_append(m, "{sv}", key, "u", u);
                break;
        }
        case SETTING_BOOL: {
                bool b;
                if (parse_boolean(value, &b) < 0)
                        return usage_error("%s takes yes or no, not '%s'", key, value);
                *r = sd_bus_message_append(m, "{sv}", key, "b", (int) b);
                break;
        }
        }
        return FERRYCTL_EXIT_SUCCESS;
}

static int policy_change(const CommandContext *ctx, sd_bus *bus, bool set, char **args, unsigned n_args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        char operation[512];
        int r = 0, k;

        snprintf(operation, sizeof(operation), "changing the convergence policy of %s%s", ctx->vm ? "VM " : "the cluster",
                 ctx->vm ? ctx->vm : "");
        m = new_call(bus, "SetConvergencePolicy", &r);
        if (r >= 0)
                r = sd_bus_message_append(m, "s", ctx->vm ? ctx->vm : "");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (unsigned i = 0; set && r >= 0 && i < n_args; i++) {
                k = append_assignment(m, args[i], &r);
                if (k != FERRYCTL_EXIT_SUCCESS)
                        return r < 0 ? finish_output(r) : k;
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "s");
        for (unsigned i = 0; !set && r >= 0 && i < n_args; i++) {
                if (streq(args[i], "all")) {
                        for (size_t j = 0; r >= 0 && j < ELEMENTSOF(settings); j++)
                                r = sd_bus_message_append(m, "s", settings[j].key);
                        continue;
                }
                if (setting_index(args[i]) < 0)
                        return unknown_key(args[i]);
                r = sd_bus_message_append(m, "s", args[i]);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0) {
                print_error("%s failed: %s", operation, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, &error, NULL);
        if (r < 0) {
                if (bus_error_is_no_answer(&error)) {
                        print_error("%s: no answer from ferryd (%s); the change may still be committed, "
                                    "check with 'ferryctl policy list'", operation, bus_error_text(&error, r));
                        return FERRYCTL_EXIT_FAILURE;
                }
                return bus_error_exit(operation, &error, r);
        }
        /* What is in force now, from the same call a script would use. */
        return policy_show(ctx, bus);
}

int cmd_policy(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *verb = n_args > 0 ? args[0] : "show";
        int r;

        /* Arguments are checked before connecting: a usage error is one
         * even without a bus. */
        if (streq(verb, "show") || streq(verb, "list")) {
                if (n_args > 1)
                        return usage_error("policy %s takes no arguments (use --vm VM for a VM's policy)", verb);
                if (streq(verb, "list") && ctx->vm)
                        return usage_error("policy list shows every policy; --vm does not apply");
        } else if (streq(verb, "set") || streq(verb, "unset")) {
                if (n_args < 2)
                        return usage_error("policy %s needs at least one %s", verb,
                                           streq(verb, "set") ? "KEY=VALUE" : "KEY (or 'all')");
                for (unsigned i = 1; i < n_args; i++) {
                        if (streq(verb, "set")) {
                                const char *eq = strchr(args[i], '=');
                                if (!eq)
                                        return usage_error("'%s' is not KEY=VALUE", args[i]);
                        } else if (!streq(args[i], "all") && setting_index(args[i]) < 0)
                                return unknown_key(args[i]);
                }
        } else
                return usage_error("policy takes show, list, set or unset, not '%s'", verb);
        if (ctx->vm && !*ctx->vm)
                return usage_error("--vm needs a VM name");

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;
        if (streq(verb, "show"))
                return policy_show(ctx, bus);
        if (streq(verb, "list"))
                return policy_list(ctx, bus);
        return policy_change(ctx, bus, streq(verb, "set"), args + 1, n_args - 1);
}
