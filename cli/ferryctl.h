/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the command implementations (cmd-*.c) share with ferryctl.c: the exit
 * codes, which are a documented interface (docs/ferryctl.md, --help), and the
 * signature of a command. */

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-bus.h>

#include "macro.h"

enum {
        FERRYCTL_EXIT_SUCCESS       = 0,
        FERRYCTL_EXIT_FAILURE       = 1, /* the operation failed; the message says why */
        FERRYCTL_EXIT_USAGE         = 2,
        FERRYCTL_EXIT_UNREACHABLE   = 3, /* no system bus, or ferryd not on it */
        FERRYCTL_EXIT_ACCESS_DENIED = 4,
        FERRYCTL_EXIT_NOT_FOUND     = 5, /* no such node, VM, job or volume */
        FERRYCTL_EXIT_REFUSED       = 6, /* a pre-flight check refused the migration */
        FERRYCTL_EXIT_CANCELLED     = 7, /* the job that was waited for was cancelled */
        FERRYCTL_EXIT_DRAIN_BLOCKED = 8, /* the drain waited for is blocked: VMs cannot move */
        FERRYCTL_EXIT_INTERRUPTED   = 130, /* Ctrl-C while waiting; the job goes on */
};

/* ferryd answers a call that changes the replicated state once the change
 * is committed on every member, after a polkit check that may wait for the
 * operator to type a password and a commit that may wait out a membership
 * change. sd-bus's default of 25 s is shorter than that can take. */
#define FERRYCTL_COMMIT_TIMEOUT_USEC (60 * UINT64_C(1000000))

/* The options of the command line, parsed and checked (ferryctl.c); each
 * command reads those that apply to it and the others are unset. */
typedef struct CommandContext {
        bool json;
        bool all;                   /* jobs --all */
        const char *node;           /* vms --node */
        const char *to;             /* migrate --to (NULL: ferryd picks), volume move --to */
        bool check;                 /* migrate --check */
        bool wait;                  /* migrate --wait, job --wait, drain --wait, volume remove|move --wait */
        bool postcopy;              /* migrate --postcopy */
        bool auto_converge;         /* migrate --auto-converge */
        bool bandwidth_set;
        uint64_t bandwidth;         /* migrate --bandwidth, bytes/s */
        bool max_downtime_set;
        uint32_t max_downtime_ms;   /* migrate --max-downtime */
        bool dry_run;               /* drain --dry-run, balance --dry-run */
        const char *blockers;       /* drain --blockers: "fail" or "leave"; NULL: ferryd's default */
        bool keep_maintenance;      /* undrain --keep-maintenance */
        const char *vm;             /* policy --vm; NULL: the cluster's policy */
        bool follow;                /* events --follow */
        const char *kind;           /* volume add --kind: "shared" or "fs" (checked by cmd-volume.c) */
        const char *backing;        /* volume add --backing */
        const char *owner;          /* volume add --owner; NULL: the node answering */
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
int cmd_vms(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_migrate(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_jobs(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_job(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_cancel(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_drain(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_undrain(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_policy(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_balance(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_events(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_metrics(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_complete(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_volumes(const CommandContext *ctx, char **args, unsigned n_args);
int cmd_volume(const CommandContext *ctx, char **args, unsigned n_args);
/* node NAME|ID (cmd_node()), or node confirm-fenced NAME|ID (cmd-volume.c). */
int cmd_node_or_confirm_fenced(const CommandContext *ctx, char **args, unsigned n_args);

/* Prints the usage error and the hint to --help; returns FERRYCTL_EXIT_USAGE. */
int usage_error(const char *fmt, ...) _printf_(1, 2);

/* After a result is printed: a failed write to stdout (full disk, closed
 * pipe) is an error too, or a script would take a truncated result for a
 * complete one. Returns FERRYCTL_EXIT_SUCCESS or FERRYCTL_EXIT_FAILURE. */
int finish_output(int r);
