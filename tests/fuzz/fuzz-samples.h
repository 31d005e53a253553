/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* What the fuzz targets and their seed generator share: a sample history of
 * commands, the states it passes through, and the input format of
 * fuzz-message.
 *
 * Everything here is built through the public API only (cluster_state_apply(),
 * command_encode(), cluster_state_encode(), message_begin()/message_end()),
 * never by writing bytes by hand, so that regenerated seeds follow the wire
 * format when it changes: `tests/fuzz/run --regenerate-seeds`.
 *
 * fuzz-message input:
 *
 *   u8 scenario        low 3 bits: Scenario (mod _SCENARIO_MAX);
 *                      bits 4-5: 0 = inject as the node the header names,
 *                      1-3 = inject as that node (CPG's word against the
 *                      header's)
 *   then operations, each a u16 (big-endian) length:
 *     0                membership change: the next byte is a mask of the
 *                      members (bit 0 = node 1, ...), given to every
 *                      replica; with bit 7 set instead, the replicas in the
 *                      mask lose their CPG connection (replica_detach())
 *     1                deliver the oldest frame the replicas sent themselves
 *     n >= 2           the next n bytes (or what is left) are a frame,
 *                      delivered to every replica
 */

#include <stddef.h>
#include <stdint.h>

#include "cluster-state.h"
#include "codec.h"
#include "message.h"

/* Three replicas, node ids 1..3, in fuzz-message. */
#define FUZZ_NODES 3
/* fuzz-message fixes the clock replica_new() seeds its epochs from, so that
 * an input replays the same way every time: node 1 opens epoch k (counting
 * from 1) of a run as FUZZ_EPOCH(k). */
#define FUZZ_CLOCK 1000000
#define FUZZ_EPOCH(k) ((UINT64_C(1) << 32) | (uint64_t) (FUZZ_CLOCK + (k)))

typedef enum Scenario {
        SCENARIO_JOINING = 0,           /* empty states, just joined: node 1's SYNC_START is queued */
        SCENARIO_SYNCED_EMPTY = 1,      /* synced and quorate in epoch 1, empty state */
        SCENARIO_DIVERGED = 2,          /* node 1 holds the full sample state, 2 and 3 an older one; just joined */
        SCENARIO_SYNCED_FULL = 3,       /* synced on the full sample state; node 2's proposal queued */
        SCENARIO_ACKING = 4,            /* 3, with that proposal applied and the acks queued */
        _SCENARIO_MAX,
} Scenario;

#define FUZZ_OP_MEMBERSHIP 0
#define FUZZ_OP_LOOPBACK 1

typedef struct SampleStep {
        uint32_t sender;
        Command command;                /* points to static data: never command_done() it */
} SampleStep;

/* A history that uses every command type and passes every job state; each
 * step is accepted (changes the state) when applied in order from an
 * empty state. */
size_t sample_history(const SampleStep **ret);
/* The state after the first n steps (n > the history's length: all). */
ClusterState *sample_state(size_t n);

/* What every member computes from the state after a change (drain plans,
 * pre-flight checks, effective migration policies), on any state: one
 * adopted from a peer may be odd. */
void sample_derive(const ClusterState *s);

/* A frame of the given type; the payload is whatever the caller writes
 * between these two. */
void sample_frame_begin(Writer *w, MessageType type, uint32_t sender, uint64_t epoch, uint64_t seq);
int sample_frame_end(Writer *w);
int sample_frame_proposal(Writer *w, uint32_t sender, uint64_t epoch, uint64_t seq, const Command *c);
int sample_frame_state(Writer *w, uint32_t sender, uint64_t epoch, const ClusterState *s);

/* Building a fuzz-message input. */
void fuzz_input_begin(Writer *w, Scenario scenario, unsigned inject_as);
void fuzz_input_frame(Writer *w, const Writer *frame);
void fuzz_input_loopback(Writer *w, unsigned times);
void fuzz_input_membership(Writer *w, uint8_t mask);
