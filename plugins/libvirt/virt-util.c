/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "virt-util.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libvirt/virterror.h>

int fail(FerryError *error, int r, const char *fmt, ...) {
        if (error) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(error->message, sizeof(error->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

/* So that ferryd can tell "no such VM" from "not supported" from "try
 * again" without parsing messages. */
int errno_from_virt(const virError *e, int fallback) {
        if (!e)
                return fallback;
        switch (e->code) {
        case VIR_ERR_NO_DOMAIN:
                return -ENOENT;
        case VIR_ERR_NO_SUPPORT:
        case VIR_ERR_OPERATION_UNSUPPORTED:
        case VIR_ERR_ARGUMENT_UNSUPPORTED:
                return -EOPNOTSUPP;
        case VIR_ERR_CPU_INCOMPATIBLE:
                return -ENOTSUP;
        case VIR_ERR_INVALID_ARG:
        case VIR_ERR_OPERATION_INVALID:
        case VIR_ERR_XML_ERROR:
        case VIR_ERR_CONFIG_UNSUPPORTED:
        case VIR_ERR_MIGRATE_UNSAFE:
                return -EINVAL;
        case VIR_ERR_OPERATION_ABORTED:
                return -ECANCELED;
        case VIR_ERR_OPERATION_TIMEOUT:
                return -ETIMEDOUT;
        case VIR_ERR_AUTH_FAILED:
        case VIR_ERR_AUTH_CANCELLED:
        case VIR_ERR_AUTH_UNAVAILABLE:
        case VIR_ERR_ACCESS_DENIED:
                return -EACCES;
        case VIR_ERR_NO_CONNECT:
                return -ECONNREFUSED;
        case VIR_ERR_SYSTEM_ERROR:
                /* virReportSystemError() keeps the errno in int1. */
                return e->int1 > 0 ? -e->int1 : fallback;
        default:
                return fallback;
        }
}

int fail_virt(FerryError *error, int fallback, const char *fmt, ...) {
        /* libvirt keeps errors per thread: this is the caller's. */
        const virError *e = virGetLastError();

        if (error) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(error->message, sizeof(error->message), fmt, ap);
                va_end(ap);
                size_t l = strlen(error->message);
                snprintf(error->message + l, sizeof(error->message) - l, ": %s",
                         e && e->message ? e->message : "unknown libvirt error");
        }
        return errno_from_virt(e, fallback);
}

bool last_error_is(int code) {
        const virError *e = virGetLastError();
        return e && e->code == code;
}

uint64_t now_usec(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / 1000;
}

static pthread_once_t event_loop_once = PTHREAD_ONCE_INIT;
static int event_loop_result = -ENOTCONN;

static void *event_loop(void *userdata) {
        for (;;)
                if (virEventRunDefaultImpl() < 0)
                        (void) usleep(100 * 1000);      /* do not spin on a broken loop */
        return NULL;
}

static void event_loop_init(void) {
        sigset_t all, saved;
        pthread_t thread;
        int r;

        if (virEventRegisterDefaultImpl() < 0) {
                event_loop_result = -EIO;
                return;
        }
        /* Not for the signals ferryd handles in its own loop. */
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &saved);
        r = pthread_create(&thread, NULL, event_loop, NULL);
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        if (r != 0) {
                event_loop_result = -r;
                return;
        }
        (void) pthread_setname_np(thread, "ferry-virt-ev");
        (void) pthread_detach(thread);
        event_loop_result = 0;
}

int virt_event_loop_start(void) {
        (void) pthread_once(&event_loop_once, event_loop_init);
        return event_loop_result;
}

void virt_keepalive(virConnectPtr conn) {
        if (event_loop_result == 0)
                /* 1 = the driver has none (local drivers need none). */
                (void) virConnectSetKeepAlive(conn, 5, 3);
}
