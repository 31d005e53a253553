/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* ferryd logs through libqb like corosync and Pacemaker: to stderr (which
 * the journal collects under systemd), optionally to syslog, and always into
 * the blackbox, an in-memory flight recorder that keeps the last messages at
 * every level and is written to a file on a crash or on SIGUSR1
 * (read it with `qb-blackbox FILE`). */

#include <errno.h>
#include <qb/qblog.h>
#include <stdbool.h>

int log_setup(const char *ident, bool to_syslog);
void log_set_level(int priority);
int log_level_from_string(const char *s);
const char *log_level_to_string(int priority);
/* Whether stderr is a stream into the journal (systemd's JOURNAL_STREAM
 * names it): then a message with fields of its own can go to the journal
 * directly instead of as a line of stderr. */
bool log_stderr_is_journal(void);
/* Logs text to every target but stderr: for a message the caller already
 * sent to the journal itself. */
void log_except_stderr(int priority, const char *text);
/* Writes the blackbox to dir/ferryd-blackbox-PID-TIME; returns 0 or -errno. */
int log_dump_blackbox(const char *dir);
void log_shutdown(void);

/* The errno-style helpers of systemd: log with %m meaning `error`, and
 * evaluate to -abs(error) so that `return log_error_errno(r, ...)` works. */
#define log_full_errno(level, error, fmt, ...)                         \
        ({                                                              \
                int _e = (error) < 0 ? -(error) : (error);              \
                errno = _e;                                             \
                qb_log(level, fmt, ##__VA_ARGS__);                      \
                -_e;                                                    \
        })

#define log_debug(...)   qb_log(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    qb_log(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  qb_log(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) qb_log(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   qb_log(LOG_ERR, __VA_ARGS__)
#define log_crit(...)    qb_log(LOG_CRIT, __VA_ARGS__)

#define log_debug_errno(e, ...)   log_full_errno(LOG_DEBUG, e, __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, e, __VA_ARGS__)
#define log_error_errno(e, ...)   log_full_errno(LOG_ERR, e, __VA_ARGS__)
