/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Authorization of mutating bus calls: root is always allowed; anybody else
 * needs polkit to say yes to the action. The check is asynchronous (the
 * loop keeps serving while polkit thinks). When polkit is not there, or
 * does not answer, the call counts as denied. */

#include <systemd/sd-bus.h>

typedef struct Daemon Daemon;

/* Runs once the caller is authorized. It must either reply to m (or arrange
 * a later reply) and return >= 0, or return < 0 with `error` set, which
 * the caller of the continuation turns into the reply. */
typedef int (*AuthorizedFn)(Daemon *d, sd_bus_message *m, sd_bus_error *error);

/* Returns what the continuation returned when it could decide at once
 * (root), 1 when the decision is pending, or < 0 with `error` set. */
int polkit_authorize(Daemon *d, sd_bus_message *m, const char *action, AuthorizedFn fn, sd_bus_error *error);
