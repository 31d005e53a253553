/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Pre-flight checks: each refusal comes from its own check with its own
 * message, and the automatic destination is the best valid one. */

#include <string.h>

#include "preflight.h"
#include "test-util.h"

#define GIB (UINT64_C(1) << 30)

static void node(ClusterState *s, uint32_t id, const char *vendor, const char *version, uint64_t free_gib) {
        char name[32];
        snprintf(name, sizeof(name), "node%u", id);
        Command c = { .type = COMMAND_NODE_FACTS };
        c.node_facts.node = id;
        c.node_facts.facts = (NodeFacts) {
                .name = name, .cpu_vendor = (char *) vendor, .hypervisor_name = (char *) "QEMU",
                .hypervisor_version = (char *) version, .memory_total = 64 * GIB, .memory_free = free_gib * GIB,
                .memory_reserved = 2 * GIB, .max_outgoing = 2, .max_incoming = 2,
        };
        CHECK_EQ_INT(cluster_state_apply(s, id, &c), 1);
}

static void vm(ClusterState *s, uint32_t id, const char *name, uint64_t mem_gib, uint32_t passthrough) {
        VmRecord v = { .name = (char *) name, .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 2,
                       .memory = mem_gib * GIB, .n_passthrough = passthrough };
        Command c = { .type = COMMAND_NODE_VMS };
        c.node_vms = (NodeVmsCommand) { .node = id, .n_vms = 1, .vms = &v };
        CHECK_EQ_INT(cluster_state_apply(s, id, &c), 1);
}

static const PreflightCheck *find(const PreflightResult *r, const char *name) {
        for (size_t i = 0; i < r->n_checks; i++)
                if (strcmp(r->checks[i].name, name) == 0)
                        return &r->checks[i];
        return NULL;
}

static void expect_failure(const ClusterState *s, const MembershipView *v, const char *vmname, uint32_t dst,
                           const char *check, const char *words) {
        PreflightResult r;
        preflight_run(s, v, vmname, dst, &r);
        CHECK(!r.passed);
        const PreflightCheck *c = find(&r, check);
        if (!c || c->passed || !strstr(c->message, words)) {
                fprintf(stderr, "expected check %s to fail mentioning \"%s\"; got %s: %s\n", check, words,
                        c ? (c->passed ? "passed" : "failed") : "missing", c ? c->message : "");
                exit(1);
        }
}

static void test_preflight(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2, 3, 4, 5 };
        MembershipView view = { .members = members, .n_members = 5, .quorate = true };

        node(s, 1, "AuthenticAMD", "8.0.0", 40);
        node(s, 2, "AuthenticAMD", "8.0.0", 10);
        node(s, 3, "GenuineIntel", "8.0.0", 60);
        node(s, 4, "AuthenticAMD", "7.2.0", 60);
        node(s, 5, "AuthenticAMD", "9.0.0", 30);
        vm(s, 1, "web", 16, 0);
        vm(s, 2, "gpu", 4, 1);

        PreflightResult r;
        preflight_run(s, &view, "web", 5, &r);
        CHECK(r.passed);
        CHECK_EQ_INT(r.source, 1);
        CHECK_EQ_INT(r.destination, 5);

        expect_failure(s, &view, "nosuch", 5, "vm-known", "nosuch");
        expect_failure(s, &view, "web", 3, "cpu-vendor", "GenuineIntel");
        expect_failure(s, &view, "web", 4, "hypervisor-version", "older");
        expect_failure(s, &view, "web", 2, "destination-memory", "needs 16.0G");
        expect_failure(s, &view, "web", 1, "destination-differs", "already runs");
        expect_failure(s, &view, "gpu", 1, "no-passthrough", "passed through");

        /* Automatic choice: 3 (Intel), 4 (older), 2 (too small) are out; 5 wins. */
        preflight_run(s, &view, "web", 0, &r);
        CHECK(r.passed);
        CHECK_EQ_INT(r.destination, 5);
        CHECK(strstr(r.destination_reason, "node5"));

        /* Maintenance, offline, no quorum. */
        Command m = { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = 5, .enabled = true } };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &m), 1);
        expect_failure(s, &view, "web", 5, "destination-not-in-maintenance", "maintenance");
        preflight_run(s, &view, "web", 0, &r);
        CHECK(!r.passed);
        CHECK(find(&r, "destination-found") && !find(&r, "destination-found")->passed);
        m.set_maintenance.enabled = false;
        CHECK_EQ_INT(cluster_state_apply(s, 1, &m), 1);
        MembershipView part = { .members = members, .n_members = 2, .quorate = false };
        expect_failure(s, &part, "web", 5, "destination-online", "not online");
        expect_failure(s, &part, "web", 5, "quorum", "not quorate");

        /* Memory already promised to an incoming job counts. */
        vm(s, 4, "big", 25, 0);
        Command sub = { .type = COMMAND_JOB_SUBMIT };
        sub.job_submit = (JobSubmitCommand) { .vm = (char *) "big", .source = 4, .destination = 5 };
        CHECK_EQ_INT(cluster_state_apply(s, 4, &sub), 1);
        expect_failure(s, &view, "web", 5, "destination-memory", "incoming");
        /* And the VM with a job is refused a second one. */
        expect_failure(s, &view, "big", 1, "no-active-job", "already moves");
        cluster_state_free(s);
}

/* Facts and VM records come from peers: sizes past INT64_MAX saturate, they
 * never overflow into room (found by tests/fuzz, fuzz-state). */
static void test_absurd_sizes(void) {
        ClusterState *s = cluster_state_new();
        uint32_t members[] = { 1, 2 };
        MembershipView view = { .members = members, .n_members = 2, .quorate = true };
        Command c = { .type = COMMAND_NODE_FACTS };
        PreflightResult r;

        node(s, 1, "AuthenticAMD", "8.0.0", 40);
        c.node_facts.node = 2;
        c.node_facts.facts = (NodeFacts) {
                .name = (char *) "node2", .cpu_vendor = (char *) "AuthenticAMD", .hypervisor_name = (char *) "QEMU",
                .hypervisor_version = (char *) "8.0.0", .memory_total = 64 * GIB, .memory_free = 38 * GIB,
                .memory_reserved = (UINT64_C(1) << 63) + 2 * GIB,
        };
        CHECK_EQ_INT(cluster_state_apply(s, 2, &c), 1);
        CHECK(preflight_available_memory(s, 2) < 0);
        vm(s, 1, "web", 1, 0);
        expect_failure(s, &view, "web", 2, "destination-memory", "needs");

        c.node_facts.facts.memory_free = UINT64_MAX;
        c.node_facts.facts.memory_reserved = 0;
        CHECK_EQ_INT(cluster_state_apply(s, 2, &c), 1);
        CHECK(preflight_available_memory(s, 2) == INT64_MAX);
        preflight_run(s, &view, "web", 2, &r);
        CHECK(r.passed);

        /* A VM of absurd size on its way in takes all of it, not more. */
        VmRecord huge = { .name = (char *) "huge", .uuid = (char *) "", .state = VM_RUNNING, .memory = UINT64_MAX };
        Command vms = { .type = COMMAND_NODE_VMS };
        vms.node_vms = (NodeVmsCommand) { .node = 1, .n_vms = 1, .vms = &huge };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &vms), 1);
        Command sub = { .type = COMMAND_JOB_SUBMIT };
        sub.job_submit = (JobSubmitCommand) { .vm = (char *) "huge", .source = 1, .destination = 2 };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &sub), 1);
        CHECK(preflight_available_memory(s, 2) < 0);
        cluster_state_free(s);
}

int main(void) {
        static const TestCase tests[] = {
                { "pre-flight checks and destination choice", test_preflight },
                { "absurd sizes saturate", test_absurd_sizes },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
