/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "domain-xml.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

#include "macro.h"
#include "strutil.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(xmlDocPtr, xmlFreeDoc);
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlXPathContextPtr, xmlXPathFreeContext);
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlXPathObjectPtr, xmlXPathFreeObject);
DEFINE_TRIVIAL_CLEANUP_FUNC(xmlBufferPtr, xmlBufferFree);
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);

_printf_(3, 4)
static int fail(FerryError *error, int r, const char *fmt, ...) {
        if (error) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(error->message, sizeof(error->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

/* Copies s into a fixed-size field; a value that does not fit is an error,
 * not a silent truncation: a cut name or path would name something else. */
static int copy_field(char *dst, size_t size, const char *s) {
        size_t l = strlen(s);
        if (l >= size)
                return -ENAMETOOLONG;
        memcpy(dst, s, l + 1);
        return 0;
}

static int parse_document(const char *xml, const char *what, const char *root, xmlDocPtr *ret_doc,
                          xmlXPathContextPtr *ret_ctx, FerryError *error) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        xmlXPathContextPtr ctx;

        if (!xml)
                return fail(error, -EINVAL, "no %s XML", what);
        /* NONET: never fetch anything; NOERROR/NOWARNING: libxml2 would
         * print to stderr, which is the daemon's, not ours. */
        size_t len = strlen(xml);
        if (len > INT32_MAX)
                return fail(error, -E2BIG, "%s XML too large", what);
        doc = xmlReadMemory(xml, (int) len, what, NULL, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        if (!doc) {
                const xmlError *e = xmlGetLastError();
                return fail(error, -EINVAL, "malformed %s XML: %s", what, e && e->message ? e->message : "parse error");
        }
        xmlNodePtr top = xmlDocGetRootElement(doc);
        if (!top || !xmlStrEqual(top->name, BAD_CAST root))
                return fail(error, -EINVAL, "%s XML has no <%s> root element", what, root);
        ctx = xmlXPathNewContext(doc);
        if (!ctx)
                return -ENOMEM;
        *ret_doc = TAKE_PTR(doc);
        *ret_ctx = ctx;
        return 0;
}

/* The string value of an XPath expression relative to `node` (NULL = the
 * context's document); NULL if it selects nothing or an empty string. */
static char *xpath_string(xmlXPathContextPtr ctx, xmlNodePtr node, const char *expr) {
        _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr o = NULL;
        _cleanup_free_ char *wrapped = NULL;

        if (asprintf(&wrapped, "string(%s)", expr) < 0)
                return NULL;
        ctx->node = node ? node : xmlDocGetRootElement(ctx->doc);
        o = xmlXPathEvalExpression(BAD_CAST wrapped, ctx);
        if (!o || o->type != XPATH_STRING || !o->stringval || !o->stringval[0])
                return NULL;
        return strdup((const char *) o->stringval);
}

static int xpath_count(xmlXPathContextPtr ctx, const char *expr) {
        _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr o = NULL;

        ctx->node = xmlDocGetRootElement(ctx->doc);
        o = xmlXPathEvalExpression(BAD_CAST expr, ctx);
        if (!o || o->type != XPATH_NODESET)
                return -EINVAL;
        return o->nodesetval ? o->nodesetval->nodeNr : 0;
}

static xmlXPathObjectPtr xpath_nodes(xmlXPathContextPtr ctx, const char *expr) {
        ctx->node = xmlDocGetRootElement(ctx->doc);
        xmlXPathObjectPtr o = xmlXPathEvalExpression(BAD_CAST expr, ctx);
        if (o && o->type != XPATH_NODESET) {
                xmlXPathFreeObject(o);
                return NULL;
        }
        return o;
}

static int node_serialize(xmlDocPtr doc, xmlNodePtr node, char **ret) {
        _cleanup_(xmlBufferFreep) xmlBufferPtr buf = xmlBufferCreate();

        if (!buf)
                return -ENOMEM;
        if (xmlNodeDump(buf, doc, node, 0, 0) < 0)
                return -ENOMEM;
        char *s = strdup((const char *) xmlBufferContent(buf));
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

void strv_free(char **l) {
        if (!l)
                return;
        for (char **p = l; *p; p++)
                free(*p);
        free(l);
}

int shared_paths_parse(const char *s, char ***ret) {
        _cleanup_(strv_freep) char **l = NULL;
        size_t n = 0;

        l = calloc(1, sizeof(char *));
        if (!l)
                return -ENOMEM;
        for (const char *p = s; p && *p;) {
                const char *colon = strchrnul(p, ':');
                size_t len = (size_t) (colon - p);
                if (len > 0) {
                        if (p[0] != '/')
                                return -EINVAL;
                        /* "/srv/vm/" and "/srv/vm" are the same place. */
                        while (len > 1 && p[len - 1] == '/')
                                len--;
                        char **nl = realloc(l, (n + 2) * sizeof(char *));
                        if (!nl)
                                return -ENOMEM;
                        l = nl;
                        l[n] = strndup(p, len);
                        if (!l[n])
                                return -ENOMEM;
                        l[++n] = NULL;
                }
                p = *colon ? colon + 1 : colon;
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static bool path_is_below(const char *path, const char *dir) {
        if (streq(dir, "/"))
                return path[0] == '/';
        size_t l = strlen(dir);
        return strncmp(path, dir, l) == 0 && (path[l] == 0 || path[l] == '/');
}

static bool path_is_shared(const char *path, char *const *shared_paths) {
        if (!path || path[0] != '/' || !shared_paths)
                return false;
        /* A path with ".." could climb out of a shared directory while
         * still starting with its name. */
        if (strstr(path, "/../") || (strlen(path) >= 3 && streq(path + strlen(path) - 3, "/..")))
                return false;
        for (char *const *p = shared_paths; *p; p++)
                if (path_is_below(path, *p))
                        return true;
        return false;
}

int parse_libvirt_size(const char *value, const char *unit, uint64_t *ret) {
        static const struct {
                const char *unit;
                uint64_t factor;
        } units[] = {
                /* libvirt's table (virScaleInteger): one letter and the
                 * binary names are powers of 1024, "KB" and friends of 1000. */
                { "b", 1 },
                { "bytes", 1 },
                { "k", UINT64_C(1) << 10 },
                { "KiB", UINT64_C(1) << 10 },
                { "KB", UINT64_C(1000) },
                { "M", UINT64_C(1) << 20 },
                { "MiB", UINT64_C(1) << 20 },
                { "MB", UINT64_C(1000000) },
                { "G", UINT64_C(1) << 30 },
                { "GiB", UINT64_C(1) << 30 },
                { "GB", UINT64_C(1000000000) },
                { "T", UINT64_C(1) << 40 },
                { "TiB", UINT64_C(1) << 40 },
                { "TB", UINT64_C(1000000000000) },
                { "P", UINT64_C(1) << 50 },
                { "PiB", UINT64_C(1) << 50 },
                { "PB", UINT64_C(1000000000000000) },
                { "E", UINT64_C(1) << 60 },
                { "EiB", UINT64_C(1) << 60 },
                { "EB", UINT64_C(1000000000000000000) },
        };
        uint64_t v, factor = 0;
        int r;

        r = parse_u64(value, &v);
        if (r < 0)
                return r;
        if (!unit)
                unit = "KiB";
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                /* libvirt accepts the one-letter units in either case. */
                if (strlen(units[i].unit) == 1 ? strcasecmp(units[i].unit, unit) == 0 : streq(units[i].unit, unit)) {
                        factor = units[i].factor;
                        break;
                }
        if (factor == 0)
                return -EINVAL;
        if (v > UINT64_MAX / factor)
                return -ERANGE;
        *ret = v * factor;
        return 0;
}

static const char *vendor_cpuid_string(const char *libvirt_name) {
        /* libvirt's cpu_map/x86_vendors.xml, backwards: ferry compares
         * vendors across backends, and /proc/cpuinfo says "AuthenticAMD". */
        static const struct {
                const char *name, *cpuid;
        } vendors[] = {
                { "Intel", "GenuineIntel" },
                { "AMD", "AuthenticAMD" },
                { "Hygon", "HygonGenuine" },
        };
        for (size_t i = 0; i < ELEMENTSOF(vendors); i++)
                if (streq(vendors[i].name, libvirt_name))
                        return vendors[i].cpuid;
        return libvirt_name;
}

static int compare_str(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

int capabilities_xml_parse(const char *xml, FerryHostFacts *facts, FerryError *error) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        _cleanup_(xmlXPathFreeContextp) xmlXPathContextPtr ctx = NULL;
        _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr features = NULL;
        _cleanup_free_ char *vendor = NULL, *model = NULL;
        _cleanup_free_ const char **names = NULL;
        size_t n = 0, len = 0;
        int r;

        r = parse_document(xml, "capabilities", "capabilities", &doc, &ctx, error);
        if (r < 0)
                return r;

        vendor = xpath_string(ctx, NULL, "/capabilities/host/cpu/vendor");
        model = xpath_string(ctx, NULL, "/capabilities/host/cpu/model");
        if (copy_field(facts->cpu_vendor, sizeof(facts->cpu_vendor), vendor ? vendor_cpuid_string(vendor) : "") < 0)
                return fail(error, -EINVAL, "capabilities: CPU vendor name too long");
        if (copy_field(facts->cpu_model, sizeof(facts->cpu_model), model ?: "") < 0)
                return fail(error, -EINVAL, "capabilities: CPU model name too long");

        features = xpath_nodes(ctx, "/capabilities/host/cpu/feature/@name");
        if (features && features->nodesetval && features->nodesetval->nodeNr > 0) {
                xmlNodeSetPtr set = features->nodesetval;
                names = calloc((size_t) set->nodeNr, sizeof(char *));
                if (!names)
                        return -ENOMEM;
                for (int i = 0; i < set->nodeNr; i++) {
                        xmlNodePtr a = set->nodeTab[i];
                        if (a->type == XML_ATTRIBUTE_NODE && a->children && a->children->content &&
                            a->children->content[0])
                                names[n++] = (const char *) a->children->content;
                }
                qsort(names, n, sizeof(char *), compare_str);
        }
        facts->cpu_features[0] = 0;
        for (size_t i = 0; i < n; i++) {
                if (i > 0 && streq(names[i], names[i - 1]))
                        continue;
                size_t wl = strlen(names[i]);
                /* 4 KiB holds the ~100 flags of today's CPUs many times
                 * over; should a host ever have more, the list is cut at a
                 * word: the facts are for people and the planner's first
                 * guess, cpu_compatible() has the final word. */
                if (len + (len > 0) + wl + 1 > sizeof(facts->cpu_features))
                        break;
                if (len > 0)
                        facts->cpu_features[len++] = ' ';
                memcpy(facts->cpu_features + len, names[i], wl + 1);
                len += wl;
        }
        return 0;
}

int domcaps_xml_host_model_cpu(const char *xml, char **ret, FerryError *error) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        _cleanup_(xmlXPathFreeContextp) xmlXPathContextPtr ctx = NULL;
        _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr mode = NULL;
        _cleanup_free_ char *model = NULL;
        xmlNodePtr cpu;
        int r;

        r = parse_document(xml, "domain capabilities", "domainCapabilities", &doc, &ctx, error);
        if (r < 0)
                return r;
        mode = xpath_nodes(ctx, "/domainCapabilities/cpu/mode[@name='host-model'][@supported='yes']");
        if (mode && mode->nodesetval && mode->nodesetval->nodeNr > 0)
                model = xpath_string(ctx, mode->nodesetval->nodeTab[0], "model");
        if (!model) {
                *ret = NULL;
                return 0;
        }
        /* The mode element's children are already a custom CPU's: model,
         * vendor, features with policies. Give them a <cpu> to live in. */
        cpu = xmlNewDocNode(doc, NULL, BAD_CAST "cpu", NULL);
        if (!cpu)
                return -ENOMEM;
        if (!xmlNewProp(cpu, BAD_CAST "mode", BAD_CAST "custom") ||
            !xmlNewProp(cpu, BAD_CAST "match", BAD_CAST "exact")) {
                xmlFreeNode(cpu);
                return -ENOMEM;
        }
        for (xmlNodePtr child = mode->nodesetval->nodeTab[0]->children; child; child = child->next) {
                if (child->type != XML_ELEMENT_NODE)
                        continue;
                xmlNodePtr copy = xmlDocCopyNode(child, doc, 1);
                if (!copy || !xmlAddChild(cpu, copy)) {
                        xmlFreeNode(copy);
                        xmlFreeNode(cpu);
                        return -ENOMEM;
                }
        }
        r = node_serialize(doc, cpu, ret);
        xmlFreeNode(cpu);
        return r;
}

/* Where a disk's data is, as one string, and whether every node reaches
 * it without copying. */
static int disk_source(xmlXPathContextPtr ctx, xmlNodePtr disk, char *const *shared_paths, char **ret_path,
                       bool *ret_shared) {
        _cleanup_free_ char *type = xpath_string(ctx, disk, "@type");
        _cleanup_free_ char *path = NULL;
        bool shared = false;

        if (!type || streq(type, "file"))
                path = xpath_string(ctx, disk, "source/@file");
        else if (streq(type, "block"))
                path = xpath_string(ctx, disk, "source/@dev");
        else if (streq(type, "dir"))
                path = xpath_string(ctx, disk, "source/@dir");
        else if (streq(type, "volume")) {
                _cleanup_free_ char *pool = xpath_string(ctx, disk, "source/@pool");
                _cleanup_free_ char *vol = xpath_string(ctx, disk, "source/@volume");
                if (pool && vol && asprintf(&path, "%s/%s", pool, vol) < 0)
                        return -ENOMEM;
        } else if (streq(type, "network")) {
                _cleanup_free_ char *protocol = xpath_string(ctx, disk, "source/@protocol");
                _cleanup_free_ char *name = xpath_string(ctx, disk, "source/@name");
                _cleanup_free_ char *host = xpath_string(ctx, disk, "source/host[1]/@name");
                _cleanup_free_ char *transport = xpath_string(ctx, disk, "source/host[1]/@transport");
                /* "rbd://mon1/pool/image", "iscsi://portal/iqn.../1" */
                if (asprintf(&path, "%s:%s%s%s%s", protocol ?: "network", host ? "//" : "", host ?: "",
                             host ? "/" : "", name ?: "") < 0)
                        return -ENOMEM;
                /* Network storage is reachable from every node, unless it
                 * is served by this very host. */
                shared = !(transport && streq(transport, "unix")) &&
                         !(host && (streq(host, "localhost") || strncmp(host, "127.", 4) == 0 || streq(host, "::1")));
        } else {
                /* nvme, vhostuser, ...: a device of this host. */
                path = xpath_string(ctx, disk, "source/@file");
                if (!path)
                        path = xpath_string(ctx, disk, "source/@path");
        }

        if (!streq(type ?: "file", "network")) {
                _cleanup_free_ char *any_source = xpath_string(ctx, disk, "name(source)");
                if (!path && !any_source)
                        /* An empty CD-ROM or floppy drive: nothing to carry. */
                        shared = true;
                else
                        shared = path_is_shared(path, shared_paths);
        }
        _cleanup_free_ char *shareable = xpath_string(ctx, disk, "name(shareable)");
        if (shareable)
                shared = true;

        *ret_path = TAKE_PTR(path);
        *ret_shared = shared;
        return 0;
}

int domain_xml_parse(const char *xml, char *const *shared_paths, FerryVm *vm, FerryError *error) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        _cleanup_(xmlXPathFreeContextp) xmlXPathContextPtr ctx = NULL;
        _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr disks = NULL;
        _cleanup_free_ char *name = NULL, *uuid = NULL, *vcpu = NULL, *vcpu_current = NULL, *memory = NULL,
                            *memory_unit = NULL;
        uint32_t vcpus;
        uint64_t bytes;
        int r, hostdevs, vf_interfaces;

        r = parse_document(xml, "domain", "domain", &doc, &ctx, error);
        if (r < 0)
                return r;

        name = xpath_string(ctx, NULL, "/domain/name");
        if (!name)
                return fail(error, -EINVAL, "domain XML has no <name>");
        if (copy_field(vm->name, sizeof(vm->name), name) < 0)
                return fail(error, -ENAMETOOLONG, "domain name \"%.64s...\" is longer than ferry's limit of %d bytes",
                            name, FERRY_NAME_MAX - 1);

        uuid = xpath_string(ctx, NULL, "/domain/uuid");
        if (!uuid || strlen(uuid) != 36)
                return fail(error, -EINVAL, "domain \"%s\": missing or malformed <uuid>", name);
        memcpy(vm->uuid, uuid, 37);

        vcpu = xpath_string(ctx, NULL, "/domain/vcpu");
        vcpu_current = xpath_string(ctx, NULL, "/domain/vcpu/@current");
        if (!vcpu || parse_u32(vcpu_current ?: vcpu, &vcpus) < 0)
                return fail(error, -EINVAL, "domain \"%s\": missing or malformed <vcpu>", name);
        vm->vcpus = vcpus;

        memory = xpath_string(ctx, NULL, "/domain/memory");
        memory_unit = xpath_string(ctx, NULL, "/domain/memory/@unit");
        r = memory ? parse_libvirt_size(memory, memory_unit, &bytes) : -EINVAL;
        if (r < 0)
                return fail(error, -EINVAL, "domain \"%s\": missing or malformed <memory>", name);
        vm->memory = bytes;

        vm->n_disks = 0;
        disks = xpath_nodes(ctx, "/domain/devices/disk");
        int n_disks = disks && disks->nodesetval ? disks->nodesetval->nodeNr : 0;
        uint32_t rest = 0;
        bool rest_shared = true;
        for (int i = 0; i < n_disks; i++) {
                xmlNodePtr node = disks->nodesetval->nodeTab[i];
                _cleanup_free_ char *target = xpath_string(ctx, node, "target/@dev");
                _cleanup_free_ char *path = NULL;
                bool shared;

                r = disk_source(ctx, node, shared_paths, &path, &shared);
                if (r < 0)
                        return r;
                if (n_disks > FERRY_VM_DISKS_MAX && i >= FERRY_VM_DISKS_MAX - 1) {
                        rest++;
                        rest_shared = rest_shared && shared;
                        continue;
                }
                FerryDisk *d = &vm->disks[vm->n_disks++];
                *d = (FerryDisk) { .shared = shared };
                if (copy_field(d->target, sizeof(d->target), target ?: "") < 0)
                        return fail(error, -EINVAL, "domain \"%s\": disk target name too long", name);
                if (copy_field(d->path, sizeof(d->path), path ?: "") < 0)
                        return fail(error, -ENAMETOOLONG, "domain \"%s\": path of disk %s is longer than %d bytes",
                                    name, target ?: "?", FERRY_TEXT_MAX - 1);
        }
        if (rest > 0) {
                FerryDisk *d = &vm->disks[vm->n_disks++];
                *d = (FerryDisk) { .shared = rest_shared };
                snprintf(d->target, sizeof(d->target), "+%u", rest);
                snprintf(d->path, sizeof(d->path), "(%u more disks)", rest);
        }

        hostdevs = xpath_count(ctx, "/domain/devices/hostdev");
        vf_interfaces = xpath_count(ctx, "/domain/devices/interface[@type='hostdev']");
        if (hostdevs < 0 || vf_interfaces < 0)
                return -EINVAL;
        vm->n_passthrough = (uint32_t) (hostdevs + vf_interfaces);
        return 0;
}

void domain_cpu_done(DomainCpu *c) {
        free(c->virttype);
        free(c->arch);
        free(c->machine);
        free(c->mode);
        free(c->cpu_xml);
        *c = (DomainCpu) {};
}

int domain_xml_cpu(const char *xml, DomainCpu *ret, FerryError *error) {
        _cleanup_(xmlFreeDocp) xmlDocPtr doc = NULL;
        _cleanup_(xmlXPathFreeContextp) xmlXPathContextPtr ctx = NULL;
        _cleanup_(xmlXPathFreeObjectp) xmlXPathObjectPtr cpu = NULL;
        _cleanup_(domain_cpu_done) DomainCpu c = {};
        int r;

        r = parse_document(xml, "domain", "domain", &doc, &ctx, error);
        if (r < 0)
                return r;
        c.virttype = xpath_string(ctx, NULL, "/domain/@type");
        if (!c.virttype)
                return fail(error, -EINVAL, "domain XML has no type attribute");
        c.arch = xpath_string(ctx, NULL, "/domain/os/type/@arch");
        c.machine = xpath_string(ctx, NULL, "/domain/os/type/@machine");

        cpu = xpath_nodes(ctx, "/domain/cpu");
        if (cpu && cpu->nodesetval && cpu->nodesetval->nodeNr > 0) {
                xmlNodePtr node = cpu->nodesetval->nodeTab[0];
                c.mode = xpath_string(ctx, node, "@mode");
                if (!c.mode && !(c.mode = strdup("custom")))
                        return -ENOMEM;
                r = node_serialize(doc, node, &c.cpu_xml);
                if (r < 0)
                        return r;
        }
        *ret = c;
        c = (DomainCpu) {};
        return 0;
}
