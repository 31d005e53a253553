/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "cluster-state.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

void node_facts_done(NodeFacts *f) {
        free(f->name);
        free(f->daemon_version);
        free(f->cpu_vendor);
        free(f->cpu_model);
        free(f->cpu_features);
        free(f->hypervisor_name);
        free(f->hypervisor_version);
        free(f->backend_uri);
        free(f->migration_address);
        *f = (NodeFacts) {};
}

static int strdup_or_null(char **dst, const char *src) {
        if (!src) {
                *dst = NULL;
                return 0;
        }
        *dst = strdup(src);
        return *dst ? 0 : -ENOMEM;
}

int node_facts_copy(NodeFacts *dst, const NodeFacts *src) {
        NodeFacts f = *src;
        int r = 0;

        f.name = f.daemon_version = f.cpu_vendor = f.cpu_model = NULL;
        f.cpu_features = f.hypervisor_name = f.hypervisor_version = NULL;
        f.backend_uri = f.migration_address = NULL;
        r |= strdup_or_null(&f.name, src->name);
        r |= strdup_or_null(&f.daemon_version, src->daemon_version);
        r |= strdup_or_null(&f.cpu_vendor, src->cpu_vendor);
        r |= strdup_or_null(&f.cpu_model, src->cpu_model);
        r |= strdup_or_null(&f.cpu_features, src->cpu_features);
        r |= strdup_or_null(&f.hypervisor_name, src->hypervisor_name);
        r |= strdup_or_null(&f.hypervisor_version, src->hypervisor_version);
        r |= strdup_or_null(&f.backend_uri, src->backend_uri);
        r |= strdup_or_null(&f.migration_address, src->migration_address);
        if (r != 0) {
                node_facts_done(&f);
                return -ENOMEM;
        }
        *dst = f;
        return 0;
}

static bool str_equal(const char *a, const char *b) {
        return streq(a ? a : "", b ? b : "");
}

bool node_facts_equal(const NodeFacts *a, const NodeFacts *b) {
        return str_equal(a->name, b->name) &&
               str_equal(a->daemon_version, b->daemon_version) &&
               a->protocol_version == b->protocol_version &&
               str_equal(a->cpu_vendor, b->cpu_vendor) &&
               str_equal(a->cpu_model, b->cpu_model) &&
               str_equal(a->cpu_features, b->cpu_features) &&
               a->cpus == b->cpus &&
               a->memory_total == b->memory_total &&
               a->memory_free == b->memory_free &&
               a->memory_reserved == b->memory_reserved &&
               str_equal(a->hypervisor_name, b->hypervisor_name) &&
               str_equal(a->hypervisor_version, b->hypervisor_version) &&
               a->updated_at == b->updated_at &&
               str_equal(a->backend_uri, b->backend_uri) &&
               str_equal(a->migration_address, b->migration_address) &&
               a->max_outgoing == b->max_outgoing &&
               a->max_incoming == b->max_incoming &&
               a->max_cluster == b->max_cluster;
}

static void node_facts_encode(const NodeFacts *f, Writer *w) {
        writer_put_string(w, f->name);
        writer_put_string(w, f->daemon_version);
        writer_put_u32(w, f->protocol_version);
        writer_put_string(w, f->cpu_vendor);
        writer_put_string(w, f->cpu_model);
        writer_put_string(w, f->cpu_features);
        writer_put_u32(w, f->cpus);
        writer_put_u64(w, f->memory_total);
        writer_put_u64(w, f->memory_free);
        writer_put_u64(w, f->memory_reserved);
        writer_put_string(w, f->hypervisor_name);
        writer_put_string(w, f->hypervisor_version);
        writer_put_u64(w, f->updated_at);
        writer_put_string(w, f->backend_uri);
        writer_put_string(w, f->migration_address);
        writer_put_u32(w, f->max_outgoing);
        writer_put_u32(w, f->max_incoming);
        writer_put_u32(w, f->max_cluster);
}

static int node_facts_decode(Reader *r, NodeFacts *ret) {
        NodeFacts f = {};

        f.name = reader_dup_string(r);
        f.daemon_version = reader_dup_string(r);
        f.protocol_version = reader_get_u32(r);
        f.cpu_vendor = reader_dup_string(r);
        f.cpu_model = reader_dup_string(r);
        f.cpu_features = reader_dup_string(r);
        f.cpus = reader_get_u32(r);
        f.memory_total = reader_get_u64(r);
        f.memory_free = reader_get_u64(r);
        f.memory_reserved = reader_get_u64(r);
        f.hypervisor_name = reader_dup_string(r);
        f.hypervisor_version = reader_dup_string(r);
        f.updated_at = reader_get_u64(r);
        f.backend_uri = reader_dup_string(r);
        f.migration_address = reader_dup_string(r);
        f.max_outgoing = reader_get_u32(r);
        f.max_incoming = reader_get_u32(r);
        f.max_cluster = reader_get_u32(r);
        if (reader_error(r) < 0) {
                node_facts_done(&f);
                return -EBADMSG;
        }
        *ret = f;
        return 0;
}

/* Names show up in object paths' owners, tables and logs: keep them to what
 * corosync's nodelist would hold. */
static bool node_name_valid(const char *s) {
        if (!s || !*s || strlen(s) > 255)
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.'))
                        return false;
        return true;
}

void command_done(Command *c) {
        switch (c->type) {
        case COMMAND_NODE_FACTS:
                node_facts_done(&c->node_facts.facts);
                break;
        case COMMAND_NODE_VMS:
                node_vms_command_done(&c->node_vms);
                break;
        case COMMAND_JOB_SUBMIT:
                job_submit_command_done(&c->job_submit);
                break;
        case COMMAND_JOB_UPDATE:
                job_update_command_done(&c->job_update);
                break;
        case COMMAND_JOB_FINISH:
                job_finish_command_done(&c->job_finish);
                break;
        case COMMAND_SET_POLICY:
                set_policy_command_done(&c->set_policy);
                break;
        case COMMAND_VOLUME:
                volume_command_done(&c->volume);
                break;
        default:
                break;
        }
        *c = (Command) {};
}

const char *command_type_to_string(CommandType t) {
        switch (t) {
        case COMMAND_NODE_FACTS: return "node-facts";
        case COMMAND_SET_MAINTENANCE: return "set-maintenance";
        case COMMAND_NODE_VMS: return "node-vms";
        case COMMAND_JOB_SUBMIT: return "job-submit";
        case COMMAND_JOB_UPDATE: return "job-update";
        case COMMAND_JOB_FINISH: return "job-finish";
        case COMMAND_JOB_CANCEL: return "job-cancel";
        case COMMAND_SET_DRAIN: return "set-drain";
        case COMMAND_SET_POLICY: return "set-policy";
        case COMMAND_VOLUME: return "volume";
        case COMMAND_SET_BALANCE: return "set-balance";
        default: return "unknown";
        }
}

int command_encode(const Command *c, Writer *w) {
        writer_put_u16(w, (uint16_t) c->type);
        switch (c->type) {
        case COMMAND_NODE_FACTS:
                writer_put_u32(w, c->node_facts.node);
                node_facts_encode(&c->node_facts.facts, w);
                break;
        case COMMAND_SET_MAINTENANCE:
                writer_put_u32(w, c->set_maintenance.node);
                writer_put_bool(w, c->set_maintenance.enabled);
                break;
        case COMMAND_NODE_VMS:
                node_vms_command_encode(&c->node_vms, w);
                break;
        case COMMAND_JOB_SUBMIT:
                job_submit_command_encode(&c->job_submit, w);
                break;
        case COMMAND_JOB_UPDATE:
                job_update_command_encode(&c->job_update, w);
                break;
        case COMMAND_JOB_FINISH:
                job_finish_command_encode(&c->job_finish, w);
                break;
        case COMMAND_JOB_CANCEL:
                writer_put_u64(w, c->job_cancel.id);
                break;
        case COMMAND_SET_DRAIN:
                writer_put_u32(w, c->set_drain.node);
                writer_put_u8(w, (uint8_t) c->set_drain.mode);
                writer_put_bool(w, c->set_drain.clear_maintenance);
                break;
        case COMMAND_SET_POLICY:
                set_policy_command_encode(&c->set_policy, w);
                break;
        case COMMAND_VOLUME:
                volume_command_encode(&c->volume, w);
                break;
        case COMMAND_SET_BALANCE:
                balance_settings_encode(&c->set_balance, w);
                break;
        default:
                return -EINVAL;
        }
        return writer_error(w);
}

int command_decode(Reader *r, Command *ret) {
        Command c = {};
        int k;

        c.type = (CommandType) reader_get_u16(r);
        switch (c.type) {
        case COMMAND_NODE_FACTS:
                c.node_facts.node = reader_get_u32(r);
                k = node_facts_decode(r, &c.node_facts.facts);
                if (k < 0)
                        return k;
                break;
        case COMMAND_SET_MAINTENANCE:
                c.set_maintenance.node = reader_get_u32(r);
                c.set_maintenance.enabled = reader_get_bool(r);
                break;
        case COMMAND_NODE_VMS:
                k = node_vms_command_decode(r, &c.node_vms);
                if (k < 0)
                        return k;
                break;
        case COMMAND_JOB_SUBMIT:
                k = job_submit_command_decode(r, &c.job_submit);
                if (k < 0)
                        return k;
                break;
        case COMMAND_JOB_UPDATE:
                k = job_update_command_decode(r, &c.job_update);
                if (k < 0)
                        return k;
                break;
        case COMMAND_JOB_FINISH:
                k = job_finish_command_decode(r, &c.job_finish);
                if (k < 0)
                        return k;
                break;
        case COMMAND_JOB_CANCEL:
                c.job_cancel.id = reader_get_u64(r);
                break;
        case COMMAND_SET_DRAIN:
                c.set_drain.node = reader_get_u32(r);
                c.set_drain.mode = (DrainMode) reader_get_u8(r);
                c.set_drain.clear_maintenance = reader_get_bool(r);
                if (c.set_drain.mode >= _DRAIN_MODE_MAX)
                        return -EBADMSG;
                break;
        case COMMAND_SET_POLICY:
                k = set_policy_command_decode(r, &c.set_policy);
                if (k < 0)
                        return k;
                break;
        case COMMAND_VOLUME:
                k = volume_command_decode(r, &c.volume);
                if (k < 0)
                        return k;
                break;
        case COMMAND_SET_BALANCE:
                k = balance_settings_decode(r, &c.set_balance);
                if (k < 0)
                        return k;
                break;
        default:
                /* Unknown command types are refused, not skipped: skipping
                 * would let members of different versions diverge. */
                return -EBADMSG;
        }
        k = reader_finish(r);
        if (k < 0) {
                command_done(&c);
                return k;
        }
        *ret = c;
        return 0;
}

ClusterState *cluster_state_new(void) {
        return calloc(1, sizeof(ClusterState));
}

ClusterState *cluster_state_free(ClusterState *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_nodes; i++)
                node_facts_done(&s->nodes[i].facts);
        free(s->nodes);
        state_vms_free(s);
        state_jobs_free(s);
        state_policies_free(s);
        state_volumes_free(s);
        free(s);
        return NULL;
}

int cluster_state_copy(const ClusterState *s, ClusterState **ret) {
        /* Through the canonical encoding: one code path, and a copy that is
         * equal by construction. */
        Writer w;
        Reader r;
        int k;

        writer_init(&w);
        k = cluster_state_encode(s, &w);
        if (k >= 0) {
                reader_init(&r, w.data, w.size);
                k = cluster_state_decode(&r, ret);
        }
        writer_done(&w);
        return k == -EBADMSG ? -ENOMEM : k;
}

static size_t node_index(const ClusterState *s, uint32_t id, bool *found) {
        size_t lo = 0, hi = s->n_nodes;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (s->nodes[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = lo < s->n_nodes && s->nodes[lo].id == id;
        return lo;
}

NodeRecord *cluster_state_find_node_mutable(ClusterState *s, uint32_t id) {
        bool found;
        size_t i = node_index(s, id, &found);
        return found ? &s->nodes[i] : NULL;
}

const NodeRecord *cluster_state_find_node(const ClusterState *s, uint32_t id) {
        return cluster_state_find_node_mutable((ClusterState *) s, id);
}

const NodeRecord *cluster_state_find_node_by_name(const ClusterState *s, const char *name) {
        for (size_t i = 0; i < s->n_nodes; i++)
                if (s->nodes[i].facts.name && streq(s->nodes[i].facts.name, name))
                        return &s->nodes[i];
        return NULL;
}

const char *cluster_state_node_name(const ClusterState *s, uint32_t id) {
        const NodeRecord *n = cluster_state_find_node(s, id);
        return n && n->facts.name ? n->facts.name : "?";
}

static int apply_node_facts(ClusterState *s, uint32_t sender, const Command *c) {
        const NodeFacts *f = &c->node_facts.facts;
        bool found;
        size_t i;

        if (c->node_facts.node == 0)
                return -EINVAL;
        if (c->node_facts.node != sender)
                return -EPERM;
        if (!node_name_valid(f->name))
                return -EINVAL;
        /* Two ids with one name would make every name lookup ambiguous. */
        const NodeRecord *other = cluster_state_find_node_by_name(s, f->name);
        if (other && other->id != sender)
                return -EEXIST;

        i = node_index(s, sender, &found);
        if (found) {
                if (node_facts_equal(&s->nodes[i].facts, f))
                        return 0;
                NodeFacts copy;
                if (node_facts_copy(&copy, f) < 0)
                        return -ENOMEM;
                node_facts_done(&s->nodes[i].facts);
                s->nodes[i].facts = copy;
        } else {
                if (s->n_nodes >= STATE_NODES_MAX)
                        return -E2BIG;
                NodeRecord *n = realloc(s->nodes, (s->n_nodes + 1) * sizeof(NodeRecord));
                if (!n)
                        return -ENOMEM;
                s->nodes = n;
                NodeRecord rec = { .id = sender };
                if (node_facts_copy(&rec.facts, f) < 0)
                        return -ENOMEM;
                memmove(&s->nodes[i + 1], &s->nodes[i], (s->n_nodes - i) * sizeof(NodeRecord));
                s->nodes[i] = rec;
                s->n_nodes++;
        }
        s->commit++;
        return 1;
}

static int apply_set_maintenance(ClusterState *s, const Command *c) {
        bool found;
        size_t i = node_index(s, c->set_maintenance.node, &found);

        if (!found)
                return -ENOENT;
        if (s->nodes[i].maintenance == c->set_maintenance.enabled)
                return 0;
        s->nodes[i].maintenance = c->set_maintenance.enabled;
        s->commit++;
        return 1;
}

static int apply_set_drain(ClusterState *s, const Command *c) {
        bool found;
        size_t i = node_index(s, c->set_drain.node, &found);
        NodeRecord *n;

        if (!found)
                return -ENOENT;
        n = &s->nodes[i];
        if (c->set_drain.mode != DRAIN_NONE) {
                /* Draining implies maintenance: nothing new may arrive. */
                if (n->drain == c->set_drain.mode && n->maintenance)
                        return 0;
                n->drain = c->set_drain.mode;
                n->maintenance = true;
        } else {
                bool maintenance = c->set_drain.clear_maintenance ? false : n->maintenance;
                if (n->drain == DRAIN_NONE && n->maintenance == maintenance)
                        return 0;
                n->drain = DRAIN_NONE;
                n->maintenance = maintenance;
        }
        s->commit++;
        return 1;
}

int cluster_state_apply(ClusterState *s, uint32_t sender, const Command *c) {
        switch (c->type) {
        case COMMAND_NODE_FACTS:
                return apply_node_facts(s, sender, c);
        case COMMAND_SET_MAINTENANCE:
                return apply_set_maintenance(s, c);
        case COMMAND_NODE_VMS:
                return state_apply_node_vms(s, sender, &c->node_vms);
        case COMMAND_JOB_SUBMIT:
                return state_apply_job_submit(s, sender, &c->job_submit);
        case COMMAND_JOB_UPDATE:
                return state_apply_job_update(s, sender, &c->job_update);
        case COMMAND_JOB_FINISH:
                return state_apply_job_finish(s, sender, &c->job_finish);
        case COMMAND_JOB_CANCEL:
                return state_apply_job_cancel(s, sender, c->job_cancel.id);
        case COMMAND_SET_DRAIN:
                return apply_set_drain(s, c);
        case COMMAND_SET_POLICY:
                return state_apply_set_policy(s, &c->set_policy);
        case COMMAND_VOLUME:
                return state_apply_volume(s, sender, &c->volume);
        case COMMAND_SET_BALANCE:
                return state_apply_set_balance(s, &c->set_balance);
        default:
                return -EINVAL;
        }
}

/* Format version of the canonical encoding (and of the persisted file). */
#define STATE_ENCODING_VERSION 6

int cluster_state_encode(const ClusterState *s, Writer *w) {
        writer_put_u32(w, STATE_ENCODING_VERSION);
        writer_put_u64(w, s->commit);
        writer_put_u64(w, s->generation);
        writer_put_u32(w, (uint32_t) s->n_nodes);
        for (size_t i = 0; i < s->n_nodes; i++) {
                writer_put_u32(w, s->nodes[i].id);
                writer_put_bool(w, s->nodes[i].maintenance);
                writer_put_u8(w, (uint8_t) s->nodes[i].drain);
                node_facts_encode(&s->nodes[i].facts, w);
        }
        state_vms_encode(s, w);
        state_jobs_encode(s, w);
        state_policies_encode(s, w);
        state_volumes_encode(s, w);
        balance_settings_encode(&s->balance, w);
        return writer_error(w);
}

int cluster_state_decode(Reader *r, ClusterState **ret) {
        ClusterState *s;
        uint32_t version, n;

        version = reader_get_u32(r);
        if (reader_error(r) < 0 || version != STATE_ENCODING_VERSION)
                return -EBADMSG;
        s = cluster_state_new();
        if (!s)
                return -ENOMEM;
        s->commit = reader_get_u64(r);
        s->generation = reader_get_u64(r);
        n = reader_get_u32(r);
        if (reader_error(r) < 0 || n > STATE_NODES_MAX)
                goto bad;
        if (n > 0) {
                s->nodes = calloc(n, sizeof(NodeRecord));
                if (!s->nodes)
                        goto bad;
        }
        for (uint32_t i = 0; i < n; i++) {
                NodeRecord *rec = &s->nodes[i];
                rec->id = reader_get_u32(r);
                rec->maintenance = reader_get_bool(r);
                rec->drain = (DrainMode) reader_get_u8(r);
                if (rec->drain >= _DRAIN_MODE_MAX || node_facts_decode(r, &rec->facts) < 0)
                        goto bad;
                s->n_nodes++;
                /* The canonical form is sorted by id without duplicates;
                 * anything else did not come from cluster_state_encode(). */
                if (rec->id == 0 || (i > 0 && s->nodes[i - 1].id >= rec->id))
                        goto bad;
        }
        if (state_vms_decode(s, r) < 0 || state_jobs_decode(s, r) < 0 || state_policies_decode(s, r) < 0 ||
            state_volumes_decode(s, r) < 0 || balance_settings_decode(r, &s->balance) < 0)
                goto bad;
        if (reader_finish(r) < 0)
                goto bad;
        *ret = s;
        return 0;
bad:
        cluster_state_free(s);
        return -EBADMSG;
}

void cluster_state_digest(const ClusterState *s, char out[STATE_DIGEST_HEX_SIZE]) {
        Writer w;

        writer_init(&w);
        if (cluster_state_encode(s, &w) < 0) {
                /* Only on OOM; an impossible digest beats a wrong one. */
                memset(out, '-', STATE_DIGEST_HEX_SIZE - 1);
                out[STATE_DIGEST_HEX_SIZE - 1] = 0;
        } else
                sha256_hex(w.data, w.size, out);
        writer_done(&w);
}
