/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* ferryd.conf: "key = value" lines, '#' comments, no sections. Every key,
 * its default and its meaning is listed in the table in config.c and in
 * docs/CONFIG.md. The parser is pure: errors go to a callback with file
 * and line, so `ferryd --check-config` can print all of them at once. */

#include <stdbool.h>
#include <stdint.h>

#include "state-policies.h"

typedef struct FerryConfig {
        char *plugin_dir;
        char *state_dir;
        uint64_t host_memory_reserve;           /* bytes */
        uint32_t max_outgoing_migrations;
        uint32_t max_incoming_migrations;
        uint32_t max_cluster_migrations;        /* 0: no cluster-wide cap */
        int log_level;                          /* syslog priority */
        bool log_syslog;
        uint32_t facts_interval_sec;
        char *backend;                          /* "none", or a plugin name: "sim", "libvirt" */
        char *backend_config;                   /* passed to the plugin as is */
        char *backend_peer_uri;                 /* how peers' hypervisors reach this one ("" = backend default) */
        char *migration_address;                /* this node's address on the migration network ("" = default) */
        uint32_t inventory_interval_sec;
        uint32_t progress_interval_ms;
        /* The convergence policy of migrations out of this node. */
        uint32_t downtime_steps_ms[8];
        uint32_t n_downtime_steps;
        uint32_t stall_rounds;
        uint32_t progress_timeout_sec;
        uint32_t completion_timeout_per_gib_sec;
        /* Metrics for node_exporter's textfile collector ("" = none). */
        char *metrics_file;
        uint32_t metrics_interval_sec;
        /* Fencing: seconds without quorum before this node releases its volumes. */
        uint32_t volume_release_timeout_sec;
        /* Seconds between rounds of the automatic balancer (when on, on its node). */
        uint32_t balance_interval_sec;
} FerryConfig;

typedef void (*ConfigErrorFn)(const char *file, unsigned line, const char *message, void *userdata);

void config_init_defaults(FerryConfig *c);
void config_done(FerryConfig *c);
/* Parses a file on top of what *c holds. Returns 0, -ENOENT if the file does
 * not exist, -EINVAL after reporting every bad line, or another -errno. */
int config_load_file(FerryConfig *c, const char *path, ConfigErrorFn on_error, void *userdata);
/* Same on an in-memory text (for tests); `name` is used in messages. */
int config_load_string(FerryConfig *c, const char *text, const char *name, ConfigErrorFn on_error, void *userdata);

/* The convergence settings of this node's ferryd.conf, as the layer below
 * the cluster's and the VM's policy (see state-policies.h). */
void config_convergence_settings(const FerryConfig *c, ConvergenceSettings *out);

/* SIGHUP: takes from `next` (a freshly loaded, valid config) every key that
 * can change at run time, and names in `restart` (comma-separated) those
 * that differ but only take effect after a restart; those keep their old
 * value. Returns how many run-time keys changed. */
int config_reload(FerryConfig *cur, const FerryConfig *next, char *restart, size_t restart_len);
