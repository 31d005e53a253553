/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "state-volumes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster-state.h"
#include "macro.h"
#include "state-vms.h"

const char *volume_kind_to_string(VolumeKind k) {
        switch (k) {
        case VOLUME_SHARED: return "shared";
        case VOLUME_FS: return "fs";
        default: return "unknown";
        }
}

VolumeKind volume_kind_from_string(const char *s) {
        if (streq(s, "shared"))
                return VOLUME_SHARED;
        if (streq(s, "fs"))
                return VOLUME_FS;
        return 0;
}

const char *volume_state_to_string(VolumeState s) {
        switch (s) {
        case VOLUME_OWNED: return "owned";
        case VOLUME_RELEASING: return "releasing";
        case VOLUME_ACQUIRING: return "acquiring";
        case VOLUME_ORPHANED: return "orphaned";
        case VOLUME_FREE: return "free";
        default: return "unknown";
        }
}

const char *volume_op_to_string(VolumeOp op) {
        switch (op) {
        case VOLUME_OP_ADD: return "add";
        case VOLUME_OP_REMOVE: return "remove";
        case VOLUME_OP_MOVE: return "move";
        case VOLUME_OP_RELEASED: return "released";
        case VOLUME_OP_ACQUIRED: return "acquired";
        case VOLUME_OP_FAILED: return "failed";
        case VOLUME_OP_ORPHAN: return "orphan";
        case VOLUME_OP_FENCED: return "fenced";
        default: return "unknown";
        }
}

bool volume_name_valid(const char *name) {
        size_t n = strlen(name);
        if (n == 0 || n > VOLUME_NAME_MAX || name[0] == '.' || name[0] == '-')
                return false;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
                      c == '_' || c == '-'))
                        return false;
        }
        return true;
}

bool vm_uses_volume(const VmRecord *vm, const char *volume) {
        /* vm->volumes: space-separated names, each valid (no spaces). */
        size_t n = strlen(volume);
        for (const char *p = vm->volumes; p && *p;) {
                const char *end = strchr(p, ' ');
                size_t len = end ? (size_t) (end - p) : strlen(p);
                if (len == n && strncmp(p, volume, n) == 0)
                        return true;
                p = end ? end + 1 : p + len;
        }
        return false;
}

void volume_command_done(VolumeCommand *c) {
        free(c->name);
        free(c->backing);
        free(c->error);
        *c = (VolumeCommand) {};
}

void volume_command_encode(const VolumeCommand *c, Writer *w) {
        writer_put_u8(w, (uint8_t) c->op);
        writer_put_string(w, c->name);
        writer_put_u8(w, (uint8_t) c->kind);
        writer_put_string(w, c->backing);
        writer_put_u32(w, c->node);
        writer_put_u64(w, c->epoch);
        writer_put_string(w, c->error);
}

int volume_command_decode(Reader *r, VolumeCommand *ret) {
        VolumeCommand c = {};

        c.op = (VolumeOp) reader_get_u8(r);
        c.name = reader_dup_string(r);
        c.kind = (VolumeKind) reader_get_u8(r);
        c.backing = reader_dup_string(r);
        c.node = reader_get_u32(r);
        c.epoch = reader_get_u64(r);
        c.error = reader_dup_string(r);
        if (reader_error(r) < 0 || c.op == 0 || c.op >= _VOLUME_OP_MAX || c.kind >= _VOLUME_KIND_MAX ||
            strlen(c.name) > VOLUME_NAME_MAX || strlen(c.backing) > VOLUME_BACKING_MAX ||
            strlen(c.error) > VOLUME_ERROR_MAX) {
                volume_command_done(&c);
                return -EBADMSG;
        }
        *ret = c;
        return 0;
}

static size_t volume_index(const ClusterState *s, const char *name, bool *found) {
        size_t lo = 0, hi = s->n_volumes;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(s->volumes[mid].name, name) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = lo < s->n_volumes && streq(s->volumes[lo].name, name);
        return lo;
}

const VolumeRecord *state_find_volume(const ClusterState *s, const char *name) {
        bool found;
        size_t i = volume_index(s, name, &found);
        return found ? &s->volumes[i] : NULL;
}

static void volume_record_done(VolumeRecord *v) {
        free(v->name);
        free(v->backing);
        free(v->error);
        *v = (VolumeRecord) {};
}

/* A running VM on a node other than `node` that uses the volume, or NULL. */
static const VmRecord *user_elsewhere(const ClusterState *s, const char *volume, uint32_t node) {
        for (size_t i = 0; i < s->n_vms; i++) {
                const VmRecord *v = &s->vms[i];
                if (v->node != node && v->state != VM_SHUTOFF && vm_uses_volume(v, volume))
                        return v;
        }
        return NULL;
}

#define WHY(...) (why ? snprintf(why, why_len, __VA_ARGS__) : 0)

int state_check_volume(const ClusterState *s, uint32_t sender, const VolumeCommand *c, char *why, size_t why_len) {
        const VolumeRecord *v = NULL;
        const VmRecord *vm;
        bool found = false;

        if (c->op == 0 || c->op >= _VOLUME_OP_MAX)
                return WHY("unknown volume operation"), -EINVAL;
        if (c->op != VOLUME_OP_FENCED) {
                if (!c->name || !volume_name_valid(c->name))
                        return WHY("invalid volume name \"%s\": 1 to %u of A-Z a-z 0-9 . _ -, not starting with . or -",
                                   c->name ? c->name : "", VOLUME_NAME_MAX), -EINVAL;
                size_t i = volume_index(s, c->name, &found);
                v = found ? &s->volumes[i] : NULL;
                if (c->op != VOLUME_OP_ADD && !v)
                        return WHY("no volume \"%s\"", c->name), -ENOENT;
        }

        switch (c->op) {
        case VOLUME_OP_ADD:
                if (v)
                        return WHY("a volume \"%s\" exists already", c->name), -EEXIST;
                if (c->kind == 0 || c->kind >= _VOLUME_KIND_MAX)
                        return WHY("unknown volume kind"), -EINVAL;
                if (!c->backing || c->backing[0] != '/' || strlen(c->backing) > VOLUME_BACKING_MAX)
                        return WHY("the backing must be an absolute path (a device or a directory)"), -EINVAL;
                for (size_t i = 0; i < s->n_volumes; i++)
                        if (streq(s->volumes[i].backing, c->backing))
                                return WHY("volume \"%s\" has the same backing already", s->volumes[i].name), -EEXIST;
                if (!cluster_state_find_node(s, c->node))
                        return WHY("the owner is not a node of the cluster"), -ENOENT;
                return 0;
        case VOLUME_OP_REMOVE:
                if (v->state == VOLUME_RELEASING || v->state == VOLUME_ACQUIRING)
                        return WHY("volume \"%s\" is %s: wait for that to end", c->name,
                                   volume_state_to_string(v->state)), -EBUSY;
                if (v->state == VOLUME_ORPHANED)
                        return WHY("volume \"%s\" is orphaned: confirm its owner fenced first", c->name), -EBUSY;
                vm = user_elsewhere(s, c->name, 0);
                if (vm)
                        return WHY("VM \"%s\" on %s uses volume \"%s\"", vm->name, cluster_state_node_name(s, vm->node),
                                   c->name), -EBUSY;
                return 0;
        case VOLUME_OP_MOVE:
                if (!cluster_state_find_node(s, c->node))
                        return WHY("the destination is not a node of the cluster"), -ENOENT;
                if (v->state == VOLUME_RELEASING || v->state == VOLUME_ACQUIRING)
                        return WHY("volume \"%s\" is already moving", c->name), -EBUSY;
                if (v->state == VOLUME_ORPHANED)
                        return WHY("volume \"%s\" is orphaned: its owner %s left the ring; confirm it fenced "
                                   "('ferryctl node confirm-fenced %s') before moving the volume",
                                   c->name, cluster_state_node_name(s, v->owner), cluster_state_node_name(s, v->owner)),
                               -EBUSY;
                if (v->state == VOLUME_OWNED && v->owner == c->node)
                        return WHY("volume \"%s\" is owned by %s already", c->name, cluster_state_node_name(s, c->node)),
                               -EALREADY;
                vm = user_elsewhere(s, c->name, c->node);
                if (vm)
                        return WHY("VM \"%s\" runs on %s and uses volume \"%s\": move the VM, not the volume",
                                   vm->name, cluster_state_node_name(s, vm->node), c->name), -EBUSY;
                return 0;
        case VOLUME_OP_RELEASED:
                if (!(v->state == VOLUME_RELEASING || (v->state == VOLUME_ORPHANED && v->target != 0)) ||
                    v->owner != sender)
                        return WHY("volume \"%s\" is not being released by this node", c->name), -EPERM;
                if (c->epoch != v->epoch)
                        return WHY("epoch %llu is not the volume's (%llu)", (unsigned long long) c->epoch,
                                   (unsigned long long) v->epoch), -ESTALE;
                return 0;
        case VOLUME_OP_ACQUIRED:
                if (v->state == VOLUME_ACQUIRING && v->target == sender) {
                        if (c->epoch != v->epoch)
                                return WHY("epoch mismatch"), -ESTALE;
                        return 0;
                }
                /* The owner, back before anyone confirmed it fenced, takes
                 * its volume again under a new epoch. */
                if (v->state == VOLUME_ORPHANED && v->owner == sender && v->target == 0) {
                        if (c->epoch != v->epoch + 1)
                                return WHY("epoch mismatch"), -ESTALE;
                        return 0;
                }
                return WHY("volume \"%s\" is not being acquired by this node", c->name), -EPERM;
        case VOLUME_OP_FAILED:
                if (c->epoch != v->epoch)
                        return WHY("epoch mismatch"), -ESTALE;
                if (((v->state == VOLUME_RELEASING || (v->state == VOLUME_ORPHANED && v->target != 0)) &&
                     v->owner == sender) ||
                    (v->state == VOLUME_ACQUIRING && v->target == sender))
                        return 0;
                return WHY("this node has no step to fail on volume \"%s\"", c->name), -EPERM;
        case VOLUME_OP_ORPHAN:
                if (c->node == 0)
                        return WHY("no node"), -EINVAL;
                if ((v->state == VOLUME_OWNED || v->state == VOLUME_RELEASING) && v->owner == c->node)
                        return 0;
                if (v->state == VOLUME_ACQUIRING && v->target == c->node)
                        return 0;
                return WHY("volume \"%s\" does not depend on that node", c->name), -EALREADY;
        case VOLUME_OP_FENCED:
                if (!cluster_state_find_node(s, c->node))
                        return WHY("no such node"), -ENOENT;
                return 0;
        default:
                return -EINVAL;
        }
}

int state_apply_volume(ClusterState *s, uint32_t sender, const VolumeCommand *c) {
        bool found;
        int k;

        k = state_check_volume(s, sender, c, NULL, 0);
        if (k == -EALREADY)
                return 0;
        if (k < 0)
                return k;

        if (c->op == VOLUME_OP_FENCED) {
                bool changed = false;
                for (size_t i = 0; i < s->n_volumes; i++) {
                        VolumeRecord *v = &s->volumes[i];
                        if (v->state != VOLUME_ORPHANED || v->owner != c->node)
                                continue;
                        /* The new epoch voids every grant the fenced node
                         * held: a backend refuses its older epoch. */
                        v->state = VOLUME_FREE;
                        v->owner = 0;
                        v->target = 0;
                        v->epoch++;
                        changed = true;
                }
                if (!changed)
                        return 0;
                s->commit++;
                return 1;
        }

        size_t i = volume_index(s, c->name, &found);
        VolumeRecord *v = found ? &s->volumes[i] : NULL;
        char *error = NULL;

        switch (c->op) {
        case VOLUME_OP_ADD: {
                VolumeRecord n = {
                        .name = strdup(c->name),
                        .kind = c->kind,
                        .backing = strdup(c->backing),
                        .state = VOLUME_ACQUIRING,
                        .target = c->node,
                        .epoch = 1,
                        .error = strdup(""),
                };
                VolumeRecord *p;
                if (!n.name || !n.backing || !n.error || s->n_volumes >= STATE_VOLUMES_MAX) {
                        volume_record_done(&n);
                        return s->n_volumes >= STATE_VOLUMES_MAX ? -E2BIG : -ENOMEM;
                }
                p = realloc(s->volumes, (s->n_volumes + 1) * sizeof(VolumeRecord));
                if (!p) {
                        volume_record_done(&n);
                        return -ENOMEM;
                }
                s->volumes = p;
                memmove(s->volumes + i + 1, s->volumes + i, (s->n_volumes - i) * sizeof(VolumeRecord));
                s->volumes[i] = n;
                s->n_volumes++;
                break;
        }
        case VOLUME_OP_REMOVE:
                if (v->state == VOLUME_FREE) {
                        volume_record_done(v);
                        memmove(s->volumes + i, s->volumes + i + 1, (s->n_volumes - i - 1) * sizeof(VolumeRecord));
                        s->n_volumes--;
                        break;
                }
                if (!(error = strdup("")))
                        return -ENOMEM;
                v->state = VOLUME_RELEASING;
                v->target = 0;
                free(v->error);
                v->error = error;
                break;
        case VOLUME_OP_MOVE:
                if (!(error = strdup("")))
                        return -ENOMEM;
                free(v->error);
                v->error = error;
                if (v->state == VOLUME_FREE) {
                        v->state = VOLUME_ACQUIRING;
                        v->target = c->node;
                        v->epoch++;
                } else {
                        v->state = VOLUME_RELEASING;
                        v->target = c->node;
                }
                break;
        case VOLUME_OP_RELEASED:
                if (v->target == 0) {
                        volume_record_done(v);
                        memmove(s->volumes + i, s->volumes + i + 1, (s->n_volumes - i - 1) * sizeof(VolumeRecord));
                        s->n_volumes--;
                        break;
                }
                v->state = VOLUME_ACQUIRING;
                v->owner = 0;
                v->epoch++;
                break;
        case VOLUME_OP_ACQUIRED:
                if (!(error = strdup("")))
                        return -ENOMEM;
                free(v->error);
                v->error = error;
                if (v->state == VOLUME_ORPHANED)
                        v->epoch++;
                v->state = VOLUME_OWNED;
                v->owner = sender;
                v->target = 0;
                break;
        case VOLUME_OP_FAILED:
                if (!(error = strdup(c->error ? c->error : "")))
                        return -ENOMEM;
                free(v->error);
                v->error = error;
                if (v->state == VOLUME_RELEASING || v->state == VOLUME_ORPHANED)
                        v->state = VOLUME_OWNED;        /* the owner still holds it */
                else {
                        v->state = VOLUME_FREE;         /* the old owner let go; the new one could not take it */
                        v->owner = 0;
                }
                v->target = 0;
                break;
        case VOLUME_OP_ORPHAN:
                if (v->state == VOLUME_ACQUIRING) {
                        /* It may have activated without telling us: treat it
                         * as the owner until it is confirmed fenced. */
                        v->owner = v->target;
                        v->target = 0;
                }
                /* Orphaned while releasing: the target is kept, so that the
                 * owner, back, finishes the handover instead of taking the
                 * volume back (its VM may run on the target now). */
                v->state = VOLUME_ORPHANED;
                break;
        default:
                return -EINVAL;
        }
        s->commit++;
        return 1;
}

void state_volumes_follow_vm(ClusterState *s, const char *volumes, uint32_t from, uint32_t to) {
        VmRecord vm = { .volumes = (char *) volumes };

        for (size_t i = 0; i < s->n_volumes; i++) {
                VolumeRecord *v = &s->volumes[i];
                if (v->kind != VOLUME_SHARED || v->state != VOLUME_OWNED || v->owner != from ||
                    !vm_uses_volume(&vm, v->name))
                        continue;
                /* No allocation here: an OOM must not make one member's
                 * state differ from the others'. */
                if (v->error)
                        v->error[0] = 0;
                v->state = VOLUME_RELEASING;
                v->target = to;
        }
}

void state_volumes_encode(const ClusterState *s, Writer *w) {
        writer_put_u32(w, (uint32_t) s->n_volumes);
        for (size_t i = 0; i < s->n_volumes; i++) {
                const VolumeRecord *v = &s->volumes[i];
                writer_put_string(w, v->name);
                writer_put_u8(w, (uint8_t) v->kind);
                writer_put_string(w, v->backing);
                writer_put_u8(w, (uint8_t) v->state);
                writer_put_u32(w, v->owner);
                writer_put_u32(w, v->target);
                writer_put_u64(w, v->epoch);
                writer_put_string(w, v->error);
        }
}

int state_volumes_decode(ClusterState *s, Reader *r) {
        uint32_t n = reader_get_u32(r);

        if (reader_error(r) < 0 || n > STATE_VOLUMES_MAX)
                return -EBADMSG;
        if (n > 0 && !(s->volumes = calloc(n, sizeof(VolumeRecord))))
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
                VolumeRecord *v = &s->volumes[i];
                v->name = reader_dup_string(r);
                v->kind = (VolumeKind) reader_get_u8(r);
                v->backing = reader_dup_string(r);
                v->state = (VolumeState) reader_get_u8(r);
                v->owner = reader_get_u32(r);
                v->target = reader_get_u32(r);
                v->epoch = reader_get_u64(r);
                v->error = reader_dup_string(r);
                s->n_volumes++;
                if (reader_error(r) < 0 || !volume_name_valid(v->name) || v->kind == 0 ||
                    v->kind >= _VOLUME_KIND_MAX || v->state == 0 || v->state >= _VOLUME_STATE_MAX ||
                    (i > 0 && strcmp(s->volumes[i - 1].name, v->name) >= 0))
                        return -EBADMSG;
                /* The invariant: an owner only where the state has one. */
                bool has_owner = v->state == VOLUME_OWNED || v->state == VOLUME_RELEASING ||
                                 v->state == VOLUME_ORPHANED;
                if (has_owner != (v->owner != 0))
                        return -EBADMSG;
        }
        return 0;
}

void state_volumes_free(ClusterState *s) {
        for (size_t i = 0; i < s->n_volumes; i++)
                volume_record_done(&s->volumes[i]);
        free(s->volumes);
        s->volumes = NULL;
        s->n_volumes = 0;
}

char *state_volumes_for_disks(const ClusterState *s, const char *const *paths, size_t n_paths) {
        size_t len = 0;
        char *out;

        for (size_t i = 0; i < s->n_volumes; i++)
                len += strlen(s->volumes[i].name) + 1;
        out = calloc(len + 1, 1);
        if (!out)
                return NULL;
        /* Volumes are sorted by name, so the list is too: a canonical form
         * that only changes when the set does. */
        for (size_t i = 0; i < s->n_volumes; i++) {
                const char *b = s->volumes[i].backing;
                size_t bl = strlen(b);
                for (size_t k = 0; k < n_paths; k++) {
                        const char *p = paths[k];
                        /* The device itself, or a file under the directory
                         * (a mount point, a cluster filesystem). */
                        if (streq(p, b) || (strncmp(p, b, bl) == 0 && (p[bl] == '/' || (bl > 0 && b[bl - 1] == '/')))) {
                                if (*out)
                                        strcat(out, " ");
                                strcat(out, s->volumes[i].name);
                                break;
                        }
                }
        }
        return out;
}
