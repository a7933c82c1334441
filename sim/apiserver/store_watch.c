/*
 * The event log and watches. Every write appends one event with its new
 * resourceVersion; a watch is a cursor into the log, so replay from a
 * resourceVersion and live delivery are the same loop.
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sel.h"
#include "status.h"

struct store_watch {
    store *st;
    res_type *res;
    char *ns;
    sel *ls, *fs;
    uint64_t cursor;      /* the last resourceVersion looked at */
    uint64_t expired_at;  /* non-zero: yield ERROR 410 for this RV */
    cJSON *initial;       /* objects still to send as ADDED */
    int done;
    int cancelled;
};

static log_ev *ev_at(store *st, int i)
{
    return &st->log[(st->log_head + i) % st->log_cap];
}

static void ev_clear(log_ev *e)
{
    cJSON_Delete(e->obj);
    cJSON_Delete(e->old);
    memset(e, 0, sizeof(*e));
}

void log_append(store *st, int type, res_type *res, cJSON *obj, cJSON *old)
{
    log_ev *e;

    if (st->log_len == st->log_cap) {
        e = ev_at(st, 0);
        st->compacted = e->rv;
        ev_clear(e);
        st->log_head = (st->log_head + 1) % st->log_cap;
        st->log_len--;
    }
    e = ev_at(st, st->log_len++);
    e->rv = st->rv;
    e->type = type;
    e->res = res;
    e->obj = obj;
    e->old = old;
    pthread_cond_broadcast(&st->cv);
}

void log_free_all(store *st)
{
    while (st->log_len > 0) {
        ev_clear(ev_at(st, 0));
        st->log_head = (st->log_head + 1) % st->log_cap;
        st->log_len--;
    }
}

void store_compact(store *st)
{
    pthread_mutex_lock(&st->mu);
    log_free_all(st);
    st->compacted = st->rv;
    store_log(st, 2, "watch history compacted at resourceVersion %llu",
              (unsigned long long)st->rv);
    pthread_cond_broadcast(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

void store_set_history(store *st, int history)
{
    log_ev *nl;
    int keep;

    if (history < 1)
        history = 1;
    pthread_mutex_lock(&st->mu);
    nl = calloc((size_t)history, sizeof(*nl));
    if (!nl)
        goto out;
    while (st->log_len > history) {
        st->compacted = ev_at(st, 0)->rv;
        ev_clear(ev_at(st, 0));
        st->log_head = (st->log_head + 1) % st->log_cap;
        st->log_len--;
    }
    keep = st->log_len;
    for (int i = 0; i < keep; i++)
        nl[i] = *ev_at(st, i);
    free(st->log);
    st->log = nl;
    st->log_cap = history;
    st->log_head = 0;
    st->cfg.history = history;
out:
    pthread_mutex_unlock(&st->mu);
}

/* Index of the first retained event with rv > after (log_len if none). */
static int first_after(store *st, uint64_t after)
{
    int lo = 0, hi = st->log_len;

    while (lo < hi) {
        int mid = (lo + hi) / 2;

        if (ev_at(st, mid)->rv <= after)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int watch_matches(const store_watch *w, const cJSON *obj)
{
    const char *ns = obj_str(obj, "namespace");

    if (w->ns && strcmp(ns ? ns : "", w->ns) != 0)
        return 0;
    return sel_matches_obj(w->ls, w->fs, obj);
}

/* The event type w sees for e (selector transitions), or NULL. */
static const char *classify(const store_watch *w, const log_ev *e)
{
    int now, before;

    if (e->res != w->res)
        return NULL;
    now = watch_matches(w, e->obj);
    if (e->type == EV_ADDED)
        return now ? "ADDED" : NULL;
    if (e->type == EV_DELETED)
        return now ? "DELETED" : NULL;
    before = watch_matches(w, e->old);
    if (before && now)
        return "MODIFIED";
    if (before)
        return "DELETED";
    return now ? "ADDED" : NULL;
}

static cJSON *expired_status(uint64_t asked, uint64_t oldest)
{
    return status_new(410, "Expired", "too old resource version: %llu (%llu)",
                      (unsigned long long)asked,
                      (unsigned long long)oldest);
}

static int parse_rv(const char *s, uint64_t *rv)
{
    char *end;

    if (!s || !*s)
        return 0;
    *rv = strtoull(s, &end, 10);
    return *end ? -1 : 1;
}

int store_watch_open(store *st, const store_ref *ref, const store_opts *o,
                     store_watch **out, store_err *err)
{
    store_watch *w = calloc(1, sizeof(*w));
    char msg[512];
    uint64_t rv = 0;
    int have_rv, rc = 0;

    *out = NULL;
    if (!w)
        return 500;
    w->st = st;
    have_rv = parse_rv(o ? o->resource_version : NULL, &rv);
    pthread_mutex_lock(&st->mu);
    w->res = res_lookup(st, ref->group, ref->version, ref->resource);
    if (!w->res || (!w->res->namespaced && ref->ns && *ref->ns) ||
        (ref->name && *ref->name)) {
        store_err_clear(err);
        err->code = rc = 404;
        err->status = status_new(404, "NotFound", "the server could not "
                                 "find the requested resource");
        goto fail;
    }
    if (have_rv < 0) {
        snprintf(msg, sizeof(msg), "invalid resource version: %s",
                 o->resource_version);
        store_err_clear(err);
        err->code = rc = 400;
        err->status = status_new(400, "BadRequest", "%s", msg);
        goto fail;
    }
    w->ls = sel_parse_labels(o ? o->label_selector : NULL, msg, sizeof(msg));
    w->fs = sel_parse_fields(o ? o->field_selector : NULL, msg, sizeof(msg));
    if (!w->ls || !w->fs) {
        store_err_clear(err);
        err->code = rc = 400;
        err->status = status_new(400, "BadRequest", "%s", msg);
        goto fail;
    }
    if (w->res->namespaced && ref->ns && *ref->ns)
        w->ns = strdup(ref->ns);
    if (!have_rv || rv == 0) {
        w->initial = cJSON_CreateArray();
        for (int i = 0; i < w->res->nobjs; i++)
            if (watch_matches(w, w->res->objs[i].json))
                cJSON_AddItemToArray(w->initial, cJSON_Duplicate(
                                                     w->res->objs[i].json, 1));
        w->cursor = st->rv;
    } else if (rv < st->compacted) {
        if (o->expired_as_http) {
            store_err_clear(err);
            err->code = rc = 410;
            err->status = expired_status(rv, st->compacted + 1);
            goto fail;
        }
        w->expired_at = rv;
    } else {
        w->cursor = rv;
    }
    pthread_mutex_unlock(&st->mu);
    *out = w;
    return 200;
fail:
    pthread_mutex_unlock(&st->mu);
    store_watch_close(w);
    return rc;
}

/* Looks for the next event for w; 1 when ev is filled. Lock held. */
static int next_locked(store_watch *w, store_event *ev)
{
    store *st = w->st;
    int i;

    if (cJSON_GetArraySize(w->initial) > 0) {
        ev->type = "ADDED";
        ev->object = cJSON_DetachItemFromArray(w->initial, 0);
        return 1;
    }
    if (w->expired_at || w->cursor < st->compacted) {
        ev->type = "ERROR";
        ev->object = expired_status(w->expired_at ? w->expired_at
                                                  : w->cursor,
                                    st->compacted + 1);
        w->done = 1;
        return 1;
    }
    for (i = first_after(st, w->cursor); i < st->log_len; i++) {
        log_ev *e = ev_at(st, i);
        const char *type = classify(w, e);

        w->cursor = e->rv;
        if (type) {
            ev->type = type;
            ev->object = cJSON_Duplicate(e->obj, 1);
            return 1;
        }
    }
    if (st->rv > w->cursor)
        w->cursor = st->rv;
    return 0;
}

int store_watch_next(store_watch *w, int timeout_ms, store_event *ev)
{
    store *st = w->st;
    struct timespec deadline;
    int rc = 0;

    ev->type = NULL;
    ev->object = NULL;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&st->mu);
    for (;;) {
        if (w->done || w->cancelled || st->closing) {
            rc = -1;
            break;
        }
        if (next_locked(w, ev)) {
            rc = 1;
            break;
        }
        if (!w->res->active) {
            rc = -1;
            break;
        }
        if (pthread_cond_timedwait(&st->cv, &st->mu, &deadline) ==
            ETIMEDOUT) {
            rc = next_locked(w, ev);
            break;
        }
    }
    pthread_mutex_unlock(&st->mu);
    return rc;
}

void store_watch_bookmark(store_watch *w, store_event *ev)
{
    cJSON *o = cJSON_CreateObject(), *m;
    char buf[256];

    pthread_mutex_lock(&w->st->mu);
    cJSON_AddStringToObject(o, "kind", w->res->kind);
    cJSON_AddStringToObject(o, "apiVersion",
                            res_api_version(w->res, buf, sizeof(buf)));
    m = cJSON_AddObjectToObject(o, "metadata");
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)w->cursor);
    cJSON_AddStringToObject(m, "resourceVersion", buf);
    cJSON_AddNullToObject(m, "creationTimestamp");
    pthread_mutex_unlock(&w->st->mu);
    ev->type = "BOOKMARK";
    ev->object = o;
}

void store_watch_cancel(store_watch *w)
{
    pthread_mutex_lock(&w->st->mu);
    w->cancelled = 1;
    pthread_cond_broadcast(&w->st->cv);
    pthread_mutex_unlock(&w->st->mu);
}

void store_watch_close(store_watch *w)
{
    if (!w)
        return;
    sel_free(w->ls);
    sel_free(w->fs);
    cJSON_Delete(w->initial);
    free(w->ns);
    free(w);
}
