/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Cluster events: what changed, as a stream an operator can follow
 * (`ferryctl events --follow`, the Event signal, the journal).
 *
 * Pure: events_diff() compares a summary of what this member saw last with
 * the replicated state and the membership view of now, and lists what
 * changed. The daemon calls it after every applied commit and every change
 * of membership or quorum (daemon/bus-events.c), numbers and timestamps the
 * events, logs them, counts them for the metrics and sends them.
 *
 * Every member runs the same diff on the same states, so each ferryd
 * reports the whole cluster. Membership and quorum are each member's own
 * view (see replica.h).
 *
 * Events are open-ended: a type ("job.running") and a flat list of typed
 * fields, the same a{sv} on the bus. The diff is one function per domain
 * (membership, quorum, nodes, jobs, policies), each with its slice of the
 * summary; a new domain (volume handovers, with issue #4) adds a slice, a
 * function and its types, and consumers skip types they do not know. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster-state.h"

#define EVENT_FIELDS_MAX 16
/* How many events ferryd keeps for RecentEvents. */
#define EVENTS_RECENT_MAX 256

typedef struct EventField {
        const char *key;                /* static, [a-z0-9_]: "vm", "job", "downtime_ms" */
        char type;                      /* its D-Bus type: 's', 'u', 't' or 'b' */
        char *s;                        /* 's' */
        uint64_t u;                     /* 'u', 't', 'b' */
} EventField;

typedef struct Event {
        uint64_t seq;                   /* set by the daemon: 1, 2, ... since it started */
        uint64_t timestamp_usec;        /* set by the daemon: CLOCK_REALTIME when it saw the change */
        const char *type;               /* static: "job.running" */
        size_t n_fields;
        EventField fields[EVENT_FIELDS_MAX];
} Event;

typedef struct EventList {
        Event *events;
        size_t n;
} EventList;

void event_done(Event *e);
int event_copy(Event *dst, const Event *src);
void event_list_done(EventList *l);

const EventField *event_field(const Event *e, const char *key);
/* The string field `key`, or NULL. */
const char *event_string(const Event *e, const char *key);
/* The numeric (or boolean) field `key`, or `fallback`. */
uint64_t event_uint(const Event *e, const char *key, uint64_t fallback);

/* "job=17 vm=web1 source=node1 ...": the fields in order. Strings are
 * quoted when they need it (empty, blanks, quotes, '=', control
 * characters), or always with `always_quote` (for the log, where they come
 * from users). Returns a new string or NULL on OOM. */
char *event_format_fields(const Event *e, bool always_quote);
/* The syslog priority of the event's log line. */
int event_priority(const Event *e);

/* The last `capacity` events, oldest first. */
typedef struct EventRing {
        Event *events;
        size_t capacity;
        size_t start;
        size_t n;
} EventRing;

int event_ring_init(EventRing *r, size_t capacity);
void event_ring_done(EventRing *r);
/* Takes over *e (left empty); drops the oldest when full. */
void event_ring_push(EventRing *r, Event *e);
/* i = 0 is the oldest. */
const Event *event_ring_get(const EventRing *r, size_t i);

/* ---- the diff ------------------------------------------------------------ */

/* A node's name for the events, or NULL/"" if unknown (then its id is used). */
typedef const char *(*EventsNodeNameFn)(uint32_t id, void *userdata);

typedef struct EventsView {
        const ClusterState *state;
        const uint32_t *members;        /* sorted, this member's CPG view */
        size_t n_members;
        /* Not in any configuration (corosync unreachable): membership is
         * unknown and kept as it was; not quorate. */
        bool detached;
        /* A state sync is under way: members are known, but quorum and what
         * derives from it (drain states) are not decided yet and kept. */
        bool syncing;
        bool quorate;
        uint32_t quorum_votes;
        EventsNodeNameFn node_name;
        void *userdata;
} EventsView;

typedef struct EventsSummary EventsSummary;

EventsSummary *events_summary_new(void);
EventsSummary *events_summary_free(EventsSummary *s);
/* Whether the summary holds a baseline yet. */
bool events_summary_ready(const EventsSummary *s);

/* Appends to `out` (seq and timestamp 0) what changed from the summary to
 * the view, and makes the summary describe the view. The first view that
 * is synced and quorate only sets the baseline: a starting ferryd does not
 * report the cluster's whole history (nor, starting alone with an old or
 * empty state, what the next sync brings). Views before it are ignored.
 * Returns the number of events added, or -ENOMEM (then the summary and
 * `out` are as they were). */
int events_diff(EventsSummary *s, const EventsView *view, EventList *out);

/* Event types (the `type` of an Event). */
#define EVENT_NODE_JOINED            "node.joined"
#define EVENT_NODE_LEFT              "node.left"
#define EVENT_QUORUM_GAINED          "quorum.gained"
#define EVENT_QUORUM_LOST            "quorum.lost"
#define EVENT_MAINTENANCE_ON         "maintenance.on"
#define EVENT_MAINTENANCE_OFF        "maintenance.off"
#define EVENT_DRAIN_STARTED          "drain.started"
#define EVENT_DRAIN_STATE            "drain.state"
#define EVENT_DRAIN_ENDED            "drain.ended"
#define EVENT_JOB_QUEUED             "job.queued"
#define EVENT_JOB_GRANTED            "job.granted"
#define EVENT_JOB_RUNNING            "job.running"
#define EVENT_JOB_PHASE              "job.phase"
#define EVENT_JOB_CANCEL_REQUESTED   "job.cancel-requested"
#define EVENT_JOB_COMPLETED          "job.completed"
#define EVENT_JOB_FAILED             "job.failed"
#define EVENT_JOB_CANCELLED          "job.cancelled"
#define EVENT_POLICY_CHANGED         "policy.changed"
