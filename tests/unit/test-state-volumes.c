/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Shared volumes in the replicated state: the handover steps, who may
 * confirm each, fencing, refusals that change nothing, and the invariants
 * under random command sequences. */

#include <errno.h>

#include "cluster-state.h"
#include "macro.h"
#include "test-util.h"

static ClusterState *three_nodes(void) {
        ClusterState *s = cluster_state_new();
        CHECK(s);
        for (uint32_t id = 1; id <= 3; id++) {
                char name[16];
                snprintf(name, sizeof(name), "node%u", id);
                Command c = { .type = COMMAND_NODE_FACTS };
                c.node_facts.node = id;
                c.node_facts.facts = (NodeFacts) { .name = name, .cpu_vendor = (char *) "AuthenticAMD" };
                CHECK_EQ_INT(cluster_state_apply(s, id, &c), 1);
        }
        return s;
}

/* Through the wire encoding, as every member gets it. */
static int vol(ClusterState *s, uint32_t sender, VolumeOp op, const char *name, uint32_t node, uint64_t epoch) {
        Command c = { .type = COMMAND_VOLUME };
        char backing[64];
        /* Each volume on its own device, except "lun1", which claims lun0's. */
        snprintf(backing, sizeof(backing), "/dev/shared/%s", name && streq(name, "lun1") ? "lun0" : name ? name : "");
        c.volume = (VolumeCommand) { .op = op, .name = (char *) name, .kind = VOLUME_SHARED,
                                     .backing = backing, .node = node, .epoch = epoch,
                                     .error = (char *) (op == VOLUME_OP_FAILED ? "device busy" : "") };
        Writer w;
        Reader r;
        Command d = {};
        writer_init(&w);
        CHECK_EQ_INT(command_encode(&c, &w), 0);
        reader_init(&r, w.data, w.size);
        int k = command_decode(&r, &d);
        writer_done(&w);
        CHECK_EQ_INT(k, 0);
        k = cluster_state_apply(s, sender, &d);
        command_done(&d);
        return k;
}

static const VolumeRecord *get(const ClusterState *s, const char *name) {
        const VolumeRecord *v = state_find_volume(s, name);
        CHECK(v);
        return v;
}

/* The invariants of state-volumes.h, plus: the state survives its
 * canonical encoding. */
static void check_invariants(const ClusterState *s, const uint64_t *last_epochs) {
        for (size_t i = 0; i < s->n_volumes; i++) {
                const VolumeRecord *v = &s->volumes[i];
                bool has_owner = v->state == VOLUME_OWNED || v->state == VOLUME_RELEASING || v->state == VOLUME_ORPHANED;
                CHECK(has_owner == (v->owner != 0));
                /* A target only where a handover is under way: releasing (0 =
                 * removal), acquiring, or orphaned while releasing. */
                CHECK((v->state == VOLUME_ACQUIRING) == (v->target != 0) || v->state == VOLUME_RELEASING ||
                      v->state == VOLUME_ORPHANED);
                CHECK(v->epoch >= 1);
                if (last_epochs)
                        CHECK(v->epoch >= last_epochs[i]);
        }
        ClusterState *copy = NULL;
        CHECK_EQ_INT(cluster_state_copy(s, &copy), 0);
        cluster_state_free(copy);
}

static void test_handover(void) {
        ClusterState *s = three_nodes();

        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ADD, "lun0", 1, 0), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_ACQUIRING);
        CHECK_EQ_INT(get(s, "lun0")->target, 1);
        /* Only the target confirms its acquisition, with the right epoch. */
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_ACQUIRED, "lun0", 0, 1), -EPERM);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ACQUIRED, "lun0", 0, 7), -ESTALE);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ACQUIRED, "lun0", 0, 1), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_OWNED);
        CHECK_EQ_INT(get(s, "lun0")->owner, 1);

        /* Move to node3: node1 releases, node3 acquires under epoch 2. */
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_MOVE, "lun0", 3, 0), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_RELEASING);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_MOVE, "lun0", 2, 0), -EBUSY);   /* already moving */
        CHECK_EQ_INT(vol(s, 3, VOLUME_OP_RELEASED, "lun0", 0, 1), -EPERM);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_RELEASED, "lun0", 0, 1), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_ACQUIRING);
        CHECK_EQ_INT(get(s, "lun0")->owner, 0);
        CHECK_EQ_INT(get(s, "lun0")->epoch, 2);
        CHECK_EQ_INT(vol(s, 3, VOLUME_OP_ACQUIRED, "lun0", 0, 2), 1);
        CHECK_EQ_INT(get(s, "lun0")->owner, 3);
        /* Moving to the owner is no change. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "lun0", 3, 0), 0);

        /* A failed release leaves the owner in place, with the error. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "lun0", 2, 0), 1);
        CHECK_EQ_INT(vol(s, 3, VOLUME_OP_FAILED, "lun0", 0, 2), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_OWNED);
        CHECK_EQ_INT(get(s, "lun0")->owner, 3);
        CHECK_STREQ(get(s, "lun0")->error, "device busy");

        /* A failed acquisition leaves it free: nobody holds it. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "lun0", 2, 0), 1);
        CHECK_EQ_INT(vol(s, 3, VOLUME_OP_RELEASED, "lun0", 0, 2), 1);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_FAILED, "lun0", 0, 3), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_FREE);
        CHECK_EQ_INT(get(s, "lun0")->owner, 0);
        /* From free, a move is an acquisition under a new epoch. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "lun0", 2, 0), 1);
        CHECK_EQ_INT(get(s, "lun0")->epoch, 4);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_ACQUIRED, "lun0", 0, 4), 1);
        CHECK_STREQ(get(s, "lun0")->error, "");

        /* Remove: the owner releases first, then it is gone. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_REMOVE, "lun0", 0, 0), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_RELEASING);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_RELEASED, "lun0", 0, 4), 1);
        CHECK(!state_find_volume(s, "lun0"));
        check_invariants(s, NULL);
        cluster_state_free(s);
}

static void test_fencing(void) {
        ClusterState *s = three_nodes();

        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ADD, "lun0", 2, 0), 1);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_ACQUIRED, "lun0", 0, 1), 1);
        /* node2 leaves: orphaned, owner kept on record. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ORPHAN, "lun0", 2, 0), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_ORPHANED);
        CHECK_EQ_INT(get(s, "lun0")->owner, 2);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ORPHAN, "lun0", 2, 0), 0);       /* once */
        /* Never reassigned on silence: a move is refused. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "lun0", 3, 0), -EBUSY);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_REMOVE, "lun0", 0, 0), -EBUSY);

        /* The owner comes back first: it takes the volume again, new epoch. */
        CHECK_EQ_INT(vol(s, 3, VOLUME_OP_ACQUIRED, "lun0", 0, 2), -EPERM);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_ACQUIRED, "lun0", 0, 1), -ESTALE);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_ACQUIRED, "lun0", 0, 2), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_OWNED);
        CHECK_EQ_INT(get(s, "lun0")->epoch, 2);

        /* It leaves again, and is confirmed fenced: free, under a new epoch
         * that voids its grant; a later return finds nothing to take. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ORPHAN, "lun0", 2, 0), 1);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_FENCED, NULL, 2, 0), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_FREE);
        CHECK_EQ_INT(get(s, "lun0")->epoch, 3);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_ACQUIRED, "lun0", 0, 4), -EPERM);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_FENCED, NULL, 2, 0), 0);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "lun0", 3, 0), 1);
        CHECK_EQ_INT(vol(s, 3, VOLUME_OP_ACQUIRED, "lun0", 0, 4), 1);

        /* A node that left while acquiring is treated as the owner. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "lun0", 1, 0), 1);
        CHECK_EQ_INT(vol(s, 3, VOLUME_OP_RELEASED, "lun0", 0, 4), 1);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_ORPHAN, "lun0", 1, 0), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_ORPHANED);
        CHECK_EQ_INT(get(s, "lun0")->owner, 1);
        CHECK_EQ_INT(get(s, "lun0")->target, 0);
        check_invariants(s, NULL);
        cluster_state_free(s);
}

/* Orphaned while releasing (its VM may already run on the target): the
 * owner, back, finishes the handover; it may not take the volume back. */
static void test_orphaned_while_releasing(void) {
        ClusterState *s = three_nodes();

        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ADD, "lun0", 1, 0), 1);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ACQUIRED, "lun0", 0, 1), 1);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_MOVE, "lun0", 2, 0), 1);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_ORPHAN, "lun0", 1, 0), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_ORPHANED);
        CHECK_EQ_INT(get(s, "lun0")->target, 2);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ACQUIRED, "lun0", 0, 2), -EPERM);   /* no retaking */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_RELEASED, "lun0", 0, 1), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_ACQUIRING);
        CHECK_EQ_INT(get(s, "lun0")->target, 2);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_ACQUIRED, "lun0", 0, 2), 1);
        CHECK_EQ_INT(get(s, "lun0")->owner, 2);

        /* The same, but the owner's release fails: it keeps the volume. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "lun0", 3, 0), 1);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ORPHAN, "lun0", 2, 0), 1);
        CHECK_EQ_INT(vol(s, 2, VOLUME_OP_FAILED, "lun0", 0, 2), 1);
        CHECK_EQ_INT(get(s, "lun0")->state, VOLUME_OWNED);
        CHECK_EQ_INT(get(s, "lun0")->owner, 2);
        CHECK_EQ_INT(get(s, "lun0")->target, 0);
        check_invariants(s, NULL);
        cluster_state_free(s);
}

static void test_refusals(void) {
        ClusterState *s = three_nodes();
        char before[STATE_DIGEST_HEX_SIZE], after[STATE_DIGEST_HEX_SIZE], why[256];

        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ADD, "lun0", 1, 0), 1);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ACQUIRED, "lun0", 0, 1), 1);
        /* A VM on node2 uses lun0. */
        VmRecord vm = { .name = (char *) "db1", .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 1,
                        .memory = 1 << 20, .volumes = (char *) "lun0" };
        Command cv = { .type = COMMAND_NODE_VMS };
        cv.node_vms = (NodeVmsCommand) { .node = 2, .n_vms = 1, .vms = &vm };
        CHECK_EQ_INT(cluster_state_apply(s, 2, &cv), 1);

        cluster_state_digest(s, before);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ADD, "lun0", 1, 0), -EEXIST);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ADD, "lun1", 1, 0), -EEXIST);  /* same backing */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ADD, "-bad", 1, 0), -EINVAL);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_ADD, "lun2", 9, 0), -ENOENT);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "nope", 2, 0), -ENOENT);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "lun0", 3, 0), -EBUSY);   /* db1 runs on node2 */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_REMOVE, "lun0", 0, 0), -EBUSY);
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_RELEASED, "lun0", 0, 1), -EPERM);
        cluster_state_digest(s, after);
        CHECK_STREQ(before, after);

        VolumeCommand c = { .op = VOLUME_OP_MOVE, .name = (char *) "lun0", .node = 3 };
        CHECK_EQ_INT(state_check_volume(s, 1, &c, why, sizeof(why)), -EBUSY);
        CHECK(strstr(why, "db1") && strstr(why, "node2"));
        /* Moving it to where its VM runs is fine. */
        CHECK_EQ_INT(vol(s, 1, VOLUME_OP_MOVE, "lun0", 2, 0), 1);
        cluster_state_free(s);
}

static void test_disks_to_volumes(void) {
        ClusterState *s = three_nodes();
        Command c = { .type = COMMAND_VOLUME };
        c.volume = (VolumeCommand) { .op = VOLUME_OP_ADD, .name = (char *) "csv1", .kind = VOLUME_SHARED,
                                     .backing = (char *) "/srv/csv1", .node = 1, .error = (char *) "" };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &c), 1);
        c.volume.name = (char *) "blk";
        c.volume.backing = (char *) "/dev/mapper/blk";
        CHECK_EQ_INT(cluster_state_apply(s, 1, &c), 1);

        const char *paths[] = { "/srv/csv1/db.qcow2", "/dev/mapper/blk", "/srv/csv10/x.img" };
        char *l = state_volumes_for_disks(s, paths, 3);
        CHECK_STREQ(l, "blk csv1");
        free(l);
        const char *none[] = { "/srv/csv10/x.img", "/var/lib/libvirt/images/a.qcow2" };
        l = state_volumes_for_disks(s, none, 2);
        CHECK_STREQ(l, "");
        free(l);

        VmRecord v = { .volumes = (char *) "blk csv1" };
        CHECK(vm_uses_volume(&v, "csv1"));
        CHECK(vm_uses_volume(&v, "blk"));
        CHECK(!vm_uses_volume(&v, "csv"));
        CHECK(!vm_uses_volume(&v, "bl"));
        cluster_state_free(s);
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

/* Random commands from random senders: whatever is accepted, the
 * invariants hold, epochs never go down, and refusals change nothing. */
static void test_random(void) {
        static const char *names[] = { "a", "b", "c" };
        ClusterState *s = three_nodes();
        uint64_t epochs[3] = {};
        unsigned accepted = 0, owned = 0;

        for (int i = 0; i < 20000; i++) {
                VolumeOp op = (VolumeOp) (1 + rnd() % (_VOLUME_OP_MAX - 1));
                const char *name = names[rnd() % 3];
                const VolumeRecord *v = state_find_volume(s, name);
                uint64_t epoch = v ? v->epoch + (rnd() % 4 == 0 ? 1 : 0) - (rnd() % 8 == 0 && v->epoch > 0 ? 1 : 0) : 1;
                char before[STATE_DIGEST_HEX_SIZE], after[STATE_DIGEST_HEX_SIZE];
                cluster_state_digest(s, before);
                Command c = { .type = COMMAND_VOLUME };
                char backing[32];
                snprintf(backing, sizeof(backing), "/dev/%s", name);
                c.volume = (VolumeCommand) { .op = op, .name = (char *) name, .kind = VOLUME_FS,
                                             .backing = backing, .node = 1 + (uint32_t) (rnd() % 3),
                                             .epoch = epoch, .error = (char *) "x" };
                int k = cluster_state_apply(s, 1 + (uint32_t) (rnd() % 3), &c);
                cluster_state_digest(s, after);
                if (k <= 0)
                        CHECK_STREQ(before, after);
                else
                        accepted++;
                v = state_find_volume(s, name);        /* the array may have moved */
                if (v && v->state == VOLUME_OWNED)
                        owned++;
                /* Epochs per name, for names that still exist. */
                for (size_t n = 0; n < 3; n++) {
                        const VolumeRecord *w = state_find_volume(s, names[n]);
                        if (!w) {
                                epochs[n] = 0;
                                continue;
                        }
                        CHECK(w->epoch >= epochs[n]);
                        epochs[n] = w->epoch;
                }
                check_invariants(s, NULL);
        }
        /* The walk went through the states, not only refusals. */
        CHECK(accepted > 1000);
        CHECK(owned > 100);
        cluster_state_free(s);
}

int main(void) {
        static const TestCase tests[] = {
                { "handover steps", test_handover },
                { "fencing", test_fencing },
                { "orphaned while releasing", test_orphaned_while_releasing },
                { "refusals change nothing", test_refusals },
                { "disks to volumes", test_disks_to_volumes },
                { "random commands keep the invariants", test_random },
        };
        return run_tests(tests, ELEMENTSOF(tests));
}
