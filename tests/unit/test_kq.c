/*
 * kq: dedup, one key on one worker at a time, delays in order, backoff
 * growth and the token bucket.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "kq.h"

static long now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void test_dedup(void **state)
{
    kq *q = kq_new(NULL);
    char *k;

    for (int i = 0; i < 5; i++) {
        kq_add(q, "ns/a");
        kq_add(q, "ns/b");
    }
    assert_int_equal(kq_len(q), 2);
    assert_int_equal(kq_get(q, &k), 0);
    assert_string_equal(k, "ns/a");

    /* Re-added while processing: not handed out until done. */
    kq_add(q, "ns/a");
    assert_int_equal(kq_len(q), 1);
    kq_done(q, k);
    assert_int_equal(kq_len(q), 2);
    free(k);

    assert_int_equal(kq_get(q, &k), 0);
    assert_string_equal(k, "ns/b");
    kq_done(q, k);
    free(k);
    assert_int_equal(kq_get(q, &k), 0);
    assert_string_equal(k, "ns/a");
    kq_done(q, k);
    free(k);
    assert_int_equal(kq_len(q), 0);
    kq_free(q);
}

static void test_add_after_order(void **state)
{
    kq *q = kq_new(NULL);
    long t0 = now_ms();
    char *k;

    kq_add_after(q, "late", 150);
    kq_add_after(q, "early", 50);
    kq_add_after(q, "late", 400); /* the earlier due time wins */
    assert_int_equal(kq_len(q), 0);

    assert_int_equal(kq_get(q, &k), 0);
    assert_string_equal(k, "early");
    assert_true(now_ms() - t0 >= 45);
    kq_done(q, k);
    free(k);
    assert_int_equal(kq_get(q, &k), 0);
    assert_string_equal(k, "late");
    assert_true(now_ms() - t0 >= 145);
    assert_true(now_ms() - t0 < 390);
    kq_done(q, k);
    free(k);
    kq_free(q);
}

static void test_backoff_and_forget(void **state)
{
    kq_config c = {.base_delay_ms = 20, .max_delay_ms = 80, .qps = 1000,
                   .burst = 1000};
    kq *q = kq_new(&c);
    long want[] = {20, 40, 80, 80};
    char *k;

    for (int i = 0; i < 4; i++) {
        long t0 = now_ms(), dt;

        kq_add_rate_limited(q, "x");
        assert_int_equal(kq_requeues(q, "x"), i + 1);
        assert_int_equal(kq_get(q, &k), 0);
        dt = now_ms() - t0;
        assert_true(dt >= want[i] - 5);
        assert_true(dt < want[i] + 60);
        kq_done(q, k);
        free(k);
    }
    kq_forget(q, "x");
    assert_int_equal(kq_requeues(q, "x"), 0);
    kq_free(q);
}

static void test_token_bucket(void **state)
{
    /* Burst 5 at 50 qps: 5 keys at once, then one per 20 ms. */
    kq_config c = {.base_delay_ms = 1, .max_delay_ms = 1, .qps = 50,
                   .burst = 5};
    kq *q = kq_new(&c);
    long t0 = now_ms(), last = 0;
    char key[16], *k;

    for (int i = 0; i < 15; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        kq_add_rate_limited(q, key);
    }
    for (int i = 0; i < 15; i++) {
        assert_int_equal(kq_get(q, &k), 0);
        last = now_ms() - t0;
        kq_done(q, k);
        free(k);
    }
    /* 10 keys beyond the burst need about 200 ms of tokens. */
    assert_true(last >= 180);
    assert_true(last < 600);
    kq_free(q);
}

/* Concurrency: a per-key in-progress flag must never be seen set. */
#define NKEYS 16

typedef struct conc {
    pthread_mutex_t mu;
    int busy[NKEYS];
    int clash;
    long handled;
} conc;

static int on_work(const char *key, void *ud)
{
    conc *c = ud;
    int i = atoi(key + 1);
    int was;

    pthread_mutex_lock(&c->mu);
    was = c->busy[i];
    c->busy[i] = 1;
    if (was)
        c->clash++;
    c->handled++;
    pthread_mutex_unlock(&c->mu);

    usleep(200);

    pthread_mutex_lock(&c->mu);
    c->busy[i] = 0;
    pthread_mutex_unlock(&c->mu);
    return c->handled % 7 == 0; /* some fail and come back later */
}

static void test_no_key_on_two_workers(void **state)
{
    kq_config cfg = {.base_delay_ms = 1, .max_delay_ms = 4, .qps = 1e6,
                     .burst = 1000000};
    kq *q = kq_new(&cfg);
    conc c = {.mu = PTHREAD_MUTEX_INITIALIZER};
    char key[16];

    assert_int_equal(kq_run(q, 6, on_work, &c), 0);
    for (int round = 0; round < 400; round++) {
        for (int i = 0; i < NKEYS; i++) {
            snprintf(key, sizeof(key), "k%d", i);
            kq_add(q, key);
        }
        if (round % 50 == 0)
            usleep(1000);
    }
    usleep(100000);
    kq_shutdown(q, 1);
    assert_int_equal(c.clash, 0);
    assert_true(c.handled >= NKEYS);
    kq_free(q);
}

static void test_shutdown_drains(void **state)
{
    kq *q = kq_new(NULL);
    char *k;
    int n = 0;

    kq_add(q, "a");
    kq_add(q, "b");
    kq_add_after(q, "never", 10000);
    kq_shutdown(q, 1);
    kq_add(q, "ignored");
    while (kq_get(q, &k) == 0) {
        n++;
        kq_done(q, k);
        free(k);
    }
    assert_int_equal(n, 2);
    kq_free(q);

    q = kq_new(NULL);
    kq_add(q, "a");
    kq_shutdown(q, 0);
    assert_int_equal(kq_get(q, &k), -1);
    kq_free(q);
}

/* A blocked kq_get() returns when the queue shuts down. */
static void *getter(void *arg)
{
    char *k;

    return (void *)(long)kq_get(arg, &k);
}

static void test_shutdown_wakes(void **state)
{
    kq *q = kq_new(NULL);
    pthread_t th;
    void *rc;

    pthread_create(&th, NULL, getter, q);
    usleep(50000);
    kq_shutdown(q, 1);
    pthread_join(th, &rc);
    assert_int_equal((long)rc, -1);
    kq_free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dedup),
        cmocka_unit_test(test_add_after_order),
        cmocka_unit_test(test_backoff_and_forget),
        cmocka_unit_test(test_token_bucket),
        cmocka_unit_test(test_no_key_on_two_workers),
        cmocka_unit_test(test_shutdown_drains),
        cmocka_unit_test(test_shutdown_wakes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
