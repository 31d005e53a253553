/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Convergence policies in the replicated state: set and clear by field
 * mask, records of unknown VMs refused, empty records removed, bad values
 * refused without a change, the canonical encoding, and the order in which
 * a migration resolves its settings. */

#include <errno.h>

#include "cluster-state.h"
#include "config.h"
#include "macro.h"
#include "test-util.h"

static ClusterState *state_with_vm(const char *vm) {
        ClusterState *s = cluster_state_new();
        CHECK(s);
        Command c = { .type = COMMAND_NODE_FACTS };
        c.node_facts.node = 1;
        c.node_facts.facts = (NodeFacts) { .name = (char *) "node1", .cpu_vendor = (char *) "GenuineIntel" };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &c), 1);
        VmRecord v = { .name = (char *) vm, .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 1,
                       .memory = UINT64_C(1) << 30 };
        Command cv = { .type = COMMAND_NODE_VMS };
        cv.node_vms = (NodeVmsCommand) { .node = 1, .n_vms = 1, .vms = &v };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &cv), 1);
        return s;
}

static int set_policy(ClusterState *s, const char *scope, const ConvergenceSettings *values, uint32_t clear) {
        Command c = { .type = COMMAND_SET_POLICY };
        c.set_policy = (SetPolicyCommand) { .scope = (char *) scope, .values = *values, .clear = clear };
        /* Through the wire encoding, as every member gets it. */
        Writer w;
        writer_init(&w);
        CHECK_EQ_INT(command_encode(&c, &w), 0);
        Reader r;
        Command d = {};
        reader_init(&r, w.data, w.size);
        int k = command_decode(&r, &d);
        writer_done(&w);
        if (k < 0)
                return k;
        k = cluster_state_apply(s, 7, &d);
        command_done(&d);
        return k;
}

static void test_set_and_clear(void) {
        ClusterState *s = state_with_vm("web1");
        uint64_t commit = s->commit;

        ConvergenceSettings v = { .set = CONVERGENCE_FIELD_DOWNTIME_STEPS | CONVERGENCE_FIELD_POSTCOPY,
                                  .downtime_steps_ms = { 100, 200, 800 }, .n_downtime_steps = 3, .postcopy = true };
        CHECK_EQ_INT(set_policy(s, "web1", &v, 0), 1);
        CHECK_EQ_INT(s->commit, commit + 1);
        const PolicyRecord *p = state_find_policy(s, "web1");
        CHECK(p);
        CHECK_EQ_INT(p->convergence.set, CONVERGENCE_FIELD_DOWNTIME_STEPS | CONVERGENCE_FIELD_POSTCOPY);
        CHECK_EQ_INT(p->convergence.n_downtime_steps, 3);
        CHECK_EQ_INT(p->convergence.downtime_steps_ms[2], 800);

        /* The same again changes nothing and does not count a commit. */
        CHECK_EQ_INT(set_policy(s, "web1", &v, 0), 0);
        CHECK_EQ_INT(s->commit, commit + 1);

        /* Another field leaves the first ones alone (no lost update). */
        ConvergenceSettings v2 = { .set = CONVERGENCE_FIELD_STALL_ROUNDS, .stall_rounds = 4 };
        CHECK_EQ_INT(set_policy(s, "web1", &v2, 0), 1);
        p = state_find_policy(s, "web1");
        CHECK_EQ_INT(p->convergence.set, CONVERGENCE_FIELD_DOWNTIME_STEPS | CONVERGENCE_FIELD_POSTCOPY |
                                         CONVERGENCE_FIELD_STALL_ROUNDS);
        CHECK(p->convergence.postcopy);

        /* Clearing one field. */
        ConvergenceSettings none = {};
        CHECK_EQ_INT(set_policy(s, "web1", &none, CONVERGENCE_FIELD_POSTCOPY), 1);
        p = state_find_policy(s, "web1");
        CHECK(!(p->convergence.set & CONVERGENCE_FIELD_POSTCOPY));
        CHECK(!p->convergence.postcopy);

        /* Clearing the rest removes the record. */
        CHECK_EQ_INT(set_policy(s, "web1", &none, _CONVERGENCE_FIELD_ALL), 1);
        CHECK(!state_find_policy(s, "web1"));
        CHECK_EQ_INT(s->n_policies, 0);
        /* Clearing what is not there: valid, no change. */
        CHECK_EQ_INT(set_policy(s, "web1", &none, _CONVERGENCE_FIELD_ALL), 0);
        cluster_state_free(s);
}

static void test_refused(void) {
        ClusterState *s = state_with_vm("web1");
        char digest[STATE_DIGEST_HEX_SIZE], after[STATE_DIGEST_HEX_SIZE];
        cluster_state_digest(s, digest);

        /* A typo is not silently stored. */
        ConvergenceSettings v = { .set = CONVERGENCE_FIELD_STALL_ROUNDS, .stall_rounds = 3 };
        CHECK_EQ_INT(set_policy(s, "wbe1", &v, 0), -EINVAL);

        /* Bad values: a falling ladder, zero, out of range. The encoder
         * writes them; the decoder or the state machine refuses them. */
        ConvergenceSettings falling = { .set = CONVERGENCE_FIELD_DOWNTIME_STEPS, .downtime_steps_ms = { 500, 100 },
                                        .n_downtime_steps = 2 };
        CHECK(set_policy(s, "web1", &falling, 0) < 0);
        ConvergenceSettings zero = { .set = CONVERGENCE_FIELD_PROGRESS_TIMEOUT, .progress_timeout_sec = 0 };
        CHECK(set_policy(s, "", &zero, 0) < 0);
        ConvergenceSettings huge = { .set = CONVERGENCE_FIELD_DOWNTIME_STEPS, .downtime_steps_ms = { 60001 },
                                     .n_downtime_steps = 1 };
        CHECK(set_policy(s, "", &huge, 0) < 0);
        /* Set and cleared at once. */
        CHECK(set_policy(s, "", &v, CONVERGENCE_FIELD_STALL_ROUNDS) < 0);

        cluster_state_digest(s, after);
        CHECK_STREQ(digest, after);

        char err[128];
        CHECK(convergence_settings_validate(&falling, err, sizeof(err)) < 0);
        CHECK(strstr(err, "rise"));
        cluster_state_free(s);
}

static void test_encoding(void) {
        ClusterState *s = state_with_vm("db1"), *copy = NULL;
        ConvergenceSettings c = { .set = CONVERGENCE_FIELD_AUTO_CONVERGE | CONVERGENCE_FIELD_COMPLETION_TIMEOUT,
                                  .auto_converge = true, .completion_timeout_per_gib_sec = 30 };
        ConvergenceSettings v = { .set = CONVERGENCE_FIELD_POSTCOPY, .postcopy = false };
        CHECK_EQ_INT(set_policy(s, "", &c, 0), 1);
        CHECK_EQ_INT(set_policy(s, "db1", &v, 0), 1);
        /* The cluster record sorts first. */
        CHECK_STREQ(s->policies[0].scope, "");
        CHECK_STREQ(s->policies[1].scope, "db1");

        CHECK_EQ_INT(cluster_state_copy(s, &copy), 0);
        char a[STATE_DIGEST_HEX_SIZE], b[STATE_DIGEST_HEX_SIZE];
        cluster_state_digest(s, a);
        cluster_state_digest(copy, b);
        CHECK_STREQ(a, b);
        CHECK_EQ_INT(copy->n_policies, 2);
        CHECK(copy->policies[0].convergence.auto_converge);
        CHECK_EQ_INT(copy->policies[0].convergence.completion_timeout_per_gib_sec, 30);
        CHECK((copy->policies[1].convergence.set & CONVERGENCE_FIELD_POSTCOPY) && !copy->policies[1].convergence.postcopy);

        /* A record of a VM that left the inventory stays, and still
         * travels with the state. */
        Command cv = { .type = COMMAND_NODE_VMS };
        cv.node_vms = (NodeVmsCommand) { .node = 1, .n_vms = 0 };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &cv), 1);
        CHECK(state_find_policy(s, "db1"));
        cluster_state_free(copy);
        cluster_state_free(s);
}

static void test_resolve_order(void) {
        ClusterState *s = state_with_vm("web1");
        FerryConfig cf;
        ConvergenceSettings node, eff;
        int source[8];

        config_init_defaults(&cf);
        config_convergence_settings(&cf, &node);

        /* Nothing set in the cluster: ferryd.conf and the built-in off. */
        state_policy_effective(s, "web1", NULL, &node, &eff, source);
        CHECK_EQ_INT(eff.n_downtime_steps, cf.n_downtime_steps);
        CHECK_EQ_INT(source[0], POLICY_SOURCE_NODE);
        CHECK_EQ_INT(source[5], POLICY_SOURCE_DEFAULT);
        CHECK(!(eff.set & CONVERGENCE_FIELD_POSTCOPY));

        /* The cluster overrides ferryd.conf, the VM overrides the cluster,
         * the job overrides the VM. */
        ConvergenceSettings cluster = { .set = CONVERGENCE_FIELD_DOWNTIME_STEPS | CONVERGENCE_FIELD_POSTCOPY,
                                        .downtime_steps_ms = { 50, 100 }, .n_downtime_steps = 2, .postcopy = true };
        ConvergenceSettings vm = { .set = CONVERGENCE_FIELD_DOWNTIME_STEPS, .downtime_steps_ms = { 700 },
                                   .n_downtime_steps = 1 };
        CHECK_EQ_INT(set_policy(s, "", &cluster, 0), 1);
        CHECK_EQ_INT(set_policy(s, "web1", &vm, 0), 1);

        state_policy_effective(s, "web1", NULL, &node, &eff, source);
        CHECK_EQ_INT(eff.n_downtime_steps, 1);
        CHECK_EQ_INT(eff.downtime_steps_ms[0], 700);
        CHECK_EQ_INT(source[0], POLICY_SOURCE_VM);
        CHECK(eff.postcopy);
        CHECK_EQ_INT(source[5], POLICY_SOURCE_CLUSTER);
        CHECK_EQ_INT(eff.stall_rounds, cf.stall_rounds);
        CHECK_EQ_INT(source[1], POLICY_SOURCE_NODE);

        /* Another VM gets the cluster's ladder. */
        state_policy_effective(s, "other", NULL, &node, &eff, source);
        CHECK_EQ_INT(eff.downtime_steps_ms[0], 50);
        CHECK_EQ_INT(source[0], POLICY_SOURCE_CLUSTER);

        ConvergenceSettings job = { .set = CONVERGENCE_FIELD_AUTO_CONVERGE, .auto_converge = true };
        state_policy_effective(s, "web1", &job, &node, &eff, source);
        CHECK(eff.auto_converge);
        CHECK_EQ_INT(source[4], POLICY_SOURCE_JOB);

        char text[320];
        convergence_settings_format(&eff, source, text, sizeof(text));
        CHECK(strstr(text, "downtime_steps=700 [vm]"));
        CHECK(strstr(text, "postcopy=yes [cluster]"));
        CHECK(strstr(text, "auto_converge=yes [job]"));
        CHECK(strstr(text, "stall_rounds=2") && !strstr(text, "stall_rounds=2 ["));
        config_done(&cf);
        cluster_state_free(s);
}

static void test_field_names(void) {
        for (uint32_t b = 0; (1U << b) <= _CONVERGENCE_FIELD_ALL; b++) {
                ConvergenceField f = (ConvergenceField) (1U << b);
                const char *name = convergence_field_to_string(f);
                CHECK(name);
                CHECK_EQ_INT(convergence_field_from_string(name), f);
        }
        CHECK_EQ_INT(convergence_field_from_string("downtime"), 0);
}

int main(void) {
        static const TestCase tests[] = {
                { "set and clear by field", test_set_and_clear },
                { "refused changes change nothing", test_refused },
                { "canonical encoding", test_encoding },
                { "resolution order", test_resolve_order },
                { "field names", test_field_names },
        };
        return run_tests(tests, ELEMENTSOF(tests));
}
