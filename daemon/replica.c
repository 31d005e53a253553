/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "replica.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <syslog.h>
#include <time.h>

#include "macro.h"
#include "message.h"

/* corosync allows 128 CPG members; acks from more are ignored. */
#define CPG_MEMBERS_LIMIT 128

typedef struct Summary {
        bool received;
        uint64_t generation;            /* sender's sync generation */
        uint64_t state_generation;      /* generation of its last commit */
        uint64_t commit;
        char digest[STATE_DIGEST_HEX_SIZE];
        uint32_t node_votes;
        uint32_t quorum_votes;
} Summary;

/* An own proposal on its way: sent, then applied and collecting acks. */
typedef struct Pending {
        uint64_t seq;
        bool applied;
        uint32_t votes;                 /* of the members that acked so far */
        uint32_t ackers[CPG_MEMBERS_LIMIT];
        size_t n_ackers;
} Pending;

struct Replica {
        uint32_t self;
        ReplicaCallbacks cb;
        void *userdata;

        ClusterState *state;
        char digest[STATE_DIGEST_HEX_SIZE];

        ReplicaMode mode;
        uint32_t *members;              /* sorted ascending */
        size_t n_members;

        uint64_t epoch;                 /* 0: no SYNC_START seen in this configuration */
        uint32_t epoch_counter;         /* source of fresh epochs when we are designated */
        Summary *summaries;             /* parallel to members[] */
        bool awaiting_state;
        uint32_t leader;
        bool epoch_quorate;
        uint32_t epoch_quorum_votes;

        uint32_t node_votes;
        uint32_t quorum_votes;
        bool corosync_quorate;

        uint64_t generation;            /* of the last completed sync */

        uint64_t next_seq;
        Pending *pending;               /* own proposals not yet confirmed */
        size_t n_pending;
};

_printf_(3, 4)
static void notice(Replica *r, int priority, const char *fmt, ...) {
        char buf[512];
        va_list ap;

        if (!r->cb.notice)
                return;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        r->cb.notice(priority, buf, r->userdata);
}

static void changed(Replica *r) {
        if (r->cb.changed)
                r->cb.changed(r->userdata);
}

static void refresh_digest(Replica *r) {
        cluster_state_digest(r->state, r->digest);
}

Replica *replica_new(uint32_t self, ClusterState *initial, const ReplicaCallbacks *cb, void *userdata) {
        Replica *r = calloc(1, sizeof(Replica));
        if (!r)
                return NULL;
        r->self = self;
        r->cb = *cb;
        r->userdata = userdata;
        r->state = initial ? initial : cluster_state_new();
        if (!r->state) {
                free(r);
                return NULL;
        }
        r->mode = REPLICA_DETACHED;
        r->node_votes = 1;
        /* Epochs only need to differ from the ones this node handed out
         * before; starting from the clock keeps that true across restarts. */
        r->epoch_counter = (uint32_t) time(NULL);
        r->generation = r->state->generation;
        refresh_digest(r);
        return r;
}

Replica *replica_free(Replica *r) {
        if (!r)
                return NULL;
        cluster_state_free(r->state);
        free(r->members);
        free(r->summaries);
        free(r->pending);
        free(r);
        return NULL;
}

void replica_set_votes(Replica *r, uint32_t node_votes, uint32_t quorum_votes) {
        r->node_votes = node_votes;
        r->quorum_votes = quorum_votes;
}

void replica_set_corosync_quorate(Replica *r, bool quorate) {
        if (r->corosync_quorate == quorate)
                return;
        r->corosync_quorate = quorate;
        changed(r);
}

static void fail_pending(Replica *r, int error) {
        /* Take the list first: a callback may propose again. */
        Pending *pending = TAKE_PTR(r->pending);
        size_t n = r->n_pending;

        r->n_pending = 0;
        for (size_t i = 0; i < n; i++)
                if (r->cb.proposal_done)
                        r->cb.proposal_done(pending[i].seq, error, r->userdata);
        free(pending);
}

static Pending *find_pending(Replica *r, uint64_t seq) {
        for (size_t i = 0; i < r->n_pending; i++)
                if (r->pending[i].seq == seq)
                        return &r->pending[i];
        return NULL;
}

static void finish_pending(Replica *r, uint64_t seq, int result) {
        Pending *p = find_pending(r, seq);
        if (!p)
                return;
        *p = r->pending[--r->n_pending];
        if (r->cb.proposal_done)
                r->cb.proposal_done(seq, result, r->userdata);
}

static ssize_t member_index(const Replica *r, uint32_t node) {
        for (size_t i = 0; i < r->n_members; i++)
                if (r->members[i] == node)
                        return (ssize_t) i;
        return -1;
}

static int send_frame(Replica *r, Writer *w) {
        int k = message_end(w);
        if (k < 0)
                return k;
        return r->cb.send(w->data, w->size, r->userdata);
}

static void reset_sync(Replica *r) {
        r->epoch = 0;
        r->awaiting_state = false;
        r->leader = 0;
        r->epoch_quorate = false;
        r->epoch_quorum_votes = 0;
        if (r->summaries)
                memset(r->summaries, 0, r->n_members * sizeof(Summary));
}

static int compare_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
        return x < y ? -1 : x > y;
}

void replica_confchg(Replica *r, const uint32_t *members, size_t n_members) {
        uint32_t *m = NULL;
        Summary *s = NULL;
        size_t n = 0;

        if (n_members > 0) {
                m = calloc(n_members, sizeof(uint32_t));
                s = calloc(n_members, sizeof(Summary));
                if (!m || !s) {
                        free(m);
                        free(s);
                        notice(r, LOG_CRIT, "Out of memory tracking the membership; leaving the cluster view");
                        replica_detach(r);
                        return;
                }
                memcpy(m, members, n_members * sizeof(uint32_t));
                qsort(m, n_members, sizeof(uint32_t), compare_u32);
                /* One vote per node: a node id listed twice is collapsed. */
                for (size_t i = 0; i < n_members; i++)
                        if (n == 0 || m[n - 1] != m[i])
                                m[n++] = m[i];
        }

        free(r->members);
        free(r->summaries);
        r->members = m;
        r->summaries = s;
        r->n_members = n;
        reset_sync(r);

        /* What we proposed belongs to an epoch that just ended. Some members
         * may have applied it in the transitional configuration: the
         * outcome is unknown, not "nothing happened". */
        fail_pending(r, -ETIME);

        if (member_index(r, r->self) < 0) {
                r->mode = REPLICA_DETACHED;
                changed(r);
                return;
        }
        r->mode = REPLICA_SYNCING;
        changed(r);

        if (r->members[0] == r->self) {
                Writer w;
                uint64_t epoch = ((uint64_t) r->self << 32) | ++r->epoch_counter;

                writer_init(&w);
                message_begin(&w, MESSAGE_SYNC_START, r->self, epoch, 0);
                int k = send_frame(r, &w);
                writer_done(&w);
                if (k < 0)
                        notice(r, LOG_ERR, "Failed to send sync start: %s", strerror(-k));
        }
}

void replica_detach(Replica *r) {
        free(r->members);
        free(r->summaries);
        r->members = NULL;
        r->summaries = NULL;
        r->n_members = 0;
        reset_sync(r);
        fail_pending(r, -ETIME);
        r->mode = REPLICA_DETACHED;
        changed(r);
}

static void finish_sync(Replica *r) {
        uint64_t g = 0;

        /* Past every member's generation, so that what this configuration
         * commits outranks anything committed before it anywhere. */
        for (size_t i = 0; i < r->n_members; i++)
                g = MAX(g, r->summaries[i].generation);
        r->generation = g + 1;
        r->awaiting_state = false;
        r->mode = REPLICA_SYNCED;
        notice(r, LOG_INFO, "State sync of epoch %016llx complete: %zu members, %s, commit %llu, digest %.16s",
               (unsigned long long) r->epoch, r->n_members,
               r->epoch_quorate ? "quorate" : "NOT quorate",
               (unsigned long long) r->state->commit, r->digest);
        changed(r);
}

static void send_summary(Replica *r) {
        Writer w;

        writer_init(&w);
        message_begin(&w, MESSAGE_SYNC_SUMMARY, r->self, r->epoch, 0);
        writer_put_u64(&w, r->generation);
        writer_put_u64(&w, r->state->generation);
        writer_put_u64(&w, r->state->commit);
        writer_put_string(&w, r->digest);
        writer_put_u32(&w, r->node_votes);
        writer_put_u32(&w, r->quorum_votes);
        int k = send_frame(r, &w);
        writer_done(&w);
        if (k < 0)
                notice(r, LOG_ERR, "Failed to send sync summary: %s", strerror(-k));
}

static void send_state(Replica *r) {
        Writer w;

        writer_init(&w);
        message_begin(&w, MESSAGE_SYNC_STATE, r->self, r->epoch, 0);
        int k = cluster_state_encode(r->state, &w);
        if (k >= 0)
                k = send_frame(r, &w);
        writer_done(&w);
        if (k < 0)
                notice(r, LOG_ERR, "Failed to send full state for sync: %s", strerror(-k));
}

static int handle_sync_start(Replica *r, const MessageHeader *h, Reader *p) {
        if (reader_finish(p) < 0)
                return -EBADMSG;
        /* Only the designated member of the *current* configuration may open
         * an epoch; a SYNC_START from before the last change is stale. */
        if (r->n_members == 0 || h->sender != r->members[0] || h->epoch == 0)
                return 0;
        reset_sync(r);
        r->epoch = h->epoch;
        r->mode = REPLICA_SYNCING;
        /* Nothing proposed under an earlier epoch can be applied now. */
        fail_pending(r, -ETIME);
        send_summary(r);
        return 0;
}

static void resolve_summaries(Replica *r) {
        const Summary *lead = NULL;
        uint64_t votes = 0;
        uint32_t needed = 0;
        bool all_equal = true;

        for (size_t i = 0; i < r->n_members; i++) {
                const Summary *s = &r->summaries[i];
                /* Newest commit first, by (generation, counter); members[] is
                 * sorted, so a strict ">" breaks ties to the lowest id. */
                if (!lead || s->state_generation > lead->state_generation ||
                    (s->state_generation == lead->state_generation && s->commit > lead->commit)) {
                        lead = s;
                        r->leader = r->members[i];
                }
                votes += s->node_votes;
                needed = MAX(needed, s->quorum_votes);
        }
        for (size_t i = 0; i < r->n_members; i++)
                if (!streq(r->summaries[i].digest, lead->digest))
                        all_equal = false;

        r->epoch_quorum_votes = needed;
        r->epoch_quorate = needed > 0 && votes >= needed;

        if (all_equal) {
                finish_sync(r);
                return;
        }
        r->awaiting_state = true;
        notice(r, LOG_INFO, "Sync epoch %016llx: members disagree, adopting the state of node %u (commit %llu)",
               (unsigned long long) r->epoch, r->leader, (unsigned long long) lead->commit);
        if (r->leader == r->self)
                send_state(r);
}

static int handle_sync_summary(Replica *r, const MessageHeader *h, Reader *p) {
        Summary s = { .received = true };
        const char *digest;
        ssize_t i;

        s.generation = reader_get_u64(p);
        s.state_generation = reader_get_u64(p);
        s.commit = reader_get_u64(p);
        digest = reader_get_string(p);
        s.node_votes = reader_get_u32(p);
        s.quorum_votes = reader_get_u32(p);
        if (reader_finish(p) < 0 || strlen(digest) != STATE_DIGEST_HEX_SIZE - 1)
                return -EBADMSG;
        memcpy(s.digest, digest, STATE_DIGEST_HEX_SIZE);
        /* A single member cannot claim more than a handful of votes; cap it
         * so that a confused peer cannot make a minority quorate alone. */
        if (s.node_votes > 255)
                return -EBADMSG;

        if (r->mode != REPLICA_SYNCING || r->epoch == 0 || h->epoch != r->epoch || r->awaiting_state)
                return 0;
        i = member_index(r, h->sender);
        if (i < 0)
                return 0;
        r->summaries[i] = s;

        for (size_t k = 0; k < r->n_members; k++)
                if (!r->summaries[k].received)
                        return 0;
        resolve_summaries(r);
        return 0;
}

static int handle_sync_state(Replica *r, const MessageHeader *h, Reader *p) {
        ClusterState *s = NULL;
        char digest[STATE_DIGEST_HEX_SIZE];
        ssize_t li;
        int k;

        if (r->mode != REPLICA_SYNCING || !r->awaiting_state || h->epoch != r->epoch || h->sender != r->leader)
                return 0;
        k = cluster_state_decode(p, &s);
        if (k < 0)
                return k;
        cluster_state_digest(s, digest);
        li = member_index(r, r->leader);
        if (li < 0 || !streq(digest, r->summaries[li].digest)) {
                /* The leader's state does not match what it announced: a bug
                 * or corruption. Staying in SYNCING commits nothing; the next
                 * membership change retries. */
                notice(r, LOG_CRIT, "State from node %u does not match its announced digest; sync stalled",
                       h->sender);
                cluster_state_free(s);
                return -EBADMSG;
        }
        if (!streq(digest, r->digest)) {
                cluster_state_free(r->state);
                r->state = s;
                memcpy(r->digest, digest, sizeof(digest));
                if (r->cb.adopted)
                        r->cb.adopted(r->leader, r->userdata);
        } else
                cluster_state_free(s);
        finish_sync(r);
        return 0;
}

static void send_ack(Replica *r, uint32_t proposer, uint64_t seq) {
        Writer w;

        writer_init(&w);
        message_begin(&w, MESSAGE_ACK, r->self, r->epoch, 0);
        writer_put_u32(&w, proposer);
        writer_put_u64(&w, seq);
        int k = send_frame(r, &w);
        writer_done(&w);
        if (k < 0)
                notice(r, LOG_ERR, "Failed to acknowledge proposal %llu of node %u: %s",
                       (unsigned long long) seq, proposer, strerror(-k));
}

static int handle_proposal(Replica *r, const MessageHeader *h, Reader *p) {
        bool own = h->sender == r->self;
        Command c;
        int k;

        k = command_decode(p, &c);
        if (k < 0) {
                if (own)
                        finish_pending(r, h->seq, -EBADMSG);
                return k;
        }
        if (r->mode != REPLICA_SYNCED || h->epoch != r->epoch) {
                /* Every member that delivers it drops it: nothing changed. */
                command_done(&c);
                if (own)
                        finish_pending(r, h->seq, -ESTALE);
                return 0;
        }
        if (!r->epoch_quorate) {
                /* Re-checked at delivery: the sender believed it was quorate
                 * when it proposed, but this epoch is not. */
                command_done(&c);
                if (own)
                        finish_pending(r, h->seq, -ENOLINK);
                return 0;
        }
        k = cluster_state_apply(r->state, h->sender, &c);
        if (k > 0) {
                r->state->generation = r->generation;
                refresh_digest(r);
        } else if (k < 0)
                notice(r, LOG_NOTICE, "Refused %s from node %u: %s",
                       command_type_to_string(c.type), h->sender, strerror(-k));
        command_done(&c);
        if (r->cb.applied)
                r->cb.applied(h->sender, h->seq, k, r->userdata);
        if (k > 0) {
                /* A change must be confirmed by a quorum before its proposer
                 * calls it committed; refusals and no-ops changed nothing. */
                send_ack(r, h->sender, h->seq);
                if (own) {
                        Pending *pd = find_pending(r, h->seq);
                        if (pd)
                                pd->applied = true;
                }
                changed(r);
        } else if (own)
                finish_pending(r, h->seq, k);
        return 0;
}

static int handle_ack(Replica *r, const MessageHeader *h, Reader *p) {
        uint32_t proposer = reader_get_u32(p);
        uint64_t seq = reader_get_u64(p);
        ssize_t mi;
        Pending *pd;

        if (reader_finish(p) < 0)
                return -EBADMSG;
        if (proposer != r->self || r->mode != REPLICA_SYNCED || h->epoch != r->epoch)
                return 0;
        pd = find_pending(r, seq);
        mi = member_index(r, h->sender);
        if (!pd || !pd->applied || mi < 0)
                return 0;
        for (size_t i = 0; i < pd->n_ackers; i++)
                if (pd->ackers[i] == h->sender)
                        return 0;
        if (pd->n_ackers >= CPG_MEMBERS_LIMIT)
                return 0;
        pd->ackers[pd->n_ackers++] = h->sender;
        pd->votes += r->summaries[mi].node_votes;
        if (pd->votes >= r->epoch_quorum_votes)
                finish_pending(r, seq, 1);
        return 0;
}

int replica_deliver(Replica *r, uint32_t sender, const void *buf, size_t len) {
        MessageHeader h;
        Reader p;
        int k;

        k = message_parse(buf, len, &h, &p);
        if (k < 0)
                return k;
        /* Trust only the node id corosync reports. */
        if (h.sender != sender)
                return -EPERM;
        if (member_index(r, sender) < 0)
                return 0;

        switch (h.type) {
        case MESSAGE_SYNC_START:
                return handle_sync_start(r, &h, &p);
        case MESSAGE_SYNC_SUMMARY:
                return handle_sync_summary(r, &h, &p);
        case MESSAGE_SYNC_STATE:
                return handle_sync_state(r, &h, &p);
        case MESSAGE_PROPOSAL:
                return handle_proposal(r, &h, &p);
        case MESSAGE_ACK:
                return handle_ack(r, &h, &p);
        default:
                return -EBADMSG;
        }
}

int replica_propose(Replica *r, const Command *c, uint64_t *ret_seq) {
        Pending *np;
        Writer w;
        int k;

        if (r->mode == REPLICA_DETACHED)
                return -ENOTCONN;
        if (r->mode != REPLICA_SYNCED)
                return -EAGAIN;
        if (!r->epoch_quorate || !r->corosync_quorate)
                return -ENOLINK;

        writer_init(&w);
        message_begin(&w, MESSAGE_PROPOSAL, r->self, r->epoch, ++r->next_seq);
        k = command_encode(c, &w);
        if (k >= 0)
                k = send_frame(r, &w);
        writer_done(&w);
        if (k < 0)
                return k;
        /* Sending may have found corosync gone and detached us (ring_send
         * calls back synchronously): r->pending is freed then. */
        if (r->mode != REPLICA_SYNCED)
                return -ENOTCONN;
        np = realloc(r->pending, (r->n_pending + 1) * sizeof(Pending));
        if (!np)
                return -ENOMEM;
        r->pending = np;
        r->pending[r->n_pending++] = (Pending) { .seq = r->next_seq };
        if (ret_seq)
                *ret_seq = r->next_seq;
        return 0;
}

const ClusterState *replica_state(const Replica *r) {
        return r->state;
}

const char *replica_digest(const Replica *r) {
        return r->digest;
}

ReplicaMode replica_mode(const Replica *r) {
        return r->mode;
}

uint32_t replica_self(const Replica *r) {
        return r->self;
}

bool replica_is_member(const Replica *r, uint32_t node) {
        return member_index(r, node) >= 0;
}

size_t replica_n_members(const Replica *r) {
        return r->n_members;
}

const uint32_t *replica_members(const Replica *r) {
        return r->members;
}

bool replica_epoch_quorate(const Replica *r) {
        return r->mode == REPLICA_SYNCED && r->epoch_quorate;
}

bool replica_quorate(const Replica *r) {
        return replica_epoch_quorate(r) && r->corosync_quorate;
}

uint32_t replica_quorum_votes(const Replica *r) {
        return r->epoch_quorum_votes ? r->epoch_quorum_votes : r->quorum_votes;
}

uint64_t replica_epoch(const Replica *r) {
        return r->epoch;
}

uint64_t replica_generation(const Replica *r) {
        return r->generation;
}

const char *replica_mode_to_string(ReplicaMode m) {
        switch (m) {
        case REPLICA_DETACHED: return "detached";
        case REPLICA_SYNCING: return "syncing";
        case REPLICA_SYNCED: return "synced";
        default: return "unknown";
        }
}
