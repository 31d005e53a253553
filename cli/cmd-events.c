/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl events [--follow]: the cluster events ferryd keeps (RecentEvents),
 * then, with --follow, those it sends from now on (the Event signal), one
 * line each, or one JSON object per line with --json (JSON Lines).
 * ferryctl metrics: GetMetrics, the Prometheus text, as it is. */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-event.h>

#include "bus-util.h"
#include "ferry-bus.h"
#include "ferryctl.h"

#define EVENT_FIELDS_MAX 32

/* One event as read from the bus. */
typedef struct EventInfo {
        uint64_t seq;
        uint64_t timestamp_usec;
        const char *type;               /* points into the message */
        const char *keys[EVENT_FIELDS_MAX];
        Value values[EVENT_FIELDS_MAX];
        size_t n_fields;
} EventInfo;

static void event_info_done(EventInfo *e) {
        values_done(e->values, e->n_fields);
        e->n_fields = 0;
}

/* Reads seq, timestamp, type and the a{sv} of fields at the read position.
 * Fields of a type ferryctl does not know are left out. */
static int read_event(sd_bus_message *m, EventInfo *e) {
        int r;

        r = sd_bus_message_read(m, "tts", &e->seq, &e->timestamp_usec, &e->type);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                Value v = {};

                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                r = bus_read_variant(m, &v);
                if (r < 0)
                        return r;
                if (r > 0 && e->n_fields < EVENT_FIELDS_MAX) {
                        e->keys[e->n_fields] = key;
                        e->values[e->n_fields++] = v;
                } else
                        value_done(&v);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* A value for the human line: strings quoted when they need it. */
static int put_value(FILE *f, const Value *v) {
        if (v->type == VALUE_STRING) {
                bool quote = !*v->str;
                for (const char *p = v->str; *p && !quote; p++)
                        quote = (unsigned char) *p <= ' ' || *p == '"' || *p == '\\' || *p == '=';
                if (!quote)
                        return fputs(v->str, f) < 0 ? -EIO : 0;
                fputc('"', f);
                for (const char *p = v->str; *p; p++) {
                        if (*p == '"' || *p == '\\')
                                fprintf(f, "\\%c", *p);
                        else if ((unsigned char) *p < ' ')
                                fprintf(f, "\\x%02x", (unsigned char) *p);
                        else
                                fputc(*p, f);
                }
                fputc('"', f);
                return 0;
        }
        _cleanup_free_ char *text = value_format(v, FORMAT_PLAIN, 0);
        if (!text)
                return -ENOMEM;
        return fputs(text, f) < 0 ? -EIO : 0;
}

/* "2026-11-21T23:59:41.123456Z" */
static void format_rfc3339(char buf[static 40], uint64_t usec) {
        time_t sec = (time_t) (usec / UINT64_C(1000000));
        struct tm tm;
        char day[32];

        if (!gmtime_r(&sec, &tm) || strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                snprintf(buf, 40, "@%" PRIu64 "us", usec);
        else
                snprintf(buf, 40, "%s.%06" PRIu64 "Z", day, usec % UINT64_C(1000000));
}

static int print_event(const EventInfo *e, bool json) {
        if (json) {
                char time[40];
                JsonWriter w;

                format_rfc3339(time, e->timestamp_usec);
                json_init(&w, stdout, false);
                json_begin_object(&w);
                json_key(&w, "seq");
                json_uint(&w, e->seq);
                json_key(&w, "time");
                json_string(&w, time);
                json_key(&w, "timestamp_usec");
                json_uint(&w, e->timestamp_usec);
                json_key(&w, "type");
                json_string(&w, e->type);
                json_key(&w, "fields");
                json_begin_object(&w);
                for (size_t i = 0; i < e->n_fields; i++) {
                        json_key(&w, e->keys[i]);
                        value_write_json(&w, &e->values[i], NULL);
                }
                json_end_object(&w);
                json_end_object(&w);
                return json_finish(&w);
        }

        char ts[FORMAT_TIMESTAMP_MAX];
        int r = 0;

        printf("%s  %s", format_timestamp(ts, e->timestamp_usec), e->type);
        for (size_t i = 0; r >= 0 && i < e->n_fields; i++) {
                printf("%s%s=", i == 0 ? "  " : " ", e->keys[i]);
                r = put_value(stdout, &e->values[i]);
        }
        if (r >= 0 && (putchar('\n') == EOF || fflush(stdout) != 0))
                r = -EIO;
        return r;
}

/* RecentEvents' a(ttsa{sv}): prints those after *last_seq, and moves it on. */
static int print_event_array(sd_bus_message *reply, bool json, uint64_t *last_seq, int *print_error_r) {
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(ttsa{sv})");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'r', "ttsa{sv}")) > 0) {
                _cleanup_(event_info_done) EventInfo e = {};

                r = read_event(reply, &e);
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
                if (e.seq <= *last_seq)
                        continue;
                *last_seq = e.seq;
                r = print_event(&e, json);
                if (r < 0) {
                        *print_error_r = r;
                        return 0;
                }
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

static int call_recent_events(sd_bus *bus, uint64_t after, sd_bus_message **reply) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int r;

        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                               "RecentEvents", &error, reply, "t", after);
        if (r < 0)
                return bus_error_exit("reading the recent events", &error, r);
        return FERRYCTL_EXIT_SUCCESS;
}

/* ---- --follow ------------------------------------------------------------- */

typedef struct Follow {
        sd_event *event;
        bool json;
        uint64_t last_seq;
        char *owner;                    /* unique bus name of the ferryd last_seq belongs to */
        int exit_code;                  /* -1 while following */
} Follow;

static void follow_stop(Follow *f, int exit_code) {
        if (f->exit_code < 0)
                f->exit_code = exit_code;
        (void) sd_event_exit(f->event, 0);
}

/* Events are numbered per ferryd run: another sender is a new run. */
static int set_owner(Follow *f, const char *owner) {
        char *copy = strdup(owner);

        if (!copy)
                return -ENOMEM;
        free(f->owner);
        f->owner = copy;
        f->last_seq = 0;
        return 0;
}

static int on_event(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(event_info_done) EventInfo e = {};
        Follow *f = userdata;
        const char *sender = sd_bus_message_get_sender(m);
        int r;

        if (sender && (!f->owner || !streq(f->owner, sender)) && set_owner(f, sender) < 0) {
                print_error("out of memory");
                follow_stop(f, FERRYCTL_EXIT_FAILURE);
                return 0;
        }
        r = read_event(m, &e);
        if (r < 0) {
                /* One unreadable signal is not worth stopping for. */
                print_error("warning: ignoring an Event signal ferryctl cannot read: %s", strerror(-r));
                return 0;
        }
        if (e.seq <= f->last_seq)
                return 0;       /* already printed from RecentEvents */
        f->last_seq = e.seq;
        r = print_event(&e, f->json);
        if (r < 0)
                follow_stop(f, finish_output(r));
        return 0;
}

/* NameOwnerChanged(s name, s old_owner, s new_owner) of org.ferry.Ferry1. */
static int on_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Follow *f = userdata;
        const char *name, *old_owner, *new_owner;

        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || !streq(name, FERRY_BUS_NAME))
                return 0;
        if (!*new_owner) {
                print_error("ferryd left the bus (stopped or restarting); waiting for it to come back. "
                            "Events until then are not shown.");
                return 0;
        }
        if (set_owner(f, new_owner) < 0) {
                print_error("out of memory");
                follow_stop(f, FERRYCTL_EXIT_FAILURE);
                return 0;
        }
        print_error("ferryd is back on the bus; following its events again (it numbers them from 1 again).");
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        /* Following ends this way: not an error. */
        follow_stop(userdata, FERRYCTL_EXIT_SUCCESS);
        return 0;
}

static void event_unrefp(sd_event **e) {
        if (*e)
                (void) sd_event_unref(*e);
}

static int follow(sd_bus *bus, bool json) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL, *owner_match = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *sigint = NULL, *sigterm = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_(event_unrefp) sd_event *event = NULL;
        Follow f = { .json = json, .exit_code = -1 };
        sigset_t mask;
        int r, print_r = 0;

        r = sd_event_new(&event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                print_error("cannot set up following the events: %s", strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }
        f.event = event;

        /* Subscribed before the history is read: an event in between is in
         * one of the two, and its number tells which were printed. */
        r = sd_bus_match_signal(bus, &match, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                                "Event", on_event, &f);
        if (r >= 0)
                r = sd_bus_add_match(bus, &owner_match,
                                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
                                     "arg0='" FERRY_BUS_NAME "'",
                                     on_owner_changed, &f);
        if (r < 0) {
                print_error("cannot subscribe to the events: %s", strerror(-r));
                r = sd_bus_is_open(bus) ? FERRYCTL_EXIT_FAILURE : FERRYCTL_EXIT_UNREACHABLE;
                goto finish;
        }

        r = call_recent_events(bus, 0, &reply);
        if (r != FERRYCTL_EXIT_SUCCESS)
                goto finish;
        if (sd_bus_message_get_sender(reply) && set_owner(&f, sd_bus_message_get_sender(reply)) < 0) {
                r = finish_output(-ENOMEM);
                goto finish;
        }
        r = print_event_array(reply, json, &f.last_seq, &print_r);
        if (r < 0) {
                r = bus_parse_error_exit("reading the recent events", r);
                goto finish;
        }
        if (print_r < 0) {
                r = finish_output(print_r);
                goto finish;
        }

        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        r = sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ? negative_errno() : 0;
        if (r >= 0)
                r = sd_event_add_signal(event, &sigint, SIGINT, on_signal, &f);
        if (r >= 0)
                r = sd_event_add_signal(event, &sigterm, SIGTERM, on_signal, &f);
        if (r < 0) {
                print_error("cannot set up following the events: %s", strerror(-r));
                r = FERRYCTL_EXIT_FAILURE;
                goto finish;
        }
        /* The loop ends when the bus connection does. */
        (void) sd_bus_set_exit_on_disconnect(bus, true);

        r = sd_event_loop(event);
        if (f.exit_code >= 0)
                r = f.exit_code;
        else if (!sd_bus_is_open(bus)) {
                print_error("lost the connection to the system bus; stopped following the events");
                r = FERRYCTL_EXIT_UNREACHABLE;
        } else {
                print_error("following the events failed: %s", strerror(r < 0 ? -r : EIO));
                r = FERRYCTL_EXIT_FAILURE;
        }

finish:
        sigint = sd_event_source_unref(sigint);
        sigterm = sd_event_source_unref(sigterm);
        match = sd_bus_slot_unref(match);
        owner_match = sd_bus_slot_unref(owner_match);
        (void) sd_bus_detach_event(bus);
        free(f.owner);
        return r;
}

int cmd_events(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        uint64_t last = 0;
        int r, print_r = 0;

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;
        if (ctx->follow)
                return follow(bus, ctx->json);

        r = call_recent_events(bus, 0, &reply);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;
        r = print_event_array(reply, ctx->json, &last, &print_r);
        if (r < 0)
                return bus_parse_error_exit("reading the recent events", r);
        return finish_output(print_r);
}

int cmd_metrics(const CommandContext *ctx, char **args, unsigned n_args) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *text;
        int r;

        if (ctx->json)
                return usage_error("'metrics' prints the Prometheus text format; --json does not apply");

        r = bus_connect(&bus);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;
        r = sd_bus_call_method(bus, FERRY_BUS_NAME, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE,
                               "GetMetrics", &error, &reply, "");
        if (r < 0)
                return bus_error_exit("reading the metrics", &error, r);
        r = sd_bus_message_read(reply, "s", &text);
        if (r < 0)
                return bus_parse_error_exit("reading the metrics", r);
        return finish_output(fputs(text, stdout) < 0 ? -EIO : 0);
}
