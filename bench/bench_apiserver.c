/*
 * bench_apiserver: throughput and watch latency of the fake apiserver.
 *
 *   bench_apiserver [SECONDS] [CLIENTS]
 *
 * Starts the server in-process (plain HTTP, no simulated cluster) and
 * drives it over HTTP with libcurl, one keep-alive connection per client
 * thread: requests per second for get, list (100 ConfigMaps) and update
 * (PUT), then the latency from a PUT to the MODIFIED event on an open
 * watch stream (median and p99 of 1000 writes). Prints one line per
 * measurement.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "apisrv.h"

#define NOBJ 100
#define NLAT 1000

typedef enum op { OP_GET, OP_LIST, OP_PUT } op;

typedef struct worker {
    const char *base;
    op kind;
    int id;
    double until;
    long done, failed;
} worker;

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static size_t on_discard(char *p, size_t sz, size_t n, void *ud)
{
    return sz * n;
}

static CURL *client(void)
{
    CURL *c = curl_easy_init();

    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_discard);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
    return c;
}

static int request(CURL *c, const char *method, const char *url,
                   const char *body, struct curl_slist *hdrs)
{
    long code = 0;

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    if (strcmp(method, "GET") == 0)
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    if (curl_easy_perform(c) != CURLE_OK)
        return 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    return (int)code;
}

static const char *cm_url(const char *base, char *buf, size_t len, int i)
{
    snprintf(buf, len, "%s/api/v1/namespaces/default/configmaps/cm-%d",
             base, i);
    return buf;
}

static char *cm_body(int i, long seq)
{
    char *b = NULL;

    if (asprintf(&b, "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\","
                 "\"metadata\":{\"name\":\"cm-%d\",\"annotations\":"
                 "{\"seq\":\"%ld\"}},\"data\":{\"k\":\"v%ld\"}}", i, seq,
                 seq) < 0)
        return NULL;
    return b;
}

static void *worker_main(void *ud)
{
    worker *w = ud;
    CURL *c = client();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: "
                                             "application/json");
    char url[256];

    while (now_s() < w->until) {
        int code;

        if (w->kind == OP_GET) {
            code = request(c, "GET", cm_url(w->base, url, sizeof(url),
                                            w->id), NULL, NULL);
        } else if (w->kind == OP_LIST) {
            snprintf(url, sizeof(url), "%s/api/v1/namespaces/default/"
                     "configmaps", w->base);
            code = request(c, "GET", url, NULL, NULL);
        } else {
            char *b = cm_body(w->id, w->done);

            code = request(c, "PUT", cm_url(w->base, url, sizeof(url),
                                            w->id), b, h);
            free(b);
        }
        if (code == 200)
            w->done++;
        else
            w->failed++;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static void run_phase(const char *base, op kind, const char *name,
                      double secs, int clients)
{
    worker ws[64];
    pthread_t ts[64];
    double t0 = now_s();
    long done = 0, failed = 0;

    for (int i = 0; i < clients; i++) {
        ws[i] = (worker){base, kind, i, t0 + secs, 0, 0};
        pthread_create(&ts[i], NULL, worker_main, &ws[i]);
    }
    for (int i = 0; i < clients; i++) {
        pthread_join(ts[i], NULL);
        done += ws[i].done;
        failed += ws[i].failed;
    }
    printf("%-28s %9.0f req/s  (%ld ok, %ld failed, %d clients)\n", name,
           done / (now_s() - t0), done, failed, clients);
}

/* ---- watch latency ---- */

typedef struct watch_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long last_seq;
    int stop;
    char *line;
    size_t len;
} watch_state;

static size_t on_watch(char *p, size_t sz, size_t n, void *ud)
{
    watch_state *ws = ud;
    size_t total = sz * n;

    ws->line = realloc(ws->line, ws->len + total + 1);
    memcpy(ws->line + ws->len, p, total);
    ws->len += total;
    ws->line[ws->len] = '\0';
    for (char *nl; (nl = strchr(ws->line, '\n'));) {
        char *seq = strstr(ws->line, "\"seq\":\"");

        if (seq && seq < nl) {
            pthread_mutex_lock(&ws->mu);
            ws->last_seq = atol(seq + 7);
            pthread_cond_signal(&ws->cv);
            pthread_mutex_unlock(&ws->mu);
        }
        ws->len -= (size_t)(nl + 1 - ws->line);
        memmove(ws->line, nl + 1, ws->len + 1);
    }
    return total;
}

static int on_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c,
                       curl_off_t d)
{
    watch_state *ws = ud;
    int stop;

    pthread_mutex_lock(&ws->mu);
    stop = ws->stop;
    pthread_mutex_unlock(&ws->mu);
    return stop;
}

typedef struct watch_arg {
    const char *base;
    watch_state *ws;
} watch_arg;

static void *watch_main(void *ud)
{
    watch_arg *wa = ud;
    CURL *c = client();
    char url[256];

    snprintf(url, sizeof(url), "%s/api/v1/namespaces/default/configmaps"
             "?watch=1&fieldSelector=metadata.name%%3Dcm-0", wa->base);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 0L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_watch);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, wa->ws);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, wa->ws);
    curl_easy_perform(c);
    curl_easy_cleanup(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static void watch_latency(const char *base)
{
    watch_state ws = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER,
                      -1, 0, NULL, 0};
    watch_arg wa = {base, &ws};
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: "
                                             "application/json");
    static double lat[NLAT];
    CURL *c = client();
    pthread_t t;
    char url[256];
    int n = 0;

    pthread_create(&t, NULL, watch_main, &wa);
    usleep(200 * 1000);
    for (long seq = 1000000; n < NLAT; seq++) {
        char *b = cm_body(0, seq);
        double t0 = now_s();
        struct timespec dl;

        request(c, "PUT", cm_url(base, url, sizeof(url), 0), b, h);
        free(b);
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 5;
        pthread_mutex_lock(&ws.mu);
        while (ws.last_seq < seq &&
               pthread_cond_timedwait(&ws.cv, &ws.mu, &dl) == 0)
            ;
        pthread_mutex_unlock(&ws.mu);
        lat[n++] = (now_s() - t0) * 1e3;
    }
    pthread_mutex_lock(&ws.mu);
    ws.stop = 1;
    pthread_mutex_unlock(&ws.mu);
    pthread_join(t, NULL);
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("%-28s median %.3f ms  p99 %.3f ms  (%d writes)\n",
           "write -> watch event", lat[n / 2], lat[n * 99 / 100], n);
    free(ws.line);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
}

int main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 3;
    int clients = argc > 2 ? atoi(argv[2]) : 4;
    struct curl_slist *h;
    apisrv_config cfg;
    apisrv *srv;
    char err[256], url[256];
    CURL *c;

    if (clients < 1 || clients > 64 || secs <= 0) {
        fprintf(stderr, "usage: bench_apiserver [SECONDS] [CLIENTS<=64]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    memset(&cfg, 0, sizeof(cfg));
    if (apisrv_start(&cfg, &srv, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_apiserver: %s\n", err);
        return 1;
    }
    c = client();
    h = curl_slist_append(NULL, "Content-Type: application/json");
    snprintf(url, sizeof(url), "%s/api/v1/namespaces/default/configmaps",
             apisrv_url(srv));
    for (int i = 0; i < NOBJ; i++) {
        char *b = cm_body(i, 0);

        request(c, "POST", url, b, h);
        free(b);
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    run_phase(apisrv_url(srv), OP_GET, "get", secs, clients);
    run_phase(apisrv_url(srv), OP_LIST, "list (100 ConfigMaps)", secs,
              clients);
    run_phase(apisrv_url(srv), OP_PUT, "update (PUT)", secs, clients);
    watch_latency(apisrv_url(srv));
    apisrv_stop(srv);
    curl_global_cleanup();
    return 0;
}
