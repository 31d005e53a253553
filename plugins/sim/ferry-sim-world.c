/* SPDX-License-Identifier: GPL-2.0-or-later */

/* ferry-sim-world: make and inspect sim worlds, for tests and benchmarks.
 * Results go to stdout, errors to stderr with a non-zero exit status. */

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "generate.h"
#include "macro.h"
#include "migration.h"
#include "strutil.h"
#include "volume.h"
#include "world.h"

static int usage(FILE *f) {
        fprintf(f,
                "Usage: ferry-sim-world COMMAND DIR [OPTIONS]\n"
                "\n"
                "  create DIR --nodes N --vms M [--seed S] [--vendors V1,V2] [--versions X,Y]\n"
                "             [--time-scale T] [--clock monotonic|manual] [--fill PERCENT]\n"
                "                            generate a world (deterministic under the seed)\n"
                "  list DIR [--node N]       one line per VM: NAME NODE STATE [-> DESTINATION]\n"
                "  hosts DIR                 one line per host: NAME VENDOR VERSION CPUS MEMORY FREE VMS\n"
                "  check DIR                 parse every file and check the world's invariants\n"
                "  reconcile DIR             settle migrations whose driver died\n"
                "  now DIR                   the world's simulated time, in microseconds\n"
                "  advance DIR DURATION      move a manual clock on (e.g. 90s, 500ms, 2h)\n"
                "  volumes DIR [--json]      one line per volume: NAME HOLDER HOLDER_EPOCH EPOCH (HOLDER - = nobody)\n"
                "  fence DIR NODE            clear every hold of NODE on a volume (what powering it off does)\n"
                "  fault DIR VOLUME HOOK on|off\n"
                "                            make prepare|activate|release|held of VOLUME fail with EIO\n"
                "  fault DIR VOLUME delay-HOOK MS|off\n"
                "                            make HOOK of VOLUME wait MS milliseconds before it acts\n"
                "  fault DIR VOLUME delay-after-HOOK MS|off\n"
                "                            make prepare|activate|release act, then wait MS before returning\n");
        return f == stderr ? 2 : 0;
}

/* "a,b,c" into a vector pointing into s (modified). */
static int split_list(char *s, const char ***ret, size_t *ret_n) {
        const char **v = NULL;
        size_t n = 0;

        for (char *save = NULL, *w = strtok_r(s, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
                const char **nv = realloc(v, (n + 1) * sizeof(char *));
                if (!nv) {
                        free(v);
                        return -ENOMEM;
                }
                v = nv;
                v[n++] = w;
        }
        if (n == 0)
                return -EINVAL;
        *ret = v;
        *ret_n = n;
        return 0;
}

static int parse_duration(const char *s, uint64_t *ret) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } units[] = {
                { "us", 1 }, { "ms", 1000 }, { "s", 1000000 }, { "m", 60000000 }, { "h", UINT64_C(3600000000) }, { "", 1000000 },
        };
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || end == s || *s == '-')
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].suffix)) {
                        if (v > UINT64_MAX / units[i].usec)
                                return -ERANGE;
                        *ret = v * units[i].usec;
                        return 0;
                }
        return -EINVAL;
}

static int open_world(const char *dir, SimWorld **ret) {
        SimError e = {};
        int r = sim_world_open(dir, ret, &e);
        if (r < 0)
                fprintf(stderr, "ferry-sim-world: %s\n", e.message[0] ? e.message : strerror(-r));
        return r;
}

/* After getopt_long(): the single positional argument. */
static const char *positional_dir(int argc, char **argv) {
        if (optind != argc - 1) {
                fprintf(stderr, "ferry-sim-world: %s needs exactly one DIR\n", argv[0]);
                return NULL;
        }
        return argv[optind];
}

static int cmd_create(int argc, char **argv) {
        static const struct option options[] = {
                { "nodes", required_argument, NULL, 'n' },
                { "vms", required_argument, NULL, 'm' },
                { "seed", required_argument, NULL, 's' },
                { "vendors", required_argument, NULL, 'V' },
                { "versions", required_argument, NULL, 'H' },
                { "time-scale", required_argument, NULL, 't' },
                { "clock", required_argument, NULL, 'c' },
                { "fill", required_argument, NULL, 'f' },
                {}
        };
        SimGenerateOptions o;
        _cleanup_free_ const char **vendors = NULL, **versions = NULL;
        bool have_nodes = false;
        const char *dir;
        SimError e = {};
        int c, r, idx = 0;

        sim_generate_options_default(&o);
        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, &idx)) >= 0) {
                uint32_t u;
                switch (c) {
                case 'n':
                        if (parse_u32(optarg, &u) < 0 || u == 0)
                                goto bad;
                        o.nodes = u;
                        have_nodes = true;
                        break;
                case 'm':
                        if (parse_u32(optarg, &u) < 0)
                                goto bad;
                        o.vms = u;
                        break;
                case 's':
                        if (parse_u64(optarg, &o.seed) < 0)
                                goto bad;
                        o.params.seed = o.seed;
                        break;
                case 'V':
                        if (split_list(optarg, &vendors, &o.n_vendors) < 0)
                                goto bad;
                        o.vendors = vendors;
                        break;
                case 'H':
                        if (split_list(optarg, &versions, &o.n_versions) < 0)
                                goto bad;
                        o.versions = versions;
                        break;
                case 't': {
                        /* Reuse the file parser's rules for the value. */
                        _cleanup_free_ char *text = NULL;
                        SimParams p;
                        if (asprintf(&text, "time_scale = %s\n", optarg) < 0)
                                return 1;
                        if (sim_parse_params(text, "--time-scale", &p, &e) < 0)
                                goto bad;
                        o.params.time_scale_milli = p.time_scale_milli;
                        break;
                }
                case 'c':
                        if (streq(optarg, "manual"))
                                o.params.clock = SIM_CLOCK_MANUAL;
                        else if (streq(optarg, "monotonic"))
                                o.params.clock = SIM_CLOCK_MONOTONIC;
                        else
                                goto bad;
                        break;
                case 'f':
                        if (parse_u32(optarg, &u) < 0 || u == 0 || u > 100)
                                goto bad;
                        o.fill_percent = u;
                        break;
                default:
                        return usage(stderr);
                }
                continue;
        bad:
                fprintf(stderr, "ferry-sim-world: invalid value \"%s\" for --%s\n", optarg, options[idx].name);
                return 2;
        }
        dir = positional_dir(argc, argv);
        if (!dir)
                return 2;
        if (!have_nodes) {
                fprintf(stderr, "ferry-sim-world: create needs --nodes\n");
                return 2;
        }
        r = sim_world_generate(dir, &o, &e);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: %s\n", e.message[0] ? e.message : strerror(-r));
                return 1;
        }
        printf("created %s: %u nodes, %u VMs, seed %" PRIu64 "\n", dir, o.nodes, o.vms, o.seed);
        return 0;
}

static const char *state_string(FerryVmState s) {
        switch (s) {
        case FERRY_VM_RUNNING: return "running";
        case FERRY_VM_PAUSED: return "paused";
        case FERRY_VM_SHUTOFF: return "shutoff";
        case FERRY_VM_MIGRATING: return "migrating";
        default: return "other";
        }
}

static int cmd_list(int argc, char **argv) {
        static const struct option options[] = {
                { "node", required_argument, NULL, 'n' },
                {}
        };
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        const char *only = NULL, *dir;
        char **nodes = NULL;
        SimMarker *mk = NULL;
        size_t n_nodes = 0, n_mk = 0;
        SimError e = {};
        int c, r, ret = 0;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                if (c != 'n')
                        return usage(stderr);
                only = optarg;
        }
        dir = positional_dir(argc, argv);
        if (!dir)
                return 2;
        if (open_world(dir, &w) < 0)
                return 1;
        r = sim_world_list_nodes(w, &nodes, &n_nodes);
        if (r >= 0)
                r = sim_world_load_markers(w, &mk, &n_mk, &e);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: %s\n", e.message[0] ? e.message : strerror(-r));
                sim_strv_free(nodes, n_nodes);
                return 1;
        }
        if (only) {
                bool known = false;
                for (size_t i = 0; i < n_nodes; i++)
                        known = known || streq(nodes[i], only);
                if (!known) {
                        fprintf(stderr, "ferry-sim-world: no host %s in %s\n", only, dir);
                        ret = 1;
                }
        }
        for (size_t i = 0; i < n_nodes && ret == 0; i++) {
                _cleanup_free_ SimVm *vms = NULL;
                size_t n = 0;

                if (only && !streq(only, nodes[i]))
                        continue;
                r = sim_world_load_vms(w, nodes[i], &vms, &n, &e);
                if (r < 0) {
                        fprintf(stderr, "ferry-sim-world: %s\n", e.message[0] ? e.message : strerror(-r));
                        ret = 1;
                        break;
                }
                for (size_t j = 0; j < n; j++) {
                        const SimMarker *m = NULL;
                        for (size_t k = 0; k < n_mk; k++)
                                if (streq(mk[k].vm, vms[j].name) && streq(mk[k].source, nodes[i]))
                                        m = &mk[k];
                        if (m)
                                printf("%s %s migrating -> %s\n", vms[j].name, nodes[i], m->destination);
                        else
                                printf("%s %s %s\n", vms[j].name, nodes[i], state_string(vms[j].state));
                }
        }
        sim_markers_free(mk, n_mk);
        sim_strv_free(nodes, n_nodes);
        return ret;
}

static int cmd_hosts(const char *dir) {
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        char **nodes = NULL;
        size_t n_nodes = 0;
        SimError e = {};
        int r, ret = 0;

        if (open_world(dir, &w) < 0)
                return 1;
        r = sim_world_list_nodes(w, &nodes, &n_nodes);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: %s: %s\n", dir, strerror(-r));
                return 1;
        }
        for (size_t i = 0; i < n_nodes; i++) {
                _cleanup_free_ SimVm *vms = NULL;
                SimHost h;
                size_t n = 0;
                uint64_t used = 0, incoming = 0;
                char a[32], b[32];

                r = sim_world_load_host(w, nodes[i], &h, &e);
                if (r >= 0)
                        r = sim_world_memory_used(w, nodes[i], &used, &incoming, &e);
                if (r >= 0)
                        r = sim_world_load_vms(w, nodes[i], &vms, &n, &e);
                if (r < 0) {
                        fprintf(stderr, "ferry-sim-world: %s\n", e.message[0] ? e.message : strerror(-r));
                        ret = 1;
                        break;
                }
                printf("%s %s %s %" PRIu32 " %s %s %zu\n", h.name, h.cpu_vendor, h.hypervisor_version, h.cpus,
                       format_size(a, sizeof(a), h.memory_total),
                       format_size(b, sizeof(b), h.memory_total - MIN(h.memory_total, used + incoming)), n);
        }
        sim_strv_free(nodes, n_nodes);
        return ret;
}

static int compare_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Every file parses; no VM in two places; no VM on a node without a host;
 * no marker without its VM on its source; no host over its memory; no
 * volume held by a node that is not a host. */
static int cmd_check(const char *dir) {
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        _cleanup_free_ char *vms_dir = NULL;
        char **nodes = NULL, **names = NULL, **volumes = NULL;
        size_t n_nodes = 0, n_names = 0, n_volumes = 0;
        SimMarker *mk = NULL;
        size_t n_mk = 0;
        SimError e = {};
        unsigned problems = 0, n_vms = 0;
        int r;

        if (open_world(dir, &w) < 0)
                return 1;
        r = sim_world_list_nodes(w, &nodes, &n_nodes);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: %s: %s\n", dir, strerror(-r));
                return 1;
        }
        for (size_t i = 0; i < n_nodes; i++) {
                _cleanup_free_ SimVm *vms = NULL;
                SimHost h;
                size_t n = 0;
                uint64_t used = 0;

                if (sim_world_load_host(w, nodes[i], &h, &e) < 0 ||
                    sim_world_load_vms(w, nodes[i], &vms, &n, &e) < 0) {
                        fprintf(stderr, "%s\n", e.message);
                        problems++;
                        continue;
                }
                for (size_t j = 0; j < n; j++) {
                        used += vms[j].memory;
                        char **nn = realloc(names, (n_names + 1) * sizeof(char *));
                        if (!nn)
                                return 1;
                        names = nn;
                        if (asprintf(&names[n_names], "%s %s", vms[j].name, nodes[i]) < 0)
                                return 1;
                        n_names++;
                }
                n_vms += (unsigned) n;
                if (used > h.memory_total) {
                        fprintf(stderr, "%s: VMs use more memory than the host has\n", nodes[i]);
                        problems++;
                }
        }
        /* Sorted "VM NODE" lines: a VM on two nodes shows as neighbours. */
        if (n_names > 0)
                qsort(names, n_names, sizeof(char *), compare_str);
        for (size_t i = 1; i < n_names; i++) {
                size_t l = strcspn(names[i], " ");
                if (strncmp(names[i - 1], names[i], l + 1) == 0) {
                        fprintf(stderr, "VM on two nodes: %s and %s\n", names[i - 1], names[i]);
                        problems++;
                }
        }
        /* vms/X/ for an X without hosts/X.conf */
        if (asprintf(&vms_dir, "%s/vms", dir) < 0)
                return 1;
        {
                DIR *d = opendir(vms_dir);
                struct dirent *de;
                while (d && (de = readdir(d))) {
                        bool known = false;
                        if (de->d_name[0] == '.')
                                continue;
                        for (size_t i = 0; i < n_nodes; i++)
                                known = known || streq(nodes[i], de->d_name);
                        if (!known) {
                                fprintf(stderr, "vms/%s: no host of that name\n", de->d_name);
                                problems++;
                        }
                }
                if (d)
                        closedir(d);
        }
        r = sim_world_load_markers(w, &mk, &n_mk, &e);
        if (r < 0) {
                fprintf(stderr, "%s\n", e.message);
                problems++;
        }
        for (size_t i = 0; i < n_mk; i++) {
                SimVm v;
                if (sim_world_load_vm(w, mk[i].source, mk[i].vm, &v, NULL) < 0) {
                        fprintf(stderr, "migration of %s: no such VM on its source %s\n", mk[i].vm, mk[i].source);
                        problems++;
                }
        }
        /* Every volume file parses (each on its own, so that all bad
         * ones are named) and its holder is a host. */
        r = sim_world_list_volumes(w, &volumes, &n_volumes);
        if (r < 0) {
                fprintf(stderr, "%s/volumes: %s\n", dir, strerror(-r));
                problems++;
        }
        for (size_t i = 0; i < n_volumes; i++) {
                SimVolume v;
                bool known = false;

                if (sim_world_load_volume(w, volumes[i], &v, &e) < 0) {
                        fprintf(stderr, "%s\n", e.message);
                        problems++;
                        continue;
                }
                for (size_t j = 0; j < n_nodes && v.holder[0]; j++)
                        known = known || streq(nodes[j], v.holder);
                if (v.holder[0] && !known) {
                        fprintf(stderr, "volumes/%s.conf: held by %s, which is not a host\n", v.name, v.holder);
                        problems++;
                }
        }
        sim_markers_free(mk, n_mk);
        sim_strv_free(names, n_names);
        sim_strv_free(nodes, n_nodes);
        sim_strv_free(volumes, n_volumes);
        if (problems > 0) {
                fprintf(stderr, "%s: %u problem(s)\n", dir, problems);
                return 1;
        }
        printf("%s: %zu hosts, %u VMs, %zu migrations in flight, %zu volumes, ok\n", dir, n_nodes, n_vms, n_mk,
               n_volumes);
        return 0;
}

static int cmd_reconcile(const char *dir) {
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        SimError e = {};
        unsigned n = 0;
        int r;

        if (open_world(dir, &w) < 0)
                return 1;
        r = sim_world_reconcile(w, &n, &e);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: %s\n", e.message[0] ? e.message : strerror(-r));
                return 1;
        }
        printf("settled %u orphaned migration(s)\n", n);
        return 0;
}

static int cmd_now(const char *dir) {
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        uint64_t now;
        int r;

        if (open_world(dir, &w) < 0)
                return 1;
        r = sim_world_now(w, &now);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: reading the clock: %s\n", strerror(-r));
                return 1;
        }
        printf("%" PRIu64 "\n", now);
        return 0;
}

static int cmd_advance(const char *dir, const char *duration) {
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        uint64_t usec;
        int r;

        if (!duration || parse_duration(duration, &usec) < 0) {
                fprintf(stderr, "ferry-sim-world: invalid duration \"%s\"\n", duration ? duration : "");
                return 2;
        }
        if (open_world(dir, &w) < 0)
                return 1;
        r = sim_world_advance_clock(w, usec);
        if (r == -EOPNOTSUPP) {
                fprintf(stderr, "ferry-sim-world: %s has a monotonic clock (clock = manual in params.conf to step it)\n", dir);
                return 1;
        }
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: advancing the clock: %s\n", strerror(-r));
                return 1;
        }
        return 0;
}

static int cmd_volumes(int argc, char **argv) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                {}
        };
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        _cleanup_free_ SimVolume *v = NULL;
        const char *dir;
        bool json = false;
        size_t n = 0;
        SimError e = {};
        int c, r;

        optind = 1;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                if (c != 'j')
                        return usage(stderr);
                json = true;
        }
        dir = positional_dir(argc, argv);
        if (!dir)
                return 2;
        if (open_world(dir, &w) < 0)
                return 1;
        /* One consistent view. */
        r = sim_world_lock(w);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: locking %s: %s\n", dir, strerror(-r));
                return 1;
        }
        locked = w;
        r = sim_world_load_volumes(w, &v, &n, &e);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: %s\n", e.message[0] ? e.message : strerror(-r));
                return 1;
        }
        /* Names are [A-Za-z0-9._-]: nothing to escape. */
        if (json)
                fputc('[', stdout);
        for (size_t i = 0; i < n; i++) {
                if (!json) {
                        printf("%s %s %" PRIu64 " %" PRIu64 "\n", v[i].name, v[i].holder[0] ? v[i].holder : "-",
                               v[i].holder_epoch, v[i].epoch);
                        continue;
                }
                printf("%s{\"name\":\"%s\",\"holder\":", i > 0 ? "," : "", v[i].name);
                if (v[i].holder[0])
                        printf("\"%s\"", v[i].holder);
                else
                        fputs("null", stdout);
                printf(",\"holder_epoch\":%" PRIu64 ",\"epoch\":%" PRIu64 "}", v[i].holder_epoch, v[i].epoch);
        }
        if (json)
                fputs("]\n", stdout);
        return 0;
}

static int cmd_fence(const char *dir, const char *node) {
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        char **volumes = NULL;
        size_t n = 0;
        SimError e = {};
        int r;

        if (!node) {
                fprintf(stderr, "ferry-sim-world: fence needs DIR and NODE\n");
                return 2;
        }
        if (open_world(dir, &w) < 0)
                return 1;
        r = sim_volume_fence(w, node, &volumes, &n, &e);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: %s\n", e.message[0] ? e.message : strerror(-r));
                return 1;
        }
        printf("fenced %s: %zu hold(s) cleared", node, n);
        for (size_t i = 0; i < n; i++)
                printf("%s%s", i == 0 ? ": " : " ", volumes[i]);
        fputc('\n', stdout);
        sim_strv_free(volumes, n);
        return 0;
}

/* The knob that `fault` names: fail_HOOK (on|off), delay_HOOK_ms or
 * delay_after_HOOK_ms (milliseconds|off). */
typedef struct FaultKnob {
        const char *name;       /* as the CLI spells it */
        bool *fail;
        uint32_t *delay;
} FaultKnob;

static int fault_knob(SimVolume *v, const char *name, FaultKnob *ret) {
        const FaultKnob knobs[] = {
                { "prepare", .fail = &v->fail_prepare },
                { "activate", .fail = &v->fail_activate },
                { "release", .fail = &v->fail_release },
                { "held", .fail = &v->fail_held },
                { "delay-prepare", .delay = &v->delay_prepare_ms },
                { "delay-activate", .delay = &v->delay_activate_ms },
                { "delay-release", .delay = &v->delay_release_ms },
                { "delay-held", .delay = &v->delay_held_ms },
                { "delay-after-prepare", .delay = &v->delay_after_prepare_ms },
                { "delay-after-activate", .delay = &v->delay_after_activate_ms },
                { "delay-after-release", .delay = &v->delay_after_release_ms },
        };
        for (size_t i = 0; i < ELEMENTSOF(knobs); i++)
                if (streq(knobs[i].name, name)) {
                        *ret = knobs[i];
                        return 0;
                }
        return -ENOENT;
}

static int cmd_fault(const char *dir, int argc, char **argv) {
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        const char *volume, *hook, *value;
        SimVolume v = {}, scratch = {};
        SimError e = {};
        FaultKnob knob;
        bool on = false;
        uint32_t ms = 0;
        int r;

        if (argc != 3) {
                fprintf(stderr, "ferry-sim-world: fault needs DIR VOLUME HOOK on|off, or DIR VOLUME delay-HOOK MS\n");
                return 2;
        }
        volume = argv[0];
        hook = argv[1];
        value = argv[2];
        if (!sim_name_is_valid(volume)) {
                fprintf(stderr, "ferry-sim-world: \"%s\" is not a valid volume name\n", volume);
                return 2;
        }
        /* Check the arguments against a scratch volume; the knob is looked
         * up again in the loaded one. */
        if (fault_knob(&scratch, hook, &knob) < 0) {
                fprintf(stderr,
                        "ferry-sim-world: unknown hook \"%s\" (prepare, activate, release or held; "
                        "delay-HOOK, delay-after-HOOK)\n",
                        hook);
                return 2;
        }
        if (knob.fail) {
                if (streq(value, "on"))
                        on = true;
                else if (!streq(value, "off")) {
                        fprintf(stderr, "ferry-sim-world: expected on or off, got \"%s\"\n", value);
                        return 2;
                }
        } else if (!streq(value, "off") &&
                   (parse_u32(value, &ms) < 0 || ms > SIM_VOLUME_DELAY_MAX_MS)) {
                fprintf(stderr, "ferry-sim-world: expected milliseconds (0 to %u) or off, got \"%s\"\n",
                        SIM_VOLUME_DELAY_MAX_MS, value);
                return 2;
        }
        if (open_world(dir, &w) < 0)
                return 1;
        r = sim_world_lock(w);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: locking %s: %s\n", dir, strerror(-r));
                return 1;
        }
        locked = w;
        r = sim_world_load_volume(w, volume, &v, &e);
        if (r == -ENOENT) {
                v = (SimVolume) {};
                snprintf(v.name, sizeof(v.name), "%s", volume);
        } else if (r < 0) {
                fprintf(stderr, "ferry-sim-world: %s\n", e.message[0] ? e.message : strerror(-r));
                return 1;
        }
        (void) fault_knob(&v, hook, &knob);     /* known: checked above */
        if (knob.fail)
                *knob.fail = on;
        else
                *knob.delay = ms;
        r = sim_world_write_volume(w, &v);
        if (r < 0) {
                fprintf(stderr, "ferry-sim-world: writing volume %s: %s\n", volume, strerror(-r));
                return 1;
        }
        return 0;
}

int main(int argc, char **argv) {
        const char *cmd, *dir;

        if (argc < 2)
                return usage(stderr);
        cmd = argv[1];
        if (streq(cmd, "--help") || streq(cmd, "-h") || streq(cmd, "help"))
                return usage(stdout);
        /* Options may come before or after DIR: getopt permutes. */
        if (streq(cmd, "create"))
                return cmd_create(argc - 1, argv + 1);
        if (streq(cmd, "list"))
                return cmd_list(argc - 1, argv + 1);
        if (streq(cmd, "volumes"))
                return cmd_volumes(argc - 1, argv + 1);
        if (argc < 3)
                return usage(stderr);
        dir = argv[2];
        if (streq(cmd, "hosts"))
                return cmd_hosts(dir);
        if (streq(cmd, "check"))
                return cmd_check(dir);
        if (streq(cmd, "reconcile"))
                return cmd_reconcile(dir);
        if (streq(cmd, "now"))
                return cmd_now(dir);
        if (streq(cmd, "advance"))
                return cmd_advance(dir, argc > 3 ? argv[3] : NULL);
        if (streq(cmd, "fence"))
                return argc == 4 ? cmd_fence(dir, argv[3]) : cmd_fence(dir, NULL);
        if (streq(cmd, "fault"))
                return cmd_fault(dir, argc - 3, argv + 3);
        fprintf(stderr, "ferry-sim-world: unknown command \"%s\"\n", cmd);
        return usage(stderr);
}
