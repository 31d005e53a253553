/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The simulated world: hosts, VMs and in-flight migrations, held in a
 * directory so that several ferryd processes (one per testbed node) share
 * one world:
 *
 *   WORLD/params.conf                world-wide parameters (SimParams)
 *   WORLD/clock                      simulated time in usec, manual clock only
 *   WORLD/hosts/NODE.conf            one host (SimHost)
 *   WORLD/vms/NODE/VM.conf           one VM, running on NODE (SimVm)
 *   WORLD/migrations/VM.conf         a migration in flight (SimMarker)
 *   WORLD/migrations/VM.owner        flock()ed by the process driving it
 *   WORLD/volumes/NAME.conf          a shared volume's holder and epochs (SimVolume)
 *   WORLD/.lock                      flock()ed around every change
 *
 * Files are "key = value" lines with '#' comments; sizes take K/M/G/T
 * suffixes (binary, as parse_size()). Every file is replaced whole with
 * rename(2), so a reader never sees half a file; a VM changes node by one
 * rename from vms/SRC/ to vms/DST/, so it is always in exactly one place.
 * Changes that span files (a marker and a VM move) are made under
 * flock(WORLD/.lock).
 *
 * This layer parses, formats, stores and locks; it knows nothing of
 * migrations beyond the marker's contents (see migration.h). It does not
 * log: errors come back as -errno with a SimError naming file and line. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ferry-backend.h"
#include "macro.h"
#include "precopy.h"

/* Node and VM names are file names: [A-Za-z0-9._-], not starting with '.',
 * shorter than this. */
#define SIM_NAME_MAX 64
#define SIM_FEATURES_MAX 4096
#define SIM_VM_FEATURES_MAX 1024

typedef struct SimError {
        unsigned line;                  /* 0 when not about one line */
        char message[FERRY_TEXT_MAX];   /* "FILE:LINE: what" or "FILE: what" */
} SimError;

typedef enum SimClock {
        SIM_CLOCK_MONOTONIC,            /* CLOCK_MONOTONIC x time_scale */
        SIM_CLOCK_MANUAL,               /* WORLD/clock, moved by sim_world_advance_clock() */
} SimClock;

typedef struct SimParams {
        uint64_t time_scale_milli;      /* simulated seconds per real second, x1000 */
        SimClock clock;
        uint64_t seed;
        /* Defaults of the pre-copy model for every migration. */
        uint64_t setup_ms;
        uint64_t switchover_ms;
        uint64_t max_downtime_ms;       /* when ferryd passes 0 */
        uint32_t max_iterations;
        uint32_t jitter_permille;
        uint32_t throttle_initial;
        uint32_t throttle_increment;
        uint32_t throttle_max;
        uint32_t throttle_trigger;
} SimParams;

typedef struct SimHost {
        char name[SIM_NAME_MAX];
        char cpu_vendor[FERRY_NAME_MAX];
        char cpu_model[FERRY_NAME_MAX];
        char cpu_features[SIM_FEATURES_MAX];    /* single spaces */
        uint32_t cpus;
        uint64_t memory_total;                  /* bytes */
        char hypervisor_version[FERRY_NAME_MAX];
        uint64_t link_bandwidth;                /* bytes/s, each direction */
        uint64_t stream_cap;                    /* bytes/s per migration stream, 0 = none */
} SimHost;

typedef struct SimVm {
        char name[SIM_NAME_MAX];
        char node[SIM_NAME_MAX];                /* whose directory holds it */
        char uuid[37];
        FerryVmState state;                     /* RUNNING, PAUSED, SHUTOFF or OTHER in the file */
        uint32_t vcpus;
        uint64_t memory;                        /* bytes */
        uint64_t working_set;                   /* bytes it dirties at most; 0 = memory */
        uint64_t dirty_rate;                    /* bytes/s */
        uint32_t cpu_use_permille;
        uint32_t passthrough;                   /* host devices: not migratable */
        uint32_t n_disks;
        FerryDisk disks[FERRY_VM_DISKS_MAX];
        char cpu_model_required[SIM_VM_FEATURES_MAX];   /* features it needs, "" = none */
        char machine[FERRY_NAME_MAX];           /* oldest hypervisor version it runs on, "" = any */
} SimVm;

typedef enum SimEventType {
        SIM_EVENT_BANDWIDTH,            /* value: bytes/s */
        SIM_EVENT_MAX_DOWNTIME,         /* value: ms */
        SIM_EVENT_AUTO_CONVERGE,        /* value: 0 or 1 */
        SIM_EVENT_POSTCOPY,
        _SIM_EVENT_MAX,
} SimEventType;

typedef struct SimEvent {
        uint64_t at;                    /* usec since the migration's start */
        SimEventType type;
        uint64_t value;
} SimEvent;

/* A migration in flight: everything needed to replay it exactly (the
 * model's parameters as they were at the start, and every control action
 * since, with its simulated time). */
typedef struct SimMarker {
        char vm[SIM_NAME_MAX];
        char source[SIM_NAME_MAX];
        char destination[SIM_NAME_MAX];
        char boot_id[37];               /* of the machine whose clock `start` is on; "" for manual */
        uint64_t start;                 /* world time, simulated usec */
        uint64_t started_realtime;      /* CLOCK_REALTIME usec */
        uint64_t reserved;              /* bytes held on the destination */
        uint64_t bandwidth_cap;         /* bytes/s: stream cap x streams, ferryd's limit; 0 = none */
        bool postcopy_allowed;
        PrecopyParams model;            /* bandwidth: the share at the start */
        SimEvent *events;
        size_t n_events;
} SimMarker;

/* A shared volume: who holds it (has it open) and the fencing epochs
 * (see volume.h for the rules that change them). */
typedef struct SimVolume {
        char name[SIM_NAME_MAX];
        char holder[SIM_NAME_MAX];      /* a node, "" = nobody */
        uint64_t holder_epoch;          /* the epoch of the holder's grant; 0 without a holder */
        uint64_t epoch;                 /* the highest epoch any action used; >= holder_epoch */
        /* Fault injection: the hook fails with -EIO and changes nothing. */
        bool fail_prepare;
        bool fail_activate;
        bool fail_release;
        bool fail_held;
        /* Slow storage, in real milliseconds (0 = none, at most
         * SIM_VOLUME_DELAY_MAX_MS): the hook waits that long before it
         * does anything (delay_HOOK_ms), or does its change and then waits
         * before it returns (delay_after_HOOK_ms). */
        uint32_t delay_prepare_ms;
        uint32_t delay_activate_ms;
        uint32_t delay_release_ms;
        uint32_t delay_held_ms;
        uint32_t delay_after_prepare_ms;
        uint32_t delay_after_activate_ms;
        uint32_t delay_after_release_ms;
} SimVolume;

#define SIM_VOLUME_DELAY_MAX_MS 3600000U

void sim_marker_done(SimMarker *m);
int sim_marker_add_event(SimMarker *m, uint64_t at, SimEventType type, uint64_t value);
const char *sim_event_type_to_string(SimEventType t);

/* Pure parsers and formatters: `name` is used in messages only. */
void sim_params_default(SimParams *p);
int sim_parse_params(const char *text, const char *name, SimParams *ret, SimError *e);
int sim_parse_host(const char *text, const char *name, SimHost *ret, SimError *e);
int sim_parse_vm(const char *text, const char *name, SimVm *ret, SimError *e);
int sim_parse_marker(const char *text, const char *name, SimMarker *ret, SimError *e);
int sim_parse_volume(const char *text, const char *name, SimVolume *ret, SimError *e);
int sim_format_params(const SimParams *p, char **ret);
int sim_format_host(const SimHost *h, char **ret);
int sim_format_vm(const SimVm *vm, char **ret);
int sim_format_marker(const SimMarker *m, char **ret);
int sim_format_volume(const SimVolume *v, char **ret);

bool sim_name_is_valid(const char *s);
/* A size as the files write it: exact, with the largest suffix that divides. */
const char *sim_format_size(char *buf, size_t len, uint64_t bytes);
/* true if every word of `needed` is a word of `have`; else the first
 * missing ones go to `missing` (may be NULL). */
bool sim_features_subset(const char *needed, const char *have, char *missing, size_t len);

typedef struct SimWorld {
        char *dir;
        int lock_fd;
        unsigned lock_depth;
        SimParams params;
        char boot_id[37];
} SimWorld;

int sim_world_open(const char *dir, SimWorld **ret, SimError *e);
SimWorld *sim_world_free(SimWorld *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(SimWorld *, sim_world_free);

/* flock(WORLD/.lock, LOCK_EX), nestable within one SimWorld. Use as
 *   _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
 *   r = sim_world_lock(w); if (r < 0) return r; locked = w; */
int sim_world_lock(SimWorld *w);
void sim_world_unlock(SimWorld *w);
static inline void sim_world_unlockp(SimWorld **w) {
        if (*w)
                sim_world_unlock(*w);
}

/* Simulated time, usec. */
int sim_world_now(SimWorld *w, uint64_t *ret);
/* Manual clock only (-EOPNOTSUPP otherwise). */
int sim_world_advance_clock(SimWorld *w, uint64_t usec);

/* Sorted names of hosts. */
int sim_world_list_nodes(SimWorld *w, char ***ret, size_t *ret_n);
void sim_strv_free(char **v, size_t n);
int sim_world_load_host(SimWorld *w, const char *node, SimHost *ret, SimError *e);
/* VMs of one node, sorted by name. -ENOENT for an unknown node. */
int sim_world_load_vms(SimWorld *w, const char *node, SimVm **ret, size_t *ret_n, SimError *e);
int sim_world_load_vm(SimWorld *w, const char *node, const char *vm, SimVm *ret, SimError *e);
/* Markers, sorted by VM name. */
int sim_world_load_markers(SimWorld *w, SimMarker **ret, size_t *ret_n, SimError *e);
void sim_markers_free(SimMarker *m, size_t n);
int sim_world_load_marker(SimWorld *w, const char *vm, SimMarker *ret, SimError *e);
/* Sorted names of volumes (volumes/ may not exist yet: none). */
int sim_world_list_volumes(SimWorld *w, char ***ret, size_t *ret_n);
/* -ENOENT (with a message) if there is no volumes/NAME.conf. */
int sim_world_load_volume(SimWorld *w, const char *volume, SimVolume *ret, SimError *e);
/* Every volume, sorted by name; the first bad file is the error. */
int sim_world_load_volumes(SimWorld *w, SimVolume **ret, size_t *ret_n, SimError *e);

/* Writers: atomic (temporary file + rename). */
int sim_world_write_params(SimWorld *w, const SimParams *p);
int sim_world_write_host(SimWorld *w, const SimHost *h);
int sim_world_write_vm(SimWorld *w, const SimVm *vm);
int sim_world_write_marker(SimWorld *w, const SimMarker *m);
int sim_world_remove_marker(SimWorld *w, const char *vm);
/* Creates volumes/ if need be. */
int sim_world_write_volume(SimWorld *w, const SimVolume *v);
/* One rename from vms/SRC/ to vms/DST/; -EEXIST if DST has one by that name. */
int sim_world_move_vm(SimWorld *w, const char *vm, const char *source, const char *destination);

/* The per-migration owner lock: a non-blocking flock() on
 * migrations/VM.owner. -EBUSY while another open file holds it (its owner
 * is alive); 0 with the fd otherwise. The kernel drops the lock when its
 * holder dies, which is how an orphaned migration is recognized. */
int sim_world_take_owner(SimWorld *w, const char *vm, int *ret_fd);
/* Unlinks the owner file (under the world lock) and closes fd. */
void sim_world_drop_owner(SimWorld *w, const char *vm, int fd);

/* Creates an empty world (params.conf, hosts/, vms/, migrations/).
 * -EEXIST if `dir` already holds a params.conf. */
int sim_world_create(const char *dir, const SimParams *p, SimWorld **ret, SimError *e);
