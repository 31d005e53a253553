/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "generate.h"
#include "sim-test.h"
#include "test-util.h"
#include "world.h"

#define GiB (UINT64_C(1) << 30)
#define MiB (UINT64_C(1) << 20)

static void test_parse_good(void) {
        SimParams p;
        SimHost h;
        SimVm vm;
        SimError e = {};

        CHECK_EQ_INT(sim_parse_params("# world\n"
                                      "time_scale = 0.5\n"
                                      "seed = 7\n"
                                      "switchover_ms = 80\n"
                                      "clock = manual\n",
                                      "params.conf", &p, &e),
                     0);
        CHECK_EQ_INT(p.time_scale_milli, 500);
        CHECK_EQ_INT(p.seed, 7);
        CHECK_EQ_INT(p.switchover_ms, 80);
        CHECK_EQ_INT(p.clock, SIM_CLOCK_MANUAL);
        CHECK_EQ_INT(p.max_iterations, 30);             /* default kept */
        CHECK_EQ_INT(p.max_downtime_ms, 300);

        CHECK_EQ_INT(sim_parse_host("cpu_vendor = AuthenticAMD\n"
                                    "cpu_model = EPYC 7763\n"
                                    "cpu_features =   sse2  avx\tavx2 \n"
                                    "cpus = 64\n"
                                    "memory_total = 512G\n"
                                    "hypervisor_version = 8.0.0\n"
                                    "link_bandwidth = 1250M      \n"
                                    "stream_cap = 0\n",
                                    "hosts/node1.conf", &h, &e),
                     0);
        CHECK_STREQ(h.cpu_vendor, "AuthenticAMD");
        CHECK_STREQ(h.cpu_model, "EPYC 7763");
        CHECK_STREQ(h.cpu_features, "sse2 avx avx2");
        CHECK_EQ_INT(h.cpus, 64);
        CHECK(h.memory_total == 512 * GiB);
        CHECK_STREQ(h.hypervisor_version, "8.0.0");
        CHECK(h.link_bandwidth == 1250 * MiB);
        CHECK_EQ_INT(h.stream_cap, 0);

        CHECK_EQ_INT(sim_parse_vm("uuid = 5f8e2a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b\n"
                                  "state = paused\n"
                                  "vcpus = 4\n"
                                  "memory = 8G\n"
                                  "dirty_rate = 50M\n"
                                  "cpu_use_permille = 300\n"
                                  "passthrough = 0\n"
                                  "disks = vda:/shared/vm1.qcow2:shared vdb:/local/x:y.img:local\n"
                                  "cpu_model_required = avx avx2\n"
                                  "machine = 8.0.0\n",
                                  "vms/node1/vm1.conf", &vm, &e),
                     0);
        CHECK_EQ_INT(vm.state, FERRY_VM_PAUSED);
        CHECK_EQ_INT(vm.vcpus, 4);
        CHECK(vm.memory == 8 * GiB);
        CHECK_EQ_INT(vm.working_set, 0);
        CHECK(vm.dirty_rate == 50 * MiB);
        CHECK_EQ_INT(vm.n_disks, 2);
        CHECK_STREQ(vm.disks[0].target, "vda");
        CHECK_STREQ(vm.disks[0].path, "/shared/vm1.qcow2");
        CHECK(vm.disks[0].shared);
        CHECK_STREQ(vm.disks[1].path, "/local/x:y.img");       /* colons inside a path */
        CHECK(!vm.disks[1].shared);
        CHECK_STREQ(vm.cpu_model_required, "avx avx2");
        CHECK_STREQ(vm.machine, "8.0.0");
}

static void test_parse_bad(void) {
        static const struct {
                int kind;       /* 0 params, 1 host, 2 vm */
                const char *text;
                unsigned line;
                const char *contains;
        } cases[] = {
                { 0, "time_scale = 0\n", 1, "time_scale" },
                { 0, "\n\ntime_scale = fast\n", 3, "time_scale" },
                { 0, "time_scale = 1.2345\n", 1, "time_scale" },
                { 0, "clock = wall\n", 1, "monotonic or manual" },
                { 0, "max_iterations = 0\n", 1, "positive" },
                { 0, "jitter_permille = 1000\n", 1, "0 to 999" },
                { 0, "seed = 1\nseed = 2\n", 2, "given twice" },
                { 0, "bogus = 1\n", 1, "unknown key \"bogus\"" },
                { 1, "cpu_vendor = X\ncpus = 4\nmemory_total = 1G\n", 0, "missing key \"link_bandwidth\"" },
                { 1, "cpu_vendor = X\ncpus = 0\n", 2, "cpus" },
                { 1, "# c\ncpu_vendor = X\nmemory_total = lots\n", 3, "memory_total" },
                { 1, "cpu_vendor = X\ncpu_features = avx,avx2\n", 2, "feature" },
                { 1, "cpu_vendor = X\nhypervisor_version = v8\n", 2, "dotted" },
                { 1, "cpu_vendor\n", 1, "key = value" },
                { 2, "memory = 1G\n", 0, "missing key \"uuid\"" },
                { 2, "uuid = not-a-uuid\n", 1, "UUID" },
                { 2, "uuid = 5f8e2a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b\nmemory = 1G\nstate = migrating\n", 3, "state" },
                { 2, "uuid = 5f8e2a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b\nmemory = 1G\ndisks = vda:/x:remote\n", 3, "disks" },
                { 2, "uuid = 5f8e2a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b\nmemory = 1G\ndisks = vda\n", 3, "disks" },
                { 2, "uuid = 5f8e2a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b\nmemory = 0\n", 2, "memory" },
                { 2, "uuid = 5f8e2a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b\nmemory = 1G\nworking_set = 2G\n", 0, "working_set" },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                SimParams p;
                SimHost h;
                SimVm vm;
                SimError e = {};
                int r = cases[i].kind == 0 ? sim_parse_params(cases[i].text, "f.conf", &p, &e)
                        : cases[i].kind == 1 ? sim_parse_host(cases[i].text, "f.conf", &h, &e)
                                             : sim_parse_vm(cases[i].text, "f.conf", &vm, &e);
                char prefix[32];

                if (cases[i].line > 0)
                        snprintf(prefix, sizeof(prefix), "f.conf:%u: ", cases[i].line);
                else
                        snprintf(prefix, sizeof(prefix), "f.conf: ");
                bool ok = r == -EINVAL && e.line == cases[i].line &&
                          strncmp(e.message, prefix, strlen(prefix)) == 0 && strstr(e.message, cases[i].contains);
                if (!ok)
                        fprintf(stderr, "case %zu: r=%d line=%u \"%s\"\n", i, r, e.line, e.message);
                CHECK(ok);
        }
}

static void test_roundtrip(void) {
        SimHost h = {
                .cpu_vendor = "GenuineIntel", .cpu_model = "Xeon Gold 6338", .cpu_features = "avx avx2 avx512f",
                .cpus = 96, .memory_total = 768 * GiB, .hypervisor_version = "9.0.0",
                .link_bandwidth = 3125 * MiB, .stream_cap = 1000 * MiB + 1,
        }, h2;
        SimVm vm = {
                .uuid = "5f8e2a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b", .state = FERRY_VM_SHUTOFF, .vcpus = 2,
                .memory = 3 * GiB / 2, .working_set = 512 * MiB, .dirty_rate = 12345, .cpu_use_permille = 10,
                .passthrough = 1, .n_disks = 1, .disks = { { "vda", "/shared/a.img", true } },
                .cpu_model_required = "avx512f", .machine = "9.0.0",
        }, vm2;
        SimMarker m = {
                .vm = "vm1", .source = "node1", .destination = "node2", .boot_id = "abc", .start = 123,
                .started_realtime = 456, .reserved = GiB, .bandwidth_cap = 99, .postcopy_allowed = true,
        }, m2 = {};
        SimParams p, p2;
        SimError e = {};
        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL, *d = NULL, *a2 = NULL, *b2 = NULL;
        char buf[32];

        CHECK_EQ_INT(sim_format_host(&h, &a), 0);
        CHECK_EQ_INT(sim_parse_host(a, "h", &h2, &e), 0);
        CHECK_EQ_INT(sim_format_host(&h2, &a2), 0);
        CHECK_STREQ(a, a2);
        CHECK_STREQ(h2.cpu_model, h.cpu_model);
        CHECK_STREQ(h2.cpu_features, h.cpu_features);
        CHECK(h2.memory_total == h.memory_total && h2.stream_cap == h.stream_cap && h2.cpus == h.cpus);
        CHECK(strstr(a, "memory_total = 768G\n"));

        CHECK_EQ_INT(sim_format_vm(&vm, &b), 0);
        CHECK_EQ_INT(sim_parse_vm(b, "v", &vm2, &e), 0);
        CHECK_EQ_INT(sim_format_vm(&vm2, &b2), 0);
        CHECK_STREQ(b, b2);
        CHECK(vm2.memory == vm.memory && vm2.working_set == vm.working_set && vm2.dirty_rate == vm.dirty_rate);
        CHECK(vm2.state == vm.state && vm2.passthrough == 1 && vm2.n_disks == 1 && vm2.disks[0].shared);
        CHECK_STREQ(vm2.machine, "9.0.0");
        CHECK(strstr(b, "memory = 1536M\n"));

        precopy_params_default(&m.model);
        m.model.memory = GiB;
        m.model.bandwidth = 1000;
        m.model.jitter_permille = 5;
        CHECK_EQ_INT(sim_marker_add_event(&m, 10, SIM_EVENT_BANDWIDTH, 500), 0);
        CHECK_EQ_INT(sim_marker_add_event(&m, 20, SIM_EVENT_POSTCOPY, 0), 0);
        CHECK_EQ_INT(sim_marker_add_event(&m, 15, SIM_EVENT_MAX_DOWNTIME, 1), -EINVAL);    /* out of order */
        CHECK_EQ_INT(sim_format_marker(&m, &c), 0);
        CHECK_EQ_INT(sim_parse_marker(c, "m", &m2, &e), 0);
        CHECK_STREQ(m2.vm, "vm1");
        CHECK_STREQ(m2.destination, "node2");
        CHECK_EQ_INT(m2.start, 123);
        CHECK(m2.postcopy_allowed);
        CHECK(precopy_params_equal(&m.model, &m2.model));
        CHECK_EQ_INT(m2.n_events, 2);
        CHECK_EQ_INT(m2.events[0].type, SIM_EVENT_BANDWIDTH);
        CHECK_EQ_INT(m2.events[0].value, 500);
        CHECK_EQ_INT(m2.events[1].type, SIM_EVENT_POSTCOPY);
        CHECK_EQ_INT(m2.events[1].at, 20);
        sim_marker_done(&m);
        sim_marker_done(&m2);
        CHECK_EQ_INT(sim_parse_marker("vm = a\nsource = b\ndestination = c\nstart = 1\nmemory = 1\nbandwidth = 1\n"
                                      "event = 5 bandwidth 0\n", "m", &m2, &e), -EINVAL);
        CHECK_EQ_INT(e.line, 7);

        sim_params_default(&p);
        p.time_scale_milli = 12500;
        CHECK_EQ_INT(sim_format_params(&p, &d), 0);
        CHECK(strstr(d, "time_scale = 12.5\n"));
        CHECK_EQ_INT(sim_parse_params(d, "p", &p2, &e), 0);
        CHECK(p.time_scale_milli == p2.time_scale_milli && p.clock == p2.clock && p.seed == p2.seed &&
              p.setup_ms == p2.setup_ms && p.switchover_ms == p2.switchover_ms &&
              p.max_downtime_ms == p2.max_downtime_ms && p.max_iterations == p2.max_iterations &&
              p.jitter_permille == p2.jitter_permille && p.throttle_initial == p2.throttle_initial &&
              p.throttle_increment == p2.throttle_increment && p.throttle_max == p2.throttle_max &&
              p.throttle_trigger == p2.throttle_trigger);

        CHECK_STREQ(sim_format_size(buf, sizeof(buf), 0), "0");
        CHECK_STREQ(sim_format_size(buf, sizeof(buf), 1025), "1025");
        CHECK_STREQ(sim_format_size(buf, sizeof(buf), 2 * GiB), "2G");
        CHECK_STREQ(sim_format_size(buf, sizeof(buf), UINT64_C(3) << 40), "3T");
}

static void test_names_and_features(void) {
        char missing[64];

        CHECK(sim_name_is_valid("node1"));
        CHECK(sim_name_is_valid("vm-01.a_b"));
        CHECK(!sim_name_is_valid(""));
        CHECK(!sim_name_is_valid(".hidden"));
        CHECK(!sim_name_is_valid("a/b"));
        CHECK(!sim_name_is_valid("a b"));
        CHECK(sim_features_subset("", "avx", missing, sizeof(missing)));
        CHECK(sim_features_subset("avx avx2", "sse2 avx2 avx", missing, sizeof(missing)));
        CHECK(!sim_features_subset("avx avx512f avx512bw", "avx avx512", missing, sizeof(missing)));
        CHECK_STREQ(missing, "avx512f avx512bw");
}

static void test_world_dir(void) {
        char dir[256];
        _cleanup_(sim_world_freep) SimWorld *w = NULL, *w2 = NULL;
        _cleanup_free_ SimVm *vms = NULL;
        SimParams p;
        SimError e = {};
        SimHost h = { .name = "node1", .cpu_vendor = "AuthenticAMD", .cpus = 8, .memory_total = 64 * GiB,
                      .hypervisor_version = "8.0.0", .link_bandwidth = 1250 * MiB };
        SimVm vm = { .name = "vm1", .node = "node1", .uuid = "5f8e2a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b",
                     .state = FERRY_VM_RUNNING, .vcpus = 1, .memory = GiB };
        size_t n = 0;
        uint64_t now;
        char **nodes = NULL;

        sim_test_tempdir("world", dir, sizeof(dir));
        sim_params_default(&p);
        p.clock = SIM_CLOCK_MANUAL;
        CHECK_EQ_INT(sim_world_create(dir, &p, &w, &e), 0);
        CHECK_EQ_INT(sim_world_create(dir, &p, &w2, &e), -EEXIST);
        CHECK_EQ_INT(sim_world_write_host(w, &h), 0);
        snprintf(h.name, sizeof(h.name), "node2");
        CHECK_EQ_INT(sim_world_write_host(w, &h), 0);
        CHECK_EQ_INT(sim_world_write_vm(w, &vm), 0);
        CHECK_EQ_INT(sim_world_list_nodes(w, &nodes, &n), 0);
        CHECK_EQ_INT(n, 2);
        CHECK_STREQ(nodes[0], "node1");
        CHECK_STREQ(nodes[1], "node2");
        sim_strv_free(nodes, n);

        CHECK_EQ_INT(sim_world_load_vms(w, "node1", &vms, &n, &e), 0);
        CHECK_EQ_INT(n, 1);
        CHECK_STREQ(vms[0].name, "vm1");
        CHECK_STREQ(vms[0].node, "node1");
        free(vms);
        vms = NULL;
        CHECK_EQ_INT(sim_world_load_vms(w, "node2", &vms, &n, &e), 0);
        CHECK_EQ_INT(n, 0);
        CHECK_EQ_INT(sim_world_load_host(w, "node3", &h, &e), -ENOENT);

        /* One rename: the VM is always in exactly one place. */
        CHECK_EQ_INT(sim_world_move_vm(w, "vm1", "node1", "node2"), 0);
        SimVm got;
        CHECK_EQ_INT(sim_world_load_vm(w, "node1", "vm1", &got, NULL), -ENOENT);
        CHECK_EQ_INT(sim_world_load_vm(w, "node2", "vm1", &got, &e), 0);
        /* Never onto a VM of the same name. */
        CHECK_EQ_INT(sim_world_write_vm(w, &vm), 0);
        CHECK_EQ_INT(sim_world_move_vm(w, "vm1", "node1", "node2"), -EEXIST);
        CHECK_EQ_INT(sim_world_load_vm(w, "node1", "vm1", &got, &e), 0);

        /* A bad file is named with its line. */
        char path[512];
        snprintf(path, sizeof(path), "%s/vms/node1/broken.conf", dir);
        FILE *f = fopen(path, "we");
        CHECK(f);
        fputs("uuid = 5f8e2a4c-1b2d-4e6f-8a9b-0c1d2e3f4a5b\nmemory = 1G\nvcpus = many\n", f);
        fclose(f);
        free(vms);
        vms = NULL;
        CHECK_EQ_INT(sim_world_load_vms(w, "node1", &vms, &n, &e), -EINVAL);
        CHECK_EQ_INT(e.line, 3);
        CHECK(strstr(e.message, "/vms/node1/broken.conf:3: invalid value \"many\" for vcpus"));
        CHECK_EQ_INT(unlink(path), 0);
        /* Temporaries and other files are not VMs. */
        snprintf(path, sizeof(path), "%s/vms/node1/.vm9.conf.Xy12ab", dir);
        f = fopen(path, "we");
        CHECK(f);
        fclose(f);
        CHECK_EQ_INT(sim_world_load_vms(w, "node1", &vms, &n, &e), 0);
        CHECK_EQ_INT(n, 1);

        /* The lock nests within one SimWorld. */
        CHECK_EQ_INT(sim_world_lock(w), 0);
        CHECK_EQ_INT(sim_world_lock(w), 0);
        sim_world_unlock(w);
        sim_world_unlock(w);
        sim_world_unlock(w);    /* one too many: harmless */

        /* Manual clock. */
        CHECK_EQ_INT(sim_world_now(w, &now), 0);
        CHECK_EQ_INT(now, 0);
        CHECK_EQ_INT(sim_world_advance_clock(w, 1500), 0);
        CHECK_EQ_INT(sim_world_advance_clock(w, 500), 0);
        CHECK_EQ_INT(sim_world_open(dir, &w2, &e), 0);
        CHECK_EQ_INT(sim_world_now(w2, &now), 0);
        CHECK_EQ_INT(now, 2000);

        /* Owner locks: held means alive. */
        int fd1 = -1, fd2 = -1;
        CHECK_EQ_INT(sim_world_take_owner(w, "vm1", &fd1), 0);
        CHECK_EQ_INT(sim_world_take_owner(w2, "vm1", &fd2), -EBUSY);
        sim_world_drop_owner(w, "vm1", fd1);
        CHECK_EQ_INT(sim_world_take_owner(w2, "vm1", &fd2), 0);
        sim_world_drop_owner(w2, "vm1", fd2);

        /* Not a world. */
        SimWorld *none = NULL;
        char other[256];
        sim_test_tempdir("", other, sizeof(other));
        CHECK_EQ_INT(sim_world_open(other, &none, &e), -ENOENT);
        CHECK(strstr(e.message, "params.conf"));
}

static void test_monotonic_clock(void) {
        char dir[256];
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        SimParams p;
        SimError e = {};
        uint64_t a, b;

        sim_test_tempdir("world", dir, sizeof(dir));
        sim_params_default(&p);
        p.time_scale_milli = 1000 * 1000;
        CHECK_EQ_INT(sim_world_create(dir, &p, &w, &e), 0);
        CHECK_EQ_INT(sim_world_now(w, &a), 0);
        usleep(2000);
        CHECK_EQ_INT(sim_world_now(w, &b), 0);
        /* 2 ms real at x1000: at least 2 s simulated. */
        CHECK(b - a >= 2000000);
        CHECK_EQ_INT(sim_world_advance_clock(w, 1), -EOPNOTSUPP);
        CHECK(strlen(w->boot_id) == 36);
}

/* Every file of a world, concatenated with its name, in sorted order. */
static void slurp_tree(const char *dir, const char *rel, FILE *out) {
        char path[1024];
        struct dirent **list;
        int n;

        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        n = scandir(path, &list, NULL, alphasort);
        CHECK(n >= 0);
        for (int i = 0; i < n; i++) {
                char sub[1024], file[2048];
                struct stat st;
                if (list[i]->d_name[0] == '.') {
                        free(list[i]);
                        continue;
                }
                snprintf(sub, sizeof(sub), "%s/%s", rel, list[i]->d_name);
                snprintf(file, sizeof(file), "%s/%s", dir, sub);
                CHECK(stat(file, &st) == 0);
                if (S_ISDIR(st.st_mode))
                        slurp_tree(dir, sub, out);
                else {
                        FILE *f = fopen(file, "re");
                        int c;
                        CHECK(f);
                        fprintf(out, "== %s\n", sub);
                        while ((c = fgetc(f)) != EOF)
                                fputc(c, out);
                        fclose(f);
                }
                free(list[i]);
        }
        free(list);
}

static char *world_text(const char *dir) {
        char *text = NULL;
        size_t size;
        FILE *f = open_memstream(&text, &size);
        CHECK(f);
        slurp_tree(dir, ".", f);
        fclose(f);
        return text;
}

static void test_generate(void) {
        static const char *const vendors[] = { "AuthenticAMD", "GenuineIntel" };
        static const char *const versions[] = { "8.0.0", "9.0.0" };
        char a[256], b[256], c[256];
        SimGenerateOptions o;
        SimError e = {};
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        char **nodes = NULL;
        size_t n_nodes = 0, total = 0;
        bool seen[2][2] = {};

        sim_generate_options_default(&o);
        o.nodes = 16;
        o.vms = 400;
        o.seed = 7;
        o.vendors = vendors;
        o.n_vendors = 2;
        o.versions = versions;
        o.n_versions = 2;
        sim_test_tempdir("a", a, sizeof(a));
        sim_test_tempdir("b", b, sizeof(b));
        sim_test_tempdir("c", c, sizeof(c));
        CHECK_EQ_INT(sim_world_generate(a, &o, &e), 0);
        CHECK_EQ_INT(sim_world_generate(a, &o, &e), -EEXIST);
        CHECK_EQ_INT(sim_world_generate(b, &o, &e), 0);
        o.seed = 8;
        CHECK_EQ_INT(sim_world_generate(c, &o, &e), 0);

        /* Same seed, same world, byte for byte; another seed, another. */
        _cleanup_free_ char *ta = world_text(a), *tb = world_text(b), *tc = world_text(c);
        CHECK(streq(ta, tb));
        CHECK(!streq(ta, tc));

        CHECK_EQ_INT(sim_world_open(a, &w, &e), 0);
        CHECK_EQ_INT(sim_world_list_nodes(w, &nodes, &n_nodes), 0);
        CHECK_EQ_INT(n_nodes, 16);
        for (size_t i = 0; i < n_nodes; i++) {
                _cleanup_free_ SimVm *vms = NULL;
                SimHost h;
                size_t n = 0;
                uint64_t used = 0;

                CHECK_EQ_INT(sim_world_load_host(w, nodes[i], &h, &e), 0);
                CHECK_EQ_INT(sim_world_load_vms(w, nodes[i], &vms, &n, &e), 0);
                for (size_t j = 0; j < n; j++) {
                        used += vms[j].memory;
                        CHECK_STREQ(vms[j].machine, h.hypervisor_version);
                }
                CHECK(used <= h.memory_total / 100 * 80);
                seen[streq(h.cpu_vendor, "GenuineIntel")][streq(h.hypervisor_version, "9.0.0")] = true;
                total += n;
        }
        CHECK_EQ_INT(total, 400);
        /* Every vendor x version combination is there. */
        CHECK(seen[0][0] && seen[0][1] && seen[1][0] && seen[1][1]);
        sim_strv_free(nodes, n_nodes);

        /* Too many VMs for the memory. */
        char d[256];
        sim_test_tempdir("d", d, sizeof(d));
        sim_generate_options_default(&o);
        o.nodes = 1;
        o.vms = 1000;
        CHECK_EQ_INT(sim_world_generate(d, &o, &e), -ENOSPC);
        CHECK(strstr(e.message, "of 1000 VMs fit"));
}

int main(void) {
        static const TestCase tests[] = {
                { "parse good files", test_parse_good },
                { "parse bad files, with lines", test_parse_bad },
                { "format and parse round trip", test_roundtrip },
                { "names and feature sets", test_names_and_features },
                { "world directory", test_world_dir },
                { "monotonic clock", test_monotonic_clock },
                { "generator", test_generate },
        };
        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
