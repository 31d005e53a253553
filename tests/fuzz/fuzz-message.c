/* SPDX-License-Identifier: GPL-2.0-or-later */

/* CPG frames into the replication protocol, through replica_deliver(): the
 * function ferryd's on_ring_deliver() hands every delivered frame to.
 *
 * Three replicas (nodes 1..3) run the real protocol against each other
 * through a small in-order CPG model; the input picks a starting point
 * (scenario) and then interleaves their own frames with membership changes
 * and injected frames, which every replica receives in the same order, as
 * CPG delivers them. Input format: fuzz-samples.h.
 *
 * Checked after every step, beyond "no crash, no leak, no UB":
 *   - replica_deliver() returns 0 or an error the daemon knows how to log;
 *   - each replica's cached digest is the digest of its state, and that
 *     state survives the canonical encoding (a sync could carry it);
 *   - replicas synced in the same epoch hold the same digest: frames
 *     delivered in one order, whatever they hold, never split them;
 * and for every injected frame whose header parses, the payload decoders
 * on their own: a proposal's command and a sync's state that decode must
 * encode back to exactly the payload (canonical form). */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fuzz-samples.h"
#include "message.h"
#include "replica.h"
#include "sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* replica_new() seeds its epoch counter from the clock; a fixed clock makes
 * every input replay identically (see FUZZ_EPOCH). */
time_t time(time_t *t) {
        if (t)
                *t = FUZZ_CLOCK;
        return FUZZ_CLOCK;
}

#define QUEUE_MAX 64

typedef struct Frame {
        uint32_t sender;
        size_t len;
        uint8_t *data;
} Frame;

typedef struct World {
        Replica *replica[FUZZ_NODES + 1];       /* by node id */
        Frame queue[QUEUE_MAX];                 /* sent by the replicas, not yet delivered */
        size_t n_queue;
        uint32_t sending;                       /* node whose callback runs */
} World;

static World world;
static bool verbose;

#define FAIL(...)                                                       \
        do {                                                            \
                fprintf(stderr, "fuzz-message: " __VA_ARGS__);          \
                fputc('\n', stderr);                                    \
                abort();                                                \
        } while (0)

static int world_send(const void *buf, size_t len, void *userdata) {
        uint32_t node = (uint32_t) (uintptr_t) userdata;

        if (world.n_queue >= QUEUE_MAX)
                return -EAGAIN;         /* like a full CPG send queue */
        Frame *f = &world.queue[world.n_queue];
        f->data = malloc(len);
        if (!f->data)
                return -ENOMEM;
        memcpy(f->data, buf, len);
        f->len = len;
        f->sender = node;
        world.n_queue++;
        return 0;
}

static void world_proposal_done(uint64_t seq, int result, void *userdata) {
}

static const ReplicaCallbacks callbacks = {
        .send = world_send,
        .proposal_done = world_proposal_done,
};

/* The encoding of each replica's state when it was last checked: most
 * steps change nothing, and SHA-256 is what the checks cost. */
static Writer checked[FUZZ_NODES + 1];
static char checked_digest[FUZZ_NODES + 1][STATE_DIGEST_HEX_SIZE];
static uint64_t checked_commit[FUZZ_NODES + 1];

static void check_replica(uint32_t id, bool full) {
        Replica *r = world.replica[id];
        char digest[STATE_DIGEST_HEX_SIZE];
        ClusterState *copy = NULL;
        Writer w, again;
        Reader in;

        /* Between full checks (at the end of the input), look again only
         * when the commit counter or the digest moved. */
        if (!full && checked[id].size > 0 && strcmp(replica_digest(r), checked_digest[id]) == 0 &&
            replica_state(r)->commit == checked_commit[id])
                return;
        writer_init(&w);
        if (cluster_state_encode(replica_state(r), &w) < 0)
                FAIL("node %u: its state does not encode", id);
        if (w.size == checked[id].size && memcmp(w.data, checked[id].data, w.size) == 0 &&
            strcmp(replica_digest(r), checked_digest[id]) == 0) {
                writer_done(&w);
                checked_commit[id] = replica_state(r)->commit;
                return;
        }
        sha256_hex(w.data, w.size, digest);
        if (strcmp(digest, replica_digest(r)) != 0)
                FAIL("node %u: cached digest %.16s, state digest %.16s: the state changed behind the replica's back",
                     id, replica_digest(r), digest);
        /* What a sync would carry must come out the same at the other end. */
        reader_init(&in, w.data, w.size);
        int k = cluster_state_decode(&in, &copy);
        if (k < 0)
                FAIL("node %u: its state does not survive the canonical encoding: %s", id, strerror(-k));
        writer_init(&again);
        if (cluster_state_encode(copy, &again) < 0 || again.size != w.size || memcmp(again.data, w.data, w.size) != 0)
                FAIL("node %u: its state encodes differently once decoded", id);
        writer_done(&again);
        cluster_state_free(copy);
        writer_done(&checked[id]);
        checked[id] = w;
        memcpy(checked_digest[id], digest, sizeof(digest));
        checked_commit[id] = replica_state(r)->commit;
}

static void check_world(bool full) {
        for (uint32_t a = 1; a <= FUZZ_NODES; a++) {
                check_replica(a, full);
                for (uint32_t b = a + 1; b <= FUZZ_NODES; b++) {
                        Replica *x = world.replica[a], *y = world.replica[b];
                        if (replica_mode(x) != REPLICA_SYNCED || replica_mode(y) != REPLICA_SYNCED ||
                            replica_epoch(x) != replica_epoch(y))
                                continue;
                        if (strcmp(replica_digest(x), replica_digest(y)) != 0)
                                FAIL("nodes %u and %u are synced in epoch %016llx with different states", a, b,
                                     (unsigned long long) replica_epoch(x));
                }
        }
}

static void deliver(uint32_t sender, const void *buf, size_t len) {
        for (uint32_t id = 1; id <= FUZZ_NODES; id++) {
                /* CPG delivers only to the members of the configuration. */
                if (!replica_is_member(world.replica[id], id))
                        continue;
                int k = replica_deliver(world.replica[id], sender, buf, len);
                if (verbose)
                        fprintf(stderr, "  node %u <- %s from %u (%zu bytes): %d, %s, commit %llu\n", id,
                                len >= 10 ? message_type_to_string((uint16_t) (((const uint8_t *) buf)[6] << 8 |
                                                                               ((const uint8_t *) buf)[7])) : "?",
                                sender, len, k, replica_mode_to_string(replica_mode(world.replica[id])),
                                (unsigned long long) replica_state(world.replica[id])->commit);
                if (k != 0 && k != -EBADMSG && k != -EPROTONOSUPPORT && k != -EPERM)
                        FAIL("node %u: replica_deliver() returned %d (%s)", id, k, strerror(-k));
        }
}

static bool loopback(void) {
        if (world.n_queue == 0)
                return false;
        Frame f = world.queue[0];
        memmove(&world.queue[0], &world.queue[1], (world.n_queue - 1) * sizeof(Frame));
        world.n_queue--;
        deliver(f.sender, f.data, f.len);
        free(f.data);
        return true;
}

static void drop_queue(void) {
        for (size_t i = 0; i < world.n_queue; i++)
                free(world.queue[i].data);
        world.n_queue = 0;
}

static void membership(uint8_t mask) {
        uint32_t members[FUZZ_NODES];
        size_t n = 0;

        if (mask & 0x80) {
                for (uint32_t id = 1; id <= FUZZ_NODES; id++)
                        if (mask & (1U << (id - 1))) {
                                replica_set_corosync_quorate(world.replica[id], false);
                                replica_detach(world.replica[id]);
                        }
                return;
        }

        for (uint32_t id = 1; id <= FUZZ_NODES; id++)
                if (mask & (1U << (id - 1)))
                        members[n++] = id;
        /* Frames of the old configuration that CPG had not delivered are
         * gone (extended virtual synchrony allows dropping the tail). */
        drop_queue();
        for (uint32_t id = 1; id <= FUZZ_NODES; id++) {
                replica_set_corosync_quorate(world.replica[id], n * 2 > FUZZ_NODES && (mask & (1U << (id - 1))));
                replica_confchg(world.replica[id], members, n);
        }
}

static void run_queue(void) {
        while (loopback())
                ;
}

static void world_setup(Scenario scenario) {
        static ClusterState *full, *older;
        ClusterState *initial[FUZZ_NODES + 1] = {};

        if (!full) {
                full = sample_state(SIZE_MAX);
                older = sample_state(12);
                if (!full || !older)
                        abort();
        }
        for (uint32_t id = 1; id <= FUZZ_NODES; id++) {
                const ClusterState *from = NULL;
                if (scenario == SCENARIO_SYNCED_FULL || scenario == SCENARIO_ACKING)
                        from = full;
                else if (scenario == SCENARIO_DIVERGED)
                        from = id == 1 ? full : older;
                if (from && cluster_state_copy(from, &initial[id]) < 0)
                        abort();
                world.replica[id] = replica_new(id, initial[id], &callbacks, (void *) (uintptr_t) id);
                if (!world.replica[id])
                        abort();
                replica_set_votes(world.replica[id], 1, FUZZ_NODES / 2 + 1);
        }
        membership(0x7);
        if (scenario == SCENARIO_SYNCED_EMPTY || scenario == SCENARIO_SYNCED_FULL || scenario == SCENARIO_ACKING)
                run_queue();
        if (scenario == SCENARIO_SYNCED_FULL || scenario == SCENARIO_ACKING) {
                Command c = { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = 1, .enabled = true } };
                uint64_t seq;
                if (replica_propose(world.replica[2], &c, &seq) < 0)
                        abort();
        }
        if (scenario == SCENARIO_ACKING)
                (void) loopback();
}

static void world_teardown(void) {
        drop_queue();
        for (uint32_t id = 1; id <= FUZZ_NODES; id++)
                writer_done(&checked[id]);
        for (uint32_t id = 1; id <= FUZZ_NODES; id++)
                world.replica[id] = replica_free(world.replica[id]);
}

/* The payload decoders on their own, on any frame whose header parses. */
static void check_decoders(const uint8_t *buf, size_t len) {
        MessageHeader h;
        Reader p;
        Writer w;

        if (message_parse(buf, len, &h, &p) < 0)
                return;
        const uint8_t *payload = p.p;
        size_t n = p.left;

        writer_init(&w);
        if (h.type == MESSAGE_PROPOSAL) {
                Command c;
                if (command_decode(&p, &c) == 0) {
                        if (command_encode(&c, &w) < 0)
                                FAIL("a decoded %s does not encode", command_type_to_string(c.type));
                        if (w.size != n || memcmp(w.data, payload, n) != 0)
                                FAIL("a decoded %s encodes to other bytes (%zu, was %zu)",
                                     command_type_to_string(c.type), w.size, n);
                        command_done(&c);
                }
        } else if (h.type == MESSAGE_SYNC_STATE) {
                ClusterState *s = NULL;
                if (cluster_state_decode(&p, &s) == 0) {
                        if (cluster_state_encode(s, &w) < 0)
                                FAIL("a decoded state does not encode");
                        if (w.size != n || memcmp(w.data, payload, n) != 0)
                                FAIL("a decoded state encodes to other bytes (%zu, was %zu)", w.size, n);
                        cluster_state_free(s);
                }
        }
        writer_done(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Reader in;

        if (size < 1)
                return 0;
        verbose = getenv("FUZZ_VERBOSE") != NULL;
        Scenario scenario = (Scenario) ((data[0] & 0x07) % _SCENARIO_MAX);
        uint32_t inject_as = (data[0] >> 4) & 3;

        world_setup(scenario);
        check_world(true);
        reader_init(&in, data + 1, size - 1);
        while (in.left >= 2) {
                uint16_t n = reader_get_u16(&in);
                if (n == FUZZ_OP_MEMBERSHIP) {
                        uint8_t mask = reader_get_u8(&in);
                        if (verbose)
                                fprintf(stderr, "membership %#x\n", mask);
                        membership(mask);
                } else if (n == FUZZ_OP_LOOPBACK) {
                        if (verbose)
                                fprintf(stderr, "loopback\n");
                        (void) loopback();
                } else {
                        size_t len = n < in.left ? n : in.left;
                        const uint8_t *frame = reader_get_bytes(&in, len);
                        /* A copy of exactly the frame: ASan then sees any
                         * read past its end. */
                        uint8_t *copy = malloc(len);
                        if (!copy)
                                break;
                        memcpy(copy, frame, len);
                        uint32_t sender = inject_as;
                        if (sender == 0 && len >= 12)
                                sender = (uint32_t) copy[8] << 24 | (uint32_t) copy[9] << 16 |
                                         (uint32_t) copy[10] << 8 | copy[11];
                        if (verbose)
                                fprintf(stderr, "inject %zu bytes as node %u\n", len, sender);
                        check_decoders(copy, len);
                        deliver(sender, copy, len);
                        free(copy);
                }
                check_world(false);
        }
        check_world(true);
        sample_derive(replica_state(world.replica[1]));
        world_teardown();
        return 0;
}
