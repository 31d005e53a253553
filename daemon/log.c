/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "log.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

#define BLACKBOX_SIZE (1024 * 1024)

static const struct {
        const char *name;
        int priority;
} levels[] = {
        { "error", LOG_ERR },
        { "warning", LOG_WARNING },
        { "notice", LOG_NOTICE },
        { "info", LOG_INFO },
        { "debug", LOG_DEBUG },
        { "trace", LOG_TRACE },
};

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (strcasecmp(levels[i].name, s) == 0)
                        return levels[i].priority;
        return -EINVAL;
}

const char *log_level_to_string(int priority) {
        for (size_t i = 0; i < ELEMENTSOF(levels); i++)
                if (levels[i].priority == priority)
                        return levels[i].name;
        return "unknown";
}

int log_setup(const char *ident, bool to_syslog) {
        qb_log_init(ident, LOG_DAEMON, LOG_INFO);

        /* stderr: the journal adds its own timestamps, a terminal wants them. */
        qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
        qb_log_format_set(QB_LOG_STDERR, isatty(STDERR_FILENO) ? "%t %p: %b" : "%p: %b");
        qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_INFO);

        qb_log_ctl(QB_LOG_SYSLOG, QB_LOG_CONF_ENABLED, to_syslog ? QB_TRUE : QB_FALSE);

        /* The blackbox records everything, whatever the log level. */
        qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_SIZE, BLACKBOX_SIZE);
        qb_log_ctl(QB_LOG_BLACKBOX, QB_LOG_CONF_ENABLED, QB_TRUE);
        qb_log_filter_ctl(QB_LOG_BLACKBOX, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", LOG_TRACE);
        return 0;
}

void log_set_level(int priority) {
        qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_CLEAR_ALL, QB_LOG_FILTER_FILE, "*", LOG_TRACE);
        qb_log_filter_ctl(QB_LOG_STDERR, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", priority);
        qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_CLEAR_ALL, QB_LOG_FILTER_FILE, "*", LOG_TRACE);
        qb_log_filter_ctl(QB_LOG_SYSLOG, QB_LOG_FILTER_ADD, QB_LOG_FILTER_FILE, "*", priority);
}

bool log_stderr_is_journal(void) {
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

void log_except_stderr(int priority, const char *text) {
        /* The loop is single-threaded and libqb's targets are not threaded
         * here, so switching stderr off around one message is safe; the
         * target's filters stay as they are. */
        bool on = qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_STATE_GET, 0) == QB_LOG_STATE_ENABLED;

        if (on)
                qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_FALSE);
        qb_log(priority, "%s", text);
        if (on)
                qb_log_ctl(QB_LOG_STDERR, QB_LOG_CONF_ENABLED, QB_TRUE);
}

int log_dump_blackbox(const char *dir) {
        char path[PATH_MAX];

        snprintf(path, sizeof(path), "%s/ferryd-blackbox-%d-%lld", dir, (int) getpid(), (long long) time(NULL));
        ssize_t n = qb_log_blackbox_write_to_file(path);
        if (n < 0)
                return (int) n;
        log_notice("Blackbox written to \"%s\" (%zd bytes)", path, n);
        return 0;
}

void log_shutdown(void) {
        qb_log_fini();
}
