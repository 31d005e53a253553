/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferryd: one per hypervisor host. Wires the corosync ring, the replicated
 * state and the D-Bus API into one sd-event loop. */

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "bus.h"
#include "bus-events.h"
#include "drain-driver.h"
#include "daemon.h"
#include "facts.h"
#include "ferry-build.h"
#include "ferry-bus.h"
#include "log.h"
#include "macro.h"
#include "message.h"
#include "state-file.h"

#define PERSIST_DELAY_USEC (200 * 1000ULL)

struct PendingCall {
        PendingCall *next;
        uint64_t seq;
        sd_bus_message *call;
        PendingReplyFn reply;           /* NULL: empty reply */
        uint64_t job_id;                /* job a JOB_SUBMIT created, seen at apply */
};

/* ---- node views --------------------------------------------------------- */

static int compare_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

int daemon_node_ids(Daemon *d, uint32_t **ret, size_t *ret_n) {
        const ClusterState *s = d->replica ? replica_state(d->replica) : NULL;
        size_t n_ring = 0, n_members = d->replica ? replica_n_members(d->replica) : 0;
        const RingNode *rn = d->ring ? ring_nodes(d->ring, &n_ring) : NULL;
        size_t cap = (s ? s->n_nodes : 0) + n_ring + n_members + 1, n = 0;
        uint32_t *ids = calloc(cap, sizeof(uint32_t));

        if (!ids)
                return -ENOMEM;
        for (size_t i = 0; s && i < s->n_nodes; i++)
                ids[n++] = s->nodes[i].id;
        for (size_t i = 0; i < n_ring; i++)
                ids[n++] = rn[i].id;
        for (size_t i = 0; i < n_members; i++)
                ids[n++] = replica_members(d->replica)[i];
        qsort(ids, n, sizeof(uint32_t), compare_u32);
        size_t u = 0;
        for (size_t i = 0; i < n; i++)
                if (ids[i] != 0 && (u == 0 || ids[u - 1] != ids[i]))
                        ids[u++] = ids[i];
        *ret = ids;
        *ret_n = u;
        return 0;
}

bool daemon_node_view(Daemon *d, uint32_t id, NodeView *ret) {
        const NodeRecord *rec = d->replica ? cluster_state_find_node(replica_state(d->replica), id) : NULL;
        const RingNode *rn = d->ring ? ring_find_node(d->ring, id) : NULL;
        bool member = d->replica && replica_is_member(d->replica, id);

        if (id == 0 || (!rec && !rn && !member))
                return false;
        *ret = (NodeView) {
                .id = id,
                .name = rec && rec->facts.name ? rec->facts.name : rn && rn->name ? rn->name : "",
                .online = member,
                .quorate = member && daemon_is_quorate(d),
                .record = rec,
        };
        return true;
}

bool daemon_find_node(Daemon *d, const char *name_or_id, NodeView *ret) {
        _cleanup_free_ uint32_t *ids = NULL;
        size_t n;

        if (daemon_node_ids(d, &ids, &n) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (daemon_node_view(d, ids[i], ret) && streq(ret->name, name_or_id))
                        return true;
        /* Not a name: maybe a decimal id. */
        char *end;
        errno = 0;
        unsigned long v = strtoul(name_or_id, &end, 10);
        if (errno == 0 && *name_or_id >= '0' && *name_or_id <= '9' && !*end && v <= UINT32_MAX)
                return daemon_node_view(d, (uint32_t) v, ret);
        return false;
}

const char *daemon_node_name(Daemon *d, uint32_t id) {
        NodeView v;
        return daemon_node_view(d, id, &v) ? v.name : "";
}

bool daemon_is_quorate(Daemon *d) {
        return d->replica && replica_quorate(d->replica);
}

/* ---- proposals on behalf of bus calls ------------------------------------ */

void daemon_membership_view(Daemon *d, MembershipView *ret) {
        *ret = (MembershipView) {
                .members = d->replica ? replica_members(d->replica) : NULL,
                .n_members = d->replica ? replica_n_members(d->replica) : 0,
                .quorate = daemon_is_quorate(d),
        };
}

uint64_t daemon_job_for_seq(Daemon *d, uint64_t seq) {
        for (PendingCall *p = d->pending_calls; p; p = p->next)
                if (p->seq == seq)
                        return p->job_id;
        return 0;
}

int daemon_check_quorate(Daemon *d, sd_bus_error *error) {
        if (!daemon_is_quorate(d))
                return sd_bus_error_set(error, FERRY_ERROR_NOT_QUORATE,
                                        "This node's partition is not quorate: refusing to change cluster state");
        return 0;
}

int daemon_resolve_node(Daemon *d, const char *name, NodeView *v, sd_bus_error *error) {
        if (!name || !*name)
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "Node name must not be empty");
        if (!daemon_find_node(d, name, v))
                return sd_bus_error_setf(error, FERRY_ERROR_NO_SUCH_NODE, "No such node: \"%s\" is unknown to the cluster",
                                         name);
        if (!v->record)
                return sd_bus_error_setf(error, FERRY_ERROR_REJECTED,
                                         "Node \"%s\" has never joined the cluster with ferryd", v->name);
        return 0;
}

int daemon_propose_for_call(Daemon *d, const Command *c, sd_bus_message *m, PendingReplyFn reply,
                            sd_bus_error *error) {
        PendingCall *p;
        uint64_t seq;
        int r;

        p = calloc(1, sizeof(PendingCall));
        if (!p)
                return -ENOMEM;
        r = replica_propose(d->replica, c, &seq);
        if (r < 0) {
                free(p);
                if (r == -ENOLINK)
                        return sd_bus_error_set(error, FERRY_ERROR_NOT_QUORATE,
                                                "This node's partition is not quorate: refusing to change cluster state");
                if (r == -EAGAIN)
                        return sd_bus_error_set(error, FERRY_ERROR_NOT_SYNCED,
                                                "Cluster membership is changing; retry in a moment");
                if (r == -ENOTCONN)
                        return sd_bus_error_set(error, FERRY_ERROR_NOT_QUORATE,
                                                "This node is not connected to the cluster");
                return sd_bus_error_set_errnof(error, r, "Failed to send the change to the cluster: %m");
        }
        p->seq = seq;
        p->call = sd_bus_message_ref(m);
        p->reply = reply;
        p->next = d->pending_calls;
        d->pending_calls = p;
        return 1;
}

static bool finish_pending_call(Daemon *d, uint64_t seq, int result) {
        for (PendingCall **pp = &d->pending_calls; *pp; pp = &(*pp)->next) {
                PendingCall *p = *pp;
                if (p->seq != seq)
                        continue;
                _cleanup_(sd_bus_error_free) sd_bus_error e = SD_BUS_ERROR_NULL;
                int r;
                if (result >= 0) {
                        /* Still linked, so the reply function can find it. */
                        r = p->reply ? p->reply(d, p->call, p->seq) : sd_bus_reply_method_return(p->call, NULL);
                        *pp = p->next;
                } else {
                        *pp = p->next;
                        if (result == -ESTALE)
                                sd_bus_error_set(&e, FERRY_ERROR_MEMBERSHIP_CHANGED,
                                                 "Cluster membership changed before the change was delivered; nothing was changed, retry");
                        else if (result == -ETIME)
                                sd_bus_error_set(&e, FERRY_ERROR_MEMBERSHIP_CHANGED,
                                                 "Cluster membership changed before a quorum confirmed the change; it may or may not have taken effect: check, then retry");
                        else if (result == -ENOLINK)
                                sd_bus_error_set(&e, FERRY_ERROR_NOT_QUORATE,
                                                 "The partition was not quorate when the change was delivered; nothing was changed");
                        else if (result == -ENOENT)
                                sd_bus_error_set(&e, FERRY_ERROR_REJECTED,
                                                 "The cluster refused the change: a node, VM or job it names no longer exists");
                        else if (result == -EBUSY)
                                sd_bus_error_set(&e, FERRY_ERROR_MIGRATION_REFUSED,
                                                 "Another job already moves this VM (it was queued at the same time)");
                        else if (result == -EHOSTDOWN)
                                sd_bus_error_set(&e, FERRY_ERROR_MIGRATION_REFUSED,
                                                 "The destination was put in maintenance meanwhile");
                        else if (result == -EALREADY)
                                sd_bus_error_set(&e, FERRY_ERROR_REJECTED, "The job already ended");
                        else
                                sd_bus_error_setf(&e, FERRY_ERROR_REJECTED, "The cluster refused the change: %s",
                                                  strerror(-result));
                        r = sd_bus_reply_method_error(p->call, &e);
                }
                if (r < 0)
                        log_debug_errno(r, "Failed to reply to a caller (gone?): %m");
                sd_bus_message_unref(p->call);
                free(p);
                return true;
        }
        return false;
}

/* ---- facts --------------------------------------------------------------- */

static void publish_facts(Daemon *d, bool force) {
        NodeFacts now = {};
        Command c = { .type = COMMAND_NODE_FACTS };
        int r;

        if (!d->replica || !replica_quorate(d->replica) || d->facts_proposal_pending || !d->node_name)
                return;
        FerryHostFacts hf;
        FerryError err = {};
        if (d->backend) {
                r = backend_host_facts(d->backend, &hf, &err);
                if (r < 0) {
                        log_warning_errno(r, "Backend could not report this host's facts: %s", err.message);
                        return;
                }
        }
        r = facts_collect(&now, d->node_name, &d->config, d->backend ? &hf : NULL,
                          d->backend ? d->backend->peer_uri : "");
        if (r < 0) {
                log_warning_errno(r, "Failed to collect this host's facts: %m");
                return;
        }
        const NodeRecord *rec = cluster_state_find_node(replica_state(d->replica), d->node_id);
        if (rec && !force && !facts_differ_significantly(&rec->facts, &now)) {
                node_facts_done(&now);
                return;
        }
        c.node_facts.node = d->node_id;
        c.node_facts.facts = now;
        r = replica_propose(d->replica, &c, &d->facts_proposal_seq);
        if (r < 0)
                log_debug_errno(r, "Not publishing facts now: %m");
        else
                d->facts_proposal_pending = true;
        command_done(&c);
}

/* The VMs this node runs, as its backend sees them, published on change. */
static void publish_inventory(Daemon *d) {
        NodeVmsCommand list = {};
        FerryError err = {};
        int r;

        if (!d->backend || !d->replica || !replica_quorate(d->replica) || d->inventory_proposal_pending)
                return;
        /* Facts first: the state machine wants to know the node. */
        if (!cluster_state_find_node(replica_state(d->replica), d->node_id))
                return;
        r = backend_list_vms(d->backend, replica_state(d->replica), &list, &err);
        if (r < 0) {
                log_warning_errno(r, "Backend could not list this host's VMs: %s", err.message);
                return;
        }
        list.node = d->node_id;
        if (state_node_vms_equal(replica_state(d->replica), d->node_id, &list)) {
                node_vms_command_done(&list);
                return;
        }
        Command c = { .type = COMMAND_NODE_VMS, .node_vms = list };
        r = replica_propose(d->replica, &c, &d->inventory_proposal_seq);
        if (r < 0)
                log_debug_errno(r, "Not publishing the VM inventory now: %m");
        else
                d->inventory_proposal_pending = true;
        command_done(&c);
}

/* Changes whenever a job into or out of this node reaches its end. */
static uint64_t own_finished_jobs_marker(Daemon *d) {
        const ClusterState *s = replica_state(d->replica);
        uint64_t marker = 0;
        for (size_t i = 0; i < s->n_jobs; i++) {
                const JobRecord *j = &s->jobs[i];
                if (job_state_is_final(j->state) && (j->source == d->node_id || j->destination == d->node_id))
                        marker = marker * 31 + j->id;
        }
        return marker;
}

static int on_inventory_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        publish_inventory(d);
        (void) sd_event_source_set_time_relative(s, (uint64_t) d->config.inventory_interval_sec * 1000000ULL);
        return 0;
}

static int on_facts_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        publish_facts(d, false);
        (void) sd_event_source_set_time_relative(s, (uint64_t) d->config.facts_interval_sec * 1000000ULL);
        return 0;
}

/* ---- persistence ---------------------------------------------------------- */

static int on_persist_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Daemon *d = userdata;
        const ClusterState *st = replica_state(d->replica);
        int r;

        if (st->commit == d->persisted_commit && streq(replica_digest(d->replica), d->persisted_digest))
                return 0;
        r = state_file_save(d->config.state_dir, st);
        if (r < 0) {
                log_error_errno(r, "Failed to save the cluster state to \"%s\": %m", d->config.state_dir);
                return 0;
        }
        d->persisted_commit = st->commit;
        memcpy(d->persisted_digest, replica_digest(d->replica), STATE_DIGEST_HEX_SIZE);
        return 0;
}

static void schedule_persist(Daemon *d) {
        if (!d->persist_timer) {
                (void) sd_event_add_time_relative(d->event, &d->persist_timer, CLOCK_MONOTONIC, PERSIST_DELAY_USEC, 0,
                                                  on_persist_timer, d);
                return;
        }
        int enabled = SD_EVENT_OFF;
        (void) sd_event_source_get_enabled(d->persist_timer, &enabled);
        if (enabled == SD_EVENT_OFF) {
                (void) sd_event_source_set_time_relative(d->persist_timer, PERSIST_DELAY_USEC);
                (void) sd_event_source_set_enabled(d->persist_timer, SD_EVENT_ONESHOT);
        }
}

/* ---- replica callbacks ---------------------------------------------------- */

static int replica_send(const void *buf, size_t len, void *userdata) {
        Daemon *d = userdata;
        return ring_send(d->ring, buf, len);
}

static void replica_proposal_done(uint64_t seq, int result, void *userdata) {
        Daemon *d = userdata;

        if (d->inventory_proposal_pending && seq == d->inventory_proposal_seq) {
                d->inventory_proposal_pending = false;
                if (result < 0 && result != -ESTALE && result != -ETIME)
                        log_warning_errno(result, "The cluster did not accept this node's VM list: %m");
                return;
        }
        if (d->facts_proposal_pending && seq == d->facts_proposal_seq) {
                d->facts_proposal_pending = false;
                if (result < 0 && result != -ESTALE && result != -ETIME)
                        log_warning_errno(result, "The cluster did not accept this node's facts: %m");
                return;
        }
        if (drain_driver_proposal_done(d, seq, result))
                return;
        if (volume_manager_proposal_done(d->volumes, seq, result))
                return;
        (void) finish_pending_call(d, seq, result);
}

static void replica_changed(void *userdata) {
        Daemon *d = userdata;
        ReplicaMode mode = replica_mode(d->replica);

        if (mode == REPLICA_SYNCED && !d->ready_sent) {
                d->ready_sent = true;
                (void) sd_notifyf(false, "READY=1\nSTATUS=Synced with %zu members%s",
                                  replica_n_members(d->replica), daemon_is_quorate(d) ? ", quorate" : ", not quorate");
                log_notice("First state sync complete; ready");
        } else if (d->ready_sent)
                (void) sd_notifyf(false, "STATUS=%s, %zu members, %s, commit %" PRIu64,
                                  replica_mode_to_string(mode), replica_n_members(d->replica),
                                  daemon_is_quorate(d) ? "quorate" : "not quorate", replica_state(d->replica)->commit);

        if (mode == REPLICA_SYNCED) {
                publish_facts(d, false);
                /* The inventory changes when a migration in or out of this
                 * node ends; otherwise the timer looks. Listing VMs on
                 * every commit would cost a hypervisor round trip per
                 * progress update. */
                uint64_t marker = own_finished_jobs_marker(d);
                if (marker != d->inventory_jobs_marker) {
                        d->inventory_jobs_marker = marker;
                        publish_inventory(d);
                }
                if (d->runner)
                        runner_state_changed(d->runner);
                drain_driver_state_changed(d);
                volume_manager_state_changed(d->volumes);
                balancer_state_changed(d->balancer);
        }
        schedule_persist(d);
        bus_emit_changes(d);
        bus_events_update(d);
}

static void replica_applied(uint32_t sender, uint64_t seq, int result, void *userdata) {
        Daemon *d = userdata;

        if (sender != d->node_id || result <= 0)
                return;
        /* A job our caller created gets its id now, before anything else
         * is applied; the reply goes out once a quorum confirmed it. */
        for (PendingCall *p = d->pending_calls; p; p = p->next)
                if (p->seq == seq)
                        p->job_id = replica_state(d->replica)->next_job_id;
}

static void replica_notice(int priority, const char *text, void *userdata) {
        qb_log(priority, "%s", text);
}

static const ReplicaCallbacks replica_callbacks = {
        .send = replica_send,
        .proposal_done = replica_proposal_done,
        .changed = replica_changed,
        .notice = replica_notice,
        .applied = replica_applied,
};

/* ---- ring callbacks -------------------------------------------------------- */

static void load_initial_state(Daemon *d, ClusterState **ret) {
        int r = state_file_load(d->config.state_dir, ret);
        if (r == -ENOENT) {
                log_info("No saved cluster state in \"%s\"; starting empty", d->config.state_dir);
                *ret = NULL;
        } else if (r < 0) {
                log_warning_errno(r, "Ignoring the saved cluster state in \"%s\" (%m); the cluster will provide it",
                                  d->config.state_dir);
                *ret = NULL;
        } else
                log_info("Loaded saved cluster state: commit %" PRIu64 ", %zu nodes", (*ret)->commit, (*ret)->n_nodes);
}

static void on_ring_connected(Ring *ring, uint32_t node_id, void *userdata) {
        Daemon *d = userdata;
        const RingNode *rn = ring_find_node(ring, node_id);

        d->node_id = node_id;
        free(d->node_name);
        if (rn && rn->name)
                d->node_name = strdup(rn->name);
        else {
                char host[256] = "";
                (void) gethostname(host, sizeof(host) - 1);
                d->node_name = strdup(host);
                log_warning("Node %u is not in corosync's nodelist; using the host name \"%s\"", node_id, host);
        }
        if (!d->backend && !streq(d->config.backend, "none")) {
                int r = backend_load(&d->config, d->node_name, &d->backend);
                if (r < 0) {
                        log_crit("The configured backend \"%s\" cannot be used; stopping", d->config.backend);
                        sd_event_exit(d->event, r);
                        return;
                }
        }
        if (!d->replica) {
                ClusterState *initial;
                load_initial_state(d, &initial);
                d->replica = replica_new(node_id, initial, &replica_callbacks, d);
                if (!d->replica) {
                        cluster_state_free(initial);
                        log_crit("Out of memory creating the replica");
                        sd_event_exit(d->event, -ENOMEM);
                        return;
                }
                replica_set_votes(d->replica, d->node_votes, d->quorum_votes);
        }
        bus_emit_changes(d);
}

static void on_ring_disconnected(Ring *ring, void *userdata) {
        Daemon *d = userdata;

        d->corosync_quorate = false;
        if (d->replica) {
                replica_set_corosync_quorate(d->replica, false);
                replica_detach(d->replica);
        }
}

static void on_ring_confchg(Ring *ring, const uint32_t *members, size_t n, void *userdata) {
        Daemon *d = userdata;
        if (d->replica)
                replica_confchg(d->replica, members, n);
}

static void on_ring_deliver(Ring *ring, uint32_t node_id, const void *buf, size_t len, void *userdata) {
        Daemon *d = userdata;
        int r;

        if (!d->replica)
                return;
        r = replica_deliver(d->replica, node_id, buf, len);
        if (r == -EPROTONOSUPPORT)
                log_error("Dropped a frame of %zu bytes from node %u: it speaks a newer protocol than %u; upgrade this node",
                          len, node_id, FERRY_PROTOCOL_VERSION);
        else if (r == -EPERM)
                log_error("Dropped a frame from node %u that claims to come from another node", node_id);
        else if (r < 0)
                log_error_errno(r, "Dropped a malformed frame of %zu bytes from node %u: %m", len, node_id);
}

static void on_ring_quorum(Ring *ring, bool quorate, uint32_t node_votes, uint32_t quorum_votes, void *userdata) {
        Daemon *d = userdata;

        d->corosync_quorate = quorate;
        d->node_votes = node_votes;
        d->quorum_votes = quorum_votes;
        if (d->replica) {
                replica_set_votes(d->replica, node_votes, quorum_votes);
                replica_set_corosync_quorate(d->replica, quorate);
        }
}

static const RingCallbacks ring_callbacks = {
        .connected = on_ring_connected,
        .disconnected = on_ring_disconnected,
        .confchg = on_ring_confchg,
        .deliver = on_ring_deliver,
        .quorum = on_ring_quorum,
};

/* ---- signals and main ------------------------------------------------------ */

static int on_sigusr1(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        int r = log_dump_blackbox(d->config.state_dir);
        if (r < 0)
                log_error_errno(r, "Failed to write the blackbox: %m");
        return 0;
}

static void on_fatal_signal(int sig) {
        /* Not async-signal-safe, like corosync's own handler: on a crash the
         * flight recorder is worth the risk. */
        (void) qb_log_blackbox_write_to_file(FERRY_STATE_DIR "/ferryd-blackbox-crash");
        signal(sig, SIG_DFL);
        raise(sig);
}

static void config_error(const char *file, unsigned line, const char *message, void *userdata) {
        if (line > 0)
                fprintf(stderr, "%s:%u: %s\n", file, line, message);
        else
                fprintf(stderr, "%s: %s\n", file, message);
}

static void reload_error(const char *file, unsigned line, const char *message, void *userdata) {
        if (line > 0)
                log_error("%s:%u: %s", file, line, message);
        else
                log_error("%s: %s", file, message);
}

/* SIGHUP (systemctl reload ferryd): read the configuration again; keys
 * that can change at run time take effect at once, the others are named
 * and wait for a restart. A configuration with an error changes nothing. */
static int on_sighup(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        FerryConfig next;
        char restart[256];
        int r;

        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading the configuration");
        config_init_defaults(&next);
        r = config_load_file(&next, d->config_path, reload_error, NULL);
        if (r == -ENOENT && !d->config_explicit)
                r = 0;
        if (r < 0)
                log_error("Reloading \"%s\" failed (%s): the configuration in force stays as it was", d->config_path,
                          r == -EINVAL ? "invalid, see above" : strerror(-r));
        else {
                r = config_reload(&d->config, &next, restart, sizeof(restart));
                log_set_level(d->config.log_level);
                log_notice("Reloaded \"%s\": %d setting(s) changed%s%s%s", d->config_path, r,
                           *restart ? "; these need a restart to change: " : "", restart, "");
                /* Reserve, limits and the migration address are in the facts. */
                publish_facts(d, true);
        }
        config_done(&next);
        (void) sd_notify(false, "READY=1\nSTATUS=Running");
        return 0;
}

static void help(void) {
        printf("Usage: ferryd [OPTIONS]\n\n"
               "The ferry cluster daemon: joins the corosync ring, keeps the replicated\n"
               "cluster state and serves %s on the system bus.\n\n"
               "  -c, --config=PATH   configuration file (default %s)\n"
               "      --check-config  check the configuration, print every error, exit\n"
               "  -d, --debug         log at debug level (overrides log_level)\n"
               "  -f, --foreground    accepted for compatibility; ferryd never forks\n"
               "  -h, --help          this help\n"
               "      --version       print the version\n",
               FERRY_BUS_NAME, FERRY_CONFIG_FILE);
}

int main(int argc, char *argv[]) {
        enum { ARG_CHECK_CONFIG = 0x100, ARG_VERSION };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "check-config", no_argument, NULL, ARG_CHECK_CONFIG },
                { "debug", no_argument, NULL, 'd' },
                { "foreground", no_argument, NULL, 'f' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, ARG_VERSION },
                {}
        };
        Daemon daemon = {}, *d = &daemon;
        const char *config_path = FERRY_CONFIG_FILE;
        bool explicit_config = false, check_only = false, debug = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "c:dfh", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config_path = optarg;
                        explicit_config = true;
                        break;
                case ARG_CHECK_CONFIG:
                        check_only = true;
                        break;
                case 'd':
                        debug = true;
                        break;
                case 'f':
                        break;
                case 'h':
                        help();
                        return EXIT_SUCCESS;
                case ARG_VERSION:
                        printf("ferryd %s (protocol %d)\n", FERRY_VERSION, FERRY_PROTOCOL_VERSION);
                        return EXIT_SUCCESS;
                default:
                        return EXIT_FAILURE;
                }
        if (optind < argc) {
                fprintf(stderr, "ferryd: unexpected argument \"%s\"\n", argv[optind]);
                return EXIT_FAILURE;
        }

        config_init_defaults(&d->config);
        r = config_load_file(&d->config, config_path, config_error, NULL);
        if (r == -ENOENT && !explicit_config)
                r = 0;  /* no file: defaults */
        else if (r == -ENOENT)
                fprintf(stderr, "ferryd: configuration file \"%s\" does not exist\n", config_path);
        else if (r < 0 && r != -EINVAL)
                fprintf(stderr, "ferryd: cannot read \"%s\": %s\n", config_path, strerror(-r));
        else if (r < 0)
                fprintf(stderr, "ferryd: configuration \"%s\" is invalid\n", config_path);
        if (r < 0) {
                config_done(&d->config);
                return EXIT_FAILURE;
        }
        d->config_path = strdup(config_path);
        d->config_explicit = explicit_config;
        if (!d->config_path) {
                config_done(&d->config);
                fprintf(stderr, "ferryd: out of memory\n");
                return EXIT_FAILURE;
        }
        if (check_only) {
                printf("%s: OK\n", config_path);
                config_done(&d->config);
                free(d->config_path);
                return EXIT_SUCCESS;
        }

        log_setup("ferryd", d->config.log_syslog);
        log_set_level(debug ? LOG_DEBUG : d->config.log_level);
        log_info("ferryd %s starting (protocol %d, config \"%s\")", FERRY_VERSION, FERRY_PROTOCOL_VERSION, config_path);

        signal(SIGSEGV, on_fatal_signal);
        signal(SIGBUS, on_fatal_signal);
        signal(SIGABRT, on_fatal_signal);

        if (mkdir(d->config.state_dir, 0750) < 0 && errno != EEXIST) {
                r = log_error_errno(errno, "Failed to create the state directory \"%s\": %m", d->config.state_dir);
                goto finish;
        }

        r = sd_event_default(&d->event);
        if (r < 0) {
                log_error_errno(r, "Failed to create the event loop: %m");
                goto finish;
        }
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGUSR1);
        sigaddset(&mask, SIGHUP);
        sigprocmask(SIG_BLOCK, &mask, NULL);
        (void) sd_event_add_signal(d->event, NULL, SIGTERM, NULL, NULL);
        (void) sd_event_add_signal(d->event, NULL, SIGINT, NULL, NULL);
        (void) sd_event_add_signal(d->event, NULL, SIGUSR1, on_sigusr1, d);
        (void) sd_event_add_signal(d->event, NULL, SIGHUP, on_sighup, d);
        /* Pings the service manager's watchdog from the loop when
         * WATCHDOG_USEC is set, so a wedged loop gets us restarted. */
        (void) sd_event_set_watchdog(d->event, true);

        r = bus_setup(d);
        if (r < 0)
                goto finish;

        r = ring_new(d->event, FERRY_CPG_GROUP, &ring_callbacks, d, &d->ring);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the corosync connection: %m");
                goto finish;
        }
        ring_start(d->ring);

        r = sd_event_add_time_relative(d->event, &d->facts_timer, CLOCK_MONOTONIC,
                                       (uint64_t) d->config.facts_interval_sec * 1000000ULL, 0, on_facts_timer, d);
        if (r >= 0)
                (void) sd_event_source_set_enabled(d->facts_timer, SD_EVENT_ON);
        r = sd_event_add_time_relative(d->event, &d->inventory_timer, CLOCK_MONOTONIC,
                                       (uint64_t) d->config.inventory_interval_sec * 1000000ULL, 0, on_inventory_timer, d);
        if (r >= 0)
                (void) sd_event_source_set_enabled(d->inventory_timer, SD_EVENT_ON);
        r = balancer_new(d, &d->balancer);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the balancer: %m");
                goto finish;
        }
        r = volume_manager_new(d, &d->volumes);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the volume manager: %m");
                goto finish;
        }
        r = runner_new(d, &d->runner);
        if (r < 0) {
                log_error_errno(r, "Failed to set up the migration runner: %m");
                goto finish;
        }

        (void) sd_notify(false, "STATUS=Joining the cluster");
        r = sd_event_loop(d->event);
        if (r < 0)
                log_error_errno(r, "Event loop failed: %m");
        else
                log_info("ferryd stopping");

finish:
        (void) sd_notify(false, "STOPPING=1");
        /* Fail whatever is still waiting: the callers should hear why. */
        while (d->pending_calls)
                (void) finish_pending_call(d, d->pending_calls->seq, -ETIME);
        if (d->replica && d->persist_timer)
                (void) on_persist_timer(d->persist_timer, 0, d);
        d->persist_timer = sd_event_source_disable_unref(d->persist_timer);
        d->facts_timer = sd_event_source_disable_unref(d->facts_timer);
        d->inventory_timer = sd_event_source_disable_unref(d->inventory_timer);
        d->runner = runner_free(d->runner);
        d->volumes = volume_manager_free(d->volumes);
        d->balancer = balancer_free(d->balancer);
        free(d->drain_seqs);
        d->backend = backend_free(d->backend);
        d->ring = ring_free(d->ring);
        d->replica = replica_free(d->replica);
        bus_done(d);
        d->event = sd_event_unref(d->event);
        free(d->node_name);
        free(d->config_path);
        config_done(&d->config);
        log_shutdown();
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
