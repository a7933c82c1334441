/*
 * astermule: the engine process. main.c reads flags and the workflow;
 * server.c serves it over HTTP (semantics.md section 4).
 */
#ifndef ASTER_ASTERMULE_H
#define ASTER_ASTERMULE_H

#include <stddef.h>

#include "engine.h"
#include "wf.h"

typedef struct am_config {
    const char *address;           /* listen address, IPv4 or IPv6 */
    int port;                      /* 0 picks a free port */
    const char *target;            /* path that triggers a run */
    size_t max_request_bytes;      /* trigger body limit */
    size_t max_pending_bytes;      /* trigger bodies being received */
    size_t max_connections;        /* open client connections */
    unsigned connection_timeout_s; /* seconds an idle connection lives */
    size_t keep_results;           /* async results kept, a power of two */
    size_t keep_results_bytes;     /* their bytes; oldest dropped first */
    engine_config engine;
} am_config;

/*
 * Serves wf until SIGTERM or SIGINT, which end the runs in flight and
 * send their answers, for up to 5 s, before the process goes. Prints
 * "listening on ADDR:PORT" on stdout once the socket is bound. Returns
 * the process exit code: 0 after a clean stop, 1 when the server could
 * not start (reason logged).
 * The caller must have blocked SIGTERM and SIGINT in every thread.
 */
int am_serve(const am_config *cfg, const wf_workflow *wf);

#endif
