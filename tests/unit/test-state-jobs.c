/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Migration jobs and slots in the replicated state: who may do what, and
 * the slot limits under random load. */

#include <errno.h>

#include "cluster-state.h"
#include "macro.h"
#include "test-util.h"

static uint64_t rng = 88172645463325252ULL;
static uint64_t rnd(void) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        return rng;
}

static void add_node(ClusterState *s, uint32_t id, uint32_t out, uint32_t in, uint32_t cap) {
        char name[32];
        snprintf(name, sizeof(name), "node%u", id);
        Command c = { .type = COMMAND_NODE_FACTS };
        c.node_facts.node = id;
        c.node_facts.facts = (NodeFacts) {
                .name = name, .cpu_vendor = (char *) "AuthenticAMD",
                .max_outgoing = out, .max_incoming = in, .max_cluster = cap,
        };
        CHECK_EQ_INT(cluster_state_apply(s, id, &c), 1);
}

static void add_vms(ClusterState *s, uint32_t node, unsigned n) {
        VmRecord vms[256];
        char names[256][32];
        CHECK(n <= 256);
        for (unsigned i = 0; i < n; i++) {
                snprintf(names[i], sizeof(names[i]), "vm-%u-%u", node, i);
                vms[i] = (VmRecord) { .name = names[i], .uuid = (char *) "", .state = VM_RUNNING,
                                      .vcpus = 1, .memory = UINT64_C(1) << 30 };
        }
        Command c = { .type = COMMAND_NODE_VMS };
        c.node_vms = (NodeVmsCommand) { .node = node, .n_vms = n, .vms = vms };
        CHECK_EQ_INT(cluster_state_apply(s, node, &c), 1);
}

static int submit(ClusterState *s, uint32_t sender, const char *vm, uint32_t src, uint32_t dst) {
        Command c = { .type = COMMAND_JOB_SUBMIT };
        c.job_submit = (JobSubmitCommand) { .vm = (char *) vm, .source = src, .destination = dst, .created_at = 1 };
        return cluster_state_apply(s, sender, &c);
}

static int finish(ClusterState *s, uint32_t sender, uint64_t id, JobState result) {
        Command c = { .type = COMMAND_JOB_FINISH };
        c.job_finish = (JobFinishCommand) { .id = id, .result = result, .finished_at = 2,
                                            .error = (char *) "", .log_line = (char *) "" };
        return cluster_state_apply(s, sender, &c);
}

static int update(ClusterState *s, uint32_t sender, uint64_t id) {
        Command c = { .type = COMMAND_JOB_UPDATE };
        c.job_update = (JobUpdateCommand) { .id = id, .started_at = 1, .log_line = (char *) "downtime 100 ms" };
        c.job_update.progress.phase = JOB_PHASE_PRECOPY;
        return cluster_state_apply(s, sender, &c);
}

static int cancel(ClusterState *s, uint32_t sender, uint64_t id) {
        Command c = { .type = COMMAND_JOB_CANCEL, .job_cancel = { .id = id } };
        return cluster_state_apply(s, sender, &c);
}

static JobState state_of(ClusterState *s, uint64_t id) {
        const JobRecord *j = state_find_job(s, id);
        CHECK(j);
        return j->state;
}

/* Slot limits hold, and nothing that fits is left waiting. */
static void check_slots(ClusterState *s) {
        uint32_t cap = 0;
        size_t active = 0;
        for (size_t i = 0; i < s->n_nodes; i++)
                if (s->nodes[i].facts.max_cluster && (!cap || s->nodes[i].facts.max_cluster < cap))
                        cap = s->nodes[i].facts.max_cluster;
        for (size_t i = 0; i < s->n_jobs; i++) {
                const JobRecord *a = &s->jobs[i];
                if (!job_state_holds_slot(a->state))
                        continue;
                active++;
                uint32_t out = 0, in = 0;
                for (size_t k = 0; k < s->n_jobs; k++) {
                        const JobRecord *b = &s->jobs[k];
                        if (!job_state_holds_slot(b->state))
                                continue;
                        if (k != i && ((a->source == b->source && a->destination == b->destination) ||
                                       (a->source == b->destination && a->destination == b->source))) {
                                fprintf(stderr, "jobs %llu and %llu share the pair %u-%u\n",
                                        (unsigned long long) a->id, (unsigned long long) b->id, a->source, a->destination);
                                exit(1);
                        }
                        out += b->source == a->source;
                        in += b->destination == a->destination;
                }
                CHECK(out <= cluster_state_find_node(s, a->source)->facts.max_outgoing);
                CHECK(in <= cluster_state_find_node(s, a->destination)->facts.max_incoming);
        }
        if (cap)
                CHECK(active <= cap);
        /* The scheduler already granted all it could. */
        CHECK_EQ_INT(state_jobs_schedule(s), 0);
}

static void test_pair_and_node_limits(void) {
        ClusterState *s = cluster_state_new();
        for (uint32_t n = 1; n <= 4; n++) {
                add_node(s, n, 2, 2, 0);
                add_vms(s, n, 4);
        }
        /* Two nodes ask for the same pair: CPG orders them, one waits. */
        CHECK_EQ_INT(submit(s, 1, "vm-1-0", 1, 2), 1);
        CHECK_EQ_INT(submit(s, 2, "vm-2-0", 2, 1), 1);
        CHECK_EQ_INT(state_of(s, 1), JOB_GRANTED);
        CHECK_EQ_INT(state_of(s, 2), JOB_QUEUED);
        CHECK_EQ_INT(state_job_queue_position(s, 2), 1);
        /* Other pairs run in parallel, up to the per-node limits. */
        CHECK_EQ_INT(submit(s, 3, "vm-1-1", 1, 3), 1);
        CHECK_EQ_INT(state_of(s, 3), JOB_GRANTED);
        CHECK_EQ_INT(submit(s, 3, "vm-1-2", 1, 4), 1);
        CHECK_EQ_INT(state_of(s, 4), JOB_QUEUED);       /* node1 has 2 outgoing */
        CHECK_EQ_INT(submit(s, 3, "vm-3-0", 3, 4), 1);
        CHECK_EQ_INT(state_of(s, 5), JOB_GRANTED);      /* may pass the queued one */
        check_slots(s);

        /* The same VM twice: refused. */
        CHECK_EQ_INT(submit(s, 1, "vm-1-0", 1, 3), -EBUSY);
        /* Not on that source / unknown node / same node. */
        CHECK_EQ_INT(submit(s, 1, "vm-2-1", 1, 3), -ENOENT);
        CHECK_EQ_INT(submit(s, 1, "vm-1-3", 1, 9), -ENOENT);
        CHECK_EQ_INT(submit(s, 1, "vm-1-3", 1, 1), -EINVAL);

        /* Only the source reports; not before the slot is granted. */
        CHECK_EQ_INT(update(s, 2, 1), -EPERM);
        CHECK_EQ_INT(update(s, 1, 1), 1);
        CHECK_EQ_INT(state_of(s, 1), JOB_RUNNING);
        CHECK_EQ_INT(update(s, 2, 2), -EINVAL);         /* job 2 is queued */
        CHECK(strstr(state_find_job(s, 1)->log, "downtime 100 ms"));

        /* Job 1 completes: its VM moves to node2, the pair frees, job 2 runs. */
        CHECK_EQ_INT(finish(s, 1, 1, JOB_COMPLETED), 1);
        CHECK(state_find_vm(s, "vm-1-0", 2));
        CHECK(!state_find_vm(s, "vm-1-0", 1));
        CHECK_EQ_INT(state_of(s, 2), JOB_GRANTED);
        CHECK_EQ_INT(state_of(s, 4), JOB_GRANTED);      /* node1 has room again */
        CHECK_EQ_INT(finish(s, 1, 1, JOB_FAILED), -EALREADY);
        check_slots(s);

        /* Cancel: queued ends at once; running only asks the source. */
        CHECK_EQ_INT(submit(s, 4, "vm-4-0", 4, 3), 1); /* job 6: node3 has 1 in, node4... */
        CHECK_EQ_INT(submit(s, 4, "vm-4-1", 4, 3), 1); /* job 7: pair 3-4 busy → queued */
        CHECK_EQ_INT(state_of(s, 7), JOB_QUEUED);
        CHECK_EQ_INT(cancel(s, 2, 7), 1);
        CHECK_EQ_INT(state_of(s, 7), JOB_CANCELLED);
        CHECK_EQ_INT(cancel(s, 2, 7), -EALREADY);
        CHECK_EQ_INT(cancel(s, 2, 3), 1);
        CHECK_EQ_INT(state_of(s, 3), JOB_GRANTED);
        CHECK(state_find_job(s, 3)->cancel_requested);
        CHECK_EQ_INT(finish(s, 1, 3, JOB_CANCELLED), 1);
        check_slots(s);
        cluster_state_free(s);
}

static void test_destination_may_only_complete_with_the_vm(void) {
        ClusterState *s = cluster_state_new();
        add_node(s, 1, 2, 2, 0);
        add_node(s, 2, 2, 2, 0);
        add_vms(s, 1, 1);
        CHECK_EQ_INT(submit(s, 1, "vm-1-0", 1, 2), 1);
        CHECK_EQ_INT(update(s, 1, 1), 1);
        /* Not in node2's inventory yet: node2 may not close the job. */
        CHECK_EQ_INT(finish(s, 2, 1, JOB_COMPLETED), -EPERM);
        /* node2 reports the VM (the source is gone, post-copy finished). */
        VmRecord v = { .name = (char *) "vm-1-0", .uuid = (char *) "", .state = VM_RUNNING, .memory = 1 };
        Command c = { .type = COMMAND_NODE_VMS };
        c.node_vms = (NodeVmsCommand) { .node = 2, .n_vms = 1, .vms = &v };
        CHECK_EQ_INT(cluster_state_apply(s, 2, &c), 1);
        /* Still only "completed" is the destination's to say. */
        CHECK_EQ_INT(finish(s, 2, 1, JOB_FAILED), -EPERM);
        CHECK_EQ_INT(finish(s, 2, 1, JOB_COMPLETED), 1);
        CHECK_EQ_INT(state_of(s, 1), JOB_COMPLETED);
        size_t count;
        CHECK(state_find_vm_any(s, "vm-1-0", &count));
        CHECK_EQ_INT(count, 1);         /* the source's stale record is gone */
        CHECK(state_find_vm(s, "vm-1-0", 2));
        CHECK_EQ_INT(finish(s, 1, 1, JOB_FAILED), -EALREADY);
        /* A third node may never close it. */
        add_node(s, 3, 2, 2, 0);
        add_vms(s, 3, 1);
        CHECK_EQ_INT(submit(s, 3, "vm-3-0", 3, 1), 1);
        CHECK_EQ_INT(finish(s, 2, 2, JOB_COMPLETED), -EPERM);
        cluster_state_free(s);
}

static void test_vm_in_transit_never_vanishes(void) {
        ClusterState *s = cluster_state_new();
        add_node(s, 1, 2, 2, 0);
        add_node(s, 2, 2, 2, 0);
        add_vms(s, 1, 2);
        CHECK_EQ_INT(submit(s, 1, "vm-1-0", 1, 2), 1);
        CHECK_EQ_INT(update(s, 1, 1), 1);
        /* The hypervisor already dropped it from the source; the job's end
         * is not committed yet: the record stays, as migrating. */
        VmRecord other = { .name = (char *) "vm-1-1", .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 1,
                           .memory = UINT64_C(1) << 30 };
        Command c = { .type = COMMAND_NODE_VMS };
        c.node_vms = (NodeVmsCommand) { .node = 1, .n_vms = 1, .vms = &other };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &c), 1);
        const VmRecord *v = state_find_vm(s, "vm-1-0", 1);
        CHECK(v);
        CHECK_EQ_INT(v->state, VM_MIGRATING);
        /* The job completes: the record moves to node2. */
        CHECK_EQ_INT(finish(s, 1, 1, JOB_COMPLETED), 1);
        CHECK(!state_find_vm(s, "vm-1-0", 1));
        CHECK(state_find_vm(s, "vm-1-0", 2));
        /* Without an active job, a VM missing from the list is gone. */
        c.node_vms.n_vms = 0;
        CHECK_EQ_INT(cluster_state_apply(s, 1, &c), 1);
        CHECK(!state_find_vm(s, "vm-1-1", 1));
        cluster_state_free(s);
}

static void test_maintenance_destination_refused(void) {
        ClusterState *s = cluster_state_new();
        add_node(s, 1, 2, 2, 0);
        add_node(s, 2, 2, 2, 0);
        add_vms(s, 1, 1);
        Command m = { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = 2, .enabled = true } };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &m), 1);
        CHECK_EQ_INT(submit(s, 1, "vm-1-0", 1, 2), -EHOSTDOWN);
        CHECK_EQ_INT(s->n_jobs, 0);
        cluster_state_free(s);
}

static void test_cluster_cap(void) {
        ClusterState *s = cluster_state_new();
        for (uint32_t n = 1; n <= 6; n++) {
                add_node(s, n, 4, 4, n == 3 ? 2 : 0);   /* one node caps the cluster at 2 */
                add_vms(s, n, 2);
        }
        CHECK_EQ_INT(submit(s, 1, "vm-1-0", 1, 2), 1);
        CHECK_EQ_INT(submit(s, 1, "vm-3-0", 3, 4), 1);
        CHECK_EQ_INT(submit(s, 1, "vm-5-0", 5, 6), 1);
        CHECK_EQ_INT(state_of(s, 3), JOB_QUEUED);
        check_slots(s);
        CHECK_EQ_INT(finish(s, 3, 2, JOB_FAILED), 1);
        CHECK_EQ_INT(state_of(s, 3), JOB_GRANTED);
        cluster_state_free(s);
}

/* 16 nodes, hundreds of requests from everywhere, random completions:
 * the limits hold after every command, and everything ends. */
static void test_random_load_16_nodes(void) {
        ClusterState *s = cluster_state_new();
        unsigned submitted = 0, max_active = 0;

        for (uint32_t n = 1; n <= 16; n++) {
                add_node(s, n, 1 + (uint32_t) (rnd() % 3), 1 + (uint32_t) (rnd() % 3), 0);
                add_vms(s, n, 40);
        }
        for (unsigned step = 0; step < 5000; step++) {
                if (rnd() % 3 != 0) {
                        uint32_t src = 1 + (uint32_t) (rnd() % 16), dst = 1 + (uint32_t) (rnd() % 16);
                        /* Pick a VM the source currently has. */
                        const VmRecord *v = NULL;
                        for (size_t i = 0, skip = rnd() % 40; i < s->n_vms; i++)
                                if (s->vms[i].node == src && !state_find_active_job(s, s->vms[i].name)) {
                                        v = &s->vms[i];
                                        if (skip-- == 0)
                                                break;
                                }
                        if (v && src != dst) {
                                char name[64];
                                snprintf(name, sizeof(name), "%s", v->name);
                                CHECK_EQ_INT(submit(s, 1 + (uint32_t) (rnd() % 16), name, src, dst), 1);
                                submitted++;
                        }
                } else {
                        /* The source of a random active job reports an outcome. */
                        size_t active = 0;
                        for (size_t i = 0; i < s->n_jobs; i++)
                                active += job_state_holds_slot(s->jobs[i].state);
                        max_active = MAX(max_active, (unsigned) active);
                        if (active == 0)
                                continue;
                        size_t pick = rnd() % active;
                        for (size_t i = 0; i < s->n_jobs; i++) {
                                if (!job_state_holds_slot(s->jobs[i].state) || pick-- > 0)
                                        continue;
                                JobState res = (JobState) (JOB_COMPLETED + rnd() % 3);
                                CHECK_EQ_INT(finish(s, s->jobs[i].source, s->jobs[i].id, res), 1);
                                break;
                        }
                }
                check_slots(s);
        }
        /* Drain: finish everything; every job reaches a final state. */
        for (;;) {
                bool any = false;
                for (size_t i = 0; i < s->n_jobs; i++)
                        if (job_state_holds_slot(s->jobs[i].state)) {
                                CHECK_EQ_INT(finish(s, s->jobs[i].source, s->jobs[i].id, JOB_COMPLETED), 1);
                                any = true;
                                check_slots(s);
                                break;
                        }
                if (!any)
                        break;
        }
        for (size_t i = 0; i < s->n_jobs; i++)
                CHECK(job_state_is_final(s->jobs[i].state));
        /* Every VM is reported by exactly one node. */
        for (size_t i = 0; i < s->n_vms; i++) {
                size_t count;
                state_find_vm_any(s, s->vms[i].name, &count);
                CHECK_EQ_INT(count, 1);
        }
        CHECK(submitted > 1000);
        CHECK(max_active >= 8);         /* 16 nodes really ran in parallel */
        CHECK(s->n_jobs <= STATE_FINISHED_JOBS_KEPT);
        printf("# %u requests on 16 nodes, up to %u at once\n", submitted, max_active);
        cluster_state_free(s);
}

static void test_encode_roundtrip_with_jobs(void) {
        ClusterState *s = cluster_state_new(), *t = NULL;
        char a[STATE_DIGEST_HEX_SIZE], b[STATE_DIGEST_HEX_SIZE];
        add_node(s, 1, 2, 2, 0);
        add_node(s, 2, 2, 2, 0);
        add_vms(s, 1, 3);
        CHECK_EQ_INT(submit(s, 2, "vm-1-0", 1, 2), 1);
        CHECK_EQ_INT(update(s, 1, 1), 1);
        CHECK_EQ_INT(submit(s, 2, "vm-1-1", 1, 2), 1);
        CHECK_EQ_INT(cluster_state_copy(s, &t), 0);
        cluster_state_digest(s, a);
        cluster_state_digest(t, b);
        CHECK_STREQ(a, b);
        CHECK_EQ_INT(t->n_jobs, 2);
        CHECK_EQ_INT(state_find_job(t, 1)->state, JOB_RUNNING);
        CHECK_STREQ(state_find_job(t, 1)->vm, "vm-1-0");
        CHECK_EQ_INT(t->n_vms, 3);
        /* Truncations are refused. */
        Writer w;
        writer_init(&w);
        CHECK_EQ_INT(cluster_state_encode(s, &w), 0);
        for (size_t n = 0; n < w.size; n += 7) {
                Reader r;
                ClusterState *x = NULL;
                reader_init(&r, w.data, n);
                CHECK(cluster_state_decode(&r, &x) < 0);
        }
        writer_done(&w);
        cluster_state_free(s);
        cluster_state_free(t);
}

static void test_vm_inventory_rules(void) {
        ClusterState *s = cluster_state_new();
        add_node(s, 1, 2, 2, 0);
        add_node(s, 2, 2, 2, 0);
        add_vms(s, 1, 2);
        /* Only the node itself publishes its list. */
        VmRecord v = { .name = (char *) "x", .uuid = (char *) "", .state = VM_RUNNING };
        Command c = { .type = COMMAND_NODE_VMS };
        c.node_vms = (NodeVmsCommand) { .node = 1, .n_vms = 1, .vms = &v };
        CHECK_EQ_INT(cluster_state_apply(s, 2, &c), -EPERM);
        /* The same list again changes nothing. */
        uint64_t commit = s->commit;
        VmRecord same[2] = {
                { .name = (char *) "vm-1-0", .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 1, .memory = UINT64_C(1) << 30 },
                { .name = (char *) "vm-1-1", .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 1, .memory = UINT64_C(1) << 30 },
        };
        c.node_vms = (NodeVmsCommand) { .node = 1, .n_vms = 2, .vms = same };
        CHECK_EQ_INT(cluster_state_apply(s, 1, &c), 0);
        CHECK(s->commit == commit);
        /* A name listed twice by one node is refused. */
        VmRecord dup[2] = { same[0], same[0] };
        c.node_vms.vms = dup;
        CHECK_EQ_INT(cluster_state_apply(s, 1, &c), -EINVAL);
        /* The same name on two nodes is kept visible, not merged. */
        VmRecord other = same[0];
        c.node_vms = (NodeVmsCommand) { .node = 2, .n_vms = 1, .vms = &other };
        CHECK_EQ_INT(cluster_state_apply(s, 2, &c), 1);
        size_t count;
        CHECK(state_find_vm_any(s, "vm-1-0", &count));
        CHECK_EQ_INT(count, 2);
        CHECK(state_node_vm_memory(s, 1) == UINT64_C(2) << 30);
        cluster_state_free(s);
}

int main(void) {
        static const TestCase tests[] = {
                { "pair and node limits, permissions, cancel", test_pair_and_node_limits },
                { "maintenance destination refused", test_maintenance_destination_refused },
                { "a VM in transit never vanishes from the inventory", test_vm_in_transit_never_vanishes },
                { "the destination may only complete, with the VM", test_destination_may_only_complete_with_the_vm },
                { "cluster-wide cap", test_cluster_cap },
                { "random load on 16 nodes", test_random_load_16_nodes },
                { "encode roundtrip with jobs", test_encode_roundtrip_with_jobs },
                { "VM inventory rules", test_vm_inventory_rules },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
