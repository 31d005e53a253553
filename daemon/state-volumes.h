/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Shared volumes in the replicated state: who owns each one, and the
 * fencing token (epoch) that every action on it carries.
 *
 * The recorded owner is the only node allowed to use a volume. Ownership
 * changes hands in steps, each confirmed by the node that did it on its
 * hypervisor, so the record never claims more than the hosts do:
 *
 *   owned(O, e) --move to T--> releasing(O -> T, e)
 *     --O: released(e)--> acquiring(T, e+1) --T: acquired(e+1)--> owned(T, e+1)
 *
 *   releasing fails (O could not let go)   -> owned(O, e), error kept
 *   acquiring fails (T could not take it)  -> free(e), error kept
 *   the owner (or the acquiring node) leaves the ring -> orphaned(O, e),
 *     proposed by the leader; never reassigned on silence alone
 *   the operator confirms O fenced         -> free(e+1): O's grant is void
 *   O comes back before that               -> O may take it again: acquired(e+1)
 *   add                                    -> acquiring(owner, 1)
 *   remove                                 -> releasing(O -> nobody), then gone
 *
 * Invariants (checked by the unit tests after every command):
 *   - at most one owner, and an owner only in owned, releasing, orphaned;
 *   - the epoch never decreases, and grows with every change of owner;
 *   - only the node named by the record may confirm a step: the owner
 *     its release, the target its acquisition. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct ClusterState ClusterState;

#define VOLUME_NAME_MAX 64U
#define VOLUME_BACKING_MAX 1024U
#define VOLUME_ERROR_MAX 512U
#define STATE_VOLUMES_MAX 10000U

typedef enum VolumeKind {
        VOLUME_SHARED = 1,      /* a device or cluster filesystem every node can open */
        VOLUME_FS = 2,          /* a filesystem mounted on its owner only */
        _VOLUME_KIND_MAX,
} VolumeKind;

typedef enum VolumeState {
        VOLUME_OWNED = 1,
        VOLUME_RELEASING = 2,   /* owner lets go; target 0 = the volume is being removed */
        VOLUME_ACQUIRING = 3,   /* target takes it */
        VOLUME_ORPHANED = 4,    /* owner left the ring; awaits fencing */
        VOLUME_FREE = 5,        /* nobody holds it */
        _VOLUME_STATE_MAX,
} VolumeState;

typedef struct VolumeRecord {
        char *name;
        VolumeKind kind;
        char *backing;
        VolumeState state;
        uint32_t owner;         /* 0 in acquiring and free */
        uint32_t target;        /* releasing (0 = removal) and acquiring */
        uint64_t epoch;
        char *error;            /* last failure, "" if none */
} VolumeRecord;

typedef enum VolumeOp {
        VOLUME_OP_ADD = 1,      /* name, kind, backing, node = owner */
        VOLUME_OP_REMOVE = 2,   /* name */
        VOLUME_OP_MOVE = 3,     /* name, node = target */
        VOLUME_OP_RELEASED = 4, /* name, epoch: sent by the owner */
        VOLUME_OP_ACQUIRED = 5, /* name, epoch: sent by the target (or the orphaned owner, back) */
        VOLUME_OP_FAILED = 6,   /* name, epoch, error: the release or the acquisition failed */
        VOLUME_OP_ORPHAN = 7,   /* name, node: node left the ring (sent by the leader) */
        VOLUME_OP_FENCED = 8,   /* node: the operator confirmed it is down */
        _VOLUME_OP_MAX,
} VolumeOp;

typedef struct VolumeCommand {
        VolumeOp op;
        char *name;
        VolumeKind kind;
        char *backing;
        uint32_t node;
        uint64_t epoch;
        char *error;
} VolumeCommand;

const char *volume_kind_to_string(VolumeKind k);
VolumeKind volume_kind_from_string(const char *s);
const char *volume_state_to_string(VolumeState s);
const char *volume_op_to_string(VolumeOp op);
/* 1..64 of [A-Za-z0-9._-], not starting with '.' or '-'. */
bool volume_name_valid(const char *name);

void volume_command_done(VolumeCommand *c);
void volume_command_encode(const VolumeCommand *c, Writer *w);
int volume_command_decode(Reader *r, VolumeCommand *ret);
/* 1 changed, 0 no change, -ENOENT unknown volume or node, -EEXIST name
 * taken, -EPERM the sender may not confirm this step, -EBUSY a VM on another
 * node uses it or a step is under way, -ESTALE an epoch that is not the
 * current one, -EINVAL bad values. A refused command changes nothing. */
int state_apply_volume(ClusterState *s, uint32_t sender, const VolumeCommand *c);
/* Why state_apply_volume() would refuse, as a sentence (for bus errors). */
int state_check_volume(const ClusterState *s, uint32_t sender, const VolumeCommand *c, char *why, size_t why_len);

void state_volumes_encode(const ClusterState *s, Writer *w);
int state_volumes_decode(ClusterState *s, Reader *r);
void state_volumes_free(ClusterState *s);

const VolumeRecord *state_find_volume(const ClusterState *s, const char *name);
/* Whether the VM record lists the volume. */
typedef struct VmRecord VmRecord;
bool vm_uses_volume(const VmRecord *vm, const char *volume);

/* A VM whose disks live on `volumes` (a VmRecord's list) now runs on `to`
 * instead of `from`: each shared volume of the list that `from` owns starts
 * moving to `to` (releasing). Called by the state machine in the commit
 * that completes the migration; does not count a commit itself. */
void state_volumes_follow_vm(ClusterState *s, const char *volumes, uint32_t from, uint32_t to);

/* The names of the volumes the given disk paths live on (the device
 * itself, or a file under the volume's directory), space-separated in name
 * order, "" if none: what a node publishes as a VM's `volumes`. NULL on OOM. */
char *state_volumes_for_disks(const ClusterState *s, const char *const *paths, size_t n_paths);
