/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* A shared volume as ferryctl shows it (one entry of Cluster.ListVolumes),
 * and what `volume move --wait` and `volume remove --wait` make of the
 * states it passes through. No bus here, so all of it is unit-tested
 * (cli/test-volume.c).
 *
 * The states, as ferryd moves a volume (daemon/state-volumes.h):
 *   owned(O) --move to T--> releasing(O -> T) --> acquiring(T) --> owned(T)
 *   releasing fails -> owned(O) with error; acquiring fails -> free with error
 *   the owner (or the acquiring node) leaves the ring -> orphaned, until it
 *   comes back or the operator runs `node confirm-fenced` (then free)
 *   remove: releasing(O -> nobody), then gone */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "output.h"

/* As ferryd checks it: 1..64 characters of [A-Za-z0-9._-], not starting
 * with '.' or '-'. */
#define VOLUME_NAME_MAX 64
bool volume_name_is_valid(const char *name);

typedef struct Volume {
        char *name;
        bool known;             /* the fields below were read from ferryd */
        char *kind;             /* "shared", "fs" */
        char *backing;          /* device or path */
        char *state;            /* owned, releasing, acquiring, orphaned, free */
        char *owner;            /* node name, "" if none */
        char *target;           /* node a move goes to, "" if none */
        uint64_t epoch;         /* fencing token: grows with every change of owner */
        char *error;            /* last failure of a move or activation, "" if none */
        char **vms;             /* NULL-terminated: VMs whose disks live on it */
} Volume;

void volume_done(Volume *v);

typedef struct VolumeList {
        Volume *volumes;
        size_t n;
} VolumeList;

void volume_list_done(VolumeList *l);
/* A zeroed entry appended (counted before it is filled, so a half-read one
 * is freed with the list), or NULL on OOM. */
Volume *volume_list_add(VolumeList *l);
void volume_list_sort(VolumeList *l);
const Volume *volume_list_find(const VolumeList *l, const char *name);

/* The STATE cell of `volumes`: the state, with where a move goes
 * ("releasing→node3", "acquiring→node3"). arrow: "→" or "->". NULL on OOM. */
char *volume_state_text(const Volume *v, const char *arrow);

/* The state and what it means, for people: "releasing (moving from node1
 * to node3)", "orphaned (node1 left the ring; reassigned only after
 * 'ferryctl node confirm-fenced node1')". NULL on OOM. */
char *volume_state_explained(const Volume *v);

/* "web1,db1", or "" for none. NULL on OOM. */
char *volume_vms_text(const Volume *v, const char *separator);

/* `volume NAME`: "Label: value" lines. */
int volume_print_detail(const Volume *v, FILE *f);

/* The volume object of every --json output that shows one: name, kind,
 * backing, state, owner, target, epoch, error, vms (null but the name when
 * !known). */
void volume_write_json(JsonWriter *w, const Volume *v);

/* ---- --wait ---- */

typedef enum VolumeWaitKind {
        VOLUME_WAIT_MOVE,
        VOLUME_WAIT_REMOVE,
} VolumeWaitKind;

typedef enum VolumeWaitResult {
        VOLUME_WAIT_GOING,      /* still on its way: read again */
        VOLUME_WAIT_DONE,       /* moved to the destination, or removed */
        VOLUME_WAIT_FAILED,     /* it ended elsewhere: volume_wait_failure() says how */
} VolumeWaitResult;

typedef struct VolumeWait {
        VolumeWaitKind kind;
        const char *name;
        const char *destination;        /* move: the destination's node name */
        char *from;                     /* the owner that lets go, once seen */
} VolumeWait;

void volume_wait_done(VolumeWait *w);

/* The volume as read now (NULL: ListVolumes no longer has it): is the move
 * or the removal over, and how? A move is done once the volume is owned by
 * the destination, and failed once it is owned by another node (the
 * release failed), free (the activation failed, or its orphaned owner was
 * confirmed fenced), orphaned (a node of the move left the ring: nothing
 * moves until it comes back or is confirmed fenced) or gone. A removal is
 * done once the volume is gone, going while it is releasing, and failed in
 * any other state (the release failed, or the owner left the ring). Remembers
 * the owner that lets go, for the messages. Returns -ENOMEM on OOM. */
int volume_wait_check(VolumeWait *w, const Volume *v, VolumeWaitResult *ret);

/* One line per state on the way, for the progress:
 * "vol1: releasing: node1 lets go of it (epoch 7)". NULL on OOM. */
char *volume_progress_line(const VolumeWait *w, const Volume *v);

/* Why it failed, after volume_wait_check() said VOLUME_WAIT_FAILED:
 * "vol1: the move to node3 failed: <error>; node1 still owns it". */
char *volume_wait_failure(const VolumeWait *w, const Volume *v);

/* What it still waits for, for the message of a --wait that gives up:
 * "node1 to let go of vol1 (releasing, epoch 7)". NULL on OOM. */
char *volume_waits_for(const VolumeWait *w, const Volume *v);
