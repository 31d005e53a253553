/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl vms: every VM the cluster knows (Cluster.ListVms), as the nodes
 * report them. A VM that two nodes report is listed twice, and in the text
 * output ferryctl warns about it: that must never happen and an operator
 * must see it. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"

enum {
        VM_NAME,
        VM_NODE,
        VM_STATE,
        VM_UUID,
        VM_VCPUS,
        VM_MEMORY,
        VM_DIRTY_RATE,
        VM_CPU_USE,
        _VM_FIELD_MAX,
};

/* ListVms returns structs, not properties: `property` names the member
 * as docs/DBUS.md does. The JSON keys are a contract (docs/ferryctl.md). */
static const Field vm_fields[_VM_FIELD_MAX] = {
        [VM_NAME]       = { "name",       "name",             VALUE_STRING, "Name",       FORMAT_PLAIN },
        [VM_NODE]       = { "node",       "node",             VALUE_STRING, "Node",       FORMAT_PLAIN },
        [VM_STATE]      = { "state",      "state",            VALUE_STRING, "State",      FORMAT_PLAIN },
        [VM_UUID]       = { "uuid",       "uuid",             VALUE_STRING, "UUID",       FORMAT_PLAIN },
        [VM_VCPUS]      = { "vcpus",      "vcpus",            VALUE_UINT,   "vCPUs",      FORMAT_PLAIN },
        [VM_MEMORY]     = { "memory",     "memory",           VALUE_UINT,   "Memory",     FORMAT_BYTES },
        [VM_DIRTY_RATE] = { "dirty rate", "dirty_rate",       VALUE_UINT,   "Dirty rate", FORMAT_RATE },
        [VM_CPU_USE]    = { "CPU use",    "cpu_use_permille", VALUE_UINT,   "CPU",        FORMAT_PERMILLE },
};

static const struct {
        const char *header;
        size_t field;
        bool align_right;
} vm_columns[] = {
        { "NAME",   VM_NAME,       false },
        { "NODE",   VM_NODE,       false },
        { "STATE",  VM_STATE,      false },
        { "VCPUS",  VM_VCPUS,      true  },
        { "MEMORY", VM_MEMORY,     true  },
        { "DIRTY",  VM_DIRTY_RATE, true  },
        { "CPU",    VM_CPU_USE,    true  },
};

typedef struct VmRecord {
        Value values[_VM_FIELD_MAX];
} VmRecord;

typedef struct VmList {
        VmRecord *vms;
        size_t n;
} VmList;

static void vm_list_done(VmList *l) {
        for (size_t i = 0; i < l->n; i++)
                values_done(l->vms[i].values, _VM_FIELD_MAX);
        free(l->vms);
        *l = (VmList) {};
}

static const char *vm_string(const VmRecord *vm, size_t field) {
        return vm->values[field].type == VALUE_STRING ? vm->values[field].str : "";
}

/* By name, then by node: a VM listed twice shows on adjacent lines. */
static int vm_compare(const void *a, const void *b) {
        const VmRecord *x = a, *y = b;
        int c;

        c = strcmp(vm_string(x, VM_NAME), vm_string(y, VM_NAME));
        if (c != 0)
                return c;
        return strcmp(vm_string(x, VM_NODE), vm_string(y, VM_NODE));
}

static int set_string(Value *v, const char *s) {
        char *copy = strdup(s);

        if (!copy)
                return -ENOMEM;
        *v = (Value) { .type = VALUE_STRING, .str = copy };
        return 0;
}

/* name, node, state, uuid, vcpus, memory, dirty rate, CPU use: the
 * members docs/DBUS.md lists, in its order. */
#define VM_STRUCT_SIGNATURE "(ssssuttu)"

static int read_vms(sd_bus_message *m, VmList *l) {
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, VM_STRUCT_SIGNATURE);
        if (r < 0)
                return r;

        for (;;) {
                const char *name, *node, *state, *uuid;
                uint32_t vcpus, cpu_use;
                uint64_t memory, dirty_rate;
                VmRecord *vms, *vm;

                r = sd_bus_message_read(m, VM_STRUCT_SIGNATURE, &name, &node, &state, &uuid,
                                        &vcpus, &memory, &dirty_rate, &cpu_use);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                vms = reallocarray(l->vms, l->n + 1, sizeof(VmRecord));
                if (!vms)
                        return -ENOMEM;
                l->vms = vms;
                vm = l->vms + l->n++;
                *vm = (VmRecord) {};

                if ((r = set_string(vm->values + VM_NAME, name)) < 0 ||
                    (r = set_string(vm->values + VM_NODE, node)) < 0 ||
                    (r = set_string(vm->values + VM_STATE, state)) < 0 ||
                    (r = set_string(vm->values + VM_UUID, uuid)) < 0)
                        return r;
                vm->values[VM_VCPUS] = (Value) { .type = VALUE_UINT, .u = vcpus };
                vm->values[VM_MEMORY] = (Value) { .type = VALUE_UINT, .u = memory };
                vm->values[VM_DIRTY_RATE] = (Value) { .type = VALUE_UINT, .u = dirty_rate };
                vm->values[VM_CPU_USE] = (Value) { .type = VALUE_UINT, .u = cpu_use };
        }

        return sd_bus_message_exit_container(m);
}

/* The VMs more than one node reports, once per name, on stderr. Looks at
 * the whole list, also with --node: the problem is the cluster's. */
static void warn_duplicates(const VmList *l) {
        for (size_t i = 0; i < l->n;) {
                const char *name = vm_string(l->vms + i, VM_NAME);
                size_t j = i + 1;

                while (j < l->n && streq(vm_string(l->vms + j, VM_NAME), name))
                        j++;

                if (j - i > 1) {
                        _cleanup_free_ char *nodes = NULL;
                        size_t len = 0;
                        FILE *f;

                        f = open_memstream(&nodes, &len);
                        if (f) {
                                for (size_t k = i; k < j; k++)
                                        fprintf(f, "%s%s", k > i ? ", " : "", vm_string(l->vms + k, VM_NODE));
                                if (fclose(f) != 0) {
                                        free(nodes);
                                        nodes = NULL;
                                }
                        }
                        print_error("warning: VM '%s' is reported by %zu nodes (%s): it must run on one only",
                                    name, j - i, nodes ? nodes : "?");
                }
                i = j;
        }
}

static bool vm_selected(const VmRecord *vm, const char *node) {
        return !node || streq(vm_string(vm, VM_NODE), node);
}

static int print_vms_human(const VmList *l, const char *node) {
        _cleanup_(table_freep) Table *t = NULL;
        const char *headers[ELEMENTSOF(vm_columns)];
        int r;

        for (size_t c = 0; c < ELEMENTSOF(vm_columns); c++)
                headers[c] = vm_columns[c].header;

        t = table_new(ELEMENTSOF(vm_columns), headers);
        if (!t)
                return -ENOMEM;
        for (size_t c = 0; c < ELEMENTSOF(vm_columns); c++)
                if (vm_columns[c].align_right)
                        table_set_align_right(t, c);

        for (size_t i = 0; i < l->n; i++) {
                if (!vm_selected(l->vms + i, node))
                        continue;

                for (size_t c = 0; c < ELEMENTSOF(vm_columns); c++) {
                        size_t f = vm_columns[c].field;
                        _cleanup_free_ char *text = NULL;

                        /* A dirty rate of 0 is one the hypervisor did not measure. */
                        if (f == VM_DIRTY_RATE && l->vms[i].values[f].u == 0)
                                text = strdup("-");
                        else
                                text = value_format(l->vms[i].values + f, vm_fields[f].format, 0);
                        if (!text)
                                return -ENOMEM;
                        r = table_add_cell(t, text);
                        if (r < 0)
                                return r;
                }
        }

        return table_print(t, stdout);
}

static int print_vms_json(const VmList *l, const char *node) {
        JsonWriter w;

        json_init(&w, stdout, true);
        json_begin_array(&w);
        for (size_t i = 0; i < l->n; i++)
                if (vm_selected(l->vms + i, node))
                        fields_write_json(&w, vm_fields, _VM_FIELD_MAX, l->vms[i].values);
        json_end_array(&w);
        return json_finish(&w);
}

/* The name of the node --node means: ferryd resolves names and ids. */
static int resolve_node(sd_bus *bus, const char *node, char **ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *operation = NULL, *path = NULL;
        const char *p;
        int r;

        if (asprintf(&operation, "looking up node '%s'", node) < 0) {
                operation = NULL;
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                               "GetNode", &error, &reply, "s", node);
        if (r < 0)
                return bus_error_exit(operation, &error, r);

        r = sd_bus_message_read(reply, "o", &p);
        if (r < 0)
                return bus_parse_error_exit(operation, r);
        path = strdup(p);
        if (!path)
                return bus_parse_error_exit(operation, -ENOMEM);

        r = sd_bus_get_property_string(bus, FERRY_BUS_NAME, path, FERRY_NODE_INTERFACE, "Name", &error, ret);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE)) {
                        print_error("node '%s' disappeared while it was being read: %s",
                                    node, bus_error_text(&error, r));
                        return FERRYCTL_EXIT_NOT_FOUND;
                }
                return bus_error_exit(operation, &error, r);
        }

        return FERRYCTL_EXIT_SUCCESS;
}

int cmd_vms(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(vm_list_done) VmList l = {};
        _cleanup_free_ char *node = NULL;
        int r;

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        if (ctx->node) {
                r = resolve_node(bus, ctx->node, &node);
                if (r != FERRYCTL_EXIT_SUCCESS)
                        return r;
        }

        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                               "ListVms", &error, &reply, NULL);
        if (r < 0)
                return bus_error_exit("listing VMs", &error, r);

        /* Say what differs: "unexpected reply" alone does not help anyone
         * find a mismatch between a ferryd and a ferryctl. */
        if (!streq(sd_bus_message_get_signature(reply, true), "a" VM_STRUCT_SIGNATURE)) {
                print_error("listing VMs: unexpected reply from ferryd: a value of type %s, expected %s",
                            sd_bus_message_get_signature(reply, true), "a" VM_STRUCT_SIGNATURE);
                return FERRYCTL_EXIT_FAILURE;
        }

        r = read_vms(reply, &l);
        if (r < 0)
                return bus_parse_error_exit("listing VMs", r);

        if (l.n > 1)
                qsort(l.vms, l.n, sizeof(VmRecord), vm_compare);

        if (ctx->json)
                r = print_vms_json(&l, node);
        else {
                r = print_vms_human(&l, node);
                if (r >= 0)
                        warn_duplicates(&l);
        }
        return finish_output(r);
}
