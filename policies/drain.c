/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "drain.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "strutil.h"

typedef struct Reservation {
        uint32_t node;
        uint64_t bytes;
} Reservation;

static uint64_t reserved(const Reservation *r, size_t n, uint32_t node) {
        for (size_t i = 0; i < n; i++)
                if (r[i].node == node)
                        return r[i].bytes;
        return 0;
}

static int compare_by_memory(const void *a, const void *b) {
        const DrainEntry *x = a, *y = b;
        if (x->memory != y->memory)
                return x->memory > y->memory ? -1 : 1;
        return strcmp(x->vm, y->vm);
}

/* Checks about the VM or the cluster rather than a destination: when one
 * fails, it fails for every destination alike. */
static bool vm_level(const PreflightCheck *c) {
        static const char *const names[] = { "quorum", "vm-known", "vm-unique", "vm-running", "no-passthrough",
                                             "no-active-job", "source-online" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(c->name, names[i]))
                        return true;
        return false;
}

/* The best destination for vm, or 0 with the reason in `why`: the one
 * VM-level failure, or what rules out each node. */
static uint32_t choose(const ClusterState *s, const MembershipView *view, const VmRecord *vm,
                       const Reservation *res, size_t n_res, char *why, size_t why_len) {
        char each[512] = "";
        PreflightResult r;
        uint32_t best = 0;
        int64_t best_avail = 0;

        for (size_t i = 0; i < s->n_nodes; i++) {
                uint32_t id = s->nodes[i].id;
                size_t used = strlen(each);
                if (id == vm->node)
                        continue;
                preflight_run(s, view, vm->name, id, &r);
                const PreflightCheck *bad = preflight_first_failure(&r);
                if (bad && vm_level(bad)) {
                        snprintf(why, why_len, "cannot move: %.230s", bad->message);
                        return 0;
                }
                if (bad) {
                        snprintf(each + used, sizeof(each) - used, "%s%s: %s", used ? "; " : "", cluster_state_node_name(s, id),
                                 bad->message);
                        continue;
                }
                /* Past the memory check, so 0 <= vm->memory <= what the node
                 * has; sizes come from peers: stay unsigned, never overflow. */
                int64_t have = preflight_available_memory(s, id);
                uint64_t taken = reserved(res, n_res, id);
                if (have < 0 || taken > (uint64_t) have || (uint64_t) have - taken < vm->memory) {
                        snprintf(each + used, sizeof(each) - used, "%s%s: full once the other moves of this drain land",
                                 used ? "; " : "", cluster_state_node_name(s, id));
                        continue;
                }
                int64_t avail = have - (int64_t) taken;
                if (!best || avail > best_avail) {
                        best = id;
                        best_avail = avail;
                }
        }
        if (best) {
                char a[32];
                format_size(a, sizeof(a), (uint64_t) best_avail);
                snprintf(why, why_len, "most memory to spare (%s)", a);
        } else
                snprintf(why, why_len, "no valid destination: %.230s", *each ? each : "the cluster has no other node");
        return best;
}

static bool view_has(const MembershipView *view, uint32_t id) {
        for (size_t i = 0; i < view->n_members; i++)
                if (view->members[i] == id)
                        return true;
        return false;
}

static const DrainEntry *vm_entry(const DrainPlan *p, const char *vm) {
        for (size_t i = 0; i < p->n_entries; i++)
                if (!p->entries[i].volume && streq(p->entries[i].vm, vm))
                        return &p->entries[i];
        return NULL;
}

/* Where an unused volume goes: an online node other than this one, not in
 * maintenance, owning the fewest volumes (counting this plan's moves);
 * ties to the lowest id. */
static uint32_t choose_volume_home(const ClusterState *s, const MembershipView *view, uint32_t node,
                                   const DrainPlan *p) {
        uint32_t best = 0;
        size_t best_n = 0;

        for (size_t i = 0; i < s->n_nodes; i++) {
                const NodeRecord *n = &s->nodes[i];
                size_t owned = 0;
                if (n->id == node || n->maintenance || !view_has(view, n->id))
                        continue;
                for (size_t v = 0; v < s->n_volumes; v++)
                        if (s->volumes[v].owner == n->id || s->volumes[v].target == n->id)
                                owned++;
                for (size_t e = 0; e < p->n_entries; e++)
                        if (p->entries[e].volume && p->entries[e].destination == n->id)
                                owned++;
                if (!best || owned < best_n) {
                        best = n->id;
                        best_n = owned;
                }
        }
        return best;
}

static int plan_volumes(const ClusterState *s, const MembershipView *view, uint32_t node, DrainPlan *p) {
        for (size_t i = 0; i < s->n_volumes; i++) {
                const VolumeRecord *v = &s->volumes[i];
                DrainEntry e = { .vm = v->name, .volume = true };

                if (v->state == VOLUME_RELEASING && v->owner == node) {
                        e.action = DRAIN_ACTION_MOVING;
                        e.destination = v->target;
                        snprintf(e.reason, sizeof(e.reason), "being released to %s",
                                 v->target ? cluster_state_node_name(s, v->target) : "nobody (removal)");
                } else if (v->state == VOLUME_ACQUIRING && v->target == node) {
                        e.action = DRAIN_ACTION_MOVING;
                        snprintf(e.reason, sizeof(e.reason), "arriving here; moved on once it has");
                } else if (v->state == VOLUME_OWNED && v->owner == node) {
                        const VmRecord *here = NULL, *elsewhere = NULL;
                        for (size_t k = 0; k < s->n_vms; k++) {
                                const VmRecord *vm = &s->vms[k];
                                if (vm->state == VM_SHUTOFF || !vm_uses_volume(vm, v->name))
                                        continue;
                                if (vm->node == node)
                                        here = here ? here : vm;
                                else
                                        elsewhere = elsewhere ? elsewhere : vm;
                        }
                        if (here) {
                                const DrainEntry *ve = vm_entry(p, here->name);
                                if (ve && ve->action != DRAIN_ACTION_BLOCKED && v->kind == VOLUME_SHARED) {
                                        e.action = DRAIN_ACTION_MOVING;
                                        e.destination = ve->destination;
                                        snprintf(e.reason, sizeof(e.reason), "follows VM %.200s", here->name);
                                } else {
                                        e.action = DRAIN_ACTION_BLOCKED;
                                        snprintf(e.reason, sizeof(e.reason), "its VM %.200s cannot move", here->name);
                                }
                        } else if (elsewhere) {
                                e.action = DRAIN_ACTION_MOVE;
                                e.destination = elsewhere->node;
                                snprintf(e.reason, sizeof(e.reason), "its VM %.200s runs there", elsewhere->name);
                        } else if ((e.destination = choose_volume_home(s, view, node, p))) {
                                e.action = DRAIN_ACTION_MOVE;
                                snprintf(e.reason, sizeof(e.reason), "unused; the online node owning the fewest volumes");
                        } else {
                                e.action = DRAIN_ACTION_BLOCKED;
                                snprintf(e.reason, sizeof(e.reason), "no online node out of maintenance can take it");
                        }
                } else
                        continue;

                DrainEntry *n = realloc(p->entries, (p->n_entries + 1) * sizeof(DrainEntry));
                if (!n)
                        return -ENOMEM;
                p->entries = n;
                p->entries[p->n_entries++] = e;
                if (e.action == DRAIN_ACTION_MOVE)
                        p->n_move++;
                else if (e.action == DRAIN_ACTION_MOVING)
                        p->n_moving++;
                else
                        p->n_blocked++;
        }
        return 0;
}

int drain_plan(const ClusterState *s, const MembershipView *view, uint32_t node, DrainPlan *ret) {
        const NodeRecord *n = cluster_state_find_node(s, node);
        DrainPlan p = { .node = node };
        _cleanup_free_ Reservation *res = NULL;
        size_t n_res = 0;

        if (!n)
                return -ENOENT;
        for (size_t i = 0; i < s->n_vms; i++)
                if (s->vms[i].node == node)
                        p.n_entries++;
        if (p.n_entries > 0) {
                p.entries = calloc(p.n_entries, sizeof(DrainEntry));
                res = calloc(s->n_nodes + 1, sizeof(Reservation));
                if (!p.entries || !res) {
                        free(p.entries);
                        return -ENOMEM;
                }
        }
        int k = 0;
        for (size_t i = 0; i < s->n_vms; i++)
                if (s->vms[i].node == node)
                        p.entries[k++] = (DrainEntry) { .vm = s->vms[i].name, .memory = s->vms[i].memory };
        if (p.n_entries > 0)    /* qsort(NULL, 0, ...) is undefined */
                qsort(p.entries, p.n_entries, sizeof(DrainEntry), compare_by_memory);

        for (size_t i = 0; i < p.n_entries; i++) {
                DrainEntry *e = &p.entries[i];
                const VmRecord *vm = state_find_vm(s, e->vm, node);
                const JobRecord *j = state_find_active_job(s, e->vm);

                if (j && j->source == node) {
                        e->action = DRAIN_ACTION_MOVING;
                        e->destination = j->destination;
                        e->job = j->id;
                        snprintf(e->reason, sizeof(e->reason), "job %" PRIu64 " (%s)", j->id, job_state_to_string(j->state));
                        p.n_moving++;
                        continue;
                }
                /* A VM whose last two moves off this node failed is not
                 * tried again and again: it blocks, with the last error, so
                 * a drain never loops silently. */
                const JobRecord *last = NULL, *before = NULL;
                for (size_t jk = s->n_jobs; jk-- > 0 && !before;)
                        if (s->jobs[jk].source == node && streq(s->jobs[jk].vm, e->vm) &&
                            job_state_is_final(s->jobs[jk].state)) {
                                if (!last)
                                        last = &s->jobs[jk];
                                else
                                        before = &s->jobs[jk];
                        }
                if (last && before && last->state == JOB_FAILED && before->state == JOB_FAILED) {
                        snprintf(e->reason, sizeof(e->reason), "its last two migrations failed (jobs %" PRIu64
                                 " and %" PRIu64 "): %.160s", before->id, last->id, last->error ? last->error : "");
                        e->action = DRAIN_ACTION_BLOCKED;
                        p.n_blocked++;
                        continue;
                }
                e->destination = choose(s, view, vm, res, n_res, e->reason, sizeof(e->reason));
                if (!e->destination) {
                        e->action = DRAIN_ACTION_BLOCKED;
                        p.n_blocked++;
                        continue;
                }
                e->action = DRAIN_ACTION_MOVE;
                p.n_move++;
                size_t r = 0;
                while (r < n_res && res[r].node != e->destination)
                        r++;
                if (r == n_res)
                        res[n_res++] = (Reservation) { .node = e->destination };
                res[r].bytes += e->memory;
        }

        k = plan_volumes(s, view, node, &p);
        if (k < 0) {
                drain_plan_done(&p);
                return k;
        }

        /* Jobs out of the node count even when their VM already left the
         * node's inventory: drained means nothing is on its way out. */
        size_t outgoing = 0;
        for (size_t i = 0; i < s->n_jobs; i++)
                if (s->jobs[i].source == node && !job_state_is_final(s->jobs[i].state))
                        outgoing++;
        if (outgoing > p.n_moving)
                p.n_moving = outgoing;

        if (n->drain == DRAIN_NONE)
                p.status = DRAIN_STATUS_NONE;
        else if (p.n_move == 0 && p.n_moving == 0 && (p.n_blocked == 0 || n->drain == DRAIN_LEAVE_BLOCKERS))
                p.status = DRAIN_STATUS_DRAINED;
        else if (p.n_blocked > 0 && n->drain == DRAIN_FAIL_ON_BLOCKERS)
                p.status = DRAIN_STATUS_BLOCKED;
        else
                p.status = DRAIN_STATUS_DRAINING;
        *ret = p;
        return 0;
}

void drain_plan_done(DrainPlan *p) {
        free(p->entries);
        *p = (DrainPlan) {};
}

const char *drain_status_to_string(DrainStatus st) {
        switch (st) {
        case DRAIN_STATUS_NONE: return "none";
        case DRAIN_STATUS_DRAINING: return "draining";
        case DRAIN_STATUS_BLOCKED: return "drain-blocked";
        case DRAIN_STATUS_DRAINED: return "drained";
        default: return "unknown";
        }
}

const char *drain_mode_to_string(DrainMode m) {
        switch (m) {
        case DRAIN_NONE: return "none";
        case DRAIN_FAIL_ON_BLOCKERS: return "fail";
        case DRAIN_LEAVE_BLOCKERS: return "leave";
        default: return "unknown";
        }
}

const char *drain_action_to_string(DrainAction a) {
        switch (a) {
        case DRAIN_ACTION_MOVE: return "move";
        case DRAIN_ACTION_MOVING: return "moving";
        case DRAIN_ACTION_BLOCKED: return "blocked";
        default: return "unknown";
        }
}
