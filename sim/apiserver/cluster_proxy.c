/*
 * cluster_proxy: clusterIP:port -> a Ready Pod, round robin.
 *
 * A route listens only while it has endpoints, so a Service without
 * Ready Pods refuses connections the way a real one without endpoints
 * does. One thread accepts on every listener (epoll); each accepted
 * connection gets a thread that connects to the chosen Pod and copies
 * bytes both ways until either side is done, so keep-alive clients keep
 * their upstream connection.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cluster_int.h"

#define COPY_BUF (64 * 1024)
#define POLL_MS 100

typedef struct route {
    char *key;
    char ip[16];
    int port;
    char **eps;                /* "ip:port" of Ready Pods */
    int neps;
    unsigned rr;
    int fd;                    /* listener, -1 while there is none */
    uint64_t id;               /* epoll tag, unique per listener */
    int seen;
    int bind_logged;
    struct route *next;
} route;

struct cluster_proxy {
    cluster *c;
    pthread_mutex_t mu;
    pthread_cond_t cv;         /* a connection thread ended */
    route *routes;
    int epfd;
    pthread_t acceptor;
    int stopping;
    int nconns;
    uint64_t next_id;
};

typedef struct conn {
    cluster_proxy *px;
    int cfd;
    char ep[40];
} conn;

static int proxy_stopping(cluster_proxy *px)
{
    return __atomic_load_n(&px->stopping, __ATOMIC_SEQ_CST);
}

/* ---- connections ---- */

static int dial(const char *ep)
{
    struct sockaddr_in sa;
    char ip[40];
    const char *colon = strrchr(ep, ':');
    int fd, one = 1;

    if (!colon || (size_t)(colon - ep) >= sizeof(ip))
        return -1;
    memcpy(ip, ep, (size_t)(colon - ep));
    ip[colon - ep] = '\0';
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Copies what is readable on from to to; 0 at EOF, -1 on error. */
static int pump(int from, int to, char *buf)
{
    ssize_t n = recv(from, buf, COPY_BUF, MSG_DONTWAIT);

    if (n == 0)
        return 0;
    if (n < 0)
        return errno == EAGAIN || errno == EINTR ? 1 : -1;
    for (ssize_t off = 0; off < n;) {
        ssize_t w = send(to, buf + off, (size_t)(n - off), MSG_NOSIGNAL);

        if (w < 0 && errno != EINTR)
            return -1;
        if (w > 0)
            off += w;
    }
    return 1;
}

static void relay(cluster_proxy *px, int cfd, int ufd)
{
    struct pollfd pf[2] = {{cfd, POLLIN, 0}, {ufd, POLLIN, 0}};
    int open_dir[2] = {1, 1};
    char *buf = malloc(COPY_BUF);

    while (buf && (open_dir[0] || open_dir[1]) && !proxy_stopping(px)) {
        int rc;

        pf[0].events = open_dir[0] ? POLLIN : 0;
        pf[1].events = open_dir[1] ? POLLIN : 0;
        rc = poll(pf, 2, POLL_MS);
        if (rc < 0 && errno != EINTR)
            break;
        for (int i = 0; rc > 0 && i < 2; i++) {
            int r;

            if (!open_dir[i] || !(pf[i].revents & (POLLIN | POLLHUP |
                                                   POLLERR)))
                continue;
            r = pump(pf[i].fd, pf[1 - i].fd, buf);
            if (r < 0)
                goto done;
            if (r == 0) {
                open_dir[i] = 0;
                shutdown(pf[1 - i].fd, SHUT_WR);
            }
        }
    }
done:
    free(buf);
}

static void *conn_main(void *ud)
{
    conn *cn = ud;
    cluster_proxy *px = cn->px;
    int ufd = dial(cn->ep), one = 1;

    if (ufd >= 0) {
        setsockopt(cn->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        relay(px, cn->cfd, ufd);
        close(ufd);
    }
    close(cn->cfd);
    free(cn);
    pthread_mutex_lock(&px->mu);
    px->nconns--;
    pthread_cond_broadcast(&px->cv);
    pthread_mutex_unlock(&px->mu);
    return NULL;
}

/* Called with px->mu held. */
static void start_conn(cluster_proxy *px, route *r, int cfd)
{
    conn *cn = calloc(1, sizeof(*cn));
    pthread_attr_t attr;
    pthread_t t;

    if (!cn) {
        close(cfd);
        return;
    }
    cn->px = px;
    cn->cfd = cfd;
    snprintf(cn->ep, sizeof(cn->ep), "%s", r->eps[r->rr++ % r->neps]);
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &attr, conn_main, cn) != 0) {
        close(cfd);
        free(cn);
    } else {
        px->nconns++;
    }
    pthread_attr_destroy(&attr);
}

static void accept_one(cluster_proxy *px, uint64_t id)
{
    pthread_mutex_lock(&px->mu);
    for (route *r = px->routes; r; r = r->next) {
        int cfd;

        if (r->id != id || r->fd < 0)
            continue;
        cfd = accept4(r->fd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
            break;
        if (r->neps == 0)
            close(cfd);
        else
            start_conn(px, r, cfd);
        break;
    }
    pthread_mutex_unlock(&px->mu);
}

static void *accept_main(void *ud)
{
    cluster_proxy *px = ud;
    struct epoll_event evs[16];

    while (!proxy_stopping(px)) {
        int n = epoll_wait(px->epfd, evs, 16, POLL_MS);

        for (int i = 0; i < n; i++)
            accept_one(px, evs[i].data.u64);
    }
    return NULL;
}

/* ---- listeners (px->mu held) ---- */

static void close_listener(cluster_proxy *px, route *r)
{
    if (r->fd < 0)
        return;
    epoll_ctl(px->epfd, EPOLL_CTL_DEL, r->fd, NULL);
    close(r->fd);
    r->fd = -1;
}

static void open_listener(cluster_proxy *px, route *r)
{
    struct sockaddr_in sa;
    struct epoll_event ev;
    int fd, one = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)r->port);
    inet_pton(AF_INET, r->ip, &sa.sin_addr);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fd, 256) != 0) {
        if (!r->bind_logged)
            cluster_log(px->c, 1, "cluster: service proxy cannot listen "
                        "on %s:%d: %s; retrying next pass", r->ip, r->port,
                        strerror(errno));
        r->bind_logged = 1;
        close(fd);
        return;
    }
    r->id = ++px->next_id;
    memset(&ev, 0, sizeof(ev));
    ev.events = EPOLLIN;
    ev.data.u64 = r->id;
    epoll_ctl(px->epfd, EPOLL_CTL_ADD, fd, &ev);
    r->fd = fd;
    r->bind_logged = 0;
    cluster_log(px->c, 3, "cluster: service proxy listens on %s:%d",
                r->ip, r->port);
}

static void set_eps(route *r, char **eps, int n)
{
    for (int i = 0; i < r->neps; i++)
        free(r->eps[i]);
    free(r->eps);
    r->eps = n > 0 ? calloc((size_t)n, sizeof(*r->eps)) : NULL;
    r->neps = r->eps ? n : 0;
    for (int i = 0; i < r->neps; i++)
        r->eps[i] = strdup(eps[i]);
}

static void free_route(cluster_proxy *px, route *r)
{
    close_listener(px, r);
    set_eps(r, NULL, 0);
    free(r->key);
    free(r);
}

/* ---- the interface ---- */

cluster_proxy *cluster_proxy_new(cluster *c)
{
    cluster_proxy *px = calloc(1, sizeof(*px));

    if (!px)
        return NULL;
    px->c = c;
    pthread_mutex_init(&px->mu, NULL);
    pthread_cond_init(&px->cv, NULL);
    px->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (px->epfd < 0)
        goto fail_epoll;
    if (pthread_create(&px->acceptor, NULL, accept_main, px) != 0)
        goto fail_thread;
    return px;

fail_thread:
    close(px->epfd);
fail_epoll:
    pthread_cond_destroy(&px->cv);
    pthread_mutex_destroy(&px->mu);
    free(px);
    return NULL;
}

void cluster_proxy_free(cluster_proxy *px)
{
    if (!px)
        return;
    __atomic_store_n(&px->stopping, 1, __ATOMIC_SEQ_CST);
    pthread_join(px->acceptor, NULL);
    pthread_mutex_lock(&px->mu);
    while (px->nconns > 0)
        pthread_cond_wait(&px->cv, &px->mu);
    while (px->routes) {
        route *r = px->routes;

        px->routes = r->next;
        free_route(px, r);
    }
    pthread_mutex_unlock(&px->mu);
    close(px->epfd);
    pthread_cond_destroy(&px->cv);
    pthread_mutex_destroy(&px->mu);
    free(px);
}

void cluster_proxy_begin(cluster_proxy *px)
{
    pthread_mutex_lock(&px->mu);
    for (route *r = px->routes; r; r = r->next)
        r->seen = 0;
    pthread_mutex_unlock(&px->mu);
}

void cluster_proxy_set(cluster_proxy *px, const char *key, const char *ip,
                       int port, char **eps, int n)
{
    route *r;

    pthread_mutex_lock(&px->mu);
    for (r = px->routes; r; r = r->next)
        if (strcmp(r->key, key) == 0)
            break;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            goto out;
        r->key = strdup(key);
        r->fd = -1;
        r->next = px->routes;
        px->routes = r;
    }
    if (strcmp(r->ip, ip) != 0 || r->port != port) {
        close_listener(px, r);
        snprintf(r->ip, sizeof(r->ip), "%s", ip);
        r->port = port;
    }
    r->seen = 1;
    set_eps(r, eps, n);
    if (r->neps > 0 && r->fd < 0 && port > 0)
        open_listener(px, r);
    else if (r->neps == 0)
        close_listener(px, r);
out:
    pthread_mutex_unlock(&px->mu);
}

void cluster_proxy_end(cluster_proxy *px)
{
    pthread_mutex_lock(&px->mu);
    for (route **pp = &px->routes; *pp;) {
        route *r = *pp;

        if (r->seen) {
            pp = &r->next;
            continue;
        }
        *pp = r->next;
        free_route(px, r);
    }
    pthread_mutex_unlock(&px->mu);
}
