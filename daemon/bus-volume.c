/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bus-volume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "daemon.h"
#include "ferry-bus.h"
#include "log.h"
#include "macro.h"
#include "polkit.h"

/* ListVolumes() -> a(sssssstsas): name, kind, backing, state, owner,
 * target, epoch, error, and the VMs of the inventory whose disks live on it. */
int method_list_volumes(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const ClusterState *s = replica_state(d->replica);
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sssssstsas)");
        for (size_t i = 0; r >= 0 && i < s->n_volumes; i++) {
                const VolumeRecord *v = &s->volumes[i];
                r = sd_bus_message_open_container(reply, 'r', "sssssstsas");
                if (r >= 0)
                        r = sd_bus_message_append(reply, "ssssssts", v->name, volume_kind_to_string(v->kind), v->backing,
                                                  volume_state_to_string(v->state),
                                                  v->owner ? daemon_node_name(d, v->owner) : "",
                                                  v->target ? daemon_node_name(d, v->target) : "", v->epoch,
                                                  v->error ? v->error : "");
                if (r >= 0)
                        r = sd_bus_message_open_container(reply, 'a', "s");
                for (size_t k = 0; r >= 0 && k < s->n_vms; k++)
                        if (vm_uses_volume(&s->vms[k], v->name))
                                r = sd_bus_message_append(reply, "s", s->vms[k].name);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
                if (r >= 0)
                        r = sd_bus_message_close_container(reply);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* The state machine's own check, run here first so that a refusal comes
 * with its reason and its proper error name. */
static int check_command(Daemon *d, const VolumeCommand *c, sd_bus_error *error) {
        char why[512];
        int k = state_check_volume(replica_state(d->replica), d->node_id, c, why, sizeof(why));

        switch (k) {
        case 0:
                return 0;
        case -EINVAL:
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "%s", why);
        case -ENOENT:
                if (c->op != VOLUME_OP_ADD && c->op != VOLUME_OP_FENCED && c->name &&
                    !state_find_volume(replica_state(d->replica), c->name))
                        return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_VOLUME, "No such volume: \"%s\"", c->name);
                return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_NODE, "%s", why);
        case -EALREADY:
                return 1;       /* nothing to do: not an error */
        default:
                return sd_bus_error_setf(error, FERRY_ERROR_REJECTED, "%s", why);
        }
}

/* Every mutating method: parse into a command, check it, then after
 * polkit check it again (the state may have moved while polkit asked) and
 * propose. */
static int parse_call(Daemon *d, sd_bus_message *m, VolumeCommand *c, sd_bus_error *error) {
        const char *member = sd_bus_message_get_member(m);
        const char *name = NULL, *kind = NULL, *backing = NULL, *node = NULL;
        NodeView v;
        int r;

        *c = (VolumeCommand) {};
        r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        if (streq(member, "AddVolume")) {
                r = sd_bus_message_read(m, "ssss", &name, &kind, &backing, &node);
                if (r < 0)
                        return r;
                c->op = VOLUME_OP_ADD;
                c->kind = volume_kind_from_string(kind);
                if (!c->kind)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                                 "Unknown volume kind \"%s\": expected \"shared\" or \"fs\"", kind);
                c->backing = (char *) backing;
                if (*node) {
                        r = daemon_resolve_node(d, node, &v, error);
                        if (r < 0)
                                return r;
                        c->node = v.id;
                } else
                        c->node = d->node_id;
        } else if (streq(member, "RemoveVolume")) {
                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                c->op = VOLUME_OP_REMOVE;
        } else if (streq(member, "MoveVolume")) {
                r = sd_bus_message_read(m, "ss", &name, &node);
                if (r < 0)
                        return r;
                c->op = VOLUME_OP_MOVE;
                r = daemon_resolve_node(d, node, &v, error);
                if (r < 0)
                        return r;
                c->node = v.id;
                if (!replica_is_member(d->replica, c->node))
                        return sd_bus_error_setf(error, FERRY_ERROR_REJECTED,
                                                 "Node \"%s\" is not online: it cannot take the volume", node);
        } else if (streq(member, "ConfirmFenced")) {
                r = sd_bus_message_read(m, "s", &node);
                if (r < 0)
                        return r;
                c->op = VOLUME_OP_FENCED;
                r = daemon_resolve_node(d, node, &v, error);
                if (r < 0)
                        return r;
                c->node = v.id;
                /* Never on silence alone, and never for a node we can see. */
                if (replica_is_member(d->replica, c->node))
                        return sd_bus_error_setf(error, FERRY_ERROR_REJECTED,
                                                 "Node \"%s\" is a member of this partition: it is not fenced", node);
        } else
                return sd_bus_error_set(error, SD_BUS_ERROR_UNKNOWN_METHOD, "Unknown volume method");
        c->name = (char *) name;        /* borrowed from the message */
        if (c->op != VOLUME_OP_FENCED && name && !volume_name_valid(name))
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "Invalid volume name \"%s\": 1 to %u of A-Z a-z 0-9 . _ -, not starting with . or -",
                                         name, VOLUME_NAME_MAX);
        return check_command(d, c, error);
}

/* ConfirmFenced replies with how many volumes it freed, counted when the
 * call was checked (the proposal carries no reply data), keyed by the call
 * message: pending calls hold a reference, so the pointer stays unique. */
static struct {
        sd_bus_message *call;
        uint32_t n;
} fenced_pending[16];

static int reply_fenced(Daemon *d, sd_bus_message *call, uint64_t seq) {
        uint32_t n = 0;
        for (size_t i = 0; i < ELEMENTSOF(fenced_pending); i++)
                if (fenced_pending[i].call == call) {
                        n = fenced_pending[i].n;
                        fenced_pending[i].call = NULL;
                }
        return sd_bus_reply_method_return(call, "u", n);
}

static int volume_call_authorized(Daemon *d, sd_bus_message *m, sd_bus_error *error) {
        VolumeCommand c;
        int r;

        r = parse_call(d, m, &c, error);
        if (r < 0)
                return r;
        if (r > 0)      /* nothing to do */
                return sd_bus_reply_method_return(m, c.op == VOLUME_OP_FENCED ? "u" : "", 0);
        r = daemon_check_quorate(d, error);
        if (r < 0)
                return r;
        if (c.op == VOLUME_OP_FENCED) {
                /* Count what it frees now; nothing if nothing is orphaned. */
                const ClusterState *s = replica_state(d->replica);
                uint32_t n = 0;
                for (size_t i = 0; i < s->n_volumes; i++)
                        if (s->volumes[i].state == VOLUME_ORPHANED && s->volumes[i].owner == c.node)
                                n++;
                log_notice("Node %s confirmed fenced by %s: %u orphaned volume(s) can be reassigned",
                           daemon_node_name(d, c.node), sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "?",
                           (unsigned) n);
                if (n == 0)
                        return sd_bus_reply_method_return(m, "u", 0);
                size_t slot = 0;
                while (slot < ELEMENTSOF(fenced_pending) && fenced_pending[slot].call)
                        slot++;
                if (slot == ELEMENTSOF(fenced_pending))
                        return sd_bus_error_set(error, SD_BUS_ERROR_LIMITS_EXCEEDED,
                                                "Too many fencing confirmations at once; retry");
                fenced_pending[slot].call = m;
                fenced_pending[slot].n = n;
                Command cmd = { .type = COMMAND_VOLUME, .volume = c };
                r = daemon_propose_for_call(d, &cmd, m, reply_fenced, error);
                if (r < 0)
                        fenced_pending[slot].call = NULL;
                return r;
        } else
                log_info("Volume %s: %s requested by %s", c.name, volume_op_to_string(c.op),
                         sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "?");
        Command cmd = { .type = COMMAND_VOLUME, .volume = c };
        return daemon_propose_for_call(d, &cmd, m, NULL, error);
}

int method_volume_call(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        VolumeCommand c;
        int r;

        /* Bad arguments are refused before polkit is asked anything. */
        r = parse_call(d, m, &c, error);
        if (r < 0)
                return r;
        return polkit_authorize(d, m, FERRY_POLKIT_ACTION_MANAGE, volume_call_authorized, error);
}
