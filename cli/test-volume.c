/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Unit tests for the volume side of ferryctl (cli/volume.c): the name
 * check that must agree with ferryd's, the texts, the JSON object, and
 * when `volume move --wait` and `volume remove --wait` are over. Table-driven;
 * every failure is reported, the exit code says whether there was one. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "volume.h"

static unsigned failures;

static void check_str(const char *what, const char *got, const char *expected) {
        if (got && streq(got, expected))
                return;
        fprintf(stderr, "FAIL %s:\n  expected: [%s]\n  got:      [%s]\n", what, expected, got ? got : "(null)");
        failures++;
}

static void check_bool(const char *what, bool got, bool expected) {
        if (got == expected)
                return;
        fprintf(stderr, "FAIL %s: expected %s, got %s\n", what, expected ? "true" : "false", got ? "true" : "false");
        failures++;
}

static void test_name(void) {
        char long_ok[VOLUME_NAME_MAX + 1], too_long[VOLUME_NAME_MAX + 2];
        static const struct {
                const char *name;
                bool valid;
        } cases[] = {
                { "vol1",         true  },
                { "a",            true  },
                { "Data_01.img",  true  },
                { "db-disk",      true  },
                { "_x",           true  },
                { "9",            true  },
                { "x.",           true  },
                { "",             false },
                { ".hidden",      false },
                { "-dash",        false },
                { "a/b",          false },
                { "a b",          false },
                { "a:b",          false },
                { "v\xc3\xb6l",   false },
                { "..",           false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check_bool(cases[i].name, volume_name_is_valid(cases[i].name), cases[i].valid);

        memset(long_ok, 'a', VOLUME_NAME_MAX);
        long_ok[VOLUME_NAME_MAX] = '\0';
        check_bool("64 characters", volume_name_is_valid(long_ok), true);
        memset(too_long, 'a', VOLUME_NAME_MAX + 1);
        too_long[VOLUME_NAME_MAX + 1] = '\0';
        check_bool("65 characters", volume_name_is_valid(too_long), false);
        check_bool("NULL", volume_name_is_valid(NULL), false);
}

/* A volume with static strings: the functions under test only read it. */
static Volume volume(const char *state, const char *owner, const char *target, uint64_t epoch, const char *error) {
        return (Volume) {
                .name = (char *) "vol1",
                .known = true,
                .kind = (char *) "shared",
                .backing = (char *) "/dev/sdb",
                .state = (char *) state,
                .owner = (char *) owner,
                .target = (char *) target,
                .epoch = epoch,
                .error = (char *) error,
        };
}

static void test_texts(void) {
        char *vms[] = { (char *) "web1", (char *) "db1", NULL };
        static const struct {
                const char *state, *owner, *target;
                const char *text, *explained;
        } cases[] = {
                { "owned",     "node1", "",      "owned",            "owned" },
                { "releasing", "node1", "node3", "releasing->node3", "releasing (moving from node1 to node3)" },
                { "releasing", "node1", "",      "releasing",        "releasing (node1 lets go of it; then it is removed)" },
                { "acquiring", "",      "node3", "acquiring->node3", "acquiring (node3 activates it)" },
                { "orphaned",  "node2", "",      "orphaned",
                  "orphaned (node2 left the ring; reassigned only after 'ferryctl node confirm-fenced node2')" },
                { "free",      "",      "",      "free",             "free (nobody holds it)" },
                { "newstate",  "",      "",      "newstate",         "newstate" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Volume v = volume(cases[i].state, cases[i].owner, cases[i].target, 1, "");
                _cleanup_free_ char *text = volume_state_text(&v, "->"), *explained = volume_state_explained(&v);

                check_str(cases[i].text, text, cases[i].text);
                check_str(cases[i].explained, explained, cases[i].explained);
        }

        Volume v = volume("owned", "node1", "", 1, "");
        _cleanup_free_ char *none = volume_vms_text(&v, ",");
        check_str("no VMs", none, "");
        v.vms = vms;
        _cleanup_free_ char *two = volume_vms_text(&v, ",");
        check_str("two VMs", two, "web1,db1");
}

static void write_json(const Volume *v, char **ret) {
        size_t size = 0;
        FILE *f = open_memstream(ret, &size);
        JsonWriter w;

        if (!f) {
                perror("open_memstream");
                exit(EXIT_FAILURE);
        }
        json_init(&w, f, false);
        volume_write_json(&w, v);
        fclose(f);
}

static void test_json(void) {
        char *vms[] = { (char *) "web1", NULL };
        _cleanup_free_ char *known = NULL, *unknown = NULL;
        Volume v = volume("releasing", "node1", "node3", 7, "x \"y\"");

        v.vms = vms;
        write_json(&v, &known);
        check_str("json", known,
                  "{\"name\": \"vol1\", \"kind\": \"shared\", \"backing\": \"/dev/sdb\", \"state\": \"releasing\", "
                  "\"owner\": \"node1\", \"target\": \"node3\", \"epoch\": 7, \"error\": \"x \\\"y\\\"\", "
                  "\"vms\": [\"web1\"]}");

        write_json(&(Volume) { .name = (char *) "vol1" }, &unknown);
        check_str("json unknown", unknown,
                  "{\"name\": \"vol1\", \"kind\": null, \"backing\": null, \"state\": null, \"owner\": null, "
                  "\"target\": null, \"epoch\": null, \"error\": null, \"vms\": null}");
}

static const char *result_name(VolumeWaitResult r) {
        return r == VOLUME_WAIT_GOING ? "going" : r == VOLUME_WAIT_DONE ? "done" : "failed";
}

/* Walks a sequence of readings through one VolumeWait, as --wait does:
 * every reading but the last must be "going". */
static void test_wait(void) {
        typedef struct {
                const char *state, *owner, *target;
                uint64_t epoch;
                const char *error;
        } Reading;
        /* ListVolumes no longer has it. */
#define GONE "(gone)"
        static const Reading gone = { .state = GONE };
        static const struct {
                const char *what;
                VolumeWaitKind kind;
                Reading readings[4];
                VolumeWaitResult result;
                const char *message;    /* the failure, or what it waits for when going */
        } cases[] = {
                { "move completes", VOLUME_WAIT_MOVE,
                  { { "releasing", "node1", "node3", 7, "" }, { "acquiring", "", "node3", 8, "" },
                    { "owned", "node3", "", 8, "" } },
                  VOLUME_WAIT_DONE, NULL },
                { "move done before the first reading", VOLUME_WAIT_MOVE,
                  { { "owned", "node3", "", 8, "old failure" } },
                  VOLUME_WAIT_DONE, NULL },
                { "release fails", VOLUME_WAIT_MOVE,
                  { { "releasing", "node1", "node3", 7, "" }, { "owned", "node1", "", 7, "device busy" } },
                  VOLUME_WAIT_FAILED, "vol1: the move to node3 failed: device busy; node1 owns it (epoch 7)" },
                { "back to the owner without a reason", VOLUME_WAIT_MOVE,
                  { { "owned", "node1", "", 7, "" } },
                  VOLUME_WAIT_FAILED, "vol1: the move to node3 did not complete: node1 owns it (epoch 7)" },
                { "activation fails", VOLUME_WAIT_MOVE,
                  { { "acquiring", "", "node3", 8, "" }, { "free", "", "", 8, "no such device" } },
                  VOLUME_WAIT_FAILED, "vol1: the move to node3 failed: no such device; nobody holds the volume now (free)" },
                { "free without a reason", VOLUME_WAIT_MOVE,
                  { { "free", "", "", 9, "" } },
                  VOLUME_WAIT_FAILED, "vol1: the move to node3 did not complete: nobody holds the volume now (free)" },
                { "owner leaves the ring", VOLUME_WAIT_MOVE,
                  { { "releasing", "node1", "node3", 7, "" }, { "orphaned", "node1", "", 7, "" } },
                  VOLUME_WAIT_FAILED,
                  "vol1: the move to node3 stopped: node1 left the ring; the volume stays orphaned until node1 comes "
                  "back or 'ferryctl node confirm-fenced node1' confirms that it is down" },
                { "removed while moving", VOLUME_WAIT_MOVE,
                  { { "releasing", "node1", "node3", 7, "" }, gone },
                  VOLUME_WAIT_FAILED, "vol1: the move to node3 did not complete: the volume was removed" },
                { "still releasing", VOLUME_WAIT_MOVE,
                  { { "releasing", "node1", "node3", 7, "" } },
                  VOLUME_WAIT_GOING, "node1 to let go of vol1 (releasing, epoch 7)" },
                { "still acquiring", VOLUME_WAIT_MOVE,
                  { { "acquiring", "", "node3", 8, "" } },
                  VOLUME_WAIT_GOING, "node3 to activate vol1 (acquiring, epoch 8)" },
                { "unknown state", VOLUME_WAIT_MOVE,
                  { { "rebalancing", "node1", "", 8, "" } },
                  VOLUME_WAIT_GOING, "vol1 to be owned by node3 (now rebalancing, epoch 8)" },
                { "removal completes", VOLUME_WAIT_REMOVE,
                  { { "releasing", "node1", "", 7, "" }, gone },
                  VOLUME_WAIT_DONE, NULL },
                { "removal of a free volume", VOLUME_WAIT_REMOVE,
                  { gone },
                  VOLUME_WAIT_DONE, NULL },
                { "removal: release fails", VOLUME_WAIT_REMOVE,
                  { { "releasing", "node1", "", 7, "" }, { "owned", "node1", "", 7, "target is busy" } },
                  VOLUME_WAIT_FAILED, "vol1: the removal failed: target is busy; node1 owns it (epoch 7)" },
                { "removal: owner leaves", VOLUME_WAIT_REMOVE,
                  { { "orphaned", "node1", "", 7, "" } },
                  VOLUME_WAIT_FAILED,
                  "vol1: the removal stopped: node1 left the ring; the volume stays orphaned until node1 comes "
                  "back or 'ferryctl node confirm-fenced node1' confirms that it is down" },
                { "removal going", VOLUME_WAIT_REMOVE,
                  { { "releasing", "node1", "", 7, "" } },
                  VOLUME_WAIT_GOING, "node1 to let go of vol1 (releasing, epoch 7)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                VolumeWait w = { .kind = cases[i].kind, .name = "vol1", .destination = "node3" };
                VolumeWaitResult result = VOLUME_WAIT_GOING;
                Volume last = {};
                bool is_gone = false;
                char what[128];

                for (size_t k = 0; k < ELEMENTSOF(cases[i].readings) && cases[i].readings[k].state; k++) {
                        const Reading *rd = cases[i].readings + k;

                        if (k > 0) {
                                snprintf(what, sizeof(what), "%s: reading %zu", cases[i].what, k);
                                check_str(what, result_name(result), "going");
                        }
                        is_gone = streq(rd->state, GONE);
                        if (!is_gone)
                                last = volume(rd->state, rd->owner, rd->target, rd->epoch, rd->error);
                        if (volume_wait_check(&w, is_gone ? NULL : &last, &result) < 0) {
                                fprintf(stderr, "out of memory\n");
                                exit(EXIT_FAILURE);
                        }
                }

                snprintf(what, sizeof(what), "%s: result", cases[i].what);
                check_str(what, result_name(result), result_name(cases[i].result));

                if (cases[i].message) {
                        _cleanup_free_ char *message = result == VOLUME_WAIT_FAILED
                                ? volume_wait_failure(&w, is_gone ? NULL : &last)
                                : volume_waits_for(&w, is_gone ? NULL : &last);

                        snprintf(what, sizeof(what), "%s: message", cases[i].what);
                        check_str(what, message, cases[i].message);
                }
                volume_wait_done(&w);
        }
}

static void test_progress(void) {
        VolumeWait w = { .kind = VOLUME_WAIT_MOVE, .name = "vol1", .destination = "node3" };
        static const struct {
                const char *state, *owner, *target, *line;
        } cases[] = {
                { "releasing", "node1", "node3", "vol1: releasing: node1 lets go of it for node3 (epoch 7)" },
                { "releasing", "node1", "",      "vol1: releasing: node1 lets go of it before it is removed (epoch 7)" },
                { "acquiring", "",      "node3", "vol1: acquiring: node3 activates it (epoch 7)" },
                { "owned",     "node3", "",      "vol1: owned by node3 (epoch 7)" },
                { "free",      "",      "",      "vol1: free (epoch 7)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Volume v = volume(cases[i].state, cases[i].owner, cases[i].target, 7, "");
                _cleanup_free_ char *line = volume_progress_line(&w, &v);

                check_str(cases[i].line, line, cases[i].line);
        }
}

int main(void) {
        test_name();
        test_texts();
        test_json();
        test_wait();
        test_progress();

        if (failures > 0) {
                fprintf(stderr, "%u check(s) failed\n", failures);
                return EXIT_FAILURE;
        }
        printf("all volume checks passed\n");
        return EXIT_SUCCESS;
}
