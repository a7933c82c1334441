/*
 * sim-apiserver: the fake kube-apiserver as a standalone process.
 *
 *   sim-apiserver --listen 127.0.0.1:PORT [--tls] --kubeconfig PATH
 *                 [--no-cluster] [--bin-dir DIR]
 *
 * Writes a kubeconfig for itself, prints one line when ready and serves
 * until SIGTERM or SIGINT. The simulated cluster runs unless
 * --no-cluster; its programs come from --bin-dir (default: the directory
 * of this binary).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apisrv.h"

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

typedef struct main_opts {
    char host[64];
    int port;
    int tls;
    int verbose;
    const char *kubeconfig;
    const char *token;
    int history;
    int bookmark_seconds;
    int no_cluster;
    const char *bin_dir;
    int backoff_ms;
} main_opts;

static void on_log(int level, const char *msg, void *ud)
{
    const main_opts *mo = ud;

    if (level > 2 + mo->verbose || level < 0 || level > 3)
        return;
    fprintf(stderr, "%s sim-apiserver: %s\n", level_names[level], msg);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sim-apiserver --listen HOST:PORT [--tls] "
            "--kubeconfig PATH\n"
            "         [--token TOKEN] [--history EVENTS] "
            "[--bookmark-seconds N] [-v]\n"
            "         [--no-cluster] [--bin-dir DIR] "
            "[--crash-backoff-ms N]\n");
}

static int parse_listen(const char *s, main_opts *mo)
{
    const char *colon = strrchr(s, ':');
    char *end;
    long port;

    if (!colon || (size_t)(colon - s) >= sizeof(mo->host))
        return -1;
    memcpy(mo->host, s, (size_t)(colon - s));
    mo->host[colon - s] = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535)
        return -1;
    mo->port = (int)port;
    return 0;
}

static int parse_args(int argc, char **argv, main_opts *mo)
{
    snprintf(mo->host, sizeof(mo->host), "127.0.0.1");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(a, "--tls") == 0) {
            mo->tls = 1;
        } else if (strcmp(a, "--no-cluster") == 0) {
            mo->no_cluster = 1;
        } else if (v && strcmp(a, "--bin-dir") == 0) {
            mo->bin_dir = argv[++i];
        } else if (v && strcmp(a, "--crash-backoff-ms") == 0) {
            mo->backoff_ms = atoi(argv[++i]);
        } else if (strcmp(a, "-v") == 0) {
            mo->verbose = 1;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (v && strcmp(a, "--listen") == 0) {
            if (parse_listen(v, mo) < 0) {
                fprintf(stderr, "sim-apiserver: bad --listen value %s, "
                        "want HOST:PORT\n", v);
                return -1;
            }
            i++;
        } else if (v && strcmp(a, "--kubeconfig") == 0) {
            mo->kubeconfig = argv[++i];
        } else if (v && strcmp(a, "--token") == 0) {
            mo->token = argv[++i];
        } else if (v && strcmp(a, "--history") == 0) {
            mo->history = atoi(argv[++i]);
        } else if (v && strcmp(a, "--bookmark-seconds") == 0) {
            mo->bookmark_seconds = atoi(argv[++i]);
        } else {
            usage(stderr);
            return -1;
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    main_opts mo;
    apisrv_config cfg;
    apisrv *srv = NULL;
    sigset_t set;
    char err[512];
    int sig;

    memset(&mo, 0, sizeof(mo));
    if (parse_args(argc, argv, &mo) < 0)
        return 2;
    /* Block the stop signals before any thread starts, then wait. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    memset(&cfg, 0, sizeof(cfg));
    cfg.host = mo.host;
    cfg.port = mo.port;
    cfg.tls = mo.tls;
    cfg.token = mo.token;
    cfg.history = mo.history;
    cfg.bookmark_ms = mo.bookmark_seconds * 1000;
    cfg.log = on_log;
    cfg.log_ud = &mo;
    cfg.cluster.enabled = !mo.no_cluster;
    cfg.cluster.bin_dir = mo.bin_dir;
    cfg.cluster.backoff_ms = mo.backoff_ms;
    if (apisrv_start(&cfg, &srv, err, sizeof(err)) < 0) {
        fprintf(stderr, "sim-apiserver: %s; exiting\n", err);
        return 1;
    }
    if (mo.kubeconfig &&
        apisrv_write_kubeconfig(srv, mo.kubeconfig, err, sizeof(err)) < 0) {
        fprintf(stderr, "sim-apiserver: %s; exiting\n", err);
        apisrv_stop(srv);
        return 1;
    }
    printf("sim-apiserver: ready on %s%s%s\n", apisrv_url(srv),
           mo.kubeconfig ? " kubeconfig " : "",
           mo.kubeconfig ? mo.kubeconfig : "");
    fflush(stdout);
    while (sigwait(&set, &sig) != 0)
        ;
    fprintf(stderr, "INFO sim-apiserver: got signal %d, stopping\n", sig);
    apisrv_stop(srv);
    return 0;
}
