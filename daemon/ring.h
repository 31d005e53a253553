/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* ferryd's connection to corosync: the CPG group, quorum (votequorum through
 * the quorum API), and the node list from cmap, all inside the sd-event
 * loop. If corosync goes away the ring tears everything down, reports
 * `disconnected`, and reconnects with exponential back-off.
 *
 * Sending never blocks and never sleeps: frames wait in a FIFO while CPG
 * answers CS_ERR_TRY_AGAIN (flow control) and a timer retries them. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

typedef struct Ring Ring;

typedef struct RingNode {
        uint32_t id;
        char *name;
        char *address;
} RingNode;

typedef struct RingCallbacks {
        /* Joined the group; node_id is this node's corosync id. Called again
         * after every reconnect. */
        void (*connected)(Ring *ring, uint32_t node_id, void *userdata);
        void (*disconnected)(Ring *ring, void *userdata);
        void (*confchg)(Ring *ring, const uint32_t *members, size_t n_members, void *userdata);
        void (*deliver)(Ring *ring, uint32_t node_id, const void *buf, size_t len, void *userdata);
        /* corosync quorum changed (or votes/threshold refreshed). */
        void (*quorum)(Ring *ring, bool quorate, uint32_t node_votes, uint32_t quorum_votes, void *userdata);
} RingCallbacks;

int ring_new(sd_event *event, const char *group, const RingCallbacks *cb, void *userdata, Ring **ret);
Ring *ring_free(Ring *ring);

/* Starts connecting (and keeps trying until it works). */
void ring_start(Ring *ring);

/* Queues a frame for multicast in agreed order. 0, or -ENOTCONN when not
 * connected (the frame is dropped: it belongs to a membership that ended). */
int ring_send(Ring *ring, const void *buf, size_t len);

bool ring_is_connected(const Ring *ring);
const char *ring_cluster_name(const Ring *ring);
/* corosync's nodelist as read at the last connect. */
const RingNode *ring_nodes(const Ring *ring, size_t *n);
const RingNode *ring_find_node(const Ring *ring, uint32_t id);
size_t ring_queue_length(const Ring *ring);
