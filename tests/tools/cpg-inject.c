/* SPDX-License-Identifier: GPL-2.0-or-later */

/* A hostile or broken peer for the cluster tests: joins ferryd's CPG group
 * and multicasts malformed frames (garbage, truncations, a forged sender id,
 * a newer protocol version, a bad payload behind a valid header), then
 * leaves. ferryd must log and drop every one of them and keep running. */

#include <corosync/cpg.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codec.h"
#include "daemon.h"
#include "message.h"

static int send_frame(cpg_handle_t h, const void *buf, size_t len) {
        struct iovec iov = { .iov_base = (void *) buf, .iov_len = len };
        for (int i = 0; i < 100; i++) {
                cs_error_t e = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1);
                if (e == CS_OK)
                        return 0;
                if (e != CS_ERR_TRY_AGAIN) {
                        fprintf(stderr, "cpg-inject: cpg_mcast_joined: %s\n", cs_strerror(e));
                        return -EIO;
                }
                usleep(10000);
        }
        return -EAGAIN;
}

int main(int argc, char *argv[]) {
        cpg_callbacks_t cb = {};
        struct cpg_name group = {};
        cpg_handle_t h;
        unsigned int self;
        unsigned sent = 0;
        Writer w;

        if (cpg_initialize(&h, &cb) != CS_OK || cpg_local_get(h, &self) != CS_OK) {
                fprintf(stderr, "cpg-inject: cannot connect to corosync\n");
                return 1;
        }
        group.length = (uint32_t) strlen(FERRY_CPG_GROUP);
        memcpy(group.value, FERRY_CPG_GROUP, group.length);
        if (cpg_join(h, &group) != CS_OK) {
                fprintf(stderr, "cpg-inject: cannot join %s\n", FERRY_CPG_GROUP);
                return 1;
        }

        /* 1. Garbage of many sizes, including empty and tiny. */
        uint8_t junk[256];
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (uint8_t) (i * 131 + 7);
        for (size_t n = 1; n <= sizeof(junk); n += 17)
                sent += send_frame(h, junk, n) == 0;

        /* 2. A valid proposal frame, then every truncation of it. */
        writer_init(&w);
        message_begin(&w, MESSAGE_PROPOSAL, self, 1, 1);
        writer_put_u16(&w, 2);          /* set-maintenance */
        writer_put_u32(&w, 1);
        writer_put_u8(&w, 1);
        (void) message_end(&w);
        for (size_t n = 1; n < w.size; n += 5)
                sent += send_frame(h, w.data, n) == 0;

        /* 3. The same frame claiming to come from another node. */
        w.data[11] ^= 0x7f;
        sent += send_frame(h, w.data, w.size) == 0;
        w.data[11] ^= 0x7f;

        /* 4. A newer protocol version. */
        w.data[5] = FERRY_PROTOCOL_VERSION + 1;
        sent += send_frame(h, w.data, w.size) == 0;
        w.data[5] = FERRY_PROTOCOL_VERSION;

        /* 5. A valid header whose payload is an unknown command, and a
         *    bool that is not 0 or 1. */
        w.data[FERRY_MESSAGE_HEADER_SIZE + 1] = 0x77;
        sent += send_frame(h, w.data, w.size) == 0;
        w.data[FERRY_MESSAGE_HEADER_SIZE + 1] = 2;
        w.data[w.size - 1] = 9;
        sent += send_frame(h, w.data, w.size) == 0;
        writer_done(&w);

        /* Let the frames go out before leaving. */
        sleep(1);
        (void) cpg_leave(h, &group);
        (void) cpg_finalize(h);
        printf("%u\n", sent);
        return 0;
}
