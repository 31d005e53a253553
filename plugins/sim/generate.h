/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Generates a world from a seed: same options, same files, byte for byte.
 *
 * Nodes are node1..nodeN. Vendors and hypervisor versions are dealt round
 * the nodes (node i: vendor i mod V, version (i / V) mod H), so every
 * combination appears when N >= V x H; CPU model, CPU count, memory and link
 * speed are drawn per node. VMs are vm001..vmM (as many digits as M needs),
 * with sizes, dirty rates, working sets, CPU requirements, passthrough
 * devices and local disks drawn from fixed distributions (see README.md),
 * each placed on the first node, from a random one onwards, that keeps
 * under fill_percent of its memory. */

#include "world.h"

typedef struct SimGenerateOptions {
        unsigned nodes;
        unsigned vms;
        uint64_t seed;
        const char *const *vendors;     /* NULL: { "AuthenticAMD" } */
        size_t n_vendors;
        const char *const *versions;    /* NULL: { "8.0.0" } */
        size_t n_versions;
        unsigned fill_percent;          /* 0: 80 */
        SimParams params;               /* written as params.conf */
} SimGenerateOptions;

/* Seed 1 (as params.conf's default), params from sim_params_default(), the
 * rest 0 (the defaults above). */
void sim_generate_options_default(SimGenerateOptions *o);

/* -EEXIST if dir already holds a world, -ENOSPC if the VMs do not fit (e
 * says how many did), -EINVAL for no nodes or an invalid vendor or
 * version. */
int sim_world_generate(const char *dir, const SimGenerateOptions *o, SimError *e);
