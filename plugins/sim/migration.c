/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "migration.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "strutil.h"
#include "xorshift.h"

_printf_(3, 4)
static int refuse(SimError *e, int r, const char *fmt, ...) {
        va_list ap;

        if (e) {
                e->line = 0;
                va_start(ap, fmt);
                vsnprintf(e->message, sizeof(e->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

static uint64_t realtime_usec(void) {
        struct timespec ts;
        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}

int sim_check_cpu(const SimHost *src, const SimVm *vm, const SimHost *dst, char *reason, size_t len) {
        char missing[256];

        if (!streq(src->cpu_vendor, dst->cpu_vendor)) {
                snprintf(reason, len, "VM %s runs on a %s CPU (%s); %s has %s", vm->name, src->cpu_vendor, src->name,
                         dst->name, dst->cpu_vendor);
                return -ENOTSUP;
        }
        if (!sim_features_subset(vm->cpu_model_required, dst->cpu_features, missing, sizeof(missing))) {
                snprintf(reason, len, "%s lacks CPU features VM %s needs: %s", dst->name, vm->name, missing);
                return -ENOTSUP;
        }
        return 0;
}

static void count_links(const SimMarker *mk, size_t n, const char *src, const char *dst, size_t *ret_out,
                        size_t *ret_in) {
        size_t out = 0, in = 0;

        for (size_t i = 0; i < n; i++) {
                out += streq(mk[i].source, src);
                in += streq(mk[i].destination, dst);
        }
        *ret_out = out;
        *ret_in = in;
}

/* Links are full duplex: a migration shares the source's outgoing
 * bandwidth with the source's other outgoing migrations and the
 * destination's incoming bandwidth with its other incoming ones, equally;
 * it gets the smaller share, capped by the stream cap and ferryd's limit. */
static uint64_t bandwidth_share(const SimHost *src, const SimHost *dst, size_t n_out, size_t n_in, uint64_t cap) {
        uint64_t b = MIN(src->link_bandwidth / MAX(n_out, (size_t) 1), dst->link_bandwidth / MAX(n_in, (size_t) 1));
        if (cap > 0)
                b = MIN(b, cap);
        return MAX(b, UINT64_C(1));
}

int sim_world_memory_used(SimWorld *w, const char *node, uint64_t *ret_vms, uint64_t *ret_incoming, SimError *e) {
        _cleanup_free_ SimVm *vms = NULL;
        SimMarker *mk = NULL;
        size_t n = 0, n_mk = 0;
        uint64_t used = 0, incoming = 0;
        int r;

        r = sim_world_load_vms(w, node, &vms, &n, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                used += vms[i].memory;
        r = sim_world_load_markers(w, &mk, &n_mk, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_mk; i++)
                if (streq(mk[i].destination, node))
                        incoming += mk[i].reserved;
        sim_markers_free(mk, n_mk);
        *ret_vms = used;
        if (ret_incoming)
                *ret_incoming = incoming;
        return 0;
}

static int apply_event(Precopy *m, const SimEvent *ev) {
        switch (ev->type) {
        case SIM_EVENT_BANDWIDTH:
                return precopy_set_bandwidth(m, ev->value);
        case SIM_EVENT_MAX_DOWNTIME:
                return precopy_set_max_downtime(m, ev->value);
        case SIM_EVENT_AUTO_CONVERGE:
                return precopy_set_auto_converge(m, ev->value != 0);
        case SIM_EVENT_POSTCOPY:
                return precopy_start_postcopy(m);
        default:
                return -EINVAL;
        }
}

int sim_marker_replay(const SimMarker *mk, uint64_t elapsed, Precopy *ret) {
        int r;

        r = precopy_init(ret, &mk->model);
        if (r < 0)
                return r;
        for (size_t i = 0; i < mk->n_events && mk->events[i].at <= elapsed; i++) {
                precopy_advance_to(ret, mk->events[i].at);
                /* An action the model refused then is refused again now:
                 * the live run recorded only what it applied. */
                (void) apply_event(ret, &mk->events[i]);
        }
        if (elapsed == UINT64_MAX)
                precopy_run(ret);
        else
                precopy_advance_to(ret, elapsed);
        return 0;
}

/* The end of a migration, in the world, under its lock. A completed one
 * moves the VM; if that fails (someone removed or duplicated the file) the
 * VM stays where it is and the migration counts as failed. */
static int settle(SimWorld *w, const SimMarker *mk, PrecopyPhase phase, char *error, size_t len) {
        int r = 0;

        if (phase == PRECOPY_PHASE_COMPLETED) {
                r = sim_world_move_vm(w, mk->vm, mk->source, mk->destination);
                if (r < 0 && error)
                        snprintf(error, len, "moving VM %s from %s to %s at the end of its migration: %s", mk->vm,
                                 mk->source, mk->destination, strerror(-r));
        }
        int k = sim_world_remove_marker(w, mk->vm);
        return r < 0 ? r : k;
}

static uint64_t elapsed_since(const SimMarker *mk, uint64_t now) {
        return now > mk->start ? now - mk->start : 0;
}

int sim_migration_start(SimWorld *w, const SimStartParams *p, SimMigration **ret, SimError *e) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        _cleanup_(sim_migration_freep) SimMigration *m = NULL;
        SimHost src, dst;
        SimVm vm, other;
        SimMarker *mk = NULL;
        size_t n_mk = 0, n_out, n_in;
        uint64_t now, used, incoming;
        char reason[FERRY_TEXT_MAX];
        int r;

        if (!sim_name_is_valid(p->vm) || !sim_name_is_valid(p->source) || !sim_name_is_valid(p->destination))
                return refuse(e, -EINVAL, "invalid VM or node name");
        if (streq(p->source, p->destination))
                return refuse(e, -EINVAL, "VM %s: source and destination are both %s", p->vm, p->source);

        r = sim_world_lock(w);
        if (r < 0)
                return refuse(e, r, "locking the world: %s", strerror(-r));
        locked = w;

        r = sim_world_load_vm(w, p->source, p->vm, &vm, e);
        if (r == -ENOENT)
                return refuse(e, r, "no VM %s on %s", p->vm, p->source);
        if (r < 0)
                return r;
        r = sim_world_load_host(w, p->source, &src, e);
        if (r < 0)
                return r;
        r = sim_world_load_host(w, p->destination, &dst, e);
        if (r == -ENOENT)
                return refuse(e, r, "unknown destination %s (no host of that name in the world)", p->destination);
        if (r < 0)
                return r;

        r = sim_world_load_markers(w, &mk, &n_mk, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_mk; i++)
                if (streq(mk[i].vm, p->vm)) {
                        r = refuse(e, -EBUSY, "VM %s is already migrating to %s", p->vm, mk[i].destination);
                        sim_markers_free(mk, n_mk);
                        return r;
                }
        count_links(mk, n_mk, p->source, p->destination, &n_out, &n_in);
        sim_markers_free(mk, n_mk);

        if (vm.state != FERRY_VM_RUNNING && vm.state != FERRY_VM_PAUSED)
                return refuse(e, -ENOTSUP, "VM %s is not running: only a running or paused VM migrates live", p->vm);
        if (vm.passthrough > 0)
                return refuse(e, -ENOTSUP, "VM %s has %" PRIu32 " passed-through host device(s): not migratable",
                              p->vm, vm.passthrough);
        for (uint32_t i = 0; i < vm.n_disks; i++)
                if (!vm.disks[i].shared)
                        return refuse(e, -ENOTSUP, "VM %s has a local disk %s (%s) that %s cannot reach", p->vm,
                                      vm.disks[i].target, vm.disks[i].path, p->destination);
        r = sim_check_cpu(&src, &vm, &dst, reason, sizeof(reason));
        if (r < 0)
                return refuse(e, r, "%s", reason);
        if (vm.machine[0] && ferry_version_compare(dst.hypervisor_version, vm.machine) < 0)
                return refuse(e, -ENOTSUP, "VM %s needs hypervisor %s or newer; %s runs %s", p->vm, vm.machine,
                              p->destination, dst.hypervisor_version);
        r = sim_world_load_vm(w, p->destination, p->vm, &other, NULL);
        if (r >= 0)
                return refuse(e, -EEXIST, "%s already has a VM named %s", p->destination, p->vm);
        r = sim_world_memory_used(w, p->destination, &used, &incoming, e);
        if (r < 0)
                return r;
        if (used + incoming + vm.memory > dst.memory_total) {
                char a[32], b[32];
                return refuse(e, -ENOSPC, "%s lacks memory for VM %s: %s free, %s needed", p->destination, p->vm,
                              format_size(a, sizeof(a), dst.memory_total - MIN(dst.memory_total, used + incoming)),
                              format_size(b, sizeof(b), vm.memory));
        }

        r = sim_world_now(w, &now);
        if (r < 0)
                return refuse(e, r, "reading the world's clock: %s", strerror(-r));

        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->world = w;
        m->owner_fd = -1;
        r = sim_world_take_owner(w, p->vm, &m->owner_fd);
        if (r < 0)
                return refuse(e, r, "VM %s: cannot own its migration: %s", p->vm, strerror(-r));

        const SimParams *wp = &w->params;
        uint64_t cap = 0;
        if (src.stream_cap > 0)
                cap = src.stream_cap * MAX(p->streams, UINT32_C(1));
        if (p->bandwidth_limit > 0)
                cap = cap > 0 ? MIN(cap, p->bandwidth_limit) : p->bandwidth_limit;

        SimMarker *k = &m->marker;
        snprintf(k->vm, sizeof(k->vm), "%s", p->vm);
        snprintf(k->source, sizeof(k->source), "%s", p->source);
        snprintf(k->destination, sizeof(k->destination), "%s", p->destination);
        if (wp->clock == SIM_CLOCK_MONOTONIC)
                snprintf(k->boot_id, sizeof(k->boot_id), "%s", w->boot_id);
        k->start = now;
        k->started_realtime = realtime_usec();
        k->reserved = vm.memory;
        k->bandwidth_cap = cap;
        k->postcopy_allowed = p->postcopy_allowed;
        k->model = (PrecopyParams) {
                .memory = vm.memory,
                .working_set = vm.working_set,
                /* A paused guest dirties nothing. */
                .dirty_rate = vm.state == FERRY_VM_PAUSED ? 0 : vm.dirty_rate,
                .bandwidth = bandwidth_share(&src, &dst, n_out + 1, n_in + 1, cap),
                .max_downtime_ms = p->max_downtime_ms > 0 ? p->max_downtime_ms : wp->max_downtime_ms,
                .max_iterations = wp->max_iterations,
                .setup_ms = wp->setup_ms,
                .switchover_ms = wp->switchover_ms,
                .auto_converge = p->auto_converge,
                .throttle_initial = wp->throttle_initial,
                .throttle_increment = wp->throttle_increment,
                .throttle_max = wp->throttle_max,
                .throttle_trigger = wp->throttle_trigger,
                .jitter_permille = wp->jitter_permille,
                .seed = xorshift_hash(wp->seed, p->vm),
        };
        r = precopy_init(&m->model, &k->model);
        if (r < 0)
                return refuse(e, r, "VM %s: invalid model parameters", p->vm);
        r = sim_world_write_marker(w, k);
        if (r < 0)
                return refuse(e, r, "VM %s: writing its migration marker: %s", p->vm, strerror(-r));
        *ret = TAKE_PTR(m);
        return 0;
}

static void finish_handle(SimMigration *m) {
        const SimParams *wp = &m->world->params;

        m->settled = true;
        sim_world_drop_owner(m->world, m->marker.vm, m->owner_fd);
        m->owner_fd = -1;
        /* When the simulated end happened, in real time. */
        if (wp->clock == SIM_CLOCK_MONOTONIC && precopy_is_terminal(&m->model))
                m->finished_realtime = m->marker.started_realtime +
                                       m->model.finished_at * 1000 / wp->time_scale_milli;
        else
                m->finished_realtime = realtime_usec();
}

/* Under the world lock. */
static int update_locked(SimMigration *m, SimError *e) {
        SimWorld *w = m->world;
        SimMarker *mk = NULL;
        size_t n_mk = 0, n_out, n_in;
        bool found = false;
        uint64_t now;
        int r;

        if (m->settled)
                return 0;
        r = sim_world_now(w, &now);
        if (r < 0)
                return refuse(e, r, "reading the world's clock: %s", strerror(-r));
        precopy_advance_to(&m->model, elapsed_since(&m->marker, now));

        r = sim_world_load_markers(w, &mk, &n_mk, e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_mk; i++)
                found = found || streq(mk[i].vm, m->marker.vm);
        count_links(mk, n_mk, m->marker.source, m->marker.destination, &n_out, &n_in);
        sim_markers_free(mk, n_mk);

        if (!found) {
                /* Only its owner removes a marker while the owner lives;
                 * someone edited the world by hand. Nothing moves. */
                snprintf(m->error, sizeof(m->error), "the marker of VM %s's migration disappeared", m->marker.vm);
                m->failed_to_settle = true;
                finish_handle(m);
                return 0;
        }
        if (precopy_is_terminal(&m->model)) {
                r = settle(w, &m->marker, m->model.phase, m->error, sizeof(m->error));
                if (r < 0 && m->model.phase == PRECOPY_PHASE_COMPLETED)
                        m->failed_to_settle = true;
                finish_handle(m);
                return 0;
        }

        SimHost src, dst;
        r = sim_world_load_host(w, m->marker.source, &src, e);
        if (r < 0)
                return r;
        r = sim_world_load_host(w, m->marker.destination, &dst, e);
        if (r < 0)
                return r;
        uint64_t b = bandwidth_share(&src, &dst, n_out, n_in, m->marker.bandwidth_cap);
        if (b == m->model.p.bandwidth)
                return 0;
        r = precopy_set_bandwidth(&m->model, b);
        if (r < 0)
                return 0;
        r = sim_marker_add_event(&m->marker, m->model.now, SIM_EVENT_BANDWIDTH, b);
        if (r < 0)
                return r;
        return sim_world_write_marker(w, &m->marker);
}

int sim_migration_update(SimMigration *m, SimError *e) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        int r;

        if (m->settled)
                return 0;
        r = sim_world_lock(m->world);
        if (r < 0)
                return r;
        locked = m->world;
        return update_locked(m, e);
}

/* Advances, then applies a control action and records it, all under the
 * world lock so the marker's events stay in time order. */
static int control(SimMigration *m, SimEventType type, uint64_t value, SimError *e) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        SimEvent ev = { .type = type, .value = value };
        int r;

        r = sim_world_lock(m->world);
        if (r < 0)
                return r;
        locked = m->world;
        r = update_locked(m, e);
        if (r < 0)
                return r;
        if (m->settled)
                return refuse(e, -ESTALE, "the migration of VM %s has ended (%s)", m->marker.vm,
                              precopy_phase_to_string(m->model.phase));
        ev.at = m->model.now;
        r = apply_event(&m->model, &ev);
        if (r == -EBUSY)
                return refuse(e, r, "the migration of VM %s is in %s", m->marker.vm,
                              precopy_phase_to_string(m->model.phase));
        if (r < 0)
                return refuse(e, r, "the migration of VM %s refused %s", m->marker.vm, sim_event_type_to_string(type));
        r = sim_marker_add_event(&m->marker, ev.at, type, value);
        if (r < 0)
                return r;
        return sim_world_write_marker(m->world, &m->marker);
}

int sim_migration_set_max_downtime(SimMigration *m, uint64_t ms, SimError *e) {
        return control(m, SIM_EVENT_MAX_DOWNTIME, ms, e);
}

int sim_migration_set_auto_converge(SimMigration *m, bool on, SimError *e) {
        return control(m, SIM_EVENT_AUTO_CONVERGE, on, e);
}

int sim_migration_start_postcopy(SimMigration *m, SimError *e) {
        if (!m->marker.postcopy_allowed)
                return refuse(e, -EPERM, "post-copy was not allowed when the migration of VM %s started",
                              m->marker.vm);
        return control(m, SIM_EVENT_POSTCOPY, 0, e);
}

int sim_migration_abort(SimMigration *m, SimError *e) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        int r;

        r = sim_world_lock(m->world);
        if (r < 0)
                return r;
        locked = m->world;
        r = update_locked(m, e);
        if (r < 0)
                return r;
        if (m->settled)
                return refuse(e, -ESTALE, "the migration of VM %s has already ended (%s)", m->marker.vm,
                              precopy_phase_to_string(m->model.phase));
        r = precopy_cancel(&m->model);
        if (r == -EBUSY)
                return refuse(e, r, "the migration of VM %s is in %s, past the point where it can be cancelled",
                              m->marker.vm, precopy_phase_to_string(m->model.phase));
        if (r < 0)
                return refuse(e, r, "cancelling the migration of VM %s: %s", m->marker.vm, strerror(-r));
        r = settle(m->world, &m->marker, m->model.phase, NULL, 0);
        finish_handle(m);
        return r;
}

void sim_migration_status(const SimMigration *m, PrecopyStatus *ret) {
        precopy_status(&m->model, ret);
        if (m->failed_to_settle) {
                ret->phase = PRECOPY_PHASE_FAILED;
                ret->error = m->error;
        }
}

SimMigration *sim_migration_free(SimMigration *m) {
        if (!m)
                return NULL;
        /* Closing the owner fd without unlinking: an unsettled migration is
         * left for sim_world_reconcile(). */
        if (m->owner_fd >= 0)
                (void) close(m->owner_fd);
        sim_marker_done(&m->marker);
        free(m);
        return NULL;
}

int sim_world_reconcile(SimWorld *w, unsigned *ret_resolved, SimError *e) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        SimMarker *mk = NULL;
        size_t n_mk = 0;
        unsigned resolved = 0;
        uint64_t now;
        int r;

        r = sim_world_lock(w);
        if (r < 0)
                return r;
        locked = w;
        r = sim_world_now(w, &now);
        if (r < 0)
                return refuse(e, r, "reading the world's clock: %s", strerror(-r));
        r = sim_world_load_markers(w, &mk, &n_mk, e);
        if (r < 0)
                return r;

        for (size_t i = 0; i < n_mk && r >= 0; i++) {
                Precopy model;
                int fd = -1;

                if (sim_world_take_owner(w, mk[i].vm, &fd) < 0)
                        continue;       /* its owner lives (or we cannot tell: leave it) */
                /* A monotonic start from another boot cannot be compared
                 * with now; the machine went down since, and the migration
                 * is taken to have run its course. */
                bool other_boot = w->params.clock == SIM_CLOCK_MONOTONIC && !streq(mk[i].boot_id, w->boot_id);
                r = sim_marker_replay(&mk[i], other_boot ? UINT64_MAX : elapsed_since(&mk[i], now), &model);
                if (r < 0) {
                        /* Unreplayable parameters: nothing can have moved. */
                        model.phase = PRECOPY_PHASE_FAILED;
                        r = 0;
                }
                switch (model.phase) {
                case PRECOPY_PHASE_SETUP:
                case PRECOPY_PHASE_PRECOPY:
                        (void) precopy_cancel(&model);
                        break;
                case PRECOPY_PHASE_SWITCHOVER:
                case PRECOPY_PHASE_POSTCOPY:
                        precopy_run(&model);
                        break;
                default:
                        break;
                }
                r = settle(w, &mk[i], model.phase, NULL, 0);
                /* A VM that cannot move stays on the source: the marker
                 * goes either way, or it would be retried forever. */
                if (r == -EEXIST || r == -ENOENT)
                        r = 0;
                sim_world_drop_owner(w, mk[i].vm, fd);
                resolved++;
        }
        sim_markers_free(mk, n_mk);
        if (ret_resolved)
                *ret_resolved = resolved;
        return r < 0 ? refuse(e, r, "settling an orphaned migration: %s", strerror(-r)) : 0;
}
