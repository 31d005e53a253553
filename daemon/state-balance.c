/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "state-balance.h"

#include <errno.h>
#include <stdio.h>

#include "cluster-state.h"

void balance_settings_encode(const BalanceSettings *b, Writer *w) {
        writer_put_bool(w, b->automatic);
        writer_put_u32(w, b->threshold_permille);
        writer_put_u32(w, b->target_permille);
        writer_put_u32(w, b->max_moves);
        writer_put_u64(w, b->max_bytes);
        writer_put_u32(w, b->min_gain_permille);
}

int balance_settings_decode(Reader *r, BalanceSettings *ret) {
        BalanceSettings b = {};
        char err[128];

        b.automatic = reader_get_bool(r);
        b.threshold_permille = reader_get_u32(r);
        b.target_permille = reader_get_u32(r);
        b.max_moves = reader_get_u32(r);
        b.max_bytes = reader_get_u64(r);
        b.min_gain_permille = reader_get_u32(r);
        if (reader_error(r) < 0 || balance_settings_validate(&b, err, sizeof(err)) < 0)
                return -EBADMSG;
        *ret = b;
        return 0;
}

int balance_settings_validate(const BalanceSettings *b, char *err, size_t err_len) {
        if (b->threshold_permille > BALANCE_PERMILLE_MAX || b->target_permille > BALANCE_PERMILLE_MAX ||
            b->min_gain_permille > BALANCE_PERMILLE_MAX) {
                snprintf(err, err_len, "scores are 0..%u permille", BALANCE_PERMILLE_MAX);
                return -EINVAL;
        }
        /* Without a gap between start and stop the balancer would start
         * again right after each round: that gap is the hysteresis. */
        if (b->threshold_permille && b->target_permille && b->target_permille >= b->threshold_permille) {
                snprintf(err, err_len, "the target (%u) must be below the threshold (%u)",
                         (unsigned) b->target_permille, (unsigned) b->threshold_permille);
                return -EINVAL;
        }
        if (b->max_moves > BALANCE_MOVES_MAX) {
                snprintf(err, err_len, "at most %u moves per round", BALANCE_MOVES_MAX);
                return -EINVAL;
        }
        return 0;
}

int state_apply_set_balance(ClusterState *s, const BalanceSettings *b) {
        char err[128];

        if (balance_settings_validate(b, err, sizeof(err)) < 0)
                return -EINVAL;
        if (s->balance.automatic == b->automatic && s->balance.threshold_permille == b->threshold_permille &&
            s->balance.target_permille == b->target_permille && s->balance.max_moves == b->max_moves &&
            s->balance.max_bytes == b->max_bytes && s->balance.min_gain_permille == b->min_gain_permille)
                return 0;
        s->balance = *b;
        s->commit++;
        return 1;
}
