/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The load-balancing policy: which live migrations would even out the load
 * of the cluster.
 *
 * Pure, like the drain policy: from the replicated state and the membership
 * view it answers how uneven the cluster is (the score) and which moves, in
 * which order, would make it even. It changes nothing; ferryd submits the
 * moves (daemon/balancer.c, `ferryctl balance`) and the slot scheduler runs
 * them. Every member computes the same plan from the same state, in integer
 * arithmetic only: members do not need to agree on floating point.
 *
 * Which nodes count: those that can take VMs now, i.e. online in the view,
 * not in maintenance, not draining, with published facts and some memory
 * left after the host's reserve. The balancer leaves the others alone
 * entirely: a node in maintenance or being drained is the drain's business,
 * neither a source nor a destination here, and its VMs are not part of the
 * score.
 *
 * The score. Each such node has two loads, as fractions of what it offers:
 *   memory  m = memory of its VMs / (memory_total - memory_reserved)
 *   CPU     u = the VMs' cpu_use_permille / (cpus * 1000)
 * A VM that a job is moving counts at its destination already (that is
 * where its memory will be); a shut-off VM counts nowhere. The cluster's
 * own loads are M = all VM memory / all capacity and U likewise for CPU:
 * they are what every node would carry if the cluster were perfectly even,
 * each its share in proportion to its size, and no move changes them. The
 * score is the root mean square distance of the nodes' load points from
 * the cluster's:
 *
 *   score = sqrt( 1/N * sum over nodes of ((m - M)^2 + (u - U)^2) )
 *
 * 0 is perfectly even; 0.10 means nodes are 10 percentage points away from
 * their fair share, typically. Reported in permille (100 = 0.10).
 * Why this one:
 *   - both resources matter: memory is the hard limit (a host cannot give
 *     what it has not), CPU is what guests feel. Both loads are fractions
 *     of capacity, so they add up without weights; one uneven dimension
 *     alone gives exactly its own RMS deviation;
 *   - a sum of squares over nodes, rather than the maximum of the two
 *     standard deviations: a move changes two nodes' terms and nothing
 *     else (M and U are fixed), so its effect on the score is computed from
 *     those two nodes alone, in O(1). That is what makes a plan over
 *     10,000 VMs cheap (see below). The maximum would also stall the greedy
 *     search whenever both dimensions are equally uneven, since a move
 *     that helps only one gains nothing;
 *   - the distance from the fair share, not from the plain mean of the
 *     loads: with nodes of different sizes that mean moves with every
 *     move, the fair share does not, and a node twice as big should carry
 *     twice as much.
 * Loads are fixed point (1/65536) and capped at 16 (1600 %), so that an
 * absurd figure from a peer can neither overflow nor dominate.
 *
 * A move is a VM, its node and a destination such that, after every earlier
 * move of the plan, pre-flight would pass: the VM runs, passes nothing
 * through, has no active job, is known to one node only, lives on no `fs`
 * volume and its shared volumes are owned by its node; the destination
 * counts (above), has the source's CPU vendor, a hypervisor not older than
 * the source's, and room for the VM after its reserve, the jobs already
 * coming in and the plan's earlier moves into it (room is pre-flight's
 * figure, from the free memory the host reports, not the load above).
 * Memory freed by a move out of a node is not credited to moves into it:
 * the jobs run concurrently, in an order the scheduler picks. Beyond
 * pre-flight, the
 * balancer also leaves alone
 *   - a VM whose last two migrations failed (like the drain: a round would
 *     otherwise retry it forever);
 *   - a VM sharing a volume with another VM that is not shut off: the
 *     volume follows the VM that moves, away from the other one.
 * The chosen move is checked once more with preflight_run().
 *
 * Greedy: take the move that lowers the score most; repeat until the score
 * is at or below the target, max_moves, or no move within max_bytes lowers
 * it by min_gain. A VM moves at most once per plan. Ties go to the source
 * with fewer moves in the plan so far (spreading the work over sources),
 * then to the VM name, then to the lowest destination id. The best VM for
 * each (source, destination) pair is cached; a move changes two nodes, so
 * only the pairs that touch one of them are searched again: the first
 * search is O(N * K) for N VMs and K nodes, each later step O(N) instead.
 *
 * No ping-pong:
 *   - hysteresis: a plan is needed only when the score is above the
 *     threshold, and then moves until it is at or below the target, well
 *     under it. A cluster hovering near the threshold (CPU use changes all
 *     the time) is evened out once and then left alone until it drifts by
 *     the whole gap again;
 *   - within a plan every move lowers the score strictly: no move undoes
 *     another. min_gain, when set, also keeps VMs from moving for a gain
 *     that the noise of the figures would eat up. It is 0 by default
 *     because no fixed figure suits every cluster: the score is a mean
 *     over the nodes, and what one move does to it shrinks with their
 *     number and with the size of VMs against hosts. With 64 hosts of
 *     1-2 TiB and VMs of a few GiB the best single move gains under 0.001
 *     (tests/bench/README.md); with two hosts of 64 GiB a 4 GiB VM gains
 *     0.06. Set it for small clusters with big VMs. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cluster-state.h"
#include "preflight.h"

typedef struct BalanceParams {
        uint32_t threshold_permille;    /* start only if the imbalance score exceeds this (100 = 0.10) */
        uint32_t target_permille;       /* hysteresis: stop once the score is at or below this (<= threshold) */
        uint32_t max_moves;             /* at most this many moves per plan (round) */
        uint64_t max_bytes;             /* at most this much guest memory moved per plan; 0 = no bound */
        uint32_t min_gain_permille;     /* each move must lower the score by at least this */
} BalanceParams;

/* threshold 0.10, target 0.05, 8 moves, no byte bound, no minimum gain
 * beyond lowering the score (see above and balance_params_default()). */
#define BALANCE_DEFAULT_THRESHOLD_PERMILLE 100U
#define BALANCE_DEFAULT_TARGET_PERMILLE 50U
#define BALANCE_DEFAULT_MAX_MOVES 8U
#define BALANCE_DEFAULT_MAX_BYTES UINT64_C(0)
#define BALANCE_DEFAULT_MIN_GAIN_PERMILLE 0U

void balance_params_default(BalanceParams *p);

typedef struct BalanceMove {
        const char *vm;                 /* points into the state */
        uint32_t source, destination;
        uint64_t memory;
        uint32_t score_before_permille, score_after_permille;   /* cluster score before/after this move */
        char reason[160];
} BalanceMove;

typedef struct BalancePlan {
        uint32_t score_permille;        /* now */
        uint32_t final_score_permille;  /* after all moves of the plan */
        bool needed;                    /* score > threshold */
        BalanceMove *moves;
        size_t n_moves;
        /* Why nothing moves ("score 0.040 at or under the threshold 0.100",
         * "no move lowers the score by 0.005 or more", ...), or why the
         * plan stops above the target; "" when it reaches the target. */
        char why_not[256];
} BalancePlan;

/* 0, -EINVAL (target above threshold), -ENOMEM. The plan points into s:
 * use it before s changes. */
int balance_plan(const ClusterState *s, const MembershipView *view, const BalanceParams *params, BalancePlan *ret);
void balance_plan_done(BalancePlan *p);
/* The imbalance score of the cluster in permille (0 = perfectly even);
 * exposed for tests and status. 0 also when it cannot be computed (fewer
 * than two nodes count, or no memory). */
uint32_t balance_score(const ClusterState *s, const MembershipView *view);
