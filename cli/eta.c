/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <string.h>

#include "eta.h"

Eta eta_estimate(const EtaSample *samples, size_t n) {
        const EtaSample *w, *last;
        uint64_t net;

        if (n < ETA_WINDOW)
                return (Eta) { .kind = ETA_UNKNOWN };

        w = samples + n - ETA_WINDOW;
        last = w + ETA_WINDOW - 1;

        for (size_t i = 1; i < ETA_WINDOW; i++)
                if (w[i].remaining > w[i - 1].remaining)
                        return (Eta) { .kind = ETA_NOT_CONVERGING };

        if (last->remaining == 0)
                return (Eta) { .kind = ETA_KNOWN, .usec = 0 };

        if (last->remaining >= w[0].remaining || last->rate <= last->dirty_rate)
                return (Eta) { .kind = ETA_NOT_CONVERGING };

        net = last->rate - last->dirty_rate;
        /* remaining / net seconds, in µs, without overflowing for any
         * remaining below 2^64 / 10^6 bytes (16 TiB) and beyond it rounded
         * to whole seconds. */
        if (last->remaining <= UINT64_MAX / UINT64_C(1000000))
                return (Eta) { .kind = ETA_KNOWN, .usec = last->remaining * UINT64_C(1000000) / net };
        return (Eta) { .kind = ETA_KNOWN, .usec = last->remaining / net * UINT64_C(1000000) };
}

void eta_history_reset(EtaHistory *h) {
        *h = (EtaHistory) {};
}

bool eta_history_add(EtaHistory *h, const EtaSample *s) {
        if (h->n > 0) {
                const EtaSample *prev = h->samples + h->n - 1;

                if (prev->remaining == s->remaining &&
                    prev->rate == s->rate &&
                    prev->dirty_rate == s->dirty_rate &&
                    s->time_usec < prev->time_usec + ETA_STALL_USEC)
                        return false;
        }

        if (h->n == ETA_WINDOW) {
                memmove(h->samples, h->samples + 1, (ETA_WINDOW - 1) * sizeof(EtaSample));
                h->n--;
        }
        h->samples[h->n++] = *s;
        return true;
}

Eta eta_history_estimate(const EtaHistory *h) {
        return eta_estimate(h->samples, h->n);
}
