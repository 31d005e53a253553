/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl __complete nodes|vms|volumes|jobs|active-jobs: the names shell completion
 * (completion/ferryctl.bash) offers, one per line, sorted, nothing else. An
 * interface for scripts of ours, not for people, so it is not in --help. It
 * asks what `nodes`, `vms` and `jobs` ask, with a short timeout: a TAB must
 * not hang on a ferryd that does not answer. */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"
#include "job.h"
#include "node.h"

/* Long enough for a loaded ferryd, short enough for a TAB. */
#define COMPLETE_TIMEOUT_USEC (2 * UINT64_C(1000000))

typedef struct NameList {
        char **names;
        size_t n;
} NameList;

static void name_list_done(NameList *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->names[i]);
        free(l->names);
        *l = (NameList) {};
}

/* A name with a newline would break the one-per-line format: left out.
 * So is an empty one, which nothing can be called by. */
static int name_list_add(NameList *l, const char *name) {
        char **names;

        if (!name || !*name || strchr(name, '\n'))
                return 0;

        names = reallocarray(l->names, l->n + 1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        l->names = names;
        l->names[l->n] = strdup(name);
        if (!l->names[l->n])
                return -ENOMEM;
        l->n++;
        return 0;
}

static int name_compare(const void *a, const void *b) {
        return strcmp(*(char * const *) a, *(char * const *) b);
}

/* Sorted, each name once (a VM two nodes report is one name to type). */
static int name_list_print(NameList *l) {
        if (l->n > 1)
                qsort(l->names, l->n, sizeof(char *), name_compare);
        for (size_t i = 0; i < l->n; i++)
                if (i == 0 || !streq(l->names[i], l->names[i - 1]))
                        fprintf(stdout, "%s\n", l->names[i]);
        return 0;
}

typedef struct NodeList {
        NodeInfo *nodes;
        size_t n;
} NodeList;

static void node_list_done(NodeList *l) {
        for (size_t i = 0; i < l->n; i++)
                node_info_done(l->nodes + i);
        free(l->nodes);
        *l = (NodeList) {};
}

static Value *node_list_add(void *userdata) {
        NodeList *l = userdata;
        NodeInfo *nodes;

        nodes = reallocarray(l->nodes, l->n + 1, sizeof(NodeInfo));
        if (!nodes)
                return NULL;
        l->nodes = nodes;
        l->nodes[l->n++] = (NodeInfo) {};
        return l->nodes[l->n - 1].values;
}

/* The node objects, as `ferryctl nodes` reads them. */
static int complete_nodes(sd_bus *bus) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(node_list_done) NodeList nodes = {};
        _cleanup_(name_list_done) NameList l = {};
        int r;

        r = bus_get_managed_objects(bus, &error, &reply);
        if (r < 0)
                return bus_error_exit("listing nodes", &error, r);
        r = bus_read_managed_objects(reply, FERRY_NODE_INTERFACE, node_fields, _NODE_FIELD_MAX,
                                     node_list_add, &nodes);
        if (r < 0)
                return bus_parse_error_exit("listing nodes", r);

        for (size_t i = 0; i < nodes.n; i++) {
                r = name_list_add(&l, node_string(nodes.nodes + i, NODE_NAME));
                if (r < 0)
                        return finish_output(r);
        }
        return finish_output(name_list_print(&l));
}

/* The first field (the name) of each struct a Cluster.List* method
 * returns, as the listing command calls it: ListVms for `ferryctl vms`
 * ("ssssuttu"), ListVolumes for `ferryctl volumes` ("sssssstsas"). */
static int complete_names(sd_bus *bus, const char *method, const char *fields, const char *operation) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(name_list_done) NameList l = {};
        char array[64];
        int r;

        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                               method, &error, &reply, NULL);
        if (r < 0)
                return bus_error_exit(operation, &error, r);

        snprintf(array, sizeof(array), "(%s)", fields);
        r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY, array);
        if (r < 0)
                return bus_parse_error_exit(operation, r);
        for (;;) {
                const char *name;

                r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_STRUCT, fields);
                if (r < 0)
                        return bus_parse_error_exit(operation, r);
                if (r == 0)
                        break;
                r = sd_bus_message_read(reply, "s", &name);
                if (r >= 0)
                        r = sd_bus_message_skip(reply, fields + 1);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return bus_parse_error_exit(operation, r);

                r = name_list_add(&l, name);
                if (r < 0)
                        return finish_output(r);
        }

        return finish_output(name_list_print(&l));
}

static int job_id_compare(const void *a, const void *b) {
        uint64_t x = job_uint(a, JOB_ID), y = job_uint(b, JOB_ID);

        return x < y ? -1 : x > y;
}

/* The job objects, as `ferryctl jobs --all` reads them: every job, or the
 * queued, granted and running ones only (those a cancel can still stop). */
static int complete_jobs(sd_bus *bus, bool active_only) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(job_list_done) JobList l = {};
        int r;

        r = bus_get_managed_objects(bus, &error, &reply);
        if (r < 0)
                return bus_error_exit("listing jobs", &error, r);
        r = bus_read_managed_objects(reply, FERRY_JOB_INTERFACE, job_fields, _JOB_FIELD_MAX, job_list_add, &l);
        if (r < 0)
                return bus_parse_error_exit("listing jobs", r);

        if (l.n > 1)
                qsort(l.jobs, l.n, sizeof(JobInfo), job_id_compare);
        for (size_t i = 0; i < l.n; i++) {
                if (l.jobs[i].values[JOB_ID].type != VALUE_UINT)
                        continue;
                if (active_only && !job_is_active(l.jobs + i))
                        continue;
                printf("%" PRIu64 "\n", job_uint(l.jobs + i, JOB_ID));
        }
        return finish_output(0);
}

int cmd_complete(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *what = args[0];
        int r;

        if (!streq(what, "nodes") && !streq(what, "vms") && !streq(what, "volumes") &&
            !streq(what, "jobs") && !streq(what, "active-jobs"))
                return usage_error("__complete takes nodes, vms, volumes, jobs or active-jobs, not '%s'", what);

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;
        (void) sd_bus_set_method_call_timeout(bus, COMPLETE_TIMEOUT_USEC);

        if (streq(what, "nodes"))
                return complete_nodes(bus);
        if (streq(what, "vms"))
                return complete_names(bus, "ListVms", "ssssuttu", "listing VMs");
        if (streq(what, "volumes"))
                return complete_names(bus, "ListVolumes", "sssssstsas", "listing volumes");
        return complete_jobs(bus, streq(what, "active-jobs"));
}
