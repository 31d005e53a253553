/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* How long a live migration still needs, for `ferryctl migrate --wait`.
 *
 * The arithmetic is remaining / (rate − dirty rate), but that number is
 * only worth showing while the migration converges: the guest dirties
 * memory while it is copied, and when it dirties as fast as the link
 * carries, the remaining memory does not shrink and there is no "time
 * left" to promise. So an estimate needs
 *   - ETA_WINDOW readings, to have seen a trend at all ("—" before that);
 *   - the remaining bytes not growing from one reading to the next in that
 *     window, and less at its end than at its start;
 *   - a transfer rate above the dirty rate, at the latest reading;
 * and otherwise the answer is "not converging".
 *
 * Pure code: no bus, no clock; tested by cli/test-eta.c. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ETA_WINDOW 3
/* A reading that repeats the last one is taken for the same update seen
 * twice (the signal and the poll) unless this long passed: then it is a
 * migration that made no progress, and counts. */
#define ETA_STALL_USEC (5 * UINT64_C(1000000))

typedef struct EtaSample {
        uint64_t time_usec;     /* CLOCK_MONOTONIC, when it was read */
        uint64_t remaining;     /* bytes */
        uint64_t rate;          /* bytes/s */
        uint64_t dirty_rate;    /* bytes/s */
} EtaSample;

typedef enum EtaKind {
        ETA_UNKNOWN,            /* not enough readings yet */
        ETA_NOT_CONVERGING,
        ETA_KNOWN,
} EtaKind;

typedef struct Eta {
        EtaKind kind;
        uint64_t usec;          /* ETA_KNOWN: time left */
} Eta;

/* The last ETA_WINDOW distinct readings, oldest first. */
typedef struct EtaHistory {
        EtaSample samples[ETA_WINDOW];
        size_t n;
} EtaHistory;

/* The estimate from n readings, oldest first (only the last ETA_WINDOW
 * count). */
Eta eta_estimate(const EtaSample *samples, size_t n);

void eta_history_reset(EtaHistory *h);
/* Records a reading, unless it only repeats the last one (see
 * ETA_STALL_USEC). Returns true if it was recorded. */
bool eta_history_add(EtaHistory *h, const EtaSample *s);
Eta eta_history_estimate(const EtaHistory *h);
