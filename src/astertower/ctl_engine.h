/*
 * ctl_engine: what the controller asks the engine pod over HTTP
 * (docs/engine.md): is it ready, start the run, how is the run.
 *
 * Each call is one short libcurl transfer to http://<ip>:<port> with the
 * given timeout (connect and whole request), so a worker is never held
 * for long; nothing is retried here. The reason a call failed goes to
 * err (caller-owned, may be NULL) and names the URL.
 */
#ifndef ASTER_CTL_ENGINE_H
#define ASTER_CTL_ENGINE_H

#include <stddef.h>

typedef struct ctl_engine_addr {
    const char *ip;
    int port;
    long timeout_ms;
} ctl_engine_addr;

/* GET /readyz. Returns 0 on a 200, -1 otherwise. */
int ctl_engine_readyz(const ctl_engine_addr *a, char *err, size_t errlen);

/*
 * POST /runs?async=1&key=<key>. The engine answers 202 with {"id"} (the
 * same id for a key it has seen). Returns 0 and a malloc'd id in *id, or
 * -1.
 */
int ctl_engine_trigger(const ctl_engine_addr *a, const char *key, char **id,
                       char *err, size_t errlen);

/*
 * GET /runs/<id>. Returns the HTTP status (202 running, 200 done, 404
 * unknown, anything else as it came) with the body in *body (malloc'd,
 * NUL-terminated, length in *len) for a 200, or -1 when no answer came.
 */
int ctl_engine_poll(const ctl_engine_addr *a, const char *id, char **body,
                    size_t *len, char *err, size_t errlen);

/* Largest answer read from the engine (a result); more fails the call. */
#define CTL_ENGINE_MAX_BODY (64L * 1024 * 1024)

#endif
