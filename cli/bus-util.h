/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* ferryctl's side of the bus: connecting, turning a failed call into the
 * right message and exit code, and decoding property dictionaries (a{sv})
 * into Values by way of a field table. */

#include <systemd/sd-bus.h>

#include "ferry-bus.h"
#include "node.h"
#include "value.h"

/* Connects to the system bus (DBUS_SYSTEM_BUS_ADDRESS overrides where that
 * is). Returns an exit code, having printed the error if it is not 0. */
int bus_connect(sd_bus **ret);

/* The text to show for a failed call: the server's message if it sent one. */
const char *bus_error_text(const sd_bus_error *error, int r);

/* Prints the error of a failed call and returns the exit code it maps to:
 * ferryd unreachable 3, access denied 4, no such node, VM or job 5 (with
 * ferryd's message, which names it), anything else 1 as "<operation>
 * failed: <message>". operation reads like "setting maintenance on node2". */
int bus_error_exit(const char *operation, const sd_bus_error *error, int r);

/* The call timed out: ferryd may still act on it. */
bool bus_error_is_no_answer(const sd_bus_error *error);

/* For a reply that does not have the documented shape, or for running out of
 * memory while decoding it. Returns 1. */
int bus_parse_error_exit(const char *operation, int r);

/* Decodes the variant at the read position of m into *ret, which must be
 * unset. A variant of a type Value cannot hold is skipped and leaves *ret
 * unset. Returns 1 when a value was stored, 0 when skipped, or -errno. */
int bus_read_variant(sd_bus_message *m, Value *ret);

/* Reads an a{sv} at the read position of m. Properties named in fields are
 * stored at the same index in values (which the caller frees with
 * values_done() also on failure); others are skipped, so a newer ferryd can
 * add properties without breaking an older ferryctl. A property of an
 * unexpected type is left unset, with a warning on stderr. */
int bus_read_properties(sd_bus_message *m, const Field *fields, size_t n, Value *values);

/* org.freedesktop.DBus.Properties.GetAll(interface) on ferryd's object path. */
int bus_get_all_properties(sd_bus *bus, const char *path, const char *interface,
                           sd_bus_error *error, sd_bus_message **reply);

/* org.freedesktop.DBus.ObjectManager.GetManagedObjects on ferryd's root:
 * every object with every interface and all its properties. */
int bus_get_managed_objects(sd_bus *bus, sd_bus_error *error, sd_bus_message **reply);

/* Returns a zeroed array of n Values for one more object, which the caller
 * owns (and frees also when reading fails later), or NULL on OOM. */
typedef Value *(*ObjectAddFunc)(void *userdata);

/* Reads one object's a{sa{sv}} (its interfaces with their properties, as in
 * GetManagedObjects and InterfacesAdded): if it has `interface`, gets an
 * array from add() and fills it as bus_read_properties() does. */
int bus_read_interfaces(sd_bus_message *m, const char *interface,
                        const Field *fields, size_t n, ObjectAddFunc add, void *userdata);

/* Reads GetManagedObjects' a{oa{sa{sv}}}: for every object that has
 * `interface`, gets an array from add() and fills it as
 * bus_read_properties() does. Other objects and interfaces are skipped. */
int bus_read_managed_objects(sd_bus_message *m, const char *interface,
                             const Field *fields, size_t n, ObjectAddFunc add, void *userdata);

/* "/org/ferry/Ferry1/job/17" */
#define BUS_JOB_PATH_MAX (sizeof(FERRY_JOB_PATH_PREFIX) + 1 + 20)
char *bus_job_path(char buf[static BUS_JOB_PATH_MAX], uint64_t id);

/* Cluster.GetNode(name_or_id): the node's object path. The name or id goes
 * to ferryd as typed: it alone knows which nodes exist and how names and ids
 * resolve. Returns an exit code, having printed the error if it is not 0
 * (an unknown node is 5). */
int bus_get_node_path(sd_bus *bus, const char *name_or_id, char **ret_path);

/* GetAll of the node object at path into *ret, which the caller frees with
 * node_info_done() also on failure; name_or_id is for the messages. Returns
 * an exit code, having printed the error if it is not 0. */
int bus_read_node(sd_bus *bus, const char *name_or_id, const char *path, NodeInfo *ret);
