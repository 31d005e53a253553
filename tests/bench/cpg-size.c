/* SPDX-License-Identifier: GPL-2.0-or-later */

/* cpg-size: what corosync's CPG does with big messages, such as ferry's
 * SYNC_STATE (the whole replicated state in one frame).
 *
 *     tests/testbed/testbed exec node1 -- build/tests/bench/cpg-size 1000000 1170346 5348346
 *
 * Joins the CPG group "ferry-bench-size" (not ferry's), prints libcpg's
 * atomic message size (larger messages are fragmented by libcpg, each
 * fragment a synchronous round trip to corosync), then multicasts one
 * zero-filled message of each SIZE (CPG_TYPE_AGREED, like ferryd) and
 * reports how long the send call blocked and when the message came back
 * to the sender in the total order. Needs a running corosync: on the
 * testbed, run it through `testbed exec`. */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <corosync/cpg.h>

static size_t delivered_len;
static int delivered;

static void on_deliver(cpg_handle_t h, const struct cpg_name *group, uint32_t nodeid, uint32_t pid, void *msg,
                       size_t len) {
        delivered_len = len;
        delivered = 1;
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *group, const struct cpg_address *members,
                       size_t n_members, const struct cpg_address *left, size_t n_left,
                       const struct cpg_address *joined, size_t n_joined) {
}

static double now_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
        cpg_callbacks_t cb = { .cpg_deliver_fn = on_deliver, .cpg_confchg_fn = on_confchg };
        struct cpg_name group = { .length = 16 };
        cpg_handle_t h;
        uint32_t atomic = 0;
        cs_error_t e;
        int fd;

        if (argc < 2 || strcmp(argv[1], "--help") == 0) {
                fprintf(stderr, "usage: cpg-size SIZE...   (bytes; needs a running corosync)\n");
                return argc < 2 ? 2 : 0;
        }
        memcpy(group.value, "ferry-bench-size", 16);
        if ((e = cpg_initialize(&h, &cb)) != CS_OK) {
                fprintf(stderr, "cpg-size: cannot connect to corosync (error %d)\n", e);
                return 1;
        }
        if ((e = cpg_join(h, &group)) != CS_OK || (e = cpg_fd_get(h, &fd)) != CS_OK) {
                fprintf(stderr, "cpg-size: cannot join the CPG group (error %d)\n", e);
                return 1;
        }
        cpg_max_atomic_msgsize_get(h, &atomic);
        printf("libcpg atomic message size: %u bytes\n", atomic);

        for (int i = 1; i < argc; i++) {
                char *end;
                errno = 0;
                unsigned long long n = strtoull(argv[i], &end, 10);
                if (errno || *end || n == 0 || n > (1ULL << 30)) {
                        fprintf(stderr, "cpg-size: invalid size \"%s\"\n", argv[i]);
                        return 2;
                }
                char *buf = calloc(1, n);
                if (!buf) {
                        fprintf(stderr, "cpg-size: out of memory\n");
                        return 1;
                }
                struct iovec iov = { .iov_base = buf, .iov_len = n };
                unsigned try_again = 0;
                double t0 = now_ms(), t_sent;

                delivered = 0;
                while ((e = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN) {
                        struct timespec pause = { 0, 1000000 };
                        try_again++;
                        nanosleep(&pause, NULL);
                }
                t_sent = now_ms();
                while (e == CS_OK && !delivered && now_ms() - t0 < 60000) {
                        struct pollfd p = { .fd = fd, .events = POLLIN };
                        (void) poll(&p, 1, 100);
                        (void) cpg_dispatch(h, CS_DISPATCH_ALL);
                }
                printf("%10llu bytes (%s): send call %s after %.1f ms (%u x TRY_AGAIN), %s after %.1f ms\n", n,
                       n > atomic ? "fragmented" : "atomic", e == CS_OK ? "returned" : "FAILED", t_sent - t0,
                       try_again, delivered && delivered_len == n ? "delivered back" : "NOT delivered back",
                       now_ms() - t0);
                free(buf);
        }
        cpg_finalize(h);
        return 0;
}
