/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Small helpers shared by the backend's files: error reporting in
 * FerryError with libvirt's message and an errno derived from libvirt's
 * error code, and the clock. */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>

#include "ferry-backend.h"
#include "macro.h"

#define USEC_PER_SEC UINT64_C(1000000)

DEFINE_TRIVIAL_CLEANUP_FUNC(virConnectPtr, virConnectClose);
DEFINE_TRIVIAL_CLEANUP_FUNC(virDomainPtr, virDomainFree);

/* Formats the message into error (may be NULL) and returns r. */
_printf_(3, 4)
int fail(FerryError *error, int r, const char *fmt, ...);

/* "<what>: <libvirt's last error message>"; returns the errno libvirt's
 * error code maps to (errno_from_virt()), or fallback. */
_printf_(3, 4)
int fail_virt(FerryError *error, int fallback, const char *fmt, ...);

/* The calling thread's last libvirt error → negative errno: -ENOENT for no
 * such domain, -EOPNOTSUPP for unsupported, -ENOTSUP for an incompatible
 * CPU, -ECANCELED for an aborted job, ... fallback for the rest. */
int errno_from_virt(const virError *e, int fallback);

bool last_error_is(int code);

uint64_t now_usec(clockid_t clock);

/* libvirt's default event loop, run by a thread of ours, registered once
 * per process and left running (a backend is never unloaded). It must be
 * in place before the first connection is opened: libvirt hooks a
 * connection's socket into the loop when it opens. It gives us keepalives
 * (a dead peer is noticed) and domain events (the final statistics of a
 * migration). 0, or a negative errno if there is none (then neither). */
int virt_event_loop_start(void);

/* Keepalive on a connection, if the event loop runs: a libvirtd that stops
 * answering is declared dead after about 5 s x (3 + 1). */
void virt_keepalive(virConnectPtr conn);
