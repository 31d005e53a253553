/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "balance.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "ferry-backend.h"
#include "macro.h"
#include "strutil.h"

/* Loads are fixed point: LOAD_ONE is 100 %. Capped at 16 (1600 %): with
 * that, a squared deviation stays under 2^41 and the sum over the 1024
 * nodes the state allows under 2^51, far from overflowing 64 bits. */
#define LOAD_SHIFT 16
#define LOAD_ONE (INT64_C(1) << LOAD_SHIFT)
#define LOAD_CAP 16
#define MIB_SHIFT 20

void balance_params_default(BalanceParams *p) {
        /* 0.10: nodes typically 10 points away from their fair share, a
         * clear imbalance but not one that a host's normal swings in CPU
         * use cross on their own. The target is half of it, so that a round
         * buys a real gap before the next may start. 8 moves bound a round
         * (each is a live migration with its traffic and downtime); the next
         * round starts from where they really landed. No byte bound by
         * default: max_moves already bounds a round, and what is affordable
         * depends on the network. No minimum gain beyond a strict drop:
         * what one move can gain shrinks with the size of the cluster
         * (balance.h), so a fixed default would either stop nothing in a
         * small cluster or everything in a big one. */
        *p = (BalanceParams) {
                .threshold_permille = BALANCE_DEFAULT_THRESHOLD_PERMILLE,
                .target_permille = BALANCE_DEFAULT_TARGET_PERMILLE,
                .max_moves = BALANCE_DEFAULT_MAX_MOVES,
                .max_bytes = BALANCE_DEFAULT_MAX_BYTES,
                .min_gain_permille = BALANCE_DEFAULT_MIN_GAIN_PERMILLE,
        };
}

/* ---- arithmetic ------------------------------------------------------------- */

static uint64_t add_sat(uint64_t a, uint64_t b) {
        return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sub_floor(uint64_t a, uint64_t b) {
        return a > b ? a - b : 0;
}

/* num / den in fixed point, capped at LOAD_CAP; den > 0. Without a
 * 128-bit product: the remainder is below den, so remainder << 16 fits
 * once den < 2^47. Only absurd figures (a cluster of 128 EiB) are scaled
 * down to get there, alike on every member. */
static int64_t fraction(uint64_t num, uint64_t den) {
        while (den >> 47) {
                den >>= 1;
                num >>= 1;
        }
        uint64_t q = num / den, r = num % den;
        if (q >= LOAD_CAP)
                return LOAD_CAP * LOAD_ONE;
        return (int64_t) ((q << LOAD_SHIFT) + (r << LOAD_SHIFT) / den);
}

static int64_t square(int64_t x) {
        return x * x;
}

static uint64_t isqrt(uint64_t n) {
        uint64_t r = 0, bit = UINT64_C(1) << 62;
        while (bit > n)
                bit >>= 2;
        while (bit) {
                if (n >= r + bit) {
                        n -= r + bit;
                        r = (r >> 1) + bit;
                } else
                        r >>= 1;
                bit >>= 2;
        }
        return r;
}

static unsigned percent(int64_t load) {
        return (unsigned) ((load * 100 + LOAD_ONE / 2) >> LOAD_SHIFT);
}

static void format_score(char buf[static 16], uint32_t permille) {
        snprintf(buf, 16, "%" PRIu32 ".%03" PRIu32, permille / 1000, permille % 1000);
}

/* ---- the planner's picture of the cluster ------------------------------------- */

typedef struct Node {
        const NodeRecord *rec;
        uint64_t memory_capacity;       /* MiB, after the host's reserve */
        uint64_t cpu_capacity;          /* permille of one CPU: cpus * 1000 */
        uint64_t memory;                /* bytes of its VMs (those on their way here included) */
        uint64_t cpu;                   /* cpu_use_permille of the same VMs */
        int64_t term;                   /* (m - M)^2 + (u - U)^2 */
        int64_t room;                   /* pre-flight's available memory, less the plan's moves in */
        uint32_t n_out;                 /* moves out of it in the plan so far */
} Node;

typedef struct Candidate {
        const VmRecord *vm;
        size_t node;                    /* index into nodes[] */
        bool alive;                     /* may still move: not moved yet, not refused by pre-flight */
        int64_t source_delta;           /* change of its node's term if it left */
} Candidate;

/* The best candidate to move from one node to another, and the change of
 * the sum of terms it brings; best < 0: none fits. */
typedef struct Pair {
        ssize_t best;
        int64_t delta;
} Pair;

typedef struct Planner {
        const ClusterState *s;
        const MembershipView *view;
        Node *nodes;                    /* the nodes that count, in id order */
        size_t n_nodes;
        int64_t memory_share, cpu_share;        /* the cluster's loads M and U */
        int64_t sum;                    /* sum of the nodes' terms */

        const JobRecord **active;       /* active jobs by VM name */
        size_t n_active;
        Candidate *cands;               /* movable VMs, in the state's (name, node) order */
        size_t n_cands;
        size_t *by_node;                /* candidate indices grouped by node, name order within */
        size_t *node_start;             /* node i's are by_node[node_start[i] .. node_start[i + 1]) */
        bool *compatible;               /* [a * n + b]: b may take VMs from a (vendor, version) */
        Pair *pairs;                    /* [a * n + b] */
        uint64_t budget;                /* bytes the plan may still move */
} Planner;

static void planner_done(Planner *p) {
        free(p->nodes);
        free(p->active);
        free(p->cands);
        free(p->by_node);
        free(p->node_start);
        free(p->compatible);
        free(p->pairs);
        *p = (Planner) {};
}

static int compare_node_id(const void *key, const void *elem) {
        uint32_t id = *(const uint32_t *) key;
        const Node *n = elem;
        return id < n->rec->id ? -1 : id > n->rec->id;
}

static Node *find_node(const Planner *p, uint32_t id) {
        if (p->n_nodes == 0)
                return NULL;
        return bsearch(&id, p->nodes, p->n_nodes, sizeof(Node), compare_node_id);
}

static int compare_job_vm(const void *a, const void *b) {
        const JobRecord *x = *(const JobRecord *const *) a, *y = *(const JobRecord *const *) b;
        int c = strcmp(x->vm, y->vm);
        if (c != 0)
                return c;
        return x->id < y->id ? -1 : x->id > y->id;
}

static int compare_name_job(const void *key, const void *elem) {
        return strcmp(key, (*(const JobRecord *const *) elem)->vm);
}

static const JobRecord *find_active_job(const Planner *p, const char *vm) {
        if (p->n_active == 0)
                return NULL;
        const JobRecord *const *j = bsearch(vm, p->active, p->n_active, sizeof(JobRecord *), compare_name_job);
        return j ? *j : NULL;
}

static bool in_view(const MembershipView *view, uint32_t id) {
        for (size_t i = 0; i < view->n_members; i++)
                if (view->members[i] == id)
                        return true;
        return false;
}

/* Whether a node takes part: it may hold VMs now. */
static bool node_counts(const NodeRecord *n, const MembershipView *view) {
        return in_view(view, n->id) && !n->maintenance && n->drain == DRAIN_NONE && n->facts.name &&
               *n->facts.name && n->facts.memory_total > n->facts.memory_reserved &&
               ((n->facts.memory_total - n->facts.memory_reserved) >> MIB_SHIFT) > 0;
}

static int64_t node_term(const Planner *p, const Node *n, uint64_t memory, uint64_t cpu) {
        return square(fraction(memory >> MIB_SHIFT, n->memory_capacity) - p->memory_share) +
               square(fraction(cpu, n->cpu_capacity) - p->cpu_share);
}

/* sqrt(sum / n) in permille, rounded: monotonic in sum, integers only. */
static uint32_t score_of(const Planner *p, int64_t sum) {
        if (p->n_nodes < 2 || sum <= 0)
                return 0;
        uint64_t mean_square = (uint64_t) sum / p->n_nodes;     /* < 2^41 */
        return (uint32_t) ((isqrt(mean_square * 1000000) + (UINT64_C(1) << (LOAD_SHIFT - 1))) >> LOAD_SHIFT);
}

static void count_vm(Node *n, const VmRecord *vm) {
        if (!n)
                return;
        n->memory = add_sat(n->memory, vm->memory);
        n->cpu = add_sat(n->cpu, vm->cpu_use_permille);
}

/* The nodes that count, their loads, the cluster's shares and the score. */
static int planner_load(Planner *p, const ClusterState *s, const MembershipView *view) {
        uint64_t memory = 0, memory_capacity = 0, cpu = 0, cpu_capacity = 0;

        *p = (Planner) { .s = s, .view = view };
        if (s->n_nodes > 0 && !(p->nodes = calloc(s->n_nodes, sizeof(Node))))
                return -ENOMEM;
        for (size_t i = 0; i < s->n_nodes; i++) {
                const NodeRecord *r = &s->nodes[i];
                if (!node_counts(r, view))
                        continue;
                p->nodes[p->n_nodes++] = (Node) {
                        .rec = r,
                        .memory_capacity = (r->facts.memory_total - r->facts.memory_reserved) >> MIB_SHIFT,
                        .cpu_capacity = (uint64_t) MAX(r->facts.cpus, 1U) * 1000,
                        .room = preflight_available_memory(s, r->id),
                };
        }

        /* Active jobs by VM name: a VM on its way counts at its destination
         * (its memory is being set aside there), once. */
        for (size_t i = 0; i < s->n_jobs; i++)
                if (!job_state_is_final(s->jobs[i].state))
                        p->n_active++;
        if (p->n_active > 0) {
                if (!(p->active = calloc(p->n_active, sizeof(JobRecord *))))
                        return -ENOMEM;
                size_t k = 0;
                for (size_t i = 0; i < s->n_jobs; i++)
                        if (!job_state_is_final(s->jobs[i].state))
                                p->active[k++] = &s->jobs[i];
                qsort(p->active, p->n_active, sizeof(JobRecord *), compare_job_vm);
        }
        for (size_t i = 0; i < s->n_vms; i++) {
                const VmRecord *vm = &s->vms[i];
                const JobRecord *j = find_active_job(p, vm->name);
                if (vm->state == VM_SHUTOFF || (j && (vm->node == j->source || vm->node == j->destination)))
                        continue;
                count_vm(find_node(p, vm->node), vm);
        }
        for (size_t i = 0; i < p->n_active; i++) {
                const JobRecord *j = p->active[i];
                const VmRecord *vm = state_find_vm(s, j->vm, j->source);
                if (!vm)
                        vm = state_find_vm(s, j->vm, j->destination);
                if (vm && vm->state != VM_SHUTOFF)
                        count_vm(find_node(p, j->destination), vm);
        }

        for (size_t i = 0; i < p->n_nodes; i++) {
                memory = add_sat(memory, p->nodes[i].memory);
                memory_capacity += p->nodes[i].memory_capacity;
                cpu = add_sat(cpu, p->nodes[i].cpu);
                cpu_capacity += p->nodes[i].cpu_capacity;
        }
        if (p->n_nodes > 0) {
                p->memory_share = fraction(memory >> MIB_SHIFT, memory_capacity);
                p->cpu_share = fraction(cpu, cpu_capacity);
        }
        for (size_t i = 0; i < p->n_nodes; i++) {
                Node *n = &p->nodes[i];
                n->term = node_term(p, n, n->memory, n->cpu);
                p->sum += n->term;
        }
        return 0;
}

uint32_t balance_score(const ClusterState *s, const MembershipView *view) {
        Planner p;
        uint32_t score = 0;
        if (planner_load(&p, s, view) >= 0)
                score = score_of(&p, p.sum);
        planner_done(&p);
        return score;
}

/* ---- what may move where ------------------------------------------------------ */

/* Operator control, for later (issue #5): pins ("this VM stays on this
 * node"), exclusions ("never move this VM", "never balance onto this
 * node") and affinity rules go here. Every candidate VM and every
 * (source, destination) pair passes through these two; returning false
 * leaves it out of the plan. */
static bool operator_allows_vm(const ClusterState *s, const VmRecord *vm) {
        return true;
}

static bool operator_allows_destination(const ClusterState *s, const NodeRecord *source, const NodeRecord *destination) {
        return true;
}

static bool same_vendor(const NodeRecord *a, const NodeRecord *b) {
        return streq(a->facts.cpu_vendor ? a->facts.cpu_vendor : "", b->facts.cpu_vendor ? b->facts.cpu_vendor : "");
}

/* As pre-flight: migrations go from old to new hypervisors only. */
static bool not_older(const NodeRecord *destination, const NodeRecord *source) {
        return ferry_version_compare(destination->facts.hypervisor_version ? destination->facts.hypervisor_version : "",
                                     source->facts.hypervisor_version ? source->facts.hypervisor_version : "") >= 0;
}

/* The VM's volumes, as pre-flight's check_volumes() sees them: no fs
 * volume, every shared one owned by the VM's node. And, beyond pre-flight,
 * none that another VM uses too (`users` counts the VMs not shut off per
 * volume): the volume follows the VM that moves, away from the other. */
static bool volumes_allow(const ClusterState *s, const VmRecord *vm, const uint32_t *users) {
        for (const char *q = vm->volumes; q && *q;) {
                const char *end = strchr(q, ' ');
                size_t len = end ? (size_t) (end - q) : strlen(q);
                char name[VOLUME_NAME_MAX + 1];
                if (len > 0 && len <= VOLUME_NAME_MAX) {
                        memcpy(name, q, len);
                        name[len] = 0;
                        /* Unknown names are not volumes of the cluster: pre-flight ignores them too. */
                        const VolumeRecord *v = state_find_volume(s, name);
                        if (v && (v->kind == VOLUME_FS || v->state != VOLUME_OWNED || v->owner != vm->node ||
                                  users[v - s->volumes] > 1))
                                return false;
                }
                q = end ? end + 1 : q + len;
        }
        return true;
}

static void count_volume_users(const ClusterState *s, uint32_t *users) {
        for (size_t i = 0; i < s->n_vms; i++) {
                const VmRecord *vm = &s->vms[i];
                if (vm->state == VM_SHUTOFF)
                        continue;
                for (const char *q = vm->volumes; q && *q;) {
                        const char *end = strchr(q, ' ');
                        size_t len = end ? (size_t) (end - q) : strlen(q);
                        char name[VOLUME_NAME_MAX + 1];
                        if (len > 0 && len <= VOLUME_NAME_MAX) {
                                memcpy(name, q, len);
                                name[len] = 0;
                                const VolumeRecord *v = state_find_volume(s, name);
                                if (v)
                                        users[v - s->volumes]++;
                        }
                        q = end ? end + 1 : q + len;
                }
        }
}

static int compare_string(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

static int compare_job_vm_newest(const void *a, const void *b) {
        const JobRecord *x = *(const JobRecord *const *) a, *y = *(const JobRecord *const *) b;
        int c = strcmp(x->vm, y->vm);
        if (c != 0)
                return c;
        return x->id > y->id ? -1 : x->id < y->id;
}

/* The VMs whose last two migrations failed, sorted; *ret NULL if none. */
static int failing_vms(const ClusterState *s, const char ***ret, size_t *ret_n) {
        _cleanup_free_ const JobRecord **done = NULL;
        const char **names = NULL;
        size_t n_done = 0, n = 0;

        *ret = NULL;
        *ret_n = 0;
        for (size_t i = 0; i < s->n_jobs; i++)
                n_done += job_state_is_final(s->jobs[i].state);
        if (n_done < 2)
                return 0;
        if (!(done = calloc(n_done, sizeof(JobRecord *))))
                return -ENOMEM;
        n_done = 0;
        for (size_t i = 0; i < s->n_jobs; i++)
                if (job_state_is_final(s->jobs[i].state))
                        done[n_done++] = &s->jobs[i];
        qsort(done, n_done, sizeof(JobRecord *), compare_job_vm_newest);
        for (size_t i = 0; i + 1 < n_done; i++) {
                if (i > 0 && streq(done[i - 1]->vm, done[i]->vm))
                        continue;       /* only the newest two of each VM */
                if (!streq(done[i]->vm, done[i + 1]->vm) || done[i]->state != JOB_FAILED ||
                    done[i + 1]->state != JOB_FAILED)
                        continue;
                if (!names && !(names = calloc(n_done, sizeof(char *))))
                        return -ENOMEM;
                names[n++] = done[i]->vm;       /* in name order already */
        }
        *ret = names;
        *ret_n = n;
        return 0;
}

/* The VMs that may move, grouped by node; the (source, destination)
 * pairs that are compatible. */
static int planner_candidates(Planner *p) {
        const ClusterState *s = p->s;
        _cleanup_free_ uint32_t *users = NULL;
        _cleanup_free_ const char **failing = NULL;
        size_t n_failing = 0, n = p->n_nodes;
        int r;

        if (s->n_volumes > 0 && !(users = calloc(s->n_volumes, sizeof(uint32_t))))
                return -ENOMEM;
        if (users)
                count_volume_users(s, users);
        r = failing_vms(s, &failing, &n_failing);
        if (r < 0)
                return r;
        if (!(p->node_start = calloc(n + 1, sizeof(size_t))) || !(p->compatible = calloc(n * n + 1, sizeof(bool))) ||
            !(p->pairs = calloc(n * n + 1, sizeof(Pair))))
                return -ENOMEM;
        if (s->n_vms > 0 && (!(p->cands = calloc(s->n_vms, sizeof(Candidate))) ||
                             !(p->by_node = calloc(s->n_vms, sizeof(size_t)))))
                return -ENOMEM;

        for (size_t i = 0; i < s->n_vms; i++) {
                const VmRecord *vm = &s->vms[i];
                const Node *node = find_node(p, vm->node);
                /* What pre-flight checks of the VM itself, without its cost. */
                if (!node || vm->state != VM_RUNNING || vm->n_passthrough > 0 ||
                    (i > 0 && streq(s->vms[i - 1].name, vm->name)) ||
                    (i + 1 < s->n_vms && streq(s->vms[i + 1].name, vm->name)) || find_active_job(p, vm->name) ||
                    (users && !volumes_allow(s, vm, users)) || !operator_allows_vm(s, vm))
                        continue;
                if (n_failing > 0 && bsearch(&vm->name, failing, n_failing, sizeof(char *), compare_string))
                        continue;
                p->cands[p->n_cands++] = (Candidate) { .vm = vm, .node = (size_t) (node - p->nodes), .alive = true };
        }
        /* Grouped by node, a stable counting sort: name order within. */
        for (size_t i = 0; i < p->n_cands; i++)
                p->node_start[p->cands[i].node + 1]++;
        for (size_t i = 0; i < n; i++)
                p->node_start[i + 1] += p->node_start[i];
        _cleanup_free_ size_t *fill = calloc(n + 1, sizeof(size_t));
        if (!fill)
                return -ENOMEM;
        memcpy(fill, p->node_start, (n + 1) * sizeof(size_t));
        for (size_t i = 0; i < p->n_cands; i++)
                p->by_node[fill[p->cands[i].node]++] = i;

        for (size_t a = 0; a < n; a++)
                for (size_t b = 0; b < n; b++) {
                        const NodeRecord *x = p->nodes[a].rec, *y = p->nodes[b].rec;
                        p->compatible[a * n + b] = a != b && same_vendor(x, y) && not_older(y, x) &&
                                                   operator_allows_destination(s, x, y);
                }
        return 0;
}

static void update_source_delta(Planner *p, Candidate *c) {
        const Node *n = &p->nodes[c->node];
        c->source_delta = node_term(p, n, sub_floor(n->memory, c->vm->memory),
                                    sub_floor(n->cpu, c->vm->cpu_use_permille)) - n->term;
}

/* The best VM to move from node a to node b: the largest drop of the sum
 * of terms, the first in name order among equals. */
static void search_pair(Planner *p, size_t a, size_t b) {
        const size_t n = p->n_nodes;
        Pair *pair = &p->pairs[a * n + b];
        const Node *dst = &p->nodes[b];

        *pair = (Pair) { .best = -1 };
        if (!p->compatible[a * n + b] || dst->room < 0)
                return;
        for (size_t k = p->node_start[a]; k < p->node_start[a + 1]; k++) {
                const Candidate *c = &p->cands[p->by_node[k]];
                if (!c->alive || c->vm->memory > (uint64_t) dst->room || c->vm->memory > p->budget)
                        continue;
                int64_t delta = c->source_delta + node_term(p, dst, add_sat(dst->memory, c->vm->memory),
                                                            add_sat(dst->cpu, c->vm->cpu_use_permille)) - dst->term;
                if (pair->best < 0 || delta < pair->delta)
                        *pair = (Pair) { .best = (ssize_t) p->by_node[k], .delta = delta };
        }
}

/* Whether move x (candidate cx from node ax to bx) goes before y:
 * the larger drop, then the source with fewer moves so far, then the VM's
 * name, then the destination's id. */
static bool better(const Planner *p, const Pair *x, size_t ax, size_t bx, const Pair *y, size_t ay, size_t by) {
        if (x->delta != y->delta)
                return x->delta < y->delta;
        if (p->nodes[ax].n_out != p->nodes[ay].n_out)
                return p->nodes[ax].n_out < p->nodes[ay].n_out;
        int c = strcmp(p->cands[x->best].vm->name, p->cands[y->best].vm->name);
        if (c != 0)
                return c < 0;
        return p->nodes[bx].rec->id < p->nodes[by].rec->id;
}

/* The best move of all pairs that lowers the sum, or false. */
static bool choose(Planner *p, size_t *ret_a, size_t *ret_b) {
        const size_t n = p->n_nodes;
        const Pair *best = NULL;

        for (size_t a = 0; a < n; a++)
                for (size_t b = 0; b < n; b++) {
                        Pair *pair = &p->pairs[a * n + b];
                        /* The budget only shrinks: a pair's best that still
                         * fits is still its best. */
                        if (pair->best >= 0 && p->cands[pair->best].vm->memory > p->budget)
                                search_pair(p, a, b);
                        if (pair->best < 0 || pair->delta >= 0)
                                continue;
                        if (!best || better(p, pair, a, b, best, *ret_a, *ret_b)) {
                                best = pair;
                                *ret_a = a;
                                *ret_b = b;
                        }
                }
        return best != NULL;
}

/* Everything that depends on nodes a or b again. */
static void refresh_after(Planner *p, size_t a, size_t b) {
        const size_t n = p->n_nodes;
        const size_t changed[2] = { a, b };

        for (size_t i = 0; i < 2; i++)
                for (size_t k = p->node_start[changed[i]]; k < p->node_start[changed[i] + 1]; k++)
                        update_source_delta(p, &p->cands[p->by_node[k]]);
        for (size_t x = 0; x < n; x++)
                for (size_t i = 0; i < 2; i++) {
                        search_pair(p, changed[i], x);
                        if (x != a && x != b)
                                search_pair(p, x, changed[i]);
                }
}

static const char *node_name(const Node *n) {
        return n->rec->facts.name;
}

static int add_move(BalancePlan *plan, size_t *allocated, const BalanceMove *m) {
        if (plan->n_moves == *allocated) {
                size_t next = *allocated ? *allocated * 2 : 8;
                BalanceMove *moves = realloc(plan->moves, next * sizeof(BalanceMove));
                if (!moves)
                        return -ENOMEM;
                plan->moves = moves;
                *allocated = next;
        }
        plan->moves[plan->n_moves++] = *m;
        return 0;
}

/* Why the plan moves nothing, or why it stops above the target. */
_printf_(3, 4)
static void why_not(BalancePlan *plan, const BalanceParams *params, const char *fmt, ...) {
        char a[16], b[16];
        size_t used = 0;
        va_list ap;

        if (plan->n_moves > 0) {
                format_score(a, plan->final_score_permille);
                format_score(b, params->target_permille);
                used = (size_t) MAX(snprintf(plan->why_not, sizeof(plan->why_not), "stopped at %s, above the target %s: ",
                                             a, b), 0);
                used = MIN(used, sizeof(plan->why_not) - 1);
        }
        va_start(ap, fmt);
        vsnprintf(plan->why_not + used, sizeof(plan->why_not) - used, fmt, ap);
        va_end(ap);
}

static int plan_moves(Planner *p, const BalanceParams *params, BalancePlan *plan) {
        const ClusterState *s = p->s;
        size_t allocated = 0;
        char refused[200] = "";
        char a[16], b[16];
        int r;

        r = planner_candidates(p);
        if (r < 0)
                return r;
        if (p->n_cands == 0) {
                why_not(plan, params, "no VM can move (each is not running, passes a device through, has a job, "
                        "lives on an fs volume or shares a volume, or failed twice)");
                return 0;
        }
        p->budget = params->max_bytes ? params->max_bytes : UINT64_MAX;
        for (size_t i = 0; i < p->n_cands; i++)
                update_source_delta(p, &p->cands[i]);
        for (size_t x = 0; x < p->n_nodes; x++)
                for (size_t y = 0; y < p->n_nodes; y++)
                        search_pair(p, x, y);

        while (plan->n_moves < params->max_moves) {
                size_t src = 0, dst = 0;
                uint32_t before = plan->final_score_permille;

                if (!choose(p, &src, &dst)) {
                        bool over_budget = false;
                        for (size_t i = 0; i < p->n_cands && !over_budget; i++)
                                over_budget = p->cands[i].alive && p->cands[i].vm->memory > p->budget;
                        if (over_budget)
                                why_not(plan, params, "no move lowers the score within what is left of max_bytes");
                        else if (*refused)
                                why_not(plan, params, "no other move lowers the score; pre-flight refused %s", refused);
                        else
                                why_not(plan, params, "no move lowers the score (no node that may take a movable VM "
                                        "has room for it, or every move makes it worse)");
                        return 0;
                }
                Pair pick = p->pairs[src * p->n_nodes + dst];
                Candidate *c = &p->cands[pick.best];
                uint32_t after = score_of(p, p->sum + pick.delta);
                if (before - after < params->min_gain_permille) {
                        format_score(a, params->min_gain_permille);
                        format_score(b, before - after);
                        why_not(plan, params, "no move lowers the score by %s or more (the best: %s)", a, b);
                        return 0;
                }

                /* Only the plan's own effects are beyond pre-flight: ask it
                 * about the rest, in case the filter above missed something. */
                PreflightResult check;
                preflight_run(s, p->view, c->vm->name, p->nodes[dst].rec->id, &check);
                if (!check.passed) {
                        const PreflightCheck *bad = preflight_first_failure(&check);
                        snprintf(refused, sizeof(refused), "%.60s: %.130s", c->vm->name,
                                 bad ? bad->message : "failed");
                        c->alive = false;
                        for (size_t x = 0; x < p->n_nodes; x++)
                                search_pair(p, src, x);
                        continue;
                }

                Node *from = &p->nodes[src], *to = &p->nodes[dst];
                BalanceMove m = {
                        .vm = c->vm->name,
                        .source = from->rec->id,
                        .destination = to->rec->id,
                        .memory = c->vm->memory,
                        .score_before_permille = before,
                        .score_after_permille = after,
                };
                snprintf(m.reason, sizeof(m.reason),
                         "memory/CPU %u%%/%u%% on %.40s, %u%%/%u%% on %.40s; the cluster's %u%%/%u%%",
                         percent(fraction(from->memory >> MIB_SHIFT, from->memory_capacity)),
                         percent(fraction(from->cpu, from->cpu_capacity)), node_name(from),
                         percent(fraction(to->memory >> MIB_SHIFT, to->memory_capacity)),
                         percent(fraction(to->cpu, to->cpu_capacity)), node_name(to), percent(p->memory_share),
                         percent(p->cpu_share));
                r = add_move(plan, &allocated, &m);
                if (r < 0)
                        return r;

                from->memory = sub_floor(from->memory, c->vm->memory);
                from->cpu = sub_floor(from->cpu, c->vm->cpu_use_permille);
                to->memory = add_sat(to->memory, c->vm->memory);
                to->cpu = add_sat(to->cpu, c->vm->cpu_use_permille);
                p->sum -= from->term + to->term;
                from->term = node_term(p, from, from->memory, from->cpu);
                to->term = node_term(p, to, to->memory, to->cpu);
                p->sum += from->term + to->term;
                to->room -= (int64_t) c->vm->memory;    /* <= room, which is an int64 */
                from->n_out++;
                if (p->budget != UINT64_MAX)
                        p->budget -= c->vm->memory;
                c->alive = false;
                plan->final_score_permille = score_of(p, p->sum);

                if (plan->final_score_permille <= params->target_permille)
                        return 0;
                refresh_after(p, src, dst);
        }
        why_not(plan, params, "at most %" PRIu32 " move(s) per round", params->max_moves);
        return 0;
}

int balance_plan(const ClusterState *s, const MembershipView *view, const BalanceParams *params, BalancePlan *ret) {
        BalancePlan plan = {};
        Planner p;
        char a[16], b[16];
        int r;

        if (params->target_permille > params->threshold_permille)
                return -EINVAL;
        r = planner_load(&p, s, view);
        if (r >= 0) {
                plan.score_permille = plan.final_score_permille = score_of(&p, p.sum);
                plan.needed = plan.score_permille > params->threshold_permille;
                format_score(a, plan.score_permille);
                format_score(b, params->threshold_permille);
                if (!plan.needed)
                        snprintf(plan.why_not, sizeof(plan.why_not), "score %s at or under the threshold %s%s", a, b,
                                 p.n_nodes < 2 ? " (fewer than two nodes can take VMs)" : "");
                else if (!view->quorate)
                        snprintf(plan.why_not, sizeof(plan.why_not), "this partition is not quorate: nothing may move");
                else if (params->max_moves == 0)
                        snprintf(plan.why_not, sizeof(plan.why_not), "max_moves is 0");
                else
                        r = plan_moves(&p, params, &plan);
        }
        planner_done(&p);
        if (r < 0) {
                balance_plan_done(&plan);
                return r;
        }
        *ret = plan;
        return 0;
}

void balance_plan_done(BalancePlan *p) {
        free(p->moves);
        *p = (BalancePlan) {};
}
