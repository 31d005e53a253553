/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The migration part of the D-Bus API (docs/DBUS.md): ListVms,
 * CheckMigration, Migrate and CancelJob on the cluster object, and one
 * object per job. */

#include <systemd/sd-bus.h>

typedef struct Daemon Daemon;

int method_list_vms(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_check_migration(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_migrate(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_cancel_job(sd_bus_message *m, void *userdata, sd_bus_error *error);

int bus_migration_setup(Daemon *d);
void bus_migration_emit_changes(Daemon *d);
