/*
 * astertower: the Astro controller.
 *
 *   astertower [--kubeconfig PATH] [options]
 *
 * Reconciles Astros (astertower.kasterism.io/v1alpha1) until SIGTERM or
 * SIGINT: a Deployment and a Service per star, the engine pod with the
 * DAG, the run and its result in the status. Without --kubeconfig the
 * in-cluster configuration is used (or $KUBECONFIG / ~/.kube/config
 * when one is there). Exit codes: 0 stopped by a signal, 1 could not
 * start or lost the leadership, 2 bad flags.
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_http.h"
#include "ctl_reconcile.h"
#include "kcfg.h"
#include "klease.h"
#include "kube.h"
#include "log.h"

#define EXIT_USAGE 2

static const char usage[] =
    "usage: astertower [--kubeconfig PATH] [options]\n"
    "\n"
    "Runs the Astro controller: per star a Deployment and a Service, then\n"
    "the astermule engine with the workflow; the run's result goes into\n"
    "the Astro's status.\n"
    "\n"
    "Cluster:\n"
    "  --kubeconfig PATH        kubeconfig (default: $KUBECONFIG,\n"
    "                           ~/.kube/config, else in-cluster)\n"
    "  --context NAME           kubeconfig context\n"
    "  --namespace NS           watch only NS (default: all namespaces)\n"
    "Workflows:\n"
    "  --engine-image IMAGE     engine image (default $ASTER_ENGINE_IMAGE,\n"
    "                           else kasterism/astermule:latest)\n"
    "  --deploy-timeout D       stars available within D (default 300s)\n"
    "  --engine-timeout D       engine running and ready within D\n"
    "                           (default 120s)\n"
    "  --engine-call-timeout D  one HTTP call to an engine (default 2s)\n"
    "  --max-result-bytes N     larger results are stored truncated\n"
    "                           (default 262144)\n"
    "  --workers N              reconciles in parallel (default 2)\n"
    "Operation:\n"
    "  --metrics-address A      /healthz, /readyz, /metrics on HOST:PORT\n"
    "                           (default 127.0.0.1:8081; port 0 picks one)\n"
    "  --leader-elect           run only while holding a Lease\n"
    "  --leader-elect-namespace NS  namespace of the Lease (default: the\n"
    "                           configuration's)\n"
    "  --lease-name NAME        default astertower-leader\n"
    "  --log-level L            error, warn, info (default) or debug\n"
    "  --help                   show this text\n"
    "Durations are seconds, or a number with ms, s, m or h.\n";

enum {
    OPT_KUBECONFIG = 1000,
    OPT_CONTEXT,
    OPT_NAMESPACE,
    OPT_ENGINE_IMAGE,
    OPT_DEPLOY_TIMEOUT,
    OPT_ENGINE_TIMEOUT,
    OPT_CALL_TIMEOUT,
    OPT_MAX_RESULT,
    OPT_WORKERS,
    OPT_METRICS,
    OPT_LEADER,
    OPT_LEADER_NS,
    OPT_LEASE_NAME,
    OPT_LOG_LEVEL,
    OPT_HELP,
};

static const struct option options[] = {
    {"kubeconfig", required_argument, NULL, OPT_KUBECONFIG},
    {"context", required_argument, NULL, OPT_CONTEXT},
    {"namespace", required_argument, NULL, OPT_NAMESPACE},
    {"engine-image", required_argument, NULL, OPT_ENGINE_IMAGE},
    {"deploy-timeout", required_argument, NULL, OPT_DEPLOY_TIMEOUT},
    {"engine-timeout", required_argument, NULL, OPT_ENGINE_TIMEOUT},
    {"engine-call-timeout", required_argument, NULL, OPT_CALL_TIMEOUT},
    {"max-result-bytes", required_argument, NULL, OPT_MAX_RESULT},
    {"workers", required_argument, NULL, OPT_WORKERS},
    {"metrics-address", required_argument, NULL, OPT_METRICS},
    {"leader-elect", no_argument, NULL, OPT_LEADER},
    {"leader-elect-namespace", required_argument, NULL, OPT_LEADER_NS},
    {"lease-name", required_argument, NULL, OPT_LEASE_NAME},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct opts {
    const char *kubeconfig;
    const char *context;
    const char *metrics;
    const char *lease_ns;
    const char *lease_name;
    int leader_elect;
    ctl_config cc;
} opts;

/* Parses "90", "90s", "1500ms", "2m", "1h" into milliseconds. */
static int parse_ms(const char *s, long *out)
{
    char *end;
    double v = strtod(s, &end);
    double unit = 1000;

    if (end == s || v < 0)
        return -1;
    if (strcmp(end, "ms") == 0)
        unit = 1;
    else if (strcmp(end, "m") == 0)
        unit = 60000;
    else if (strcmp(end, "h") == 0)
        unit = 3600000;
    else if (*end != '\0' && strcmp(end, "s") != 0)
        return -1;
    *out = (long)(v * unit);
    return *out > 0 ? 0 : -1;
}

static int parse_long(const char *s, long min, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (end == s || *end || v < min)
        return -1;
    *out = v;
    return 0;
}

static int bad_flag(const char *flag, const char *value, const char *want)
{
    fprintf(stderr, "astertower: --%s %s: %s\n", flag, value, want);
    return -1;
}

/* Parses one option; returns 0, 1 for --help, -1 for a bad value. */
static int parse_opt(int c, const char *v, opts *o)
{
    long n;

    switch (c) {
    case OPT_KUBECONFIG: o->kubeconfig = v; return 0;
    case OPT_CONTEXT: o->context = v; return 0;
    case OPT_NAMESPACE: o->cc.ns = v; return 0;
    case OPT_ENGINE_IMAGE: o->cc.engine_image = v; return 0;
    case OPT_METRICS: o->metrics = v; return 0;
    case OPT_LEADER: o->leader_elect = 1; return 0;
    case OPT_LEADER_NS: o->lease_ns = v; return 0;
    case OPT_LEASE_NAME: o->lease_name = v; return 0;
    case OPT_DEPLOY_TIMEOUT:
        if (parse_ms(v, &n) < 0 || n < 1000)
            return bad_flag("deploy-timeout", v, "want 1s or more");
        o->cc.deploy_timeout_s = n / 1000;
        return 0;
    case OPT_ENGINE_TIMEOUT:
        if (parse_ms(v, &n) < 0 || n < 1000)
            return bad_flag("engine-timeout", v, "want 1s or more");
        o->cc.engine_timeout_s = n / 1000;
        return 0;
    case OPT_CALL_TIMEOUT:
        if (parse_ms(v, &n) < 0)
            return bad_flag("engine-call-timeout", v, "want a duration");
        o->cc.engine_call_ms = n;
        return 0;
    case OPT_MAX_RESULT:
        if (parse_long(v, 64, &n) < 0)
            return bad_flag("max-result-bytes", v, "want 64 or more");
        o->cc.max_result_bytes = (size_t)n;
        return 0;
    case OPT_WORKERS:
        if (parse_long(v, 1, &n) < 0 || n > 64)
            return bad_flag("workers", v, "want 1 to 64");
        o->cc.workers = (int)n;
        return 0;
    case OPT_LOG_LEVEL: {
        log_level lvl;

        if (log_level_parse(v, &lvl) < 0)
            return bad_flag("log-level", v, "want error, warn, info, debug");
        log_set_level(lvl);
        return 0;
    }
    case OPT_HELP:
        fputs(usage, stdout);
        return 1;
    default:
        fputs(usage, stderr);
        return -1;
    }
}

static int parse_args(int argc, char **argv, opts *o)
{
    int c, rc;

    o->metrics = "127.0.0.1:8081";
    o->lease_name = "astertower-leader";
    o->cc.engine_image = getenv("ASTER_ENGINE_IMAGE");
    if (o->cc.engine_image && !*o->cc.engine_image)
        o->cc.engine_image = NULL;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        rc = parse_opt(c, optarg, o);
        if (rc != 0)
            return rc;
    }
    if (optind < argc) {
        fprintf(stderr, "astertower: unexpected argument '%s'\n",
                argv[optind]);
        return -1;
    }
    return 0;
}

static ctl *g_ctl;

static void on_started_leading(void *ud)
{
    log_msg(LOG_INFO, "astertower", "leading now; starting the workers");
    if (ctl_start_workers(g_ctl) < 0)
        log_msg(LOG_ERROR, "astertower", "cannot start the workers");
}

/* Losing the Lease ends the process, as client-go controllers do. */
static void on_stopped_leading(void *ud)
{
    const int *stopping = ud;

    if (*stopping)
        return;
    log_msg(LOG_ERROR, "astertower", "lost the leadership; exiting");
    _exit(1);
}

static int on_ready(void *ud)
{
    return ctl_synced(ud) && ctl_working(ud);
}

static char *on_metrics(void *ud)
{
    return ctl_metrics_text(ud);
}

/* Everything main() starts, stopped and freed in reverse. */
typedef struct app {
    kcfg *cfg;
    kube *k;
    ctl *c;
    ctl_http *http;
    klease *lease;
    int stopping;
} app;

static int start(app *a, opts *o, char *err, size_t errlen)
{
    ctl_http_hooks hooks;
    klease_config lc = {0};

    if (kcfg_load_auto(o->kubeconfig, o->context, &a->cfg, err, errlen) < 0 ||
        kube_new(a->cfg, NULL, &a->k, err, errlen) < 0 ||
        ctl_new(a->k, &o->cc, &a->c, err, errlen) < 0)
        return -1;
    g_ctl = a->c;

    hooks = (ctl_http_hooks){on_ready, on_metrics, a->c};
    if (ctl_http_start(o->metrics, &hooks, &a->http, err, errlen) < 0)
        return -1;
    log_msg(LOG_INFO, "astertower",
            "serving /healthz, /readyz and /metrics on port %d; API server "
            "%s (%s)",
            ctl_http_port(a->http), a->cfg->server, a->cfg->source);

    if (ctl_start_informers(a->c, err, errlen) < 0)
        return -1;
    /* Deciding from half-filled caches would recreate what exists. */
    if (!ctl_wait_synced(a->c, 120000)) {
        snprintf(err, errlen, "the caches did not sync within 120 s");
        return -1;
    }
    if (!o->leader_elect)
        return ctl_start_workers(a->c) < 0 ? -1 : 0;

    lc.ns = o->lease_ns;
    lc.name = o->lease_name;
    lc.on_started_leading = on_started_leading;
    lc.on_stopped_leading = on_stopped_leading;
    lc.ud = &a->stopping;
    return klease_start(a->k, &lc, &a->lease, err, errlen);
}

static void stop(app *a)
{
    a->stopping = 1;
    klease_free(a->lease);
    if (a->c)
        ctl_stop(a->c);
    ctl_http_stop(a->http);
    ctl_free(a->c);
    kube_free(a->k);
    kcfg_free(a->cfg);
}

int main(int argc, char **argv)
{
    opts o = {0};
    app a = {0};
    sigset_t sigs;
    char err[512];
    int sig = 0, rc;

    rc = parse_args(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : EXIT_USAGE;

    /* Every thread inherits the mask; main alone waits for the signals. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    if (start(&a, &o, err, sizeof(err)) < 0) {
        log_msg(LOG_ERROR, "astertower", "cannot start: %s; exiting", err);
        stop(&a);
        curl_global_cleanup();
        return 1;
    }
    log_msg(LOG_INFO, "astertower", "started; %s",
            o.leader_elect ? "waiting for the leadership" : "reconciling");
    sigwait(&sigs, &sig);
    log_msg(LOG_INFO, "astertower", "%s received; stopping",
            sig == SIGINT ? "SIGINT" : "SIGTERM");
    stop(&a);
    curl_global_cleanup();
    return 0;
}
