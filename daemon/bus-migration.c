/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "bus-migration.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon.h"
#include "ferry-bus.h"
#include "log.h"
#include "macro.h"
#include "polkit.h"
#include "strutil.h"

struct EmittedJob {
        uint64_t id;
        char digest[STATE_DIGEST_HEX_SIZE];
};
typedef struct EmittedJob EmittedJob;

/* ---- ListVms ----------------------------------------------------------------- */

int method_list_vms(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Daemon *d = userdata;
        const ClusterState *s = d->replica ? replica_state(d->replica) : NULL;
        int r;

        r = sd_bus_message_new_method_return(m, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_open_container(reply, 'a', "(ssssuttu)");
        for (size_t i = 0; r >= 0 && s && i < s->n_vms; i++) {
                const VmRecord *v = &s->vms[i];
                r = sd_bus_message_append(reply, "(ssssuttu)", v->name, daemon_node_name(d, v->node),
                                          vm_state_to_string(v->state), v->uuid ? v->uuid : "", v->vcpus,
                                          v->memory, v->dirty_rate, v->cpu_use_permille);
        }
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

/* ---- CheckMigration / Migrate ---------------------------------------------- */

static int resolve_destination(Daemon *d, const char *name, uint32_t *ret, sd_bus_error *error) {
        NodeView v;
        *ret = 0;
        if (!name || !*name)
                return 0;
        if (!daemon_find_node(d, name, &v))
                return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_NODE, "No such node: \"%s\" is unknown to the cluster", name);
        *ret = v.id;
        return 0;
}

static void run_checks(Daemon *d, const char *vm, uint32_t destination, PreflightResult *res) {
        MembershipView view;
        daemon_membership_view(d, &view);
        preflight_run(replica_state(d->replica), &view, vm, destination, res);
}

int method_check_migration(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        Daemon *d = userdata;
        const char *vm, *dest;
        PreflightResult res;
        uint32_t dst;
        int r;

        r = sd_bus_message_read(m, "ss", &vm, &dest);
        if (r < 0)
                return r;
        if (!*vm)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "VM name must not be empty");
        if (!d->replica)
                return sd_bus_error_set(error, FERRY_ERROR_NOT_SYNCED, "Not connected to the cluster yet");
        r = resolve_destination(d, dest, &dst, error);
        if (r < 0)
                return r;
        run_checks(d, vm, dst, &res);

        r = sd_bus_message_new_method_return(m, &reply);
        if (r >= 0)
                r = sd_bus_message_append(reply, "s", res.destination ? daemon_node_name(d, res.destination) : "");
        if (r >= 0)
                r = sd_bus_message_open_container(reply, 'a', "(sbs)");
        for (size_t i = 0; r >= 0 && i < res.n_checks; i++)
                r = sd_bus_message_append(reply, "(sbs)", res.checks[i].name, (int) res.checks[i].passed,
                                          res.checks[i].message);
        if (r >= 0)
                r = sd_bus_message_close_container(reply);
        if (r < 0)
                return r;
        return sd_bus_send(NULL, reply, NULL);
}

static int reply_job_path(Daemon *d, sd_bus_message *call, uint64_t seq) {
        char path[128];
        uint64_t id = daemon_job_for_seq(d, seq);
        if (id == 0)
                return sd_bus_reply_method_errorf(call, FERRY_ERROR_REJECTED, "The job was not created");
        snprintf(path, sizeof(path), FERRY_JOB_PATH_PREFIX "/%" PRIu64, id);
        return sd_bus_reply_method_return(call, "o", path);
}

static int read_options(sd_bus_message *m, JobOptions *o, sd_bus_error *error) {
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                r = sd_bus_message_read(m, "s", &key);
                if (r < 0)
                        return r;
                if (streq(key, "bandwidth"))
                        r = sd_bus_message_read(m, "v", "t", &o->bandwidth);
                else if (streq(key, "max_downtime_ms"))
                        r = sd_bus_message_read(m, "v", "u", &o->max_downtime_ms);
                else if (streq(key, "postcopy")) {
                        int b;
                        r = sd_bus_message_read(m, "v", "b", &b);
                        o->postcopy_allowed = b;
                } else if (streq(key, "auto_converge")) {
                        int b;
                        r = sd_bus_message_read(m, "v", "b", &b);
                        o->auto_converge_allowed = b;
                } else
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Unknown option \"%s\"", key);
                if (r < 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "Option \"%s\" has the wrong type", key);
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        if (o->max_downtime_ms > 60000)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "max_downtime_ms %u is more than a minute: that is not a live migration",
                                         o->max_downtime_ms);
        return sd_bus_message_exit_container(m);
}

static int parse_migrate(sd_bus_message *m, const char **vm, const char **dest, JobOptions *o, sd_bus_error *error) {
        int r = sd_bus_message_rewind(m, true);
        if (r < 0)
                return r;
        *o = (JobOptions) {};
        r = sd_bus_message_read(m, "ss", vm, dest);
        if (r < 0)
                return r;
        if (!**vm)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "VM name must not be empty");
        return read_options(m, o, error);
}

static int migrate_authorized(Daemon *d, sd_bus_message *m, sd_bus_error *error) {
        const char *vm, *dest;
        PreflightResult res;
        JobOptions o;
        uint32_t dst;
        struct timespec ts;
        int r;

        r = parse_migrate(m, &vm, &dest, &o, error);
        if (r < 0)
                return r;
        r = resolve_destination(d, dest, &dst, error);
        if (r < 0)
                return r;
        if (!d->replica || replica_mode(d->replica) != REPLICA_SYNCED)
                return sd_bus_error_set(error, FERRY_ERROR_NOT_SYNCED, "Cluster membership is changing; retry in a moment");
        run_checks(d, vm, dst, &res);
        const PreflightCheck *bad = preflight_first_failure(&res);
        if (bad) {
                if (streq(bad->name, "vm-known"))
                        return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_VM, "No such VM: %s", bad->message);
                if (streq(bad->name, "quorum"))
                        return sd_bus_error_setf(error, FERRY_ERROR_NOT_QUORATE, "Refusing to migrate: %s", bad->message);
                return sd_bus_error_setf(error, FERRY_ERROR_MIGRATION_REFUSED, "Refusing to migrate %s (check %s): %s",
                                         vm, bad->name, bad->message);
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        Command c = { .type = COMMAND_JOB_SUBMIT };
        c.job_submit = (JobSubmitCommand) {
                .vm = (char *) vm,
                .source = res.source,
                .destination = res.destination,
                .options = o,
                .created_at = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000,
        };
        log_info("Migration of %s from %s to %s requested by %s%s%s", vm, daemon_node_name(d, res.source),
                 daemon_node_name(d, res.destination), sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "?",
                 res.destination_reason[0] ? "; " : "", res.destination_reason);
        return daemon_propose_for_call(d, &c, m, reply_job_path, error);
}

int method_migrate(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const char *vm, *dest;
        JobOptions o;
        int r;

        /* parse and validate before asking polkit */
        r = parse_migrate(m, &vm, &dest, &o, error);
        if (r < 0)
                return r;
        return polkit_authorize(d, m, FERRY_POLKIT_ACTION_MANAGE, migrate_authorized, error);
}

/* ---- CancelJob ------------------------------------------------------------------ */

static uint64_t job_id_from_path(const char *path) {
        const char *prefix = FERRY_JOB_PATH_PREFIX "/";
        uint64_t id;
        if (!path || strncmp(path, prefix, strlen(prefix)) != 0 || parse_u64(path + strlen(prefix), &id) < 0)
                return 0;
        return id;
}

static int cancel_authorized(Daemon *d, sd_bus_message *m, sd_bus_error *error) {
        uint64_t id;
        int r;

        if (streq(sd_bus_message_get_interface(m), FERRY_JOB_INTERFACE))
                id = job_id_from_path(sd_bus_message_get_path(m));
        else {
                r = sd_bus_message_rewind(m, true);
                if (r >= 0)
                        r = sd_bus_message_read(m, "t", &id);
                if (r < 0)
                        return r;
        }
        const JobRecord *j = d->replica ? state_find_job(replica_state(d->replica), id) : NULL;
        if (!j)
                return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_JOB, "No such job: %" PRIu64, id);
        if (job_state_is_final(j->state))
                return sd_bus_error_setf(error, FERRY_ERROR_REJECTED, "Job %" PRIu64 " already ended (%s)", id,
                                         job_state_to_string(j->state));
        r = daemon_check_quorate(d, error);
        if (r < 0)
                return r;
        Command c = { .type = COMMAND_JOB_CANCEL, .job_cancel = { .id = id } };
        log_info("Cancel of job %" PRIu64 " (%s) requested by %s", id, j->vm,
                 sd_bus_message_get_sender(m) ? sd_bus_message_get_sender(m) : "?");
        return daemon_propose_for_call(d, &c, m, NULL, error);
}

int method_cancel_job(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        uint64_t id;
        int r;

        if (!streq(sd_bus_message_get_interface(m), FERRY_JOB_INTERFACE)) {
                r = sd_bus_message_read(m, "t", &id);
                if (r < 0)
                        return r;
                if (!d->replica || !state_find_job(replica_state(d->replica), id))
                        return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_JOB, "No such job: %" PRIu64, id);
        }
        return polkit_authorize(d, m, FERRY_POLKIT_ACTION_MANAGE, cancel_authorized, error);
}

/* ---- job objects -------------------------------------------------------------------- */

static const JobRecord *job_from_path(Daemon *d, const char *path) {
        uint64_t id = job_id_from_path(path);
        return id && d->replica ? state_find_job(replica_state(d->replica), id) : NULL;
}

static int job_property(sd_bus *bus, const char *path, const char *interface, const char *property,
                        sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        Daemon *d = userdata;
        const JobRecord *j = job_from_path(d, path);

        if (!j)
                return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_JOB, "No such job: %s", path);
        if (streq(property, "Id"))
                return sd_bus_message_append(reply, "t", j->id);
        if (streq(property, "Vm"))
                return sd_bus_message_append(reply, "s", j->vm);
        if (streq(property, "Source"))
                return sd_bus_message_append(reply, "s", daemon_node_name(d, j->source));
        if (streq(property, "Destination"))
                return sd_bus_message_append(reply, "s", daemon_node_name(d, j->destination));
        if (streq(property, "RequestedBy"))
                return sd_bus_message_append(reply, "s", daemon_node_name(d, j->requested_by));
        if (streq(property, "State"))
                return sd_bus_message_append(reply, "s", job_state_to_string(j->state));
        if (streq(property, "Phase"))
                return sd_bus_message_append(reply, "s", job_phase_to_string(j->progress.phase));
        if (streq(property, "QueuePosition"))
                return sd_bus_message_append(reply, "u", state_job_queue_position(replica_state(d->replica), j->id));
        if (streq(property, "CancelRequested"))
                return sd_bus_message_append(reply, "b", j->cancel_requested);
        if (streq(property, "MemoryTotal"))
                return sd_bus_message_append(reply, "t", j->progress.memory_total);
        if (streq(property, "MemoryProcessed"))
                return sd_bus_message_append(reply, "t", j->progress.memory_processed);
        if (streq(property, "MemoryRemaining"))
                return sd_bus_message_append(reply, "t", j->progress.memory_remaining);
        if (streq(property, "Rate"))
                return sd_bus_message_append(reply, "t", j->progress.rate);
        if (streq(property, "DirtyRate"))
                return sd_bus_message_append(reply, "t", j->progress.dirty_rate);
        if (streq(property, "Iteration"))
                return sd_bus_message_append(reply, "u", j->progress.iteration);
        if (streq(property, "DowntimeMs"))
                return sd_bus_message_append(reply, "t", j->progress.downtime_ms);
        if (streq(property, "CreatedAt"))
                return sd_bus_message_append(reply, "t", j->created_at);
        if (streq(property, "StartedAt"))
                return sd_bus_message_append(reply, "t", j->started_at);
        if (streq(property, "FinishedAt"))
                return sd_bus_message_append(reply, "t", j->finished_at);
        if (streq(property, "Error"))
                return sd_bus_message_append(reply, "s", j->error ? j->error : "");
        if (streq(property, "Bandwidth"))
                return sd_bus_message_append(reply, "t", j->options.bandwidth);
        if (streq(property, "PostcopyAllowed"))
                return sd_bus_message_append(reply, "b", j->options.postcopy_allowed);
        if (streq(property, "AutoConvergeAllowed"))
                return sd_bus_message_append(reply, "b", j->options.auto_converge_allowed);
        if (streq(property, "Log")) {
                _cleanup_free_ char *copy = strdup(j->log ? j->log : "");
                int r;
                if (!copy)
                        return -ENOMEM;
                r = sd_bus_message_open_container(reply, 'a', "s");
                for (char *save = NULL, *l = strtok_r(copy, "\n", &save); r >= 0 && l; l = strtok_r(NULL, "\n", &save))
                        r = sd_bus_message_append(reply, "s", l);
                if (r < 0)
                        return r;
                return sd_bus_message_close_container(reply);
        }
        return sd_bus_error_setf(error, SD_BUS_ERROR_UNKNOWN_PROPERTY, "Unknown property %s", property);
}

#define JOB_PROPERTY(name, sig) SD_BUS_PROPERTY(name, sig, job_property, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE)

static const sd_bus_vtable job_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Id", "t", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Vm", "s", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Source", "s", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Destination", "s", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("RequestedBy", "s", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        JOB_PROPERTY("State", "s"),
        JOB_PROPERTY("Phase", "s"),
        JOB_PROPERTY("QueuePosition", "u"),
        JOB_PROPERTY("CancelRequested", "b"),
        JOB_PROPERTY("MemoryTotal", "t"),
        JOB_PROPERTY("MemoryProcessed", "t"),
        JOB_PROPERTY("MemoryRemaining", "t"),
        JOB_PROPERTY("Rate", "t"),
        JOB_PROPERTY("DirtyRate", "t"),
        JOB_PROPERTY("Iteration", "u"),
        JOB_PROPERTY("DowntimeMs", "t"),
        SD_BUS_PROPERTY("CreatedAt", "t", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        JOB_PROPERTY("StartedAt", "t"),
        JOB_PROPERTY("FinishedAt", "t"),
        JOB_PROPERTY("Error", "s"),
        JOB_PROPERTY("Log", "as"),
        SD_BUS_PROPERTY("Bandwidth", "t", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("PostcopyAllowed", "b", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("AutoConvergeAllowed", "b", job_property, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_ARGS("Cancel", SD_BUS_NO_ARGS, SD_BUS_NO_RESULT, method_cancel_job,
                                SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};

static int job_object_find(sd_bus *bus, const char *path, const char *interface, void *userdata, void **found,
                           sd_bus_error *error) {
        Daemon *d = userdata;
        if (!job_from_path(d, path))
                return 0;
        *found = d;
        return 1;
}

static int job_enumerator(sd_bus *bus, const char *path, void *userdata, char ***nodes, sd_bus_error *error) {
        Daemon *d = userdata;
        const ClusterState *s = d->replica ? replica_state(d->replica) : NULL;
        size_t n = s ? s->n_jobs : 0;
        char **l = calloc(n + 1, sizeof(char *));

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (asprintf(&l[i], FERRY_JOB_PATH_PREFIX "/%" PRIu64, s->jobs[i].id) < 0) {
                        for (size_t k = 0; k < i; k++)
                                free(l[k]);
                        free(l);
                        return -ENOMEM;
                }
        *nodes = l;
        return 0;
}

int bus_migration_setup(Daemon *d) {
        int r = sd_bus_add_fallback_vtable(d->bus, NULL, FERRY_JOB_PATH_PREFIX, FERRY_JOB_INTERFACE, job_vtable,
                                           job_object_find, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the job objects: %m");
        r = sd_bus_add_node_enumerator(d->bus, NULL, FERRY_JOB_PATH_PREFIX, job_enumerator, d);
        if (r < 0)
                return log_error_errno(r, "Failed to register the job enumerator: %m");
        return 0;
}

static void job_fingerprint(Daemon *d, const JobRecord *j, char out[STATE_DIGEST_HEX_SIZE]) {
        Writer w;
        writer_init(&w);
        writer_put_u8(&w, (uint8_t) j->state);
        writer_put_bool(&w, j->cancel_requested);
        writer_put_u32(&w, state_job_queue_position(replica_state(d->replica), j->id));
        writer_put_u64(&w, j->progress.memory_total);
        writer_put_u64(&w, j->progress.memory_processed);
        writer_put_u64(&w, j->progress.memory_remaining);
        writer_put_u64(&w, j->progress.rate);
        writer_put_u64(&w, j->progress.dirty_rate);
        writer_put_u64(&w, j->progress.downtime_ms);
        writer_put_u32(&w, j->progress.iteration);
        writer_put_u8(&w, (uint8_t) j->progress.phase);
        writer_put_u64(&w, j->finished_at);
        writer_put_u64(&w, j->started_at);
        writer_put_string(&w, j->log);
        writer_put_string(&w, j->error);
        if (writer_error(&w) < 0)
                memset(out, 0, STATE_DIGEST_HEX_SIZE);
        else
                sha256_hex(w.data, w.size, out);
        writer_done(&w);
}

void bus_migration_emit_changes(Daemon *d) {
        const ClusterState *s;
        EmittedJob *emitted = d->emitted_jobs;
        EmittedJob *next;
        size_t n = 0;

        if (!d->bus || !d->replica)
                return;
        s = replica_state(d->replica);
        next = calloc(s->n_jobs + 1, sizeof(EmittedJob));
        if (!next)
                return;
        for (size_t i = 0; i < s->n_jobs; i++) {
                const JobRecord *j = &s->jobs[i];
                char path[128];
                EmittedJob *old = NULL;

                snprintf(path, sizeof(path), FERRY_JOB_PATH_PREFIX "/%" PRIu64, j->id);
                for (size_t k = 0; k < d->n_emitted_jobs; k++)
                        if (emitted[k].id == j->id) {
                                old = &emitted[k];
                                break;
                        }
                next[n].id = j->id;
                job_fingerprint(d, j, next[n].digest);
                if (!old)
                        (void) sd_bus_emit_object_added(d->bus, path);
                else if (!streq(old->digest, next[n].digest))
                        (void) sd_bus_emit_properties_changed_strv(d->bus, path, FERRY_JOB_INTERFACE, NULL);
                n++;
        }
        /* Pruned jobs leave the bus too. */
        for (size_t k = 0; k < d->n_emitted_jobs; k++)
                if (!state_find_job(s, emitted[k].id)) {
                        char path[128];
                        snprintf(path, sizeof(path), FERRY_JOB_PATH_PREFIX "/%" PRIu64, emitted[k].id);
                        (void) sd_bus_emit_object_removed(d->bus, path);
                }
        free(d->emitted_jobs);
        d->emitted_jobs = next;
        d->n_emitted_jobs = n;
}
