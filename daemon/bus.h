/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* ferryd's D-Bus API (docs/DBUS.md): the cluster object, one object per
 * node, the object manager, and PropertiesChanged for whatever changed. */

typedef struct Daemon Daemon;

int bus_setup(Daemon *d);
/* Emits PropertiesChanged / InterfacesAdded for what differs from the last
 * emission. Cheap when nothing changed. */
void bus_emit_changes(Daemon *d);
void bus_done(Daemon *d);
