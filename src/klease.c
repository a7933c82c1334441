/*
 * klease: one election thread per candidate. Each round reads the Lease,
 * decides whether it may take or keep it, and writes it back with the
 * read resourceVersion so that two candidates never both win a round.
 */
#define _GNU_SOURCE
#include "klease.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

struct klease {
    kube *k;
    klease_config c;
    char *ns, *name, *identity;

    pthread_t th;
    int started, stop, leading;
    pthread_mutex_t mu;
    pthread_cond_t cond;

    char holder[256];      /* last observed holder */
    char *observed;        /* last observed spec, printed */
    int64_t observed_ms;   /* local time it was first seen */
    int64_t renewed_ms;    /* our last successful renewal */
    cJSON *last;           /* last Lease object read or written */
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* RFC 3339 with exactly six fractional digits (MicroTime). */
static void micro_now(char *buf, size_t len)
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%06ldZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
}

static const char *spec_str(const cJSON *lease, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(lease, "spec");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int spec_int(const cJSON *lease, const char *key)
{
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(lease, "spec");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, key);

    return cJSON_IsNumber(v) ? v->valueint : 0;
}

static kube_ref lease_ref(klease *l, int named)
{
    kube_ref r = {"coordination.k8s.io", "v1", "leases", l->ns,
                  named ? l->name : NULL, NULL};

    return r;
}

/* Builds the Lease we want written; prev may be NULL. */
static cJSON *build_lease(klease *l, const cJSON *prev, const char *holder,
                          int duration_s, int taking_over)
{
    cJSON *obj = cJSON_CreateObject(), *meta, *spec;
    const char *rv = prev ? kube_obj_rv(prev) : NULL;
    const char *acq = prev ? spec_str(prev, "acquireTime") : NULL;
    int trans = prev ? spec_int(prev, "leaseTransitions") : 0;
    char now[64];

    micro_now(now, sizeof(now));
    cJSON_AddStringToObject(obj, "apiVersion", "coordination.k8s.io/v1");
    cJSON_AddStringToObject(obj, "kind", "Lease");
    meta = cJSON_AddObjectToObject(obj, "metadata");
    cJSON_AddStringToObject(meta, "name", l->name);
    cJSON_AddStringToObject(meta, "namespace", l->ns);
    if (rv)
        cJSON_AddStringToObject(meta, "resourceVersion", rv);
    spec = cJSON_AddObjectToObject(obj, "spec");
    cJSON_AddStringToObject(spec, "holderIdentity", holder);
    cJSON_AddNumberToObject(spec, "leaseDurationSeconds", duration_s);
    if (taking_over && prev)
        trans++;
    cJSON_AddStringToObject(spec, "acquireTime",
                            taking_over || !acq ? now : acq);
    cJSON_AddStringToObject(spec, "renewTime", now);
    cJSON_AddNumberToObject(spec, "leaseTransitions", trans);
    return obj;
}

static void note_holder(klease *l, const char *holder)
{
    int changed;

    pthread_mutex_lock(&l->mu);
    changed = strcmp(l->holder, holder) != 0;
    if (changed)
        snprintf(l->holder, sizeof(l->holder), "%s", holder);
    pthread_mutex_unlock(&l->mu);
    if (changed) {
        log_msg(LOG_INFO, "klease", "lease %s/%s: holder is now \"%s\"",
                l->ns, l->name, holder);
        if (l->c.on_new_leader)
            l->c.on_new_leader(holder, l->c.ud);
    }
}

/* Remembers what we saw and when it last changed (local clock). */
static void observe(klease *l, cJSON *lease)
{
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(lease, "spec");
    char *s = cJSON_PrintUnformatted(spec);
    const char *h = spec_str(lease, "holderIdentity");

    if (!l->observed || !s || strcmp(s, l->observed)) {
        free(l->observed);
        l->observed = s;
        l->observed_ms = mono_ms();
    } else {
        free(s);
    }
    cJSON_Delete(l->last);
    l->last = lease;
    note_holder(l, h ? h : "");
}

/* One round. Returns 1 when we hold the Lease afterwards, else 0. */
static int try_acquire_or_renew(klease *l)
{
    kube_ref r = lease_ref(l, 1);
    int dur = (int)((l->c.lease_duration_ms + 999) / 1000);
    cJSON *cur = NULL, *want, *got = NULL;
    const char *holder;
    kube_err e;
    int mine;

    if (kube_get(l->k, &r, &cur, &e) < 0) {
        if (!kube_err_not_found(&e)) {
            log_msg(LOG_WARN, "klease", "reading lease %s/%s failed: %d "
                    "%s", l->ns, l->name, e.code, e.message);
            return 0;
        }
        want = build_lease(l, NULL, l->identity, dur, 1);
        r = lease_ref(l, 0);
        if (kube_create(l->k, &r, want, &got, &e) < 0) {
            log_msg(LOG_DEBUG, "klease", "creating lease %s/%s failed: "
                    "%d %s", l->ns, l->name, e.code, e.message);
            cJSON_Delete(want);
            return 0;
        }
        cJSON_Delete(want);
        observe(l, got);
        return 1;
    }

    observe(l, cur);
    holder = spec_str(cur, "holderIdentity");
    mine = holder && !strcmp(holder, l->identity);
    if (holder && *holder && !mine) {
        long ldur = spec_int(cur, "leaseDurationSeconds") * 1000L;

        if (ldur <= 0)
            ldur = l->c.lease_duration_ms;
        if (mono_ms() < l->observed_ms + ldur)
            return 0; /* held and not expired by our clock */
    }

    want = build_lease(l, cur, l->identity, dur, !mine);
    if (kube_update(l->k, &r, want, &got, &e) < 0) {
        log_msg(LOG_DEBUG, "klease", "writing lease %s/%s failed: %d %s",
                l->ns, l->name, e.code, e.message);
        cJSON_Delete(want);
        return 0;
    }
    cJSON_Delete(want);
    observe(l, got);
    return 1;
}

static void set_leading(klease *l, int on)
{
    int was;

    pthread_mutex_lock(&l->mu);
    was = l->leading;
    l->leading = on;
    pthread_mutex_unlock(&l->mu);
    if (was == on)
        return;
    log_msg(LOG_INFO, "klease", "%s %s leading with lease %s/%s",
            l->identity, on ? "started" : "stopped", l->ns, l->name);
    if (on && l->c.on_started_leading)
        l->c.on_started_leading(l->c.ud);
    else if (!on && l->c.on_stopped_leading)
        l->c.on_stopped_leading(l->c.ud);
}

static int nap(klease *l, long ms)
{
    struct timespec ts;
    int stop;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&l->mu);
    while (!l->stop &&
           pthread_cond_timedwait(&l->cond, &l->mu, &ts) != ETIMEDOUT)
        ;
    stop = l->stop;
    pthread_mutex_unlock(&l->mu);
    return stop;
}

/* Gives the Lease up so a follower need not wait for expiry. */
static void release(klease *l)
{
    kube_ref r = lease_ref(l, 1);
    cJSON *want;
    kube_err e;

    if (!l->last)
        return;
    want = build_lease(l, l->last, "", 1, 0);
    if (kube_update(l->k, &r, want, NULL, &e) < 0)
        log_msg(LOG_WARN, "klease", "releasing lease %s/%s failed: %d %s;"
                " followers wait for it to expire", l->ns, l->name,
                e.code, e.message);
    cJSON_Delete(want);
}

static void *run(void *arg)
{
    klease *l = arg;

    do {
        int ok = try_acquire_or_renew(l);
        int64_t now = mono_ms();

        if (ok) {
            l->renewed_ms = now;
            set_leading(l, 1);
        } else if (klease_is_leader(l)) {
            char h[256];

            klease_holder(l, h, sizeof(h));
            /* Someone else holds it, or we could not renew in time. */
            if ((*h && strcmp(h, l->identity)) ||
                now - l->renewed_ms >= l->c.renew_deadline_ms)
                set_leading(l, 0);
        }
    } while (!nap(l, l->c.retry_period_ms));

    if (klease_is_leader(l) && !l->c.no_release)
        release(l);
    set_leading(l, 0);
    return NULL;
}

static char *default_identity(void)
{
    char host[128] = "host", *id;
    unsigned r;
    struct timespec ts;

    gethostname(host, sizeof(host) - 1);
    clock_gettime(CLOCK_REALTIME, &ts);
    r = (unsigned)ts.tv_nsec ^ (unsigned)getpid() * 2654435761u;
    if (asprintf(&id, "%s_%08x", host, r) < 0)
        return NULL;
    return id;
}

int klease_start(kube *k, const klease_config *c, klease **out, char *err,
                 size_t errlen)
{
    klease *l;

    if (!k || !c || !c->name || !*c->name) {
        snprintf(err, errlen, "leader election: a lease name is required");
        return -1;
    }
    l = calloc(1, sizeof(*l));
    if (!l) {
        snprintf(err, errlen, "leader election: out of memory");
        return -1;
    }
    l->k = k;
    l->c = *c;
    if (l->c.lease_duration_ms <= 0)
        l->c.lease_duration_ms = 15000;
    if (l->c.renew_deadline_ms <= 0)
        l->c.renew_deadline_ms = 10000;
    if (l->c.retry_period_ms <= 0)
        l->c.retry_period_ms = 2000;
    l->ns = strdup(c->ns ? c->ns : kube_namespace(k));
    l->name = strdup(c->name);
    l->identity = c->identity ? strdup(c->identity) : default_identity();
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);

    if (l->c.renew_deadline_ms >= l->c.lease_duration_ms)
        log_msg(LOG_WARN, "klease", "lease %s/%s: renew deadline %ld ms is"
                " not below the lease duration %ld ms", l->ns, l->name,
                l->c.renew_deadline_ms, l->c.lease_duration_ms);
    if (pthread_create(&l->th, NULL, run, l) != 0) {
        snprintf(err, errlen, "leader election %s: cannot start thread",
                 l->name);
        klease_free(l);
        return -1;
    }
    l->started = 1;
    *out = l;
    return 0;
}

int klease_is_leader(klease *l)
{
    int v;

    pthread_mutex_lock(&l->mu);
    v = l->leading;
    pthread_mutex_unlock(&l->mu);
    return v;
}

const char *klease_identity(const klease *l)
{
    return l->identity;
}

void klease_holder(klease *l, char *buf, size_t buflen)
{
    pthread_mutex_lock(&l->mu);
    snprintf(buf, buflen, "%s", l->holder);
    pthread_mutex_unlock(&l->mu);
}

void klease_stop(klease *l)
{
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cond);
    pthread_mutex_unlock(&l->mu);
    if (l->started) {
        pthread_join(l->th, NULL);
        l->started = 0;
    }
}

void klease_free(klease *l)
{
    if (!l)
        return;
    klease_stop(l);
    cJSON_Delete(l->last);
    free(l->observed);
    free(l->ns);
    free(l->name);
    free(l->identity);
    pthread_cond_destroy(&l->cond);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
