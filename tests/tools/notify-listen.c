/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Plays the service manager's end of sd_notify() for the cluster tests:
 * binds a datagram socket at PATH and prints every message it receives,
 * one line per assignment, until it has seen READY=1 or SECONDS pass. */

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char *argv[]) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd, seconds;
        time_t end;

        if (argc != 3 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "usage: notify-listen PATH SECONDS\n");
                return 2;
        }
        seconds = atoi(argv[2]);
        strcpy(sa.sun_path, argv[1]);
        (void) unlink(argv[1]);
        fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                fprintf(stderr, "notify-listen: %s: %s\n", argv[1], strerror(errno));
                return 1;
        }
        end = time(NULL) + seconds;
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int left = (int) (end - time(NULL));
                if (left <= 0)
                        break;
                if (poll(&p, 1, left * 1000) <= 0)
                        continue;
                char buf[4096];
                ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);
                if (n <= 0)
                        continue;
                buf[n] = 0;
                printf("%s\n", buf);
                fflush(stdout);
                if (strstr(buf, "READY=1"))
                        break;
        }
        (void) unlink(argv[1]);
        return 0;
}
