/*
 * kinf: the informer thread runs list, then watch, forever; the cache is
 * two hash maps (key "ns/name" -> object, owner uid -> set of keys)
 * behind a read-write lock. Only the informer thread writes the cache,
 * so it may hand cached objects to handlers without holding the lock.
 */
#define _GNU_SOURCE
#include "kinf.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

/* A string-keyed chained hash map; values belong to the user. */
typedef struct sm_ent {
    char *key;
    void *val;
    struct sm_ent *next;
} sm_ent;

typedef struct smap {
    sm_ent **b;
    size_t nb, n;
} smap;

static unsigned long sm_hash(const char *s)
{
    unsigned long h = 5381;

    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

static int sm_init(smap *m)
{
    m->nb = 256;
    m->n = 0;
    m->b = calloc(m->nb, sizeof(*m->b));
    return m->b ? 0 : -1;
}

static sm_ent **sm_slot(smap *m, const char *key)
{
    sm_ent **pp = &m->b[sm_hash(key) % m->nb];

    while (*pp && strcmp((*pp)->key, key))
        pp = &(*pp)->next;
    return pp;
}

static void *sm_get(smap *m, const char *key)
{
    sm_ent *e = *sm_slot(m, key);

    return e ? e->val : NULL;
}

static void sm_grow(smap *m)
{
    size_t nb = m->nb * 2;
    sm_ent **b = calloc(nb, sizeof(*b));

    if (!b)
        return;
    for (size_t i = 0; i < m->nb; i++) {
        sm_ent *e = m->b[i], *n;

        for (; e; e = n) {
            n = e->next;
            e->next = b[sm_hash(e->key) % nb];
            b[sm_hash(e->key) % nb] = e;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

/* Sets key to val; returns the previous value (or NULL). */
static void *sm_put(smap *m, const char *key, void *val)
{
    sm_ent **pp = sm_slot(m, key), *e;
    void *old;

    if (*pp) {
        old = (*pp)->val;
        (*pp)->val = val;
        return old;
    }
    e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strdup(key))) {
        free(e);
        log_msg(LOG_ERROR, "kinf", "out of memory caching %s; the cache "
                "misses it until the next relist", key);
        return val;
    }
    e->val = val;
    *pp = e;
    if (++m->n > m->nb * 2)
        sm_grow(m);
    return NULL;
}

/* Removes key; returns its value (or NULL). */
static void *sm_del(smap *m, const char *key)
{
    sm_ent **pp = sm_slot(m, key), *e = *pp;
    void *val;

    if (!e)
        return NULL;
    *pp = e->next;
    val = e->val;
    free(e->key);
    free(e);
    m->n--;
    return val;
}

/* Frees the map; free_val (may be NULL) frees each value. */
static void sm_free(smap *m, void (*free_val)(void *))
{
    for (size_t i = 0; m->b && i < m->nb; i++) {
        sm_ent *e = m->b[i], *n;

        for (; e; e = n) {
            n = e->next;
            if (free_val)
                free_val(e->val);
            free(e->key);
            free(e);
        }
    }
    free(m->b);
    m->b = NULL;
    m->n = 0;
}

static void free_json(void *v)
{
    cJSON_Delete(v);
}

static void free_keyset(void *v)
{
    cJSON_Delete(v); /* a cJSON object used as a set of keys */
}

struct kinf {
    kube *k;
    kinf_config c;
    char *group, *version, *resource, *ns, *lsel, *fsel;
    kinf_handlers h;

    pthread_t th;
    int started, stop;      /* stop is read atomically by the watch */
    pthread_mutex_t mu;     /* synced, stats, last_rv, stop sleeping */
    pthread_cond_t cond;
    int synced;
    kinf_stats stats;
    char last_rv[64];

    pthread_rwlock_t rw;    /* the cache */
    smap objs;              /* "ns/name" -> cJSON object */
    smap owners;            /* uid -> cJSON object {key: true} */
};

static void make_key(const cJSON *obj, char *buf, size_t len)
{
    const char *ns = kube_obj_ns(obj), *name = kube_obj_name(obj);

    snprintf(buf, len, "%s/%s", ns ? ns : "", name ? name : "");
}

static const char *controller_uid(const cJSON *obj)
{
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(m,
                                                         "ownerReferences");
    const cJSON *r;

    cJSON_ArrayForEach(r, refs) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(r, "controller");
        const cJSON *u = cJSON_GetObjectItemCaseSensitive(r, "uid");

        if (cJSON_IsTrue(c) && cJSON_IsString(u))
            return u->valuestring;
    }
    return NULL;
}

static void index_add(kinf *inf, const char *key, const cJSON *obj)
{
    const char *uid = controller_uid(obj);
    cJSON *set;

    if (!uid)
        return;
    set = sm_get(&inf->owners, uid);
    if (!set) {
        set = cJSON_CreateObject();
        if (!set || sm_put(&inf->owners, uid, set)) {
            cJSON_Delete(set);
            return;
        }
    }
    if (!cJSON_GetObjectItemCaseSensitive(set, key))
        cJSON_AddTrueToObject(set, key);
}

static void index_del(kinf *inf, const char *key, const cJSON *obj)
{
    const char *uid = controller_uid(obj);
    cJSON *set;

    if (!uid || !(set = sm_get(&inf->owners, uid)))
        return;
    cJSON_DeleteItemFromObjectCaseSensitive(set, key);
    if (!set->child)
        cJSON_Delete(sm_del(&inf->owners, uid));
}

/*
 * Puts obj (taken) under key; returns the object it replaces (caller
 * frees) or NULL. Called with the write lock held.
 */
static cJSON *cache_put(kinf *inf, const char *key, cJSON *obj)
{
    cJSON *old = sm_get(&inf->objs, key);

    if (old)
        index_del(inf, key, old);
    if (sm_put(&inf->objs, key, obj) == obj) {
        cJSON_Delete(obj); /* out of memory: logged, not cached */
        return old ? sm_del(&inf->objs, key) : NULL;
    }
    index_add(inf, key, obj);
    return old;
}

static cJSON *cache_del(kinf *inf, const char *key)
{
    cJSON *old = sm_del(&inf->objs, key);

    if (old)
        index_del(inf, key, old);
    return old;
}

static void set_last_rv(kinf *inf, const char *rv)
{
    if (!rv || !*rv)
        return;
    pthread_mutex_lock(&inf->mu);
    snprintf(inf->last_rv, sizeof(inf->last_rv), "%s", rv);
    pthread_mutex_unlock(&inf->mu);
}

static int stopping(kinf *inf)
{
    return __atomic_load_n(&inf->stop, __ATOMIC_ACQUIRE);
}

/* Sleeps ms unless stopped first; returns nonzero when stopped. */
static int nap(kinf *inf, long ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&inf->mu);
    while (!stopping(inf) &&
           pthread_cond_timedwait(&inf->cond, &inf->mu, &ts) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&inf->mu);
    return stopping(inf);
}

static void count(kinf *inf, long *field)
{
    pthread_mutex_lock(&inf->mu);
    (*field)++;
    pthread_mutex_unlock(&inf->mu);
}

/* Watch events. */

static int on_event(kube_event_type t, cJSON *obj, void *ud)
{
    kinf *inf = ud;
    const char *rv = kube_obj_rv(obj);
    char key[512];
    cJSON *cached, *old = NULL, *copy;

    if (t == KUBE_BOOKMARK) {
        set_last_rv(inf, rv);
        return stopping(inf);
    }
    make_key(obj, key, sizeof(key));

    pthread_rwlock_wrlock(&inf->rw);
    cached = sm_get(&inf->objs, key);
    if (t == KUBE_DELETED) {
        if (!cached || kube_rv_cmp(rv, kube_obj_rv(cached)) < 0) {
            pthread_rwlock_unlock(&inf->rw);
            goto dropped;
        }
        old = cache_del(inf, key);
        pthread_rwlock_unlock(&inf->rw);
        set_last_rv(inf, rv);
        count(inf, &inf->stats.events);
        if (inf->h.on_delete)
            inf->h.on_delete(obj, inf->h.ud);
        cJSON_Delete(old);
        return stopping(inf);
    }

    if (cached && kube_rv_cmp(rv, kube_obj_rv(cached)) <= 0) {
        pthread_rwlock_unlock(&inf->rw);
        goto dropped;
    }
    copy = cJSON_Duplicate(obj, 1);
    old = copy ? cache_put(inf, key, copy) : NULL;
    pthread_rwlock_unlock(&inf->rw);
    set_last_rv(inf, rv);
    count(inf, &inf->stats.events);
    if (old && inf->h.on_update)
        inf->h.on_update(old, obj, inf->h.ud);
    else if (!old && inf->h.on_add)
        inf->h.on_add(obj, inf->h.ud);
    cJSON_Delete(old);
    return stopping(inf);

dropped:
    set_last_rv(inf, rv);
    count(inf, &inf->stats.dropped);
    log_msg(LOG_DEBUG, "kinf", "%s: skipped %s %s at %s (stale or "
            "already handled)", inf->resource, kube_event_name(t), key,
            rv ? rv : "?");
    return stopping(inf);
}

/* Relist. */

typedef struct change {
    const cJSON *obj;  /* in the cache, or the deleted object */
    cJSON *old;        /* replaced or deleted object (freed after) */
    int kind;          /* 0 add, 1 update, 2 delete */
} change;

/*
 * Replaces the cache with the items of list (consumed) and returns the
 * changes to report, in list order then deletions.
 */
static change *replace_cache(kinf *inf, cJSON *list, size_t *nch)
{
    cJSON *items = cJSON_GetObjectItemCaseSensitive(list, "items");
    size_t cap = (size_t)cJSON_GetArraySize(items) + inf->objs.n + 1;
    change *ch = calloc(cap, sizeof(*ch));
    smap seen;
    size_t n = 0;
    char key[512];

    if (!ch || sm_init(&seen) < 0) {
        free(ch);
        return NULL;
    }
    pthread_rwlock_wrlock(&inf->rw);
    while (cJSON_IsArray(items) && items->child) {
        cJSON *obj = cJSON_DetachItemViaPointer(items, items->child);
        cJSON *old;

        make_key(obj, key, sizeof(key));
        sm_put(&seen, key, obj);
        old = cache_put(inf, key, obj);
        if (!old) {
            ch[n++] = (change){obj, NULL, 0};
        } else if (kube_rv_cmp(kube_obj_rv(old), kube_obj_rv(obj)) != 0) {
            ch[n++] = (change){obj, old, 1};
        } else {
            cJSON_Delete(old);
        }
    }
    for (size_t i = 0; i < inf->objs.nb; i++) {
        sm_ent *e = inf->objs.b[i], *next;

        for (; e; e = next) {
            next = e->next;
            if (!sm_get(&seen, e->key)) {
                cJSON *old;

                snprintf(key, sizeof(key), "%s", e->key);
                old = cache_del(inf, key);

                ch[n++] = (change){old, old, 2};
            }
        }
    }
    pthread_rwlock_unlock(&inf->rw);
    sm_free(&seen, NULL);
    *nch = n;
    return ch;
}

/* Lists from rv (NULL: most recent). Returns 0, or -1 with e. */
static int relist(kinf *inf, const char *rv, kube_err *e)
{
    kube_ref r = {inf->group, inf->version, inf->resource, inf->ns, NULL,
                  NULL};
    kube_list_opts o = {inf->lsel, inf->fsel, rv, 0};
    cJSON *list;
    const char *lrv;
    change *ch;
    size_t n = 0;
    char rvbuf[64];

    /* The first list may page; a relist after 410 must not (4.5). */
    o.limit = rv && !strcmp(rv, "0") ? inf->c.page_limit : -1;
    count(inf, &inf->stats.lists);
    if (kube_list(inf->k, &r, &o, &list, e) < 0)
        return -1;

    lrv = kube_obj_rv(list);
    snprintf(rvbuf, sizeof(rvbuf), "%s", lrv ? lrv : "");
    ch = replace_cache(inf, list, &n);
    cJSON_Delete(list);
    if (!ch) {
        snprintf(e->message, sizeof(e->message), "out of memory");
        e->code = 0;
        return -1;
    }
    set_last_rv(inf, rvbuf);

    pthread_mutex_lock(&inf->mu);
    inf->synced = 1;
    pthread_cond_broadcast(&inf->cond);
    pthread_mutex_unlock(&inf->mu);

    for (size_t i = 0; i < n; i++) {
        if (ch[i].kind == 0 && inf->h.on_add)
            inf->h.on_add(ch[i].obj, inf->h.ud);
        else if (ch[i].kind == 1 && inf->h.on_update)
            inf->h.on_update(ch[i].old, ch[i].obj, inf->h.ud);
        else if (ch[i].kind == 2 && inf->h.on_delete)
            inf->h.on_delete(ch[i].obj, inf->h.ud);
        cJSON_Delete(ch[i].old);
    }
    free(ch);
    log_msg(LOG_DEBUG, "kinf", "%s: listed at resourceVersion %s, %zu "
            "changes", inf->resource, rvbuf, n);
    return 0;
}

static int watch_timeout(kinf *inf)
{
    if (inf->c.watch_timeout_s > 0)
        return inf->c.watch_timeout_s;
    return 300 + rand() % 300;
}

/* The informer thread: the reflector loop of k8s-api.md 4.5. */
static void *run(void *arg)
{
    kinf *inf = arg;
    kube_ref r = {inf->group, inf->version, inf->resource, inf->ns, NULL,
                  NULL};
    long backoff = inf->c.backoff_ms;
    char rv[64], list_rv[64] = "0";
    int need_list = 1, have_list_rv = 1;
    kube_err e;

    while (!stopping(inf)) {
        if (need_list) {
            if (relist(inf, have_list_rv ? list_rv : NULL, &e) == 0) {
                need_list = 0;
            } else if ((kube_err_expired(&e) || e.code == 504) &&
                       have_list_rv) {
                /* Expired or too large: list the newest state. */
                have_list_rv = 0;
                continue;
            } else {
                count(inf, &inf->stats.errors);
                log_msg(LOG_WARN, "kinf", "listing %s failed (%d %s); "
                        "retrying in %ld ms", inf->resource, e.code,
                        e.message, backoff);
                if (nap(inf, backoff))
                    break;
                backoff = backoff * 2 > inf->c.backoff_max_ms
                              ? inf->c.backoff_max_ms : backoff * 2;
                continue;
            }
        }

        kinf_last_rv(inf, rv, sizeof(rv));
        kube_watch_opts o = {inf->lsel, inf->fsel, rv, 1,
                             watch_timeout(inf), 0, &inf->stop};
        long before = inf->stats.events + inf->stats.dropped;
        struct timespec t0, t1;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        count(inf, &inf->stats.watches);
        int rc = kube_watch(inf->k, &r, &o, on_event, inf, &e);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        int progressed = inf->stats.events + inf->stats.dropped > before;

        if (stopping(inf))
            break;
        if (rc < 0 && kube_err_expired(&e)) {
            count(inf, &inf->stats.expired);
            log_msg(LOG_INFO, "kinf", "watch of %s from %s expired (%s); "
                    "relisting", inf->resource, rv, e.message);
            kinf_last_rv(inf, list_rv, sizeof(list_rv));
            have_list_rv = list_rv[0] != '\0';
            need_list = 1;
            continue;
        }
        if (rc < 0) {
            count(inf, &inf->stats.errors);
            log_msg(LOG_WARN, "kinf", "watch of %s failed (%d %s); "
                    "re-watching in %ld ms", inf->resource, e.code,
                    e.message, backoff);
        }
        if (rc == 0 && (progressed || t1.tv_sec - t0.tv_sec >= 1)) {
            backoff = inf->c.backoff_ms;
            continue; /* a clean end: re-watch from the last RV now */
        }
        if (nap(inf, backoff))
            break;
        backoff = backoff * 2 > inf->c.backoff_max_ms
                      ? inf->c.backoff_max_ms : backoff * 2;
    }
    return NULL;
}

/* API. */

static char *dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

int kinf_new(kube *k, const kinf_config *c, const kinf_handlers *h,
             kinf **out, char *err, size_t errlen)
{
    kinf *inf;

    if (!k || !c || !c->version || !c->resource) {
        snprintf(err, errlen, "informer: version and resource are "
                 "required");
        return -1;
    }
    inf = calloc(1, sizeof(*inf));
    if (!inf || sm_init(&inf->objs) < 0 || sm_init(&inf->owners) < 0) {
        if (inf) {
            sm_free(&inf->objs, NULL);
            free(inf);
        }
        snprintf(err, errlen, "informer %s: out of memory", c->resource);
        return -1;
    }
    inf->k = k;
    inf->c = *c;
    inf->group = strdup(c->group ? c->group : "");
    inf->version = strdup(c->version);
    inf->resource = strdup(c->resource);
    inf->ns = dup_or_null(c->ns);
    inf->lsel = dup_or_null(c->label_selector);
    inf->fsel = dup_or_null(c->field_selector);
    if (inf->c.backoff_ms <= 0)
        inf->c.backoff_ms = 500;
    if (inf->c.backoff_max_ms <= 0)
        inf->c.backoff_max_ms = 30000;
    if (inf->c.page_limit <= 0)
        inf->c.page_limit = 500;
    if (h)
        inf->h = *h;
    pthread_mutex_init(&inf->mu, NULL);
    pthread_cond_init(&inf->cond, NULL);
    pthread_rwlock_init(&inf->rw, NULL);
    *out = inf;
    return 0;
}

int kinf_start(kinf *inf)
{
    if (inf->started)
        return -1;
    if (pthread_create(&inf->th, NULL, run, inf) != 0) {
        log_msg(LOG_ERROR, "kinf", "starting the informer thread for %s "
                "failed", inf->resource);
        return -1;
    }
    inf->started = 1;
    return 0;
}

int kinf_synced(kinf *inf)
{
    int s;

    pthread_mutex_lock(&inf->mu);
    s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

int kinf_wait_synced(kinf *inf, long timeout_ms)
{
    struct timespec ts;
    int s, rc = 0;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (timeout_ms >= 0) {
        ts.tv_sec += timeout_ms / 1000;
        ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&inf->mu);
    while (!inf->synced && !stopping(inf) && rc != ETIMEDOUT) {
        if (timeout_ms < 0)
            pthread_cond_wait(&inf->cond, &inf->mu);
        else
            rc = pthread_cond_timedwait(&inf->cond, &inf->mu, &ts);
    }
    s = inf->synced;
    pthread_mutex_unlock(&inf->mu);
    return s;
}

cJSON *kinf_get(kinf *inf, const char *ns, const char *name)
{
    char key[512];
    cJSON *obj;

    snprintf(key, sizeof(key), "%s/%s", ns ? ns : "", name);
    pthread_rwlock_rdlock(&inf->rw);
    obj = sm_get(&inf->objs, key);
    obj = obj ? cJSON_Duplicate(obj, 1) : NULL;
    pthread_rwlock_unlock(&inf->rw);
    return obj;
}

cJSON *kinf_list(kinf *inf, const char *ns)
{
    cJSON *arr = cJSON_CreateArray();

    pthread_rwlock_rdlock(&inf->rw);
    for (size_t i = 0; arr && i < inf->objs.nb; i++) {
        for (sm_ent *e = inf->objs.b[i]; e; e = e->next) {
            const char *ons = kube_obj_ns(e->val);

            if (ns && strcmp(ns, ons ? ons : ""))
                continue;
            cJSON_AddItemToArray(arr, cJSON_Duplicate(e->val, 1));
        }
    }
    pthread_rwlock_unlock(&inf->rw);
    return arr;
}

cJSON *kinf_by_owner(kinf *inf, const char *uid)
{
    cJSON *arr = cJSON_CreateArray(), *set, *k;

    pthread_rwlock_rdlock(&inf->rw);
    set = uid ? sm_get(&inf->owners, uid) : NULL;
    cJSON_ArrayForEach(k, set) {
        cJSON *obj = sm_get(&inf->objs, k->string);

        if (obj && arr)
            cJSON_AddItemToArray(arr, cJSON_Duplicate(obj, 1));
    }
    pthread_rwlock_unlock(&inf->rw);
    return arr;
}

size_t kinf_count(kinf *inf)
{
    size_t n;

    pthread_rwlock_rdlock(&inf->rw);
    n = inf->objs.n;
    pthread_rwlock_unlock(&inf->rw);
    return n;
}

void kinf_last_rv(kinf *inf, char *buf, size_t buflen)
{
    pthread_mutex_lock(&inf->mu);
    snprintf(buf, buflen, "%s", inf->last_rv);
    pthread_mutex_unlock(&inf->mu);
}

void kinf_get_stats(kinf *inf, kinf_stats *out)
{
    pthread_mutex_lock(&inf->mu);
    *out = inf->stats;
    pthread_mutex_unlock(&inf->mu);
}

void kinf_stop(kinf *inf)
{
    pthread_mutex_lock(&inf->mu);
    __atomic_store_n(&inf->stop, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&inf->cond);
    pthread_mutex_unlock(&inf->mu);
    if (inf->started) {
        pthread_join(inf->th, NULL);
        inf->started = 0;
    }
}

void kinf_free(kinf *inf)
{
    if (!inf)
        return;
    kinf_stop(inf);
    sm_free(&inf->objs, free_json);
    sm_free(&inf->owners, free_keyset);
    pthread_rwlock_destroy(&inf->rw);
    pthread_cond_destroy(&inf->cond);
    pthread_mutex_destroy(&inf->mu);
    free(inf->group);
    free(inf->version);
    free(inf->resource);
    free(inf->ns);
    free(inf->lsel);
    free(inf->fsel);
    free(inf);
}
