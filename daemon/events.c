/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "events.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "drain.h"
#include "macro.h"
#include "preflight.h"

/* ---- events ---------------------------------------------------------------- */

void event_done(Event *e) {
        if (!e)
                return;
        for (size_t i = 0; i < e->n_fields; i++)
                free(e->fields[i].s);
        *e = (Event) {};
}

int event_copy(Event *dst, const Event *src) {
        *dst = *src;
        for (size_t i = 0; i < src->n_fields; i++) {
                if (!src->fields[i].s)
                        continue;
                dst->fields[i].s = strdup(src->fields[i].s);
                if (!dst->fields[i].s) {
                        dst->n_fields = i;
                        event_done(dst);
                        return -ENOMEM;
                }
        }
        return 0;
}

void event_list_done(EventList *l) {
        for (size_t i = 0; i < l->n; i++)
                event_done(&l->events[i]);
        free(l->events);
        *l = (EventList) {};
}

const EventField *event_field(const Event *e, const char *key) {
        for (size_t i = 0; i < e->n_fields; i++)
                if (streq(e->fields[i].key, key))
                        return &e->fields[i];
        return NULL;
}

const char *event_string(const Event *e, const char *key) {
        const EventField *f = event_field(e, key);
        return f && f->type == 's' ? f->s : NULL;
}

uint64_t event_uint(const Event *e, const char *key, uint64_t fallback) {
        const EventField *f = event_field(e, key);
        return f && f->type != 's' ? f->u : fallback;
}

static bool needs_quotes(const char *s) {
        if (!*s)
                return true;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++)
                if (*p <= ' ' || *p == '"' || *p == '\\' || *p == '=' || *p == 0x7f)
                        return true;
        return false;
}

static void put_quoted(FILE *f, const char *s) {
        fputc('"', f);
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p == '"' || *p == '\\')
                        fprintf(f, "\\%c", *p);
                else if (*p < ' ' || *p == 0x7f)
                        fprintf(f, "\\x%02x", *p);
                else
                        fputc(*p, f);
        }
        fputc('"', f);
}

char *event_format_fields(const Event *e, bool always_quote) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < e->n_fields; i++) {
                const EventField *x = &e->fields[i];

                fprintf(f, "%s%s=", i > 0 ? " " : "", x->key);
                if (x->type == 's') {
                        if (always_quote || needs_quotes(x->s))
                                put_quoted(f, x->s);
                        else
                                fputs(x->s, f);
                } else if (x->type == 'b')
                        fputs(x->u ? "yes" : "no", f);
                else
                        fprintf(f, "%" PRIu64, x->u);
        }
        if (fclose(f) != 0 || !buf) {
                free(buf);
                return NULL;
        }
        return buf;
}

int event_priority(const Event *e) {
        if (streq(e->type, EVENT_JOB_FAILED) || streq(e->type, EVENT_QUORUM_LOST))
                return LOG_WARNING;
        if (strncmp(e->type, "job.", 4) == 0)
                return LOG_INFO;
        return LOG_NOTICE;
}

/* ---- the ring -------------------------------------------------------------- */

int event_ring_init(EventRing *r, size_t capacity) {
        *r = (EventRing) { .capacity = capacity };
        r->events = calloc(capacity, sizeof(Event));
        return r->events ? 0 : -ENOMEM;
}

void event_ring_done(EventRing *r) {
        for (size_t i = 0; i < r->n; i++)
                event_done(&r->events[(r->start + i) % r->capacity]);
        free(r->events);
        *r = (EventRing) {};
}

void event_ring_push(EventRing *r, Event *e) {
        if (r->capacity == 0) {
                event_done(e);
                return;
        }
        if (r->n == r->capacity) {
                event_done(&r->events[r->start]);
                r->events[r->start] = *e;
                r->start = (r->start + 1) % r->capacity;
        } else
                r->events[(r->start + r->n++) % r->capacity] = *e;
        *e = (Event) {};
}

const Event *event_ring_get(const EventRing *r, size_t i) {
        if (i >= r->n)
                return NULL;
        return &r->events[(r->start + i) % r->capacity];
}

/* ---- the summary ----------------------------------------------------------- */

typedef struct NodeSlice {
        uint32_t id;
        bool maintenance;
        DrainMode drain;
        DrainStatus status;
} NodeSlice;

typedef struct JobSlice {
        uint64_t id;
        JobState state;
        JobPhase phase;
        bool cancel_requested;
} JobSlice;

typedef struct PolicySlice {
        char *scope;
        ConvergenceSettings settings;
} PolicySlice;

struct EventsSummary {
        bool ready;
        uint32_t *members;
        size_t n_members;
        bool quorate;
        NodeSlice *nodes;               /* sorted by id */
        size_t n_nodes;
        JobSlice *jobs;                 /* sorted by id */
        size_t n_jobs;
        PolicySlice *policies;          /* sorted by scope */
        size_t n_policies;
};

static void summary_clear(EventsSummary *s) {
        free(s->members);
        free(s->nodes);
        free(s->jobs);
        for (size_t i = 0; i < s->n_policies; i++)
                free(s->policies[i].scope);
        free(s->policies);
        *s = (EventsSummary) {};
}

EventsSummary *events_summary_new(void) {
        return calloc(1, sizeof(EventsSummary));
}

EventsSummary *events_summary_free(EventsSummary *s) {
        if (!s)
                return NULL;
        summary_clear(s);
        free(s);
        return NULL;
}

bool events_summary_ready(const EventsSummary *s) {
        return s->ready;
}

static const NodeSlice *find_node_slice(const EventsSummary *s, uint32_t id) {
        for (size_t i = 0; i < s->n_nodes; i++)
                if (s->nodes[i].id == id)
                        return &s->nodes[i];
        return NULL;
}

/* What `view` shows, with what it cannot tell yet taken from `old`. */
static int summary_build(EventsSummary *next, const EventsSummary *old, const EventsView *view) {
        const ClusterState *st = view->state;
        bool synced = !view->detached && !view->syncing;

        *next = (EventsSummary) { .ready = true };

        const uint32_t *members = view->detached ? old->members : view->members;
        size_t n_members = view->detached ? old->n_members : view->n_members;
        if (n_members > 0) {
                next->members = malloc(n_members * sizeof(uint32_t));
                if (!next->members)
                        return -ENOMEM;
                memcpy(next->members, members, n_members * sizeof(uint32_t));
                next->n_members = n_members;
        }
        next->quorate = view->syncing ? old->quorate : !view->detached && view->quorate;

        if (st->n_nodes > 0) {
                next->nodes = calloc(st->n_nodes, sizeof(NodeSlice));
                if (!next->nodes)
                        return -ENOMEM;
        }
        MembershipView mv = { .members = view->members, .n_members = view->n_members, .quorate = view->quorate };
        for (size_t i = 0; i < st->n_nodes; i++) {
                const NodeRecord *n = &st->nodes[i];
                const NodeSlice *o = find_node_slice(old, n->id);
                NodeSlice *x = &next->nodes[next->n_nodes++];

                *x = (NodeSlice) { .id = n->id, .maintenance = n->maintenance, .drain = n->drain };
                if (n->drain == DRAIN_NONE)
                        x->status = DRAIN_STATUS_NONE;
                else if (!synced)
                        /* Derived from the membership view, which is not
                         * settled: keep what was seen last. */
                        x->status = o ? o->status : DRAIN_STATUS_NONE;
                else {
                        DrainPlan plan;
                        int r = drain_plan(st, &mv, n->id, &plan);
                        if (r < 0)
                                return r;
                        x->status = plan.status;
                        drain_plan_done(&plan);
                }
        }

        if (st->n_jobs > 0) {
                next->jobs = calloc(st->n_jobs, sizeof(JobSlice));
                if (!next->jobs)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < st->n_jobs; i++) {
                const JobRecord *j = &st->jobs[i];
                next->jobs[next->n_jobs++] = (JobSlice) {
                        .id = j->id, .state = j->state, .phase = j->progress.phase,
                        .cancel_requested = j->cancel_requested,
                };
        }

        if (st->n_policies > 0) {
                next->policies = calloc(st->n_policies, sizeof(PolicySlice));
                if (!next->policies)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < st->n_policies; i++) {
                char *scope = strdup(st->policies[i].scope);
                if (!scope)
                        return -ENOMEM;
                next->policies[next->n_policies++] = (PolicySlice) {
                        .scope = scope, .settings = st->policies[i].convergence,
                };
        }
        return 0;
}

/* ---- the diff -------------------------------------------------------------- */

typedef struct Diff {
        const EventsView *view;
        EventList *out;
        int error;
} Diff;

static Event *add_event(Diff *d, const char *type) {
        if (d->error < 0)
                return NULL;
        Event *n = reallocarray(d->out->events, d->out->n + 1, sizeof(Event));
        if (!n) {
                d->error = -ENOMEM;
                return NULL;
        }
        d->out->events = n;
        Event *e = &n[d->out->n++];
        *e = (Event) { .type = type };
        return e;
}

static EventField *add_field(Diff *d, Event *e, const char *key, char type) {
        if (!e || d->error < 0)
                return NULL;
        if (e->n_fields >= EVENT_FIELDS_MAX) {
                /* A programming error: the types below stay far under it. */
                d->error = -E2BIG;
                return NULL;
        }
        EventField *f = &e->fields[e->n_fields++];
        *f = (EventField) { .key = key, .type = type };
        return f;
}

static void field_s(Diff *d, Event *e, const char *key, const char *value) {
        EventField *f = add_field(d, e, key, 's');
        if (!f)
                return;
        f->s = strdup(value ? value : "");
        if (!f->s) {
                e->n_fields--;
                d->error = -ENOMEM;
        }
}

static void field_u32(Diff *d, Event *e, const char *key, uint32_t value) {
        EventField *f = add_field(d, e, key, 'u');
        if (f)
                f->u = value;
}

static void field_u64(Diff *d, Event *e, const char *key, uint64_t value) {
        EventField *f = add_field(d, e, key, 't');
        if (f)
                f->u = value;
}

static void field_node(Diff *d, Event *e, const char *key, uint32_t id) {
        const char *name = d->view->node_name ? d->view->node_name(id, d->view->userdata) : NULL;
        char buf[16];

        if (!name || !*name) {
                snprintf(buf, sizeof(buf), "%" PRIu32, id);
                name = buf;
        }
        field_s(d, e, key, name);
}

/* "node", "node_id" and what else node events carry. */
static Event *node_event(Diff *d, const char *type, uint32_t id) {
        Event *e = add_event(d, type);
        field_node(d, e, "node", id);
        field_u32(d, e, "node_id", id);
        return e;
}

static void diff_membership(Diff *d, const EventsSummary *old, const EventsSummary *next) {
        size_t i = 0, k = 0;

        while (i < old->n_members || k < next->n_members) {
                if (k == next->n_members || (i < old->n_members && old->members[i] < next->members[k])) {
                        Event *e = node_event(d, EVENT_NODE_LEFT, old->members[i++]);
                        field_u32(d, e, "members", (uint32_t) next->n_members);
                } else if (i == old->n_members || next->members[k] < old->members[i]) {
                        Event *e = node_event(d, EVENT_NODE_JOINED, next->members[k++]);
                        field_u32(d, e, "members", (uint32_t) next->n_members);
                } else
                        i++, k++;
        }
}

static void diff_quorum(Diff *d, const EventsSummary *old, const EventsSummary *next) {
        if (old->quorate == next->quorate)
                return;
        Event *e = add_event(d, next->quorate ? EVENT_QUORUM_GAINED : EVENT_QUORUM_LOST);
        field_u32(d, e, "members", (uint32_t) next->n_members);
        field_u32(d, e, "quorum_votes", d->view->quorum_votes);
}

static void diff_nodes(Diff *d, const EventsSummary *old, const EventsSummary *next) {
        for (size_t i = 0; i < next->n_nodes; i++) {
                const NodeSlice *x = &next->nodes[i];
                const NodeSlice *o = find_node_slice(old, x->id);
                NodeSlice was = o ? *o : (NodeSlice) { .id = x->id };
                Event *e;

                if (was.drain == DRAIN_NONE && x->drain != DRAIN_NONE) {
                        e = node_event(d, EVENT_DRAIN_STARTED, x->id);
                        field_s(d, e, "mode", drain_mode_to_string(x->drain));
                        field_s(d, e, "state", drain_status_to_string(x->status));
                } else if (was.drain != DRAIN_NONE && x->drain == DRAIN_NONE)
                        node_event(d, EVENT_DRAIN_ENDED, x->id);
                else if (x->drain != DRAIN_NONE && was.drain != x->drain) {
                        /* Asked again with the other mode. */
                        e = node_event(d, EVENT_DRAIN_STARTED, x->id);
                        field_s(d, e, "mode", drain_mode_to_string(x->drain));
                        field_s(d, e, "state", drain_status_to_string(x->status));
                } else if (x->drain != DRAIN_NONE && was.status != x->status) {
                        e = node_event(d, EVENT_DRAIN_STATE, x->id);
                        field_s(d, e, "state", drain_status_to_string(x->status));
                        field_s(d, e, "previous", drain_status_to_string(was.status));
                }

                if (was.maintenance != x->maintenance)
                        node_event(d, x->maintenance ? EVENT_MAINTENANCE_ON : EVENT_MAINTENANCE_OFF, x->id);
        }
}

static const char *job_event_type(JobState st) {
        switch (st) {
        case JOB_QUEUED:
                return EVENT_JOB_QUEUED;
        case JOB_GRANTED:
                return EVENT_JOB_GRANTED;
        case JOB_RUNNING:
                return EVENT_JOB_RUNNING;
        case JOB_COMPLETED:
                return EVENT_JOB_COMPLETED;
        case JOB_FAILED:
                return EVENT_JOB_FAILED;
        case JOB_CANCELLED:
                return EVENT_JOB_CANCELLED;
        default:
                return NULL;
        }
}

static Event *job_event(Diff *d, const char *type, const JobRecord *j) {
        Event *e = add_event(d, type);
        field_u64(d, e, "job", j->id);
        field_s(d, e, "vm", j->vm);
        field_node(d, e, "source", j->source);
        field_node(d, e, "destination", j->destination);
        return e;
}

static void job_state_event(Diff *d, const JobRecord *j) {
        const char *type = job_event_type(j->state);
        if (!type)
                return;
        Event *e = job_event(d, type, j);

        switch (j->state) {
        case JOB_QUEUED:
                field_node(d, e, "requested_by", j->requested_by);
                break;
        case JOB_RUNNING:
                field_s(d, e, "phase", job_phase_to_string(j->progress.phase));
                break;
        case JOB_COMPLETED:
        case JOB_FAILED:
        case JOB_CANCELLED:
                if (j->error && *j->error)
                        field_s(d, e, "error", j->error);
                if (j->started_at > 0 && j->finished_at > j->started_at)
                        field_u64(d, e, "duration_usec", j->finished_at - j->started_at);
                if (j->state == JOB_COMPLETED)
                        field_u64(d, e, "downtime_ms", j->progress.downtime_ms);
                field_u64(d, e, "bytes", j->progress.memory_processed);
                break;
        default:
                break;
        }
}

static const JobSlice *find_job_slice(const EventsSummary *s, size_t *hint, uint64_t id) {
        /* Both lists are sorted by id: walk on from the last position. */
        while (*hint < s->n_jobs && s->jobs[*hint].id < id)
                (*hint)++;
        return *hint < s->n_jobs && s->jobs[*hint].id == id ? &s->jobs[*hint] : NULL;
}

static void diff_jobs(Diff *d, const EventsSummary *old) {
        const ClusterState *st = d->view->state;
        size_t hint = 0;

        for (size_t i = 0; i < st->n_jobs; i++) {
                const JobRecord *j = &st->jobs[i];
                const JobSlice *o = find_job_slice(old, &hint, j->id);

                if (!o) {
                        /* New to this member: queued, and whatever it is now
                         * (a job submitted and granted in one commit, or
                         * learnt from a sync). */
                        Event *e = job_event(d, EVENT_JOB_QUEUED, j);
                        field_node(d, e, "requested_by", j->requested_by);
                        if (j->state != JOB_QUEUED)
                                job_state_event(d, j);
                        continue;
                }
                if (j->cancel_requested && !o->cancel_requested && !job_state_is_final(j->state))
                        job_event(d, EVENT_JOB_CANCEL_REQUESTED, j);
                if (o->state != j->state)
                        job_state_event(d, j);
                else if (!job_state_is_final(j->state) && o->phase != j->progress.phase) {
                        Event *e = job_event(d, EVENT_JOB_PHASE, j);
                        field_s(d, e, "phase", job_phase_to_string(j->progress.phase));
                        field_s(d, e, "previous", job_phase_to_string(o->phase));
                }
        }
}

static bool settings_equal(const ConvergenceSettings *a, const ConvergenceSettings *b) {
        if (a->set != b->set)
                return false;
        if ((a->set & CONVERGENCE_FIELD_DOWNTIME_STEPS) &&
            (a->n_downtime_steps != b->n_downtime_steps ||
             memcmp(a->downtime_steps_ms, b->downtime_steps_ms,
                    MIN(a->n_downtime_steps, (uint32_t) POLICY_DOWNTIME_STEPS_MAX) * sizeof(uint32_t)) != 0))
                return false;
        if ((a->set & CONVERGENCE_FIELD_STALL_ROUNDS) && a->stall_rounds != b->stall_rounds)
                return false;
        if ((a->set & CONVERGENCE_FIELD_PROGRESS_TIMEOUT) && a->progress_timeout_sec != b->progress_timeout_sec)
                return false;
        if ((a->set & CONVERGENCE_FIELD_COMPLETION_TIMEOUT) &&
            a->completion_timeout_per_gib_sec != b->completion_timeout_per_gib_sec)
                return false;
        if ((a->set & CONVERGENCE_FIELD_AUTO_CONVERGE) && a->auto_converge != b->auto_converge)
                return false;
        if ((a->set & CONVERGENCE_FIELD_POSTCOPY) && a->postcopy != b->postcopy)
                return false;
        return true;
}

/* settings NULL: the record was removed. */
static void policy_event(Diff *d, const char *scope, const ConvergenceSettings *settings) {
        char text[512] = "";
        Event *e = add_event(d, EVENT_POLICY_CHANGED);

        field_s(d, e, "scope", *scope ? "vm" : "cluster");
        if (*scope)
                field_s(d, e, "vm", scope);
        if (settings)
                convergence_settings_format(settings, NULL, text, sizeof(text));
        field_s(d, e, "settings", text);
}

static void diff_policies(Diff *d, const EventsSummary *old, const EventsSummary *next) {
        size_t i = 0, k = 0;

        while (i < old->n_policies || k < next->n_policies) {
                int c = i == old->n_policies ? 1 :
                        k == next->n_policies ? -1 :
                        strcmp(old->policies[i].scope, next->policies[k].scope);
                if (c < 0) {
                        policy_event(d, old->policies[i].scope, NULL);
                        i++;
                } else if (c > 0) {
                        policy_event(d, next->policies[k].scope, &next->policies[k].settings);
                        k++;
                } else {
                        if (!settings_equal(&old->policies[i].settings, &next->policies[k].settings))
                                policy_event(d, next->policies[k].scope, &next->policies[k].settings);
                        i++, k++;
                }
        }
}

int events_diff(EventsSummary *s, const EventsView *view, EventList *out) {
        EventsSummary next;
        EventList found = {};
        Diff d = { .view = view, .out = &found };
        int r;

        /* A partition without quorum may hold an old or empty state that
         * the next sync replaces: a baseline there would report the whole
         * history as news. */
        if (!s->ready && (view->detached || view->syncing || !view->quorate))
                return 0;
        r = summary_build(&next, s, view);
        if (r < 0) {
                summary_clear(&next);
                return r;
        }
        if (!s->ready) {
                summary_clear(s);
                *s = next;
                return 0;
        }

        diff_membership(&d, s, &next);
        diff_quorum(&d, s, &next);
        diff_nodes(&d, s, &next);
        diff_jobs(&d, s);
        diff_policies(&d, s, &next);

        size_t added = found.n;
        if (d.error == 0 && found.n > 0) {
                Event *n = reallocarray(out->events, out->n + found.n, sizeof(Event));
                if (!n)
                        d.error = -ENOMEM;
                else {
                        out->events = n;
                        memcpy(out->events + out->n, found.events, found.n * sizeof(Event));
                        out->n += found.n;
                        free(found.events);
                        found = (EventList) {};
                }
        }
        if (d.error < 0) {
                event_list_done(&found);
                summary_clear(&next);
                return d.error;
        }
        summary_clear(s);
        *s = next;
        return (int) MIN(added, (size_t) INT32_MAX);
}
