/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The hypervisor backend plugin ABI.
 *
 * A backend is a shared object in ferryd's plugin_dir that exports one
 * symbol, `ferry_backend` (FERRY_BACKEND_SYMBOL), a FerryBackendOps. ferryd
 * checks abi_version before it touches anything else and refuses a module
 * whose version differs; it logs the resolved path of every module it loads
 * and never unloads one. ferryd's core never includes a hypervisor header:
 * everything it knows of a hypervisor comes through this struct.
 *
 * Threading: ferryd calls every hook from its single event-loop thread and
 * expects each to return quickly. Long work (a migration) runs inside the
 * backend (a thread, a child process, a simulated clock) and is observed
 * through migrate_progress(), polled by ferryd.
 *
 * Memory: strings in structs are fixed-size arrays so that no allocation
 * crosses the boundary, except the arrays returned by list_vms(), which
 * ferryd hands back to free_vms().
 *
 * Errors: hooks return 0 or a negative errno and may fill an error message
 * (FerryError). An optional hook left NULL means "not supported"; ferryd
 * answers a request for it with a typed error (-EOPNOTSUPP) naming the
 * backend and the hook.
 *
 * Versioning: adding a hook at the end of the struct, or a field at the end
 * of a struct that carries its own size (struct_size), is compatible and
 * keeps abi_version; anything else bumps it. The caller always sets
 * struct_size, on input and output structs alike (0 counts as the whole
 * struct of this header); a backend fills at most that much.
 *
 * Restarts: a backend must settle, by itself, migrations whose driving
 * ferryd died (see plugins/sim/README.md for the rules the model follows);
 * ferryd then reconciles its jobs from list_vms(). */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FERRY_BACKEND_ABI_VERSION 1
#define FERRY_BACKEND_SYMBOL "ferry_backend"

#define FERRY_NAME_MAX 128
#define FERRY_TEXT_MAX 512

typedef struct FerryError {
        char message[FERRY_TEXT_MAX];
} FerryError;

/* What ferryd tells a backend when it opens it. */
typedef struct FerryBackendHost {
        size_t struct_size;
        const char *node_name;          /* this node's name in the cluster */
        const char *config;             /* backend_config from ferryd.conf (may be "") */
        const char *state_dir;          /* a directory the backend may use */
} FerryBackendHost;

typedef struct FerryHostFacts {
        size_t struct_size;
        char cpu_vendor[FERRY_NAME_MAX];        /* "AuthenticAMD", "GenuineIntel", ... */
        char cpu_model[FERRY_NAME_MAX];
        char cpu_features[4096];                /* space-separated */
        uint32_t cpus;
        uint64_t memory_total;                  /* bytes */
        uint64_t memory_free;                   /* bytes */
        char hypervisor_name[FERRY_NAME_MAX];   /* "QEMU", "sim" */
        char hypervisor_version[FERRY_NAME_MAX];/* dotted, comparable with ferry_version_compare() */
} FerryHostFacts;

typedef enum FerryVmState {
        FERRY_VM_RUNNING = 1,
        FERRY_VM_PAUSED = 2,
        FERRY_VM_SHUTOFF = 3,
        FERRY_VM_MIGRATING = 4,
        FERRY_VM_OTHER = 5,
} FerryVmState;

#define FERRY_VM_DISKS_MAX 16

typedef struct FerryDisk {
        char target[32];                /* "vda" */
        char path[FERRY_TEXT_MAX];      /* image or device */
        bool shared;                    /* reachable from every node */
} FerryDisk;

typedef struct FerryVm {
        char name[FERRY_NAME_MAX];
        char uuid[37];
        FerryVmState state;
        uint32_t vcpus;
        uint64_t memory;                /* bytes */
        uint32_t cpu_use_permille;      /* of one host CPU, averaged recently */
        uint64_t dirty_rate;            /* bytes/s, 0 if unknown */
        uint32_t n_disks;
        FerryDisk disks[FERRY_VM_DISKS_MAX];
        uint32_t n_passthrough;         /* host devices passed through: not migratable */
} FerryVm;

typedef struct FerryMigrateParams {
        size_t struct_size;
        const char *destination_node;   /* cluster name of the destination */
        const char *destination_uri;    /* backend's address of the destination (hypervisor URI) */
        const char *migration_address;  /* where the memory stream goes (destination's migration network) */
        uint64_t bandwidth;             /* bytes/s, 0 = unlimited */
        uint64_t max_downtime_ms;       /* 0 = hypervisor default */
        bool compression;
        uint32_t parallel_connections;  /* 0/1 = single stream */
        bool auto_converge;
        bool postcopy_allowed;          /* permits migrate_postcopy() later */
} FerryMigrateParams;

typedef enum FerryMigratePhase {
        FERRY_MIGRATE_SETUP = 1,        /* skeleton VM on the destination */
        FERRY_MIGRATE_PRECOPY = 2,      /* memory copy rounds, dirty tracking */
        FERRY_MIGRATE_POSTCOPY = 3,     /* running on the destination, pulling pages */
        FERRY_MIGRATE_SWITCHOVER = 4,   /* paused: CPU state and last pages; no cancel past here */
        FERRY_MIGRATE_COMPLETED = 5,    /* running on the destination only */
        FERRY_MIGRATE_FAILED = 6,       /* still running on the source */
        FERRY_MIGRATE_CANCELLED = 7,    /* still running on the source */
} FerryMigratePhase;

typedef struct FerryMigrateProgress {
        size_t struct_size;
        FerryMigratePhase phase;
        uint64_t memory_total;          /* bytes */
        uint64_t memory_processed;      /* bytes sent so far */
        uint64_t memory_remaining;      /* bytes still to send */
        uint64_t rate;                  /* bytes/s, recent */
        uint64_t dirty_rate;            /* bytes/s, recent */
        uint32_t iteration;             /* pre-copy round */
        uint64_t downtime_ms;           /* once completed */
        uint64_t started_usec;          /* CLOCK_REALTIME when the hypervisor migration started */
        uint64_t finished_usec;         /* CLOCK_REALTIME when it ended, 0 while running */
        FerryError error;               /* why, when FAILED */
} FerryMigrateProgress;

typedef struct FerryBackendOps {
        /* Checked first; must be FERRY_BACKEND_ABI_VERSION. */
        uint32_t abi_version;
        const char *name;

        /* Required. */
        int (*open)(const FerryBackendHost *host, void **ret_ctx, FerryError *error);
        void (*close)(void *ctx);
        int (*host_facts)(void *ctx, FerryHostFacts *ret, FerryError *error);
        int (*list_vms)(void *ctx, FerryVm **ret, size_t *ret_n, FerryError *error);
        void (*free_vms)(void *ctx, FerryVm *vms, size_t n);

        /* Optional (NULL = not supported). */

        /* 0 if the VM's CPU is accepted by the destination, -ENOTSUP with a
         * reason if not (on Linux the same number as -EOPNOTSUPP), -ENOSYS
         * if this hypervisor cannot compare, another negative errno on
         * failure to decide. */
        int (*cpu_compatible)(void *ctx, const char *vm, const char *destination_uri, FerryError *error);

        /* Starts a live migration and returns at once with a handle. */
        int (*migrate_start)(void *ctx, const char *vm, const FerryMigrateParams *params, void **ret_handle,
                             FerryError *error);
        int (*migrate_progress)(void *ctx, void *handle, FerryMigrateProgress *ret, FerryError *error);
        /* Cancels before switchover; the VM keeps running on the source. */
        int (*migrate_abort)(void *ctx, void *handle, FerryError *error);
        int (*migrate_set_max_downtime)(void *ctx, void *handle, uint64_t ms, FerryError *error);
        int (*migrate_set_auto_converge)(void *ctx, void *handle, bool on, FerryError *error);
        int (*migrate_start_postcopy)(void *ctx, void *handle, FerryError *error);
        /* Forgets a finished handle. */
        void (*migrate_release)(void *ctx, void *handle);

        /* Volume hooks, used by the volume manager (issue #4). `epoch` is
         * the fencing token: a backend refuses an action with an epoch older
         * than one it has seen for that volume. */
        int (*volume_prepare)(void *ctx, const char *volume, const char *backing, uint64_t epoch, FerryError *error);
        int (*volume_activate)(void *ctx, const char *volume, const char *backing, uint64_t epoch, FerryError *error);
        int (*volume_release)(void *ctx, const char *volume, const char *backing, uint64_t epoch, FerryError *error);
        /* 1 if this host holds (has open / mounted) the volume, 0 if not. */
        int (*volume_held)(void *ctx, const char *volume, const char *backing, FerryError *error);

        /* Takes over an outgoing live migration of `vm` that this backend
         * instance did not start (the ferryd that started it died): returns
         * a handle that migrate_progress/abort/set_max_downtime/release
         * accept. -ENOENT if no migration of vm is in flight. */
        int (*migrate_adopt)(void *ctx, const char *vm, void **ret_handle, FerryError *error);
} FerryBackendOps;

/* Compares dotted version strings numerically ("9.0.0" < "10.0"). */
static inline int ferry_version_compare(const char *a, const char *b) {
        while (*a || *b) {
                unsigned long x = 0, y = 0;
                while (*a >= '0' && *a <= '9')
                        x = x * 10 + (unsigned long) (*a++ - '0');
                while (*b >= '0' && *b <= '9')
                        y = y * 10 + (unsigned long) (*b++ - '0');
                if (x != y)
                        return x < y ? -1 : 1;
                while (*a && (*a < '0' || *a > '9'))
                        a++;
                while (*b && (*b < '0' || *b > '9'))
                        b++;
        }
        return 0;
}
