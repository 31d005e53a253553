/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "polkit.h"

#include <errno.h>
#include <stdlib.h>

#include "daemon.h"
#include "log.h"
#include "macro.h"

#define POLKIT_TIMEOUT_USEC (25 * 1000 * 1000ULL)

typedef struct AuthRequest {
        Daemon *daemon;
        sd_bus_message *call;
        AuthorizedFn fn;
        char *action;
} AuthRequest;

static void auth_request_free(AuthRequest *a) {
        if (!a)
                return;
        sd_bus_message_unref(a->call);
        free(a->action);
        free(a);
}

static int reply_error(sd_bus_message *call, const sd_bus_error *e) {
        int r = sd_bus_reply_method_error(call, e);
        if (r < 0)
                log_debug_errno(r, "Failed to send an error reply: %m");
        return 0;
}

static int on_polkit_reply(sd_bus_message *reply, void *userdata, sd_bus_error *unused) {
        AuthRequest *a = userdata;
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        int authorized = 0, challenge = 0, r;

        if (sd_bus_message_is_method_error(reply, NULL)) {
                const sd_bus_error *e = sd_bus_message_get_error(reply);
                log_notice("polkit did not answer for \"%s\" (%s); denying", a->action, e ? e->message : "unknown");
                sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED,
                                  "%s requires root or polkit authorization, and polkit is not available",
                                  a->action);
                reply_error(a->call, &error);
                goto done;
        }
        r = sd_bus_message_enter_container(reply, 'r', "bba{ss}");
        if (r >= 0)
                r = sd_bus_message_read(reply, "bb", &authorized, &challenge);
        if (r < 0) {
                sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED, "unreadable answer from polkit");
                reply_error(a->call, &error);
                goto done;
        }
        if (!authorized) {
                sd_bus_error_setf(&error, SD_BUS_ERROR_ACCESS_DENIED,
                                  "not authorized for %s%s", a->action,
                                  challenge ? " (authentication required)" : "");
                reply_error(a->call, &error);
                goto done;
        }
        r = a->fn(a->daemon, a->call, &error);
        if (r < 0) {
                if (!sd_bus_error_is_set(&error))
                        sd_bus_error_set_errno(&error, r);
                reply_error(a->call, &error);
        }
done:
        auth_request_free(a);
        return 0;
}

int polkit_authorize(Daemon *d, sd_bus_message *m, const char *action, AuthorizedFn fn, sd_bus_error *error) {
        _cleanup_(sd_bus_creds_unrefp) sd_bus_creds *creds = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *call = NULL;
        AuthRequest *a;
        uid_t euid;
        int r;

        r = sd_bus_query_sender_creds(m, SD_BUS_CREDS_EUID, &creds);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to identify the caller: %m");
        r = sd_bus_creds_get_euid(creds, &euid);
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to identify the caller: %m");
        if (euid == 0)
                return fn(d, m, error);

        r = sd_bus_message_new_method_call(d->bus, &call, "org.freedesktop.PolicyKit1",
                                           "/org/freedesktop/PolicyKit1/Authority",
                                           "org.freedesktop.PolicyKit1.Authority", "CheckAuthorization");
        if (r >= 0)
                r = sd_bus_message_append(call, "(sa{sv})sa{ss}us",
                                          "system-bus-name", 1, "name", "s", sd_bus_message_get_sender(m),
                                          action, 0, UINT32_C(0), "");
        if (r < 0)
                return sd_bus_error_set_errnof(error, r, "Failed to ask polkit: %m");

        a = calloc(1, sizeof(AuthRequest));
        if (!a || !(a->action = strdup(action))) {
                free(a);
                return -ENOMEM;
        }
        a->daemon = d;
        a->call = sd_bus_message_ref(m);
        a->fn = fn;
        r = sd_bus_call_async(d->bus, NULL, call, on_polkit_reply, a, POLKIT_TIMEOUT_USEC);
        if (r < 0) {
                auth_request_free(a);
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                         "%s requires root or polkit authorization, and polkit is not reachable",
                                         action);
        }
        return 1;
}
