/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The replication protocol against a simulated CPG.
 *
 * The simulation gives the guarantees corosync's CPG gives (extended
 * virtual synchrony): inside a configuration every member delivers the same
 * frames in the same order; at a membership change, the members that move
 * together from an old configuration into a new one deliver the same prefix
 * of the old configuration's frames still in flight, then the new
 * configuration. On top of that it picks random histories: proposals from
 * random members, partitions, merges, crashes and restarts.
 *
 * Checked after every step:
 *   - members of one configuration hold the same mode, epoch and digest;
 *   - a configuration without a quorum of votes applies nothing;
 *   - one (generation, commit counter) pair means one digest, across all
 *     replicas and all time (no two histories under one name);
 * and at the end, after healing everything: one configuration, synced, one
 * digest, and every change whose proposer was told "committed" is in it. */

#include <errno.h>
#include <stdint.h>

#include "macro.h"
#include "replica.h"
#include "test-util.h"

#define MAX_NODES 7
#define MAX_FRAMES 4096
#define HISTORY_MAX 8192
#define LOG_MAX 4096

typedef struct Applied {
        uint32_t sender;
        uint64_t seq;
} Applied;

/* What a replica applied, in order; replaced when a sync adopts a state. */
typedef struct Log {
        Applied entries[LOG_MAX];
        size_t n;
} Log;

typedef struct Frame {
        uint32_t sender;
        size_t len;
        uint8_t *data;
} Frame;

typedef struct Group {
        uint32_t members[MAX_NODES];    /* node ids, in this configuration */
        size_t n;
        Frame frames[MAX_FRAMES];       /* sent, not yet delivered */
        size_t n_frames;
} Group;

typedef struct Sim {
        size_t n_nodes;
        Replica *replica[MAX_NODES + 1];        /* by node id; NULL while crashed */
        ClusterState *saved[MAX_NODES + 1];     /* what a crashed node restarts from */
        int group_of[MAX_NODES + 1];            /* -1 while crashed */
        Group groups[MAX_NODES];
        uint64_t rng;
        uint32_t sending_node;                  /* whose send() is running */

        Log *log[MAX_NODES + 1];
        Log *saved_log[MAX_NODES + 1];
        Applied confirmed[LOG_MAX];
        size_t n_confirmed;

        /* The digest each (generation, commit) pair had. */
        uint64_t history_generation[HISTORY_MAX];
        uint64_t history_commit[HISTORY_MAX];
        char history_digest[HISTORY_MAX][STATE_DIGEST_HEX_SIZE];
        size_t n_history;

        unsigned applied, refused, stale, proposals;
} Sim;

static Sim *sim;        /* callbacks find the simulation through this */

static uint64_t rnd(void) {
        /* xorshift64*: deterministic per seed, so a failure is replayable. */
        sim->rng ^= sim->rng >> 12;
        sim->rng ^= sim->rng << 25;
        sim->rng ^= sim->rng >> 27;
        return sim->rng * UINT64_C(2685821657736338717);
}

static unsigned rnd_below(unsigned n) {
        return (unsigned) (rnd() % n);
}

static size_t quorum(void) {
        return sim->n_nodes / 2 + 1;
}

static int sim_send(const void *buf, size_t len, void *userdata) {
        uint32_t node = (uint32_t) (uintptr_t) userdata;
        int g = sim->group_of[node];
        CHECK(g >= 0);
        Group *grp = &sim->groups[g];
        CHECK(grp->n_frames < MAX_FRAMES);
        Frame *f = &grp->frames[grp->n_frames++];
        f->sender = node;
        f->len = len;
        f->data = malloc(len);
        CHECK(f->data);
        memcpy(f->data, buf, len);
        return 0;
}

static void sim_proposal_done(uint64_t seq, int result, void *userdata) {
        uint32_t node = (uint32_t) (uintptr_t) userdata;
        if (result > 0) {
                sim->applied++;
                CHECK(sim->n_confirmed < LOG_MAX);
                sim->confirmed[sim->n_confirmed++] = (Applied) { node, seq };
        } else if (result == -ESTALE || result == -ENOLINK || result == -ETIME)
                sim->stale++;
        else
                sim->refused++;
}

static void sim_applied(uint32_t sender, uint64_t seq, int result, void *userdata) {
        uint32_t node = (uint32_t) (uintptr_t) userdata;
        Log *l = sim->log[node];
        if (result <= 0)
                return;
        CHECK(l->n < LOG_MAX);
        l->entries[l->n++] = (Applied) { sender, seq };
}

static void sim_adopted(uint32_t leader, void *userdata) {
        uint32_t node = (uint32_t) (uintptr_t) userdata;
        CHECK(sim->log[leader]);
        *sim->log[node] = *sim->log[leader];
}

static void sim_changed(void *userdata) {
}

static const ReplicaCallbacks callbacks = {
        .send = sim_send,
        .proposal_done = sim_proposal_done,
        .changed = sim_changed,
        .applied = sim_applied,
        .adopted = sim_adopted,
};

static Replica *start_replica(uint32_t id, ClusterState *initial) {
        if (!sim->log[id]) {
                sim->log[id] = sim->saved_log[id] ? sim->saved_log[id] : calloc(1, sizeof(Log));
                sim->saved_log[id] = NULL;
                CHECK(sim->log[id]);
        }
        Replica *r = replica_new(id, initial, &callbacks, (void *) (uintptr_t) id);
        CHECK(r);
        replica_set_votes(r, 1, (uint32_t) quorum());
        return r;
}

static void deliver_frame_to(Group *g, const Frame *f, const uint32_t *to, size_t n_to) {
        for (size_t i = 0; i < n_to; i++) {
                Replica *r = sim->replica[to[i]];
                if (!r)
                        continue;
                int k = replica_deliver(r, f->sender, f->data, f->len);
                CHECK_EQ_INT(k, 0);
        }
}

static void drop_frames(Group *g, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(g->frames[i].data);
        memmove(g->frames, g->frames + n, (g->n_frames - n) * sizeof(Frame));
        g->n_frames -= n;
}

/* Delivers the oldest in-flight frame of a group to all its members. */
static bool deliver_one(Group *g) {
        if (g->n_frames == 0)
                return false;
        Frame f = g->frames[0];
        /* Remove first: delivery may queue new frames into this group. */
        memmove(g->frames, g->frames + 1, (g->n_frames - 1) * sizeof(Frame));
        g->n_frames--;
        deliver_frame_to(g, &f, g->members, g->n);
        free(f.data);
        return true;
}

static void set_corosync_quorum(void) {
        for (int gi = 0; gi < MAX_NODES; gi++) {
                Group *g = &sim->groups[gi];
                for (size_t i = 0; i < g->n; i++)
                        replica_set_corosync_quorate(sim->replica[g->members[i]], g->n >= quorum());
        }
}

/* Moves to a new assignment of nodes to groups (-1 = crashed), with EVS
 * delivery of the frames in flight. */
static void change_membership(const int *new_group_of) {
        Group old[MAX_NODES];

        memcpy(old, sim->groups, sizeof(old));
        memset(sim->groups, 0, sizeof(sim->groups));

        /* Transitional deliveries: for every old group and every new group,
         * the survivors that move together deliver one common prefix. */
        for (int og = 0; og < MAX_NODES; og++) {
                Group *o = &old[og];
                if (o->n == 0 && o->n_frames == 0)
                        continue;
                for (int ng = 0; ng < MAX_NODES; ng++) {
                        uint32_t together[MAX_NODES];
                        size_t nt = 0;
                        for (size_t i = 0; i < o->n; i++)
                                if (new_group_of[o->members[i]] == ng)
                                        together[nt++] = o->members[i];
                        if (nt == 0 || o->n_frames == 0)
                                continue;
                        size_t prefix = rnd_below((unsigned) o->n_frames + 1);
                        for (size_t k = 0; k < prefix; k++) {
                                /* Frames sent during these deliveries belong to
                                 * the old configuration and are lost with it. */
                                Frame f = o->frames[k];
                                for (size_t i = 0; i < nt; i++) {
                                        Replica *r = sim->replica[together[i]];
                                        if (r)
                                                CHECK_EQ_INT(replica_deliver(r, f.sender, f.data, f.len), 0);
                                }
                        }
                }
                drop_frames(o, o->n_frames);
        }
        /* Frames sent while delivering transitional frames went into the
         * (cleared) new groups through group_of, which still points at the
         * old layout; discard them, as CPG would. */
        for (int g = 0; g < MAX_NODES; g++)
                drop_frames(&sim->groups[g], sim->groups[g].n_frames);
        memset(sim->groups, 0, sizeof(sim->groups));

        for (uint32_t id = 1; id <= sim->n_nodes; id++) {
                sim->group_of[id] = new_group_of[id];
                if (new_group_of[id] < 0) {
                        if (sim->replica[id]) {
                                /* Crash: keep what a state file would hold. */
                                cluster_state_free(sim->saved[id]);
                                CHECK_EQ_INT(cluster_state_copy(replica_state(sim->replica[id]), &sim->saved[id]), 0);
                                sim->replica[id] = replica_free(sim->replica[id]);
                                sim->saved_log[id] = sim->log[id];
                                sim->log[id] = NULL;
                        }
                        continue;
                }
                if (!sim->replica[id]) {
                        sim->replica[id] = start_replica(id, sim->saved[id]);
                        sim->saved[id] = NULL;
                }
                Group *g = &sim->groups[new_group_of[id]];
                g->members[g->n++] = id;
        }
        set_corosync_quorum();
        for (int g = 0; g < MAX_NODES; g++)
                for (size_t i = 0; i < sim->groups[g].n; i++)
                        replica_confchg(sim->replica[sim->groups[g].members[i]], sim->groups[g].members, sim->groups[g].n);
}

static void random_membership(void) {
        int layout[MAX_NODES + 1];
        unsigned kind = rnd_below(5);

        for (uint32_t id = 1; id <= sim->n_nodes; id++)
                layout[id] = sim->group_of[id];
        switch (kind) {
        case 0: /* heal everything */
                for (uint32_t id = 1; id <= sim->n_nodes; id++)
                        layout[id] = 0;
                break;
        case 1: /* random partition into up to 3 groups */
                for (uint32_t id = 1; id <= sim->n_nodes; id++)
                        layout[id] = (int) rnd_below(3);
                break;
        case 2: { /* crash or restart one node */
                uint32_t id = 1 + rnd_below((unsigned) sim->n_nodes);
                layout[id] = layout[id] < 0 ? (int) rnd_below(3) : -1;
                break;
        }
        case 3: { /* a majority and a minority, the common real-world split */
                size_t n_minority = 1 + rnd_below((unsigned) (sim->n_nodes - 1) / 2 + 1);
                for (uint32_t id = 1; id <= sim->n_nodes; id++)
                        if (layout[id] >= 0)
                                layout[id] = 0;
                for (size_t k = 0; k < n_minority; k++)
                        layout[1 + rnd_below((unsigned) sim->n_nodes)] = 1;
                break;
        }
        default: { /* move one node to another group */
                uint32_t id = 1 + rnd_below((unsigned) sim->n_nodes);
                layout[id] = (int) rnd_below(3);
                break;
        }
        }
        change_membership(layout);
}

static void random_proposal(void) {
        uint32_t id = 1 + rnd_below((unsigned) sim->n_nodes);
        Replica *r = sim->replica[id];
        Command c = {};
        char name[16];          /* c points to it until replica_propose() */

        if (!r)
                return;
        const ClusterState *s = replica_state(r);
        if (s->n_nodes == 0 || rnd_below(3) == 0) {
                snprintf(name, sizeof(name), "node%u", id);
                c.type = COMMAND_NODE_FACTS;
                c.node_facts.node = id;
                c.node_facts.facts = (NodeFacts) {
                        .name = name, .daemon_version = (char *) "1", .protocol_version = 1,
                        .cpu_vendor = (char *) "v", .cpu_model = (char *) "m", .cpu_features = (char *) "",
                        .cpus = 1, .memory_total = 100, .memory_free = rnd_below(100),
                        .hypervisor_name = (char *) "none", .hypervisor_version = (char *) "",
                };
        } else {
                c.type = COMMAND_SET_MAINTENANCE;
                c.set_maintenance.node = s->nodes[rnd_below((unsigned) s->n_nodes)].id;
                c.set_maintenance.enabled = rnd_below(2);
        }
        uint64_t seq;
        int k = replica_propose(r, &c, &seq);
        if (k == 0)
                sim->proposals++;
        else {
                /* Refused locally only for the documented reasons, and never
                 * while the replica is synced in a quorate epoch. */
                CHECK(k == -ENOTCONN || k == -EAGAIN || k == -ENOLINK);
                CHECK(!replica_quorate(r));
        }
}

static void record_history(Replica *r) {
        const ClusterState *s = replica_state(r);
        for (size_t i = 0; i < sim->n_history; i++)
                if (sim->history_commit[i] == s->commit && sim->history_generation[i] == s->generation) {
                        if (strcmp(sim->history_digest[i], replica_digest(r)) != 0) {
                                fprintf(stderr, "two histories at generation %llu commit %llu: %s vs %s\n",
                                        (unsigned long long) s->generation, (unsigned long long) s->commit,
                                        sim->history_digest[i], replica_digest(r));
                                exit(1);
                        }
                        return;
                }
        CHECK(sim->n_history < HISTORY_MAX);
        sim->history_commit[sim->n_history] = s->commit;
        sim->history_generation[sim->n_history] = s->generation;
        memcpy(sim->history_digest[sim->n_history], replica_digest(r), STATE_DIGEST_HEX_SIZE);
        sim->n_history++;
}

static uint64_t group_max_commit(const Group *g) {
        uint64_t m = 0;
        for (size_t i = 0; i < g->n; i++)
                m = MAX(m, replica_state(sim->replica[g->members[i]])->commit);
        return m;
}

/* max_before: per group, the highest commit before a step that did not
 * change the membership (NULL after a membership change, when the group
 * indices no longer name the same members). */
static void check_invariants(const uint64_t *max_before) {
        for (int gi = 0; gi < MAX_NODES; gi++) {
                Group *g = &sim->groups[gi];
                if (g->n == 0)
                        continue;
                Replica *first = sim->replica[g->members[0]];
                for (size_t i = 0; i < g->n; i++) {
                        Replica *r = sim->replica[g->members[i]];
                        CHECK_EQ_INT(replica_mode(r), replica_mode(first));
                        CHECK(replica_epoch(r) == replica_epoch(first));
                        if (replica_mode(r) == REPLICA_SYNCED)
                                CHECK_STREQ(replica_digest(r), replica_digest(first));
                        record_history(r);
                }
                if (replica_mode(first) == REPLICA_SYNCED)
                        CHECK_EQ_INT(replica_epoch_quorate(first), g->n >= quorum());
                if (max_before && g->n < quorum())
                        CHECK(group_max_commit(g) <= max_before[gi]);
        }
}

static void snapshot_max(uint64_t *out) {
        for (int gi = 0; gi < MAX_NODES; gi++)
                out[gi] = sim->groups[gi].n ? group_max_commit(&sim->groups[gi]) : 0;
}

static void drain_all(void) {
        for (unsigned guard = 0; guard < 100000; guard++) {
                bool any = false;
                for (int g = 0; g < MAX_NODES; g++)
                        any |= deliver_one(&sim->groups[g]);
                if (!any)
                        return;
        }
        CHECK(!"frames kept coming");
}

/* A simulation of n nodes, all up and in one configuration, synced. */
static void sim_begin(Sim *s, size_t n_nodes, uint64_t seed) {
        int layout[MAX_NODES + 1] = {};

        *s = (Sim) { .n_nodes = n_nodes, .rng = seed };
        sim = s;
        for (uint32_t id = 0; id <= MAX_NODES; id++)
                s->group_of[id] = -1;
        change_membership(layout);
        drain_all();
}

static void sim_end(Sim *s) {
        for (uint32_t id = 1; id <= s->n_nodes; id++) {
                replica_free(s->replica[id]);
                cluster_state_free(s->saved[id]);
                free(s->log[id]);
                free(s->saved_log[id]);
        }
        for (int g = 0; g < MAX_NODES; g++)
                drop_frames(&s->groups[g], s->groups[g].n_frames);
        sim = NULL;
}

static unsigned long total_confirmed, total_stale;

static void run_history(uint64_t seed, size_t n_nodes, unsigned steps) {
        Sim s = { .n_nodes = n_nodes, .rng = seed * 2654435761u + 1 };
        int layout[MAX_NODES + 1];
        uint64_t before[MAX_NODES];

        sim = &s;
        for (uint32_t id = 0; id <= MAX_NODES; id++)
                s.group_of[id] = -1;
        for (uint32_t id = 1; id <= n_nodes; id++)
                layout[id] = 0;
        change_membership(layout);

        /* Some histories deliver eagerly, some let frames pile up so that
         * membership changes catch many of them in flight. */
        unsigned deliver_weight = 4 + (unsigned) (seed % 9);
        for (unsigned step = 0; step < steps; step++) {
                unsigned what = rnd_below(deliver_weight + 8);
                snapshot_max(before);
                if (what < deliver_weight) {
                        int g = (int) rnd_below(MAX_NODES);
                        (void) deliver_one(&s.groups[g]);
                        check_invariants(before);
                } else if (what < deliver_weight + 6) {
                        random_proposal();
                        check_invariants(before);
                } else {
                        random_membership();
                        check_invariants(NULL);
                }
        }

        /* Heal: everyone up, one group, everything delivered. */
        for (uint32_t id = 1; id <= n_nodes; id++)
                layout[id] = 0;
        change_membership(layout);
        drain_all();
        check_invariants(NULL);
        /* A few proposals after the heal must commit everywhere. */
        for (int i = 0; i < 5; i++)
                random_proposal();
        drain_all();
        check_invariants(before);

        Replica *first = s.replica[1];
        for (uint32_t id = 1; id <= n_nodes; id++) {
                Replica *r = s.replica[id];
                CHECK_EQ_INT(replica_mode(r), REPLICA_SYNCED);
                CHECK(replica_quorate(r));
                CHECK_EQ_INT(replica_n_members(r), n_nodes);
                CHECK_STREQ(replica_digest(r), replica_digest(first));
        }
        /* Everything a proposer was told was committed survived. */
        for (size_t i = 0; i < s.n_confirmed; i++) {
                bool found = false;
                for (size_t k = 0; k < s.log[1]->n && !found; k++)
                        found = s.log[1]->entries[k].sender == s.confirmed[i].sender &&
                                s.log[1]->entries[k].seq == s.confirmed[i].seq;
                if (!found) {
                        fprintf(stderr, "seed %llu: confirmed proposal %llu of node %u was lost\n",
                                (unsigned long long) seed, (unsigned long long) s.confirmed[i].seq, s.confirmed[i].sender);
                        exit(1);
                }
        }
        total_confirmed += s.n_confirmed;
        total_stale += s.stale;

        sim_end(&s);
}

static void test_three_nodes_form_and_commit(void) {
        Sim s;

        sim_begin(&s, 3, 1);
        for (uint32_t id = 1; id <= 3; id++) {
                CHECK_EQ_INT(replica_mode(s.replica[id]), REPLICA_SYNCED);
                CHECK(replica_quorate(s.replica[id]));
        }
        /* Node 2 publishes, node 1 sets node 2 in maintenance. */
        Command c = { .type = COMMAND_NODE_FACTS };
        c.node_facts.node = 2;
        c.node_facts.facts = (NodeFacts) { .name = (char *) "node2" };
        CHECK_EQ_INT(replica_propose(s.replica[2], &c, NULL), 0);
        drain_all();
        Command m = { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = 2, .enabled = true } };
        CHECK_EQ_INT(replica_propose(s.replica[1], &m, NULL), 0);
        drain_all();
        for (uint32_t id = 1; id <= 3; id++) {
                CHECK_EQ_INT(replica_state(s.replica[id])->commit, 2);
                CHECK(cluster_state_find_node(replica_state(s.replica[id]), 2)->maintenance);
        }
        CHECK_EQ_INT(s.applied, 2);

        /* Cut node 3: it is alone and not quorate; proposals are refused
         * locally and it commits nothing. */
        int cut[MAX_NODES + 1] = { 0, 0, 0, 1 };
        change_membership(cut);
        drain_all();
        CHECK(!replica_quorate(s.replica[3]));
        CHECK(replica_quorate(s.replica[1]));
        CHECK_EQ_INT(replica_propose(s.replica[3], &m, NULL), -ENOLINK);
        Command off = { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = 2, .enabled = false } };
        CHECK_EQ_INT(replica_propose(s.replica[1], &off, NULL), 0);
        drain_all();
        CHECK_EQ_INT(replica_state(s.replica[1])->commit, 3);
        CHECK_EQ_INT(replica_state(s.replica[3])->commit, 2);

        /* Heal: node 3 adopts the majority's newer state. */
        int heal[MAX_NODES + 1] = { 0, 0, 0, 0 };
        change_membership(heal);
        drain_all();
        CHECK_EQ_INT(replica_state(s.replica[3])->commit, 3);
        CHECK(!cluster_state_find_node(replica_state(s.replica[3]), 2)->maintenance);
        CHECK_STREQ(replica_digest(s.replica[3]), replica_digest(s.replica[1]));

        sim_end(&s);
}

static void test_proposal_in_flight_at_confchg_is_dropped_everywhere(void) {
        Sim s;

        sim_begin(&s, 3, 7);
        Command c = { .type = COMMAND_NODE_FACTS };
        c.node_facts.node = 1;
        c.node_facts.facts = (NodeFacts) { .name = (char *) "node1" };
        CHECK_EQ_INT(replica_propose(s.replica[1], &c, NULL), 0);
        /* Membership changes (node 3 restarts) before the proposal is
         * delivered: the new configuration must drop it on every member,
         * and the proposer hears -ESTALE. */
        Group *g = &s.groups[0];
        Frame pending = g->frames[0];
        g->frames[0].data = NULL;
        drop_frames(g, g->n_frames);
        int same[MAX_NODES + 1] = { 0, 0, 0, 0 };
        change_membership(same);
        unsigned stale_before = s.stale;
        (void) stale_before;
        /* Deliver the old frame after the confchg, as CPG may. */
        for (size_t i = 0; i < g->n; i++)
                CHECK_EQ_INT(replica_deliver(s.replica[g->members[i]], pending.sender, pending.data, pending.len), 0);
        free(pending.data);
        drain_all();
        for (uint32_t id = 1; id <= 3; id++)
                CHECK_EQ_INT(replica_state(s.replica[id])->commit, 0);
        CHECK_EQ_INT(s.applied, 0);
        CHECK(s.stale >= 1);
        sim_end(&s);
}

static void test_forged_sender_is_refused(void) {
        Sim s;

        sim_begin(&s, 2, 3);
        Command m = { .type = COMMAND_NODE_FACTS };
        m.node_facts.node = 1;
        m.node_facts.facts = (NodeFacts) { .name = (char *) "node1" };
        CHECK_EQ_INT(replica_propose(s.replica[1], &m, NULL), 0);
        Frame f = s.groups[0].frames[0];
        /* CPG says node 2 sent what claims to be node 1's frame. */
        CHECK_EQ_INT(replica_deliver(s.replica[2], 2, f.data, f.len), -EPERM);
        /* Garbage is refused without a crash. */
        uint8_t junk[64];
        for (size_t i = 0; i < sizeof(junk); i++)
                junk[i] = (uint8_t) (i * 37);
        for (size_t n = 0; n < sizeof(junk); n++)
                CHECK(replica_deliver(s.replica[2], 1, junk, n) < 0);
        CHECK_EQ_INT(replica_state(s.replica[2])->commit, 0);
        drain_all();
        sim_end(&s);
}

/* The case agreed (not safe) delivery allows: a proposal reaches only the
 * side of a split that holds the lowest node id, the other side is the
 * majority and commits on. The majority's change must win at the merge
 * (generation beats the tie on commit counters), and the minority's
 * proposer must not have been told "committed". */
static void test_stray_frame_in_minority_loses_to_majority(void) {
        Sim s;
        int split[MAX_NODES + 1] = { 0, 0, 1, 1 };

        int all[MAX_NODES + 1] = { 0, 0, 0, 0 };
        sim_begin(&s, 3, 11);

        Command p = { .type = COMMAND_NODE_FACTS };
        p.node_facts.node = 1;
        p.node_facts.facts = (NodeFacts) { .name = (char *) "node1" };
        CHECK_EQ_INT(replica_propose(s.replica[1], &p, NULL), 0);
        Group *g = &s.groups[0];
        CHECK_EQ_INT(g->n_frames, 1);
        Frame stray = g->frames[0];
        g->frames[0].data = NULL;
        drop_frames(g, 1);
        /* Delivered to node 1 only (transitional configuration {1}). */
        CHECK_EQ_INT(replica_deliver(s.replica[1], stray.sender, stray.data, stray.len), 0);
        free(stray.data);
        drop_frames(g, g->n_frames);    /* node 1's ack never gets out */
        CHECK_EQ_INT(replica_state(s.replica[1])->commit, 1);
        CHECK_EQ_INT(s.applied, 0);     /* not confirmed: one ack of two needed */

        change_membership(split);
        drain_all();
        CHECK_EQ_INT(s.stale, 1);       /* the proposer hears "unknown outcome" */
        CHECK(!replica_quorate(s.replica[1]));
        CHECK(replica_quorate(s.replica[2]));

        Command q = { .type = COMMAND_NODE_FACTS };
        q.node_facts.node = 2;
        q.node_facts.facts = (NodeFacts) { .name = (char *) "node2" };
        CHECK_EQ_INT(replica_propose(s.replica[2], &q, NULL), 0);
        drain_all();
        CHECK_EQ_INT(s.applied, 1);     /* confirmed by nodes 2 and 3 */
        CHECK_EQ_INT(replica_state(s.replica[2])->commit, 1);   /* same counter as node 1 */

        change_membership(all);
        drain_all();
        for (uint32_t id = 1; id <= 3; id++) {
                const ClusterState *st = replica_state(s.replica[id]);
                CHECK(cluster_state_find_node(st, 2) != NULL);  /* the confirmed change */
                CHECK(cluster_state_find_node(st, 1) == NULL);  /* the stray one is gone */
                CHECK_STREQ(replica_digest(s.replica[id]), replica_digest(s.replica[2]));
        }
        sim_end(&s);
}

static void test_random_histories(void) {
        unsigned histories = 0;
        for (uint64_t seed = 1; seed <= 300; seed++) {
                size_t n = 2 + (size_t) (seed % 6);     /* 2..7 nodes */
                run_history(seed, n, 400);
                histories++;
        }
        printf("# %u random histories of 400 steps on 2..7 nodes: %lu proposals confirmed, %lu ended by membership changes\n",
               histories, total_confirmed, total_stale);
        /* The histories must exercise both outcomes, or they prove little. */
        CHECK(total_confirmed > 1000);
        CHECK(total_stale > 100);
}

int main(void) {
        static const TestCase tests[] = {
                { "three nodes form, commit, partition, heal", test_three_nodes_form_and_commit },
                { "proposal in flight at a membership change is dropped everywhere", test_proposal_in_flight_at_confchg_is_dropped_everywhere },
                { "forged sender and garbage are refused", test_forged_sender_is_refused },
                { "a stray frame in a minority loses to the majority", test_stray_frame_in_minority_loses_to_majority },
                { "random histories keep replicas equal and quorum honest", test_random_histories },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
