/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bus-events.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "events.h"
#include "ferry-build.h"
#include "ferry-bus.h"
#include "log.h"
#include "macro.h"
#include "metrics.h"

/* Delay of the first write of metrics_file after start. */
#define METRICS_FIRST_WRITE_USEC (1 * UINT64_C(1000000))

struct EventsContext {
        EventsSummary *summary;
        EventRing recent;
        uint64_t seq;
        MetricsCounters counters;
        /* stderr is the journal: events go there natively, with fields. */
        bool journal;
        sd_event_source *metrics_timer;
        int metrics_error;              /* of the last write, logged once */
        bool metrics_written;
};

static uint64_t now_realtime_usec(void) {
        struct timespec ts;
        if (clock_gettime(CLOCK_REALTIME, &ts) < 0)
                return 0;
        return (uint64_t) ts.tv_sec * UINT64_C(1000000) + (uint64_t) ts.tv_nsec / 1000;
}

/* ---- the bus ---------------------------------------------------------------- */

static int append_event(sd_bus_message *m, const Event *e, bool in_struct) {
        int r;

        if (in_struct) {
                r = sd_bus_message_open_container(m, 'r', "ttsa{sv}");
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_append(m, "tts", e->seq, e->timestamp_usec, e->type);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        for (size_t i = 0; r >= 0 && i < e->n_fields; i++) {
                const EventField *f = &e->fields[i];
                char sig[2] = { f->type, 0 };

                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", f->key);
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'v', sig);
                if (r >= 0) {
                        if (f->type == 's')
                                r = sd_bus_message_append(m, "s", f->s);
                        else if (f->type == 'u')
                                r = sd_bus_message_append(m, "u", (uint32_t) f->u);
                        else if (f->type == 'b')
                                r = sd_bus_message_append(m, "b", (int) !!f->u);
                        else
                                r = sd_bus_message_append(m, "t", f->u);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0 && in_struct)
                r = sd_bus_message_close_container(m);
        return r;
}

static int method_recent_events(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Daemon *d = userdata;
        EventsContext *c = d->events;
        uint64_t after;
        int r;

        r = sd_bus_message_read(m, "t", &after);
        if (r < 0)
                return r;
        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ttsa{sv})");
        for (size_t i = 0; r >= 0 && i < c->recent.n; i++) {
                const Event *e = event_ring_get(&c->recent, i);
                if (e->seq > after)
                        r = append_event(reply, e, true);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static char *render_metrics(Daemon *d) {
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n_ids = 0;

        if (daemon_node_ids(d, &ids, &n_ids) < 0)
                return NULL;
        MetricsView v = {
                .state = d->replica ? replica_state(d->replica) : NULL,
                .quorate = daemon_is_quorate(d),
                .members = d->replica ? (uint32_t) replica_n_members(d->replica) : 0,
                .nodes = (uint32_t) n_ids,
                .version = FERRY_VERSION,
        };
        return metrics_render(&d->events->counters, &v);
}

static int method_get_metrics(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_free_ char *text = render_metrics(userdata);

        if (!text)
                return -ENOMEM;
        return sd_bus_reply_method_return(m, "s", text);
}

static const sd_bus_vtable events_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_METHOD_WITH_ARGS("RecentEvents", SD_BUS_ARGS("t", after_seq), SD_BUS_RESULT("a(ttsa{sv})", events),
                                method_recent_events, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_ARGS("GetMetrics", SD_BUS_NO_ARGS, SD_BUS_RESULT("s", text),
                                method_get_metrics, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_ARGS("Event",
                                SD_BUS_ARGS("t", seq, "t", timestamp_usec, "s", type, "a{sv}", fields), 0),
        SD_BUS_VTABLE_END
};

static void send_signal(Daemon *d, const Event *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (!d->bus)
                return;
        r = sd_bus_message_new_signal(d->bus, &m, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE, "Event");
        if (r >= 0)
                r = append_event(m, e, false);
        if (r >= 0)
                r = sd_bus_send(d->bus, m, NULL);
        if (r < 0)
                log_debug_errno(r, "Failed to send the Event signal %" PRIu64 ": %m", e->seq);
}

/* ---- the log ---------------------------------------------------------------- */

/* FERRY_JOB_ID, FERRY_VM, ...: the field's key in capitals; the job's id
 * is JOB_ID, as FERRY_JOB alone would read like a name. */
static char *journal_field(const EventField *f) {
        char key[64], *s = NULL;
        size_t n = 0;

        for (const char *p = streq(f->key, "job") ? "job_id" : f->key; *p && n + 1 < sizeof(key); p++)
                key[n++] = (char) toupper((unsigned char) *p);
        key[n] = 0;
        if (f->type == 's')
                return asprintf(&s, "FERRY_%s=%s", key, f->s) < 0 ? NULL : s;
        return asprintf(&s, "FERRY_%s=%" PRIu64, key, f->u) < 0 ? NULL : s;
}

static int send_to_journal(const Event *e, int priority, const char *text) {
        char *strings[EVENT_FIELDS_MAX + 5] = {};
        struct iovec iov[EVENT_FIELDS_MAX + 5];
        size_t n = 0;
        int r = -ENOMEM;

        if (asprintf(&strings[n++], "MESSAGE=%s", text) < 0 ||
            asprintf(&strings[n++], "PRIORITY=%d", priority) < 0 ||
            asprintf(&strings[n++], "SYSLOG_IDENTIFIER=%s", program_invocation_short_name) < 0 ||
            asprintf(&strings[n++], "FERRY_EVENT=%s", e->type) < 0 ||
            asprintf(&strings[n++], "FERRY_EVENT_SEQ=%" PRIu64, e->seq) < 0) {
                strings[n - 1] = NULL;
                goto done;
        }
        for (size_t i = 0; i < e->n_fields; i++)
                if (!(strings[n++] = journal_field(&e->fields[i])))
                        goto done;
        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec) { .iov_base = strings[i], .iov_len = strlen(strings[i]) };
        r = sd_journal_sendv(iov, (int) n);
done:
        for (size_t i = 0; i < ELEMENTSOF(strings); i++)
                free(strings[i]);
        return r;
}

/* One line per event in ferryd's log; under systemd the journal's copy
 * carries the fields, so `journalctl FERRY_VM=web1` finds it. */
static void log_event(EventsContext *c, const Event *e) {
        _cleanup_free_ char *fields = event_format_fields(e, true), *text = NULL;
        int priority = event_priority(e);

        if (!fields || asprintf(&text, "Event %s: %s", e->type, fields) < 0) {
                log_error("Out of memory logging event %s", e->type);
                return;
        }
        if (c->journal) {
                int r = send_to_journal(e, priority, text);
                if (r >= 0) {
                        /* The blackbox and syslog still get the line. */
                        log_except_stderr(priority, text);
                        return;
                }
                log_debug_errno(r, "Failed to send an event to the journal, logging it to stderr: %m");
        }
        qb_log(priority, "%s", text);
}

/* ---- events ----------------------------------------------------------------- */

static const char *node_name(uint32_t id, void *userdata) {
        return daemon_node_name(userdata, id);
}

void bus_events_update(Daemon *d) {
        EventsContext *c = d->events;
        EventList list = {};
        int r;

        if (!c || !d->replica)
                return;
        ReplicaMode mode = replica_mode(d->replica);
        EventsView view = {
                .state = replica_state(d->replica),
                .members = replica_members(d->replica),
                .n_members = replica_n_members(d->replica),
                .detached = mode == REPLICA_DETACHED,
                .syncing = mode == REPLICA_SYNCING,
                .quorate = daemon_is_quorate(d),
                .quorum_votes = replica_quorum_votes(d->replica),
                .node_name = node_name,
                .userdata = d,
        };
        r = events_diff(c->summary, &view, &list);
        if (r < 0) {
                log_warning_errno(r, "Failed to work out the events of a change of the cluster: %m");
                return;
        }
        uint64_t now = now_realtime_usec();
        for (size_t i = 0; i < list.n; i++) {
                Event *e = &list.events[i];

                e->seq = ++c->seq;
                e->timestamp_usec = now;
                log_event(c, e);
                metrics_observe(&c->counters, e);
                send_signal(d, e);
                event_ring_push(&c->recent, e);
        }
        free(list.events);
}

/* ---- metrics_file ------------------------------------------------------------ */

static void write_metrics_file(Daemon *d) {
        EventsContext *c = d->events;
        _cleanup_free_ char *text = render_metrics(d);
        int r = text ? metrics_write_file(d->config.metrics_file, text) : -ENOMEM;

        if (r < 0 && r != c->metrics_error)
                log_warning_errno(r, "Failed to write the metrics to \"%s\": %m (will retry every %us)",
                                  d->config.metrics_file, d->config.metrics_interval_sec);
        else if (r >= 0 && c->metrics_error < 0)
                log_notice("Writing the metrics to \"%s\" works again", d->config.metrics_file);
        else if (r >= 0 && !c->metrics_written)
                log_info("Writing the metrics to \"%s\" every %us", d->config.metrics_file,
                         d->config.metrics_interval_sec);
        c->metrics_error = r < 0 ? r : 0;
        if (r >= 0)
                c->metrics_written = true;
}

static int on_metrics_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;

        write_metrics_file(d);
        (void) sd_event_source_set_time_relative(s, (uint64_t) d->config.metrics_interval_sec * UINT64_C(1000000));
        return 0;
}

/* ---- life ------------------------------------------------------------------- */

int bus_events_setup(Daemon *d) {
        EventsContext *c;
        int r;

        c = calloc(1, sizeof(EventsContext));
        if (!c)
                return log_error_errno(ENOMEM, "Out of memory setting up the events");
        d->events = c;
        c->summary = events_summary_new();
        if (!c->summary || event_ring_init(&c->recent, EVENTS_RECENT_MAX) < 0)
                return log_error_errno(ENOMEM, "Out of memory setting up the events");
        c->counters.start_time_usec = now_realtime_usec();
        c->journal = log_stderr_is_journal();
        if (c->journal)
                log_debug("stderr is the journal: events go to it directly, with FERRY_* fields");

        r = sd_bus_add_object_vtable(d->bus, NULL, FERRY_OBJECT_PATH, FERRY_CLUSTER_INTERFACE, events_vtable, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the events of the cluster object: %m");

        if (*d->config.metrics_file) {
                r = sd_event_add_time_relative(d->event, &c->metrics_timer, CLOCK_MONOTONIC, METRICS_FIRST_WRITE_USEC,
                                               0, on_metrics_timer, d);
                if (r >= 0)
                        r = sd_event_source_set_enabled(c->metrics_timer, SD_EVENT_ON);
                if (r < 0)
                        return log_error_errno(r, "Failed to set up writing the metrics to \"%s\": %m",
                                               d->config.metrics_file);
        }
        return 0;
}

void bus_events_done(Daemon *d) {
        EventsContext *c = d->events;

        if (!c)
                return;
        c->metrics_timer = sd_event_source_disable_unref(c->metrics_timer);
        /* Numbers from a ferryd that stopped would look current to the
         * exporter: none is better. */
        if (c->metrics_written && unlink(d->config.metrics_file) < 0 && errno != ENOENT)
                log_warning_errno(errno, "Failed to remove \"%s\": %m", d->config.metrics_file);
        event_ring_done(&c->recent);
        c->summary = events_summary_free(c->summary);
        free(c);
        d->events = NULL;
}
