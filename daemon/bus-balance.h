/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The balance part of the D-Bus API (docs/DBUS.md): PlanBalance, Balance,
 * GetBalance, SetBalance on the cluster object. */

#include <systemd/sd-bus.h>

int method_plan_balance(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_balance(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_get_balance(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_set_balance(sd_bus_message *m, void *userdata, sd_bus_error *error);
