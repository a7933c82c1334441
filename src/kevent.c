/*
 * kevent: remembers the Events it created, keyed by (object, type,
 * reason, message), in a bounded list (oldest forgotten first), so that
 * repeats patch count and lastTimestamp. One mutex serialises recording:
 * Events are rare and the count must not race.
 */
#define _GNU_SOURCE
#include "kevent.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

typedef struct series {
    char *key;       /* object + type + reason + message */
    char *name;      /* Event name */
    char *ns;
    int count;
    struct series *next;
} series;

struct kevent {
    kube *k;
    char *component, *instance;
    size_t max, n;
    series *head;    /* most recent first */
    pthread_mutex_t mu;
};

kevent *kevent_new(kube *k, const kevent_config *c)
{
    kevent *ev = calloc(1, sizeof(*ev));
    char host[128] = "";

    if (!ev)
        return NULL;
    gethostname(host, sizeof(host) - 1);
    ev->k = k;
    ev->component = strdup(c && c->component ? c->component
                                             : "astertower");
    ev->instance = strdup(c && c->instance ? c->instance : host);
    ev->max = c && c->max_cache ? c->max_cache : 4096;
    pthread_mutex_init(&ev->mu, NULL);
    return ev;
}

static void series_free(series *s)
{
    free(s->key);
    free(s->name);
    free(s->ns);
    free(s);
}

void kevent_free(kevent *ev)
{
    if (!ev)
        return;
    while (ev->head) {
        series *s = ev->head;

        ev->head = s->next;
        series_free(s);
    }
    pthread_mutex_destroy(&ev->mu);
    free(ev->component);
    free(ev->instance);
    free(ev);
}

static void stamp(char *buf, size_t len)
{
    time_t t = time(NULL);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *str_at(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static series *find(kevent *ev, const char *key)
{
    for (series *s = ev->head; s; s = s->next)
        if (!strcmp(s->key, key))
            return s;
    return NULL;
}

static void forget(kevent *ev, series *gone)
{
    series **pp;

    for (pp = &ev->head; *pp; pp = &(*pp)->next) {
        if (*pp == gone) {
            *pp = gone->next;
            series_free(gone);
            ev->n--;
            return;
        }
    }
}

static void remember(kevent *ev, const char *key, const char *name,
                     const char *ns)
{
    series *s = calloc(1, sizeof(*s));

    if (!s)
        return;
    s->key = strdup(key);
    s->name = strdup(name);
    s->ns = strdup(ns);
    s->count = 1;
    s->next = ev->head;
    ev->head = s;
    if (++ev->n > ev->max) {
        series *last = ev->head;

        while (last->next)
            last = last->next;
        forget(ev, last);
    }
}

/* A repeat: bumps count and lastTimestamp. 0, or -1 with e. */
static int bump(kevent *ev, series *s, kube_err *e)
{
    kube_ref r = {"", "v1", "events", s->ns, s->name, NULL};
    cJSON *p = cJSON_CreateObject();
    char now[64];
    int rc;

    stamp(now, sizeof(now));
    cJSON_AddNumberToObject(p, "count", s->count + 1);
    cJSON_AddStringToObject(p, "lastTimestamp", now);
    rc = kube_patch(ev->k, &r, KUBE_PATCH_MERGE, p, NULL, 0, NULL, e);
    cJSON_Delete(p);
    if (rc == 0)
        s->count++;
    return rc;
}

static cJSON *build(kevent *ev, const cJSON *obj, const char *ns,
                    const char *name, const char *type, const char *reason,
                    const char *message)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    cJSON *e = cJSON_CreateObject(), *m, *io, *src;
    char now[64];

    stamp(now, sizeof(now));
    cJSON_AddStringToObject(e, "apiVersion", "v1");
    cJSON_AddStringToObject(e, "kind", "Event");
    m = cJSON_AddObjectToObject(e, "metadata");
    cJSON_AddStringToObject(m, "name", name);
    cJSON_AddStringToObject(m, "namespace", ns);

    io = cJSON_AddObjectToObject(e, "involvedObject");
    static const char *const top[] = {"apiVersion", "kind"};
    static const char *const fromMeta[] = {"name", "namespace", "uid",
                                           "resourceVersion"};
    for (int i = 0; i < 2; i++)
        if (str_at(obj, top[i]))
            cJSON_AddStringToObject(io, top[i], str_at(obj, top[i]));
    for (int i = 0; i < 4; i++)
        if (str_at(meta, fromMeta[i]))
            cJSON_AddStringToObject(io, fromMeta[i],
                                    str_at(meta, fromMeta[i]));

    cJSON_AddStringToObject(e, "reason", reason);
    cJSON_AddStringToObject(e, "message", message);
    cJSON_AddStringToObject(e, "type", type);
    src = cJSON_AddObjectToObject(e, "source");
    cJSON_AddStringToObject(src, "component", ev->component);
    cJSON_AddStringToObject(e, "firstTimestamp", now);
    cJSON_AddStringToObject(e, "lastTimestamp", now);
    cJSON_AddNumberToObject(e, "count", 1);
    cJSON_AddStringToObject(e, "reportingComponent", ev->component);
    cJSON_AddStringToObject(e, "reportingInstance", ev->instance);
    return e;
}

int kevent_record(kevent *ev, const cJSON *obj, const char *type,
                  const char *reason, const char *message, kube_err *e)
{
    const char *oname = kube_obj_name(obj), *ons = kube_obj_ns(obj);
    const char *uid = kube_obj_uid(obj);
    char *key = NULL, name[320];
    kube_ref r = {"", "v1", "events", NULL, NULL, NULL};
    struct timespec ts;
    series *s;
    cJSON *body;
    kube_err local;
    int rc = -1;

    if (!e)
        e = &local;

    if (!oname || !type || !reason || !message) {
        e->code = 0;
        e->reason[0] = '\0';
        snprintf(e->message, sizeof(e->message), "event: the object has "
                 "no name, or type, reason or message is missing");
        return -1;
    }
    if (!ons || !*ons)
        ons = "default";
    if (asprintf(&key, "%s\n%s\n%s\n%s\n%s\n%s", uid ? uid : "", ons,
                 oname, type, reason, message) < 0)
        return -1;

    pthread_mutex_lock(&ev->mu);
    s = find(ev, key);
    if (s) {
        if (bump(ev, s, e) == 0) {
            rc = 0;
            goto done;
        }
        if (!kube_err_not_found(e))
            goto failed;
        forget(ev, s); /* gone (expired): start a new series */
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(name, sizeof(name), "%s.%llx", oname,
             (unsigned long long)ts.tv_sec * 1000000000ULL +
                 (unsigned long long)ts.tv_nsec);
    body = build(ev, obj, ons, name, type, reason, message);
    r.ns = ons;
    rc = kube_create(ev->k, &r, body, NULL, e);
    cJSON_Delete(body);
    if (rc == 0) {
        remember(ev, key, name, ons);
        goto done;
    }

failed:
    log_msg(LOG_WARN, "kevent", "recording event %s for %s/%s failed: %d "
            "%s; dropped", reason, ons, oname, e->code, e->message);
done:
    pthread_mutex_unlock(&ev->mu);
    free(key);
    return rc;
}

int kevent_recordf(kevent *ev, const cJSON *obj, const char *type,
                   const char *reason, kube_err *e, const char *fmt, ...)
{
    va_list ap;
    char msg[1024];

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return kevent_record(ev, obj, type, reason, msg, e);
}
