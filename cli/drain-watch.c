/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <systemd/sd-event.h>

#include "bus-util.h"
#include "drain-watch.h"
#include "ferry-bus.h"
#include "job.h"
#include "node.h"
#include "strutil.h"

/* How often the node is read again, whatever the signals say. */
#define DRAIN_POLL_USEC (1 * UINT64_C(1000000))
/* How often the job objects are read again: signals carry their progress,
 * this only catches a signal that was missed. */
#define DRAIN_JOBS_POLL_USEC (3 * UINT64_C(1000000))
/* One read that takes longer is taken for a ferryd that does not answer. */
#define DRAIN_CALL_TIMEOUT_USEC (10 * UINT64_C(1000000))
/* How long ferryd may not answer before ferryctl stops watching. The drain
 * itself does not depend on ferryctl. */
#define DRAIN_GIVE_UP_USEC (60 * UINT64_C(1000000))
/* Nothing moved for this long: say what the drain waits for. (A test
 * build may define it shorter.) */
#ifndef DRAIN_STALL_USEC
#define DRAIN_STALL_USEC (120 * UINT64_C(1000000))
#endif

/* A migration of one of the node's VMs. */
typedef struct Tracked {
        JobInfo job;
        bool ended;                /* its end was reported */
        char *last_line;           /* not a tty: the state line printed last */
} Tracked;

struct DrainWatch {
        sd_bus *bus;
        sd_event *event;
        const char *arg;           /* the node as typed */
        char *path;
        bool json;

        NodeInfo node;
        char *name;                /* its Name: what the jobs call it */
        Tracked *jobs;
        size_t n_jobs;
        uint64_t baseline_id;      /* the newest job before the drain was asked for */

        FILE *out;                 /* where progress goes; NULL: nowhere */
        bool tty;                  /* redraw a status area in place */
        const char *arrow;
        unsigned drawn;            /* lines of the status area on the screen */
        char *last_node_line;      /* not a tty: printed last */
        char *last_blockers;       /* not a tty: the blockers printed last */

        sd_bus_slot *match_node, *match_jobs, *match_added;
        sd_bus_slot *node_slot;    /* a GetAll in flight */
        bool node_again;           /* a signal came while it was: read once more */
        sd_bus_slot *jobs_slot;    /* a GetManagedObjects in flight */
        bool jobs_again;
        uint64_t jobs_read_at;     /* CLOCK_MONOTONIC of the last jobs read */
        uint64_t failing_since;    /* CLOCK_MONOTONIC; 0: the last node read worked */

        char *progress;            /* what moves, as text: a change is progress */
        uint64_t progress_at;      /* CLOCK_MONOTONIC of the last change */
        uint64_t noticed_at;       /* CLOCK_MONOTONIC of the last "nothing moved" */
        uint64_t remaining_seen;   /* DrainRemaining at the last update */

        uint64_t started;          /* CLOCK_MONOTONIC */
        sd_event_source *timer, *sigint, *sigterm;
        sigset_t saved_mask;
        bool mask_set;
        bool attached;             /* the bus is attached to event */

        int exit_code;             /* -1 while watching */
};

static void tracked_done(Tracked *t) {
        job_info_done(&t->job);
        free(t->last_line);
        *t = (Tracked) {};
}

DrainWatch *drain_watch_free(DrainWatch *w) {
        if (!w)
                return NULL;

        w->timer = sd_event_source_unref(w->timer);
        w->sigint = sd_event_source_unref(w->sigint);
        w->sigterm = sd_event_source_unref(w->sigterm);
        w->node_slot = sd_bus_slot_unref(w->node_slot);
        w->jobs_slot = sd_bus_slot_unref(w->jobs_slot);
        w->match_node = sd_bus_slot_unref(w->match_node);
        w->match_jobs = sd_bus_slot_unref(w->match_jobs);
        w->match_added = sd_bus_slot_unref(w->match_added);
        /* The event sources go before the bus leaves the loop. */
        if (w->attached)
                (void) sd_bus_detach_event(w->bus);
        if (w->event)
                (void) sd_event_unref(w->event);
        if (w->mask_set)
                (void) sigprocmask(SIG_SETMASK, &w->saved_mask, NULL);

        node_info_done(&w->node);
        for (size_t i = 0; i < w->n_jobs; i++)
                tracked_done(w->jobs + i);
        free(w->jobs);
        free(w->path);
        free(w->name);
        free(w->last_node_line);
        free(w->last_blockers);
        free(w->progress);
        free(w);
        return NULL;
}

static void watch_stop(DrainWatch *w, int exit_code) {
        w->exit_code = exit_code;
        (void) sd_event_exit(w->event, 0);
}

static Tracked *tracked_find(DrainWatch *w, uint64_t id) {
        for (size_t i = 0; i < w->n_jobs; i++)
                if (job_uint(&w->jobs[i].job, JOB_ID) == id)
                        return w->jobs + i;
        return NULL;
}

static bool tracked_active(const Tracked *t) {
        return !t->ended && !job_is_final(&t->job);
}

static size_t n_active(const DrainWatch *w) {
        size_t n = 0;

        for (size_t i = 0; i < w->n_jobs; i++)
                if (tracked_active(w->jobs + i))
                        n++;
        return n;
}

/* VMs whose migration off the node completed while ferryctl followed. */
static size_t n_moved(const DrainWatch *w) {
        size_t n = 0;

        for (size_t i = 0; i < w->n_jobs; i++) {
                const JobInfo *j = &w->jobs[i].job;
                bool counted = false;

                if (!streq(job_string(j, JOB_STATE), "completed"))
                        continue;
                /* A VM that failed to move once and then moved is one VM. */
                for (size_t k = 0; k < i && !counted; k++)
                        counted = streq(job_string(&w->jobs[k].job, JOB_STATE), "completed") &&
                                  streq(job_string(&w->jobs[k].job, JOB_VM), job_string(j, JOB_VM));
                if (!counted)
                        n++;
        }
        return n;
}

/* ---- the display ---- */

static size_t terminal_size(FILE *f, bool rows) {
        struct winsize ws;

        if (ioctl(fileno(f), TIOCGWINSZ, &ws) < 0 || (rows ? ws.ws_row : ws.ws_col) == 0)
                return rows ? 24 : 80;
        return rows ? ws.ws_row : ws.ws_col;
}

/* Cuts s after `columns` code points: a line that wraps cannot be redrawn. */
static void truncate_to_width(char *s, size_t columns) {
        size_t n = 0;

        for (char *p = s; *p; p++)
                if (((unsigned char) *p & 0xc0) != 0x80 && n++ == columns) {
                        *p = '\0';
                        return;
                }
}

/* Takes the status area off the screen, so that a line can be printed
 * where it was (and the area redrawn below it). */
static void area_clear(DrainWatch *w) {
        if (w->drawn == 0)
                return;
        fprintf(w->out, "\033[%uA\r\033[J", w->drawn);
        fflush(w->out);
        w->drawn = 0;
}

/* The status area: the drain, then one line per migration under way, then
 * the VMs that cannot move; as many as the terminal has rows for. */
static void draw_area(DrainWatch *w) {
        size_t rows = terminal_size(w->out, true), columns = terminal_size(w->out, false);
        size_t n_jobs = n_active(w), n_blockers = node_n_blockers(&w->node);
        size_t items = n_jobs + n_blockers, max_items, n = 0;
        _cleanup_free_ char *head = NULL;
        char elapsed[FORMAT_DURATION_MAX];
        char **lines;

        /* The first line, and a row to spare for the cursor. */
        max_items = rows > 4 ? rows - 3 : 1;
        /* 1 head + items + 1 "... and N more" at most. */
        lines = calloc(items + 2, sizeof(char *));
        head = node_drain_line(&w->node, w->arg, n_jobs);
        if (!lines || !head) {
                free(lines);
                return;
        }

        if (w->failing_since > 0) {
                char quiet[FORMAT_DURATION_MAX];

                if (asprintf(&lines[n], "%s  %s  (no answer from ferryd for %s)", head,
                             format_duration(elapsed, clock_monotonic_usec() - w->started),
                             format_duration(quiet, clock_monotonic_usec() - w->failing_since)) >= 0)
                        n++;
        } else if (asprintf(&lines[n], "%s  %s", head,
                            format_duration(elapsed, clock_monotonic_usec() - w->started)) >= 0)
                n++;
        for (size_t i = 0; i < w->n_jobs; i++) {
                _cleanup_free_ char *brief = NULL;

                if (!tracked_active(w->jobs + i))
                        continue;
                brief = job_brief_line(&w->jobs[i].job, w->arrow);
                if (brief && asprintf(&lines[n], "  %s", brief) >= 0)
                        n++;
        }
        for (size_t i = 0; i < n_blockers; i++)
                if (asprintf(&lines[n], "  %s: %s: %s", node_blocked_word(&w->node), node_blocker_vm(&w->node, i),
                             node_blocker_reason(&w->node, i)) >= 0)
                        n++;
        /* Cut to the terminal: a line that scrolled away cannot be redrawn. */
        if (n - 1 > max_items) {
                size_t keep = 1 + max_items - 1;

                for (size_t i = keep; i < n; i++)
                        free(lines[i]);
                if (asprintf(&lines[keep], "  ... and %zu more", n - keep) >= 0)
                        keep++;
                n = keep;
        }

        /* Over the old area, line by line, then away with what it had more. */
        if (w->drawn > 0)
                fprintf(w->out, "\033[%uA", w->drawn);
        for (size_t i = 0; i < n; i++) {
                truncate_to_width(lines[i], columns - 1);
                fprintf(w->out, "\r%s\033[K\n", lines[i]);
                free(lines[i]);
        }
        fputs("\033[J", w->out);
        fflush(w->out);
        free(lines);
        w->drawn = (unsigned) n;
}

/* Not a terminal: a line for every change. */
static void draw_lines(DrainWatch *w) {
        _cleanup_free_ char *node_line = NULL, *blockers = NULL;
        size_t n_blockers = node_n_blockers(&w->node);

        /* While the jobs are read (a VM left), the node waits: the line
         * that says a migration ended comes before "1 VM fewer left". */
        if (!w->jobs_slot) {
                node_line = node_drain_line(&w->node, w->arg, 0);
                if (node_line && (!w->last_node_line || !streq(w->last_node_line, node_line))) {
                        fprintf(w->out, "%s\n", node_line);
                        free(w->last_node_line);
                        w->last_node_line = TAKE_PTR(node_line);
                }

                /* The blockers, each time the list changes. */
                blockers = value_format(w->node.values + NODE_DRAIN_BLOCKERS, FORMAT_PLAIN, 0);
                if (blockers && (w->last_blockers ? !streq(w->last_blockers, blockers) : n_blockers > 0)) {
                        for (size_t i = 0; i < n_blockers; i++)
                                fprintf(w->out, "%s: %s: %s: %s\n", w->arg, node_blocked_word(&w->node),
                                        node_blocker_vm(&w->node, i), node_blocker_reason(&w->node, i));
                        free(w->last_blockers);
                        w->last_blockers = TAKE_PTR(blockers);
                }
        }

        for (size_t i = 0; i < w->n_jobs; i++) {
                Tracked *t = w->jobs + i;
                _cleanup_free_ char *line = NULL;

                if (!tracked_active(t))
                        continue;
                line = job_state_line(&t->job);
                if (line && !t->last_line) {
                        /* First seen: which VM goes where, and how far it is. */
                        _cleanup_free_ char *brief = job_brief_line(&t->job, w->arrow);

                        if (brief)
                                fprintf(w->out, "%s\n", brief);
                        t->last_line = TAKE_PTR(line);
                        continue;
                }
                if (!line || streq(t->last_line, line))
                        continue;
                fprintf(w->out, "job %" PRIu64 ": %s\n", job_uint(&t->job, JOB_ID), line);
                free(t->last_line);
                t->last_line = TAKE_PTR(line);
        }
        fflush(w->out);
}

static bool drain_ended(const DrainWatch *w);

static void draw(DrainWatch *w) {
        /* An end is reported by finish(), from a full read. */
        if (!w->out || w->exit_code >= 0 || drain_ended(w))
                return;
        if (w->tty)
                draw_area(w);
        else
                draw_lines(w);
}

/* A migration of the node's VMs ended: a line of its own, above the area. */
static void report_end(DrainWatch *w, Tracked *t) {
        _cleanup_free_ char *result = job_result_line(&t->job);
        uint64_t id = job_uint(&t->job, JOB_ID);

        t->ended = true;
        if (!result)
                return;
        if (w->out)
                area_clear(w);
        if (streq(job_string(&t->job, JOB_STATE), "completed")) {
                if (w->out)
                        fprintf(w->out, "job %" PRIu64 ": %s\n", id, result);
        } else {
                const char *vm = job_string(&t->job, JOB_VM);
                size_t failed = 0;

                /* A VM that fails again and again keeps the drain from
                 * ending: make that visible. */
                for (size_t i = 0; i < w->n_jobs; i++)
                        if (w->jobs[i].ended && streq(job_string(&w->jobs[i].job, JOB_VM), vm) &&
                            !streq(job_string(&w->jobs[i].job, JOB_STATE), "completed"))
                                failed++;
                if (w->out)
                        fflush(w->out);
                if (failed > 1)
                        print_error("job %" PRIu64 ": %s (%zu failed attempts to move %s so far)", id, result, failed, vm);
                else
                        print_error("job %" PRIu64 ": %s", id, result);
        }
}

/* ---- what the jobs say ---- */

/* Job objects as read in full (GetManagedObjects, InterfacesAdded): the
 * migrations of the node's VMs are followed, the rest is not ours. Takes
 * the values of *j when it keeps them. */
static void job_seen(DrainWatch *w, JobInfo *j) {
        uint64_t id = job_uint(j, JOB_ID);
        Tracked *t = tracked_find(w, id);

        if (!t) {
                Tracked *jobs;

                if (!w->name || !streq(job_string(j, JOB_SOURCE), w->name))
                        return;
                /* Finished before the drain was asked for: history. */
                if (job_is_final(j) && id <= w->baseline_id)
                        return;
                jobs = reallocarray(w->jobs, w->n_jobs + 1, sizeof(Tracked));
                if (!jobs)
                        return;
                w->jobs = jobs;
                t = w->jobs + w->n_jobs++;
                *t = (Tracked) {};
        }

        job_info_done(&t->job);
        t->job = *j;
        *j = (JobInfo) {};

        if (job_is_final(&t->job) && !t->ended && w->exit_code < 0)
                report_end(w, t);
}

/* GetManagedObjects' reply: every job there is. */
static int jobs_read(DrainWatch *w, sd_bus_message *reply, bool baseline) {
        _cleanup_(job_list_done) JobList l = {};
        int r;

        r = bus_read_managed_objects(reply, FERRY_JOB_INTERFACE, job_fields, _JOB_FIELD_MAX, job_list_add, &l);
        if (r < 0)
                return r;

        if (baseline)
                for (size_t i = 0; i < l.n; i++)
                        w->baseline_id = MAX(w->baseline_id, job_uint(l.jobs + i, JOB_ID));
        for (size_t i = 0; i < l.n; i++)
                job_seen(w, l.jobs + i);
        w->jobs_read_at = clock_monotonic_usec();
        return 0;
}

static int jobs_read_sync(DrainWatch *w, bool baseline, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = bus_get_managed_objects(w->bus, error, &reply);
        if (r < 0)
                return r;
        return jobs_read(w, reply, baseline);
}

static void jobs_poll_start(DrainWatch *w);

static int on_jobs_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        DrainWatch *w = userdata;

        w->jobs_slot = sd_bus_slot_unref(w->jobs_slot);
        /* A failed read is tried again on the next tick; the node read says
         * whether ferryd answers at all. */
        if (!sd_bus_message_is_method_error(m, NULL) && jobs_read(w, m, false) >= 0)
                draw(w);

        if (w->jobs_again) {
                w->jobs_again = false;
                jobs_poll_start(w);
        }
        return 0;
}

static void jobs_poll_start(DrainWatch *w) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (w->exit_code >= 0)
                return;
        if (w->jobs_slot) {
                w->jobs_again = true;
                return;
        }

        w->jobs_read_at = clock_monotonic_usec();
        r = sd_bus_message_new_method_call(w->bus, &m, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                           "org.freedesktop.DBus.ObjectManager", "GetManagedObjects");
        if (r >= 0)
                (void) sd_bus_call_async(w->bus, &w->jobs_slot, m, on_jobs_reply, w, DRAIN_CALL_TIMEOUT_USEC);
}

/* PropertiesChanged of a job object: the progress of one we follow. */
static int on_job_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        DrainWatch *w = userdata;
        const char *path = sd_bus_message_get_path(m), *interface;
        size_t n = strlen(FERRY_JOB_PATH_PREFIX);
        char **invalidated = NULL;
        uint64_t id;
        Tracked *t;
        int r;

        if (w->exit_code >= 0 || !path || strncmp(path, FERRY_JOB_PATH_PREFIX, n) != 0 || path[n] != '/' ||
            parse_u64(path + n + 1, &id) < 0)
                return 0;
        t = tracked_find(w, id);
        /* A job not followed is another node's, or one of ours whose
         * InterfacesAdded was missed: the next full read finds that. */
        if (!t || t->ended)
                return 0;

        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0 || !streq(interface, FERRY_JOB_INTERFACE))
                return 0;
        r = bus_read_properties(m, job_fields, _JOB_FIELD_MAX, t->job.values);
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &invalidated);
        if (r < 0 || (invalidated && invalidated[0]))
                jobs_poll_start(w);
        for (char **i = invalidated; i && *i; i++)
                free(*i);
        free(invalidated);

        /* The end is reported from a full read, with every property of
         * the change (FinishedAt, DowntimeMs, Error). */
        if (job_is_final(&t->job))
                jobs_poll_start(w);
        draw(w);
        return 0;
}

/* InterfacesAdded(o path, a{sa{sv}}): a new job, with all its properties. */
static int on_interfaces_added(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(job_list_done) JobList l = {};
        DrainWatch *w = userdata;
        size_t n = strlen(FERRY_JOB_PATH_PREFIX);
        const char *path;
        int r;

        if (w->exit_code >= 0)
                return 0;
        r = sd_bus_message_read(m, "o", &path);
        if (r < 0 || strncmp(path, FERRY_JOB_PATH_PREFIX, n) != 0 || path[n] != '/')
                return 0;
        r = bus_read_interfaces(m, FERRY_JOB_INTERFACE, job_fields, _JOB_FIELD_MAX, job_list_add, &l);
        if (r < 0) {
                jobs_poll_start(w);
                return 0;
        }
        for (size_t i = 0; i < l.n; i++)
                job_seen(w, l.jobs + i);
        draw(w);
        return 0;
}

/* ---- what the node says ---- */

static bool drain_ended(const DrainWatch *w) {
        const char *mode = node_string(&w->node, NODE_DRAIN_MODE), *state = node_string(&w->node, NODE_DRAIN_STATE);

        /* Blocked, and nothing but the blocked VMs is left: only the
         * operator can change that. Before, the other VMs still move. */
        return streq(mode, "none") || streq(state, "drained") ||
               (streq(state, "drain-blocked") &&
                node_uint(&w->node, NODE_DRAIN_REMAINING) <= node_n_blockers(&w->node));
}

/* The drain ended: say how, once, and stop. */
static void finish(DrainWatch *w) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        const char *mode = node_string(&w->node, NODE_DRAIN_MODE), *state = node_string(&w->node, NODE_DRAIN_STATE);
        char elapsed[FORMAT_DURATION_MAX], vms[32], moved_text[96] = "";
        size_t moved, n_blockers = node_n_blockers(&w->node);
        int code, r = 0;

        /* The last migrations' ends, reported and counted. */
        (void) jobs_read_sync(w, false, &error);
        moved = n_moved(w);

        if (w->out)
                area_clear(w);
        format_duration(elapsed, clock_monotonic_usec() - w->started);
        if (moved > 0)
                snprintf(moved_text, sizeof(moved_text), "%s moved in %s", plural_vms(vms, moved), elapsed);

        if (w->json) {
                JsonWriter jw;

                json_init(&jw, stdout, true);
                node_write_json(&jw, &w->node);
                r = json_finish(&jw);
        }

        if (streq(mode, "none")) {
                size_t under_way = n_active(w);

                code = FERRYCTL_EXIT_FAILURE;
                print_error("%s: the drain was ended by someone else while ferryctl followed it (its drain mode is "
                            "now none)%s%s", w->arg, moved > 0 ? "; before that, " : "", moved_text);
                if (under_way > 0)
                        print_error("%zu migration%s off %s %s still under way: see 'ferryctl jobs'", under_way,
                                    under_way == 1 ? "" : "s", w->arg, under_way == 1 ? "is" : "are");
        } else if (streq(state, "drained")) {
                code = FERRYCTL_EXIT_SUCCESS;
                if (!w->json && r >= 0) {
                        if (moved > 0)
                                r = printf("%s: drained: %s\n", w->arg, moved_text);
                        else
                                r = printf("%s: drained: no VM was left to move\n", w->arg);
                        /* --blockers leave: say what stays. */
                        if (r >= 0 && n_blockers > 0)
                                r = printf("%s left on %s:\n", plural_vms(vms, n_blockers), w->arg);
                        for (size_t i = 0; r >= 0 && i < n_blockers; i++)
                                r = printf("  %s: %s\n", node_blocker_vm(&w->node, i), node_blocker_reason(&w->node, i));
                        r = r < 0 ? -EIO : 0;
                }
        } else {
                code = FERRYCTL_EXIT_DRAIN_BLOCKED;
                fflush(stdout);
                print_error("%s: drain blocked%s%s: %s cannot move:", w->arg, moved > 0 ? " after " : "", moved_text,
                            plural_vms(vms, n_blockers));
                for (size_t i = 0; i < n_blockers; i++)
                        print_error("  %s: %s", node_blocker_vm(&w->node, i), node_blocker_reason(&w->node, i));
                print_error("%s stays drain-blocked and in maintenance: keep %s there with 'ferryctl drain %s "
                            "--blockers leave', or end the drain with 'ferryctl undrain %s'",
                            w->arg, n_blockers == 1 ? "it" : "them", w->arg, w->arg);
        }

        r = finish_output(r);
        watch_stop(w, r != FERRYCTL_EXIT_SUCCESS ? r : code);
}

static void update(DrainWatch *w, bool authoritative);

static int on_node_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

static void node_poll_start(DrainWatch *w) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (w->exit_code >= 0)
                return;
        if (w->node_slot) {
                w->node_again = true;
                return;
        }

        r = sd_bus_message_new_method_call(w->bus, &m, FERRY_BUS_NAME, w->path,
                                           "org.freedesktop.DBus.Properties", "GetAll");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", FERRY_NODE_INTERFACE);
        if (r >= 0)
                r = sd_bus_call_async(w->bus, &w->node_slot, m, on_node_reply, w, DRAIN_CALL_TIMEOUT_USEC);
        if (r < 0) {
                if (w->out)
                        area_clear(w);
                if (!sd_bus_is_open(w->bus))
                        print_error("lost the connection to the system bus while following the drain of %s; "
                                    "the drain goes on: see 'ferryctl node %s'", w->arg, w->arg);
                else
                        print_error("cannot read node '%s': %s", w->arg, strerror(-r));
                watch_stop(w, sd_bus_is_open(w->bus) ? FERRYCTL_EXIT_FAILURE : FERRYCTL_EXIT_UNREACHABLE);
        }
}

static void node_poll_failed(DrainWatch *w, const sd_bus_error *error, int r) {
        uint64_t now = clock_monotonic_usec();
        char operation[128];

        if (sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_INTERFACE)) {
                if (w->out)
                        area_clear(w);
                print_error("node '%s' disappeared while its drain was followed: %s", w->arg, bus_error_text(error, r));
                watch_stop(w, FERRYCTL_EXIT_FAILURE);
                return;
        }

        /* Anything else may pass (ferryd restarting, a busy node). */
        if (w->failing_since == 0)
                w->failing_since = now;
        if (now - w->failing_since < DRAIN_GIVE_UP_USEC && sd_bus_is_open(w->bus))
                return;

        if (w->out)
                area_clear(w);
        snprintf(operation, sizeof(operation), "following the drain of %s", w->arg);
        r = bus_error_exit(operation, error, r);
        print_error("the drain of %s goes on without ferryctl: see 'ferryctl node %s'", w->arg, w->arg);
        watch_stop(w, r);
}

static int on_node_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(node_info_done) NodeInfo node = {};
        DrainWatch *w = userdata;
        int r;

        w->node_slot = sd_bus_slot_unref(w->node_slot);

        if (sd_bus_message_is_method_error(m, NULL)) {
                node_poll_failed(w, sd_bus_message_get_error(m), -sd_bus_message_get_errno(m));
                return 0;
        }

        r = bus_read_properties(m, node_fields, _NODE_FIELD_MAX, node.values);
        if (r < 0) {
                if (w->out)
                        area_clear(w);
                watch_stop(w, bus_parse_error_exit("following the drain", r));
                return 0;
        }

        w->failing_since = 0;
        node_info_done(&w->node);
        w->node = node;
        node = (NodeInfo) {};
        update(w, true);

        if (w->node_again) {
                w->node_again = false;
                node_poll_start(w);
        }
        return 0;
}

static void update(DrainWatch *w, bool authoritative) {
        if (w->exit_code >= 0)
                return;

        if (drain_ended(w)) {
                /* A signal may be older than what the last read said
                 * (queued while Drain was called): end on a full read. */
                if (authoritative)
                        finish(w);
                else
                        node_poll_start(w);
                return;
        }

        /* A VM left: the migration that took it ended, or is about to. */
        if (node_uint(&w->node, NODE_DRAIN_REMAINING) != w->remaining_seen) {
                w->remaining_seen = node_uint(&w->node, NODE_DRAIN_REMAINING);
                jobs_poll_start(w);
        }
        draw(w);
}

/* PropertiesChanged(s interface, a{sv} changed, as invalidated) of the node. */
static int on_node_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        DrainWatch *w = userdata;
        const char *interface;
        char **invalidated = NULL;
        int r;

        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0 || !streq(interface, FERRY_NODE_INTERFACE))
                return 0;

        r = bus_read_properties(m, node_fields, _NODE_FIELD_MAX, w->node.values);
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &invalidated);
        if (r < 0 || (invalidated && invalidated[0]))
                node_poll_start(w);
        for (char **i = invalidated; i && *i; i++)
                free(*i);
        free(invalidated);

        update(w, false);
        return 0;
}

/* ---- a drain that does not move ---- */

/* Everything whose change means the drain moves: its state, what is left,
 * and where each migration is. */
static char *progress_text(const DrainWatch *w) {
        char *s = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&s, &size);
        if (!f)
                return NULL;
        fprintf(f, "%s %" PRIu64 " %zu", node_string(&w->node, NODE_DRAIN_STATE),
                node_uint(&w->node, NODE_DRAIN_REMAINING), node_n_blockers(&w->node));
        for (size_t i = 0; i < w->n_jobs; i++) {
                const JobInfo *j = &w->jobs[i].job;

                if (tracked_active(w->jobs + i))
                        fprintf(f, "|%" PRIu64 " %s %s %" PRIu64 " %" PRIu64 " %" PRIu64, job_uint(j, JOB_ID),
                                job_string(j, JOB_STATE), job_string(j, JOB_PHASE), job_uint(j, JOB_QUEUE_POSITION),
                                job_uint(j, JOB_MEMORY_PROCESSED), job_uint(j, JOB_ITERATION));
        }
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

/* Nothing moved for DRAIN_STALL_USEC: say what the drain waits for, and
 * go on waiting. */
static void check_stall(DrainWatch *w) {
        _cleanup_free_ char *now_text = progress_text(w), *head = NULL;
        uint64_t now = clock_monotonic_usec();
        char quiet[FORMAT_DURATION_MAX];
        size_t n_jobs = n_active(w);

        /* What is known is old: not a drain that does not move. */
        if (!now_text || w->failing_since > 0)
                return;
        if (!w->progress || !streq(w->progress, now_text)) {
                free(w->progress);
                w->progress = TAKE_PTR(now_text);
                w->progress_at = now;
                return;
        }
        /* Said again after as long, not on every tick. */
        if (now - MAX(w->progress_at, w->noticed_at) < DRAIN_STALL_USEC)
                return;

        head = node_drain_line(&w->node, w->arg, n_jobs);
        if (!head)
                return;
        if (w->out) {
                area_clear(w);
                fflush(w->out);
        }
        format_duration(quiet, now - w->progress_at);
        if (n_jobs > 0) {
                print_error("%s; nothing moved for %s. Waiting for:", head, quiet);
                for (size_t i = 0; i < w->n_jobs; i++) {
                        _cleanup_free_ char *brief = NULL;

                        if (!tracked_active(w->jobs + i))
                                continue;
                        brief = job_brief_line(&w->jobs[i].job, w->arrow);
                        if (brief)
                                print_error("  %s", brief);
                }
                if (!node_bool(&w->node, NODE_ONLINE))
                        print_error("%s's ferryd is not online: its migrations make progress once it is back",
                                    w->arg);
        } else if (!node_bool(&w->node, NODE_ONLINE))
                print_error("%s; nothing moved for %s and no migration of its VMs is queued or running: "
                            "%s's ferryd, which carries out its drain, is not online",
                            head, quiet, w->arg);
        else
                print_error("%s; nothing moved for %s and no migration of its VMs is queued or running. "
                            "%s's ferryd carries out the drain: its log says why; "
                            "'ferryctl drain %s --dry-run' shows the plan",
                            head, quiet, w->arg, w->arg);
        print_error("still waiting; Ctrl-C stops ferryctl, not the drain");
        w->noticed_at = now;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        DrainWatch *w = userdata;
        int r;

        r = sd_event_source_set_time(s, usec + DRAIN_POLL_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (r < 0) {
                if (w->out)
                        area_clear(w);
                print_error("cannot keep following the drain of %s: %s", w->arg, strerror(-r));
                watch_stop(w, FERRYCTL_EXIT_FAILURE);
                return 0;
        }

        node_poll_start(w);
        if (clock_monotonic_usec() - w->jobs_read_at >= DRAIN_JOBS_POLL_USEC)
                jobs_poll_start(w);
        if (w->exit_code < 0)
                check_stall(w);
        /* Redrawn also without news: the time taken moves. */
        if (w->tty)
                draw(w);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        DrainWatch *w = userdata;
        bool leave = streq(node_string(&w->node, NODE_DRAIN_MODE), "leave");

        if (w->out) {
                area_clear(w);
                fflush(w->out);
        }
        print_error("stopped following the drain of %s; the drain goes on. Follow it again with "
                    "'ferryctl drain %s --wait%s', stop it with 'ferryctl undrain %s'",
                    w->arg, w->arg, leave ? " --blockers leave" : "", w->arg);
        watch_stop(w, FERRYCTL_EXIT_INTERRUPTED);
        return 0;
}

/* ---- setting up ---- */

int drain_watch_new(sd_bus *bus, const char *name_or_id, const char *path, const CommandContext *ctx,
                    DrainWatch **ret) {
        _cleanup_(drain_watch_freep) DrainWatch *w = NULL;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        char operation[128];
        int r;

        w = calloc(1, sizeof(DrainWatch));
        if (!w) {
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }
        w->bus = bus;
        w->arg = name_or_id;
        w->json = ctx->json;
        w->exit_code = -1;
        w->path = strdup(path);
        if (!w->path) {
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }
        snprintf(operation, sizeof(operation), "following the drain of %s", name_or_id);

        /* Progress for a human: on stdout, or with --json (stdout is for the
         * result) on stderr if that is a terminal. */
        if (!ctx->json) {
                w->out = stdout;
                w->tty = isatty(STDOUT_FILENO);
        } else if (isatty(STDERR_FILENO)) {
                w->out = stderr;
                w->tty = true;
        }
        w->arrow = w->tty ? "\u2192" : "->";

        r = sd_event_new(&w->event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, w->event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                print_error("cannot set up %s: %s", operation, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }
        w->attached = true;

        /* Subscribed before the first reads: a change between the two is
         * then either in the read or in a signal after it. */
        r = sd_bus_match_signal(bus, &w->match_node, FERRY_BUS_NAME, w->path,
                                "org.freedesktop.DBus.Properties", "PropertiesChanged", on_node_changed, w);
        if (r >= 0)
                r = sd_bus_add_match(bus, &w->match_jobs,
                                     "type='signal',sender='" FERRY_BUS_NAME "',"
                                     "interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',"
                                     "path_namespace='" FERRY_JOB_PATH_PREFIX "'",
                                     on_job_changed, w);
        if (r >= 0)
                r = sd_bus_match_signal(bus, &w->match_added, FERRY_BUS_NAME, FERRY_OBJECT_PATH,
                                        "org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
                                        on_interfaces_added, w);
        if (r < 0) {
                print_error("cannot subscribe to the changes of node '%s': %s", name_or_id, strerror(-r));
                return sd_bus_is_open(bus) ? FERRYCTL_EXIT_FAILURE : FERRYCTL_EXIT_UNREACHABLE;
        }

        r = bus_read_node(bus, name_or_id, w->path, &w->node);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;
        w->name = strdup(node_string(&w->node, NODE_NAME));
        if (!w->name) {
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        /* Which jobs exist before the drain: the migrations it queues are
         * the newer ones; those already under way are followed too. */
        r = jobs_read_sync(w, true, &error);
        if (r < 0) {
                if (sd_bus_error_is_set(&error))
                        return bus_error_exit(operation, &error, r);
                return bus_parse_error_exit(operation, r);
        }

        *ret = TAKE_PTR(w);
        return FERRYCTL_EXIT_SUCCESS;
}

int drain_watch_run(DrainWatch *w) {
        sigset_t mask;
        int r;

        w->started = clock_monotonic_usec();

        /* What the drain looks like now that it is asked for: what the
         * first read said was before. */
        node_info_done(&w->node);
        r = bus_read_node(w->bus, w->arg, w->path, &w->node);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        /* Ctrl-C stops ferryctl, not the drain. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, &w->saved_mask) < 0) {
                r = negative_errno();
                print_error("cannot set up following the drain of %s: %s", w->arg, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }
        w->mask_set = true;

        r = sd_event_add_signal(w->event, &w->sigint, SIGINT, on_signal, w);
        if (r >= 0)
                r = sd_event_add_signal(w->event, &w->sigterm, SIGTERM, on_signal, w);
        if (r >= 0)
                r = sd_event_add_time_relative(w->event, &w->timer, CLOCK_MONOTONIC, DRAIN_POLL_USEC, 0, on_timer, w);
        if (r < 0) {
                print_error("cannot set up following the drain of %s: %s", w->arg, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        update(w, true);
        if (w->exit_code < 0) {
                r = sd_event_loop(w->event);
                if (r < 0 && w->exit_code < 0) {
                        if (w->out)
                                area_clear(w);
                        print_error("following the drain of %s failed: %s", w->arg, strerror(-r));
                        w->exit_code = FERRYCTL_EXIT_FAILURE;
                }
        }

        return w->exit_code;
}
