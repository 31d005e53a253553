/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>

#include "cluster-state.h"
#include "test-util.h"

static NodeFacts facts(const char *name, uint64_t free_bytes) {
        return (NodeFacts) {
                .name = (char *) name,
                .daemon_version = (char *) "0.1.0",
                .protocol_version = 1,
                .cpu_vendor = (char *) "AuthenticAMD",
                .cpu_model = (char *) "EPYC",
                .cpu_features = (char *) "avx sse2",
                .cpus = 8,
                .memory_total = UINT64_C(32) << 30,
                .memory_free = free_bytes,
                .memory_reserved = UINT64_C(2) << 30,
                .hypervisor_name = (char *) "none",
                .hypervisor_version = (char *) "",
                .updated_at = 1,
        };
}

static int publish(ClusterState *s, uint32_t sender, uint32_t node, const char *name, uint64_t free_bytes) {
        Command c = { .type = COMMAND_NODE_FACTS };
        c.node_facts.node = node;
        c.node_facts.facts = facts(name, free_bytes);
        return cluster_state_apply(s, sender, &c);
}

static int maintenance(ClusterState *s, uint32_t sender, uint32_t node, bool on) {
        Command c = { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = node, .enabled = on } };
        return cluster_state_apply(s, sender, &c);
}

static void test_apply_rules(void) {
        ClusterState *s = cluster_state_new();
        char d0[STATE_DIGEST_HEX_SIZE], d1[STATE_DIGEST_HEX_SIZE];

        /* Table: each step, its expected result and commit counter after. */
        struct {
                const char *what;
                int result;
                uint64_t commit;
        } expect[] = {
                { "node 2 publishes", 1, 1 },
                { "node 1 publishes", 1, 2 },
                { "node 1 republishes the same", 0, 2 },
                { "node 1 publishes for node 2", -EPERM, 2 },
                { "node 3 takes node 1's name", -EEXIST, 2 },
                { "bad name", -EINVAL, 2 },
                { "maintenance on unknown node", -ENOENT, 2 },
                { "maintenance on node 2", 1, 3 },
                { "maintenance on node 2 again", 0, 3 },
                { "maintenance off node 2", 1, 4 },
                { "node 1 memory changes", 1, 5 },
        };
        int got[sizeof(expect) / sizeof(expect[0])];
        size_t i = 0;

        got[i++] = publish(s, 2, 2, "node2", 100);
        got[i++] = publish(s, 1, 1, "node1", 100);
        got[i++] = publish(s, 1, 1, "node1", 100);
        got[i++] = publish(s, 1, 2, "node2", 100);
        got[i++] = publish(s, 3, 3, "node1", 100);
        cluster_state_digest(s, d0);
        got[i++] = publish(s, 3, 3, "bad name!", 100);
        got[i++] = maintenance(s, 1, 9, true);
        cluster_state_digest(s, d1);
        CHECK_STREQ(d0, d1);    /* refused commands change nothing */
        got[i++] = maintenance(s, 1, 2, true);
        CHECK(cluster_state_find_node(s, 2)->maintenance);
        got[i++] = maintenance(s, 3, 2, true);
        got[i++] = maintenance(s, 1, 2, false);
        got[i++] = publish(s, 1, 1, "node1", 200);
        (void) got;
        CHECK_EQ_INT(i, sizeof(expect) / sizeof(expect[0]));
        CHECK_EQ_INT(s->commit, 5);
        for (size_t k = 0; k < i; k++) {
                if (got[k] != expect[k].result) {
                        fprintf(stderr, "step \"%s\": got %d, expected %d\n", expect[k].what, got[k], expect[k].result);
                        exit(1);
                }
        }
        /* Sorted by id whatever the order of arrival. */
        CHECK_EQ_INT(s->n_nodes, 2);
        CHECK_EQ_INT(s->nodes[0].id, 1);
        CHECK_EQ_INT(s->nodes[1].id, 2);
        CHECK(cluster_state_find_node_by_name(s, "node2") == &s->nodes[1]);
        cluster_state_free(s);
}

static void test_encode_decode(void) {
        ClusterState *s = cluster_state_new(), *t = NULL, *copy = NULL;
        char a[STATE_DIGEST_HEX_SIZE], b[STATE_DIGEST_HEX_SIZE];
        Writer w;
        Reader r;

        CHECK_EQ_INT(publish(s, 5, 5, "e", 1), 1);
        CHECK_EQ_INT(publish(s, 3, 3, "c", 2), 1);
        CHECK_EQ_INT(maintenance(s, 3, 5, true), 1);

        writer_init(&w);
        CHECK_EQ_INT(cluster_state_encode(s, &w), 0);
        reader_init(&r, w.data, w.size);
        CHECK_EQ_INT(cluster_state_decode(&r, &t), 0);
        cluster_state_digest(s, a);
        cluster_state_digest(t, b);
        CHECK_STREQ(a, b);
        CHECK_EQ_INT(t->commit, 3);
        CHECK(cluster_state_find_node(t, 5)->maintenance);

        CHECK_EQ_INT(cluster_state_copy(s, &copy), 0);
        cluster_state_digest(copy, b);
        CHECK_STREQ(a, b);

        /* Any truncation is refused. */
        for (size_t n = 0; n < w.size; n++) {
                ClusterState *x = NULL;
                reader_init(&r, w.data, n);
                CHECK(cluster_state_decode(&r, &x) < 0);
                CHECK(x == NULL);
        }
        /* Non-canonical (unsorted) input is refused: swap the two ids. */
        writer_done(&w);
        ClusterState bad = *s;
        NodeRecord swapped[2] = { s->nodes[1], s->nodes[0] };
        bad.nodes = swapped;
        writer_init(&w);
        CHECK_EQ_INT(cluster_state_encode(&bad, &w), 0);
        reader_init(&r, w.data, w.size);
        ClusterState *x = NULL;
        CHECK_EQ_INT(cluster_state_decode(&r, &x), -EBADMSG);
        writer_done(&w);

        /* Different states, different digests. */
        CHECK_EQ_INT(maintenance(t, 3, 3, true), 1);
        cluster_state_digest(t, b);
        CHECK(strcmp(a, b) != 0);

        cluster_state_free(s);
        cluster_state_free(t);
        cluster_state_free(copy);
}

static void test_command_codec(void) {
        Command c = { .type = COMMAND_NODE_FACTS }, d;
        Writer w;
        Reader r;

        c.node_facts.node = 7;
        c.node_facts.facts = facts("seven", 77);
        writer_init(&w);
        CHECK_EQ_INT(command_encode(&c, &w), 0);
        reader_init(&r, w.data, w.size);
        CHECK_EQ_INT(command_decode(&r, &d), 0);
        CHECK_EQ_INT(d.type, COMMAND_NODE_FACTS);
        CHECK(node_facts_equal(&c.node_facts.facts, &d.node_facts.facts));
        command_done(&d);
        for (size_t n = 0; n < w.size; n++) {
                reader_init(&r, w.data, n);
                CHECK(command_decode(&r, &d) < 0);
        }
        /* Unknown command types are refused, not skipped. */
        w.data[1] = 0x77;
        reader_init(&r, w.data, w.size);
        CHECK_EQ_INT(command_decode(&r, &d), -EBADMSG);
        writer_done(&w);
}

/* Lookups in a state without VMs or jobs: the arrays are NULL then, and
 * bsearch() must not be handed one (found by tests/fuzz, fuzz-message). */
static void test_empty_lookups(void) {
        ClusterState *s = cluster_state_new();
        size_t count = 1;

        CHECK(state_find_vm(s, "web", 1) == NULL);
        CHECK(state_find_vm_any(s, "web", &count) == NULL);
        CHECK_EQ_INT(count, 0);
        CHECK(state_find_job(s, 1) == NULL);
        CHECK(state_find_active_job(s, "web") == NULL);
        CHECK_EQ_INT(publish(s, 1, 1, "one", 1), 1);
        CHECK_EQ_INT(publish(s, 2, 2, "two", 1), 1);
        Command c = { .type = COMMAND_JOB_SUBMIT };
        c.job_submit = (JobSubmitCommand) { .vm = (char *) "web", .source = 1, .destination = 2 };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &c), -ENOENT);
        CHECK_EQ_INT(s->commit, 2);
        cluster_state_free(s);
}

int main(void) {
        static const TestCase tests[] = {
                { "lookups in an empty state", test_empty_lookups },
                { "apply rules", test_apply_rules },
                { "encode/decode", test_encode_decode },
                { "command codec", test_command_codec },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
