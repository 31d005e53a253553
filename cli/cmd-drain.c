/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl drain NODE and ferryctl undrain NODE: empty a node for
 * maintenance (Cluster.Drain), show what that does without doing it
 * (Cluster.PlanDrain, --dry-run), follow it to its end (--wait,
 * drain-watch.c), and end it (Cluster.Undrain). ferryd plans and carries
 * out the drain; ferryctl asks and prints the answer. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "drain-watch.h"
#include "ferry-bus.h"
#include "ferryctl.h"
#include "job.h"
#include "node.h"
#include "strutil.h"

typedef struct PlanEntry {
        char *vm;
        char *action;        /* move, moving, blocked */
        char *destination;   /* "" when there is none */
        char *reason;
} PlanEntry;

typedef struct Plan {
        char *status;        /* none, draining, drain-blocked, drained */
        PlanEntry *entries;
        size_t n;
} Plan;

static void plan_done(Plan *p) {
        for (size_t i = 0; i < p->n; i++) {
                free(p->entries[i].vm);
                free(p->entries[i].action);
                free(p->entries[i].destination);
                free(p->entries[i].reason);
        }
        free(p->entries);
        free(p->status);
        *p = (Plan) {};
}

/* s status, a(ssss) entries */
static int read_plan(sd_bus_message *m, Plan *p) {
        const char *status;
        int r;

        r = sd_bus_message_read(m, "s", &status);
        if (r < 0)
                return r;
        p->status = strdup(status);
        if (!p->status)
                return -ENOMEM;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(ssss)");
        if (r < 0)
                return r;

        for (;;) {
                const char *vm, *action, *destination, *reason;
                PlanEntry *entries, *e;

                r = sd_bus_message_read(m, "(ssss)", &vm, &action, &destination, &reason);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                entries = reallocarray(p->entries, p->n + 1, sizeof(PlanEntry));
                if (!entries)
                        return -ENOMEM;
                p->entries = entries;
                e = p->entries + p->n++;
                *e = (PlanEntry) {
                        .vm = strdup(vm),
                        .action = strdup(action),
                        .destination = strdup(destination),
                        .reason = strdup(reason),
                };
                if (!e->vm || !e->action || !e->destination || !e->reason)
                        return -ENOMEM;
        }

        return sd_bus_message_exit_container(m);
}

static size_t plan_count(const Plan *p, const char *action) {
        size_t n = 0;

        for (size_t i = 0; i < p->n; i++)
                if (streq(p->entries[i].action, action))
                        n++;
        return n;
}

static int print_plan_json(const char *node, const Plan *p) {
        JsonWriter w;

        json_init(&w, stdout, true);
        json_begin_object(&w);
        json_key(&w, "node");
        json_string(&w, node);
        json_key(&w, "status");
        json_string(&w, p->status);
        json_key(&w, "entries");
        json_begin_array(&w);
        for (size_t i = 0; i < p->n; i++) {
                json_begin_object(&w);
                json_key(&w, "vm");
                json_string(&w, p->entries[i].vm);
                json_key(&w, "action");
                json_string(&w, p->entries[i].action);
                json_key(&w, "destination");
                json_string(&w, p->entries[i].destination);
                json_key(&w, "reason");
                json_string(&w, p->entries[i].reason);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_end_object(&w);
        return json_finish(&w);
}

/* VM      ACTION   DESTINATION  REASON
 * big     move     node2        most memory to spare (40.0G)
 * web9    blocked  -            cannot move: ...
 * node1: 4 to move, 0 moving, 1 blocked (not draining; nothing was changed) */
static int print_plan_human(const char *node, const Plan *p) {
        static const char *const headers[] = { "VM", "ACTION", "DESTINATION", "REASON" };
        _cleanup_(table_freep) Table *t = NULL;
        size_t blocked = plan_count(p, "blocked");
        bool draining = *p->status && !streq(p->status, "none");
        int r;

        if (p->n == 0) {
                if (draining)
                        r = printf("%s: no VM left on it (drain state: %s)\n", node, p->status);
                else
                        r = printf("%s: no VM on it; a drain would have nothing to move\n", node);
                return r < 0 ? -EIO : 0;
        }

        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return -ENOMEM;
        for (size_t i = 0; i < p->n; i++)
                if ((r = table_add_cell(t, p->entries[i].vm)) < 0 ||
                    (r = table_add_cell(t, p->entries[i].action)) < 0 ||
                    (r = table_add_cell(t, p->entries[i].destination)) < 0 ||
                    (r = table_add_cell(t, p->entries[i].reason)) < 0)
                        return r;
        r = table_print(t, stdout);
        if (r < 0)
                return r;

        if (draining)
                r = printf("%s: %zu to move, %zu moving, %zu blocked (drain state: %s; nothing was changed)\n",
                           node, plan_count(p, "move"), plan_count(p, "moving"), blocked, p->status);
        else
                r = printf("%s: %zu to move, %zu moving, %zu blocked (not draining; nothing was changed)\n",
                           node, plan_count(p, "move"), plan_count(p, "moving"), blocked);
        if (r >= 0 && blocked > 0 && !draining)
                r = printf("Blocked VMs keep a drain drain-blocked (--blockers fail, the default); "
                           "with --blockers leave they stay on %s.\n", node);
        return r < 0 ? -EIO : 0;
}

static int drain_dry_run(sd_bus *bus, const CommandContext *ctx, const char *node) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(plan_done) Plan p = {};
        _cleanup_free_ char *operation = NULL;
        int r;

        if (asprintf(&operation, "planning the drain of node '%s'", node) < 0) {
                operation = NULL;
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        /* The plan runs every VM's pre-flight checks against every node:
         * give it the time a change gets. */
        r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                           FERRY_CLUSTER_INTERFACE, "PlanDrain");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", node);
        if (r < 0) {
                print_error("%s failed: %s", operation, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return bus_error_exit(operation, &error, r);

        r = read_plan(reply, &p);
        if (r < 0)
                return bus_parse_error_exit(operation, r);

        /* A plan with blockers is still a plan: exit 0, the table says it. */
        r = ctx->json ? print_plan_json(node, &p) : print_plan_human(node, &p);
        return finish_output(r);
}

/* Without --wait: the drain as it is right after it was asked for. */
static int print_drain_started(sd_bus *bus, const CommandContext *ctx, const char *node, const char *path) {
        _cleanup_(node_info_done) NodeInfo info = {};
        _cleanup_free_ char *line = NULL;
        size_t n_blockers;
        int r;

        r = bus_read_node(bus, node, path, &info);
        if (r != FERRYCTL_EXIT_SUCCESS) {
                /* The drain runs all the same; only the details are missing. */
                print_error("warning: the drain of %s was started, but reading the node failed; see 'ferryctl node %s'",
                            node, node);
                node_info_done(&info);
                info.values[NODE_DRAIN_MODE].str = strdup(ctx->blockers ? ctx->blockers : "fail");
                if (info.values[NODE_DRAIN_MODE].str)
                        info.values[NODE_DRAIN_MODE].type = VALUE_STRING;
        }

        if (ctx->json) {
                JsonWriter w;

                json_init(&w, stdout, true);
                node_write_json(&w, &info);
                return finish_output(json_finish(&w));
        }

        if (r != FERRYCTL_EXIT_SUCCESS)
                return finish_output(printf("%s: draining\n", node) < 0 ? -EIO : 0);

        line = node_drain_line(&info, node, 0);
        if (!line)
                return finish_output(-ENOMEM);
        r = printf("%s\n", line) < 0 ? -EIO : 0;

        n_blockers = node_n_blockers(&info);
        for (size_t i = 0; r >= 0 && i < n_blockers; i++)
                r = printf("%s: %s: %s: %s\n", node, node_blocked_word(&info), node_blocker_vm(&info, i),
                           node_blocker_reason(&info, i)) < 0 ? -EIO : 0;
        if (r >= 0 && streq(node_string(&info, NODE_DRAIN_STATE), "drain-blocked")) {
                uint64_t others = node_uint(&info, NODE_DRAIN_REMAINING) - MIN(node_uint(&info, NODE_DRAIN_REMAINING), n_blockers);
                char vms[32];

                if (others > 0)
                        r = printf("The other %s move all the same. ", plural_vms(vms, others)) < 0 ? -EIO : 0;
                if (r >= 0)
                        r = printf("Leave the blocked ones on the node with 'ferryctl drain %s --blockers leave', "
                                   "or end the drain with 'ferryctl undrain %s'.\n", node, node) < 0 ? -EIO : 0;
        }
        return finish_output(r);
}

static int drain_start(sd_bus *bus, const CommandContext *ctx, const char *node) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(drain_watch_freep) DrainWatch *watch = NULL;
        _cleanup_free_ char *operation = NULL, *path = NULL;
        int r;

        if (asprintf(&operation, "draining node '%s'", node) < 0) {
                operation = NULL;
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        r = bus_get_node_path(bus, node, &path);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        /* Ready to follow before the drain starts: its first migrations
         * may be queued before Drain returns. */
        if (ctx->wait) {
                r = drain_watch_new(bus, node, path, ctx, &watch);
                if (r != FERRYCTL_EXIT_SUCCESS)
                        return r;
        }

        r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                           FERRY_CLUSTER_INTERFACE, "Drain");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", node);
        /* Only what was asked for: ferryd's default stands for the rest. */
        if (r >= 0)
                r = sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r >= 0 && ctx->blockers)
                r = sd_bus_message_append(m, "{sv}", "blockers", "s", ctx->blockers);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0) {
                print_error("%s failed: %s", operation, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, &error, NULL);
        if (r < 0) {
                /* No answer is not a "no": the drain may have been committed. */
                if (bus_error_is_no_answer(&error)) {
                        print_error("%s: no answer from ferryd (%s); the drain may still have been started, "
                                    "check with 'ferryctl node %s'", operation, bus_error_text(&error, r), node);
                        return FERRYCTL_EXIT_FAILURE;
                }
                return bus_error_exit(operation, &error, r);
        }

        if (watch)
                return drain_watch_run(watch);

        return print_drain_started(bus, ctx, node, path);
}

int cmd_drain(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *node = args[0];
        int r;

        if (ctx->dry_run) {
                const char *extra = ctx->wait ? "--wait" : ctx->blockers ? "--blockers" : NULL;

                if (extra)
                        return usage_error("--dry-run only shows the plan; it does not take %s", extra);
        }

        if (!*node)
                return usage_error("drain needs a node name or id");

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        return ctx->dry_run ? drain_dry_run(bus, ctx, node) : drain_start(bus, ctx, node);
}

/* The migrations off node `name` that are still queued or running, in the
 * order of their ids: "21, 22, 25". NULL when there are none, or on an
 * error (this is only a note). */
static char *jobs_under_way(sd_bus *bus, const char *name, size_t *ret_n) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(job_list_done) JobList l = {};
        char *s = NULL;
        size_t size = 0, n = 0;
        FILE *f;

        if (!*name || bus_get_managed_objects(bus, &error, &reply) < 0 ||
            bus_read_managed_objects(reply, FERRY_JOB_INTERFACE, job_fields, _JOB_FIELD_MAX, job_list_add, &l) < 0)
                return NULL;

        f = open_memstream(&s, &size);
        if (!f)
                return NULL;
        /* ferryd lists jobs by id. */
        for (size_t i = 0; i < l.n; i++)
                if (job_is_active(l.jobs + i) && streq(job_string(l.jobs + i, JOB_SOURCE), name))
                        fprintf(f, "%s%" PRIu64, n++ > 0 ? ", " : "", job_uint(l.jobs + i, JOB_ID));
        if (fclose(f) != 0 || n == 0) {
                free(s);
                return NULL;
        }
        *ret_n = n;
        return s;
}

int cmd_undrain(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        _cleanup_(node_info_done) NodeInfo info = {};
        _cleanup_free_ char *operation = NULL, *path = NULL, *jobs = NULL;
        const char *node = args[0];
        bool known = true, maintenance = false;
        size_t n_jobs = 0;
        int r;

        if (!*node)
                return usage_error("undrain needs a node name or id");

        if (asprintf(&operation, "ending the drain of node '%s'", node) < 0) {
                operation = NULL;
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                           FERRY_CLUSTER_INTERFACE, "Undrain");
        if (r >= 0)
                r = sd_bus_message_append(m, "sb", node, ctx->keep_maintenance);
        if (r < 0) {
                print_error("%s failed: %s", operation, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, &error, NULL);
        if (r < 0) {
                if (bus_error_is_no_answer(&error)) {
                        print_error("%s: no answer from ferryd (%s); the change may still be committed, "
                                    "check with 'ferryctl node %s'", operation, bus_error_text(&error, r), node);
                        return FERRYCTL_EXIT_FAILURE;
                }
                return bus_error_exit(operation, &error, r);
        }

        /* Without --keep-maintenance, maintenance is off: that is what was
         * committed. With it, maintenance is what it was: read it. The
         * node's name also tells which migrations leave it. */
        r = bus_get_node_path(bus, node, &path);
        if (r == FERRYCTL_EXIT_SUCCESS)
                r = bus_read_node(bus, node, path, &info);
        if (ctx->keep_maintenance) {
                if (r == FERRYCTL_EXIT_SUCCESS && info.values[NODE_MAINTENANCE].type == VALUE_BOOL)
                        maintenance = info.values[NODE_MAINTENANCE].b;
                else {
                        known = false;
                        print_error("warning: the drain of %s was ended, but reading the node failed; "
                                    "see 'ferryctl node %s'", node, node);
                }
        }

        if (ctx->json) {
                JsonWriter w;

                json_init(&w, stdout, false);
                json_begin_object(&w);
                json_key(&w, "node");
                json_string(&w, node);
                json_key(&w, "maintenance");
                if (known)
                        json_bool(&w, maintenance);
                else
                        json_null(&w);
                json_end_object(&w);
                return finish_output(json_finish(&w));
        }

        if (!known)
                r = printf("%s: undrained, maintenance unchanged\n", node);
        else
                r = printf("%s: undrained, %s\n", node, maintenance ? "stays in maintenance" : "maintenance off");

        /* Ending a drain stops no migration it queued. */
        jobs = jobs_under_way(bus, node_string(&info, NODE_NAME), &n_jobs);
        if (r >= 0 && jobs)
                r = printf("%zu migration%s off %s %s still under way (job%s %s); 'ferryctl cancel ID' stops one\n",
                           n_jobs, n_jobs == 1 ? "" : "s", node, n_jobs == 1 ? "is" : "are", n_jobs == 1 ? "" : "s", jobs);
        return finish_output(r < 0 ? -EIO : 0);
}
