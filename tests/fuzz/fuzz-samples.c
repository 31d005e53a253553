/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "fuzz-samples.h"

#include <stdio.h>

#include "drain.h"
#include "preflight.h"

#define GIB (UINT64_C(1) << 30)

static NodeFacts facts(const char *name, const char *uri, uint64_t free_bytes) {
        return (NodeFacts) {
                .name = (char *) name,
                .daemon_version = (char *) "0.1.0",
                .protocol_version = FERRY_PROTOCOL_VERSION,
                .cpu_vendor = (char *) "AuthenticAMD",
                .cpu_model = (char *) "AMD EPYC 7302",
                .cpu_features = (char *) "aes avx avx2 sse2 sse4_2",
                .cpus = 16,
                .memory_total = 64 * GIB,
                .memory_free = free_bytes,
                .memory_reserved = 2 * GIB,
                .hypervisor_name = (char *) "sim",
                .hypervisor_version = (char *) "1.0",
                .updated_at = 1700000000000000,
                .backend_uri = (char *) uri,
                .migration_address = (char *) "",
                .max_outgoing = 2,
                .max_incoming = 2,
                .max_cluster = 8,
        };
}

static VmRecord vms_alpha[] = {
        { .name = (char *) "vm-a", .uuid = (char *) "6f1c1f5e-0000-4000-8000-00000000000a", .state = VM_RUNNING,
          .vcpus = 4, .memory = 4 * GIB, .cpu_use_permille = 250, .dirty_rate = 1 << 20 },
        { .name = (char *) "vm-b", .uuid = (char *) "6f1c1f5e-0000-4000-8000-00000000000b", .state = VM_PAUSED,
          .vcpus = 2, .memory = 2 * GIB },
        { .name = (char *) "vm-c", .uuid = (char *) "", .state = VM_RUNNING,
          .vcpus = 1, .memory = GIB, .n_passthrough = 1 },
};
static VmRecord vms_beta[] = {
        { .name = (char *) "vm-d", .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 2, .memory = 8 * GIB },
};
static VmRecord vms_gamma[] = {
        { .name = (char *) "vm-e", .uuid = (char *) "", .state = VM_SHUTOFF, .vcpus = 1, .memory = GIB,
          .volumes = (char *) "lun0" },
};
static VmRecord vms_beta_after[] = {
        { .name = (char *) "vm-a", .uuid = (char *) "6f1c1f5e-0000-4000-8000-00000000000a", .state = VM_RUNNING,
          .vcpus = 4, .memory = 4 * GIB, .cpu_use_permille = 300 },
        { .name = (char *) "vm-d", .uuid = (char *) "", .state = VM_RUNNING, .vcpus = 2, .memory = 8 * GIB },
};

#define PROGRESS_PRECOPY { .phase = JOB_PHASE_PRECOPY, .memory_total = 4 * GIB, .memory_processed = GIB, \
        .memory_remaining = 3 * GIB, .rate = 100 << 20, .dirty_rate = 1 << 20, .iteration = 1 }
#define PROGRESS_DONE { .phase = JOB_PHASE_DONE, .memory_total = 4 * GIB, .memory_processed = 4 * GIB, \
        .rate = 100 << 20, .iteration = 3, .downtime_ms = 120 }

#define NODE_VMS(n, list) \
        { .type = COMMAND_NODE_VMS, .node_vms = { .node = (n), .n_vms = sizeof(list) / sizeof((list)[0]), .vms = (list) } }
#define SUBMIT(vm_, src, dst) \
        { .type = COMMAND_JOB_SUBMIT, .job_submit = { .vm = (char *) (vm_), .source = (src), .destination = (dst), \
          .options = { .bandwidth = 100 << 20, .max_downtime_ms = 300, .auto_converge_allowed = true }, \
          .created_at = 1700000001000000 } }

#define VOLUME(sender_, op_, name_, kind_, backing_, node_, epoch_) \
        { (sender_), { .type = COMMAND_VOLUME, .volume = { .op = (op_), .name = (char *) (name_), .kind = (kind_), \
          .backing = (char *) (backing_), .node = (node_), .epoch = (epoch_), .error = (char *) "" } } }

size_t sample_history(const SampleStep **ret) {
        static SampleStep steps[] = {
                { 1, { .type = COMMAND_NODE_FACTS } },
                { 2, { .type = COMMAND_NODE_FACTS } },
                { 3, { .type = COMMAND_NODE_FACTS } },
                { 1, NODE_VMS(1, vms_alpha) },
                { 2, NODE_VMS(2, vms_beta) },
                { 3, NODE_VMS(3, vms_gamma) },
                { 1, { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = 3, .enabled = true } } },
                { 3, { .type = COMMAND_SET_MAINTENANCE, .set_maintenance = { .node = 3, .enabled = false } } },
                { 1, SUBMIT("vm-a", 1, 2) },            /* job 1: granted */
                { 2, SUBMIT("vm-b", 1, 3) },            /* job 2: granted */
                { 2, SUBMIT("vm-d", 2, 1) },            /* job 3: queued, pair 1-2 busy */
                { 1, { .type = COMMAND_JOB_UPDATE, .job_update = {
                        .id = 1, .progress = PROGRESS_PRECOPY, .started_at = 1700000002000000,
                        .log_line = (char *) "round 1: max downtime 300 ms" } } },
                { 1, { .type = COMMAND_JOB_FINISH, .job_finish = {
                        .id = 2, .result = JOB_FAILED, .progress = PROGRESS_PRECOPY, .started_at = 1700000002000000,
                        .finished_at = 1700000003000000, .error = (char *) "destination refused the domain",
                        .log_line = (char *) "aborted" } } },
                { 3, { .type = COMMAND_JOB_CANCEL, .job_cancel = { .id = 3 } } },
                { 2, SUBMIT("vm-d", 2, 3) },            /* job 4: granted */
                { 1, { .type = COMMAND_JOB_CANCEL, .job_cancel = { .id = 4 } } },
                { 1, { .type = COMMAND_JOB_FINISH, .job_finish = {
                        .id = 1, .result = JOB_COMPLETED, .progress = PROGRESS_DONE, .started_at = 1700000002000000,
                        .finished_at = 1700000004000000, .error = (char *) "",
                        .log_line = (char *) "switchover after 3 rounds" } } },
                { 2, NODE_VMS(2, vms_beta_after) },
                { 3, { .type = COMMAND_SET_DRAIN, .set_drain = { .node = 1, .mode = DRAIN_LEAVE_BLOCKERS } } },
                { 2, SUBMIT("vm-b", 1, 3) },            /* job 5: granted */
                { 1, { .type = COMMAND_SET_DRAIN, .set_drain = { .node = 3, .mode = DRAIN_FAIL_ON_BLOCKERS } } },
                { 1, { .type = COMMAND_SET_DRAIN, .set_drain = { .node = 3, .mode = DRAIN_NONE, .clear_maintenance = true } } },
                { 1, { .type = COMMAND_SET_POLICY, .set_policy = { .scope = (char *) "", .values = {
                        .set = CONVERGENCE_FIELD_DOWNTIME_STEPS | CONVERGENCE_FIELD_STALL_ROUNDS,
                        .downtime_steps_ms = { 200, 400, 800 }, .n_downtime_steps = 3, .stall_rounds = 3 } } } },
                { 2, { .type = COMMAND_SET_POLICY, .set_policy = { .scope = (char *) "vm-d", .values = {
                        .set = CONVERGENCE_FIELD_AUTO_CONVERGE | CONVERGENCE_FIELD_POSTCOPY |
                               CONVERGENCE_FIELD_PROGRESS_TIMEOUT | CONVERGENCE_FIELD_COMPLETION_TIMEOUT,
                        .auto_converge = true, .postcopy = true, .progress_timeout_sec = 120,
                        .completion_timeout_per_gib_sec = 60 } } } },
                { 3, { .type = COMMAND_SET_POLICY, .set_policy = { .scope = (char *) "vm-d",
                        .clear = CONVERGENCE_FIELD_POSTCOPY } } },
                VOLUME(1, VOLUME_OP_ADD, "lun0", VOLUME_SHARED, "/vol/lun0", 2, 0),
                VOLUME(2, VOLUME_OP_ACQUIRED, "lun0", 0, "", 0, 1),
                VOLUME(1, VOLUME_OP_MOVE, "lun0", 0, "", 3, 0),
                VOLUME(2, VOLUME_OP_RELEASED, "lun0", 0, "", 0, 1),
                VOLUME(3, VOLUME_OP_ACQUIRED, "lun0", 0, "", 0, 2),
                VOLUME(3, VOLUME_OP_ADD, "logs", VOLUME_FS, "/dev/logs", 1, 0),
                VOLUME(1, VOLUME_OP_ACQUIRED, "logs", 0, "", 0, 1),
                VOLUME(2, VOLUME_OP_ORPHAN, "logs", 0, "", 1, 0),
                VOLUME(2, VOLUME_OP_FENCED, NULL, 0, "", 1, 0),
                { 3, { .type = COMMAND_SET_BALANCE, .set_balance = { .automatic = true, .threshold_permille = 150,
                        .target_permille = 50, .max_moves = 4, .max_bytes = 64 * GIB } } },
                { 2, { .type = COMMAND_NODE_FACTS } },
        };
        static bool initialized = false;

        if (!initialized) {
                /* Unions with strings inside: simplest filled in here. */
                steps[0].command.node_facts.node = 1;
                steps[0].command.node_facts.facts = facts("alpha", "sim:///alpha", 40 * GIB);
                steps[1].command.node_facts.node = 2;
                steps[1].command.node_facts.facts = facts("beta", "sim:///beta", 50 * GIB);
                steps[2].command.node_facts.node = 3;
                steps[2].command.node_facts.facts = facts("gamma", "sim:///gamma", 60 * GIB);
                steps[2].command.node_facts.facts.migration_address = (char *) "10.0.0.3";
                steps[2].command.node_facts.facts.max_incoming = 4;
                size_t last = sizeof(steps) / sizeof(steps[0]) - 1;
                steps[last].command.node_facts.node = 2;
                steps[last].command.node_facts.facts = facts("beta", "sim:///beta", 38 * GIB);
                initialized = true;
        }
        *ret = steps;
        return sizeof(steps) / sizeof(steps[0]);
}

ClusterState *sample_state(size_t n) {
        const SampleStep *steps;
        size_t n_steps = sample_history(&steps);
        ClusterState *s = cluster_state_new();

        if (!s)
                return NULL;
        for (size_t i = 0; i < n && i < n_steps; i++) {
                int k = cluster_state_apply(s, steps[i].sender, &steps[i].command);
                if (k <= 0)
                        /* The rules changed: the samples still work, but
                         * cover less; worth updating the history. */
                        fprintf(stderr, "fuzz-samples: step %zu (%s from node %u) now gives %d\n",
                                i, command_type_to_string(steps[i].command.type), steps[i].sender, k);
        }
        return s;
}

void sample_frame_begin(Writer *w, MessageType type, uint32_t sender, uint64_t epoch, uint64_t seq) {
        writer_init(w);
        message_begin(w, type, sender, epoch, seq);
}

int sample_frame_end(Writer *w) {
        return message_end(w);
}

int sample_frame_proposal(Writer *w, uint32_t sender, uint64_t epoch, uint64_t seq, const Command *c) {
        sample_frame_begin(w, MESSAGE_PROPOSAL, sender, epoch, seq);
        int k = command_encode(c, w);
        return k < 0 ? k : sample_frame_end(w);
}

int sample_frame_state(Writer *w, uint32_t sender, uint64_t epoch, const ClusterState *s) {
        sample_frame_begin(w, MESSAGE_SYNC_STATE, sender, epoch, 0);
        int k = cluster_state_encode(s, w);
        return k < 0 ? k : sample_frame_end(w);
}

void fuzz_input_begin(Writer *w, Scenario scenario, unsigned inject_as) {
        writer_init(w);
        writer_put_u8(w, (uint8_t) (scenario | (inject_as & 3) << 4));
}

void fuzz_input_frame(Writer *w, const Writer *frame) {
        /* Frames of the samples are far below 64 KiB. */
        writer_put_u16(w, (uint16_t) frame->size);
        writer_put_bytes(w, frame->data, frame->size);
}

void fuzz_input_loopback(Writer *w, unsigned times) {
        for (unsigned i = 0; i < times; i++)
                writer_put_u16(w, FUZZ_OP_LOOPBACK);
}

void fuzz_input_membership(Writer *w, uint8_t mask) {
        writer_put_u16(w, FUZZ_OP_MEMBERSHIP);
        writer_put_u8(w, mask);
}

void sample_derive(const ClusterState *s) {
        uint32_t members[8];
        size_t n = 0;
        char text[512];

        for (size_t i = 0; i < s->n_nodes && n < 8; i++)
                members[n++] = s->nodes[i].id;
        MembershipView view = { .members = members, .n_members = n, .quorate = true };

        for (size_t i = 0; i < s->n_nodes && i < 8; i++) {
                DrainPlan plan;
                if (drain_plan(s, &view, s->nodes[i].id, &plan) == 0)
                        drain_plan_done(&plan);
                (void) preflight_available_memory(s, s->nodes[i].id);
        }
        for (size_t i = 0; i < s->n_vms && i < 4; i++) {
                PreflightResult res;
                preflight_run(s, &view, s->vms[i].name, 0, &res);
                if (s->n_nodes > 0)
                        preflight_run(s, &view, s->vms[i].name, s->nodes[0].id, &res);
        }
        for (size_t i = 0; i < s->n_jobs && i < 4; i++) {
                ConvergenceSettings eff;
                int source[8];
                state_policy_effective(s, s->jobs[i].vm, NULL, NULL, &eff, source);
                (void) convergence_settings_format(&eff, source, text, sizeof(text));
                (void) state_job_queue_position(s, s->jobs[i].id);
        }
}
