/* SPDX-License-Identifier: GPL-2.0-or-later */

/* domain-xml.c on golden files: every test-data/NAME.xml is parsed and what
 * the parser makes of it is compared with test-data/NAME.out. After a
 * deliberate change, FERRY_TEST_REGENERATE=1 rewrites the .out files
 * (review the diff). Then table-driven checks of the small parsers and of
 * documents that must be refused. */

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain-xml.h"
#include "macro.h"
#include "test-util.h"

static const char *data_dir;
/* The shared storage the golden domains are judged against. */
static char *const golden_shared_paths[] = { "/srv/shared", "/mnt/nfs", "/dev/disk/by-path", NULL };

static char *read_all(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        char *buf = NULL;
        size_t size = 0;

        if (!f)
                return NULL;
        FILE *m = open_memstream(&buf, &size);
        CHECK(m);
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                fwrite(chunk, 1, n, m);
        fclose(m);
        return buf;
}

static void dump_capabilities(FILE *out, const char *xml) {
        FerryHostFacts f = { .struct_size = sizeof(f) };
        FerryError e = {};

        CHECK_EQ_INT(capabilities_xml_parse(xml, &f, &e), 0);
        fprintf(out, "cpu_vendor: %s\ncpu_model: %s\ncpu_features: %s\n", f.cpu_vendor, f.cpu_model, f.cpu_features);
}

static void dump_domcaps(FILE *out, const char *xml) {
        _cleanup_free_ char *cpu = NULL;
        FerryError e = {};

        CHECK_EQ_INT(domcaps_xml_host_model_cpu(xml, &cpu, &e), 0);
        fprintf(out, "host_model_cpu: %s\n", cpu ?: "(none)");
}

static void dump_domain(FILE *out, const char *xml) {
        _cleanup_(domain_cpu_done) DomainCpu cpu = {};
        FerryVm vm = {};
        FerryError e = {};

        CHECK_EQ_INT(domain_xml_parse(xml, golden_shared_paths, &vm, &e), 0);
        fprintf(out, "name: %s\nuuid: %s\nvcpus: %" PRIu32 "\nmemory: %" PRIu64 "\npassthrough: %" PRIu32 "\n",
                vm.name, vm.uuid, vm.vcpus, vm.memory, vm.n_passthrough);
        fprintf(out, "disks: %" PRIu32 "\n", vm.n_disks);
        for (uint32_t i = 0; i < vm.n_disks; i++)
                fprintf(out, "  %s %s %s\n", vm.disks[i].target, vm.disks[i].shared ? "shared" : "local",
                        vm.disks[i].path[0] ? vm.disks[i].path : "(no source)");

        CHECK_EQ_INT(domain_xml_cpu(xml, &cpu, &e), 0);
        fprintf(out, "cpu: virttype=%s arch=%s machine=%s mode=%s\n", cpu.virttype, cpu.arch ?: "(none)",
                cpu.machine ?: "(none)", cpu.mode ?: "(none)");
        fprintf(out, "cpu_xml: %s\n", cpu.cpu_xml ?: "(none)");
}

static void test_golden(void) {
        _cleanup_free_ struct dirent **entries = NULL;
        bool regenerate = getenv("FERRY_TEST_REGENERATE") && streq(getenv("FERRY_TEST_REGENERATE"), "1");
        unsigned files = 0;
        int n;

        n = scandir(data_dir, &entries, NULL, alphasort);
        CHECK(n > 0);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *name = strdup(entries[i]->d_name);
                free(entries[i]);
                size_t l = strlen(name);
                if (l < 5 || !streq(name + l - 4, ".xml"))
                        continue;

                _cleanup_free_ char *xml_path = NULL, *out_path = NULL, *xml = NULL, *expected = NULL;
                char *got = NULL;
                size_t got_size = 0;
                CHECK(asprintf(&xml_path, "%s/%s", data_dir, name) > 0);
                CHECK(asprintf(&out_path, "%s/%.*s.out", data_dir, (int) (l - 4), name) > 0);
                xml = read_all(xml_path);
                CHECK(xml);

                FILE *out = open_memstream(&got, &got_size);
                CHECK(out);
                if (strncmp(name, "capabilities-", 13) == 0)
                        dump_capabilities(out, xml);
                else if (strncmp(name, "domcaps-", 8) == 0)
                        dump_domcaps(out, xml);
                else if (strncmp(name, "domain-", 7) == 0)
                        dump_domain(out, xml);
                else {
                        fprintf(stderr, "%s: name must start with capabilities-, domcaps- or domain-\n", xml_path);
                        exit(1);
                }
                fclose(out);

                if (regenerate) {
                        FILE *f = fopen(out_path, "we");
                        CHECK(f);
                        fputs(got, f);
                        CHECK(fclose(f) == 0);
                        fprintf(stderr, "regenerated %s\n", out_path);
                } else {
                        expected = read_all(out_path);
                        if (!expected || !streq(expected, got)) {
                                fprintf(stderr, "%s: output differs from %s (FERRY_TEST_REGENERATE=1 rewrites it)\n"
                                        "--- got:\n%s", xml_path, out_path, got);
                                exit(1);
                        }
                }
                test_checks++;
                files++;
                free(got);
        }
        CHECK(files >= 5);
}

static void test_sizes(void) {
        static const struct {
                const char *value, *unit;
                int r;
                uint64_t bytes;
        } cases[] = {
                { "1", NULL, 0, 1024 },
                { "262144", "KiB", 0, UINT64_C(268435456) },
                { "2", "k", 0, 2048 },
                { "2", "K", 0, 2048 },
                { "2", "KB", 0, 2000 },
                { "256", "MiB", 0, UINT64_C(268435456) },
                { "1", "G", 0, UINT64_C(1) << 30 },
                { "1", "GB", 0, UINT64_C(1000000000) },
                { "1", "T", 0, UINT64_C(1) << 40 },
                { "42", "bytes", 0, 42 },
                { "42", "b", 0, 42 },
                { "16", "E", -ERANGE, 0 },
                { "18446744073709551615", "KiB", -ERANGE, 0 },
                { "1", "furlongs", -EINVAL, 0 },
                { "-1", "KiB", -EINVAL, 0 },
                { "1.5", "GiB", -EINVAL, 0 },
                { "", "KiB", -EINVAL, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 0;
                int r = parse_libvirt_size(cases[i].value, cases[i].unit, &v);
                if (r != cases[i].r || (r == 0 && v != cases[i].bytes)) {
                        fprintf(stderr, "parse_libvirt_size(\"%s\", %s) = %d, %" PRIu64 "; expected %d, %" PRIu64 "\n",
                                cases[i].value, cases[i].unit ?: "NULL", r, v, cases[i].r, cases[i].bytes);
                        exit(1);
                }
                test_checks++;
        }
}

static void test_shared_paths(void) {
        static const struct {
                const char *input;
                int r;
                const char *joined;     /* entries joined by '|' */
        } cases[] = {
                { "", 0, "" },
                { "/srv", 0, "/srv" },
                { "/srv/:/mnt/nfs//", 0, "/srv|/mnt/nfs" },
                { "/", 0, "/" },
                { "::/a::", 0, "/a" },
                { "/a:relative", -EINVAL, NULL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char **l = NULL;
                char joined[256] = "";
                int r = shared_paths_parse(cases[i].input, &l);
                CHECK_EQ_INT(r, cases[i].r);
                if (r < 0)
                        continue;
                for (char **p = l; *p; p++) {
                        if (p != l)
                                strcat(joined, "|");
                        strcat(joined, *p);
                }
                CHECK_STREQ(joined, cases[i].joined);
                strv_free(l);
        }

        /* "/" shares everything with a path; nothing without one. */
        char *const all[] = { "/", NULL };
        FerryVm vm = {};
        CHECK_EQ_INT(domain_xml_parse("<domain><name>a</name><uuid>00000000-0000-0000-0000-000000000001</uuid>"
                                      "<memory>1</memory><vcpu>1</vcpu><devices>"
                                      "<disk type='file'><source file='/x/y'/><target dev='vda'/></disk>"
                                      "<disk type='block'><source dev='/dev/sdb'/><target dev='vdb'/></disk>"
                                      "</devices></domain>", all, &vm, NULL), 0);
        CHECK_EQ_INT(vm.n_disks, 2);
        CHECK(vm.disks[0].shared && vm.disks[1].shared);
        CHECK_EQ_INT(domain_xml_parse("<domain><name>a</name><uuid>00000000-0000-0000-0000-000000000001</uuid>"
                                      "<memory>1</memory><vcpu>1</vcpu><devices>"
                                      "<disk type='file'><source file='/x/y'/><target dev='vda'/></disk>"
                                      "</devices></domain>", NULL, &vm, NULL), 0);
        CHECK(!vm.disks[0].shared);
}

static void test_refused(void) {
        static const struct {
                const char *xml;
                int r;
                const char *message_part;
        } cases[] = {
                { "<domain><name>x</name", -EINVAL, "malformed domain XML" },
                { "", -EINVAL, "malformed domain XML" },
                { "<capabilities/>", -EINVAL, "no <domain> root" },
                { "<domain><uuid>00000000-0000-0000-0000-000000000001</uuid></domain>", -EINVAL, "no <name>" },
                { "<domain><name>x</name><uuid>123</uuid></domain>", -EINVAL, "<uuid>" },
                { "<domain><name>x</name><uuid>00000000-0000-0000-0000-000000000001</uuid><memory>1</memory>"
                  "<vcpu>many</vcpu></domain>", -EINVAL, "<vcpu>" },
                { "<domain><name>x</name><uuid>00000000-0000-0000-0000-000000000001</uuid><vcpu>1</vcpu>"
                  "<memory unit='parsecs'>1</memory></domain>", -EINVAL, "<memory>" },
                /* No entities from anywhere, ever. */
                { "<!DOCTYPE d [<!ENTITY e SYSTEM 'http://example.invalid/x'>]><domain><name>&e;</name></domain>",
                  -EINVAL, "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                FerryVm vm = {};
                FerryError e = {};
                int r = domain_xml_parse(cases[i].xml, NULL, &vm, &e);
                if (r != cases[i].r || !strstr(e.message, cases[i].message_part)) {
                        fprintf(stderr, "case %zu: r=%d message \"%s\"; expected %d and \"%s\"\n", i, r, e.message,
                                cases[i].r, cases[i].message_part);
                        exit(1);
                }
                test_checks++;
        }

        /* A name ferry cannot carry is an error, not a truncation. */
        char long_name[FERRY_NAME_MAX + 1];
        memset(long_name, 'n', FERRY_NAME_MAX);
        long_name[FERRY_NAME_MAX] = 0;
        _cleanup_free_ char *xml = NULL;
        CHECK(asprintf(&xml, "<domain><name>%s</name><uuid>00000000-0000-0000-0000-000000000001</uuid>"
                       "<memory>1</memory><vcpu>1</vcpu></domain>", long_name) > 0);
        FerryVm vm = {};
        FerryError e = {};
        CHECK_EQ_INT(domain_xml_parse(xml, NULL, &vm, &e), -ENAMETOOLONG);
        CHECK(strstr(e.message, "longer than"));

        FerryHostFacts f = { .struct_size = sizeof(f) };
        CHECK_EQ_INT(capabilities_xml_parse("<domain/>", &f, &e), -EINVAL);
        CHECK_EQ_INT(capabilities_xml_parse(NULL, &f, &e), -EINVAL);

        /* A domain capabilities document without host-model: no CPU. */
        char *cpu = (char *) "sentinel";
        CHECK_EQ_INT(domcaps_xml_host_model_cpu("<domainCapabilities><cpu><mode name='host-model' supported='no'/>"
                                                "</cpu></domainCapabilities>", &cpu, &e), 0);
        CHECK(cpu == NULL);
}

int main(int argc, char *argv[]) {
        static const TestCase tests[] = {
                { "golden files", test_golden },
                { "libvirt sizes", test_sizes },
                { "shared paths", test_shared_paths },
                { "refused documents", test_refused },
        };

        if (argc != 2) {
                fprintf(stderr, "usage: %s TEST-DATA-DIR\n", argv[0]);
                return 2;
        }
        data_dir = argv[1];
        return run_tests(tests, ELEMENTSOF(tests));
}
