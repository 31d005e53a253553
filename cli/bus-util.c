/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"

#define UNREACHABLE_MESSAGE "cannot reach ferryd on the system bus (is ferryd running?)"

int bus_connect(sd_bus **ret) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                print_error(UNREACHABLE_MESSAGE ": cannot connect to the system bus: %s", strerror(-r));
                return FERRYCTL_EXIT_UNREACHABLE;
        }

        /* Changing calls may need polkit to ask the operator (auth_admin);
         * ferryd decides, this only says that a prompt is acceptable. */
        (void) sd_bus_set_allow_interactive_authorization(bus, true);

        *ret = TAKE_PTR(bus);
        return FERRYCTL_EXIT_SUCCESS;
}

const char *bus_error_text(const sd_bus_error *error, int r) {
        if (error && error->message && *error->message)
                return error->message;
        if (error && error->name)
                return error->name;
        return strerror(r < 0 ? -r : r);
}

static bool errno_is_connection_failure(int r) {
        switch (-r) {
        case ECONNRESET:
        case ECONNREFUSED:
        case ENOTCONN:
        case EPIPE:
        case ESHUTDOWN:
        case EHOSTDOWN:
                return true;
        default:
                return false;
        }
}

static bool error_is_unreachable(const sd_bus_error *error, int r) {
        /* The bus says nobody owns the name (and no .service file would start
         * it), or our connection to the bus broke. */
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_NAME_HAS_NO_OWNER) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_DISCONNECTED) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_NO_SERVER))
                return true;

        /* A local failure sd-bus had no D-Bus name for. Only trust the errno
         * when no remote error is behind it: sd-bus maps remote error names
         * to errnos too. */
        if (!sd_bus_error_is_set(error) || strncmp(error->name, "System.Error.", 13) == 0)
                return errno_is_connection_failure(r);

        return false;
}

int bus_error_exit(const char *operation, const sd_bus_error *error, int r) {
        const char *text = bus_error_text(error, r);

        if (error_is_unreachable(error, r)) {
                print_error(UNREACHABLE_MESSAGE ": %s", text);
                return FERRYCTL_EXIT_UNREACHABLE;
        }

        if (sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED)) {
                print_error("access denied: %s", text);
                return FERRYCTL_EXIT_ACCESS_DENIED;
        }

        /* ferryd is the authority on which nodes, VMs, jobs and volumes
         * exist and its message names the one it did not find; add nothing
         * to it. */
        if (sd_bus_error_has_name(error, FERRY_ERROR_NO_SUCH_NODE) ||
            sd_bus_error_has_name(error, FERRY_ERROR_NO_SUCH_VM) ||
            sd_bus_error_has_name(error, FERRY_ERROR_NO_SUCH_JOB) ||
            sd_bus_error_has_name(error, FERRY_ERROR_NO_SUCH_VOLUME)) {
                print_error("%s", text);
                return FERRYCTL_EXIT_NOT_FOUND;
        }

        print_error("%s failed: %s", operation, text);
        return FERRYCTL_EXIT_FAILURE;
}

bool bus_error_is_no_answer(const sd_bus_error *error) {
        return sd_bus_error_has_name(error, SD_BUS_ERROR_NO_REPLY) ||
               sd_bus_error_has_name(error, SD_BUS_ERROR_TIMEOUT);
}

int bus_parse_error_exit(const char *operation, int r) {
        if (r == -ENOMEM)
                print_error("out of memory");
        else
                print_error("%s: unexpected reply from ferryd: %s", operation, strerror(-r));
        return FERRYCTL_EXIT_FAILURE;
}

static ValueType value_type_from_signature(const char *sig) {
        if (!sig || !sig[0])
                return VALUE_UNSET;

        if (sig[1] == '\0')
                switch (sig[0]) {
                case 's': case 'o': case 'g':
                        return VALUE_STRING;
                case 'b':
                        return VALUE_BOOL;
                case 'y': case 'q': case 'u': case 't':
                        return VALUE_UINT;
                case 'n': case 'i': case 'x':
                        return VALUE_INT;
                case 'd':
                        return VALUE_DOUBLE;
                default:
                        return VALUE_UNSET;
                }

        if (strcmp(sig, "as") == 0)
                return VALUE_STRV;
        if (strcmp(sig, "a(ss)") == 0)
                return VALUE_PAIRS;

        return VALUE_UNSET;
}

/* Reads the basic value at the read position into v, whose type is already
 * set from the signature c. */
static int read_basic(sd_bus_message *m, char c, Value *v) {
        union {
                const char *s;
                int b;
                uint8_t y;
                uint16_t q;
                int16_t n;
                uint32_t u;
                int32_t i;
                uint64_t t;
                int64_t x;
                double d;
        } raw;
        int r;

        r = sd_bus_message_read_basic(m, c, &raw);
        if (r < 0)
                return r;
        if (r == 0)
                return -EBADMSG;

        switch (c) {
        case 's': case 'o': case 'g':
                v->str = strdup(raw.s);
                if (!v->str)
                        return -ENOMEM;
                break;
        case 'b': v->b = raw.b; break;
        case 'y': v->u = raw.y; break;
        case 'q': v->u = raw.q; break;
        case 'u': v->u = raw.u; break;
        case 't': v->u = raw.t; break;
        case 'n': v->i = raw.n; break;
        case 'i': v->i = raw.i; break;
        case 'x': v->i = raw.x; break;
        case 'd': v->d = raw.d; break;
        default:
                return -EINVAL;
        }
        return 0;
}

static void strv_freep(char ***l) {
        for (char **i = *l; i && *i; i++)
                free(*i);
        free(*l);
}

/* a(ss) at the read position into a flat, NULL-terminated list (see
 * VALUE_PAIRS); an empty array is an empty list, not NULL. */
static int read_pairs(sd_bus_message *m, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        size_t n = 0;
        int r;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(ss)");
        if (r < 0)
                return r;

        for (;;) {
                const char *a, *b;
                char **nl;

                r = sd_bus_message_read(m, "(ss)", &a, &b);
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                /* Kept NULL-terminated after every step, so that the
                 * cleanup frees exactly what was copied. */
                nl = reallocarray(l, n + 3, sizeof(char *));
                if (!nl)
                        return -ENOMEM;
                l = nl;
                l[n + 1] = l[n + 2] = NULL;
                l[n] = strdup(a);
                if (!l[n])
                        return -ENOMEM;
                l[n + 1] = strdup(b);
                if (!l[n + 1])
                        return -ENOMEM;
                n += 2;
        }

        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(l);
        return 0;
}

int bus_read_variant(sd_bus_message *m, Value *ret) {
        _cleanup_(value_done) Value v = {};
        const char *contents;
        ValueType type;
        char c;
        int r;

        r = sd_bus_message_peek_type(m, &c, &contents);
        if (r < 0)
                return r;
        if (r == 0 || c != SD_BUS_TYPE_VARIANT)
                return -EBADMSG;

        type = value_type_from_signature(contents);
        if (type == VALUE_UNSET) {
                r = sd_bus_message_skip(m, "v");
                return r < 0 ? r : 0;
        }

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_VARIANT, contents);
        if (r < 0)
                return r;

        if (type == VALUE_STRV) {
                /* Only mark the value as a list once it owns one, so that the
                 * cleanup never frees an uninitialised pointer. */
                char **l = NULL;

                r = sd_bus_message_read_strv(m, &l);
                if (r < 0)
                        return r;
                v.type = VALUE_STRV;
                v.strv = l;
        } else if (type == VALUE_PAIRS) {
                char **l = NULL;

                r = read_pairs(m, &l);
                if (r < 0)
                        return r;
                v.type = VALUE_PAIRS;
                v.strv = l;
        } else {
                /* A string value owns memory only once strdup() succeeded;
                 * until then str is NULL and free(NULL) is fine. */
                v.type = type;
                r = read_basic(m, contents[0], &v);
                if (r < 0)
                        return r;
        }

        r = sd_bus_message_exit_container(m);
        if (r < 0)
                return r;

        *ret = v;
        v = (Value) {};
        return 1;
}

static const Field *field_find(const Field *fields, size_t n, const char *property, size_t *ret_index) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(fields[i].property, property) == 0) {
                        *ret_index = i;
                        return fields + i;
                }
        return NULL;
}

int bus_read_properties(sd_bus_message *m, const Field *fields, size_t n, Value *values) {
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");
        if (r < 0)
                return r;

        for (;;) {
                _cleanup_(value_done) Value v = {};
                const Field *field;
                const char *name;
                size_t i;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                r = sd_bus_message_read_basic(m, SD_BUS_TYPE_STRING, &name);
                if (r < 0)
                        return r;

                field = field_find(fields, n, name, &i);
                if (!field)
                        r = sd_bus_message_skip(m, "v");
                else
                        r = bus_read_variant(m, &v);
                if (r < 0)
                        return r;

                if (field) {
                        if (v.type == field->type) {
                                value_done(values + i);
                                values[i] = v;
                                v = (Value) {};
                        } else
                                /* The contract was broken: say so, but still
                                 * show everything else. */
                                print_error("warning: ferryd sent property %s as %s, expected %s; ignoring it",
                                            name,
                                            v.type == VALUE_UNSET ? "a type ferryctl cannot read" : value_type_to_string(v.type),
                                            value_type_to_string(field->type));
                }

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }

        return sd_bus_message_exit_container(m);
}

int bus_get_all_properties(sd_bus *bus, const char *path, const char *interface,
                           sd_bus_error *error, sd_bus_message **reply) {
        return sd_bus_call_method(bus, FERRY_BUS_NAME, path,
                                  "org.freedesktop.DBus.Properties", "GetAll",
                                  error, reply, "s", interface);
}

int bus_get_managed_objects(sd_bus *bus, sd_bus_error *error, sd_bus_message **reply) {
        return sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                  "org.freedesktop.DBus.ObjectManager", "GetManagedObjects",
                                  error, reply, NULL);
}

int bus_read_interfaces(sd_bus_message *m, const char *interface,
                        const Field *fields, size_t n, ObjectAddFunc add, void *userdata) {
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sa{sv}}");
        if (r < 0)
                return r;

        for (;;) {
                const char *name;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sa{sv}");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                r = sd_bus_message_read_basic(m, SD_BUS_TYPE_STRING, &name);
                if (r < 0)
                        return r;

                if (strcmp(name, interface) == 0) {
                        Value *values = add(userdata);

                        if (!values)
                                return -ENOMEM;
                        r = bus_read_properties(m, fields, n, values);
                } else
                        r = sd_bus_message_skip(m, "a{sv}");
                if (r < 0)
                        return r;

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }

        return sd_bus_message_exit_container(m);
}

int bus_read_managed_objects(sd_bus_message *m, const char *interface,
                             const Field *fields, size_t n, ObjectAddFunc add, void *userdata) {
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{oa{sa{sv}}}");
        if (r < 0)
                return r;

        for (;;) {
                const char *path;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "oa{sa{sv}}");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                r = sd_bus_message_read_basic(m, SD_BUS_TYPE_OBJECT_PATH, &path);
                if (r < 0)
                        return r;

                r = bus_read_interfaces(m, interface, fields, n, add, userdata);
                if (r < 0)
                        return r;

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }

        return sd_bus_message_exit_container(m);
}

char *bus_job_path(char buf[static BUS_JOB_PATH_MAX], uint64_t id) {
        snprintf(buf, BUS_JOB_PATH_MAX, "%s/%" PRIu64, FERRY_JOB_PATH_PREFIX, id);
        return buf;
}

int bus_get_node_path(sd_bus *bus, const char *name_or_id, char **ret_path) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *operation = NULL;
        const char *p;
        char *path;
        int r;

        if (asprintf(&operation, "looking up node '%s'", name_or_id) < 0) {
                operation = NULL;
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                               "GetNode", &error, &reply, "s", name_or_id);
        if (r < 0)
                return bus_error_exit(operation, &error, r);

        r = sd_bus_message_read(reply, "o", &p);
        if (r < 0)
                return bus_parse_error_exit(operation, r);
        /* p points into reply. */
        path = strdup(p);
        if (!path)
                return bus_parse_error_exit(operation, -ENOMEM);

        *ret_path = path;
        return FERRYCTL_EXIT_SUCCESS;
}

int bus_read_node(sd_bus *bus, const char *name_or_id, const char *path, NodeInfo *ret) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *operation = NULL;
        int r;

        if (asprintf(&operation, "reading node '%s'", name_or_id) < 0) {
                operation = NULL;
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        r = bus_get_all_properties(bus, path, FERRY_NODE_INTERFACE, &error, &reply);
        if (r < 0) {
                /* Removed since it was looked up: as unknown as it gets. */
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE)) {
                        print_error("node '%s' disappeared while it was being read: %s",
                                    name_or_id, bus_error_text(&error, r));
                        return FERRYCTL_EXIT_NOT_FOUND;
                }
                return bus_error_exit(operation, &error, r);
        }

        r = bus_read_properties(reply, node_fields, _NODE_FIELD_MAX, ret->values);
        if (r < 0)
                return bus_parse_error_exit(operation, r);
        return FERRYCTL_EXIT_SUCCESS;
}
