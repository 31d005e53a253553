/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The canonical state encoding: what a SYNC_STATE frame carries and what
 * STATE_DIR/state holds after its magic (cluster_state_decode() for both).
 *
 * Beyond "no crash, no leak, no UB", a round-trip property: a blob that
 * decodes is canonical, so it must encode back to exactly the same bytes,
 * decode again to the same digest, and copy (cluster_state_copy()) to the
 * same digest. Otherwise two members could hold "the same" state under two
 * digests, and a sync would never settle.
 *
 * A decoded state came from a peer and is adopted as is, so what every
 * member derives from it on each change must cope with it too
 * (sample_derive()). */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster-state.h"
#include "fuzz-samples.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FAIL(...)                                                       \
        do {                                                            \
                fprintf(stderr, "fuzz-state: " __VA_ARGS__);            \
                fputc('\n', stderr);                                    \
                abort();                                                \
        } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char d1[STATE_DIGEST_HEX_SIZE], d2[STATE_DIGEST_HEX_SIZE], d3[STATE_DIGEST_HEX_SIZE];
        ClusterState *s = NULL, *again = NULL, *copy = NULL;
        Writer w;
        Reader r;
        int k;

        reader_init(&r, data, size);
        if (cluster_state_decode(&r, &s) < 0) {
                if (s)
                        FAIL("a refused state was handed out");
                return 0;
        }

        writer_init(&w);
        k = cluster_state_encode(s, &w);
        if (k < 0)
                FAIL("a decoded state does not encode: %d", k);
        if (w.size != size || memcmp(w.data, data, size) != 0) {
                size_t at = 0;
                while (at < w.size && at < size && w.data[at] == data[at])
                        at++;
                FAIL("not canonical: %zu bytes decode, encode to %zu; first difference at offset %zu",
                     size, w.size, at);
        }

        reader_init(&r, w.data, w.size);
        if (cluster_state_decode(&r, &again) < 0)
                FAIL("the re-encoded state does not decode");
        cluster_state_digest(s, d1);
        cluster_state_digest(again, d2);
        if (strcmp(d1, d2) != 0)
                FAIL("digest changed through encode/decode");
        if (cluster_state_copy(s, &copy) < 0)
                FAIL("cluster_state_copy() failed on a valid state");
        cluster_state_digest(copy, d3);
        if (strcmp(d1, d3) != 0)
                FAIL("digest changed through cluster_state_copy()");

        /* Lookups the daemon does by name and id must find what is there. */
        for (size_t i = 0; i < s->n_nodes; i++)
                if (cluster_state_find_node(s, s->nodes[i].id) != &s->nodes[i])
                        FAIL("node %u not found by id", s->nodes[i].id);
        for (size_t i = 0; i < s->n_vms; i++)
                if (state_find_vm(s, s->vms[i].name, s->vms[i].node) != &s->vms[i])
                        FAIL("VM %s on node %u not found", s->vms[i].name, s->vms[i].node);
        for (size_t i = 0; i < s->n_jobs; i++)
                if (state_find_job(s, s->jobs[i].id) != &s->jobs[i])
                        FAIL("job %llu not found", (unsigned long long) s->jobs[i].id);

        sample_derive(s);

        /* The scheduler runs on an adopted state at the next job change;
         * what it grants must still be a state a sync can carry. */
        ClusterState *scheduled = NULL;
        (void) state_jobs_schedule(copy);
        if (cluster_state_copy(copy, &scheduled) < 0)
                FAIL("a scheduled state does not survive the canonical encoding");
        cluster_state_free(scheduled);

        writer_done(&w);
        cluster_state_free(s);
        cluster_state_free(again);
        cluster_state_free(copy);
        return 0;
}
