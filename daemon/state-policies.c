/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "state-policies.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster-state.h"
#include "macro.h"
#include "state-vms.h"

static const char *const field_names[] = {
        "downtime_steps",
        "stall_rounds",
        "progress_timeout",
        "completion_timeout_per_gib",
        "auto_converge",
        "postcopy",
};

const char *convergence_field_to_string(ConvergenceField f) {
        for (size_t i = 0; i < ELEMENTSOF(field_names); i++)
                if (f == (1U << i))
                        return field_names[i];
        return NULL;
}

ConvergenceField convergence_field_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(field_names); i++)
                if (streq(s, field_names[i]))
                        return (ConvergenceField) (1U << i);
        return 0;
}

int convergence_settings_validate(const ConvergenceSettings *s, char *err, size_t err_len) {
        if (s->set & ~(uint32_t) _CONVERGENCE_FIELD_ALL) {
                snprintf(err, err_len, "unknown convergence fields 0x%x", (unsigned) (s->set & ~(uint32_t) _CONVERGENCE_FIELD_ALL));
                return -EINVAL;
        }
        if (s->set & CONVERGENCE_FIELD_DOWNTIME_STEPS) {
                if (s->n_downtime_steps == 0 || s->n_downtime_steps > POLICY_DOWNTIME_STEPS_MAX) {
                        snprintf(err, err_len, "downtime_steps needs 1 to %u steps, not %u", POLICY_DOWNTIME_STEPS_MAX,
                                 (unsigned) s->n_downtime_steps);
                        return -EINVAL;
                }
                for (uint32_t i = 0; i < s->n_downtime_steps; i++) {
                        uint32_t ms = s->downtime_steps_ms[i];
                        if (ms == 0 || ms > POLICY_DOWNTIME_MS_MAX) {
                                snprintf(err, err_len, "downtime_steps: %u ms is outside 1..%u ms", (unsigned) ms,
                                         POLICY_DOWNTIME_MS_MAX);
                                return -EINVAL;
                        }
                        /* A ladder that goes down would be a step backwards
                         * when a migration is already not converging. */
                        if (i > 0 && ms <= s->downtime_steps_ms[i - 1]) {
                                snprintf(err, err_len, "downtime_steps must rise step by step (%u ms after %u ms)",
                                         (unsigned) ms, (unsigned) s->downtime_steps_ms[i - 1]);
                                return -EINVAL;
                        }
                }
        }
        if ((s->set & CONVERGENCE_FIELD_STALL_ROUNDS) &&
            (s->stall_rounds == 0 || s->stall_rounds > POLICY_STALL_ROUNDS_MAX)) {
                snprintf(err, err_len, "stall_rounds must be 1..%u, not %u", POLICY_STALL_ROUNDS_MAX,
                         (unsigned) s->stall_rounds);
                return -EINVAL;
        }
        if ((s->set & CONVERGENCE_FIELD_PROGRESS_TIMEOUT) &&
            (s->progress_timeout_sec == 0 || s->progress_timeout_sec > POLICY_TIMEOUT_SEC_MAX)) {
                snprintf(err, err_len, "progress_timeout must be 1..%u seconds, not %u", POLICY_TIMEOUT_SEC_MAX,
                         (unsigned) s->progress_timeout_sec);
                return -EINVAL;
        }
        if ((s->set & CONVERGENCE_FIELD_COMPLETION_TIMEOUT) &&
            (s->completion_timeout_per_gib_sec == 0 || s->completion_timeout_per_gib_sec > POLICY_TIMEOUT_SEC_MAX)) {
                snprintf(err, err_len, "completion_timeout_per_gib must be 1..%u seconds, not %u",
                         POLICY_TIMEOUT_SEC_MAX, (unsigned) s->completion_timeout_per_gib_sec);
                return -EINVAL;
        }
        return 0;
}

static void copy_field(ConvergenceSettings *dst, const ConvergenceSettings *src, ConvergenceField f) {
        switch (f) {
        case CONVERGENCE_FIELD_DOWNTIME_STEPS:
                memcpy(dst->downtime_steps_ms, src->downtime_steps_ms, sizeof(dst->downtime_steps_ms));
                dst->n_downtime_steps = src->n_downtime_steps;
                break;
        case CONVERGENCE_FIELD_STALL_ROUNDS:
                dst->stall_rounds = src->stall_rounds;
                break;
        case CONVERGENCE_FIELD_PROGRESS_TIMEOUT:
                dst->progress_timeout_sec = src->progress_timeout_sec;
                break;
        case CONVERGENCE_FIELD_COMPLETION_TIMEOUT:
                dst->completion_timeout_per_gib_sec = src->completion_timeout_per_gib_sec;
                break;
        case CONVERGENCE_FIELD_AUTO_CONVERGE:
                dst->auto_converge = src->auto_converge;
                break;
        case CONVERGENCE_FIELD_POSTCOPY:
                dst->postcopy = src->postcopy;
                break;
        default:
                return;
        }
        dst->set |= f;
}

static bool settings_equal(const ConvergenceSettings *a, const ConvergenceSettings *b) {
        /* Field by field: memcmp would compare padding. Unset fields are
         * zero (clear_field), so comparing them too is exact. */
        if (a->set != b->set || a->n_downtime_steps != b->n_downtime_steps || a->stall_rounds != b->stall_rounds ||
            a->progress_timeout_sec != b->progress_timeout_sec ||
            a->completion_timeout_per_gib_sec != b->completion_timeout_per_gib_sec ||
            a->auto_converge != b->auto_converge || a->postcopy != b->postcopy)
                return false;
        for (uint32_t i = 0; i < a->n_downtime_steps; i++)
                if (a->downtime_steps_ms[i] != b->downtime_steps_ms[i])
                        return false;
        return true;
}

static void clear_field(ConvergenceSettings *s, ConvergenceField f) {
        ConvergenceSettings zero = {};
        copy_field(s, &zero, f);
        s->set &= ~(uint32_t) f;
}

void convergence_settings_resolve(ConvergenceSettings *out, const ConvergenceSettings *const *layers, size_t n_layers,
                                  int source[]) {
        *out = (ConvergenceSettings) {};
        for (size_t b = 0; b < ELEMENTSOF(field_names); b++) {
                ConvergenceField f = (ConvergenceField) (1U << b);
                if (source)
                        source[b] = -1;
                for (size_t i = 0; i < n_layers; i++)
                        if (layers[i] && (layers[i]->set & f)) {
                                copy_field(out, layers[i], f);
                                if (source)
                                        source[b] = (int) i;
                                break;
                        }
        }
}

/* Only the fields that are set are on the wire, so unset fields cannot
 * carry stray values into the digest. */
static void settings_encode(const ConvergenceSettings *s, Writer *w) {
        writer_put_u32(w, s->set);
        if (s->set & CONVERGENCE_FIELD_DOWNTIME_STEPS) {
                writer_put_u8(w, (uint8_t) s->n_downtime_steps);
                for (uint32_t i = 0; i < s->n_downtime_steps; i++)
                        writer_put_u32(w, s->downtime_steps_ms[i]);
        }
        if (s->set & CONVERGENCE_FIELD_STALL_ROUNDS)
                writer_put_u32(w, s->stall_rounds);
        if (s->set & CONVERGENCE_FIELD_PROGRESS_TIMEOUT)
                writer_put_u32(w, s->progress_timeout_sec);
        if (s->set & CONVERGENCE_FIELD_COMPLETION_TIMEOUT)
                writer_put_u32(w, s->completion_timeout_per_gib_sec);
        if (s->set & CONVERGENCE_FIELD_AUTO_CONVERGE)
                writer_put_bool(w, s->auto_converge);
        if (s->set & CONVERGENCE_FIELD_POSTCOPY)
                writer_put_bool(w, s->postcopy);
}

static int settings_decode(Reader *r, ConvergenceSettings *ret) {
        ConvergenceSettings s = {};
        char err[128];

        s.set = reader_get_u32(r);
        if (reader_error(r) < 0 || (s.set & ~(uint32_t) _CONVERGENCE_FIELD_ALL))
                return -EBADMSG;
        if (s.set & CONVERGENCE_FIELD_DOWNTIME_STEPS) {
                s.n_downtime_steps = reader_get_u8(r);
                if (s.n_downtime_steps > POLICY_DOWNTIME_STEPS_MAX)
                        return -EBADMSG;
                for (uint32_t i = 0; i < s.n_downtime_steps; i++)
                        s.downtime_steps_ms[i] = reader_get_u32(r);
        }
        if (s.set & CONVERGENCE_FIELD_STALL_ROUNDS)
                s.stall_rounds = reader_get_u32(r);
        if (s.set & CONVERGENCE_FIELD_PROGRESS_TIMEOUT)
                s.progress_timeout_sec = reader_get_u32(r);
        if (s.set & CONVERGENCE_FIELD_COMPLETION_TIMEOUT)
                s.completion_timeout_per_gib_sec = reader_get_u32(r);
        if (s.set & CONVERGENCE_FIELD_AUTO_CONVERGE)
                s.auto_converge = reader_get_bool(r);
        if (s.set & CONVERGENCE_FIELD_POSTCOPY)
                s.postcopy = reader_get_bool(r);
        /* Values outside the bounds never come from a correct encoder. */
        if (reader_error(r) < 0 || convergence_settings_validate(&s, err, sizeof(err)) < 0)
                return -EBADMSG;
        *ret = s;
        return 0;
}

void set_policy_command_done(SetPolicyCommand *c) {
        free(c->scope);
        *c = (SetPolicyCommand) {};
}

void set_policy_command_encode(const SetPolicyCommand *c, Writer *w) {
        writer_put_string(w, c->scope);
        settings_encode(&c->values, w);
        writer_put_u32(w, c->clear);
}

int set_policy_command_decode(Reader *r, SetPolicyCommand *ret) {
        SetPolicyCommand c = {};

        c.scope = reader_dup_string(r);
        if (reader_error(r) < 0 || strlen(c.scope) >= POLICY_SCOPE_MAX || settings_decode(r, &c.values) < 0)
                goto bad;
        c.clear = reader_get_u32(r);
        if (reader_error(r) < 0 || (c.clear & ~(uint32_t) _CONVERGENCE_FIELD_ALL) || (c.clear & c.values.set))
                goto bad;
        *ret = c;
        return 0;
bad:
        set_policy_command_done(&c);
        return -EBADMSG;
}

static size_t policy_index(const ClusterState *s, const char *scope, bool *found) {
        size_t lo = 0, hi = s->n_policies;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (strcmp(s->policies[mid].scope, scope) < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        *found = lo < s->n_policies && streq(s->policies[lo].scope, scope);
        return lo;
}

const PolicyRecord *state_find_policy(const ClusterState *s, const char *scope) {
        bool found;
        size_t i = policy_index(s, scope, &found);
        return found ? &s->policies[i] : NULL;
}

int state_apply_set_policy(ClusterState *s, const SetPolicyCommand *c) {
        char err[128];
        bool found;
        size_t count;

        if (!c->scope || strlen(c->scope) >= POLICY_SCOPE_MAX || (c->clear & c->values.set) ||
            (c->clear & ~(uint32_t) _CONVERGENCE_FIELD_ALL) ||
            convergence_settings_validate(&c->values, err, sizeof(err)) < 0)
                return -EINVAL;

        size_t i = policy_index(s, c->scope, &found);
        if (!found) {
                if (c->values.set == 0)
                        return 0;       /* clearing what is not there */
                if (*c->scope && !state_find_vm_any(s, c->scope, &count))
                        return -EINVAL;
        }

        ConvergenceSettings next = found ? s->policies[i].convergence : (ConvergenceSettings) {};
        for (uint32_t b = 0; b < ELEMENTSOF(field_names); b++) {
                ConvergenceField f = (ConvergenceField) (1U << b);
                if (c->values.set & f)
                        copy_field(&next, &c->values, f);
                else if (c->clear & f)
                        clear_field(&next, f);
        }
        if (found && settings_equal(&next, &s->policies[i].convergence))
                return 0;

        if (next.set == 0) {
                /* found is true here: nothing left, the record goes. */
                free(s->policies[i].scope);
                memmove(s->policies + i, s->policies + i + 1, (s->n_policies - i - 1) * sizeof(PolicyRecord));
                s->n_policies--;
        } else if (found)
                s->policies[i].convergence = next;
        else {
                char *scope = strdup(c->scope);
                PolicyRecord *p;
                if (!scope)
                        return -ENOMEM;
                p = realloc(s->policies, (s->n_policies + 1) * sizeof(PolicyRecord));
                if (!p) {
                        free(scope);
                        return -ENOMEM;
                }
                s->policies = p;
                memmove(s->policies + i + 1, s->policies + i, (s->n_policies - i) * sizeof(PolicyRecord));
                s->policies[i] = (PolicyRecord) { .scope = scope, .convergence = next };
                s->n_policies++;
        }
        s->commit++;
        return 1;
}

void state_policies_encode(const ClusterState *s, Writer *w) {
        writer_put_u32(w, (uint32_t) s->n_policies);
        for (size_t i = 0; i < s->n_policies; i++) {
                writer_put_string(w, s->policies[i].scope);
                settings_encode(&s->policies[i].convergence, w);
        }
}

int state_policies_decode(ClusterState *s, Reader *r) {
        uint32_t n = reader_get_u32(r);

        if (reader_error(r) < 0 || n > STATE_POLICIES_MAX)
                return -EBADMSG;
        if (n > 0 && !(s->policies = calloc(n, sizeof(PolicyRecord))))
                return -ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
                PolicyRecord *p = &s->policies[i];
                p->scope = reader_dup_string(r);
                if (!p->scope)
                        return -EBADMSG;
                s->n_policies++;
                /* Canonical: sorted without duplicates, no empty records. */
                if (strlen(p->scope) >= POLICY_SCOPE_MAX || settings_decode(r, &p->convergence) < 0 ||
                    p->convergence.set == 0 || (i > 0 && strcmp(s->policies[i - 1].scope, p->scope) >= 0))
                        return -EBADMSG;
        }
        return 0;
}

void state_policies_free(ClusterState *s) {
        for (size_t i = 0; i < s->n_policies; i++)
                free(s->policies[i].scope);
        free(s->policies);
        s->policies = NULL;
        s->n_policies = 0;
}

const char *policy_source_to_string(int source) {
        switch (source) {
        case POLICY_SOURCE_JOB: return "job";
        case POLICY_SOURCE_VM: return "vm";
        case POLICY_SOURCE_CLUSTER: return "cluster";
        case POLICY_SOURCE_NODE: return "ferryd.conf";
        default: return "default";
        }
}

void state_policy_effective(const ClusterState *s, const char *vm, const ConvergenceSettings *job,
                            const ConvergenceSettings *node, ConvergenceSettings *out, int source[]) {
        const PolicyRecord *v = vm && *vm ? state_find_policy(s, vm) : NULL;
        const PolicyRecord *c = state_find_policy(s, "");
        const ConvergenceSettings *layers[_POLICY_SOURCE_MAX] = {
                [POLICY_SOURCE_JOB] = job,
                [POLICY_SOURCE_VM] = v ? &v->convergence : NULL,
                [POLICY_SOURCE_CLUSTER] = c ? &c->convergence : NULL,
                [POLICY_SOURCE_NODE] = node,
        };

        convergence_settings_resolve(out, layers, ELEMENTSOF(layers), source);
}

char *convergence_settings_format(const ConvergenceSettings *s, const int source[], char *buf, size_t len) {
        size_t w = 0;

#define APPEND(...)                                                             \
        do {                                                                    \
                if (w < len) {                                                  \
                        int _n = snprintf(buf + w, len - w, __VA_ARGS__);       \
                        w = _n < 0 ? len : MIN(len, w + (size_t) _n);           \
                }                                                               \
        } while (0)

        if (len == 0)
                return buf;
        buf[0] = 0;
        for (size_t b = 0; b < ELEMENTSOF(field_names); b++) {
                ConvergenceField f = (ConvergenceField) (1U << b);
                if (!(s->set & f))
                        continue;
                APPEND("%s%s=", w > 0 ? " " : "", field_names[b]);
                switch (f) {
                case CONVERGENCE_FIELD_DOWNTIME_STEPS:
                        for (uint32_t i = 0; i < s->n_downtime_steps; i++)
                                APPEND("%s%u", i > 0 ? "," : "", (unsigned) s->downtime_steps_ms[i]);
                        break;
                case CONVERGENCE_FIELD_STALL_ROUNDS:
                        APPEND("%u", (unsigned) s->stall_rounds);
                        break;
                case CONVERGENCE_FIELD_PROGRESS_TIMEOUT:
                        APPEND("%u", (unsigned) s->progress_timeout_sec);
                        break;
                case CONVERGENCE_FIELD_COMPLETION_TIMEOUT:
                        APPEND("%u", (unsigned) s->completion_timeout_per_gib_sec);
                        break;
                case CONVERGENCE_FIELD_AUTO_CONVERGE:
                        APPEND("%s", s->auto_converge ? "yes" : "no");
                        break;
                case CONVERGENCE_FIELD_POSTCOPY:
                        APPEND("%s", s->postcopy ? "yes" : "no");
                        break;
                default:
                        break;
                }
                if (source && source[b] >= POLICY_SOURCE_JOB && source[b] <= POLICY_SOURCE_CLUSTER)
                        APPEND(" [%s]", policy_source_to_string(source[b]));
        }
#undef APPEND
        return buf;
}
