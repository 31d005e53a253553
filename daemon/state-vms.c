/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "state-vms.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cluster-state.h"
#include "state-jobs.h"
#include "macro.h"

void vm_record_done(VmRecord *v) {
        free(v->name);
        free(v->uuid);
        free(v->volumes);
        *v = (VmRecord) {};
}

void node_vms_command_done(NodeVmsCommand *c) {
        for (size_t i = 0; i < c->n_vms; i++)
                vm_record_done(&c->vms[i]);
        free(c->vms);
        *c = (NodeVmsCommand) {};
}

static void vm_encode(const VmRecord *v, Writer *w) {
        writer_put_string(w, v->name);
        writer_put_string(w, v->uuid);
        writer_put_u8(w, (uint8_t) v->state);
        writer_put_u32(w, v->vcpus);
        writer_put_u64(w, v->memory);
        writer_put_u32(w, v->cpu_use_permille);
        writer_put_u64(w, v->dirty_rate);
        writer_put_u32(w, v->n_passthrough);
        writer_put_string(w, v->volumes);
}

static int vm_decode(Reader *r, VmRecord *ret) {
        VmRecord v = {};

        v.name = reader_dup_string(r);
        v.uuid = reader_dup_string(r);
        v.state = (VmState) reader_get_u8(r);
        v.vcpus = reader_get_u32(r);
        v.memory = reader_get_u64(r);
        v.cpu_use_permille = reader_get_u32(r);
        v.dirty_rate = reader_get_u64(r);
        v.n_passthrough = reader_get_u32(r);
        v.volumes = reader_dup_string(r);
        if (reader_error(r) < 0 || v.state == 0 || v.state >= _VM_STATE_MAX || !*v.name) {
                vm_record_done(&v);
                return -EBADMSG;
        }
        *ret = v;
        return 0;
}

void node_vms_command_encode(const NodeVmsCommand *c, Writer *w) {
        writer_put_u32(w, c->node);
        writer_put_u32(w, (uint32_t) c->n_vms);
        for (size_t i = 0; i < c->n_vms; i++)
                vm_encode(&c->vms[i], w);
}

int node_vms_command_decode(Reader *r, NodeVmsCommand *ret) {
        NodeVmsCommand c = {};
        uint32_t n;

        c.node = reader_get_u32(r);
        n = reader_get_u32(r);
        if (reader_error(r) < 0 || n > STATE_NODE_VMS_MAX)
                return -EBADMSG;
        if (n > 0 && !(c.vms = calloc(n, sizeof(VmRecord))))
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
                if (vm_decode(r, &c.vms[i]) < 0) {
                        node_vms_command_done(&c);
                        return -EBADMSG;
                }
                c.n_vms++;
        }
        *ret = c;
        return 0;
}

static int compare_vm(const void *a, const void *b) {
        const VmRecord *x = a, *y = b;
        int k = strcmp(x->name, y->name);
        if (k != 0)
                return k;
        return x->node < y->node ? -1 : x->node > y->node;
}

static bool vm_equal(const VmRecord *a, const VmRecord *b) {
        return streq(a->name, b->name) && a->node == b->node && streq(a->uuid, b->uuid) &&
               a->state == b->state && a->vcpus == b->vcpus && a->memory == b->memory &&
               a->cpu_use_permille == b->cpu_use_permille && a->dirty_rate == b->dirty_rate &&
               a->n_passthrough == b->n_passthrough && streq(a->volumes ? a->volumes : "", b->volumes ? b->volumes : "");
}

static bool listed_in(const NodeVmsCommand *c, const char *name) {
        for (size_t k = 0; k < c->n_vms; k++)
                if (streq(c->vms[k].name, name))
                        return true;
        return false;
}

/* A record kept while its VM is in transit (see state_apply_node_vms). */
static bool in_transit(const ClusterState *s, const VmRecord *v, const NodeVmsCommand *c) {
        const JobRecord *j;
        return v->state == VM_MIGRATING && !listed_in(c, v->name) && (j = state_find_active_job(s, v->name)) &&
               j->source == v->node;
}

bool state_node_vms_equal(const ClusterState *s, uint32_t node, const NodeVmsCommand *c) {
        size_t old_n = 0;

        for (size_t i = 0; i < s->n_vms; i++)
                if (s->vms[i].node == node && !in_transit(s, &s->vms[i], c))
                        old_n++;
        if (old_n != c->n_vms)
                return false;
        /* Same size, names unique on both sides: equal if each is found. */
        for (size_t i = 0; i < c->n_vms; i++) {
                VmRecord probe = c->vms[i];
                probe.node = node;
                const VmRecord *cur = state_find_vm(s, probe.name, node);
                if (!cur || !vm_equal(cur, &probe))
                        return false;
        }
        return true;
}

int state_apply_node_vms(ClusterState *s, uint32_t sender, const NodeVmsCommand *c) {
        size_t keep = 0, old_n = 0;
        VmRecord *next;

        if (c->node != sender)
                return -EPERM;
        if (!cluster_state_find_node(s, sender))
                return -ENOENT;         /* publish facts first */
        /* One node lists a name once. */
        for (size_t i = 0; i < c->n_vms; i++)
                for (size_t k = i + 1; k < c->n_vms; k++)
                        if (streq(c->vms[i].name, c->vms[k].name))
                                return -EINVAL;

        if (state_node_vms_equal(s, sender, c))
                return 0;
        for (size_t i = 0; i < s->n_vms; i++)
                if (s->vms[i].node == sender)
                        old_n++;

        /* Room for the kept in-transit records too: at most old_n. */
        next = calloc(s->n_vms + c->n_vms + 1, sizeof(VmRecord));
        if (!next)
                return -ENOMEM;
        for (size_t i = 0; i < c->n_vms; i++) {
                VmRecord *v = &next[keep + i];
                *v = c->vms[i];
                v->node = sender;
                v->name = strdup(c->vms[i].name);
                v->uuid = strdup(c->vms[i].uuid ? c->vms[i].uuid : "");
                v->volumes = strdup(c->vms[i].volumes ? c->vms[i].volumes : "");
                if (!v->name || !v->uuid || !v->volumes) {
                        for (size_t k = 0; k <= i; k++)
                                vm_record_done(&next[keep + k]);
                        free(next);
                        return -ENOMEM;
                }
        }
        size_t n = c->n_vms;
        for (size_t i = 0; i < s->n_vms; i++) {
                VmRecord *old = &s->vms[i];
                if (old->node != sender) {
                        next[n++] = *old;
                        continue;
                }
                /* A VM this node is migrating away may leave its hypervisor
                 * before the job's outcome is committed. Until then it stays
                 * on record here, as migrating, so that the inventory never
                 * shows it nowhere; the job's end moves the record. */
                const JobRecord *j = state_find_active_job(s, old->name);
                if (!listed_in(c, old->name) && j && j->source == sender) {
                        old->state = VM_MIGRATING;
                        next[n++] = *old;
                        continue;
                }
                vm_record_done(old);
        }
        free(s->vms);
        qsort(next, n, sizeof(VmRecord), compare_vm);
        s->vms = next;
        s->n_vms = n;
        s->commit++;
        return 1;
}

void state_vms_encode(const ClusterState *s, Writer *w) {
        writer_put_u32(w, (uint32_t) s->n_vms);
        for (size_t i = 0; i < s->n_vms; i++) {
                writer_put_u32(w, s->vms[i].node);
                vm_encode(&s->vms[i], w);
        }
}

int state_vms_decode(ClusterState *s, Reader *r) {
        uint32_t n = reader_get_u32(r);

        if (reader_error(r) < 0 || n > STATE_VMS_MAX)
                return -EBADMSG;
        if (n > 0 && !(s->vms = calloc(n, sizeof(VmRecord))))
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
                uint32_t node = reader_get_u32(r);
                if (vm_decode(r, &s->vms[i]) < 0)
                        return -EBADMSG;
                s->vms[i].node = node;
                s->n_vms++;
                if (i > 0 && compare_vm(&s->vms[i - 1], &s->vms[i]) >= 0)
                        return -EBADMSG;        /* not canonical */
        }
        return 0;
}

void state_vms_free(ClusterState *s) {
        for (size_t i = 0; i < s->n_vms; i++)
                vm_record_done(&s->vms[i]);
        free(s->vms);
        s->vms = NULL;
        s->n_vms = 0;
}

const VmRecord *state_find_vm(const ClusterState *s, const char *name, uint32_t node) {
        VmRecord key = { .name = (char *) name, .node = node };
        if (s->n_vms == 0)      /* vms is NULL then: bsearch() must not see it */
                return NULL;
        return bsearch(&key, s->vms, s->n_vms, sizeof(VmRecord), compare_vm);
}

const VmRecord *state_find_vm_any(const ClusterState *s, const char *name, size_t *count) {
        const VmRecord *first = NULL;
        size_t n = 0;

        /* Sorted by name first: the matches are adjacent. */
        size_t lo = 0, hi = s->n_vms;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(s->vms[mid].name, name) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        for (size_t i = lo; i < s->n_vms && streq(s->vms[i].name, name); i++) {
                if (!first)
                        first = &s->vms[i];
                n++;
        }
        if (count)
                *count = n;
        return first;
}

uint64_t state_node_vm_memory(const ClusterState *s, uint32_t node) {
        uint64_t sum = 0;
        for (size_t i = 0; i < s->n_vms; i++)
                if (s->vms[i].node == node)
                        sum += s->vms[i].memory;
        return sum;
}

const char *vm_state_to_string(VmState st) {
        switch (st) {
        case VM_RUNNING: return "running";
        case VM_PAUSED: return "paused";
        case VM_SHUTOFF: return "shutoff";
        case VM_MIGRATING: return "migrating";
        case VM_OTHER: return "other";
        default: return "unknown";
        }
}
