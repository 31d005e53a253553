/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "generate.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xorshift.h"

#define KiB UINT64_C(1024)
#define MiB (KiB * 1024)
#define GiB (MiB * 1024)

/* Features are a plausible subset of /proc/cpuinfo flags, enough to make
 * generations differ: a VM that needs avx512f cannot go to a Milan. */
#define BASE_FEATURES "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt aes avx avx2 fma bmi1 bmi2"
#define BASELINE_REQUIRED "sse4_2 avx avx2"

static const struct {
        const char *vendor;
        const char *model;
        const char *features;
} cpu_models[] = {
        { "AuthenticAMD", "EPYC 7543", BASE_FEATURES " svm sha_ni vaes vpclmulqdq" },
        { "AuthenticAMD", "EPYC 7763", BASE_FEATURES " svm sha_ni vaes vpclmulqdq" },
        { "AuthenticAMD", "EPYC 9654", BASE_FEATURES " svm sha_ni vaes vpclmulqdq avx512f avx512bw avx512vl avx512_bf16" },
        { "GenuineIntel", "Xeon Gold 6130", BASE_FEATURES " vmx avx512f avx512bw avx512vl" },
        { "GenuineIntel", "Xeon Gold 6338", BASE_FEATURES " vmx avx512f avx512bw avx512vl sha_ni vaes vpclmulqdq avx512_vnni" },
};

static const uint64_t host_memory[] = { 512 * GiB, 768 * GiB, 1024 * GiB, 1536 * GiB };
static const uint32_t host_cpus[] = { 32, 64, 96, 128 };
static const uint64_t host_link[] = { 1250 * MiB, 3125 * MiB };        /* ~10 and ~25 Gbit/s */

void sim_generate_options_default(SimGenerateOptions *o) {
        *o = (SimGenerateOptions) { .seed = 1 };
        sim_params_default(&o->params);
}

static bool word_is_valid(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (!isalnum((unsigned char) *s) && !strchr("._-", *s))
                        return false;
        return true;
}

static bool version_is_valid(const char *s) {
        if (!isdigit((unsigned char) *s) || strlen(s) >= FERRY_NAME_MAX)
                return false;
        for (; *s; s++)
                if (!isdigit((unsigned char) *s) && *s != '.')
                        return false;
        return true;
}

static void pick_model(uint64_t *rng, const char *vendor, SimHost *h) {
        size_t candidates[ELEMENTSOF(cpu_models)], n = 0;

        for (size_t i = 0; i < ELEMENTSOF(cpu_models); i++)
                if (streq(cpu_models[i].vendor, vendor))
                        candidates[n++] = i;
        if (n == 0) {
                snprintf(h->cpu_model, sizeof(h->cpu_model), "Generic");
                snprintf(h->cpu_features, sizeof(h->cpu_features), "%s", BASE_FEATURES);
                return;
        }
        size_t k = candidates[xorshift_below(rng, n)];
        snprintf(h->cpu_model, sizeof(h->cpu_model), "%s", cpu_models[k].model);
        snprintf(h->cpu_features, sizeof(h->cpu_features), "%s", cpu_models[k].features);
}

static uint64_t pick_vm_memory(uint64_t *rng) {
        uint64_t r = xorshift_below(rng, 100);
        return r < 30 ? 1 * GiB : r < 60 ? 2 * GiB : r < 85 ? 4 * GiB : r < 95 ? 8 * GiB : 16 * GiB;
}

/* Half idle, a third busy, the rest hot enough to outrun a shared link. */
static uint64_t pick_dirty_rate(uint64_t *rng) {
        uint64_t r = xorshift_below(rng, 100);
        if (r < 50)
                return xorshift_below(rng, 5) * MiB;
        if (r < 85)
                return (8 + xorshift_below(rng, 121)) * MiB;
        return (256 + xorshift_below(rng, 1793)) * MiB;
}

static void make_uuid(uint64_t *rng, char buf[static 37]) {
        uint64_t a = xorshift_next(rng), b = xorshift_next(rng);

        /* Version 4, variant 1. */
        a = (a & ~UINT64_C(0xf000)) | UINT64_C(0x4000);
        b = (b & ~(UINT64_C(0xc) << 60)) | (UINT64_C(0x8) << 60);
        snprintf(buf, 37, "%08" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%04" PRIx64 "-%012" PRIx64, a >> 32,
                 (a >> 16) & 0xffff, a & 0xffff, b >> 48, b & UINT64_C(0xffffffffffff));
}

int sim_world_generate(const char *dir, const SimGenerateOptions *o, SimError *e) {
        static const char *const default_vendors[] = { "AuthenticAMD" };
        static const char *const default_versions[] = { "8.0.0" };
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        _cleanup_free_ SimHost *hosts = NULL;
        _cleanup_free_ uint64_t *used = NULL;
        const char *const *vendors = o->vendors ? o->vendors : default_vendors;
        const char *const *versions = o->versions ? o->versions : default_versions;
        size_t nv = o->vendors ? o->n_vendors : 1, nh = o->versions ? o->n_versions : 1;
        unsigned fill = o->fill_percent ? o->fill_percent : 80;
        uint64_t rng = xorshift_seed(o->seed);
        int digits = 3;
        int r;

        if (o->nodes == 0 || nv == 0 || nh == 0 || fill > 100) {
                snprintf(e->message, sizeof(e->message), "%s: need at least one node, vendor and version", dir);
                return -EINVAL;
        }
        for (size_t i = 0; i < nv; i++)
                if (!word_is_valid(vendors[i]) || strlen(vendors[i]) >= FERRY_NAME_MAX) {
                        snprintf(e->message, sizeof(e->message), "invalid CPU vendor \"%s\"", vendors[i]);
                        return -EINVAL;
                }
        for (size_t i = 0; i < nh; i++)
                if (!version_is_valid(versions[i])) {
                        snprintf(e->message, sizeof(e->message), "invalid hypervisor version \"%s\"", versions[i]);
                        return -EINVAL;
                }

        hosts = calloc(o->nodes, sizeof(SimHost));
        used = calloc(o->nodes, sizeof(uint64_t));
        if (!hosts || !used)
                return -ENOMEM;

        r = sim_world_create(dir, &o->params, &w, e);
        if (r < 0)
                return r;

        for (unsigned i = 0; i < o->nodes; i++) {
                SimHost *h = &hosts[i];
                snprintf(h->name, sizeof(h->name), "node%u", i + 1);
                snprintf(h->cpu_vendor, sizeof(h->cpu_vendor), "%s", vendors[i % nv]);
                snprintf(h->hypervisor_version, sizeof(h->hypervisor_version), "%s", versions[(i / nv) % nh]);
                pick_model(&rng, h->cpu_vendor, h);
                h->cpus = host_cpus[xorshift_below(&rng, ELEMENTSOF(host_cpus))];
                h->memory_total = host_memory[xorshift_below(&rng, ELEMENTSOF(host_memory))];
                h->link_bandwidth = host_link[xorshift_below(&rng, ELEMENTSOF(host_link))];
                r = sim_world_write_host(w, h);
                if (r < 0) {
                        snprintf(e->message, sizeof(e->message), "%s: writing host %s: %s", dir, h->name, strerror(-r));
                        return r;
                }
        }

        for (unsigned v = o->vms; v >= 1000; v /= 10)
                digits++;
        for (unsigned i = 0; i < o->vms; i++) {
                SimVm vm = {};
                uint64_t x;

                snprintf(vm.name, sizeof(vm.name), "vm%0*u", MIN(digits, 10), i + 1);
                make_uuid(&rng, vm.uuid);
                vm.memory = pick_vm_memory(&rng);
                vm.vcpus = (uint32_t) MAX(vm.memory / (2 * GiB), UINT64_C(1));
                vm.working_set = vm.memory / 8 * (1 + xorshift_below(&rng, 4));
                vm.dirty_rate = pick_dirty_rate(&rng);
                vm.cpu_use_permille = (uint32_t) xorshift_below(&rng, vm.vcpus * 500 + 1);
                x = xorshift_below(&rng, 100);
                vm.state = x < 95 ? FERRY_VM_RUNNING : x < 98 ? FERRY_VM_PAUSED : FERRY_VM_SHUTOFF;
                vm.passthrough = xorshift_below(&rng, 100) == 0;
                vm.n_disks = 1;
                snprintf(vm.disks[0].target, sizeof(vm.disks[0].target), "vda");
                snprintf(vm.disks[0].path, sizeof(vm.disks[0].path), "/shared/%s.qcow2", vm.name);
                vm.disks[0].shared = true;
                if (xorshift_below(&rng, 100) < 5) {
                        vm.n_disks = 2;
                        snprintf(vm.disks[1].target, sizeof(vm.disks[1].target), "vdb");
                        snprintf(vm.disks[1].path, sizeof(vm.disks[1].path), "/local/%s-data.img", vm.name);
                }
                uint64_t req = xorshift_below(&rng, 100);

                /* First fit from a random node. */
                unsigned start = (unsigned) xorshift_below(&rng, o->nodes), k = 0;
                bool placed = false;
                for (unsigned j = 0; j < o->nodes && !placed; j++) {
                        k = (start + j) % o->nodes;
                        placed = used[k] + vm.memory <= hosts[k].memory_total / 100 * fill;
                }
                if (!placed) {
                        snprintf(e->message, sizeof(e->message),
                                 "%s: only %u of %u VMs fit in %u nodes at %u%% memory", dir, i, o->vms, o->nodes,
                                 fill);
                        return -ENOSPC;
                }
                used[k] += vm.memory;
                snprintf(vm.node, sizeof(vm.node), "%s", hosts[k].name);
                snprintf(vm.machine, sizeof(vm.machine), "%s", hosts[k].hypervisor_version);
                /* Most guests take a generic CPU model; some need a
                 * baseline; a tenth were started with their host's exact
                 * CPU and need all of its features. */
                size_t fl = strlen(hosts[k].cpu_features);
                if (req >= 90 && fl < sizeof(vm.cpu_model_required))
                        memcpy(vm.cpu_model_required, hosts[k].cpu_features, fl + 1);
                else if (req >= 70)
                        snprintf(vm.cpu_model_required, sizeof(vm.cpu_model_required), "%s", BASELINE_REQUIRED);
                r = sim_world_write_vm(w, &vm);
                if (r < 0) {
                        snprintf(e->message, sizeof(e->message), "%s: writing VM %s: %s", dir, vm.name, strerror(-r));
                        return r;
                }
        }
        return 0;
}
