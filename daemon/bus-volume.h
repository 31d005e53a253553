/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The volume part of the D-Bus API (docs/DBUS.md): ListVolumes, and
 * AddVolume, RemoveVolume, MoveVolume, ConfirmFenced (one handler: they
 * share parsing, checks and authorization). */

#include <systemd/sd-bus.h>

int method_list_volumes(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_volume_call(sd_bus_message *m, void *userdata, sd_bus_error *error);
