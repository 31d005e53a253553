/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The drain part of the D-Bus API (docs/DBUS.md): Drain, Undrain and
 * PlanDrain on the cluster object, and the Drain* properties of nodes. */

#include <stdint.h>
#include <systemd/sd-bus.h>

typedef struct Daemon Daemon;

int method_drain(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_undrain(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_plan_drain(sd_bus_message *m, void *userdata, sd_bus_error *error);
/* DrainMode, DrainState, DrainRemaining, DrainBlockers of node `id`. */
int bus_drain_node_property(Daemon *d, uint32_t id, const char *property, sd_bus_message *reply);
/* A short text that changes whenever a node's drain properties do. */
void bus_drain_fingerprint(Daemon *d, uint32_t id, char *buf, size_t len);
