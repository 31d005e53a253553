/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl volumes, ferryctl volume and ferryctl node confirm-fenced: the
 * shared volumes of the cluster, whose ownership ferryd keeps in the
 * replicated state (Cluster.ListVolumes, AddVolume, RemoveVolume,
 * MoveVolume), and the operator's word that a node which left the ring is
 * really down, after which its volumes can be reassigned
 * (Cluster.ConfirmFenced).
 *
 *   volumes                                           every volume
 *   volume NAME                                       one in detail
 *   volume add NAME --kind shared|fs --backing PATH [--owner NODE]
 *   volume remove NAME [--wait]
 *   volume move NAME --to NODE [--wait]
 *   node confirm-fenced NODE
 *
 * --wait reads ListVolumes every VOLUME_POLL_USEC (there are no volume
 * objects to watch) until the move or the removal is over (volume.c
 * decides when that is), for at most VOLUME_WAIT_TIMEOUT_USEC. */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"
#include "node.h"
#include "volume.h"

#define VOLUME_POLL_USEC (250 * UINT64_C(1000))
/* One read that takes longer is taken for a ferryd that does not answer. */
#define VOLUME_CALL_TIMEOUT_USEC (10 * UINT64_C(1000000))
/* How long --wait follows a move or a removal. (A test build may define it
 * shorter.) */
#ifndef VOLUME_WAIT_TIMEOUT_USEC
#define VOLUME_WAIT_TIMEOUT_USEC (120 * UINT64_C(1000000))
#endif

static int oom(void) {
        print_error("out of memory");
        return FERRYCTL_EXIT_FAILURE;
}

/* bus_error_exit(), but a ferryd without the volume methods is told apart
 * from a failure: it is an older version. */
static int volume_error_exit(const char *operation, const sd_bus_error *error, int r) {
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_METHOD)) {
                print_error("%s failed: this ferryd does not know shared volumes (an older version?): %s",
                            operation, bus_error_text(error, r));
                return FERRYCTL_EXIT_FAILURE;
        }
        return bus_error_exit(operation, error, r);
}

/* a(sssssstsas): name, kind, backing, state, owner, target, epoch, error, vms */
static int read_volumes(sd_bus_message *m, VolumeList *l) {
        int r;

        r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "(sssssstsas)");
        if (r < 0)
                return r;

        for (;;) {
                const char *name, *kind, *backing, *state, *owner, *target, *error;
                uint64_t epoch;
                Volume *v;

                r = sd_bus_message_enter_container(m, SD_BUS_TYPE_STRUCT, "sssssstsas");
                if (r < 0)
                        return r;
                if (r == 0)
                        break;

                r = sd_bus_message_read(m, "ssssssts", &name, &kind, &backing, &state, &owner, &target, &epoch, &error);
                if (r < 0)
                        return r;

                v = volume_list_add(l);
                if (!v)
                        return -ENOMEM;
                *v = (Volume) {
                        .name = strdup(name),
                        .known = true,
                        .kind = strdup(kind),
                        .backing = strdup(backing),
                        .state = strdup(state),
                        .owner = strdup(owner),
                        .target = strdup(target),
                        .epoch = epoch,
                        .error = strdup(error),
                };
                if (!v->name || !v->kind || !v->backing || !v->state || !v->owner || !v->target || !v->error)
                        return -ENOMEM;

                r = sd_bus_message_read_strv(m, &v->vms);
                if (r < 0)
                        return r;

                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }

        return sd_bus_message_exit_container(m);
}

/* Cluster.ListVolumes into *l (freed by the caller also on failure).
 * Returns an exit code, having printed the error if it is not 0. */
static int list_volumes(sd_bus *bus, const char *operation, VolumeList *l) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                               "ListVolumes", &error, &reply, NULL);
        if (r < 0)
                return volume_error_exit(operation, &error, r);

        r = read_volumes(reply, l);
        if (r < 0)
                return bus_parse_error_exit(operation, r);

        volume_list_sort(l);
        return FERRYCTL_EXIT_SUCCESS;
}

/* One volume as it is now into *ret (freed by the caller): known stays
 * false when it could not be read, and *ret_gone says whether ferryd no
 * longer lists it. Only for after a change: a failure is a warning. */
static void read_volume_after(sd_bus *bus, const char *name, const char *done, Volume *ret, bool *ret_gone) {
        _cleanup_(volume_list_done) VolumeList l = {};
        const Volume *v;

        *ret_gone = false;
        if (list_volumes(bus, "reading the volume", &l) != FERRYCTL_EXIT_SUCCESS) {
                print_error("warning: %s %s, but reading it failed; see 'ferryctl volume %s'", name, done, name);
                return;
        }

        v = volume_list_find(&l, name);
        if (!v) {
                *ret_gone = true;
                return;
        }
        /* Moved out of the list, which then frees the rest. */
        *ret = *v;
        l.volumes[v - l.volumes] = (Volume) {};
}

static const char *arrow_for(FILE *f) {
        return isatty(fileno(f)) ? "\u2192" : "->";
}

/* ---- volumes ---- */

static int print_volumes_human(const VolumeList *l) {
        static const char *const headers[] = { "NAME", "KIND", "STATE", "OWNER", "EPOCH", "VMS", "BACKING" };
        _cleanup_(table_freep) Table *t = NULL;
        const char *arrow = arrow_for(stdout);
        int r;

        t = table_new(ELEMENTSOF(headers), headers);
        if (!t)
                return -ENOMEM;
        table_set_align_right(t, 4);

        for (size_t i = 0; i < l->n; i++) {
                const Volume *v = l->volumes + i;
                _cleanup_free_ char *state = volume_state_text(v, arrow), *vms = volume_vms_text(v, ",");
                char epoch[32];

                if (!state || !vms)
                        return -ENOMEM;
                snprintf(epoch, sizeof(epoch), "%" PRIu64, v->epoch);
                if ((r = table_add_cell(t, v->name)) < 0 ||
                    (r = table_add_cell(t, v->kind)) < 0 ||
                    (r = table_add_cell(t, state)) < 0 ||
                    (r = table_add_cell(t, v->owner)) < 0 ||
                    (r = table_add_cell(t, epoch)) < 0 ||
                    (r = table_add_cell(t, vms)) < 0 ||
                    (r = table_add_cell(t, v->backing)) < 0)
                        return r;
        }

        r = table_print(t, stdout);
        if (r < 0)
                return r;

        /* A failure is a sentence: below the table, one line per volume. */
        for (size_t i = 0; i < l->n; i++)
                if (l->volumes[i].error && *l->volumes[i].error &&
                    printf("%s: last error: %s\n", l->volumes[i].name, l->volumes[i].error) < 0)
                        return -EIO;
        return 0;
}

int cmd_volumes(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(volume_list_done) VolumeList l = {};
        int r;

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        r = list_volumes(bus, "listing volumes", &l);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        if (ctx->json) {
                JsonWriter w;

                json_init(&w, stdout, true);
                json_begin_array(&w);
                for (size_t i = 0; i < l.n; i++)
                        volume_write_json(&w, l.volumes + i);
                json_end_array(&w);
                r = json_finish(&w);
        } else
                r = print_volumes_human(&l);
        return finish_output(r);
}

/* ---- volume NAME ---- */

static int volume_show(const CommandContext *ctx, sd_bus *bus, const char *name) {
        _cleanup_(volume_list_done) VolumeList l = {};
        const Volume *v;
        int r;

        r = list_volumes(bus, "reading volumes", &l);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        v = volume_list_find(&l, name);
        if (!v) {
                /* "volume remove" without its NAME reads as a volume
                 * called "remove": say what was probably meant. */
                if (streq(name, "add") || streq(name, "remove") || streq(name, "move"))
                        print_error("no such volume: %s (to %s a volume: 'ferryctl volume %s NAME ...')",
                                    name, name, name);
                else
                        print_error("no such volume: %s", name);
                return FERRYCTL_EXIT_NOT_FOUND;
        }

        if (ctx->json) {
                JsonWriter w;

                json_init(&w, stdout, true);
                volume_write_json(&w, v);
                r = json_finish(&w);
        } else
                r = volume_print_detail(v, stdout);
        return finish_output(r);
}

/* ---- changes ---- */

/* Calls a Cluster method that changes the replicated state, with the time
 * a commit may take. */
static int call_change(sd_bus *bus, const char *method, sd_bus_error *error, sd_bus_message **reply,
                       const char *types, ...) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        va_list ap;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                           FERRY_CLUSTER_INTERFACE, method);
        if (r < 0)
                return r;
        va_start(ap, types);
        r = sd_bus_message_appendv(m, types, ap);
        va_end(ap);
        if (r < 0)
                return r;

        return sd_bus_call(bus, m, FERRYCTL_COMMIT_TIMEOUT_USEC, error, reply);
}

/* The error of a failed change; no answer is not a "no": the change may
 * have been proposed and may still commit. */
static int change_error_exit(const char *operation, const sd_bus_error *error, int r, const char *check) {
        if (bus_error_is_no_answer(error)) {
                print_error("%s: no answer from ferryd (%s); the change may still be committed, check with '%s'",
                            operation, bus_error_text(error, r), check);
                return FERRYCTL_EXIT_FAILURE;
        }
        if (!sd_bus_error_is_set(error)) {
                /* Building the call failed (a name that is not UTF-8, OOM). */
                print_error("%s failed: %s", operation, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }
        return volume_error_exit(operation, error, r);
}

static int print_volume_json(const Volume *v, const char *name) {
        Volume unknown = { .name = (char *) name };
        JsonWriter w;

        json_init(&w, stdout, true);
        volume_write_json(&w, v->known ? v : &unknown);
        return json_finish(&w);
}

static int volume_add(const CommandContext *ctx, sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(volume_done) Volume v = {};
        _cleanup_free_ char *operation = NULL, *check = NULL, *state = NULL;
        bool gone;
        int r;

        if (asprintf(&operation, "adding volume '%s'", name) < 0) {
                operation = NULL;
                return oom();
        }
        if (asprintf(&check, "ferryctl volume %s", name) < 0) {
                check = NULL;
                return oom();
        }

        r = call_change(bus, "AddVolume", &error, NULL, "ssss", name, ctx->kind, ctx->backing,
                        ctx->owner ? ctx->owner : "");
        if (r < 0)
                return change_error_exit(operation, &error, r, check);

        /* Committed; its owner activates it now (acquiring, then owned). */
        read_volume_after(bus, name, "was added", &v, &gone);
        if (ctx->json)
                return finish_output(print_volume_json(&v, name));
        if (!v.known)
                return finish_output(printf("%s: added\n", name) < 0 ? -EIO : 0);

        state = volume_state_explained(&v);
        if (!state)
                return finish_output(-ENOMEM);
        r = printf("%s: added (%s, %s): %s, epoch %" PRIu64 "\n", name, v.kind, v.backing, state, v.epoch);
        return finish_output(r < 0 ? -EIO : 0);
}

/* ---- --wait ---- */

typedef struct Waiter {
        sd_bus *bus;
        sd_event *event;
        VolumeWait wait;
        bool json;

        Volume last;               /* as read last; known: it was read at all */
        bool gone;                 /* ferryd no longer lists it */

        FILE *out;                 /* where the progress goes; NULL: nowhere */
        char *last_line;           /* the progress line printed last */

        sd_bus_slot *slot;         /* a ListVolumes in flight */
        char *failing;             /* the error of the last read; NULL: it worked */
        uint64_t started;          /* CLOCK_MONOTONIC */
        sd_event_source *timer, *sigint, *sigterm;
        sigset_t saved_mask;
        bool mask_set;
        bool attached;

        int exit_code;             /* -1 while waiting */
} Waiter;

static void waiter_done(Waiter *w) {
        w->timer = sd_event_source_unref(w->timer);
        w->sigint = sd_event_source_unref(w->sigint);
        w->sigterm = sd_event_source_unref(w->sigterm);
        w->slot = sd_bus_slot_unref(w->slot);
        /* The event sources go before the bus leaves the loop. */
        if (w->attached)
                (void) sd_bus_detach_event(w->bus);
        if (w->event)
                w->event = sd_event_unref(w->event);
        if (w->mask_set)
                (void) sigprocmask(SIG_SETMASK, &w->saved_mask, NULL);
        volume_wait_done(&w->wait);
        volume_done(&w->last);
        free(w->last_line);
        free(w->failing);
}

static void waiter_stop(Waiter *w, int exit_code) {
        w->exit_code = exit_code;
        (void) sd_event_exit(w->event, 0);
}

static const char *waiter_what(const Waiter *w) {
        return w->wait.kind == VOLUME_WAIT_MOVE ? "move" : "removal";
}

static void waiter_finish(Waiter *w, VolumeWaitResult result) {
        char elapsed[FORMAT_DURATION_MAX];
        int code = result == VOLUME_WAIT_DONE ? FERRYCTL_EXIT_SUCCESS : FERRYCTL_EXIT_FAILURE;
        int r = 0;

        format_duration(elapsed, clock_monotonic_usec() - w->started);

        if (w->json) {
                JsonWriter jw;

                /* As without --wait: a volume object, or the small object
                 * of a removal. */
                json_init(&jw, stdout, w->wait.kind == VOLUME_WAIT_MOVE);
                if (w->wait.kind == VOLUME_WAIT_MOVE) {
                        Volume unknown = { .name = (char *) w->wait.name };

                        volume_write_json(&jw, w->gone ? &unknown : &w->last);
                } else {
                        json_begin_object(&jw);
                        json_key(&jw, "name");
                        json_string(&jw, w->wait.name);
                        json_key(&jw, "removed");
                        json_bool(&jw, w->gone);
                        json_end_object(&jw);
                }
                r = json_finish(&jw);
        }

        if (result == VOLUME_WAIT_DONE) {
                if (!w->json && w->wait.kind == VOLUME_WAIT_MOVE && w->wait.from)
                        r = printf("%s: moved from %s to %s in %s (epoch %" PRIu64 ")\n", w->wait.name, w->wait.from,
                                   w->wait.destination, elapsed, w->last.epoch) < 0 ? -EIO : 0;
                else if (!w->json && w->wait.kind == VOLUME_WAIT_MOVE)
                        r = printf("%s: moved to %s in %s (epoch %" PRIu64 ")\n", w->wait.name,
                                   w->wait.destination, elapsed, w->last.epoch) < 0 ? -EIO : 0;
                else if (!w->json)
                        r = printf("%s: removed in %s\n", w->wait.name, elapsed) < 0 ? -EIO : 0;
        } else {
                _cleanup_free_ char *why = volume_wait_failure(&w->wait, w->gone ? NULL : &w->last);

                if (why)
                        print_error("%s", why);
                else
                        r = -ENOMEM;
        }

        r = finish_output(r);
        waiter_stop(w, r != FERRYCTL_EXIT_SUCCESS ? r : code);
}

/* A line per state on the way. */
static void waiter_progress(Waiter *w) {
        _cleanup_free_ char *line = NULL;

        if (!w->out)
                return;
        line = volume_progress_line(&w->wait, &w->last);
        if (!line || (w->last_line && streq(w->last_line, line)))
                return;
        fprintf(w->out, "%s\n", line);
        fflush(w->out);
        free(w->last_line);
        w->last_line = TAKE_PTR(line);
}

static void waiter_update(Waiter *w) {
        VolumeWaitResult result;

        if (volume_wait_check(&w->wait, w->gone ? NULL : &w->last, &result) < 0) {
                waiter_stop(w, oom());
                return;
        }
        if (result != VOLUME_WAIT_GOING) {
                waiter_finish(w, result);
                return;
        }
        waiter_progress(w);
}

static void waiter_read_failed(Waiter *w, const sd_bus_error *error, int r) {
        char operation[128];

        /* What does not pass by waiting: stop at once. Anything else
         * (ferryd restarting, a busy node) may pass: the timeout bounds it. */
        if (!sd_bus_is_open(w->bus) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_ACCESS_DENIED) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_METHOD)) {
                snprintf(operation, sizeof(operation), "following the %s of %s", waiter_what(w), w->wait.name);
                r = volume_error_exit(operation, error, r);
                print_error("the %s goes on without ferryctl: see 'ferryctl volume %s'", waiter_what(w), w->wait.name);
                waiter_stop(w, r);
                return;
        }

        /* Once per streak of failures: the progress says why nothing moves. */
        if (!w->failing && w->out) {
                fprintf(w->out, "%s: cannot read it: %s; trying again\n", w->wait.name, bus_error_text(error, r));
                fflush(w->out);
        }
        free(w->failing);
        w->failing = strdup(bus_error_text(error, r));
}

static int on_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(volume_list_done) VolumeList l = {};
        Waiter *w = userdata;
        const Volume *v;
        int r;

        w->slot = sd_bus_slot_unref(w->slot);
        if (w->exit_code >= 0)
                return 0;

        if (sd_bus_message_is_method_error(m, NULL)) {
                waiter_read_failed(w, sd_bus_message_get_error(m), -sd_bus_message_get_errno(m));
                return 0;
        }

        r = read_volumes(m, &l);
        if (r < 0) {
                waiter_stop(w, bus_parse_error_exit("following the volume", r));
                return 0;
        }
        free(w->failing);
        w->failing = NULL;

        v = volume_list_find(&l, w->wait.name);
        w->gone = !v;
        if (v) {
                volume_done(&w->last);
                w->last = *v;
                l.volumes[v - l.volumes] = (Volume) {};
        }
        waiter_update(w);
        return 0;
}

static void waiter_read(Waiter *w) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (w->slot || w->exit_code >= 0)
                return;

        r = sd_bus_message_new_method_call(w->bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                           FERRY_CLUSTER_INTERFACE, "ListVolumes");
        if (r >= 0)
                r = sd_bus_call_async(w->bus, &w->slot, m, on_reply, w, VOLUME_CALL_TIMEOUT_USEC);
        if (r < 0) {
                if (!sd_bus_is_open(w->bus))
                        print_error("lost the connection to the system bus while following the %s of %s; "
                                    "it goes on: see 'ferryctl volume %s'", waiter_what(w), w->wait.name, w->wait.name);
                else
                        print_error("cannot read volume %s: %s", w->wait.name, strerror(-r));
                waiter_stop(w, sd_bus_is_open(w->bus) ? FERRYCTL_EXIT_FAILURE : FERRYCTL_EXIT_UNREACHABLE);
        }
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Waiter *w = userdata;
        int r;

        if (w->exit_code >= 0)
                return 0;
        if (clock_monotonic_usec() - w->started >= VOLUME_WAIT_TIMEOUT_USEC) {
                _cleanup_free_ char *what = volume_waits_for(&w->wait, w->last.known && !w->gone ? &w->last : NULL);
                char timeout[FORMAT_DURATION_MAX];

                format_duration(timeout, VOLUME_WAIT_TIMEOUT_USEC);
                print_error("gave up after %s waiting for %s%s%s; the %s goes on: see 'ferryctl volume %s'",
                            timeout, what ? what : w->wait.name,
                            w->failing ? "; the last read failed: " : "", w->failing ? w->failing : "",
                            waiter_what(w), w->wait.name);
                waiter_stop(w, FERRYCTL_EXIT_FAILURE);
                return 0;
        }

        r = sd_event_source_set_time(s, usec + VOLUME_POLL_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (r < 0) {
                print_error("cannot keep following volume %s: %s", w->wait.name, strerror(-r));
                waiter_stop(w, FERRYCTL_EXIT_FAILURE);
                return 0;
        }

        waiter_read(w);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Waiter *w = userdata;

        print_error("stopped following the %s of %s; the %s goes on. See where it is with 'ferryctl volume %s'",
                    waiter_what(w), w->wait.name, waiter_what(w), w->wait.name);
        waiter_stop(w, FERRYCTL_EXIT_INTERRUPTED);
        return 0;
}

/* Follows the move or the removal that was just committed to its end.
 * Returns the exit code: 0 done, 1 it failed or the wait gave up, 130
 * interrupted, or that of the error that stopped it. */
static int volume_wait(sd_bus *bus, const CommandContext *ctx, VolumeWaitKind kind, const char *name,
                       const char *destination) {
        _cleanup_(waiter_done) Waiter w = {
                .bus = bus,
                .wait = { .kind = kind, .name = name, .destination = destination },
                .json = ctx->json,
                .exit_code = -1,
        };
        sigset_t mask;
        int r;

        /* Progress for a human: on stdout, or with --json (stdout is for the
         * result) on stderr if that is a terminal. */
        if (!ctx->json)
                w.out = stdout;
        else if (isatty(STDERR_FILENO))
                w.out = stderr;

        r = sd_event_new(&w.event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, w.event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                print_error("cannot set up following volume %s: %s", name, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }
        w.attached = true;

        /* Ctrl-C stops ferryctl, not the move. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, &w.saved_mask) < 0) {
                r = negative_errno();
                print_error("cannot set up following volume %s: %s", name, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }
        w.mask_set = true;

        r = sd_event_add_signal(w.event, &w.sigint, SIGINT, on_signal, &w);
        if (r >= 0)
                r = sd_event_add_signal(w.event, &w.sigterm, SIGTERM, on_signal, &w);
        /* The first read at once. */
        if (r >= 0)
                r = sd_event_add_time_relative(w.event, &w.timer, CLOCK_MONOTONIC, 0, 0, on_timer, &w);
        if (r < 0) {
                print_error("cannot set up following volume %s: %s", name, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        w.started = clock_monotonic_usec();
        r = sd_event_loop(w.event);
        if (r < 0 && w.exit_code < 0) {
                print_error("following volume %s failed: %s", name, strerror(-r));
                w.exit_code = FERRYCTL_EXIT_FAILURE;
        }
        return w.exit_code;
}

/* ---- remove, move ---- */

static int volume_remove(const CommandContext *ctx, sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(volume_done) Volume v = {};
        _cleanup_free_ char *operation = NULL, *check = NULL, *state = NULL;
        bool gone;
        int r;

        if (asprintf(&operation, "removing volume '%s'", name) < 0) {
                operation = NULL;
                return oom();
        }
        if (asprintf(&check, "ferryctl volume %s", name) < 0) {
                check = NULL;
                return oom();
        }

        r = call_change(bus, "RemoveVolume", &error, NULL, "s", name);
        if (r < 0)
                return change_error_exit(operation, &error, r, check);

        if (ctx->wait)
                return volume_wait(bus, ctx, VOLUME_WAIT_REMOVE, name, NULL);

        /* Committed: its owner lets go of it, then it is gone. */
        read_volume_after(bus, name, "is being removed", &v, &gone);
        if (ctx->json) {
                JsonWriter w;

                json_init(&w, stdout, false);
                json_begin_object(&w);
                json_key(&w, "name");
                json_string(&w, name);
                json_key(&w, "removed");
                if (gone || v.known)
                        json_bool(&w, gone);
                else
                        json_null(&w);
                json_end_object(&w);
                return finish_output(json_finish(&w));
        }

        if (gone)
                r = printf("%s: removed\n", name);
        else if (v.known) {
                state = volume_state_explained(&v);
                if (!state)
                        return finish_output(-ENOMEM);
                r = printf("%s: being removed: %s. See where it is with 'ferryctl volume %s'\n", name, state, name);
        } else
                r = printf("%s: being removed\n", name);
        return finish_output(r < 0 ? -EIO : 0);
}

/* The name of the node given as a name or an id (Cluster.GetNode, then its
 * Name): what ListVolumes reports, so that --wait knows the move arrived. */
static int node_name(sd_bus *bus, const char *name_or_id, char **ret) {
        _cleanup_(node_info_done) NodeInfo info = {};
        _cleanup_free_ char *path = NULL;
        const char *name;
        int r;

        r = bus_get_node_path(bus, name_or_id, &path);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;
        r = bus_read_node(bus, name_or_id, path, &info);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        name = node_string(&info, NODE_NAME);
        *ret = strdup(*name ? name : name_or_id);
        return *ret ? FERRYCTL_EXIT_SUCCESS : oom();
}

static int volume_move(const CommandContext *ctx, sd_bus *bus, const char *name) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(volume_done) Volume v = {};
        _cleanup_free_ char *operation = NULL, *check = NULL, *to = NULL, *line = NULL;
        bool gone;
        int r;

        r = node_name(bus, ctx->to, &to);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        if (asprintf(&operation, "moving volume '%s' to %s", name, to) < 0) {
                operation = NULL;
                return oom();
        }
        if (asprintf(&check, "ferryctl volume %s", name) < 0) {
                check = NULL;
                return oom();
        }

        r = call_change(bus, "MoveVolume", &error, NULL, "ss", name, to);
        if (r < 0)
                return change_error_exit(operation, &error, r, check);

        if (ctx->wait)
                return volume_wait(bus, ctx, VOLUME_WAIT_MOVE, name, to);

        /* Committed: the owner lets go of it, then the destination takes it. */
        read_volume_after(bus, name, "is moving", &v, &gone);
        if (ctx->json)
                return finish_output(print_volume_json(&v, name));
        if (!v.known)
                return finish_output(printf("%s: moving to %s\n", name, to) < 0 ? -EIO : 0);

        line = volume_progress_line(&(VolumeWait) { .kind = VOLUME_WAIT_MOVE, .name = name, .destination = to }, &v);
        if (!line)
                return finish_output(-ENOMEM);
        r = printf("%s\nSee where it is with 'ferryctl volume %s'\n", line, name);
        return finish_output(r < 0 ? -EIO : 0);
}

/* ---- volume ---- */

static const char *const verbs[] = { "add", "remove", "move" };

static bool is_verb(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i], s))
                        return true;
        return false;
}

static int usage_of(const char *verb) {
        if (streq(verb, "add"))
                return usage_error("usage: ferryctl volume add NAME --kind shared|fs --backing PATH [--owner NODE]");
        if (streq(verb, "remove"))
                return usage_error("usage: ferryctl volume remove NAME [--wait]");
        if (streq(verb, "move"))
                return usage_error("usage: ferryctl volume move NAME --to NODE [--wait]");
        return usage_error("usage: ferryctl volume NAME, or ferryctl volume add|remove|move NAME [OPTIONS]");
}

/* Every option of `volume` belongs to one or two of its forms: the option
 * table only knows the command. */
static int check_options(const CommandContext *ctx, const char *verb) {
        const struct {
                const char *option;
                bool given;
                const char *verbs[2];   /* the forms it belongs to */
        } table[] = {
                { "--kind",    ctx->kind != NULL,    { "add" } },
                { "--backing", ctx->backing != NULL, { "add" } },
                { "--owner",   ctx->owner != NULL,   { "add" } },
                { "--to",      ctx->to != NULL,      { "move" } },
                { "--wait",    ctx->wait,            { "remove", "move" } },
        };

        for (size_t i = 0; i < ELEMENTSOF(table); i++) {
                if (!table[i].given)
                        continue;
                if (!verb)
                        return usage_error("option '%s' does not apply to 'volume NAME' (it shows a volume)",
                                           table[i].option);
                if (!streq(table[i].verbs[0], verb) && !(table[i].verbs[1] && streq(table[i].verbs[1], verb)))
                        return usage_error("option '%s' does not apply to 'volume %s'", table[i].option, verb);
        }

        if (verb && streq(verb, "add")) {
                if (!ctx->kind || !ctx->backing)
                        return usage_of(verb);
                if (!streq(ctx->kind, "shared") && !streq(ctx->kind, "fs"))
                        return usage_error("--kind takes 'shared' or 'fs', not '%s'", ctx->kind);
                if (!*ctx->backing)
                        return usage_error("--backing needs the device or path of the volume");
                if (ctx->owner && !*ctx->owner)
                        return usage_error("--owner needs a node name or id");
        }
        if (verb && streq(verb, "move") && !ctx->to)
                return usage_of(verb);
        return FERRYCTL_EXIT_SUCCESS;
}

int cmd_volume(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        const char *verb = n_args == 2 ? args[0] : NULL, *name = args[n_args - 1];
        int r;

        /* Arguments are checked before connecting: a usage error is one
         * even without a bus. With one argument it is always a name, also
         * "add": but options of a verb show what was meant. */
        if (verb && !is_verb(verb))
                return usage_error("volume takes add, remove or move before NAME, not '%s'", verb);
        if (!verb && is_verb(name) && (ctx->kind || ctx->backing || ctx->owner || ctx->to || ctx->wait))
                return usage_of(name);
        r = check_options(ctx, verb);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;
        if (!volume_name_is_valid(name))
                return usage_error("'%s' is not a valid volume name: 1 to %d of A-Z a-z 0-9 . _ -, "
                                   "not starting with '.' or '-'", name, VOLUME_NAME_MAX);

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        if (!verb)
                return volume_show(ctx, bus, name);
        if (streq(verb, "add"))
                return volume_add(ctx, bus, name);
        if (streq(verb, "remove"))
                return volume_remove(ctx, bus, name);
        return volume_move(ctx, bus, name);
}

/* ---- node confirm-fenced ---- */

static int confirm_fenced(const CommandContext *ctx, const char *node) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *operation = NULL;
        uint32_t released;
        int r;

        if (!*node)
                return usage_error("node confirm-fenced needs a node name or id");

        if (asprintf(&operation, "confirming node '%s' fenced", node) < 0) {
                operation = NULL;
                return oom();
        }

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        r = call_change(bus, "ConfirmFenced", &error, &reply, "s", node);
        if (r < 0)
                return change_error_exit(operation, &error, r, "ferryctl volumes");

        r = sd_bus_message_read(reply, "u", &released);
        if (r < 0)
                return bus_parse_error_exit(operation, r);

        if (ctx->json) {
                JsonWriter w;

                json_init(&w, stdout, false);
                json_begin_object(&w);
                json_key(&w, "node");
                json_string(&w, node);
                json_key(&w, "volumes_released");
                json_uint(&w, released);
                json_end_object(&w);
                return finish_output(json_finish(&w));
        }

        r = printf("%s confirmed fenced: %" PRIu32 " volume%s can be reassigned\n",
                   node, released, released == 1 ? "" : "s");
        return finish_output(r < 0 ? -EIO : 0);
}

int cmd_node_or_confirm_fenced(const CommandContext *ctx, char **args, unsigned n_args) {
        /* One argument is a node, also one named "confirm-fenced". */
        if (n_args == 1)
                return cmd_node(ctx, args, n_args);
        if (!streq(args[0], "confirm-fenced"))
                return usage_error("usage: ferryctl node NAME|ID, or ferryctl node confirm-fenced NAME|ID");
        return confirm_fenced(ctx, args[1]);
}
