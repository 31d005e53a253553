/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the command implementations (cmd-*.c) share with ferryctl.c: the exit
 * codes, which are a documented interface (docs/ferryctl.md, --help), and the
 * signature of a command. */

#include <stdbool.h>

#include <systemd/sd-bus.h>

#include "macro.h"

enum {
        FERRYCTL_EXIT_SUCCESS       = 0,
        FERRYCTL_EXIT_FAILURE       = 1, /* the operation failed; the message says why */
        FERRYCTL_EXIT_USAGE         = 2,
        FERRYCTL_EXIT_UNREACHABLE   = 3, /* no system bus, or ferryd not on it */
        FERRYCTL_EXIT_ACCESS_DENIED = 4,
        FERRYCTL_EXIT_NO_SUCH_NODE  = 5,
};

typedef struct CommandContext {
        bool json;
} CommandContext;

/* A command gets its arguments after the command name (already checked
 * against the command's minimum and maximum count) and returns an exit code,
 * having printed its result or its error. It connects to the bus itself
 * (bus_connect()), after checking its arguments: a usage error is reported
 * as one even where there is no bus. */
typedef int (*CommandFunc)(const CommandContext *ctx, char **args, unsigned n_args);

int cmd_status(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_nodes(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_node(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_maintenance(const CommandContext *ctx, char **args, unsigned n_args);

/* Prints the usage error and the hint to --help; returns FERRYCTL_EXIT_USAGE. */
int usage_error(const char *fmt, ...) _printf_(1, 2);

/* After a result is printed: a failed write to stdout (full disk, closed
 * pipe) is an error too, or a script would take a truncated result for a
 * complete one. Returns FERRYCTL_EXIT_SUCCESS or FERRYCTL_EXIT_FAILURE. */
int finish_output(int r);
