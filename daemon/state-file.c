/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "state-file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "message.h"

/* The file is this magic followed by the canonical encoding, which is
 * self-delimiting and strictly validated on load; writing a temporary file
 * and renaming it means a crash never leaves a torn file behind. */
#define STATE_FILE_MAGIC 0x46525953U    /* "FRYS" */

int state_file_load(const char *dir, ClusterState **ret) {
        char path[PATH_MAX];
        _cleanup_close_ int fd = -1;
        _cleanup_free_ uint8_t *buf = NULL;
        struct stat st;
        Reader r;

        snprintf(path, sizeof(path), "%s/" STATE_FILE_NAME, dir);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (st.st_size < 4 || st.st_size > (off_t) FERRY_MESSAGE_MAX)
                return -EBADMSG;
        buf = malloc((size_t) st.st_size);
        if (!buf)
                return -ENOMEM;
        size_t done = 0;
        while (done < (size_t) st.st_size) {
                ssize_t n = read(fd, buf + done, (size_t) st.st_size - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                if (n == 0)
                        return -EBADMSG;
                done += (size_t) n;
        }
        reader_init(&r, buf, done);
        if (reader_get_u32(&r) != STATE_FILE_MAGIC)
                return -EBADMSG;
        return cluster_state_decode(&r, ret);
}

int state_file_save(const char *dir, const ClusterState *s) {
        char path[PATH_MAX], tmp[PATH_MAX];
        _cleanup_close_ int fd = -1;
        Writer w;
        int r;

        if (mkdir(dir, 0750) < 0 && errno != EEXIST)
                return negative_errno();
        snprintf(path, sizeof(path), "%s/" STATE_FILE_NAME, dir);
        snprintf(tmp, sizeof(tmp), "%s/." STATE_FILE_NAME ".XXXXXX", dir);

        writer_init(&w);
        writer_put_u32(&w, STATE_FILE_MAGIC);
        r = cluster_state_encode(s, &w);
        if (r < 0)
                goto out;
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
                r = negative_errno();
                goto out;
        }
        for (size_t done = 0; done < w.size;) {
                ssize_t n = write(fd, w.data + done, w.size - done);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = negative_errno();
                        goto unlink;
                }
                done += (size_t) n;
        }
        if (fsync(fd) < 0 || rename(tmp, path) < 0) {
                r = negative_errno();
                goto unlink;
        }
        r = 0;
        goto out;
unlink:
        (void) unlink(tmp);
out:
        writer_done(&w);
        return r;
}
