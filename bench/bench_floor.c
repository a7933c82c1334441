/*
 * bench_floor: the least a server on astermule's libraries can cost.
 *
 * Linked with exactly astermule's libraries (libcurl, cJSON, libyaml,
 * libmicrohttpd and theirs), it initialises libcurl, serves every request
 * with "ok" from libmicrohttpd in the same external-epoll mode, and does
 * nothing else. bench_engine measures its start-up time and idle memory
 * beside astermule's: the difference is what astermule itself costs, the
 * rest is loading and initialising the shared libraries.
 *
 * usage: bench_floor --port N   (prints "listening on 127.0.0.1:N";
 *                                SIGTERM or SIGINT stop it)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <yaml.h>

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version,
                                  const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    static char ok[] = "ok\n";
    struct MHD_Response *resp;
    enum MHD_Result r;

    if (*upload_size > 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    resp = MHD_create_response_from_buffer(3, ok, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    r = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return r;
}

/* Waits on libmicrohttpd's epoll fd and the signal fd; MHD_run on each
 * wake-up, until a signal. */
static int serve(struct MHD_Daemon *d, int sigfd)
{
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
    struct epoll_event ev = {.events = EPOLLIN};
    int ep = epoll_create1(EPOLL_CLOEXEC);

    if (!info || ep < 0)
        return 1;
    ev.data.fd = info->epoll_fd;
    epoll_ctl(ep, EPOLL_CTL_ADD, info->epoll_fd, &ev);
    ev.data.fd = sigfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sigfd, &ev);

    for (;;) {
        struct epoll_event got[4];
        int n = epoll_wait(ep, got, 4, 1000);

        for (int k = 0; k < n; k++) {
            if (got[k].data.fd == sigfd) {
                close(ep);
                return 0;
            }
        }
        MHD_run(d);
    }
}

int main(int argc, char **argv)
{
    sigset_t sigs;
    struct MHD_Daemon *d;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    char *end;
    long port;
    int sigfd, rc;

    if (argc != 3 || strcmp(argv[1], "--port") != 0) {
        fprintf(stderr, "usage: bench_floor --port N\n");
        return 2;
    }
    port = strtol(argv[2], &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        fprintf(stderr, "bench_floor: --port %s: expected 1 to 65535\n",
                argv[2]);
        return 2;
    }

    /* The same start as astermule's: libcurl set up, the document
     * libraries loaded (asking their versions keeps them linked). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    if (!cJSON_Version() || !yaml_get_version_string())
        return 1;

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    sigfd = signalfd(-1, &sigs, SFD_CLOEXEC);

    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(0x7f000001);
    d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_TURBO, (uint16_t)port, NULL,
                         NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)8192,
                         MHD_OPTION_END);
    if (!d || sigfd < 0) {
        fprintf(stderr, "bench_floor: cannot listen on port %ld: %s\n",
                port, strerror(errno));
        return 1;
    }
    printf("listening on 127.0.0.1:%ld\n", port);
    fflush(stdout);

    rc = serve(d, sigfd);
    MHD_stop_daemon(d);
    close(sigfd);
    curl_global_cleanup();
    return rc;
}
