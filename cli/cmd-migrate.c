/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl migrate VM: queues a live migration (Cluster.Migrate) and,
 * with --wait, follows it to its end (job-watch.c); with --check, only
 * runs the pre-flight checks (Cluster.CheckMigration). ferryd decides
 * whether and where a VM can go; ferryctl passes the request on as typed
 * and prints the answer. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"
#include "job-watch.h"
#include "job.h"
#include "strutil.h"

typedef struct Check {
        char *name;
        bool passed;
        char *message;
} Check;

typedef struct CheckResult {
        char *destination;
        Check *checks;
        size_t n;
} CheckResult;

static void check_result_done(CheckResult *c) {
        for (size_t i = 0; i < c->n; i++) {
                free(c->checks[i].name);
                free(c->checks[i].message);
        }
        free(c->checks);
        free(c->destination);
        *c = (CheckResult) {};
}

/* The result stands on every check passing, and on there being a
 * destination at all. */
static bool check_result_passed(const CheckResult *c, size_t *ret_failed) {
        size_t failed = 0;

        for (size_t i = 0; i < c->n; i++)
                if (!c->checks[i].passed)
                        failed++;
        *ret_failed = failed;
        return failed == 0 && *c->destination;
}

/* s destination, a(sbs) checks */
static int read_checks(sd_bus_message *m, CheckResult *c) {
        const char *destination;
        int r;

        r = sd_bus_message_read(m, "s", &destination);
        if (r < 0)
                return r;
        c->destination = strdup(destination);
        if (!c->destination)
                return -ENOMEM;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(sbs)");
        if (r < 0)
                return r;

        for (;;) {
                const char *name, *message;
                Check *checks;
                int passed;

                r = sd_bus_message_read(m, "(sbs)", &name, &passed, &message);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                checks = reallocarray(c->checks, c->n + 1, sizeof(Check));
                if (!checks)
                        return -ENOMEM;
                c->checks = checks;
                c->checks[c->n++] = (Check) {
                        .name = strdup(name),
                        .passed = passed,
                        .message = strdup(message),
                };
                if (!c->checks[c->n - 1].name || !c->checks[c->n - 1].message)
                        return -ENOMEM;
        }

        return sd_bus_message_exit_container(m);
}

static int print_checks_json(const char *vm, const CheckResult *c, bool passed) {
        JsonWriter w;

        json_init(&w, stdout, true);
        json_begin_object(&w);
        json_key(&w, "vm");
        json_string(&w, vm);
        json_key(&w, "destination");
        json_string(&w, c->destination);
        json_key(&w, "checks");
        json_begin_array(&w);
        for (size_t i = 0; i < c->n; i++) {
                json_begin_object(&w);
                json_key(&w, "name");
                json_string(&w, c->checks[i].name);
                json_key(&w, "passed");
                json_bool(&w, c->checks[i].passed);
                json_key(&w, "message");
                json_string(&w, c->checks[i].message);
                json_end_object(&w);
        }
        json_end_array(&w);
        json_key(&w, "passed");
        json_bool(&w, passed);
        json_end_object(&w);
        return json_finish(&w);
}

/* Destination: node2
 * ✓  cpu-vendor  both AuthenticAMD
 * ✗  memory      node2 has 2.1G free, web1 needs 4.0G
 * with "ok"/"FAIL" for the marks when stdout is not a terminal. */
static int print_checks_human(const CheckResult *c) {
        _cleanup_(table_freep) Table *t = NULL;
        bool tty = isatty(STDOUT_FILENO);
        int r;

        if (printf("Destination: %s\n", *c->destination ? c->destination : "none found") < 0)
                return -EIO;

        t = table_new(3, NULL);
        if (!t)
                return -ENOMEM;

        for (size_t i = 0; i < c->n; i++) {
                const char *mark = c->checks[i].passed ? (tty ? "\u2713" : "ok") : (tty ? "\u2717" : "FAIL");

                if ((r = table_add_cell(t, mark)) < 0 ||
                    (r = table_add_cell(t, c->checks[i].name)) < 0 ||
                    (r = table_add_cell(t, c->checks[i].message)) < 0)
                        return r;
        }

        return table_print(t, stdout);
}

static int migrate_check(sd_bus *bus, const CommandContext *ctx, const char *vm) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_(check_result_done) CheckResult c = {};
        _cleanup_free_ char *operation = NULL;
        size_t failed;
        bool passed;
        int r;

        if (asprintf(&operation, "checking the migration of '%s'", vm) < 0) {
                operation = NULL;
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        /* The checks ask the destination (CPU compatibility): give them the
         * time a change gets. */
        r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                           FERRY_CLUSTER_INTERFACE, "CheckMigration");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", vm, ctx->to ? ctx->to : "");
        if (r < 0) {
                print_error("%s failed: %s", operation, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, &error, &reply);
        if (r < 0)
                return bus_error_exit(operation, &error, r);

        r = read_checks(reply, &c);
        if (r < 0)
                return bus_parse_error_exit(operation, r);

        passed = check_result_passed(&c, &failed);

        if (ctx->json)
                r = print_checks_json(vm, &c, passed);
        else {
                r = print_checks_human(&c);
                if (r >= 0 && passed)
                        r = printf("%s can be migrated to %s.\n", vm, c.destination) < 0 ? -EIO : 0;
        }
        r = finish_output(r);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        if (passed)
                return FERRYCTL_EXIT_SUCCESS;

        if (!ctx->json) {
                if (!*c.destination)
                        print_error("%s cannot be migrated: ferryd found no destination", vm);
                else
                        print_error("%s cannot be migrated to %s: %zu of %zu checks failed",
                                    vm, c.destination, failed, c.n);
        }
        return FERRYCTL_EXIT_REFUSED;
}

static int append_options(sd_bus_message *m, const CommandContext *ctx) {
        int r;

        /* Only what was asked for: ferryd's defaults stand for the rest. */
        r = sd_bus_message_open_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;
        if (ctx->bandwidth_set) {
                r = sd_bus_message_append(m, "{sv}", "bandwidth", "t", ctx->bandwidth);
                if (r < 0)
                        return r;
        }
        if (ctx->max_downtime_set) {
                r = sd_bus_message_append(m, "{sv}", "max_downtime_ms", "u", ctx->max_downtime_ms);
                if (r < 0)
                        return r;
        }
        if (ctx->postcopy) {
                r = sd_bus_message_append(m, "{sv}", "postcopy", "b", 1);
                if (r < 0)
                        return r;
        }
        if (ctx->auto_converge) {
                r = sd_bus_message_append(m, "{sv}", "auto_converge", "b", 1);
                if (r < 0)
                        return r;
        }
        return sd_bus_message_close_container(m);
}

/* "/org/ferry/Ferry1/job/17" → 17 */
static int job_id_from_path(const char *path, uint64_t *ret) {
        size_t n = strlen(FERRY_JOB_PATH_PREFIX);

        if (strncmp(path, FERRY_JOB_PATH_PREFIX, n) != 0 || path[n] != '/')
                return -EBADMSG;
        return parse_u64(path + n + 1, ret) < 0 ? -EBADMSG : 0;
}

/* Without --wait: the job as it is right after it was queued. */
static int print_queued_job(sd_bus *bus, const CommandContext *ctx, const char *vm, const char *path, uint64_t id) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(job_info_done) JobInfo job = {};
        _cleanup_free_ char *line = NULL;
        int r;

        r = bus_get_all_properties(bus, path, FERRY_JOB_INTERFACE, &error, &reply);
        if (r >= 0)
                r = bus_read_properties(reply, job_fields, _JOB_FIELD_MAX, job.values);
        if (r < 0) {
                /* The migration is queued all the same; only the details
                 * are missing. */
                print_error("warning: job %" PRIu64 " was queued, but reading it failed: %s",
                            id, bus_error_text(&error, r));
                job_info_done(&job);
                job.values[JOB_ID] = (Value) { .type = VALUE_UINT, .u = id };
                job.values[JOB_VM].str = strdup(vm);
                if (job.values[JOB_VM].str)
                        job.values[JOB_VM].type = VALUE_STRING;
        }

        if (ctx->json) {
                JsonWriter w;

                json_init(&w, stdout, true);
                job_write_json(&w, &job);
                return finish_output(json_finish(&w));
        }

        line = job_summary_line(&job, isatty(STDOUT_FILENO) ? "\u2192" : "->");
        if (!line)
                return finish_output(-ENOMEM);
        return finish_output(printf("%s\n", line) < 0 ? -EIO : 0);
}

static int migrate_start(sd_bus *bus, const CommandContext *ctx, const char *vm) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *operation = NULL, *path = NULL;
        const char *p;
        uint64_t id;
        int r;

        if (asprintf(&operation, "migrating '%s'", vm) < 0) {
                operation = NULL;
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                           FERRY_CLUSTER_INTERFACE, "Migrate");
        if (r >= 0)
                r = sd_bus_message_append(m, "ss", vm, ctx->to ? ctx->to : "");
        if (r >= 0)
                r = append_options(m, ctx);
        if (r < 0) {
                print_error("%s failed: %s", operation, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, &error, &reply);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, FERRY_ERROR_MIGRATION_REFUSED)) {
                        /* ferryd's message names the check and says why. */
                        print_error("%s", bus_error_text(&error, r));
                        print_error("all checks: 'ferryctl migrate %s%s%s --check'",
                                    vm, ctx->to ? " --to " : "", ctx->to ? ctx->to : "");
                        return FERRYCTL_EXIT_REFUSED;
                }
                /* No answer is not a "no": the job may have been queued. */
                if (bus_error_is_no_answer(&error)) {
                        print_error("%s: no answer from ferryd (%s); the migration may still have been queued, "
                                    "check with 'ferryctl jobs'", operation, bus_error_text(&error, r));
                        return FERRYCTL_EXIT_FAILURE;
                }
                return bus_error_exit(operation, &error, r);
        }

        r = sd_bus_message_read(reply, "o", &p);
        if (r >= 0)
                r = job_id_from_path(p, &id);
        if (r < 0)
                return bus_parse_error_exit(operation, r);
        path = strdup(p);
        if (!path)
                return bus_parse_error_exit(operation, -ENOMEM);

        if (ctx->wait)
                return job_watch(bus, id, ctx);

        return print_queued_job(bus, ctx, vm, path, id);
}

int cmd_migrate(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *vm = args[0];
        int r;

        if (ctx->check) {
                const char *extra = ctx->wait ? "--wait" :
                                    ctx->bandwidth_set ? "--bandwidth" :
                                    ctx->max_downtime_set ? "--max-downtime" :
                                    ctx->postcopy ? "--postcopy" :
                                    ctx->auto_converge ? "--auto-converge" : NULL;
                if (extra)
                        return usage_error("--check only runs the pre-flight checks; it does not take %s", extra);
        }

        if (!*vm)
                return usage_error("migrate needs a VM name");

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        return ctx->check ? migrate_check(bus, ctx, vm) : migrate_start(bus, ctx, vm);
}
