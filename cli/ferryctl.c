/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryctl: the command line client of ferryd. This file parses the command
 * line and hands over to one command (cmd-*.c). Every decision is ferryd's;
 * ferryctl only asks and prints the answer. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ferry-build.h"
#include "ferryctl.h"
#include "output.h"
#include "strutil.h"

typedef struct Command {
        const char *name;
        const char *args;      /* for the usage text */
        const char *summary;
        unsigned min_args, max_args;
        CommandFunc run;       /* NULL: help, handled here */
} Command;

static const Command commands[] = {
        { "status",      "",                  "Show the cluster as this node's ferryd sees it", 0, 0, cmd_status },
        { "nodes",       "",                  "List the nodes of the cluster",                  0, 0, cmd_nodes },
        { "node",        "[confirm-fenced] NODE", "Show one node, or confirm that a node that left is down", 1, 2, cmd_node_or_confirm_fenced },
        { "maintenance", "on|off NAME|ID",    "Put a node into or take it out of maintenance",  2, 2, cmd_maintenance },
        { "vms",         "",                  "List the VMs of the cluster",                    0, 0, cmd_vms },
        { "migrate",     "VM",                "Live-migrate a VM, or only check that it can be", 1, 1, cmd_migrate },
        { "jobs",        "",                  "List migration jobs, active ones first",         0, 0, cmd_jobs },
        { "job",         "ID",                "Show one migration job in detail",               1, 1, cmd_job },
        { "cancel",      "ID",                "Cancel a migration job",                         1, 1, cmd_cancel },
        { "drain",       "NAME|ID",           "Move every VM off a node and keep it empty",     1, 1, cmd_drain },
        { "undrain",     "NAME|ID",           "End a node's drain, and its maintenance",        1, 1, cmd_undrain },
        { "policy",      "[show|list|set|unset] [KEY[=VALUE]...]",
                                              "Show or change the convergence policy of the cluster or a VM", 0, 16, cmd_policy },
        { "volumes",     "",                  "List the shared volumes and who owns them",      0, 0, cmd_volumes },
        { "volume",      "[add|remove|move] NAME", "Show, add, remove or move a shared volume", 1, 2, cmd_volume },
        { "events",      "",                  "Show the recent cluster events, or follow them",  0, 0, cmd_events },
        { "metrics",     "",                  "Print metrics in the Prometheus text format",    0, 0, cmd_metrics },
        { "balance",     "[status|auto on|off|set KEY=VALUE...]",
                                              "Even out the load, or show or change the balancer", 0, 16, cmd_balance },
        { "help",        "",                  "Show this help",                                 0, 0, NULL },
        /* A name starting with '_' is internal and left out of --help: the
         * names shell completion offers (cmd-complete.c, completion/). */
        { "__complete",  "nodes|vms|volumes|jobs|active-jobs", "", 1, 1, cmd_complete },
};

typedef enum OptionId {
        OPT_HELP,
        OPT_VERSION,
        OPT_JSON,
        OPT_NODE,
        OPT_ALL,
        OPT_TO,
        OPT_CHECK,
        OPT_WAIT,
        OPT_BANDWIDTH,
        OPT_MAX_DOWNTIME,
        OPT_POSTCOPY,
        OPT_AUTO_CONVERGE,
        OPT_DRY_RUN,
        OPT_BLOCKERS,
        OPT_KEEP_MAINTENANCE,
        OPT_VM,
        OPT_FOLLOW,
        OPT_KIND,
        OPT_BACKING,
        OPT_OWNER,
        _OPT_MAX,
} OptionId;

#define OPTION_COMMANDS_MAX 4

typedef struct Option {
        const char *name;                          /* "--to" */
        const char *alias;                         /* "-h", or NULL */
        const char *arg;                           /* "NODE" for the usage text; NULL: a flag */
        const char *commands[OPTION_COMMANDS_MAX]; /* where it applies; none listed: everywhere */
        const char *summary;
} Option;

/* Every option, with the commands it belongs to: the parser, the check that
 * an option fits its command and --help all read this table. */
static const Option options[_OPT_MAX] = {
        [OPT_HELP]             = { "--help",             "-h", NULL,         {},                            "Show this help" },
        [OPT_VERSION]          = { "--version",          NULL, NULL,         {},                            "Show the version" },
        [OPT_JSON]             = { "--json",             NULL, NULL,         {},                            "Print results as JSON (see docs/ferryctl.md)" },
        [OPT_NODE]             = { "--node",             NULL, "NODE",       { "vms" },                     "Only the VMs on this node (name or id)" },
        [OPT_ALL]              = { "--all",              NULL, NULL,         { "jobs" },                    "Every finished job ferryd keeps, not only the last 10" },
        [OPT_TO]               = { "--to",               NULL, "NODE",       { "migrate", "volume" },       "Destination (migrate: without it ferryd picks the best node)" },
        [OPT_CHECK]            = { "--check",            NULL, NULL,         { "migrate" },                 "Only run the pre-flight checks; move nothing" },
        [OPT_WAIT]             = { "--wait",             NULL, NULL,         { "migrate", "job", "drain", "volume" }, "Follow it to its end (Ctrl-C stops only the watching)" },
        [OPT_BANDWIDTH]        = { "--bandwidth",        NULL, "SIZE/s",     { "migrate" },                 "Cap the transfer rate, e.g. 100M (binary units; 0: no cap)" },
        [OPT_MAX_DOWNTIME]     = { "--max-downtime",     NULL, "MS",         { "migrate" },                 "Downtime to aim for first, in milliseconds" },
        [OPT_POSTCOPY]         = { "--postcopy",         NULL, NULL,         { "migrate" },                 "Allow switching to post-copy if pre-copy does not converge" },
        [OPT_AUTO_CONVERGE]    = { "--auto-converge",    NULL, NULL,         { "migrate" },                 "Allow slowing the guest's vCPUs down to converge" },
        [OPT_DRY_RUN]          = { "--dry-run",          NULL, NULL,         { "drain", "balance" },        "Only show what a drain or a balance round does now; change nothing" },
        [OPT_BLOCKERS]         = { "--blockers",         NULL, "fail|leave", { "drain" },                   "VMs that cannot move: fail (default) or leave them on the node" },
        [OPT_KEEP_MAINTENANCE] = { "--keep-maintenance", NULL, NULL,         { "undrain" },                 "End the drain, but keep the node in maintenance" },
        [OPT_VM]               = { "--vm",               NULL, "VM",         { "policy" },                  "The VM's own policy rather than the cluster's" },
        [OPT_FOLLOW]           = { "--follow",           "-f", NULL,         { "events" },                  "Keep printing new events as they happen (Ctrl-C ends)" },
        [OPT_KIND]             = { "--kind",             NULL, "shared|fs",  { "volume" },                  "volume add: a shared device, or a filesystem mounted on its owner only" },
        [OPT_BACKING]          = { "--backing",          NULL, "PATH",       { "volume" },                  "volume add: the device or path that backs it" },
        [OPT_OWNER]            = { "--owner",            NULL, "NODE",       { "volume" },                  "volume add: the node that owns it first (default: this one)" },
};

static bool option_applies_to(const Option *o, const char *command) {
        if (!o->commands[0])
                return true;
        for (size_t i = 0; i < OPTION_COMMANDS_MAX && o->commands[i]; i++)
                if (streq(o->commands[i], command))
                        return true;
        return false;
}

static void help_option(const Option *o) {
        char synopsis[64];

        snprintf(synopsis, sizeof(synopsis), "%-2s %s%s%s",
                 o->alias ? o->alias : "", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-28s %s\n", synopsis, o->summary);
}

static void help(void) {
        printf("Usage: ferryctl [OPTIONS] COMMAND [ARGS...]\n"
               "\n"
               "Query and control ferryd, the cluster live-migration orchestrator,\n"
               "over the system bus.\n"
               "\n"
               "Commands:\n");

        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                char synopsis[64];

                if (commands[i].name[0] == '_')
                        continue;
                snprintf(synopsis, sizeof(synopsis), "%s%s%s",
                         commands[i].name, *commands[i].args ? " " : "", commands[i].args);
                printf("  %-28s %s\n", synopsis, commands[i].summary);
        }

        printf("\n"
               "Options (before or after the command):\n");
        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                if (!options[i].commands[0])
                        help_option(options + i);

        for (size_t c = 0; c < ELEMENTSOF(commands); c++) {
                bool any = false;

                for (size_t i = 0; i < ELEMENTSOF(options); i++) {
                        if (!options[i].commands[0] || !option_applies_to(options + i, commands[c].name))
                                continue;
                        if (!any)
                                printf("\nOptions of %s:\n", commands[c].name);
                        any = true;
                        help_option(options + i);
                }
        }

        printf("\n"
               "Exit status:\n"
               "  0    success\n"
               "  1    the operation failed, the migration waited for failed, the drain\n"
               "       waited for was ended by someone else, or the volume move or removal\n"
               "       waited for failed or did not end in time\n"
               "  2    usage error\n"
               "  3    ferryd cannot be reached on the system bus\n"
               "  4    access denied (changes need root or polkit's org.ferry.manage)\n"
               "  5    no such node, VM, job or volume\n"
               "  6    migration refused by a pre-flight check\n"
               "  7    the migration waited for was cancelled\n"
               "  8    the drain waited for is blocked: VMs cannot move (listed)\n"
               "  130  interrupted while waiting (the job, drain or volume move goes on)\n");
}

int usage_error(const char *fmt, ...) {
        va_list ap;

        fputs("ferryctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry 'ferryctl --help' for more information.\n", stderr);
        return FERRYCTL_EXIT_USAGE;
}

int finish_output(int r) {
        if (r == -ENOMEM) {
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }

        if (r >= 0 && fflush(stdout) != 0)
                r = negative_errno();
        if (r >= 0 && ferror(stdout))
                r = -EIO;
        if (r < 0) {
                print_error("cannot write the result: %s", strerror(-r));
                return FERRYCTL_EXIT_FAILURE;
        }

        return FERRYCTL_EXIT_SUCCESS;
}

static const Command *command_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq(commands[i].name, name))
                        return commands + i;
        return NULL;
}

typedef struct Arguments {
        bool given[_OPT_MAX];
        const char *value[_OPT_MAX];   /* of an option with an argument */
        char **positional;             /* command and its arguments, in order */
        unsigned n_positional;
} Arguments;

/* "--to" as typed, or the "--to" of "--to=node2" (name_len set). */
static const Option *option_find(const char *arg, size_t name_len, OptionId *ret) {
        for (size_t i = 0; i < ELEMENTSOF(options); i++)
                if ((strlen(options[i].name) == name_len && strncmp(options[i].name, arg, name_len) == 0) ||
                    (options[i].alias && strlen(options[i].alias) == name_len &&
                     strncmp(options[i].alias, arg, name_len) == 0)) {
                        *ret = (OptionId) i;
                        return options + i;
                }
        return NULL;
}

/* Options may stand anywhere, before or after the command: operators type
 * "ferryctl status --json" as often as "ferryctl --json status". Done by
 * hand rather than with getopt_long() so that this does not depend on glibc
 * permuting argv (POSIXLY_CORRECT turns that off). "--" ends the options,
 * for a node or VM whose name starts with a dash. An option's argument is
 * the next word ("--to node2") or follows '=' ("--to=node2"). */
static int parse_argv(int argc, char **argv, Arguments *a) {
        bool options_done = false;

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i], *eq;
                const Option *o;
                OptionId id;

                if (options_done || arg[0] != '-' || arg[1] == '\0') {
                        a->positional[a->n_positional++] = argv[i];
                        continue;
                }
                if (streq(arg, "--")) {
                        options_done = true;
                        continue;
                }

                eq = strchr(arg, '=');
                o = option_find(arg, eq ? (size_t) (eq - arg) : strlen(arg), &id);
                if (!o)
                        return usage_error("unknown option '%s'", arg);

                if (!o->arg) {
                        if (eq)
                                return usage_error("option '%s' takes no argument", o->name);
                } else if (eq)
                        a->value[id] = eq + 1;
                else if (i + 1 < argc)
                        a->value[id] = argv[++i];
                else
                        return usage_error("option '%s' needs an argument (%s)", o->name, o->arg);

                a->given[id] = true;
        }

        return FERRYCTL_EXIT_SUCCESS;
}

/* "100M", "100M/s", "1.5G/s", "0": bytes per second, binary units. */
static int parse_bandwidth(const char *s, uint64_t *ret) {
        _cleanup_free_ char *copy = NULL;
        size_t n = strlen(s);

        copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        if (n > 2 && streq(copy + n - 2, "/s"))
                copy[n - 2] = '\0';
        return parse_size(copy, ret);
}

/* Checks the options against the command and turns them into its context. */
static int make_context(const Command *cmd, const Arguments *a, CommandContext *ctx) {
        int r;

        for (size_t i = 0; i < _OPT_MAX; i++)
                if (a->given[i] && !option_applies_to(options + i, cmd->name))
                        return usage_error("option '%s' does not apply to '%s'", options[i].name, cmd->name);

        *ctx = (CommandContext) {
                .json = a->given[OPT_JSON],
                .all = a->given[OPT_ALL],
                .node = a->value[OPT_NODE],
                .to = a->value[OPT_TO],
                .check = a->given[OPT_CHECK],
                .wait = a->given[OPT_WAIT],
                .postcopy = a->given[OPT_POSTCOPY],
                .auto_converge = a->given[OPT_AUTO_CONVERGE],
                .dry_run = a->given[OPT_DRY_RUN],
                .blockers = a->value[OPT_BLOCKERS],
                .keep_maintenance = a->given[OPT_KEEP_MAINTENANCE],
                .vm = a->value[OPT_VM],
                .follow = a->given[OPT_FOLLOW],
                .kind = a->value[OPT_KIND],
                .backing = a->value[OPT_BACKING],
                .owner = a->value[OPT_OWNER],
        };

        if (ctx->node && !*ctx->node)
                return usage_error("--node needs a node name or id");
        if (ctx->to && !*ctx->to)
                return usage_error("--to needs a node name or id");
        if (ctx->blockers && !streq(ctx->blockers, "fail") && !streq(ctx->blockers, "leave"))
                return usage_error("--blockers takes 'fail' or 'leave', not '%s'", ctx->blockers);

        if (a->given[OPT_BANDWIDTH]) {
                r = parse_bandwidth(a->value[OPT_BANDWIDTH], &ctx->bandwidth);
                if (r == -ENOMEM) {
                        print_error("out of memory");
                        return FERRYCTL_EXIT_FAILURE;
                }
                if (r < 0)
                        return usage_error("--bandwidth takes a size per second like 100M or 1.5G/s, not '%s'",
                                           a->value[OPT_BANDWIDTH]);
                ctx->bandwidth_set = true;
        }

        if (a->given[OPT_MAX_DOWNTIME]) {
                if (parse_u32(a->value[OPT_MAX_DOWNTIME], &ctx->max_downtime_ms) < 0 ||
                    ctx->max_downtime_ms == 0)
                        return usage_error("--max-downtime takes a positive number of milliseconds, not '%s'",
                                           a->value[OPT_MAX_DOWNTIME]);
                ctx->max_downtime_set = true;
        }

        return FERRYCTL_EXIT_SUCCESS;
}

int main(int argc, char **argv) {
        _cleanup_free_ char **positional = NULL;
        Arguments a = {};
        const Command *cmd;
        CommandContext ctx;
        unsigned n_args;
        int r;

        positional = calloc(argc > 0 ? (size_t) argc : 1, sizeof(char *));
        if (!positional) {
                print_error("out of memory");
                return FERRYCTL_EXIT_FAILURE;
        }
        a.positional = positional;

        r = parse_argv(argc, argv, &a);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        if (a.given[OPT_HELP]) {
                help();
                return finish_output(0);
        }
        if (a.given[OPT_VERSION]) {
                printf("ferryctl %s\n", FERRY_VERSION);
                return finish_output(0);
        }

        if (a.n_positional == 0)
                return usage_error("no command given");

        cmd = command_find(a.positional[0]);
        if (!cmd)
                return usage_error("unknown command '%s'", a.positional[0]);

        n_args = a.n_positional - 1;
        if (n_args < cmd->min_args || n_args > cmd->max_args) {
                if (*cmd->args)
                        return usage_error("usage: ferryctl %s %s", cmd->name, cmd->args);
                return usage_error("'%s' takes no arguments", cmd->name);
        }

        r = make_context(cmd, &a, &ctx);
        if (r != FERRYCTL_EXIT_SUCCESS)
                return r;

        if (!cmd->run) {
                help();
                return finish_output(0);
        }

        return cmd->run(&ctx, a.positional + 1, n_args);
}
