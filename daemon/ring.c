/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ring.h"

#include <corosync/cmap.h>
#include <corosync/corotypes.h>
#include <corosync/cpg.h>
#include <corosync/quorum.h>
#include <corosync/votequorum.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "log.h"
#include "macro.h"

#define RECONNECT_MIN_USEC (250 * 1000ULL)
#define RECONNECT_MAX_USEC (8 * 1000 * 1000ULL)
#define RETRY_SEND_USEC    (20 * 1000ULL)
/* A peer that cannot keep up with this many queued frames is gone for
 * practical purposes; bounding the queue bounds our memory. */
#define SEND_QUEUE_MAX 4096

typedef struct Frame {
        struct Frame *next;
        size_t len;
        uint8_t data[];
} Frame;

struct Ring {
        sd_event *event;
        char *group;
        RingCallbacks cb;
        void *userdata;

        bool connected;
        cpg_handle_t cpg;
        quorum_handle_t quorum;
        votequorum_handle_t votequorum;
        cmap_handle_t cmap;
        bool have_cpg, have_quorum, have_votequorum, have_cmap;
        sd_event_source *cpg_source, *quorum_source;
        uint32_t node_id;

        char *cluster_name;
        RingNode *nodes;
        size_t n_nodes;

        sd_event_source *reconnect_timer;
        uint64_t backoff_usec;
        unsigned failed_attempts;

        Frame *queue_head, *queue_tail;
        size_t queue_length;
        sd_event_source *send_timer;
};

static void ring_disconnect(Ring *ring, bool notify);
static void ring_schedule_reconnect(Ring *ring);

static int cs_to_errno(cs_error_t e) {
        switch (e) {
        case CS_OK: return 0;
        case CS_ERR_TRY_AGAIN: return -EAGAIN;
        case CS_ERR_NO_MEMORY: return -ENOMEM;
        case CS_ERR_ACCESS: return -EACCES;
        case CS_ERR_NOT_EXIST: return -ENOENT;
        case CS_ERR_TOO_BIG: return -EMSGSIZE;
        case CS_ERR_LIBRARY:
        case CS_ERR_BAD_HANDLE:
        default: return -ENOTCONN;
        }
}

static void frame_queue_clear(Ring *ring) {
        while (ring->queue_head) {
                Frame *f = ring->queue_head;
                ring->queue_head = f->next;
                free(f);
        }
        ring->queue_tail = NULL;
        ring->queue_length = 0;
}

static int flush_queue(Ring *ring);

static int on_send_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Ring *ring = userdata;
        (void) flush_queue(ring);
        return 0;
}

static int flush_queue(Ring *ring) {
        while (ring->queue_head && ring->connected) {
                Frame *f = ring->queue_head;
                struct iovec iov = { .iov_base = f->data, .iov_len = f->len };
                cs_error_t e = cpg_mcast_joined(ring->cpg, CPG_TYPE_AGREED, &iov, 1);
                if (e == CS_ERR_TRY_AGAIN) {
                        /* Flow control: never sleep in the loop, retry soon. */
                        uint64_t now;
                        sd_event_now(ring->event, CLOCK_MONOTONIC, &now);
                        if (ring->send_timer) {
                                sd_event_source_set_time(ring->send_timer, now + RETRY_SEND_USEC);
                                sd_event_source_set_enabled(ring->send_timer, SD_EVENT_ONESHOT);
                        } else
                                sd_event_add_time(ring->event, &ring->send_timer, CLOCK_MONOTONIC,
                                                  now + RETRY_SEND_USEC, 0, on_send_timer, ring);
                        return 0;
                }
                if (e != CS_OK) {
                        log_error("Failed to send a %zu byte frame to the CPG group: %s", f->len, cs_strerror(e));
                        if (e == CS_ERR_LIBRARY || e == CS_ERR_BAD_HANDLE) {
                                ring_disconnect(ring, true);
                                ring_schedule_reconnect(ring);
                                return -ENOTCONN;
                        }
                        /* Anything else is about this frame: drop it. */
                }
                ring->queue_head = f->next;
                if (!ring->queue_head)
                        ring->queue_tail = NULL;
                ring->queue_length--;
                free(f);
        }
        return 0;
}

int ring_send(Ring *ring, const void *buf, size_t len) {
        if (!ring->connected)
                return -ENOTCONN;
        if (ring->queue_length >= SEND_QUEUE_MAX)
                return -ENOBUFS;
        Frame *f = malloc(sizeof(Frame) + len);
        if (!f)
                return -ENOMEM;
        f->next = NULL;
        f->len = len;
        memcpy(f->data, buf, len);
        if (ring->queue_tail)
                ring->queue_tail->next = f;
        else
                ring->queue_head = f;
        ring->queue_tail = f;
        ring->queue_length++;
        /* Send now if nothing is waiting ahead of us; keeps order either way. */
        if (ring->queue_head == f)
                (void) flush_queue(ring);
        return 0;
}

static void on_cpg_deliver(cpg_handle_t handle, const struct cpg_name *group, uint32_t nodeid, uint32_t pid,
                           void *msg, size_t len) {
        Ring *ring = NULL;
        if (cpg_context_get(handle, (void **) &ring) != CS_OK || !ring)
                return;
        if (group->length != strlen(ring->group) || memcmp(group->value, ring->group, group->length) != 0)
                return;
        ring->cb.deliver(ring, nodeid, msg, len, ring->userdata);
}

static void on_cpg_confchg(cpg_handle_t handle, const struct cpg_name *group,
                           const struct cpg_address *members, size_t n_members,
                           const struct cpg_address *left, size_t n_left,
                           const struct cpg_address *joined, size_t n_joined) {
        Ring *ring = NULL;
        uint32_t ids[CPG_MEMBERS_MAX];
        size_t n = 0;

        if (cpg_context_get(handle, (void **) &ring) != CS_OK || !ring)
                return;
        for (size_t i = 0; i < n_left; i++)
                log_info("CPG: node %u (pid %u) left: %s", left[i].nodeid, left[i].pid,
                         left[i].reason == CPG_REASON_LEAVE ? "left the group" :
                         left[i].reason == CPG_REASON_NODEDOWN ? "node down" :
                         left[i].reason == CPG_REASON_PROCDOWN ? "process down" : "other");
        for (size_t i = 0; i < n_joined; i++) {
                log_info("CPG: node %u (pid %u) joined", joined[i].nodeid, joined[i].pid);
                if (joined[i].nodeid == ring->node_id && joined[i].pid != (uint32_t) getpid()) {
                        /* Two ferryd on one host would both speak for it. */
                        log_crit("Another ferryd (pid %u) joined the cluster as this node (%u); refusing to run twice",
                                 joined[i].pid, ring->node_id);
                        sd_event_exit(ring->event, -EEXIST);
                        return;
                }
        }
        for (size_t i = 0; i < n_members && n < CPG_MEMBERS_MAX; i++)
                ids[n++] = members[i].nodeid;
        ring->cb.confchg(ring, ids, n, ring->userdata);
}

static void refresh_votes(Ring *ring, bool quorate) {
        struct votequorum_info info = {};
        uint32_t node_votes = 1, quorum_votes = 0;

        if (ring->have_votequorum && votequorum_getinfo(ring->votequorum, ring->node_id, &info) == CS_OK) {
                node_votes = info.node_votes;
                quorum_votes = info.quorum;
        } else {
                /* No votequorum: a strict majority of the configured nodes. */
                quorum_votes = ring->n_nodes > 0 ? (uint32_t) ring->n_nodes / 2 + 1 : 1;
        }
        ring->cb.quorum(ring, quorate, node_votes, quorum_votes, ring->userdata);
}

static void on_quorum_notify(quorum_handle_t handle, uint32_t quorate, struct quorum_ring_id ring_id,
                             uint32_t n_members, const uint32_t *members) {
        Ring *ring = NULL;
        if (quorum_context_get(handle, (const void **) &ring) != CS_OK || !ring)
                return;
        log_info("corosync quorum: %s, %u nodes in the ring", quorate ? "quorate" : "NOT quorate", n_members);
        refresh_votes(ring, quorate != 0);
}

static int on_cpg_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Ring *ring = userdata;
        cs_error_t e = cpg_dispatch(ring->cpg, CS_DISPATCH_ALL);
        if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
                log_error("Lost the connection to corosync's CPG service: %s", cs_strerror(e));
                ring_disconnect(ring, true);
                ring_schedule_reconnect(ring);
        }
        return 0;
}

static int on_quorum_io(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Ring *ring = userdata;
        cs_error_t e = quorum_dispatch(ring->quorum, CS_DISPATCH_ALL);
        if (e != CS_OK && e != CS_ERR_TRY_AGAIN) {
                log_error("Lost the connection to corosync's quorum service: %s", cs_strerror(e));
                ring_disconnect(ring, true);
                ring_schedule_reconnect(ring);
        }
        return 0;
}

static void ring_free_nodes(Ring *ring) {
        for (size_t i = 0; i < ring->n_nodes; i++) {
                free(ring->nodes[i].name);
                free(ring->nodes[i].address);
        }
        free(ring->nodes);
        ring->nodes = NULL;
        ring->n_nodes = 0;
}

/* nodelist.node.N.{nodeid,name,ring0_addr} */
static int read_nodelist(Ring *ring) {
        cmap_iter_handle_t iter;
        char key[CMAP_KEYNAME_MAXLEN + 1];
        size_t value_len;
        cmap_value_types_t type;
        int max_index = -1;

        if (cmap_iter_init(ring->cmap, "nodelist.node.", &iter) != CS_OK)
                return -EIO;
        while (cmap_iter_next(ring->cmap, iter, key, &value_len, &type) == CS_OK) {
                int idx;
                if (sscanf(key, "nodelist.node.%d.", &idx) == 1 && idx > max_index && idx < 65536)
                        max_index = idx;
        }
        cmap_iter_finalize(ring->cmap, iter);

        ring_free_nodes(ring);
        if (max_index < 0)
                return 0;
        ring->nodes = calloc((size_t) max_index + 1, sizeof(RingNode));
        if (!ring->nodes)
                return -ENOMEM;
        for (int i = 0; i <= max_index; i++) {
                char k[128];
                uint32_t id;
                char *name = NULL, *addr = NULL;

                snprintf(k, sizeof(k), "nodelist.node.%d.nodeid", i);
                if (cmap_get_uint32(ring->cmap, k, &id) != CS_OK)
                        continue;
                snprintf(k, sizeof(k), "nodelist.node.%d.ring0_addr", i);
                (void) cmap_get_string(ring->cmap, k, &addr);
                snprintf(k, sizeof(k), "nodelist.node.%d.name", i);
                if (cmap_get_string(ring->cmap, k, &name) != CS_OK)
                        name = addr ? strdup(addr) : NULL;
                if (!name) {
                        if (asprintf(&name, "node-%u", id) < 0)
                                name = NULL;
                }
                ring->nodes[ring->n_nodes++] = (RingNode) { .id = id, .name = name, .address = addr };
        }
        return 0;
}

static void ring_disconnect(Ring *ring, bool notify) {
        bool was = ring->connected;

        ring->connected = false;
        ring->cpg_source = sd_event_source_disable_unref(ring->cpg_source);
        ring->quorum_source = sd_event_source_disable_unref(ring->quorum_source);
        if (ring->send_timer)
                sd_event_source_set_enabled(ring->send_timer, SD_EVENT_OFF);
        frame_queue_clear(ring);
        if (ring->have_cpg) {
                (void) cpg_finalize(ring->cpg);
                ring->have_cpg = false;
        }
        if (ring->have_quorum) {
                (void) quorum_finalize(ring->quorum);
                ring->have_quorum = false;
        }
        if (ring->have_votequorum) {
                (void) votequorum_finalize(ring->votequorum);
                ring->have_votequorum = false;
        }
        if (ring->have_cmap) {
                (void) cmap_finalize(ring->cmap);
                ring->have_cmap = false;
        }
        if (was && notify)
                ring->cb.disconnected(ring, ring->userdata);
}

static int ring_connect(Ring *ring) {
        cpg_callbacks_t cpg_cb = { .cpg_deliver_fn = on_cpg_deliver, .cpg_confchg_fn = on_cpg_confchg };
        quorum_model_v1_data_t qdata = { .model = QUORUM_MODEL_V1, .quorum_notify_fn = on_quorum_notify };
        struct cpg_name name = {};
        uint32_t quorum_type;
        unsigned int local;
        char *cluster_name = NULL;
        cs_error_t e;
        int fd, r;

        e = cmap_initialize(&ring->cmap);
        if (e != CS_OK)
                goto fail;
        ring->have_cmap = true;
        if (cmap_get_string(ring->cmap, "totem.cluster_name", &cluster_name) == CS_OK) {
                free(ring->cluster_name);
                ring->cluster_name = cluster_name;
        }
        r = read_nodelist(ring);
        if (r < 0)
                log_warning_errno(r, "Failed to read corosync's nodelist: %m");

        e = cpg_initialize(&ring->cpg, &cpg_cb);
        if (e != CS_OK)
                goto fail;
        ring->have_cpg = true;
        cpg_context_set(ring->cpg, ring);
        e = cpg_local_get(ring->cpg, &local);
        if (e != CS_OK)
                goto fail;
        if (ring->node_id != 0 && ring->node_id != local) {
                log_crit("corosync's node id changed from %u to %u; refusing to continue", ring->node_id, local);
                sd_event_exit(ring->event, -ESTALE);
                return -ESTALE;
        }
        ring->node_id = local;

        e = votequorum_initialize(&ring->votequorum, NULL);
        if (e == CS_OK)
                ring->have_votequorum = true;
        else
                log_warning("votequorum is not available (%s): using a majority of the nodelist", cs_strerror(e));

        e = quorum_model_initialize(&ring->quorum, QUORUM_MODEL_V1, (quorum_model_data_t *) &qdata, &quorum_type, ring);
        if (e != CS_OK)
                goto fail;
        ring->have_quorum = true;

        e = quorum_fd_get(ring->quorum, &fd);
        if (e != CS_OK)
                goto fail;
        r = sd_event_add_io(ring->event, &ring->quorum_source, fd, EPOLLIN, on_quorum_io, ring);
        if (r < 0)
                goto fail_errno;
        e = quorum_trackstart(ring->quorum, CS_TRACK_CHANGES | CS_TRACK_CURRENT);
        if (e != CS_OK)
                goto fail;

        e = cpg_fd_get(ring->cpg, &fd);
        if (e != CS_OK)
                goto fail;
        r = sd_event_add_io(ring->event, &ring->cpg_source, fd, EPOLLIN, on_cpg_io, ring);
        if (r < 0)
                goto fail_errno;

        ring->connected = true;
        ring->cb.connected(ring, ring->node_id, ring->userdata);

        /* Votes and threshold before the first sync summary goes out, not
         * only when the quorum service gets around to notifying us. */
        int quorate = 0;
        if (quorum_getquorate(ring->quorum, &quorate) == CS_OK)
                refresh_votes(ring, quorate != 0);

        name.length = (uint32_t) strlen(ring->group);
        memcpy(name.value, ring->group, name.length);
        for (unsigned i = 0;; i++) {
                e = cpg_join(ring->cpg, &name);
                if (e != CS_ERR_TRY_AGAIN || i >= 10)
                        break;
                /* Only at start-up, bounded, before anything else runs. */
                usleep(100 * 1000);
        }
        if (e != CS_OK)
                goto fail;

        log_info("Joined CPG group \"%s\" of cluster \"%s\" as node %u", ring->group,
                 ring->cluster_name ? ring->cluster_name : "", ring->node_id);
        return 0;

fail:
        r = cs_to_errno(e);
        if (ring->failed_attempts == 0)
                log_warning("Cannot connect to corosync: %s; retrying with back-off", cs_strerror(e));
        else
                log_debug("Cannot connect to corosync: %s", cs_strerror(e));
        ring_disconnect(ring, true);
        return r;
fail_errno:
        log_error_errno(r, "Failed to watch corosync's file descriptors: %m");
        ring_disconnect(ring, true);
        return r;
}

static int on_reconnect_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Ring *ring = userdata;

        if (ring_connect(ring) >= 0) {
                if (ring->failed_attempts > 0)
                        log_notice("Reconnected to corosync after %u attempts", ring->failed_attempts);
                ring->failed_attempts = 0;
                ring->backoff_usec = 0;
                return 0;
        }
        ring->failed_attempts++;
        ring_schedule_reconnect(ring);
        return 0;
}

static void ring_schedule_reconnect(Ring *ring) {
        uint64_t now;

        ring->backoff_usec = ring->backoff_usec ? MIN(ring->backoff_usec * 2, RECONNECT_MAX_USEC) : RECONNECT_MIN_USEC;
        sd_event_now(ring->event, CLOCK_MONOTONIC, &now);
        if (ring->reconnect_timer) {
                sd_event_source_set_time(ring->reconnect_timer, now + ring->backoff_usec);
                sd_event_source_set_enabled(ring->reconnect_timer, SD_EVENT_ONESHOT);
        } else
                (void) sd_event_add_time(ring->event, &ring->reconnect_timer, CLOCK_MONOTONIC,
                                         now + ring->backoff_usec, 0, on_reconnect_timer, ring);
}

void ring_start(Ring *ring) {
        if (ring_connect(ring) < 0) {
                ring->failed_attempts++;
                ring_schedule_reconnect(ring);
        }
}

int ring_new(sd_event *event, const char *group, const RingCallbacks *cb, void *userdata, Ring **ret) {
        Ring *ring;

        if (strlen(group) >= CPG_MAX_NAME_LENGTH)
                return -EINVAL;
        ring = calloc(1, sizeof(Ring));
        if (!ring)
                return -ENOMEM;
        ring->event = sd_event_ref(event);
        ring->group = strdup(group);
        if (!ring->group) {
                ring_free(ring);
                return -ENOMEM;
        }
        ring->cb = *cb;
        ring->userdata = userdata;
        *ret = ring;
        return 0;
}

Ring *ring_free(Ring *ring) {
        if (!ring)
                return NULL;
        ring_disconnect(ring, false);
        sd_event_source_disable_unref(ring->reconnect_timer);
        sd_event_source_disable_unref(ring->send_timer);
        ring_free_nodes(ring);
        free(ring->cluster_name);
        free(ring->group);
        sd_event_unref(ring->event);
        free(ring);
        return NULL;
}

bool ring_is_connected(const Ring *ring) {
        return ring->connected;
}

const char *ring_cluster_name(const Ring *ring) {
        return ring->cluster_name ? ring->cluster_name : "";
}

const RingNode *ring_nodes(const Ring *ring, size_t *n) {
        *n = ring->n_nodes;
        return ring->nodes;
}

const RingNode *ring_find_node(const Ring *ring, uint32_t id) {
        for (size_t i = 0; i < ring->n_nodes; i++)
                if (ring->nodes[i].id == id)
                        return &ring->nodes[i];
        return NULL;
}

size_t ring_queue_length(const Ring *ring) {
        return ring->queue_length;
}
