/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* libvirt XML documents → ferry structs. Pure: text in, fields out, no
 * libvirt calls, no I/O, no logging; 0 or a negative errno, with a message
 * in `error` (may be NULL) saying what is wrong with the document. The unit
 * tests run these on golden files in test-data/. */

#include "ferry-backend.h"

/* From virConnectGetCapabilities(): fills cpu_vendor (as the CPUID vendor
 * string, "AuthenticAMD", like /proc/cpuinfo, not libvirt's short "AMD"),
 * cpu_model and cpu_features (sorted, de-duplicated, space-separated).
 * Fields the document lacks are left empty (libvirt's test driver reports
 * neither vendor nor model). Touches no other field. */
int capabilities_xml_parse(const char *xml, FerryHostFacts *facts, FerryError *error);

/* From virConnectGetDomainCapabilities(): the CPU this hypervisor offers
 * as host-model (its own view of the host, after KVM or TCG had their say),
 * written as a guest CPU definition (<cpu mode='custom' match='exact'> with
 * model, vendor and features) that virConnectCompareHypervisorCPU() on
 * another host can judge. *ret = NULL if host-model is not supported. */
int domcaps_xml_host_model_cpu(const char *xml, char **ret, FerryError *error);

/* From virDomainGetXMLDesc(): name, uuid, vcpus (current), memory (maximum,
 * what the destination must be able to hold), disks and n_passthrough.
 * Leaves state, cpu_use_permille and dirty_rate alone (they come from the
 * running domain, not its definition).
 *
 * A disk is shared if it is <shareable/>, a network disk (rbd, iscsi, ...)
 * that does not point at this host, has no source (an empty CD-ROM: nothing
 * to carry), or lives on one of shared_paths (NULL-terminated, may be NULL):
 * equal to an entry or below it. A VM with more disks than FERRY_VM_DISKS_MAX
 * gets the first FERRY_VM_DISKS_MAX - 1 and a last entry that stands for
 * all the rest: target "+N" (N more), path "(N more disks)", shared only if
 * all of them are, so that nothing unshared is hidden.
 *
 * Pass-through: <hostdev> elements and <interface type='hostdev'> (SR-IOV
 * VFs); QEMU cannot migrate either. */
int domain_xml_parse(const char *xml, char *const *shared_paths, FerryVm *vm, FerryError *error);

/* What virConnectCompareHypervisorCPU() needs to know about a domain. */
typedef struct DomainCpu {
        char *virttype;         /* <domain type=...>: "kvm", "qemu" */
        char *arch;             /* <os><type arch=...>, NULL if absent */
        char *machine;          /* <os><type machine=...>, NULL if absent */
        char *mode;             /* <cpu mode=...>, "custom" if absent, NULL if no <cpu> */
        char *cpu_xml;          /* the <cpu> element serialized, NULL if none */
} DomainCpu;

int domain_xml_cpu(const char *xml, DomainCpu *ret, FerryError *error);
void domain_cpu_done(DomainCpu *c);

/* A libvirt memory size: value and unit as in <memory unit='KiB'>; unit NULL
 * means KiB (libvirt's default). */
int parse_libvirt_size(const char *value, const char *unit, uint64_t *ret);

/* Splits "/a:/b" into a NULL-terminated array of paths without trailing
 * slashes ("/" stays "/"). Every entry must be absolute. */
int shared_paths_parse(const char *s, char ***ret);
void strv_free(char **l);
