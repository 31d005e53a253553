/* SPDX-License-Identifier: GPL-2.0-or-later
 *
 * reaper PIDFILE CMD [ARG...]: run CMD as a child of a child subreaper that
 * reaps every process orphaned below it at once.
 *
 * Why: libvirtd starts QEMU daemonized (double fork), so a QEMU's parent is
 * whatever reaps orphans, normally PID 1. When libvirt stops a QEMU (the
 * capability probes at start-up, `virsh destroy`, the source side at the end
 * of a migration) it waits until the PID is gone, and a zombie is not gone.
 * On machines whose PID 1 reaps lazily (the CI machines' init reaps about
 * every 2 s) every such stop costs libvirt that long. Under this reaper the
 * orphans are its children and vanish as soon as they exit.
 *
 * The testbed signals CMD by the PID this writes into PIDFILE, never the
 * reaper: CMD can be killed and started again while its guests live on
 * under the old reaper. The reaper ignores SIGTERM, SIGINT and SIGHUP and
 * exits once it has no children left, with CMD's exit status (128 + signal
 * if a signal ended CMD).
 */

#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_pidfile(const char *path, pid_t pid) {
        char tmp[4096];
        FILE *f;

        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int) sizeof(tmp))
                return -ENAMETOOLONG;
        f = fopen(tmp, "we");
        if (!f)
                return -errno;
        fprintf(f, "%d\n", (int) pid);
        if (fclose(f) != 0 || rename(tmp, path) < 0) {
                int r = -errno;
                (void) unlink(tmp);
                return r;
        }
        return 0;
}

int main(int argc, char **argv) {
        int status = 0, ret = 1;
        pid_t child, p;
        sigset_t block, old;

        if (argc < 3) {
                fprintf(stderr, "usage: %s PIDFILE CMD [ARG...]\n", argv[0]);
                return 2;
        }
        if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0) {
                perror("reaper: PR_SET_CHILD_SUBREAPER");
                return 1;
        }

        /* The child starts with default dispositions and an empty mask. */
        sigemptyset(&block);
        sigaddset(&block, SIGTERM);
        sigaddset(&block, SIGINT);
        sigaddset(&block, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &block, &old) < 0) {
                perror("reaper: sigprocmask");
                return 1;
        }
        child = fork();
        if (child < 0) {
                perror("reaper: fork");
                return 1;
        }
        if (child == 0) {
                (void) sigprocmask(SIG_SETMASK, &old, NULL);
                execvp(argv[2], argv + 2);
                fprintf(stderr, "reaper: cannot run %s: %s\n", argv[2], strerror(errno));
                _exit(127);
        }
        int r = write_pidfile(argv[1], child);
        if (r < 0)
                fprintf(stderr, "reaper: cannot write %s: %s\n", argv[1], strerror(-r));

        for (;;) {
                p = waitpid(-1, &status, 0);
                if (p < 0) {
                        if (errno == EINTR)
                                continue;
                        break;          /* ECHILD: nobody left */
                }
                if (p == child)
                        ret = WIFEXITED(status) ? WEXITSTATUS(status) :
                              WIFSIGNALED(status) ? 128 + WTERMSIG(status) : 1;
        }
        return ret;
}
