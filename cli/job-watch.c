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
#include "ferry-bus.h"
#include "job-watch.h"
#include "job.h"

/* How often the job is read again, whatever the signals say. */
#define WATCH_POLL_USEC (1 * UINT64_C(1000000))
/* One read that takes longer is taken for a ferryd that does not answer. */
#define WATCH_CALL_TIMEOUT_USEC (10 * UINT64_C(1000000))
/* How long ferryd may not answer (it restarts, the node is busy) before
 * ferryctl stops watching. The job itself does not depend on ferryctl. */
#define WATCH_GIVE_UP_USEC (60 * UINT64_C(1000000))

typedef struct Watch {
        sd_bus *bus;
        sd_event *event;
        uint64_t id;
        char path[BUS_JOB_PATH_MAX];
        bool json;

        JobInfo job;
        EtaHistory eta;
        char *eta_phase;           /* phase of the samples in eta */

        FILE *out;                 /* where progress goes; NULL: nowhere */
        bool tty;                  /* redraw one line in place */
        const char *dash;          /* "no estimate yet" */
        bool drawn;                /* a progress line is on the screen */
        char *last_line;           /* not a tty: the last state line printed */

        sd_bus_slot *poll_slot;    /* a GetAll in flight */
        bool poll_again;           /* a signal came while it was: read once more */
        uint64_t failing_since;    /* CLOCK_MONOTONIC; 0: the last read worked */

        int exit_code;             /* -1 while watching */
} Watch;

static void watch_done(Watch *w) {
        w->poll_slot = sd_bus_slot_unref(w->poll_slot);
        job_info_done(&w->job);
        free(w->eta_phase);
        free(w->last_line);
}

static void watch_stop(Watch *w, int exit_code) {
        w->exit_code = exit_code;
        (void) sd_event_exit(w->event, 0);
}

static void clear_line(Watch *w) {
        if (!w->drawn)
                return;
        fputs("\r\033[K", w->out);
        fflush(w->out);
        w->drawn = false;
}

/* Cuts s after `columns` code points, so that the line never wraps: a
 * wrapped line cannot be redrawn with \r. */
static void truncate_to_width(char *s, size_t columns) {
        size_t n = 0;

        for (char *p = s; *p; p++)
                if (((unsigned char) *p & 0xc0) != 0x80 && n++ == columns) {
                        *p = '\0';
                        return;
                }
}

static size_t terminal_columns(FILE *f) {
        struct winsize ws;

        if (ioctl(fileno(f), TIOCGWINSZ, &ws) < 0 || ws.ws_col == 0)
                return 80;
        return ws.ws_col;
}

static void draw(Watch *w) {
        _cleanup_free_ char *line = NULL, *full = NULL;

        if (!w->out)
                return;

        if (!w->tty) {
                /* One line per change of state, phase or queue position. */
                line = job_state_line(&w->job);
                if (!line || (w->last_line && streq(w->last_line, line)))
                        return;
                fprintf(w->out, "job %" PRIu64 ": %s\n", w->id, line);
                fflush(w->out);
                free(w->last_line);
                w->last_line = TAKE_PTR(line);
                return;
        }

        line = job_progress_line(&w->job, eta_history_estimate(&w->eta), w->dash);
        if (!line)
                return;
        if (w->failing_since > 0) {
                uint64_t now = clock_monotonic_usec();

                if (asprintf(&full, "job %" PRIu64 ": %s  (no answer from ferryd for %" PRIu64 "s)", w->id, line,
                             (now > w->failing_since ? now - w->failing_since : 0) / UINT64_C(1000000)) < 0)
                        return;
        } else if (asprintf(&full, "job %" PRIu64 ": %s", w->id, line) < 0)
                return;

        truncate_to_width(full, terminal_columns(w->out) - 1);
        fprintf(w->out, "\r%s\033[K", full);
        fflush(w->out);
        w->drawn = true;
}

static void record_sample(Watch *w) {
        const char *phase = job_string(&w->job, JOB_PHASE);
        EtaSample s;

        if (!streq(job_string(&w->job, JOB_STATE), "running") || job_uint(&w->job, JOB_MEMORY_TOTAL) == 0)
                return;

        /* Pre-copy and post-copy converge differently: start over. */
        if (!w->eta_phase || !streq(w->eta_phase, phase)) {
                char *copy = strdup(phase);

                if (!copy)
                        return;
                free(w->eta_phase);
                w->eta_phase = copy;
                eta_history_reset(&w->eta);
        }

        s = (EtaSample) {
                .time_usec = clock_monotonic_usec(),
                .remaining = job_uint(&w->job, JOB_MEMORY_REMAINING),
                .rate = job_uint(&w->job, JOB_RATE),
                .dirty_rate = job_uint(&w->job, JOB_DIRTY_RATE),
        };
        (void) eta_history_add(&w->eta, &s);
}

/* The job ended: say how, once, and stop. */
static void finish(Watch *w) {
        _cleanup_free_ char *result = NULL;
        const char *state = job_string(&w->job, JOB_STATE);
        int code, r = 0;

        clear_line(w);

        if (streq(state, "completed"))
                code = FERRYCTL_EXIT_SUCCESS;
        else if (streq(state, "cancelled"))
                code = FERRYCTL_EXIT_CANCELLED;
        else
                code = FERRYCTL_EXIT_FAILURE;

        if (w->json) {
                JsonWriter jw;

                json_init(&jw, stdout, true);
                job_write_json(&jw, &w->job);
                r = json_finish(&jw);
        }

        result = job_result_line(&w->job);
        if (!result)
                r = -ENOMEM;
        else if (code != FERRYCTL_EXIT_SUCCESS)
                print_error("job %" PRIu64 ": %s", w->id, result);
        else if (!w->json)
                r = printf("job %" PRIu64 ": %s\n", w->id, result) < 0 ? -EIO : 0;

        r = finish_output(r);
        watch_stop(w, r != FERRYCTL_EXIT_SUCCESS ? r : code);
}

/* New properties arrived. authoritative: they come from a full read. A
 * signal that reports the end is not enough to finish on: the other
 * properties of the same change (FinishedAt, DowntimeMs, Error) may come in
 * a signal of their own, so the end is reported from a full read. */
static void update(Watch *w, bool authoritative);

static int on_poll_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error);

static void poll_start(Watch *w) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        if (w->exit_code >= 0)
                return;
        if (w->poll_slot) {
                w->poll_again = true;
                return;
        }

        r = sd_bus_message_new_method_call(w->bus, &m, FERRY_BUS_NAME, w->path,
                                           "org.freedesktop.DBus.Properties", "GetAll");
        if (r >= 0)
                r = sd_bus_message_append(m, "s", FERRY_JOB_INTERFACE);
        if (r >= 0)
                r = sd_bus_call_async(w->bus, &w->poll_slot, m, on_poll_reply, w, WATCH_CALL_TIMEOUT_USEC);
        if (r < 0) {
                clear_line(w);
                if (!sd_bus_is_open(w->bus))
                        print_error("lost the connection to the system bus while following job %" PRIu64
                                    "; the job goes on: see 'ferryctl job %" PRIu64 "'", w->id, w->id);
                else
                        print_error("cannot read job %" PRIu64 ": %s", w->id, strerror(-r));
                watch_stop(w, sd_bus_is_open(w->bus) ? FERRYCTL_EXIT_FAILURE : FERRYCTL_EXIT_UNREACHABLE);
        }
}

static void poll_failed(Watch *w, const sd_bus_error *error, int r) {
        uint64_t now = clock_monotonic_usec();
        char operation[64];

        /* Job objects outlive their job by the last 1000 finished ones:
         * one that vanishes while watched was not kept, or ferryd lost it. */
        if (sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
            sd_bus_error_has_name(error, SD_BUS_ERROR_UNKNOWN_INTERFACE) ||
            sd_bus_error_has_name(error, FERRY_ERROR_NO_SUCH_JOB)) {
                clear_line(w);
                print_error("job %" PRIu64 " disappeared while it was followed: %s", w->id, bus_error_text(error, r));
                watch_stop(w, FERRYCTL_EXIT_FAILURE);
                return;
        }

        /* Anything else may pass (ferryd restarting, a busy node): keep
         * trying for a while, and say so on the progress line. */
        if (w->failing_since == 0) {
                w->failing_since = now;
                /* Old readings say nothing about now: no estimate until
                 * there are new ones. */
                eta_history_reset(&w->eta);
        }
        if (now - w->failing_since < WATCH_GIVE_UP_USEC && sd_bus_is_open(w->bus)) {
                draw(w);
                return;
        }

        clear_line(w);
        snprintf(operation, sizeof(operation), "following job %" PRIu64, w->id);
        r = bus_error_exit(operation, error, r);
        print_error("job %" PRIu64 " goes on without ferryctl: see 'ferryctl job %" PRIu64 "'", w->id, w->id);
        watch_stop(w, r);
}

static int on_poll_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        _cleanup_(job_info_done) JobInfo job = {};
        Watch *w = userdata;
        int r;

        w->poll_slot = sd_bus_slot_unref(w->poll_slot);

        if (sd_bus_message_is_method_error(m, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(m);

                poll_failed(w, e, -sd_bus_message_get_errno(m));
                return 0;
        }

        r = bus_read_properties(m, job_fields, _JOB_FIELD_MAX, job.values);
        if (r < 0) {
                clear_line(w);
                watch_stop(w, bus_parse_error_exit("following the job", r));
                return 0;
        }

        w->failing_since = 0;
        job_info_done(&w->job);
        w->job = job;
        job = (JobInfo) {};
        update(w, true);

        if (w->poll_again) {
                w->poll_again = false;
                poll_start(w);
        }
        return 0;
}

static void update(Watch *w, bool authoritative) {
        if (w->exit_code >= 0)
                return;

        if (job_is_final(&w->job)) {
                if (authoritative)
                        finish(w);
                else
                        poll_start(w);
                return;
        }

        record_sample(w);
        draw(w);
}

/* PropertiesChanged(s interface, a{sv} changed, as invalidated) of the job. */
static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Watch *w = userdata;
        const char *interface;
        char **invalidated = NULL;
        int r;

        r = sd_bus_message_read(m, "s", &interface);
        if (r < 0 || !streq(interface, FERRY_JOB_INTERFACE))
                return 0;

        r = bus_read_properties(m, job_fields, _JOB_FIELD_MAX, w->job.values);
        if (r >= 0)
                r = sd_bus_message_read_strv(m, &invalidated);
        /* Invalidated properties come without their value, and a signal
         * that cannot be read is as good as a missed one: read them all. */
        if (r < 0 || (invalidated && invalidated[0]))
                poll_start(w);
        for (char **i = invalidated; i && *i; i++)
                free(*i);
        free(invalidated);

        update(w, false);
        return 0;
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Watch *w = userdata;
        int r;

        r = sd_event_source_set_time(s, usec + WATCH_POLL_USEC);
        if (r >= 0)
                r = sd_event_source_set_enabled(s, SD_EVENT_ON);
        if (r < 0) {
                clear_line(w);
                print_error("cannot keep following job %" PRIu64 ": %s", w->id, strerror(-r));
                watch_stop(w, FERRYCTL_EXIT_FAILURE);
                return 0;
        }

        poll_start(w);
        /* Redrawn also without news: the "no answer for ..." counter moves. */
        if (w->tty && w->exit_code < 0)
                draw(w);
        return 0;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Watch *w = userdata;

        clear_line(w);
        print_error("stopped following job %" PRIu64 "; the migration goes on. "
                    "Follow it again with 'ferryctl job %" PRIu64 " --wait', cancel it with 'ferryctl cancel %" PRIu64 "'",
                    w->id, w->id, w->id);
        watch_stop(w, FERRYCTL_EXIT_INTERRUPTED);
        return 0;
}

/* The first read, synchronous: its errors are the command's errors. */
static int read_job(Watch *w) {
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        char operation[64];
        int r;

        snprintf(operation, sizeof(operation), "reading job %" PRIu64, w->id);

        r = bus_get_all_properties(w->bus, w->path, FERRY_JOB_INTERFACE, &error, &reply);
        if (r < 0) {
                if (sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_OBJECT) ||
                    sd_bus_error_has_name(&error, SD_BUS_ERROR_UNKNOWN_INTERFACE) ||
                    sd_bus_error_has_name(&error, FERRY_ERROR_NO_SUCH_JOB)) {
                        print_error("no such job: %" PRIu64, w->id);
                        return FERRYCTL_EXIT_NOT_FOUND;
                }
                return bus_error_exit(operation, &error, r);
        }

        r = bus_read_properties(reply, job_fields, _JOB_FIELD_MAX, w->job.values);
        if (r < 0)
                return bus_parse_error_exit(operation, r);

        return FERRYCTL_EXIT_SUCCESS;
}

static void event_unrefp(sd_event **e) {
        if (*e)
                (void) sd_event_unref(*e);
}

int job_watch(sd_bus *bus, uint64_t id, const CommandContext *ctx) {
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *match = NULL;
        _cleanup_(sd_event_source_unrefp) sd_event_source *timer = NULL, *sigint = NULL, *sigterm = NULL;
        _cleanup_(event_unrefp) sd_event *event = NULL;
        _cleanup_(watch_done) Watch w = {
                .bus = bus,
                .id = id,
                .json = ctx->json,
                .exit_code = -1,
        };
        sigset_t mask, saved;
        int r;

        bus_job_path(w.path, id);

        /* Progress for a human: on stdout, or with --json (stdout is for the
         * result) on stderr if that is a terminal. */
        if (!ctx->json) {
                w.out = stdout;
                w.tty = isatty(STDOUT_FILENO);
        } else if (isatty(STDERR_FILENO)) {
                w.out = stderr;
                w.tty = true;
        }
        w.dash = w.tty ? "\u2014" : "-";

        r = sd_event_new(&event);
        if (r >= 0)
                r = sd_bus_attach_event(bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0) {
                print_error("cannot set up following job %" PRIu64 ": %s", id, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }
        w.event = event;

        /* Subscribed before the first read: a change between the two is
         * then either in the read or in a signal after it. */
        r = sd_bus_match_signal(bus, &match, FERRY_BUS_NAME, w.path,
                                "org.freedesktop.DBus.Properties", "PropertiesChanged",
                                on_properties_changed, &w);
        if (r < 0) {
                (void) sd_bus_detach_event(bus);
                print_error("cannot subscribe to the changes of job %" PRIu64 ": %s", id, strerror(-r));
                return sd_bus_is_open(bus) ? FERRYCTL_EXIT_FAILURE : FERRYCTL_EXIT_UNREACHABLE;
        }

        r = read_job(&w);
        if (r != FERRYCTL_EXIT_SUCCESS) {
                (void) sd_bus_detach_event(bus);
                return r;
        }

        if (!ctx->json) {
                _cleanup_free_ char *line = job_summary_line(&w.job, w.tty ? "\u2192" : "->");

                if (!line || printf("%s\n", line) < 0 || fflush(stdout) != 0) {
                        (void) sd_bus_detach_event(bus);
                        return finish_output(line ? -EIO : -ENOMEM);
                }
                /* The summary said the state; the change lines say what follows. */
                w.last_line = strdup(job_string(&w.job, JOB_STATE));
        }

        /* Ctrl-C stops ferryctl, not the migration. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        if (sigprocmask(SIG_BLOCK, &mask, &saved) < 0) {
                r = negative_errno();
                (void) sd_bus_detach_event(bus);
                print_error("cannot set up following job %" PRIu64 ": %s", id, strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        r = sd_event_add_signal(event, &sigint, SIGINT, on_signal, &w);
        if (r >= 0)
                r = sd_event_add_signal(event, &sigterm, SIGTERM, on_signal, &w);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &timer, CLOCK_MONOTONIC, WATCH_POLL_USEC, 0, on_timer, &w);
        if (r < 0) {
                print_error("cannot set up following job %" PRIu64 ": %s", id, strerror(-r));
                w.exit_code = FERRYCTL_EXIT_FAILURE;
        } else {
                update(&w, true);
                if (w.exit_code < 0) {
                        r = sd_event_loop(event);
                        if (r < 0 && w.exit_code < 0) {
                                clear_line(&w);
                                print_error("following job %" PRIu64 " failed: %s", id, strerror(-r));
                                w.exit_code = FERRYCTL_EXIT_FAILURE;
                        }
                }
        }

        /* The event sources go before the bus leaves the loop. */
        sigint = sd_event_source_unref(sigint);
        sigterm = sd_event_source_unref(sigterm);
        timer = sd_event_source_unref(timer);
        w.poll_slot = sd_bus_slot_unref(w.poll_slot);
        match = sd_bus_slot_unref(match);
        (void) sd_bus_detach_event(bus);
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);

        return w.exit_code;
}
