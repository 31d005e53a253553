/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* One member's copy of the replicated cluster state, and the protocol that
 * keeps the copies equal: state sync on every membership change and
 * proposals applied in the total order CPG delivers them in.
 *
 * Pure logic, no I/O: the daemon feeds it CPG configuration changes and
 * delivered frames, and gives it a `send` callback that multicasts with
 * CPG_TYPE_AGREED. The unit tests feed it a simulated CPG instead.
 *
 * Sync (after every configuration change, modelled on pmxcfs' dfsm):
 *   1. Every member enters SYNCING and stops applying proposals. The member
 *      with the lowest node id sends SYNC_START carrying a fresh epoch.
 *   2. On SYNC_START from the lowest member of the current configuration
 *      every member adopts the epoch and sends SYNC_SUMMARY: commit counter,
 *      digest, the votes it carries and the votes a quorum needs. Frames of
 *      any other epoch are ignored from then on.
 *   3. When every member's summary is in, each member picks the same leader:
 *      highest commit counter, ties to the lowest node id. If all digests
 *      equal the leader's, the sync ends there. Otherwise the leader sends
 *      SYNC_STATE with its full state, every member adopts it, and the sync
 *      ends at the delivery of that frame. Ending at the same point of the
 *      total order on every member is what makes the next proposal land on
 *      the same state everywhere.
 *   4. The epoch is quorate if the members' votes reach the largest quorum
 *      any member reported. This is decided from delivered frames only, so
 *      every member decides the same.
 *
 * Proposals carry the epoch they were sent in; one is applied only if it is
 * delivered in that same epoch, after its sync, in a quorate epoch.
 *
 * Confirmation. CPG's agreed order is not "safe" delivery: when a
 * configuration breaks up, a frame may be delivered to the members on one
 * side only (in the transitional configuration). A minority can thus apply
 * a proposal the majority never sees. So a change is reported to its
 * proposer as committed only once members holding a quorum of votes have
 * acknowledged applying it (MESSAGE_ACK, delivered in the same epoch):
 * those members carry it into whatever quorate configuration comes next.
 * And the sync picks its leader by (generation of the last commit, commit
 * counter): every completed sync raises the generation past all members',
 * so a majority that committed after a split outranks a minority that
 * applied a stray frame from before it, even at equal commit counters. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster-state.h"

typedef struct Replica Replica;

typedef enum ReplicaMode {
        REPLICA_DETACHED,       /* not in a CPG configuration */
        REPLICA_SYNCING,
        REPLICA_SYNCED,
} ReplicaMode;

typedef struct ReplicaCallbacks {
        /* Multicast a frame in agreed order. Returns 0 once the frame is
         * queued for sending, negative errno otherwise. */
        int (*send)(const void *buf, size_t len, void *userdata);
        /* An own proposal reached its end: 1 committed and confirmed by a
         * quorum, 0 valid but changed nothing, a negative errno from
         * cluster_state_apply() if refused, -ESTALE if it was dropped at
         * delivery (sent in an epoch that had ended: nothing changed
         * anywhere), -ENOLINK if the epoch was not quorate at delivery
         * (nothing changed), or -ETIME if the membership changed before it
         * was confirmed (it may or may not have taken effect). */
        void (*proposal_done)(uint64_t seq, int result, void *userdata);
        /* Optional: a proposal was delivered and applied (result as
         * cluster_state_apply()); every member sees the same sequence. */
        void (*applied)(uint32_t sender, uint64_t seq, int result, void *userdata);
        /* Optional: the sync replaced this member's state with the leader's. */
        void (*adopted)(uint32_t leader, void *userdata);
        /* The committed state, the membership view or the mode changed. */
        void (*changed)(void *userdata);
        /* Something worth a line in the daemon's log (the replica never
         * logs itself). priority is a syslog priority. */
        void (*notice)(int priority, const char *text, void *userdata);
} ReplicaCallbacks;

/* Takes ownership of `initial` (may be NULL for an empty state). */
Replica *replica_new(uint32_t self, ClusterState *initial, const ReplicaCallbacks *cb, void *userdata);
Replica *replica_free(Replica *r);

/* Local inputs carried in this member's next SYNC_SUMMARY: the votes this
 * node has, and the votes a partition needs (votequorum's "quorum"). */
void replica_set_votes(Replica *r, uint32_t node_votes, uint32_t quorum_votes);
/* corosync's own verdict; gates local proposals only (it is not replicated). */
void replica_set_corosync_quorate(Replica *r, bool quorate);

/* A CPG configuration change with the full member list (node ids). */
void replica_confchg(Replica *r, const uint32_t *members, size_t n_members);
/* The connection to CPG is gone: no membership until the next confchg. */
void replica_detach(Replica *r);

/* A frame delivered by CPG from node `sender`. Returns 0 if it was handled
 * or deliberately ignored (stale epoch, ...), negative errno if it was
 * malformed or claims another sender; the caller logs and drops it. */
int replica_deliver(Replica *r, uint32_t sender, const void *buf, size_t len);

/* Proposes a command. On success *ret_seq identifies it in proposal_done().
 * -ENOTCONN detached, -EAGAIN sync in progress, -ENOLINK not quorate. */
int replica_propose(Replica *r, const Command *c, uint64_t *ret_seq);

const ClusterState *replica_state(const Replica *r);
const char *replica_digest(const Replica *r);
ReplicaMode replica_mode(const Replica *r);
uint32_t replica_self(const Replica *r);
bool replica_is_member(const Replica *r, uint32_t node);
size_t replica_n_members(const Replica *r);
const uint32_t *replica_members(const Replica *r);
/* Quorate as decided by the last completed sync (deterministic). */
bool replica_epoch_quorate(const Replica *r);
/* What this node may act on: synced, epoch quorate and corosync quorate. */
bool replica_quorate(const Replica *r);
uint32_t replica_quorum_votes(const Replica *r);
uint64_t replica_epoch(const Replica *r);
uint64_t replica_generation(const Replica *r);
const char *replica_mode_to_string(ReplicaMode m);
