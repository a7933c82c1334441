/*
 * ctl_http: health, readiness and metrics over HTTP (see ctl_http.h).
 */
#include "ctl_http.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ctl_http {
    struct MHD_Daemon *d;
    ctl_http_hooks hooks;
    int port;
};

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status,
                              const char *type, char *body, int owned)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        strlen(body), body,
        owned ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    enum MHD_Result r;

    if (resp == NULL) {
        if (owned)
            free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *data_len, void **con_cls)
{
    ctl_http *s = cls;
    char *text;

    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return answer(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
                      "method not allowed\n", 0);
    if (strcmp(url, "/healthz") == 0)
        return answer(conn, MHD_HTTP_OK, "text/plain", "ok\n", 0);
    if (strcmp(url, "/readyz") == 0) {
        if (s->hooks.ready && s->hooks.ready(s->hooks.ud))
            return answer(conn, MHD_HTTP_OK, "text/plain", "ready\n", 0);
        return answer(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "text/plain",
                      "not ready: caches not synced or not leading\n", 0);
    }
    if (strcmp(url, "/metrics") == 0) {
        text = s->hooks.metrics ? s->hooks.metrics(s->hooks.ud) : NULL;
        if (text == NULL)
            return answer(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
                          "text/plain", "cannot render metrics\n", 0);
        return answer(conn, MHD_HTTP_OK, "text/plain; version=0.0.4", text,
                      1);
    }
    return answer(conn, MHD_HTTP_NOT_FOUND, "text/plain", "not found\n", 0);
}

/* Parses "HOST:PORT" (HOST may be empty for any address). */
static int parse_address(const char *address, struct sockaddr_in *sa)
{
    const char *colon = strrchr(address, ':');
    char host[64];
    char *end;
    long port;

    if (colon == NULL || (size_t)(colon - address) >= sizeof(host))
        return -1;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 0 || port > 65535)
        return -1;

    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    if (host[0] == '\0')
        sa->sin_addr.s_addr = htonl(INADDR_ANY);
    else if (inet_pton(AF_INET, host, &sa->sin_addr) != 1)
        return -1;
    return 0;
}

int ctl_http_start(const char *address, const ctl_http_hooks *hooks,
                   ctl_http **out, char *err, size_t errlen)
{
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    ctl_http *s;

    *out = NULL;
    if (parse_address(address, &sa) < 0) {
        snprintf(err, errlen,
                 "metrics address '%s' is not HOST:PORT with an IPv4 host",
                 address);
        return -1;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    s->hooks = *hooks;
    s->d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
        on_request, s, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
        MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
        MHD_OPTION_END);
    if (s->d == NULL) {
        snprintf(err, errlen, "cannot listen on %s", address);
        free(s);
        return -1;
    }
    info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : ntohs(sa.sin_port);
    *out = s;
    return 0;
}

int ctl_http_port(const ctl_http *s)
{
    return s->port;
}

void ctl_http_stop(ctl_http *s)
{
    if (s == NULL)
        return;
    MHD_stop_daemon(s->d);
    free(s);
}
