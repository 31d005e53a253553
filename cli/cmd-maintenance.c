/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl maintenance on|off NODE: sets a node's replicated maintenance
 * flag through Cluster.SetMaintenance. */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"
#include "strutil.h"

int cmd_maintenance(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_free_ char *operation = NULL;
        const char *node = args[1];
        bool enable;
        int r;

        /* on|off as documented; parse_boolean() also takes yes/no, 1/0. */
        if (parse_boolean(args[0], &enable) < 0)
                return usage_error("maintenance takes 'on' or 'off', not '%s'", args[0]);

        if (asprintf(&operation, "turning maintenance %s for node '%s'", enable ? "on" : "off", node) < 0) {
                operation = NULL;
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        /* Built by hand rather than with sd_bus_call_method() for the
         * longer timeout. Appending fails for a name that is not UTF-8. */
        r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                           FERRY_CLUSTER_INTERFACE, "SetMaintenance");
        if (r >= 0)
                r = sd_bus_message_append(m, "sb", node, enable);
        if (r < 0) {
                print_error("%s failed: %s", operation, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, &error, NULL);
        if (r < 0) {
                /* No answer is not a "no": the change may have been proposed
                 * and may still commit. Don't let the operator assume either. */
                if (bus_error_is_no_answer(&error)) {
                        print_error("%s: no answer from ferryd (%s); the change may still be committed, "
                                    "check with 'ferryctl node %s'",
                                    operation, bus_error_text(&error, r), node);
                        return FERRYCTL_EXIT_FAILURE;
                }
                return bus_error_exit(operation, &error, r);
        }

        if (ctx->json) {
                JsonWriter w;

                json_init(&w, stdout, false);
                json_begin_object(&w);
                json_key(&w, "node");
                json_string(&w, node);
                json_key(&w, "maintenance");
                json_bool(&w, enable);
                json_end_object(&w);
                r = json_finish(&w);
        } else
                r = printf("%s: maintenance %s\n", node, enable ? "on" : "off") < 0 ? -EIO : 0;

        return finish_output(r);
}
