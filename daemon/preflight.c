/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "preflight.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "ferry-backend.h"
#include "macro.h"
#include "strutil.h"

_printf_(4, 5)
static bool add(PreflightResult *r, const char *name, bool passed, const char *fmt, ...) {
        va_list ap;
        if (!passed)
                r->passed = false;      /* even past the table's end: a failed check is never lost */
        if (r->n_checks >= PREFLIGHT_CHECKS_MAX)
                return passed;
        PreflightCheck *c = &r->checks[r->n_checks++];
        c->name = name;
        c->passed = passed;
        va_start(ap, fmt);
        vsnprintf(c->message, sizeof(c->message), fmt, ap);
        va_end(ap);
        if (!passed)
                r->passed = false;
        return passed;
}

static bool is_member(const MembershipView *v, uint32_t id) {
        for (size_t i = 0; i < v->n_members; i++)
                if (v->members[i] == id)
                        return true;
        return false;
}

/* a - b, or INT64_MIN if that is below it: facts and VM records come from
 * peers, and an absurd size must not overflow (undefined) into "room". */
static int64_t sub_saturating(int64_t a, uint64_t b) {
        uint64_t room = a >= 0 ? (uint64_t) a + ((uint64_t) INT64_MAX + 1) : (uint64_t) (a - INT64_MIN);
        return b > room ? INT64_MIN : (int64_t) ((uint64_t) a - b);
}

int64_t preflight_available_memory(const ClusterState *s, uint32_t node) {
        const NodeRecord *n = cluster_state_find_node(s, node);
        if (!n)
                return 0;
        int64_t avail = sub_saturating((int64_t) MIN(n->facts.memory_free, (uint64_t) INT64_MAX),
                                       n->facts.memory_reserved);
        for (size_t i = 0; i < s->n_jobs; i++) {
                const JobRecord *j = &s->jobs[i];
                if (j->destination != node || job_state_is_final(j->state))
                        continue;
                const VmRecord *v = state_find_vm(s, j->vm, j->source);
                /* Once running, the hypervisor's free memory already counts it
                 * in part; counting it whole is the safe side. */
                if (v)
                        avail = sub_saturating(avail, v->memory);
        }
        return avail;
}

/* The destination checks; returns whether all passed. */
static bool check_destination(const ClusterState *s, const MembershipView *view, const VmRecord *vm,
                              uint32_t dst, PreflightResult *r) {
        const NodeRecord *src = cluster_state_find_node(s, vm->node), *d = cluster_state_find_node(s, dst);
        char need[32], have[32];
        bool ok = true;

        if (!d) {
                add(r, "destination-known", false, "destination node %u is unknown", dst);
                return false;
        }
        add(r, "destination-known", true, "destination %s is a cluster member", cluster_state_node_name(s, dst));
        ok &= add(r, "destination-differs", dst != vm->node, dst != vm->node ? "source and destination differ" :
                  "%s already runs on %s", vm->name, cluster_state_node_name(s, dst));
        ok &= add(r, "destination-online", is_member(view, dst), is_member(view, dst) ?
                  "%s is online" : "%s is not online in this partition", cluster_state_node_name(s, dst));
        ok &= add(r, "destination-not-in-maintenance", !d->maintenance, d->maintenance ?
                  "%s is in maintenance" : "%s is not in maintenance", cluster_state_node_name(s, dst));
        if (src) {
                bool same = streq(src->facts.cpu_vendor ? src->facts.cpu_vendor : "",
                                  d->facts.cpu_vendor ? d->facts.cpu_vendor : "");
                ok &= add(r, "cpu-vendor", same, same ? "both %s" : "source is %s, destination is %s",
                          src->facts.cpu_vendor ? src->facts.cpu_vendor : "?",
                          same ? "" : d->facts.cpu_vendor ? d->facts.cpu_vendor : "?");
                const char *sv = src->facts.hypervisor_version ? src->facts.hypervisor_version : "";
                const char *dv = d->facts.hypervisor_version ? d->facts.hypervisor_version : "";
                bool newer = ferry_version_compare(dv, sv) >= 0;
                ok &= add(r, "hypervisor-version", newer, newer ?
                          "destination %s %s is not older than source %s" :
                          "destination %s %s is older than source %s: migrations go old to new only",
                          d->facts.hypervisor_name ? d->facts.hypervisor_name : "", dv, sv);
        }
        int64_t avail = preflight_available_memory(s, dst);
        format_size(need, sizeof(need), vm->memory);
        format_size(have, sizeof(have), avail > 0 ? (uint64_t) avail : 0);
        ok &= add(r, "destination-memory", avail >= 0 && (uint64_t) avail >= vm->memory,
                  "%s needs %s, %s has %s after its host reserve and incoming migrations",
                  vm->name, need, cluster_state_node_name(s, dst), have);
        return ok;
}

/* The VM's volumes: shared ones follow it when the migration completes,
 * so the source must own them now; an fs volume is mounted on one node at a
 * time, so its VMs cannot move live at all. */
static void check_volumes(const ClusterState *s, const VmRecord *vm, PreflightResult *r) {
        char names[256] = "";
        bool ok = true;

        for (size_t i = 0; i < s->n_volumes && ok; i++) {
                const VolumeRecord *v = &s->volumes[i];
                if (!vm_uses_volume(vm, v->name))
                        continue;
                if (v->kind == VOLUME_FS)
                        ok = add(r, "volumes", false,
                                 "%s's disks live on fs volume %s, which is mounted on one node at a time: "
                                 "it cannot move live", vm->name, v->name);
                else if (v->state != VOLUME_OWNED || v->owner != vm->node)
                        ok = add(r, "volumes", false, "volume %s is %s%s%s, not owned by %s: wait until it is", v->name,
                                 volume_state_to_string(v->state), v->owner ? " by " : "",
                                 v->owner ? cluster_state_node_name(s, v->owner) : "",
                                 cluster_state_node_name(s, vm->node));
                else if (strlen(names) + strlen(v->name) + 2 < sizeof(names))
                        snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s", *names ? ", " : "",
                                 v->name);
        }
        if (ok)
                add(r, "volumes", true, *names ? "shared volume(s) %s owned by the source: they follow the VM" :
                    "no shared volumes", names);
}

void preflight_run(const ClusterState *s, const MembershipView *view, const char *vm_name, uint32_t destination,
                   PreflightResult *r) {
        const VmRecord *vm;
        size_t count = 0;

        *r = (PreflightResult) { .passed = true };
        add(r, "quorum", view->quorate, view->quorate ? "this partition is quorate" :
            "this partition is not quorate: nothing may move");
        vm = state_find_vm_any(s, vm_name, &count);
        if (!add(r, "vm-known", vm != NULL, vm ? "%s is known" : "no node reports a VM named \"%s\"",
                 vm ? vm->name : vm_name))
                return;
        if (!add(r, "vm-unique", count == 1, count == 1 ? "%s runs on one node" :
                 "%s is reported by %zu nodes: refusing to move it until that is resolved", vm->name, count))
                return;
        r->source = vm->node;
        add(r, "vm-running", vm->state == VM_RUNNING, "%s is %s on %s", vm->name, vm_state_to_string(vm->state),
            cluster_state_node_name(s, vm->node));
        add(r, "no-passthrough", vm->n_passthrough == 0, vm->n_passthrough == 0 ? "no host devices passed through" :
            "%u host device(s) passed through: not live-migratable", vm->n_passthrough);
        check_volumes(s, vm, r);
        const JobRecord *active = state_find_active_job(s, vm->name);
        if (active)
                add(r, "no-active-job", false, "job %" PRIu64 " already moves %s (%s)", active->id, vm->name,
                    job_state_to_string(active->state));
        else
                add(r, "no-active-job", true, "no other job moves %s", vm->name);
        add(r, "source-online", is_member(view, vm->node), is_member(view, vm->node) ?
            "source %s is online" : "source %s is not online in this partition", cluster_state_node_name(s, vm->node));

        if (destination != 0) {
                r->destination = destination;
                check_destination(s, view, vm, destination, r);
        } else {
                /* Choose: every node that passes every destination check, the
                 * one with the most memory to spare; ties to the lowest id. */
                uint32_t best = 0;
                int64_t best_avail = 0;
                size_t valid = 0;
                for (size_t i = 0; i < s->n_nodes; i++) {
                        PreflightResult probe = { .passed = true };
                        uint32_t id = s->nodes[i].id;
                        if (id == vm->node || !check_destination(s, view, vm, id, &probe))
                                continue;
                        valid++;
                        int64_t a = preflight_available_memory(s, id);
                        if (!best || a > best_avail) {
                                best = id;
                                best_avail = a;
                        }
                }
                if (!best)
                        add(r, "destination-found", false,
                            "no node can take %s (each fails a check; name one with --to to see which)", vm->name);
                else {
                        add(r, "destination-found", true, "%zu valid destination(s)", valid);
                        char avail[32];
                        format_size(avail, sizeof(avail), (uint64_t) best_avail);
                        r->destination = best;
                        snprintf(r->destination_reason, sizeof(r->destination_reason),
                                 "%s chosen: most memory to spare (%s) of %zu valid destination(s)",
                                 cluster_state_node_name(s, best), avail, valid);
                        check_destination(s, view, vm, best, r);
                }
        }
        add(r, "cpu-model", true, "the VM's CPU is checked against %s by the source's hypervisor when the job starts",
            r->destination ? cluster_state_node_name(s, r->destination) : "the destination");
}

const PreflightCheck *preflight_first_failure(const PreflightResult *r) {
        for (size_t i = 0; i < r->n_checks; i++)
                if (!r->checks[i].passed)
                        return &r->checks[i];
        return NULL;
}
