/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The policy part of the D-Bus API (docs/DBUS.md): the convergence policy
 * of the cluster and of single VMs (state-policies.h). */

#include <systemd/sd-bus.h>

int method_set_convergence_policy(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_get_convergence_policy(sd_bus_message *m, void *userdata, sd_bus_error *error);
int method_list_policies(sd_bus_message *m, void *userdata, sd_bus_error *error);
