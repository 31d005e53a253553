/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "volume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "macro.h"

_printf_(3, 4)
static int refuse(SimError *e, int r, const char *fmt, ...) {
        va_list ap;

        if (e) {
                e->line = 0;
                va_start(ap, fmt);
                vsnprintf(e->message, sizeof(e->message), fmt, ap);
                va_end(ap);
        }
        return r;
}

typedef enum VolumeHook {
        HOOK_PREPARE,
        HOOK_ACTIVATE,
        HOOK_RELEASE,
        HOOK_HELD,
} VolumeHook;

static const char *const hook_names[] = {
        [HOOK_PREPARE] = "prepare",
        [HOOK_ACTIVATE] = "activate",
        [HOOK_RELEASE] = "release",
        [HOOK_HELD] = "held",
};

static bool hook_fails(const SimVolume *v, VolumeHook h) {
        switch (h) {
        case HOOK_PREPARE: return v->fail_prepare;
        case HOOK_ACTIVATE: return v->fail_activate;
        case HOOK_RELEASE: return v->fail_release;
        case HOOK_HELD: return v->fail_held;
        }
        return false;
}

static uint32_t hook_delay_ms(const SimVolume *v, VolumeHook h, bool after) {
        switch (h) {
        case HOOK_PREPARE: return after ? v->delay_after_prepare_ms : v->delay_prepare_ms;
        case HOOK_ACTIVATE: return after ? v->delay_after_activate_ms : v->delay_activate_ms;
        case HOOK_RELEASE: return after ? v->delay_after_release_ms : v->delay_release_ms;
        case HOOK_HELD: return after ? 0 : v->delay_held_ms;
        }
        return 0;
}

static uint64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

#define DELAY_POLL_MS 20U

/* Slow storage: waits, without the world lock, while the hook's delay
 * knob says so. The knob is read again every DELAY_POLL_MS, so a test that
 * lowers it (or sets it to 0) ends the wait early: that is how it lets a
 * hook it stopped go on. A volume without a file, or with a bad one, has
 * no delay (the hook then reports the error). Real time, not world time. */
static void wait_delay(SimWorld *w, const char *volume, VolumeHook hook, bool after) {
        uint64_t start = now_ms();

        if (!volume || !sim_name_is_valid(volume))
                return;
        for (;;) {
                SimVolume v;
                SimError e = {};
                uint64_t elapsed, delay, left;

                if (sim_world_load_volume(w, volume, &v, &e) < 0)
                        return;
                delay = hook_delay_ms(&v, hook, after);
                elapsed = now_ms() - start;
                if (elapsed >= delay)
                        return;
                left = MIN(delay - elapsed, (uint64_t) DELAY_POLL_MS);
                struct timespec ts = { .tv_sec = 0, .tv_nsec = (long) (left * 1000000) };
                while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                        ;
        }
}

/* Takes the world lock (into *locked, which the caller's cleanup drops)
 * and reads the volume: 1 if it exists, 0 if not (*ret is then a fresh
 * one, nobody holding it, epoch 0), or -errno. Applies the fault knob of
 * `hook` before anything else can happen. */
static int begin(SimWorld *w, SimWorld **locked, const char *node, const char *volume, VolumeHook hook,
                 SimVolume *ret, SimError *e) {
        int r;

        if (!sim_name_is_valid(node))
                return refuse(e, -EINVAL, "\"%s\" is not a valid node name", node);
        if (!volume || !sim_name_is_valid(volume))
                return refuse(e, -EINVAL, "\"%s\" is not a valid sim volume name ([A-Za-z0-9._-], under %d characters)",
                              volume ? volume : "", SIM_NAME_MAX);
        r = sim_world_lock(w);
        if (r < 0)
                return refuse(e, r, "locking the world: %s", strerror(-r));
        *locked = w;
        r = sim_world_load_volume(w, volume, ret, e);
        if (r == -ENOENT) {
                *ret = (SimVolume) {};
                snprintf(ret->name, sizeof(ret->name), "%s", volume);
                return 0;
        }
        if (r < 0)
                return r;
        if (hook_fails(ret, hook))
                return refuse(e, -EIO, "volume %s: %s failed: injected I/O error (fail_%s = yes in volumes/%s.conf)",
                              volume, hook_names[hook], hook_names[hook], volume);
        return 1;
}

static int store(SimWorld *w, const SimVolume *v, SimError *e) {
        int r = sim_world_write_volume(w, v);
        if (r < 0)
                return refuse(e, r, "volume %s: writing volumes/%s.conf: %s", v->name, v->name, strerror(-r));
        return 0;
}

static int refuse_stale(SimError *e, const SimVolume *v, uint64_t epoch) {
        return refuse(e, -ESTALE, "volume %s: epoch %" PRIu64 " is older than %" PRIu64 ": a newer owner exists",
                      v->name, epoch, v->epoch);
}

static int volume_prepare(SimWorld *w, const char *node, const char *volume, uint64_t epoch, SimError *e) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        SimVolume v;
        int r;

        r = begin(w, &locked, node, volume, HOOK_PREPARE, &v, e);
        if (r < 0)
                return r;
        if (epoch < v.epoch)
                return refuse_stale(e, &v, epoch);
        /* The holder is not looked at: during a live migration the source
         * holds the volume while the destination prepares. */
        if (r > 0 && epoch == v.epoch)
                return 0;
        v.epoch = epoch;
        return store(w, &v, e);
}

static int volume_activate(SimWorld *w, const char *node, const char *volume, uint64_t epoch, SimError *e) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        SimVolume v;
        int r;

        r = begin(w, &locked, node, volume, HOOK_ACTIVATE, &v, e);
        if (r < 0)
                return r;
        if (epoch < v.epoch)
                return refuse_stale(e, &v, epoch);
        if (v.holder[0] && !streq(v.holder, node) && v.holder_epoch >= epoch)
                return refuse(e, -EBUSY, "volume %s: held by %s at epoch %" PRIu64, volume, v.holder,
                              v.holder_epoch);
        if (r > 0 && streq(v.holder, node) && v.holder_epoch == epoch && v.epoch == epoch)
                return 0;
        /* Another holder with an older grant is preempted: it was fenced or
         * cut off, and the newer owner's grant wins. */
        snprintf(v.holder, sizeof(v.holder), "%s", node);
        v.holder_epoch = epoch;
        v.epoch = epoch;
        return store(w, &v, e);
}

static int volume_release(SimWorld *w, const char *node, const char *volume, uint64_t epoch, SimError *e) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        SimVolume v;
        int r;

        r = begin(w, &locked, node, volume, HOOK_RELEASE, &v, e);
        if (r < 0)
                return r;
        if (r == 0)
                return 0;       /* never activated anywhere: nothing to let go */
        if (streq(v.holder, node)) {
                if (epoch < v.holder_epoch)
                        return refuse(e, -ESTALE,
                                      "volume %s: release at epoch %" PRIu64 " is older than this node's grant "
                                      "(epoch %" PRIu64 "): refusing to undo a newer grant",
                                      volume, epoch, v.holder_epoch);
                v.holder[0] = 0;
                v.holder_epoch = 0;
        } else if (epoch <= v.epoch)
                return 0;       /* not held here, nothing to record */
        v.epoch = MAX(v.epoch, epoch);
        return store(w, &v, e);
}

static int volume_held(SimWorld *w, const char *node, const char *volume, SimError *e) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        SimVolume v;
        int r;

        r = begin(w, &locked, node, volume, HOOK_HELD, &v, e);
        if (r < 0)
                return r;
        return streq(v.holder, node) ? 1 : 0;
}

/* The hooks proper run under the world lock; the delays around them do
 * not hold it. */
int sim_volume_prepare(SimWorld *w, const char *node, const char *volume, uint64_t epoch, SimError *e) {
        wait_delay(w, volume, HOOK_PREPARE, false);
        int r = volume_prepare(w, node, volume, epoch, e);
        wait_delay(w, volume, HOOK_PREPARE, true);
        return r;
}

int sim_volume_activate(SimWorld *w, const char *node, const char *volume, uint64_t epoch, SimError *e) {
        wait_delay(w, volume, HOOK_ACTIVATE, false);
        int r = volume_activate(w, node, volume, epoch, e);
        wait_delay(w, volume, HOOK_ACTIVATE, true);
        return r;
}

int sim_volume_release(SimWorld *w, const char *node, const char *volume, uint64_t epoch, SimError *e) {
        wait_delay(w, volume, HOOK_RELEASE, false);
        int r = volume_release(w, node, volume, epoch, e);
        wait_delay(w, volume, HOOK_RELEASE, true);
        return r;
}

int sim_volume_held(SimWorld *w, const char *node, const char *volume, SimError *e) {
        wait_delay(w, volume, HOOK_HELD, false);
        return volume_held(w, node, volume, e);
}

int sim_volume_fence(SimWorld *w, const char *node, char ***ret_volumes, size_t *ret_n, SimError *e) {
        _cleanup_(sim_world_unlockp) SimWorld *locked = NULL;
        _cleanup_free_ SimVolume *v = NULL;
        char **names = NULL;
        size_t n = 0, k = 0;
        int r;

        if (!sim_name_is_valid(node))
                return refuse(e, -EINVAL, "\"%s\" is not a valid node name", node);
        r = sim_world_lock(w);
        if (r < 0)
                return refuse(e, r, "locking the world: %s", strerror(-r));
        locked = w;
        r = sim_world_load_volumes(w, &v, &n, e);
        if (r < 0)
                return r;
        if (n > 0) {
                names = calloc(n, sizeof(char *));
                if (!names)
                        return -ENOMEM;
        }
        for (size_t i = 0; i < n; i++) {
                if (!streq(v[i].holder, node))
                        continue;
                v[i].holder[0] = 0;
                v[i].holder_epoch = 0;
                r = store(w, &v[i], e);
                if (r >= 0) {
                        names[k] = strdup(v[i].name);
                        if (!names[k])
                                r = -ENOMEM;
                }
                if (r < 0) {
                        sim_strv_free(names, k);
                        return r;
                }
                k++;
        }
        if (k == 0) {           /* nothing fenced: no array for the caller to free */
                free(names);
                names = NULL;
        }
        *ret_volumes = names;
        *ret_n = k;
        return 0;
}
