/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl balance: even out the load of the cluster (policies/balance.c
 * plans it, ferryd carries it out).
 *
 *   balance [--dry-run]          plan a round now, and submit it (or only show it)
 *   balance status               the settings, the score, who runs the automatic balancer
 *   balance auto on|off          switch the automatic balancer
 *   balance set KEY=VALUE...     threshold, target, min_gain (scores such as 0.10),
 *                                max_moves, max_bytes (a size such as 64G) */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"
#include "strutil.h"

/* A score in permille as operators read it: 123 is "0.123". */
static void format_score(char buf[static 16], uint32_t permille) {
        snprintf(buf, 16, "%" PRIu32 ".%03" PRIu32, permille / 1000, permille % 1000);
}

/* "0.1", ".25", "1", "0.125" into permille; -EINVAL past 3 decimals. */
static int parse_score(const char *s, uint32_t *ret) {
        uint64_t whole = 0, frac = 0;
        unsigned digits = 0;
        const char *p = s;

        if (!*p)
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++)
                if ((whole = whole * 10 + (uint64_t) (*p - '0')) > 1000)
                        return -ERANGE;
        if (*p == '.')
                for (p++; *p >= '0' && *p <= '9'; p++) {
                        if (++digits > 3)
                                return -EINVAL;
                        frac = frac * 10 + (uint64_t) (*p - '0');
                }
        if (*p || p == s || (p == s + 1 && *s == '.'))
                return -EINVAL;
        while (digits++ < 3)
                frac *= 10;
        *ret = (uint32_t) (whole * 1000 + frac);
        return 0;
}

static int print_plan(const CommandContext *ctx, sd_bus_message *reply, bool submitted) {
        _cleanup_(table_freep) Table *t = NULL;
        uint32_t score, final_score;
        const char *why_not;
        int needed, r;
        JsonWriter w;
        size_t n = 0;
        char a[16], b[16];

        r = sd_bus_message_read(reply, "uubs", &score, &final_score, &needed, &why_not);
        if (r < 0)
                return bus_parse_error_exit("reading the balance plan", r);
        if (ctx->json) {
                json_init(&w, stdout, false);
                json_begin_object(&w);
                json_key(&w, "score");
                json_double(&w, score / 1000.0);
                json_key(&w, "final_score");
                json_double(&w, final_score / 1000.0);
                json_key(&w, "needed");
                json_bool(&w, needed);
                json_key(&w, "why_not");
                json_string(&w, why_not);
                json_key(&w, "submitted");
                json_bool(&w, submitted);
                json_key(&w, "moves");
                json_begin_array(&w);
        } else {
                static const char *const headers[] = { "VM", "FROM", "TO", "MEMORY", "SCORE AFTER", "WHY" };
                t = table_new(ELEMENTSOF(headers), headers);
                if (!t)
                        return finish_output(-ENOMEM);
                table_set_align_right(t, 3);
        }
        r = sd_bus_message_enter_container(reply, 'a', "(ssstus)");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', "ssstus")) > 0) {
                const char *vm, *from, *to, *why;
                uint64_t memory;
                uint32_t after;
                r = sd_bus_message_read(reply, "ssstus", &vm, &from, &to, &memory, &after, &why);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        break;
                n++;
                if (ctx->json) {
                        json_begin_object(&w);
                        json_key(&w, "vm");
                        json_string(&w, vm);
                        json_key(&w, "source");
                        json_string(&w, from);
                        json_key(&w, "destination");
                        json_string(&w, to);
                        json_key(&w, "memory");
                        json_uint(&w, memory);
                        json_key(&w, "score_after");
                        json_double(&w, after / 1000.0);
                        json_key(&w, "reason");
                        json_string(&w, why);
                        json_end_object(&w);
                } else {
                        char size[32], sc[16];
                        format_size(size, sizeof(size), memory);
                        format_score(sc, after);
                        table_add_cell(t, vm);
                        table_add_cell(t, from);
                        table_add_cell(t, to);
                        table_add_cell(t, size);
                        table_add_cell(t, sc);
                        table_add_cell(t, why);
                }
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r < 0)
                return bus_parse_error_exit("reading the balance plan", r);

        if (ctx->json) {
                json_end_array(&w);
                json_end_object(&w);
                return finish_output(json_finish(&w));
        }
        format_score(a, score);
        format_score(b, final_score);
        if (n == 0) {
                printf("Imbalance score %s: nothing to move (%s).\n", a, *why_not ? why_not : "balanced");
                return finish_output(0);
        }
        printf("Imbalance score %s, %s after %zu move(s)%s:\n", a, b, n,
               submitted ? ", submitted" : " (dry run: nothing submitted)");
        r = table_print(t, stdout);
        if (r >= 0 && submitted)
                printf("Follow them with 'ferryctl jobs'.\n");
        return finish_output(r);
}

static int balance_run(const CommandContext *ctx, sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *method = ctx->dry_run ? "PlanBalance" : "Balance";
        int r;

        r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE, method);
        if (r < 0)
                return bus_error_exit("balancing", &error, r);
        r = sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return bus_error_exit(ctx->dry_run ? "planning a balance round" : "balancing", &error, r);
        return print_plan(ctx, reply, !ctx->dry_run);
}

static int balance_status(const CommandContext *ctx, sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        bool automatic = false;
        uint32_t threshold = 0, target = 0, max_moves = 0, min_gain = 0, score;
        uint64_t max_bytes = 0;
        const char *key, *leader;
        int r;

        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE, "GetBalance", &error,
                               &reply, "");
        if (r < 0)
                return bus_error_exit("reading the balance settings", &error, r);
        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                int b;
                r = sd_bus_message_read(reply, "s", &key);
                if (r < 0)
                        break;
                if (streq(key, "automatic")) {
                        r = sd_bus_message_read(reply, "v", "b", &b);
                        automatic = b;
                } else if (streq(key, "threshold"))
                        r = sd_bus_message_read(reply, "v", "u", &threshold);
                else if (streq(key, "target"))
                        r = sd_bus_message_read(reply, "v", "u", &target);
                else if (streq(key, "max_moves"))
                        r = sd_bus_message_read(reply, "v", "u", &max_moves);
                else if (streq(key, "max_bytes"))
                        r = sd_bus_message_read(reply, "v", "t", &max_bytes);
                else if (streq(key, "min_gain"))
                        r = sd_bus_message_read(reply, "v", "u", &min_gain);
                else
                        r = sd_bus_message_skip(reply, "v");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
        if (r >= 0)
                r = sd_bus_message_read(reply, "su", &leader, &score);
        if (r < 0)
                return bus_parse_error_exit("reading the balance settings", r);

        if (ctx->json) {
                JsonWriter w;
                json_init(&w, stdout, false);
                json_begin_object(&w);
                json_key(&w, "automatic");
                json_bool(&w, automatic);
                json_key(&w, "leader");
                json_string(&w, *leader ? leader : NULL);
                json_key(&w, "score");
                json_double(&w, score / 1000.0);
                json_key(&w, "threshold");
                json_double(&w, threshold / 1000.0);
                json_key(&w, "target");
                json_double(&w, target / 1000.0);
                json_key(&w, "min_gain");
                json_double(&w, min_gain / 1000.0);
                json_key(&w, "max_moves");
                json_uint(&w, max_moves);
                json_key(&w, "max_bytes");
                json_uint(&w, max_bytes);
                json_end_object(&w);
                return finish_output(json_finish(&w));
        }
        char sc[16], th[16], ta[16], mg[16], size[32];
        format_score(sc, score);
        format_score(th, threshold);
        format_score(ta, target);
        format_score(mg, min_gain);
        format_size(size, sizeof(size), max_bytes);
        printf("Automatic balancer: %s%s%s\n", automatic ? "on" : "off", automatic && *leader ? ", runs on " : "",
               automatic ? leader : "");
        printf("Imbalance score:    %s (a round starts above %s and stops at %s)\n", sc, th, ta);
        printf("Per round:          at most %" PRIu32 " moves, %s; each move gains at least %s\n", max_moves,
               max_bytes ? size : "no memory bound", mg);
        return finish_output(ferror(stdout) ? -EIO : 0);
}

static int balance_set(const CommandContext *ctx, sd_bus *bus, char **args, unsigned n_args) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                                           "SetBalance");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (unsigned i = 0; r >= 0 && i < n_args; i++) {
                const char *a = args[i], *eq = strchr(a, '=');
                if (streq(a, "on") || streq(a, "off")) {        /* from `auto on|off` */
                        r = sd_bus_message_append(m, "{sv}", "automatic", "b", (int) streq(a, "on"));
                        continue;
                }
                _cleanup_free_ char *key = strndup(a, (size_t) (eq - a));
                const char *value = eq + 1;
                if (!key)
                        return finish_output(-ENOMEM);
                if (streq(key, "threshold") || streq(key, "target") || streq(key, "min_gain")) {
                        uint32_t v;
                        if (parse_score(value, &v) < 0)
                                return usage_error("%s takes a score such as 0.10, not '%s'", key, value);
                        r = sd_bus_message_append(m, "{sv}", key, "u", v);
                } else if (streq(key, "max_moves")) {
                        uint32_t v;
                        if (parse_u32(value, &v) < 0)
                                return usage_error("max_moves takes a whole number, not '%s'", value);
                        r = sd_bus_message_append(m, "{sv}", key, "u", v);
                } else if (streq(key, "max_bytes")) {
                        uint64_t v;
                        if (parse_size(value, &v) < 0)
                                return usage_error("max_bytes takes a size such as 64G (0: no bound), not '%s'", value);
                        r = sd_bus_message_append(m, "{sv}", key, "t", v);
                } else
                        return usage_error("unknown balance setting '%s' (known: threshold, target, min_gain, "
                                           "max_moves, max_bytes)", key);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return finish_output(r);
        r = sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, &error, NULL);
        if (r < 0) {
                if (bus_error_is_no_answer(&error)) {
                        print_error("changing the balance settings: no answer from ferryd (%s); the change may still "
                                    "be committed, check with 'ferryctl balance status'", bus_error_text(&error, r));
                        return FERRYCTL_EXIT_FAILURE;
                }
                return bus_error_exit("changing the balance settings", &error, r);
        }
        return balance_status(ctx, bus);
}

int cmd_balance(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *verb = n_args > 0 ? args[0] : NULL;
        int r;

        /* Every argument is checked before connecting. */
        if (!verb) {
                /* a round now */
        } else if (streq(verb, "status")) {
                if (n_args > 1)
                        return usage_error("balance status takes no arguments");
        } else if (streq(verb, "auto")) {
                if (n_args != 2 || (!streq(args[1], "on") && !streq(args[1], "off")))
                        return usage_error("balance auto takes 'on' or 'off'");
        } else if (streq(verb, "set")) {
                if (n_args < 2)
                        return usage_error("balance set needs at least one KEY=VALUE");
                for (unsigned i = 1; i < n_args; i++)
                        if (!strchr(args[i], '=') || args[i][0] == '=')
                                return usage_error("'%s' is not KEY=VALUE", args[i]);
        } else
                return usage_error("balance takes status, auto on|off or set KEY=VALUE..., not '%s'", verb);
        if (ctx->dry_run && verb)
                return usage_error("--dry-run applies to 'ferryctl balance' alone");

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;
        if (!verb)
                return balance_run(ctx, bus);
        if (streq(verb, "status"))
                return balance_status(ctx, bus);
        return balance_set(ctx, bus, args + 1, n_args - 1);
}
