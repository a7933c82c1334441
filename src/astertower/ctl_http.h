/*
 * ctl_http: the controller's HTTP endpoint (libmicrohttpd, its own
 * thread): GET /healthz (200 while the process serves), GET /readyz (200
 * once the hooks say the caches are synced and we lead, else 503) and
 * GET /metrics (Prometheus text from the metrics hook).
 */
#ifndef ASTER_CTL_HTTP_H
#define ASTER_CTL_HTTP_H

#include <stddef.h>

typedef struct ctl_http ctl_http;

typedef struct ctl_http_hooks {
    int (*ready)(void *ud);     /* nonzero when ready */
    char *(*metrics)(void *ud); /* malloc'd text, or NULL */
    void *ud;
} ctl_http_hooks;

/*
 * Listens on address ("HOST:PORT", IPv4; PORT 0 picks one). hooks is
 * copied. Returns 0 and the server, or -1 with err naming the address.
 */
int ctl_http_start(const char *address, const ctl_http_hooks *hooks,
                   ctl_http **out, char *err, size_t errlen);

/* The port listened on. */
int ctl_http_port(const ctl_http *s);

/* Stops serving and frees; NULL is fine. */
void ctl_http_stop(ctl_http *s);

#endif
