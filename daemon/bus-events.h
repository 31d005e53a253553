/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Events and metrics of the D-Bus API (docs/DBUS.md): the Event signal and
 * the RecentEvents and GetMetrics methods of the cluster object; each event
 * logged with its fields (FERRY_VM=... in the journal); metrics_file
 * written every metrics_interval. The diff and the numbers themselves are
 * pure code: events.c, metrics.c. */

typedef struct Daemon Daemon;
typedef struct EventsContext EventsContext;

/* Registers the methods and the signal on the cluster object (before the
 * bus name is taken) and starts the metrics_file timer. */
int bus_events_setup(Daemon *d);
/* After every commit and every change of membership, quorum or sync:
 * works out the events, then logs, counts, keeps and sends them. */
void bus_events_update(Daemon *d);
/* Stops the timer and removes metrics_file. */
void bus_events_done(Daemon *d);
