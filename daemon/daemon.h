/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The daemon's one context object: what ferryd.c wires together and what
 * the D-Bus layer (bus.c) reads. */

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "backend.h"
#include "balancer.h"
#include "cluster-state.h"
#include "config.h"
#include "migration-runner.h"
#include "preflight.h"
#include "replica.h"
#include "ring.h"
#include "volume-manager.h"

/* CPG group name; the suffix is the wire protocol generation, so daemons
 * that could not understand each other never meet in one group. */
#define FERRY_CPG_GROUP "ferry-v1"

typedef struct PendingCall PendingCall;

typedef struct Daemon {
        sd_event *event;
        sd_bus *bus;
        Ring *ring;
        Replica *replica;

        FerryConfig config;
        char *config_path;
        bool config_explicit;           /* -c given: a missing file is an error, also on reload */

        uint32_t node_id;
        char *node_name;
        bool corosync_quorate;
        uint32_t node_votes;
        uint32_t quorum_votes;

        Backend *backend;               /* NULL: backend = none */
        Runner *runner;
        VolumeManager *volumes;
        Balancer *balancer;

        bool ready_sent;
        sd_event_source *facts_timer;
        bool facts_proposal_pending;
        uint64_t facts_proposal_seq;
        uint64_t *drain_seqs;                   /* our own JOB_SUBMITs for the drain, in flight */
        size_t n_drain_seqs;
        unsigned drain_last_status;
        sd_event_source *inventory_timer;
        bool inventory_proposal_pending;
        uint64_t inventory_jobs_marker;
        uint64_t inventory_proposal_seq;

        PendingCall *pending_calls;     /* D-Bus calls waiting for their commit */

        /* What the bus last announced, to emit PropertiesChanged only for
         * what really changed. */
        char *emitted_cluster;
        struct EmittedNode *emitted_nodes;
        size_t n_emitted_nodes;
        struct EmittedJob *emitted_jobs;
        size_t n_emitted_jobs;
        struct EventsContext *events;   /* events and metrics, bus-events.c */

        sd_event_source *persist_timer;
        uint64_t persisted_commit;
        char persisted_digest[STATE_DIGEST_HEX_SIZE];
} Daemon;

/* A node as the API shows it: the replicated record if any, and the
 * membership view (online/quorate) of this node. */
typedef struct NodeView {
        uint32_t id;
        const char *name;
        bool online;
        bool quorate;
        const NodeRecord *record;       /* NULL if the node never published */
} NodeView;

/* The set of node ids the API knows: replicated records, corosync's
 * nodelist and current members. Sorted, unique; caller frees. */
int daemon_node_ids(Daemon *d, uint32_t **ret, size_t *n);
bool daemon_node_view(Daemon *d, uint32_t id, NodeView *ret);
/* By name, or by decimal id. */
bool daemon_find_node(Daemon *d, const char *name_or_id, NodeView *ret);

bool daemon_is_quorate(Daemon *d);
/* For bus methods that change the state: 0, or NotQuorate set in error. */
int daemon_check_quorate(Daemon *d, sd_bus_error *error);
/* A node by name or id that has published its facts: 0, or the error set
 * (InvalidArgs for an empty name, NoSuchNode, Rejected if never joined). */
int daemon_resolve_node(Daemon *d, const char *name, NodeView *v, sd_bus_error *error);
/* The node's name as the API shows it, or "" if unknown. */
const char *daemon_node_name(Daemon *d, uint32_t id);

/* Proposes a command on behalf of a bus call; the reply is sent when the
 * command comes back through the total order. `reply` builds the success
 * reply (NULL: an empty one). */
typedef int (*PendingReplyFn)(Daemon *d, sd_bus_message *call, uint64_t seq);
int daemon_propose_for_call(Daemon *d, const Command *c, sd_bus_message *m, PendingReplyFn reply,
                            sd_bus_error *error);

/* The membership view for pre-flight checks. */
void daemon_membership_view(Daemon *d, MembershipView *ret);
/* The id of the job the last proposal of `seq` created (for Migrate's reply). */
uint64_t daemon_job_for_seq(Daemon *d, uint64_t seq);
