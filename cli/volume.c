/* SPDX-License-Identifier: GPL-2.0-or-later */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"
#include "volume.h"

/* A field ferryd did not send (a half-read entry) reads as "". */
static const char *str(const char *s) {
        return s ? s : "";
}

bool volume_name_is_valid(const char *name) {
        size_t n;

        if (!name || name[0] == '\0' || name[0] == '.' || name[0] == '-')
                return false;
        n = strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-");
        return name[n] == '\0' && n <= VOLUME_NAME_MAX;
}

void volume_done(Volume *v) {
        free(v->name);
        free(v->kind);
        free(v->backing);
        free(v->state);
        free(v->owner);
        free(v->target);
        free(v->error);
        for (char **i = v->vms; i && *i; i++)
                free(*i);
        free(v->vms);
        *v = (Volume) {};
}

void volume_list_done(VolumeList *l) {
        for (size_t i = 0; i < l->n; i++)
                volume_done(l->volumes + i);
        free(l->volumes);
        *l = (VolumeList) {};
}

Volume *volume_list_add(VolumeList *l) {
        Volume *volumes;

        volumes = reallocarray(l->volumes, l->n + 1, sizeof(Volume));
        if (!volumes)
                return NULL;
        l->volumes = volumes;
        l->volumes[l->n] = (Volume) {};
        return l->volumes + l->n++;
}

static int volume_compare(const void *a, const void *b) {
        return strcmp(str(((const Volume *) a)->name), str(((const Volume *) b)->name));
}

void volume_list_sort(VolumeList *l) {
        if (l->n > 1)
                qsort(l->volumes, l->n, sizeof(Volume), volume_compare);
}

const Volume *volume_list_find(const VolumeList *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(str(l->volumes[i].name), name))
                        return l->volumes + i;
        return NULL;
}

static bool state_is(const Volume *v, const char *state) {
        return streq(str(v->state), state);
}

/* Where a move goes: releasing and acquiring name a target, except the
 * release before a removal. */
static bool is_moving(const Volume *v) {
        return (state_is(v, "releasing") || state_is(v, "acquiring")) && *str(v->target);
}

char *volume_state_text(const Volume *v, const char *arrow) {
        char *s;

        if (!v->known)
                return strdup("-");
        if (is_moving(v)) {
                if (asprintf(&s, "%s%s%s", str(v->state), arrow, v->target) < 0)
                        return NULL;
                return s;
        }
        return strdup(str(v->state));
}

char *volume_vms_text(const Volume *v, const char *separator) {
        char *s = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&s, &size);
        if (!f)
                return NULL;
        for (char **i = v->vms; i && *i; i++)
                fprintf(f, "%s%s", i == v->vms ? "" : separator, *i);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

char *volume_state_explained(const Volume *v) {
        const char *state = str(v->state), *owner = str(v->owner);
        char *s;
        int r;

        if (state_is(v, "releasing") && *str(v->target))
                r = asprintf(&s, "%s (moving from %s to %s)", state, *owner ? owner : "its owner", v->target);
        else if (state_is(v, "releasing"))
                r = asprintf(&s, "%s (%s lets go of it; then it is removed)", state, *owner ? owner : "its owner");
        else if (state_is(v, "acquiring"))
                r = asprintf(&s, "%s (%s activates it)", state, *str(v->target) ? v->target : "its new owner");
        else if (state_is(v, "orphaned") && *owner)
                r = asprintf(&s, "%s (%s left the ring; reassigned only after 'ferryctl node confirm-fenced %s')",
                             state, owner, owner);
        else if (state_is(v, "free"))
                r = asprintf(&s, "%s (nobody holds it)", state);
        else
                return strdup(state);
        return r < 0 ? NULL : s;
}

int volume_print_detail(const Volume *v, FILE *f) {
        _cleanup_(table_freep) Table *t = NULL;
        _cleanup_free_ char *state = NULL, *vms = NULL;
        char epoch[32];
        int r;

        state = volume_state_explained(v);
        vms = volume_vms_text(v, ", ");
        t = table_new(2, NULL);
        if (!state || !vms || !t)
                return -ENOMEM;
        snprintf(epoch, sizeof(epoch), "%" PRIu64, v->epoch);

        const char *rows[][2] = {
                { "Name:",    str(v->name) },
                { "Kind:",    str(v->kind) },
                { "Backing:", str(v->backing) },
                { "State:",   state },
                { "Owner:",   str(v->owner) },
                { "Target:",  str(v->target) },
                { "Epoch:",   epoch },
                { "Error:",   str(v->error) },
                { "VMs:",     vms },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++)
                if ((r = table_add_cell(t, rows[i][0])) < 0 || (r = table_add_cell(t, rows[i][1])) < 0)
                        return r;
        return table_print(t, f);
}

void volume_write_json(JsonWriter *w, const Volume *v) {
        const char *keys[] = { "kind", "backing", "state", "owner", "target" };
        const char *values[] = { v->kind, v->backing, v->state, v->owner, v->target };

        json_begin_object(w);
        json_key(w, "name");
        json_string(w, v->name);
        for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                json_key(w, keys[i]);
                json_string(w, v->known ? str(values[i]) : NULL);
        }
        json_key(w, "epoch");
        if (v->known)
                json_uint(w, v->epoch);
        else
                json_null(w);
        json_key(w, "error");
        json_string(w, v->known ? str(v->error) : NULL);
        json_key(w, "vms");
        if (v->known) {
                json_begin_array(w);
                for (char **i = v->vms; i && *i; i++)
                        json_string(w, *i);
                json_end_array(w);
        } else
                json_null(w);
        json_end_object(w);
}

/* ---- --wait ---- */

void volume_wait_done(VolumeWait *w) {
        free(w->from);
        w->from = NULL;
}

int volume_wait_check(VolumeWait *w, const Volume *v, VolumeWaitResult *ret) {
        if (v && !w->from && state_is(v, "releasing") && *str(v->owner)) {
                w->from = strdup(v->owner);
                if (!w->from)
                        return -ENOMEM;
        }

        if (w->kind == VOLUME_WAIT_REMOVE) {
                if (!v)
                        *ret = VOLUME_WAIT_DONE;
                else if (state_is(v, "releasing"))
                        *ret = VOLUME_WAIT_GOING;
                else
                        *ret = VOLUME_WAIT_FAILED;
                return 0;
        }

        if (!v || state_is(v, "free") || state_is(v, "orphaned"))
                *ret = VOLUME_WAIT_FAILED;
        else if (state_is(v, "owned"))
                /* Back with the owner that let go, or with another node:
                 * the move ended, not where it was meant to. */
                *ret = streq(str(v->owner), w->destination) ? VOLUME_WAIT_DONE : VOLUME_WAIT_FAILED;
        else
                /* releasing, acquiring, or a state this ferryctl does not
                 * know yet: the timeout bounds the wait. */
                *ret = VOLUME_WAIT_GOING;
        return 0;
}

char *volume_progress_line(const VolumeWait *w, const Volume *v) {
        const char *owner = str(v->owner), *target = str(v->target);
        char *s;
        int r;

        if (state_is(v, "releasing") && *target)
                r = asprintf(&s, "%s: releasing: %s lets go of it for %s (epoch %" PRIu64 ")",
                             w->name, *owner ? owner : "its owner", target, v->epoch);
        else if (state_is(v, "releasing"))
                r = asprintf(&s, "%s: releasing: %s lets go of it before it is removed (epoch %" PRIu64 ")",
                             w->name, *owner ? owner : "its owner", v->epoch);
        else if (state_is(v, "acquiring"))
                r = asprintf(&s, "%s: acquiring: %s activates it (epoch %" PRIu64 ")",
                             w->name, *target ? target : "its new owner", v->epoch);
        else if (*owner)
                r = asprintf(&s, "%s: %s by %s (epoch %" PRIu64 ")", w->name, str(v->state), owner, v->epoch);
        else
                r = asprintf(&s, "%s: %s (epoch %" PRIu64 ")", w->name, str(v->state), v->epoch);
        return r < 0 ? NULL : s;
}

char *volume_wait_failure(const VolumeWait *w, const Volume *v) {
        const char *what = w->kind == VOLUME_WAIT_MOVE ? "the move to " : "the removal";
        const char *to = w->kind == VOLUME_WAIT_MOVE ? w->destination : "";
        const char *owner = v ? str(v->owner) : "", *error = v ? str(v->error) : "";
        char *s;
        int r;

        if (!v)
                r = asprintf(&s, "%s: %s%s did not complete: the volume was removed", w->name, what, to);
        else if (state_is(v, "orphaned"))
                r = asprintf(&s, "%s: %s%s stopped: %s left the ring; the volume stays orphaned until %s comes "
                             "back or 'ferryctl node confirm-fenced %s' confirms that it is down%s%s",
                             w->name, what, to, *owner ? owner : "its owner", *owner ? owner : "it",
                             *owner ? owner : "NODE", *error ? "; last error: " : "", error);
        else if (state_is(v, "owned") && *error)
                r = asprintf(&s, "%s: %s%s failed: %s; %s owns it (epoch %" PRIu64 ")",
                             w->name, what, to, error, owner, v->epoch);
        else if (state_is(v, "owned"))
                r = asprintf(&s, "%s: %s%s did not complete: %s owns it (epoch %" PRIu64 ")",
                             w->name, what, to, owner, v->epoch);
        else if (state_is(v, "free") && *error)
                r = asprintf(&s, "%s: %s%s failed: %s; nobody holds the volume now (free)", w->name, what, to, error);
        else if (state_is(v, "free"))
                r = asprintf(&s, "%s: %s%s did not complete: nobody holds the volume now (free)", w->name, what, to);
        else
                r = asprintf(&s, "%s: %s%s did not complete: the volume is %s%s%s", w->name, what, to,
                             str(v->state), *error ? "; last error: " : "", error);
        return r < 0 ? NULL : s;
}

char *volume_waits_for(const VolumeWait *w, const Volume *v) {
        const char *owner = v ? str(v->owner) : "", *target = v ? str(v->target) : "";
        char *s;
        int r;

        if (!v)
                r = asprintf(&s, "ferryd to report %s", w->name);
        else if (state_is(v, "releasing"))
                r = asprintf(&s, "%s to let go of %s (releasing, epoch %" PRIu64 ")",
                             *owner ? owner : "its owner", w->name, v->epoch);
        else if (state_is(v, "acquiring"))
                r = asprintf(&s, "%s to activate %s (acquiring, epoch %" PRIu64 ")",
                             *target ? target : "the new owner", w->name, v->epoch);
        else if (w->kind == VOLUME_WAIT_MOVE)
                r = asprintf(&s, "%s to be owned by %s (now %s, epoch %" PRIu64 ")",
                             w->name, w->destination, str(v->state), v->epoch);
        else
                r = asprintf(&s, "%s to be removed (now %s, epoch %" PRIu64 ")", w->name, str(v->state), v->epoch);
        return r < 0 ? NULL : s;
}
