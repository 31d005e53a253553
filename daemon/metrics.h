/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Metrics in the Prometheus text exposition format (version 0.0.4), for
 * `ferryctl metrics` (GetMetrics) and node_exporter's textfile collector
 * (metrics_file in ferryd.conf).
 *
 * Pure: counters are folded from the events this ferryd saw (events.h), so
 * they count the whole cluster since this ferryd started (every ferryd
 * counts the same jobs: aggregate across nodes with max, not sum); gauges
 * are read from the replicated state and the membership view at render
 * time. The names and their meaning are listed in docs/DBUS.md. */

#include <stdbool.h>
#include <stdint.h>

#include "cluster-state.h"
#include "events.h"

#define METRICS_BUCKETS_MAX 12

typedef struct MetricsHistogram {
        uint64_t buckets[METRICS_BUCKETS_MAX];  /* cumulative: observations <= the bucket's bound */
        uint64_t count;
        uint64_t sum_usec;
} MetricsHistogram;

typedef struct MetricsCounters {
        uint64_t start_time_usec;               /* CLOCK_REALTIME when counting began */
        uint64_t events;
        uint64_t membership_changes;
        uint64_t jobs_queued;
        uint64_t migrations_started;
        uint64_t migrations_succeeded;
        uint64_t migrations_failed;
        uint64_t migrations_cancelled;
        uint64_t bytes;
        MetricsHistogram duration;              /* of completed migrations */
        MetricsHistogram downtime;              /* of completed migrations */
} MetricsCounters;

/* What the replicated state does not hold: this member's view. */
typedef struct MetricsView {
        const ClusterState *state;              /* may be NULL before the replica exists */
        bool quorate;
        uint32_t members;
        uint32_t nodes;                         /* nodes the cluster knows */
        const char *version;
} MetricsView;

void metrics_observe(MetricsCounters *m, const Event *e);

/* The exposition text, newly allocated, or NULL on OOM. */
char *metrics_render(const MetricsCounters *m, const MetricsView *view);

/* Writes text to path atomically: a temporary file in the same directory
 * (a name the textfile collector ignores), then rename(). Returns 0 or
 * -errno. */
int metrics_write_file(const char *path, const char *text);
