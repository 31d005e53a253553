/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The facts this host publishes about itself. Until a hypervisor backend
 * answers for them (plugins/, the migration engine), they come from /proc
 * and the configuration. */

#include "cluster-state.h"
#include "config.h"

#include "ferry-backend.h"

/* Fills *f; name is the node's corosync name. With a backend's answer in
 * `hf`, CPU, memory and hypervisor come from it; without, from /proc.
 * peer_uri is how other nodes reach this hypervisor ("" without backend). */
int facts_collect(NodeFacts *f, const char *name, const FerryConfig *config, const FerryHostFacts *hf,
                  const char *peer_uri);

/* Whether `now` differs from `published` enough to be worth a commit:
 * memory_free moves all the time, so only a move of more than 1/64 of the
 * total (or 64 MiB, whichever is larger) counts; every other field counts
 * on any change. updated_at is ignored. */
bool facts_differ_significantly(const NodeFacts *published, const NodeFacts *now);

/* Parses /proc/cpuinfo-style text (for tests). */
int facts_parse_cpuinfo(const char *text, char **vendor, char **model, char **features);
