/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "facts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ferry-build.h"
#include "macro.h"
#include "message.h"
#include "strutil.h"

static int read_file(const char *path, char **ret) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;

        if (!f)
                return negative_errno();
        FILE *m = open_memstream(&buf, &size);
        if (!m)
                return -ENOMEM;
        char chunk[4096];
        size_t n;
        while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
                fwrite(chunk, 1, n, m);
        if (fclose(m) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(buf);
        return 0;
}

static int compare_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Sorted, de-duplicated, space-separated. */
static char *normalize_flags(const char *s) {
        _cleanup_free_ char *copy = strdup(s);
        _cleanup_free_ char **words = NULL;
        size_t n = 0, allocated = 0, len = 0;

        if (!copy)
                return NULL;
        for (char *save = NULL, *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                if (n == allocated) {
                        allocated = allocated ? allocated * 2 : 64;
                        char **nw = realloc(words, allocated * sizeof(char *));
                        if (!nw)
                                return NULL;
                        words = nw;
                }
                words[n++] = w;
        }
        if (n > 0)
                qsort(words, n, sizeof(char *), compare_str);
        char *out = malloc(strlen(s) + 1);
        if (!out)
                return NULL;
        out[0] = 0;
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && streq(words[i], words[i - 1]))
                        continue;
                if (len > 0)
                        out[len++] = ' ';
                size_t wl = strlen(words[i]);
                memcpy(out + len, words[i], wl + 1);
                len += wl;
        }
        return out;
}

int facts_parse_cpuinfo(const char *text, char **vendor, char **model, char **features) {
        _cleanup_free_ char *v = NULL, *m = NULL, *f = NULL;
        _cleanup_free_ char *copy = strdup(text);

        if (!copy)
                return -ENOMEM;
        /* The first processor block is enough: all CPUs of a host share
         * vendor, model and flags for migration purposes. */
        for (char *save = NULL, *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
                char *colon = strchr(l, ':');
                if (!colon)
                        continue;
                *colon = 0;
                char *key = strstrip(l), *value = strstrip(colon + 1);
                if (!v && streq(key, "vendor_id"))
                        v = strdup(value);
                else if (!m && streq(key, "model name"))
                        m = strdup(value);
                else if (!f && streq(key, "flags"))
                        f = normalize_flags(value);
                if (v && m && f)
                        break;
        }
        *vendor = v ? TAKE_PTR(v) : strdup("unknown");
        *model = m ? TAKE_PTR(m) : strdup("unknown");
        *features = f ? TAKE_PTR(f) : strdup("");
        if (!*vendor || !*model || !*features)
                return -ENOMEM;
        return 0;
}

static int read_meminfo(uint64_t *total, uint64_t *available) {
        _cleanup_free_ char *text = NULL;
        int r = read_file("/proc/meminfo", &text);
        if (r < 0)
                return r;
        unsigned long long kb;
        const char *p;
        if (!(p = strstr(text, "MemTotal:")) || sscanf(p, "MemTotal: %llu kB", &kb) != 1)
                return -EBADMSG;
        *total = kb * 1024;
        if (!(p = strstr(text, "MemAvailable:")) || sscanf(p, "MemAvailable: %llu kB", &kb) != 1)
                return -EBADMSG;
        *available = kb * 1024;
        return 0;
}

static char *normalize_flags_bounded(const char *s, size_t max) {
        _cleanup_free_ char *copy = strndup(s, max);
        return copy ? normalize_flags(copy) : NULL;
}

int facts_collect(NodeFacts *ret, const char *name, const FerryConfig *config, const FerryHostFacts *hf,
                  const char *peer_uri) {
        NodeFacts f = {};
        struct timespec ts;
        int r;

        if (hf) {
                /* Bounded copies: a plugin's strings are not trusted to end. */
                f.cpu_vendor = strndup(hf->cpu_vendor, sizeof(hf->cpu_vendor));
                f.cpu_model = strndup(hf->cpu_model, sizeof(hf->cpu_model));
                f.cpu_features = normalize_flags_bounded(hf->cpu_features, sizeof(hf->cpu_features));
                f.cpus = hf->cpus;
                f.memory_total = hf->memory_total;
                f.memory_free = hf->memory_free;
                f.hypervisor_name = strndup(hf->hypervisor_name, sizeof(hf->hypervisor_name));
                f.hypervisor_version = strndup(hf->hypervisor_version, sizeof(hf->hypervisor_version));
        } else {
                _cleanup_free_ char *cpuinfo = NULL;
                r = read_file("/proc/cpuinfo", &cpuinfo);
                if (r < 0)
                        return r;
                r = facts_parse_cpuinfo(cpuinfo, &f.cpu_vendor, &f.cpu_model, &f.cpu_features);
                if (r < 0)
                        goto fail;
                r = read_meminfo(&f.memory_total, &f.memory_free);
                if (r < 0)
                        goto fail;
                long n = sysconf(_SC_NPROCESSORS_ONLN);
                f.cpus = n > 0 ? (uint32_t) n : 1;
                /* No hypervisor backend: say so rather than guess. */
                f.hypervisor_name = strdup("none");
                f.hypervisor_version = strdup("");
        }
        f.memory_reserved = config->host_memory_reserve;
        f.protocol_version = FERRY_PROTOCOL_VERSION;
        f.name = strdup(name);
        f.daemon_version = strdup(FERRY_VERSION);
        f.backend_uri = strdup(peer_uri ? peer_uri : "");
        f.migration_address = strdup(config->migration_address);
        f.max_outgoing = config->max_outgoing_migrations;
        f.max_incoming = config->max_incoming_migrations;
        f.max_cluster = config->max_cluster_migrations;
        if (!f.name || !f.daemon_version || !f.hypervisor_name || !f.hypervisor_version || !f.cpu_vendor ||
            !f.cpu_model || !f.cpu_features || !f.backend_uri || !f.migration_address) {
                r = -ENOMEM;
                goto fail;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        f.updated_at = (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
        *ret = f;
        return 0;
fail:
        node_facts_done(&f);
        return r;
}

bool facts_differ_significantly(const NodeFacts *published, const NodeFacts *now) {
        NodeFacts a = *published, b = *now;
        uint64_t threshold = MAX(now->memory_total / 64, UINT64_C(64) << 20);
        uint64_t delta = a.memory_free > b.memory_free ? a.memory_free - b.memory_free : b.memory_free - a.memory_free;

        if (delta > threshold)
                return true;
        a.memory_free = b.memory_free = 0;
        a.updated_at = b.updated_at = 0;
        return !node_facts_equal(&a, &b);
}
