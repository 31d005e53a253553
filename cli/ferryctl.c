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
        { "node",        "NAME|ID",           "Show one node in detail",                        1, 1, cmd_node },
        { "maintenance", "on|off NAME|ID",    "Put a node into or take it out of maintenance",  2, 2, cmd_maintenance },
        { "help",        "",                  "Show this help",                                 0, 0, NULL },
};

static void help(void) {
        printf("Usage: ferryctl [OPTIONS] COMMAND [ARGS...]\n"
               "\n"
               "Query and control ferryd, the cluster live-migration orchestrator,\n"
               "over the system bus.\n"
               "\n"
               "Commands:\n");

        for (size_t i = 0; i < ELEMENTSOF(commands); i++) {
                char synopsis[64];

                snprintf(synopsis, sizeof(synopsis), "%s%s%s",
                         commands[i].name, *commands[i].args ? " " : "", commands[i].args);
                printf("  %-28s %s\n", synopsis, commands[i].summary);
        }

        printf("\n"
               "Options (before or after the command):\n"
               "  -h --help                    Show this help\n"
               "     --version                 Show the version\n"
               "     --json                    Print results as JSON (see docs/ferryctl.md)\n"
               "\n"
               "Exit status:\n"
               "  0  success\n"
               "  1  the operation failed; the message says why\n"
               "  2  usage error\n"
               "  3  ferryd cannot be reached on the system bus\n"
               "  4  access denied (changes need root or polkit's org.ferry.manage)\n"
               "  5  no such node\n");
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
        bool json;
        bool help;
        bool version;
        char **positional;   /* command and its arguments, in order */
        unsigned n_positional;
} Arguments;

/* Options may stand anywhere, before or after the command: operators type
 * "ferryctl status --json" as often as "ferryctl --json status". Done by
 * hand rather than with getopt_long() so that this does not depend on glibc
 * permuting argv (POSIXLY_CORRECT turns that off). "--" ends the options,
 * for a node whose name starts with a dash. */
static int parse_argv(int argc, char **argv, Arguments *a) {
        bool options_done = false;

        for (int i = 1; i < argc; i++) {
                const char *arg = argv[i];

                if (options_done || arg[0] != '-' || arg[1] == '\0')
                        a->positional[a->n_positional++] = argv[i];
                else if (streq(arg, "--"))
                        options_done = true;
                else if (streq(arg, "--json"))
                        a->json = true;
                else if (streq(arg, "-h") || streq(arg, "--help"))
                        a->help = true;
                else if (streq(arg, "--version"))
                        a->version = true;
                else
                        return usage_error("unknown option '%s'", arg);
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

        if (a.help) {
                help();
                return finish_output(0);
        }
        if (a.version) {
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

        if (!cmd->run) {
                help();
                return finish_output(0);
        }

        ctx = (CommandContext) {
                .json = a.json,
        };
        return cmd->run(&ctx, a.positional + 1, n_args);
}
