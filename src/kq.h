/*
 * kq: a rate-limited work queue of string keys ("ns/name"), as a
 * controller uses it between informer handlers and reconcile workers.
 *
 * Rules (client-go workqueue semantics):
 * - A key waiting in the queue is queued once, however often it is added.
 * - A key being processed (handed out by kq_get(), not yet kq_done()) is
 *   never handed to a second worker; adding it meanwhile marks it dirty
 *   and it is queued again when kq_done() is called.
 * - kq_add_after() holds a key back for a delay; the earliest pending
 *   delay for a key wins.
 * - kq_add_rate_limited() delays by the larger of a per-key exponential
 *   backoff (base_delay_ms * 2^failures, capped at max_delay_ms) and an
 *   overall token bucket (qps, burst); kq_forget() resets the key's
 *   failures.
 *
 * All functions are thread-safe. Keys are copied on the way in.
 */
#ifndef ASTER_KQ_H
#define ASTER_KQ_H

#include <stddef.h>

typedef struct kq kq;

typedef struct kq_config {
    long base_delay_ms; /* first rate-limited delay; 0: 5 */
    long max_delay_ms;  /* cap; 0: 1000000 (1000 s, as client-go) */
    double qps;         /* token bucket refill; 0: 10 */
    int burst;          /* bucket size; 0: 100 */
} kq_config;

/* c may be NULL for the defaults. Returns NULL when out of memory. */
kq *kq_new(const kq_config *c);

void kq_add(kq *q, const char *key);
void kq_add_after(kq *q, const char *key, long delay_ms);
void kq_add_rate_limited(kq *q, const char *key);

/* Clears the key's failure count. */
void kq_forget(kq *q, const char *key);

/* How many times the key was rate-limited since the last forget. */
int kq_requeues(kq *q, const char *key);

/*
 * Blocks until a key is ready, marks it processing and returns 0 with a
 * malloc'd copy in *key (the caller frees it after kq_done()). Returns
 * -1 once the queue is shut down (and, when draining, empty).
 */
int kq_get(kq *q, char **key);

/* Ends processing of key; re-queues it if it was added meanwhile. */
void kq_done(kq *q, const char *key);

/* Keys ready now (not processing, not delayed). */
size_t kq_len(kq *q);

/*
 * Worker body: return 0 on success (the key is forgotten) or nonzero to
 * retry it rate-limited. Called on a worker thread; never twice at once
 * for the same key.
 */
typedef int (*kq_fn)(const char *key, void *ud);

/* Starts n worker threads looping kq_get / fn / kq_done. 0 or -1. */
int kq_run(kq *q, int n, kq_fn fn, void *ud);

/*
 * Shuts down: adds are ignored from now on and delayed keys dropped.
 * With drain set, workers finish every key already ready; otherwise only
 * those in hand. Then joins the kq_run() workers. Safe to call twice.
 */
void kq_shutdown(kq *q, int drain);

/* Shuts down (draining) if needed and frees. */
void kq_free(kq *q);

#endif
