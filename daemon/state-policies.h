/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Operator policies in the replicated state: how migrations of a VM
 * converge, set once for the whole cluster and overridden per VM.
 *
 * A record is keyed by scope: "" is the cluster-wide record, anything else
 * is a VM name. Records are keyed by name, not by (name, node), because a
 * policy follows the VM wherever it runs. A record of a VM that is not in
 * the inventory is kept (the VM may be defined again, or be in the middle
 * of an offline move) and shown as such.
 *
 * Every field is optional. What a migration uses is resolved field by
 * field, the first that is set winning (see convergence_settings_resolve()):
 *
 *   the job's own options  >  the VM's record  >  the cluster record
 *     >  the source node's ferryd.conf  >  built-in defaults
 *
 * Changes carry a mask of the fields they set and of the fields they clear,
 * applied by the state machine: two operators changing different fields of
 * the same VM at the same time both get their change (a read-modify-write
 * on the client would lose one). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

typedef struct ClusterState ClusterState;

#define POLICY_DOWNTIME_STEPS_MAX 8
/* Bounds that keep a typo from becoming a policy: 1 ms to 1 minute of
 * downtime, a day at most for either timeout. */
#define POLICY_DOWNTIME_MS_MAX 60000U
#define POLICY_STALL_ROUNDS_MAX 100U
#define POLICY_TIMEOUT_SEC_MAX 86400U
/* A VM name is a libvirt domain name, far shorter in practice. */
#define POLICY_SCOPE_MAX 256U
#define STATE_POLICIES_MAX 100000U

typedef enum ConvergenceField {
        CONVERGENCE_FIELD_DOWNTIME_STEPS = 1U << 0,
        CONVERGENCE_FIELD_STALL_ROUNDS = 1U << 1,
        CONVERGENCE_FIELD_PROGRESS_TIMEOUT = 1U << 2,
        CONVERGENCE_FIELD_COMPLETION_TIMEOUT = 1U << 3,
        CONVERGENCE_FIELD_AUTO_CONVERGE = 1U << 4,
        CONVERGENCE_FIELD_POSTCOPY = 1U << 5,
        _CONVERGENCE_FIELD_ALL = (1U << 6) - 1,
} ConvergenceField;

typedef struct ConvergenceSettings {
        uint32_t set;                   /* ConvergenceField mask of what is set */
        uint32_t downtime_steps_ms[POLICY_DOWNTIME_STEPS_MAX];
        uint32_t n_downtime_steps;
        uint32_t stall_rounds;
        uint32_t progress_timeout_sec;
        uint32_t completion_timeout_per_gib_sec;
        bool auto_converge;
        bool postcopy;
} ConvergenceSettings;

typedef struct PolicyRecord {
        char *scope;                    /* "" = cluster-wide, else a VM name */
        ConvergenceSettings convergence;
} PolicyRecord;

typedef struct SetPolicyCommand {
        char *scope;
        ConvergenceSettings values;     /* values.set = the fields to set */
        uint32_t clear;                 /* fields to clear (not also in values.set) */
} SetPolicyCommand;

/* The field's name as operators write it (ferryctl, D-Bus), and back. */
const char *convergence_field_to_string(ConvergenceField f);
ConvergenceField convergence_field_from_string(const char *s);

/* Checks the values of the fields in s->set; on error says which and why. */
int convergence_settings_validate(const ConvergenceSettings *s, char *err, size_t err_len);

/* Fills *out, field by field, from the first of `layers` (most specific
 * first, NULL entries skipped) that sets it; out->set is their union.
 * source[i], when given, receives for each field bit i the index of the
 * layer it came from, or -1. */
void convergence_settings_resolve(ConvergenceSettings *out, const ConvergenceSettings *const *layers, size_t n_layers,
                                  int source[]);

void set_policy_command_done(SetPolicyCommand *c);
void set_policy_command_encode(const SetPolicyCommand *c, Writer *w);
int set_policy_command_decode(Reader *r, SetPolicyCommand *ret);
/* Anyone may send it (the daemon authorizes the caller before proposing);
 * -EINVAL for bad values or a scope that is neither "" nor a VM of the
 * inventory (creating a record needs the VM to exist, so a typo is not
 * silently stored; changing or clearing an existing one does not). A record
 * left with no field set is removed. */
int state_apply_set_policy(ClusterState *s, const SetPolicyCommand *c);

void state_policies_encode(const ClusterState *s, Writer *w);
int state_policies_decode(ClusterState *s, Reader *r);
void state_policies_free(ClusterState *s);

/* The record of a scope ("" = cluster), or NULL. */
const PolicyRecord *state_find_policy(const ClusterState *s, const char *scope);

/* Where an effective setting came from, in the order that decides. */
typedef enum PolicySource {
        POLICY_SOURCE_JOB,
        POLICY_SOURCE_VM,
        POLICY_SOURCE_CLUSTER,
        POLICY_SOURCE_NODE,             /* the source node's ferryd.conf */
        _POLICY_SOURCE_MAX,
        POLICY_SOURCE_DEFAULT = -1,     /* nothing set it: built-in */
} PolicySource;

const char *policy_source_to_string(int source);

/* The convergence settings a migration of `vm` runs with: `job` (the job's
 * own options, may be NULL), the VM's record, the cluster record, `node`
 * (the source's ferryd.conf, may be NULL). source[] as in
 * convergence_settings_resolve(), holding PolicySource values. */
void state_policy_effective(const ClusterState *s, const char *vm, const ConvergenceSettings *job,
                            const ConvergenceSettings *node, ConvergenceSettings *out, int source[]);

/* "downtime_steps=300,400 stall_rounds=2 ... postcopy=yes": the fields
 * that are set, in the syntax `ferryctl policy set` takes; with source[]
 * (may be NULL) each field whose source is the job, the VM or the cluster
 * is followed by that source in brackets. Returns buf. */
char *convergence_settings_format(const ConvergenceSettings *s, const int source[], char *buf, size_t len);
