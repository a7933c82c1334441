/*
 * kq: keys live in a hash table of entries carrying their state (ready,
 * processing, dirty, delayed, failures). Ready entries form a FIFO;
 * delayed ones a list scanned by whoever waits in kq_get(), which sleeps
 * until the earliest due time. One mutex guards everything.
 */
#define _GNU_SOURCE
#include "kq.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define KQ_BUCKETS 4096

typedef struct kq_entry {
    char *key;
    struct kq_entry *hnext;          /* hash chain */
    struct kq_entry *qnext;          /* ready FIFO */
    struct kq_entry *dprev, *dnext;  /* delayed list */
    int queued, processing, dirty, delayed;
    int failures;
    int64_t due_ms;
} kq_entry;

struct kq {
    kq_config c;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    kq_entry *buckets[KQ_BUCKETS];
    kq_entry *head, *tail;           /* ready FIFO */
    kq_entry *delayed;
    size_t nready;
    int shutdown, drain;

    double tokens;                   /* token bucket */
    int64_t refill_ms;

    pthread_t *workers;
    int nworkers;
    kq_fn fn;
    void *ud;
};

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static unsigned hash_key(const char *s)
{
    unsigned h = 2166136261u;

    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % KQ_BUCKETS;
}

static kq_entry *find(kq *q, const char *key, int create)
{
    unsigned b = hash_key(key);
    kq_entry *e;

    for (e = q->buckets[b]; e; e = e->hnext)
        if (!strcmp(e->key, key))
            return e;
    if (!create)
        return NULL;
    e = calloc(1, sizeof(*e));
    if (!e || !(e->key = strdup(key))) {
        free(e);
        log_msg(LOG_ERROR, "kq", "out of memory adding key %s; dropped",
                key);
        return NULL;
    }
    e->hnext = q->buckets[b];
    q->buckets[b] = e;
    return e;
}

/* Frees e when nothing refers to it any more. */
static void maybe_drop(kq *q, kq_entry *e)
{
    kq_entry **pp;

    if (e->queued || e->processing || e->delayed || e->failures)
        return;
    for (pp = &q->buckets[hash_key(e->key)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == e) {
            *pp = e->hnext;
            break;
        }
    }
    free(e->key);
    free(e);
}

static void push_ready(kq *q, kq_entry *e)
{
    e->queued = 1;
    e->qnext = NULL;
    if (q->tail)
        q->tail->qnext = e;
    else
        q->head = e;
    q->tail = e;
    q->nready++;
    pthread_cond_signal(&q->cond);
}

static void undelay(kq *q, kq_entry *e)
{
    if (!e->delayed)
        return;
    if (e->dprev)
        e->dprev->dnext = e->dnext;
    else
        q->delayed = e->dnext;
    if (e->dnext)
        e->dnext->dprev = e->dprev;
    e->dprev = e->dnext = NULL;
    e->delayed = 0;
}

/* The add rule, with the lock held. */
static void add_locked(kq *q, kq_entry *e)
{
    if (e->processing)
        e->dirty = 1;
    else if (!e->queued)
        push_ready(q, e);
}

kq *kq_new(const kq_config *c)
{
    kq *q = calloc(1, sizeof(*q));

    if (!q)
        return NULL;
    if (c)
        q->c = *c;
    if (q->c.base_delay_ms <= 0)
        q->c.base_delay_ms = 5;
    if (q->c.max_delay_ms <= 0)
        q->c.max_delay_ms = 1000000;
    if (q->c.qps <= 0)
        q->c.qps = 10;
    if (q->c.burst <= 0)
        q->c.burst = 100;
    q->tokens = q->c.burst;
    q->refill_ms = now_ms();
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    return q;
}

void kq_add(kq *q, const char *key)
{
    kq_entry *e;

    pthread_mutex_lock(&q->lock);
    if (!q->shutdown && (e = find(q, key, 1)))
        add_locked(q, e);
    pthread_mutex_unlock(&q->lock);
}

static void add_after_locked(kq *q, const char *key, long delay_ms)
{
    int64_t due = now_ms() + delay_ms;
    kq_entry *e;

    if (q->shutdown || !(e = find(q, key, 1)))
        return;
    if (delay_ms <= 0) {
        add_locked(q, e);
        return;
    }
    if (e->delayed && e->due_ms <= due)
        return;
    if (!e->delayed) {
        e->delayed = 1;
        e->dprev = NULL;
        e->dnext = q->delayed;
        if (q->delayed)
            q->delayed->dprev = e;
        q->delayed = e;
    }
    e->due_ms = due;
    /* A sleeper may now have to wake earlier. */
    pthread_cond_broadcast(&q->cond);
}

void kq_add_after(kq *q, const char *key, long delay_ms)
{
    pthread_mutex_lock(&q->lock);
    add_after_locked(q, key, delay_ms);
    pthread_mutex_unlock(&q->lock);
}

/* Takes a token; returns how long to wait for it to exist, in ms. */
static long bucket_reserve(kq *q)
{
    int64_t now = now_ms();

    q->tokens += (double)(now - q->refill_ms) * q->c.qps / 1000.0;
    if (q->tokens > q->c.burst)
        q->tokens = q->c.burst;
    q->refill_ms = now;
    q->tokens -= 1.0;
    if (q->tokens >= 0)
        return 0;
    return (long)(-q->tokens * 1000.0 / q->c.qps + 0.999);
}

void kq_add_rate_limited(kq *q, const char *key)
{
    kq_entry *e;
    long d, b;

    pthread_mutex_lock(&q->lock);
    if (q->shutdown || !(e = find(q, key, 1))) {
        pthread_mutex_unlock(&q->lock);
        return;
    }
    d = q->c.base_delay_ms;
    for (int i = 0; i < e->failures && d < q->c.max_delay_ms; i++)
        d *= 2;
    if (d > q->c.max_delay_ms)
        d = q->c.max_delay_ms;
    e->failures++;
    b = bucket_reserve(q);
    add_after_locked(q, key, d > b ? d : b);
    pthread_mutex_unlock(&q->lock);
}

void kq_forget(kq *q, const char *key)
{
    kq_entry *e;

    pthread_mutex_lock(&q->lock);
    if ((e = find(q, key, 0))) {
        e->failures = 0;
        maybe_drop(q, e);
    }
    pthread_mutex_unlock(&q->lock);
}

int kq_requeues(kq *q, const char *key)
{
    kq_entry *e;
    int n = 0;

    pthread_mutex_lock(&q->lock);
    if ((e = find(q, key, 0)))
        n = e->failures;
    pthread_mutex_unlock(&q->lock);
    return n;
}

/* Moves due delayed keys to the ready FIFO; returns the next due time
   (0 when none is waiting). */
static int64_t promote_due(kq *q)
{
    int64_t now = now_ms(), next = 0;
    kq_entry *e = q->delayed, *n;

    for (; e; e = n) {
        n = e->dnext;
        if (e->due_ms <= now) {
            undelay(q, e);
            add_locked(q, e);
        } else if (!next || e->due_ms < next) {
            next = e->due_ms;
        }
    }
    return next;
}

static void wait_until(kq *q, int64_t due_ms)
{
    struct timespec ts;
    int64_t left;

    if (!due_ms) {
        pthread_cond_wait(&q->cond, &q->lock);
        return;
    }
    left = due_ms - now_ms();
    if (left <= 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += left / 1000;
    ts.tv_nsec += (left % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&q->cond, &q->lock, &ts);
}

int kq_get(kq *q, char **key)
{
    kq_entry *e;
    int rc = -1;

    *key = NULL;
    pthread_mutex_lock(&q->lock);
    for (;;) {
        int64_t next = q->shutdown ? 0 : promote_due(q);

        if (q->head && (!q->shutdown || q->drain)) {
            e = q->head;
            q->head = e->qnext;
            if (!q->head)
                q->tail = NULL;
            q->nready--;
            e->queued = 0;
            e->processing = 1;
            e->dirty = 0;
            *key = strdup(e->key);
            rc = *key ? 0 : -1;
            break;
        }
        if (q->shutdown)
            break;
        wait_until(q, next);
    }
    pthread_mutex_unlock(&q->lock);
    return rc;
}

void kq_done(kq *q, const char *key)
{
    kq_entry *e;

    pthread_mutex_lock(&q->lock);
    e = find(q, key, 0);
    if (e && e->processing) {
        e->processing = 0;
        if (e->dirty && (!q->shutdown || q->drain)) {
            e->dirty = 0;
            push_ready(q, e);
        }
        e->dirty = 0;
        maybe_drop(q, e);
    }
    pthread_mutex_unlock(&q->lock);
}

size_t kq_len(kq *q)
{
    size_t n;

    pthread_mutex_lock(&q->lock);
    if (!q->shutdown)
        promote_due(q);
    n = q->nready;
    pthread_mutex_unlock(&q->lock);
    return n;
}

static void *worker_main(void *arg)
{
    kq *q = arg;
    char *key;

    while (kq_get(q, &key) == 0) {
        if (q->fn(key, q->ud) == 0)
            kq_forget(q, key);
        else
            kq_add_rate_limited(q, key);
        kq_done(q, key);
        free(key);
    }
    return NULL;
}

int kq_run(kq *q, int n, kq_fn fn, void *ud)
{
    pthread_t *w;

    if (n <= 0 || !fn || q->workers)
        return -1;
    w = calloc((size_t)n, sizeof(*w));
    if (!w)
        return -1;
    q->fn = fn;
    q->ud = ud;
    q->workers = w;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&w[i], NULL, worker_main, q) != 0) {
            log_msg(LOG_ERROR, "kq", "starting worker %d of %d failed; "
                    "running with %d", i + 1, n, i);
            break;
        }
        q->nworkers++;
    }
    return q->nworkers > 0 ? 0 : -1;
}

void kq_shutdown(kq *q, int drain)
{
    pthread_mutex_lock(&q->lock);
    if (!q->shutdown) {
        q->shutdown = 1;
        q->drain = drain;
        while (q->delayed) {
            kq_entry *e = q->delayed;

            undelay(q, e);
            maybe_drop(q, e);
        }
    }
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);

    for (int i = 0; i < q->nworkers; i++)
        pthread_join(q->workers[i], NULL);
    q->nworkers = 0;
}

void kq_free(kq *q)
{
    if (!q)
        return;
    kq_shutdown(q, 1);
    for (int b = 0; b < KQ_BUCKETS; b++) {
        kq_entry *e = q->buckets[b], *n;

        for (; e; e = n) {
            n = e->hnext;
            free(e->key);
            free(e);
        }
    }
    free(q->workers);
    pthread_cond_destroy(&q->cond);
    pthread_mutex_destroy(&q->lock);
    free(q);
}
