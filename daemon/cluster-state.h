/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The replicated cluster state and the commands that change it.
 *
 * This is a deterministic state machine: cluster_state_apply() is the only
 * way the committed state changes, and it depends on nothing but the state
 * and the command (no clock, no local configuration, no I/O). Every member
 * applies the same commands in the same (totally ordered) sequence, so every
 * member holds the same state and the same digest.
 *
 * Membership (who is online right now) is not part of it: it is a view that
 * every member of a CPG configuration derives from that configuration, see
 * replica.h. Keeping it out is what lets a non-quorate partition track its
 * members without committing anything.
 *
 * Invariants:
 *   - nodes[] is sorted by id, ids are unique and non-zero;
 *   - commit grows by exactly one for every command that changed the state,
 *     and never otherwise;
 *   - a node's facts are written only by a command sent by that node. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "sha256.h"
#include "state-balance.h"
#include "state-jobs.h"
#include "state-policies.h"
#include "state-volumes.h"
#include "state-vms.h"

#define STATE_DIGEST_HEX_SIZE (2 * SHA256_DIGEST_SIZE + 1)

/* Upper bounds that keep a hostile frame from making us allocate much;
 * far above corosync's own limits and the sizes we plan for. */
#define STATE_NODES_MAX 1024U
/* At about 100 bytes a VM and up to 4 KiB of log per kept job, 100,000 VMs
 * and the kept jobs stay under FERRY_MESSAGE_MAX, the frame a full state
 * travels in at a sync. */
#define STATE_VMS_MAX 100000U
#define STATE_JOBS_MAX 100000U

/* What a node publishes about itself. */
typedef struct NodeFacts {
        char *name;
        char *daemon_version;
        uint32_t protocol_version;
        char *cpu_vendor;
        char *cpu_model;
        char *cpu_features;             /* space-separated, sorted */
        uint32_t cpus;
        uint64_t memory_total;          /* bytes */
        uint64_t memory_free;           /* bytes */
        uint64_t memory_reserved;       /* bytes */
        char *hypervisor_name;
        char *hypervisor_version;
        uint64_t updated_at;            /* CLOCK_REALTIME µs, set by the publisher */
        /* How peers reach this node's hypervisor, and its migration limits
         * (from its ferryd.conf): the state machine grants slots from these. */
        char *backend_uri;              /* "" without a backend */
        char *migration_address;        /* "" = the backend's default */
        uint32_t max_outgoing;
        uint32_t max_incoming;
        uint32_t max_cluster;           /* 0 = no cluster-wide cap */
} NodeFacts;

/* What an operator asked of a node being drained, and what to do with VMs
 * that cannot move. The drain's progress is derived (policies/drain.c). */
typedef enum DrainMode {
        DRAIN_NONE = 0,
        DRAIN_FAIL_ON_BLOCKERS = 1,     /* move what can move; report the rest as blocking */
        DRAIN_LEAVE_BLOCKERS = 2,       /* move what can move; leave the rest running */
        _DRAIN_MODE_MAX,
} DrainMode;

typedef struct NodeRecord {
        uint32_t id;
        bool maintenance;
        DrainMode drain;
        NodeFacts facts;
} NodeRecord;

typedef struct VmRecord VmRecord;
typedef struct JobRecord JobRecord;

typedef struct ClusterState {
        uint64_t commit;
        /* Sync generation in which the last change was committed (set by
         * the replica, see replica.h). Orders two states that reached the
         * same commit counter on different sides of a partition. */
        uint64_t generation;
        size_t n_nodes;
        NodeRecord *nodes;
        size_t n_vms;
        VmRecord *vms;                  /* sorted by (name, node) */
        uint64_t next_job_id;
        size_t n_jobs;
        JobRecord *jobs;                /* sorted by id */
        size_t n_policies;
        PolicyRecord *policies;         /* sorted by scope, "" (the cluster) first */
        size_t n_volumes;
        VolumeRecord *volumes;          /* sorted by name */
        BalanceSettings balance;
} ClusterState;

typedef enum CommandType {
        COMMAND_NODE_FACTS = 1,         /* a node publishes its facts */
        COMMAND_SET_MAINTENANCE = 2,    /* set or clear a node's maintenance flag */
        COMMAND_NODE_VMS = 3,           /* a node publishes the VMs it runs */
        COMMAND_JOB_SUBMIT = 4,         /* queue a live migration */
        COMMAND_JOB_UPDATE = 5,         /* the source reports a running job's progress */
        COMMAND_JOB_FINISH = 6,         /* the source reports a job's outcome */
        COMMAND_JOB_CANCEL = 7,         /* cancel a queued job, or ask the source to abort */
        COMMAND_SET_DRAIN = 8,          /* start (maintenance on) or end a node's drain */
        COMMAND_SET_POLICY = 9,         /* set or clear convergence policy fields of the cluster or a VM */
        COMMAND_VOLUME = 10,            /* a step in the life of a shared volume (state-volumes.h) */
        COMMAND_SET_BALANCE = 11,       /* the load balancer's settings (state-balance.h) */
        _COMMAND_TYPE_MAX,
} CommandType;

typedef struct Command {
        CommandType type;
        union {
                struct {
                        uint32_t node;
                        NodeFacts facts;
                } node_facts;
                struct {
                        uint32_t node;
                        bool enabled;
                } set_maintenance;
                NodeVmsCommand node_vms;
                JobSubmitCommand job_submit;
                JobUpdateCommand job_update;
                JobFinishCommand job_finish;
                struct {
                        uint64_t id;
                } job_cancel;
                struct {
                        uint32_t node;
                        DrainMode mode;                 /* DRAIN_NONE: undrain */
                        bool clear_maintenance;         /* with undrain */
                } set_drain;
                SetPolicyCommand set_policy;
                VolumeCommand volume;
                BalanceSettings set_balance;
        };
} Command;

void node_facts_done(NodeFacts *f);
int node_facts_copy(NodeFacts *dst, const NodeFacts *src);
bool node_facts_equal(const NodeFacts *a, const NodeFacts *b);

void command_done(Command *c);
int command_encode(const Command *c, Writer *w);
/* Decodes a command that must fill the reader exactly. On error, *c is
 * left empty. */
int command_decode(Reader *r, Command *c);
const char *command_type_to_string(CommandType t);

ClusterState *cluster_state_new(void);
ClusterState *cluster_state_free(ClusterState *s);
int cluster_state_copy(const ClusterState *s, ClusterState **ret);

/* Applies a delivered command sent by node `sender`.
 * Returns 1 if the state changed (commit was incremented), 0 if the command
 * was valid but changed nothing, or a negative errno if it was refused
 * (-ENOENT unknown node, -EPERM sender may not do this, -EINVAL bad values);
 * a refused command changes nothing. */
int cluster_state_apply(ClusterState *s, uint32_t sender, const Command *c);

NodeRecord *cluster_state_find_node_mutable(ClusterState *s, uint32_t id);
const NodeRecord *cluster_state_find_node(const ClusterState *s, uint32_t id);
const NodeRecord *cluster_state_find_node_by_name(const ClusterState *s, const char *name);
/* The name node `id` published, or "?" (for messages). */
const char *cluster_state_node_name(const ClusterState *s, uint32_t id);

/* Canonical encoding: identical bytes for identical states. */
int cluster_state_encode(const ClusterState *s, Writer *w);
int cluster_state_decode(Reader *r, ClusterState **ret);
void cluster_state_digest(const ClusterState *s, char out[STATE_DIGEST_HEX_SIZE]);
