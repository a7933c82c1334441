/*
 * apisrv: the HTTP(S) front of the fake kube-apiserver.
 *
 * Starts a libmicrohttpd daemon (a thread per connection) on loopback
 * that serves /version, discovery, /openapi/v3 and the REST API of the
 * store (see store.h), including watch streams and Table responses.
 * With TLS it generates a CA and a server certificate and requires the
 * bearer token on every request.
 *
 * Test-only endpoints: POST /_sim/compact drops watch history; GET and
 * PUT /_sim/faults read and replace the fault-injection settings as JSON
 * (field names as in apisrv_faults, camelCase; the two image globs are
 * pullFailImage and crashLoopImage).
 *
 * Logging goes through the configured hook only; the library never
 * prints.
 */
#ifndef SIMAPI_APISRV_H
#define SIMAPI_APISRV_H

#include <stddef.h>

#include "cluster.h"
#include "store.h"

typedef struct apisrv apisrv;

/* Faults consulted on the request path. All zero means none. */
typedef struct apisrv_faults {
    int watch_drop_every;      /* end each watch after N events */
    int force_410;             /* next N watches from an RV get 410 */
    int watch_410_http;        /* answer expired watches with HTTP 410 */
    int conflict_first_update; /* first PUT/PATCH of each object: 409 */
    int error_permille;        /* share of resource requests that fail */
    int error_code;            /* 500 (default) or 429 */
    int retry_after;           /* Retry-After seconds for 429 */
    int latency_ms;            /* added before every resource request */
    int pod_start_delay_ms;    /* cluster: containers start this late */
    char pull_fail_image[128]; /* cluster: fnmatch glob of images whose
                                  pull fails (ImagePullBackOff) */
    char crash_loop_image[128];/* cluster: glob of images whose process
                                  exits 1 at once (CrashLoopBackOff) */
} apisrv_faults;

typedef struct apisrv_config {
    const char *host;          /* listen address; NULL: 127.0.0.1 */
    int port;                  /* 0 picks a free port */
    int tls;                   /* HTTPS with a generated CA */
    const char *token;         /* required bearer token (TLS only);
                                  NULL generates one */
    int history;               /* watch history in events; 0: 10000 */
    int bookmark_ms;           /* bookmark interval; 0: 5000 */
    store_log_fn log;          /* levels 0 error .. 3 debug */
    void *log_ud;
    cluster_config cluster;    /* the simulated cluster; runs when
                                  cluster.enabled (see cluster.h) */
} apisrv_config;

/*
 * Starts the server; returns 0 and the handle, or -1 with the failed
 * step (bind, certificates, daemon) in err.
 */
int apisrv_start(const apisrv_config *cfg, apisrv **out, char *err,
                 size_t errlen);

/* Stops serving: ends watch streams cleanly, joins threads, frees all. */
void apisrv_stop(apisrv *srv);

int apisrv_port(const apisrv *srv);

/* "http://127.0.0.1:PORT" or "https://..."; owned by srv. */
const char *apisrv_url(const apisrv *srv);

/* The bearer token (TLS), or NULL; owned by srv. */
const char *apisrv_token(const apisrv *srv);

/* The CA certificate PEM (TLS), or NULL; owned by srv. */
const char *apisrv_ca_pem(const apisrv *srv);

/* The store, for in-process controllers and tests; owned by srv. */
store *apisrv_store(apisrv *srv);

/* The simulated cluster, or NULL when it is off; owned by srv. */
cluster *apisrv_cluster(apisrv *srv);

/* Writes a kubeconfig for this server; 0 or -1 with err. */
int apisrv_write_kubeconfig(const apisrv *srv, const char *path, char *err,
                            size_t errlen);

void apisrv_set_faults(apisrv *srv, const apisrv_faults *f);
void apisrv_get_faults(apisrv *srv, apisrv_faults *f);

#endif
