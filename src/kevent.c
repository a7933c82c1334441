/*
 * kevent: remembers the Events it created, keyed by (object, type,
 * reason, message), in a bounded list (oldest forgotten first), so that
 * repeats patch count and lastTimestamp. One mutex serialises recording:
 * Events are rare and the count must not race, so a recorder pausing
 * between retries (at most a few seconds) holds the others back.
 *
 * An Event's name is derived from its key. A create whose answer was
 * lost may have been acted on; sending it again under the same name
 * then meets 409 instead of making a second Event.
 */
#define _GNU_SOURCE
#include "kevent.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
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
    int retries;
    long retry_ms;   /* first pause; doubles */
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
    ev->retries = c && c->retries ? c->retries : 4;
    if (ev->retries < 0)
        ev->retries = 0;
    ev->retry_ms = c && c->retry_base_ms > 0 ? c->retry_base_ms : 100;
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

/* Returns the new series (the most recent), or NULL out of memory. */
static series *remember(kevent *ev, const char *key, const char *name,
                        const char *ns, int count)
{
    series *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->key = strdup(key);
    s->name = strdup(name);
    s->ns = strdup(ns);
    s->count = count;
    s->next = ev->head;
    ev->head = s;
    if (++ev->n > ev->max) {
        series *last = ev->head;

        while (last->next)
            last = last->next;
        forget(ev, last);
    }
    return s;
}

/* No answer, throttled, or a server error: worth another attempt. */
static int transient(const kube_err *e)
{
    return e->code == 0 || e->code == 429 || e->code >= 500;
}

/*
 * Whether attempt (0 for the first) may be followed by another after e;
 * if so, pauses first.
 */
static int again(kevent *ev, int attempt, const kube_err *e,
                 const char *what, const char *name)
{
    long ms = ev->retry_ms;
    struct timespec ts;

    if (!transient(e) || attempt >= ev->retries)
        return 0;
    for (int i = 0; i < attempt && ms < 2000; i++)
        ms *= 2;
    if (ms > 2000)
        ms = 2000;
    log_msg(LOG_DEBUG, "kevent", "%s event %s answered %d (%s); retrying "
            "in %ld ms", what, name, e->code, e->message, ms);
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
    return 1;
}

/* The count of the Event ns/name into *count. 0, or -1 with e. */
static int read_count(kevent *ev, const char *ns, const char *name,
                      int *count, kube_err *e)
{
    kube_ref r = {"", "v1", "events", ns, name, NULL};
    cJSON *obj = NULL;
    const cJSON *n;

    if (kube_get(ev->k, &r, &obj, e) < 0)
        return -1;
    n = cJSON_GetObjectItemCaseSensitive(obj, "count");
    *count = cJSON_IsNumber(n) && n->valueint > 0 ? n->valueint : 1;
    cJSON_Delete(obj);
    return 0;
}

static int patch_count(kevent *ev, const series *s, kube_err *e)
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
    return rc;
}

/*
 * A repeat: bumps count and lastTimestamp. The patch sets the count
 * rather than adding to it, so one acted on but answered 5xx can be
 * sent again. A 409 means another writer moved the Event: its count is
 * read again first. 0, or -1 with e.
 */
static int bump(kevent *ev, series *s, kube_err *e)
{
    for (int attempt = 0;; attempt++) {
        int seen;

        if (patch_count(ev, s, e) == 0) {
            s->count++;
            return 0;
        }
        if (kube_err_conflict(e) && attempt < ev->retries &&
            read_count(ev, s->ns, s->name, &seen, e) == 0) {
            if (seen > s->count)
                s->count = seen;
            continue;
        }
        if (!again(ev, attempt, e, "patching", s->name))
            return -1;
    }
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

/*
 * "<object>.<16 hex of an FNV-1a hash of the key>": the same name for
 * the same series, in this process and the next. The object's name is
 * cut so the whole stays within 253 characters.
 */
static void series_name(char *buf, size_t len, const char *oname,
                        const char *key)
{
    uint64_t h = 0xcbf29ce484222325ULL;

    for (const char *c = key; *c; c++) {
        h ^= (unsigned char)*c;
        h *= 0x100000001b3ULL;
    }
    snprintf(buf, len, "%.236s.%016llx", oname, (unsigned long long)h);
}

/*
 * The series has an Event that this recorder did not make (an earlier
 * process, or one forgotten from the list): take its count and bump it.
 */
static int adopt(kevent *ev, const char *key, const char *name,
                 const char *ns, kube_err *e)
{
    series *s;
    int count, rc;

    if (read_count(ev, ns, name, &count, e) < 0)
        return -1;
    s = remember(ev, key, name, ns, count);
    if (!s) {
        e->code = 0;
        snprintf(e->message, sizeof(e->message), "out of memory");
        return -1;
    }
    rc = bump(ev, s, e);
    if (rc < 0 && kube_err_not_found(e))
        forget(ev, s);
    return rc;
}

/*
 * Creates the first Event of a series, sending it again after transient
 * failures. A 409 after an attempt without a clear answer is that
 * attempt's Event: recorded. A 409 at the first attempt is an Event made
 * before: adopted. 0, or -1 with e.
 */
static int create(kevent *ev, const cJSON *obj, const char *key,
                  const char *ns, const char *type, const char *reason,
                  const char *message, kube_err *e)
{
    kube_ref r = {"", "v1", "events", ns, NULL, NULL};
    char name[320];
    cJSON *body;
    int rc, unclear = 0;

    series_name(name, sizeof(name), kube_obj_name(obj), key);
    body = build(ev, obj, ns, name, type, reason, message);
    for (int attempt = 0;; attempt++) {
        rc = kube_create(ev->k, &r, body, NULL, e);
        if (rc == 0 || !again(ev, attempt, e, "creating", name))
            break;
        unclear = 1;
    }
    cJSON_Delete(body);

    if (rc == 0 || (unclear && kube_err_conflict(e))) {
        if (rc != 0)
            log_msg(LOG_DEBUG, "kevent", "event %s already there after a "
                    "retried create; counted as recorded", name);
        remember(ev, key, name, ns, 1);
        return 0;
    }
    if (kube_err_conflict(e))
        return adopt(ev, key, name, ns, e);
    return -1;
}

int kevent_record(kevent *ev, const cJSON *obj, const char *type,
                  const char *reason, const char *message, kube_err *e)
{
    const char *oname = kube_obj_name(obj), *ons = kube_obj_ns(obj);
    const char *uid = kube_obj_uid(obj);
    char *key = NULL;
    series *s;
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

    rc = create(ev, obj, key, ons, type, reason, message, e);
    if (rc == 0)
        goto done;

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
