/* SPDX-License-Identifier: GPL-2.0-or-later */

/* volumes/NAME.conf (parse, format, store) and volume.c below the plugin:
 * every path leaves the world lock free, refusals change nothing on disk.
 * The hooks' semantics through the module are test-sim-backend's. */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sim-test.h"
#include "test-util.h"
#include "volume.h"
#include "world.h"

static void test_parse(void) {
        SimVolume v;
        SimError e = {};

        CHECK_EQ_INT(sim_parse_volume("# v\nholder = node2\nholder_epoch = 5\nepoch = 7\n", "v.conf", &v, &e), 0);
        CHECK_STREQ(v.holder, "node2");
        CHECK_EQ_INT(v.holder_epoch, 5);
        CHECK_EQ_INT(v.epoch, 7);
        CHECK(!v.fail_prepare && !v.fail_activate && !v.fail_release && !v.fail_held);

        /* Nobody: an empty or absent holder; everything defaults to 0. */
        CHECK_EQ_INT(sim_parse_volume("holder =\nepoch = 3\n", "v.conf", &v, &e), 0);
        CHECK_STREQ(v.holder, "");
        CHECK_EQ_INT(v.epoch, 3);
        CHECK_EQ_INT(sim_parse_volume("", "v.conf", &v, &e), 0);
        CHECK_STREQ(v.holder, "");
        CHECK_EQ_INT(v.epoch, 0);
        CHECK_EQ_INT(sim_parse_volume("fail_activate = yes\nfail_release = on\nfail_prepare = no\nfail_held = 1\n",
                                      "v.conf", &v, &e),
                     0);
        CHECK(!v.fail_prepare && v.fail_activate && v.fail_release && v.fail_held);
        CHECK(v.delay_prepare_ms == 0 && v.delay_activate_ms == 0 && v.delay_release_ms == 0 &&
              v.delay_held_ms == 0 && v.delay_after_prepare_ms == 0 && v.delay_after_activate_ms == 0 &&
              v.delay_after_release_ms == 0);
        CHECK_EQ_INT(sim_parse_volume("delay_prepare_ms = 1\ndelay_activate_ms = 2\ndelay_release_ms = 3\n"
                                      "delay_held_ms = 4\ndelay_after_prepare_ms = 5\ndelay_after_activate_ms = 6\n"
                                      "delay_after_release_ms = 3600000\n",
                                      "v.conf", &v, &e),
                     0);
        CHECK(v.delay_prepare_ms == 1 && v.delay_activate_ms == 2 && v.delay_release_ms == 3 && v.delay_held_ms == 4 &&
              v.delay_after_prepare_ms == 5 && v.delay_after_activate_ms == 6 &&
              v.delay_after_release_ms == SIM_VOLUME_DELAY_MAX_MS);

        static const struct {
                const char *text;
                unsigned line;
                const char *contains;
        } bad[] = {
                { "holder = ../node1\n", 1, "a node name" },
                { "epoch = 3\nholder_epoch = -1\n", 2, "holder_epoch" },
                { "epoch = 3\nepoch = 4\n", 2, "given twice" },
                { "owner = node1\n", 1, "unknown key \"owner\"" },
                { "fail_activate = sometimes\n", 1, "yes or no" },
                { "holder = node1\nholder_epoch = 4\nepoch = 3\n", 0, "holder_epoch 4 is newer than epoch 3" },
                { "holder_epoch = 2\nepoch = 3\n", 0, "holder_epoch 2 without a holder" },
                { "delay_activate_ms = soon\n", 1, "milliseconds, 0 to 3600000" },
                { "epoch = 1\ndelay_release_ms = -5\n", 2, "delay_release_ms" },
                { "delay_after_release_ms = 3600001\n", 1, "milliseconds, 0 to 3600000" },
                { "delay_after_held_ms = 5\n", 1, "unknown key \"delay_after_held_ms\"" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char prefix[32];
                int r;

                e = (SimError) {};
                r = sim_parse_volume(bad[i].text, "f.conf", &v, &e);
                if (bad[i].line > 0)
                        snprintf(prefix, sizeof(prefix), "f.conf:%u: ", bad[i].line);
                else
                        snprintf(prefix, sizeof(prefix), "f.conf: ");
                bool ok = r == -EINVAL && e.line == bad[i].line && strncmp(e.message, prefix, strlen(prefix)) == 0 &&
                          strstr(e.message, bad[i].contains);
                if (!ok)
                        fprintf(stderr, "case %zu: r=%d line=%u \"%s\"\n", i, r, e.line, e.message);
                CHECK(ok);
        }
}

static void test_roundtrip(void) {
        static const SimVolume cases[] = {
                { .holder = "node1", .holder_epoch = 5, .epoch = 9 },
                { .epoch = UINT64_MAX },
                { .holder = "n-2.x", .holder_epoch = 0, .epoch = 0, .fail_prepare = true, .fail_held = true },
                { .fail_activate = true, .fail_release = true },
                { .holder = "node3", .holder_epoch = 4, .epoch = 4, .delay_prepare_ms = 1, .delay_activate_ms = 20,
                  .delay_release_ms = 300, .delay_held_ms = 4000, .delay_after_prepare_ms = 50000,
                  .delay_after_activate_ms = 600000, .delay_after_release_ms = SIM_VOLUME_DELAY_MAX_MS },
        };

        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                _cleanup_free_ char *text = NULL;
                SimVolume v;
                SimError e = {};

                CHECK_EQ_INT(sim_format_volume(&cases[i], &text), 0);
                CHECK_EQ_INT(sim_parse_volume(text, "v.conf", &v, &e), 0);
                CHECK_STREQ(v.holder, cases[i].holder);
                CHECK(v.holder_epoch == cases[i].holder_epoch && v.epoch == cases[i].epoch);
                CHECK(v.fail_prepare == cases[i].fail_prepare && v.fail_activate == cases[i].fail_activate &&
                      v.fail_release == cases[i].fail_release && v.fail_held == cases[i].fail_held);
                CHECK(v.delay_prepare_ms == cases[i].delay_prepare_ms &&
                      v.delay_activate_ms == cases[i].delay_activate_ms &&
                      v.delay_release_ms == cases[i].delay_release_ms && v.delay_held_ms == cases[i].delay_held_ms &&
                      v.delay_after_prepare_ms == cases[i].delay_after_prepare_ms &&
                      v.delay_after_activate_ms == cases[i].delay_after_activate_ms &&
                      v.delay_after_release_ms == cases[i].delay_after_release_ms);
                /* Knobs are written only when set. */
                CHECK(!strstr(text, "= no\n"));
                CHECK(!strstr(text, "_ms = 0\n"));
        }
}

static void read_file(const char *dir, const char *rel, char *buf, size_t len) {
        char path[512];
        FILE *f;
        size_t n;

        snprintf(path, sizeof(path), "%s/%s", dir, rel);
        f = fopen(path, "re");
        CHECK(f);
        n = fread(buf, 1, len - 1, f);
        buf[n] = 0;
        fclose(f);
}

static void test_store(void) {
        char dir[256], before[1024], after[1024];
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        _cleanup_free_ SimVolume *all = NULL;
        SimParams p;
        SimError e = {};
        SimVolume v = { .name = "vol-b", .holder = "node1", .holder_epoch = 2, .epoch = 3 };
        char **names = NULL;
        size_t n = 0;

        sim_test_tempdir("world", dir, sizeof(dir));
        sim_params_default(&p);
        CHECK_EQ_INT(sim_world_create(dir, &p, &w, &e), 0);

        /* No volumes/ yet: none. */
        CHECK_EQ_INT(sim_world_list_volumes(w, &names, &n), 0);
        CHECK_EQ_INT(n, 0);
        CHECK_EQ_INT(sim_world_load_volumes(w, &all, &n, &e), 0);
        CHECK_EQ_INT(n, 0);
        CHECK_EQ_INT(sim_world_load_volume(w, "vol-a", &v, &e), -ENOENT);
        CHECK(strstr(e.message, "/volumes/vol-a.conf: no such volume"));
        CHECK_EQ_INT(sim_world_load_volume(w, "../x", &v, &e), -EINVAL);

        v = (SimVolume) { .name = "vol-b", .holder = "node1", .holder_epoch = 2, .epoch = 3 };
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        v = (SimVolume) { .name = "vol-a", .epoch = 1 };
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        v = (SimVolume) { .name = "bad/name" };
        CHECK_EQ_INT(sim_world_write_volume(w, &v), -EINVAL);
        CHECK_EQ_INT(sim_world_list_volumes(w, &names, &n), 0);
        CHECK_EQ_INT(n, 2);
        CHECK_STREQ(names[0], "vol-a");
        CHECK_STREQ(names[1], "vol-b");
        sim_strv_free(names, n);
        CHECK_EQ_INT(sim_world_load_volumes(w, &all, &n, &e), 0);
        CHECK_EQ_INT(n, 2);
        CHECK_STREQ(all[1].name, "vol-b");
        CHECK_STREQ(all[1].holder, "node1");
        CHECK_EQ_INT(all[1].holder_epoch, 2);
        CHECK_EQ_INT(all[1].epoch, 3);

        /* Refusals leave the file byte for byte, and every path of every
         * hook leaves the lock free. */
        read_file(dir, "volumes/vol-b.conf", before, sizeof(before));
        CHECK_EQ_INT(sim_volume_prepare(w, "node2", "vol-b", 2, &e), -ESTALE);
        CHECK_EQ_INT(w->lock_depth, 0);
        CHECK_EQ_INT(sim_volume_activate(w, "node2", "vol-b", 2, &e), -ESTALE);
        CHECK_EQ_INT(sim_volume_release(w, "node1", "vol-b", 1, &e), -ESTALE);
        CHECK_EQ_INT(sim_volume_release(w, "node2", "vol-b", 1, &e), 0);
        CHECK_EQ_INT(sim_volume_held(w, "node2", "vol-b", &e), 0);
        CHECK_EQ_INT(w->lock_depth, 0);
        read_file(dir, "volumes/vol-b.conf", after, sizeof(after));
        CHECK_STREQ(after, before);
        CHECK_EQ_INT(sim_volume_activate(w, "node1", "vol-b", 3, &e), 0);      /* the holder renews at 3 */
        read_file(dir, "volumes/vol-b.conf", after, sizeof(after));
        CHECK(strstr(after, "holder_epoch = 3"));
        CHECK_EQ_INT(sim_volume_activate(w, "node2", "vol-b", 3, &e), -EBUSY);
        CHECK_EQ_INT(w->lock_depth, 0);
        CHECK_STREQ(e.message, "volume vol-b: held by node1 at epoch 3");
        CHECK_EQ_INT(sim_volume_held(w, "node1", "vol-b", &e), 1);
        CHECK_EQ_INT(sim_volume_held(w, "bad/node", "vol-b", &e), -EINVAL);
        CHECK_EQ_INT(sim_volume_held(w, "node1", "bad/vol", &e), -EINVAL);
        CHECK_EQ_INT(w->lock_depth, 0);
        v = (SimVolume) { .name = "vol-b", .holder = "node1", .holder_epoch = 3, .epoch = 3, .fail_held = true };
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        CHECK_EQ_INT(sim_volume_held(w, "node1", "vol-b", &e), -EIO);
        CHECK_EQ_INT(w->lock_depth, 0);

        /* A bad file is an error naming it, to every hook. */
        char path[512];
        snprintf(path, sizeof(path), "%s/volumes/vol-c.conf", dir);
        FILE *f = fopen(path, "we");
        CHECK(f);
        fputs("holder = node1\nepoch = x\n", f);
        fclose(f);
        CHECK_EQ_INT(sim_volume_activate(w, "node1", "vol-c", 5, &e), -EINVAL);
        CHECK(strstr(e.message, "/volumes/vol-c.conf:2: invalid value \"x\" for epoch"));
        CHECK_EQ_INT(w->lock_depth, 0);
        char **fenced = NULL;
        CHECK_EQ_INT(sim_volume_fence(w, "node1", &fenced, &n, &e), -EINVAL);
        CHECK_EQ_INT(w->lock_depth, 0);
        CHECK_EQ_INT(unlink(path), 0);

        /* Fencing ignores the fault knobs (power is not I/O). */
        CHECK_EQ_INT(sim_volume_fence(w, "node1", &fenced, &n, &e), 0);
        CHECK_EQ_INT(w->lock_depth, 0);
        CHECK_EQ_INT(n, 1);
        CHECK_STREQ(fenced[0], "vol-b");
        sim_strv_free(fenced, n);
        CHECK_EQ_INT(sim_volume_fence(w, "../x", &fenced, &n, &e), -EINVAL);
}

static uint64_t ms_now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long) (ms % 1000) * 1000000 };
        while (nanosleep(&ts, &ts) < 0)
                ;
}

/* Runs one hook as `node` in a child with its own world handle (a lock of
 * its own: flock() locks belong to the open file, which fork() shares);
 * returns its pid. The child exits 0 if the hook returned `expect`. */
static pid_t hook_in_child(const char *dir, const char *hook, const char *node, const char *volume, uint64_t epoch,
                           int expect) {
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid > 0)
                return pid;
        SimWorld *w = NULL;
        SimError e = {};
        int r = -EINVAL;
        if (sim_world_open(dir, &w, &e) < 0)
                _exit(3);
        if (streq(hook, "prepare"))
                r = sim_volume_prepare(w, node, volume, epoch, &e);
        else if (streq(hook, "activate"))
                r = sim_volume_activate(w, node, volume, epoch, &e);
        else if (streq(hook, "release"))
                r = sim_volume_release(w, node, volume, epoch, &e);
        else if (streq(hook, "held"))
                r = sim_volume_held(w, node, volume, &e);
        _exit(r == expect ? 0 : 1);
}

static int child_status(pid_t pid, bool block) {
        int status = 0;
        pid_t k = waitpid(pid, &status, block ? 0 : WNOHANG);
        CHECK(k >= 0);
        if (k == 0)
                return -1;      /* still running */
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static SimVolume load(SimWorld *w, const char *volume) {
        SimVolume v;
        SimError e = {};
        CHECK_EQ_INT(sim_world_load_volume(w, volume, &v, &e), 0);
        return v;
}

/* Delay knobs: the hook waits before it acts (delay_HOOK_ms) or after
 * (delay_after_HOOK_ms), without the world lock, and lowering the knob
 * ends the wait. */
static void test_delays(void) {
        char dir[256];
        _cleanup_(sim_world_freep) SimWorld *w = NULL;
        SimParams p;
        SimError e = {};
        SimVolume v;
        uint64_t t0;
        pid_t pid;

        sim_test_tempdir("world", dir, sizeof(dir));
        sim_params_default(&p);
        CHECK_EQ_INT(sim_world_create(dir, &p, &w, &e), 0);

        /* Before: nothing has happened while it waits, and the world is
         * not locked meanwhile; then the change. */
        v = (SimVolume) { .name = "vd", .epoch = 1, .delay_activate_ms = 400 };
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        t0 = ms_now();
        pid = hook_in_child(dir, "activate", "node1", "vd", 2, 0);
        sleep_ms(100);
        CHECK_EQ_INT(sim_world_lock(w), 0);
        CHECK(ms_now() - t0 < 300);
        v = load(w, "vd");
        CHECK_STREQ(v.holder, "");
        CHECK_EQ_INT(v.epoch, 1);
        sim_world_unlock(w);
        CHECK_EQ_INT(child_status(pid, false), -1);
        CHECK_EQ_INT(child_status(pid, true), 0);
        CHECK(ms_now() - t0 >= 400);
        v = load(w, "vd");
        CHECK_STREQ(v.holder, "node1");
        CHECK_EQ_INT(v.holder_epoch, 2);

        /* After: the change is there while the hook has not returned. */
        v.delay_activate_ms = 0;
        v.delay_after_release_ms = 400;
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        t0 = ms_now();
        pid = hook_in_child(dir, "release", "node1", "vd", 2, 0);
        sleep_ms(150);
        CHECK_EQ_INT(child_status(pid, false), -1);
        v = load(w, "vd");
        CHECK_STREQ(v.holder, "");
        CHECK_EQ_INT(child_status(pid, true), 0);
        CHECK(ms_now() - t0 >= 400);

        /* Lowering the knob ends a long wait early; a fault knob set
         * meanwhile applies (the hook acts after the wait). */
        v = load(w, "vd");
        v.delay_after_release_ms = 0;
        v.delay_prepare_ms = SIM_VOLUME_DELAY_MAX_MS;
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        t0 = ms_now();
        pid = hook_in_child(dir, "prepare", "node2", "vd", 3, -EIO);
        sleep_ms(100);
        CHECK_EQ_INT(sim_world_lock(w), 0);
        v = load(w, "vd");
        v.delay_prepare_ms = 0;
        v.fail_prepare = true;
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        sim_world_unlock(w);
        CHECK_EQ_INT(child_status(pid, true), 0);
        CHECK(ms_now() - t0 < 5000);
        CHECK_EQ_INT(load(w, "vd").epoch, 2);

        /* held waits too; the other hooks' knobs do not slow it. */
        v = load(w, "vd");
        v.fail_prepare = false;
        v.delay_held_ms = 200;
        v.delay_activate_ms = v.delay_release_ms = v.delay_after_activate_ms = SIM_VOLUME_DELAY_MAX_MS;
        CHECK_EQ_INT(sim_world_write_volume(w, &v), 0);
        t0 = ms_now();
        CHECK_EQ_INT(sim_volume_held(w, "node1", "vd", &e), 0);
        CHECK(ms_now() - t0 >= 200);
        CHECK_EQ_INT(w->lock_depth, 0);
        t0 = ms_now();
        CHECK_EQ_INT(sim_volume_prepare(w, "node1", "vd", 3, &e), 0);
        CHECK(ms_now() - t0 < 200);
        /* No file, or a bad name: no wait, the hook's own answer. */
        CHECK_EQ_INT(sim_volume_release(w, "node1", "nofile", 1, &e), 0);
        CHECK_EQ_INT(sim_volume_held(w, "node1", "bad/vol", &e), -EINVAL);
        CHECK_EQ_INT(w->lock_depth, 0);
}

int main(void) {
        static const TestCase tests[] = {
                { "parse volume files", test_parse },
                { "format and parse round trip", test_roundtrip },
                { "store, list, refusals keep the file and the lock", test_store },
                { "delay knobs: before, after, without the lock, ended early", test_delays },
        };

        return run_tests(tests, sizeof(tests) / sizeof(tests[0]));
}
