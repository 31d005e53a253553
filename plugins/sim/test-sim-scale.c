/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Scale, counted not timed: the generator builds the largest
 * cluster (64 nodes, 10,000 VMs, mixed vendors and versions) and the
 * backend lists one node of it.
 *
 * Usage: test-sim-scale MODULE.so */

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "ferry-backend.h"
#include "generate.h"
#include "sim-test.h"
#include "test-util.h"
#include "world.h"

#define NODES 64
#define VMS 10000

static const char *module_path;
static char world_dir[256];

static int compare_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static void test_generate(void) {
        static const char *const vendors[] = { "AuthenticAMD", "GenuineIntel" };
        static const char *const versions[] = { "8.0.0", "8.2.0", "9.0.0" };
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        SimGenerateOptions o;
        SimError e = {};
        char **nodes = NULL, **names;
        size_t n_nodes = 0, total = 0;

        sim_test_tempdir("world", world_dir, sizeof(world_dir));
        sim_generate_options_default(&o);
        o.nodes = NODES;
        o.vms = VMS;
        o.seed = 1;
        o.vendors = vendors;
        o.n_vendors = 2;
        o.versions = versions;
        o.n_versions = 3;
        CHECK_EQ_INT(sim_world_generate(world_dir, &o, &e), 0);

        CHECK_EQ_INT(sim_world_open(world_dir, &w, &e), 0);
        CHECK_EQ_INT(sim_world_list_nodes(w, &nodes, &n_nodes), 0);
        CHECK_EQ_INT(n_nodes, NODES);
        names = calloc(VMS, sizeof(char *));
        CHECK(names);
        for (size_t i = 0; i < n_nodes; i++) {
                _cleanup_free_ SimVm *vms = NULL;
                SimHost h;
                size_t n = 0;
                uint64_t used = 0;

                CHECK_EQ_INT(sim_world_load_host(w, nodes[i], &h, &e), 0);
                CHECK_EQ_INT(sim_world_load_vms(w, nodes[i], &vms, &n, &e), 0);
                for (size_t j = 0; j < n; j++) {
                        used += vms[j].memory;
                        CHECK(total < VMS);
                        names[total++] = strdup(vms[j].name);
                }
                CHECK(used <= h.memory_total);
        }
        CHECK_EQ_INT(total, VMS);
        /* Every VM in exactly one place. */
        qsort(names, total, sizeof(char *), compare_str);
        for (size_t i = 1; i < total; i++)
                CHECK(strcmp(names[i - 1], names[i]) != 0);
        sim_strv_free(names, total);
        sim_strv_free(nodes, n_nodes);
}

static void test_list_one_node(void) {
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        _cleanup_free_ SimVm *expected = NULL;
        void *module, *ctx = NULL;
        const FerryBackendOps *ops;
        char config[512];
        FerryError err = {};
        FerryVm *vms = NULL;
        FerryHostFacts f = { .struct_size = sizeof(f) };
        SimError e = {};
        size_t n = 0, n_expected = 0;

        module = dlopen(module_path, RTLD_NOW | RTLD_LOCAL);
        CHECK(module);
        ops = dlsym(module, FERRY_BACKEND_SYMBOL);
        CHECK(ops && ops->abi_version == FERRY_BACKEND_ABI_VERSION);

        CHECK_EQ_INT(sim_world_open(world_dir, &w, &e), 0);
        CHECK_EQ_INT(sim_world_load_vms(w, "node17", &expected, &n_expected, &e), 0);
        CHECK(n_expected > 0);

        snprintf(config, sizeof(config), "world=%s", world_dir);
        FerryBackendHost host = { .struct_size = sizeof(host), .node_name = "node17", .config = config };
        CHECK_EQ_INT(ops->open(&host, &ctx, &err), 0);
        CHECK_EQ_INT(ops->list_vms(ctx, &vms, &n, &err), 0);
        CHECK_EQ_INT(n, n_expected);
        for (size_t i = 0; i < n; i++) {
                CHECK_STREQ(vms[i].name, expected[i].name);
                CHECK_STREQ(vms[i].uuid, expected[i].uuid);
        }
        ops->free_vms(ctx, vms, n);
        CHECK_EQ_INT(ops->host_facts(ctx, &f, &err), 0);
        CHECK(f.memory_free < f.memory_total);
        /* node17 is node index 16: vendor 16 mod 2, version (16 / 2) mod 3 */
        CHECK_STREQ(f.cpu_vendor, "AuthenticAMD");
        CHECK_STREQ(f.hypervisor_version, "9.0.0");
        ops->close(ctx);
        (void) dlclose(module);
}

int main(int argc, char **argv) {
        static const TestCase tests[] = {
                { "generate 64 nodes x 10,000 VMs", test_generate },
                { "list_vms of one node", test_list_one_node },
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s MODULE.so\n", argv[0]);
                return 2;
        }
        module_path = argv[1];
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
