/*
 * astermule: runs one workflow. Serves it over HTTP (the default), runs it
 * once and prints the result (--once), or only validates it (--check).
 *
 * Exit codes: 0 served and stopped cleanly, or --once healthy, or --check
 * valid; 1 --once unhealthy or the server could not start; 2 bad flags or
 * an invalid workflow, every problem on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "astermule.h"
#include "jx.h"
#include "log.h"

#define EXIT_INVALID 2

/* The largest --keep-results-bytes: 1 TiB, or all that size_t holds. */
#define KEEP_BYTES_MAX                                                     \
    (SIZE_MAX < (1ULL << 40) ? (unsigned long long)SIZE_MAX : 1ULL << 40)

static const char usage[] =
    "usage: astermule (--dag JSON | --dag-file PATH) [options]\n"
    "\n"
    "Runs a workflow of HTTP services: every node is called as soon as its\n"
    "dependencies succeeded, with their merged JSON outputs as input.\n"
    "\n"
    "Workflow:\n"
    "  --dag JSON             the workflow document itself (JSON or YAML)\n"
    "  --dag-file PATH        read the workflow document from PATH\n"
    "Modes (default: serve):\n"
    "  --once                 run once, print the result on stdout, exit 0\n"
    "                         when healthy and 1 when not; SIGTERM or\n"
    "                         SIGINT end the run, which is then printed\n"
    "  --input JSON           run input for --once (default, or blank: {})\n"
    "  --check                only validate the workflow\n"
    "Serving:\n"
    "  --address A            listen address (default 0.0.0.0)\n"
    "  --port N               listen port (default 8080; 0 picks one)\n"
    "  --target PATH          path that triggers a run (default /)\n"
    "  --max-request-bytes N  largest trigger body (default 16777216)\n"
    "  --max-pending-bytes N  trigger bodies being received at once, in\n"
    "                         all (default 268435456); past it, 503\n"
    "  --max-connections N    open client connections (default 4096)\n"
    "  --connection-timeout S close a connection idle S seconds, 1 to\n"
    "                         3600 (default 60); a run in flight is not\n"
    "                         idle\n"
    "  --keep-results-bytes N total size of the async results kept\n"
    "                         (default 67108864; 0 keeps none); the\n"
    "                         oldest are dropped first\n"
    "Limits:\n"
    "  --max-body-bytes N     largest node answer (default 8388608)\n"
    "  --max-runs N           runs in flight (default 100000)\n"
    "  --max-host-connections N\n"
    "                         connections open to one service at once;\n"
    "                         more calls wait for one (default 0: no\n"
    "                         limit)\n"
    "  --max-nodes N          nodes in a workflow (default 20000)\n"
    "Other:\n"
    "  --log-level L          error, warn, info (default) or debug\n"
    "  --help                 show this text\n"
    "\n"
    "Routes: any request to the target runs the workflow; POST /runs\n"
    "(?async=1 or true answers at once with an id; 0, false or none waits\n"
    "for the result), GET /runs/ID (410 once its result was dropped),\n"
    "GET /healthz, GET /readyz, GET /metrics. Another method on these\n"
    "paths gets 405.\n";

enum {
    OPT_DAG = 1000,
    OPT_DAG_FILE,
    OPT_ADDRESS,
    OPT_PORT,
    OPT_TARGET,
    OPT_ONCE,
    OPT_INPUT,
    OPT_CHECK,
    OPT_MAX_REQUEST,
    OPT_MAX_PENDING,
    OPT_MAX_CONNS,
    OPT_CONN_TIMEOUT,
    OPT_KEEP_BYTES,
    OPT_MAX_BODY,
    OPT_MAX_RUNS,
    OPT_MAX_HOST_CONNS,
    OPT_MAX_NODES,
    OPT_LOG_LEVEL,
    OPT_HELP,
};

static const struct option options[] = {
    {"dag", required_argument, NULL, OPT_DAG},
    {"dag-file", required_argument, NULL, OPT_DAG_FILE},
    {"address", required_argument, NULL, OPT_ADDRESS},
    {"port", required_argument, NULL, OPT_PORT},
    {"target", required_argument, NULL, OPT_TARGET},
    {"once", no_argument, NULL, OPT_ONCE},
    {"input", required_argument, NULL, OPT_INPUT},
    {"check", no_argument, NULL, OPT_CHECK},
    {"max-request-bytes", required_argument, NULL, OPT_MAX_REQUEST},
    {"max-pending-bytes", required_argument, NULL, OPT_MAX_PENDING},
    {"max-connections", required_argument, NULL, OPT_MAX_CONNS},
    {"connection-timeout", required_argument, NULL, OPT_CONN_TIMEOUT},
    {"keep-results-bytes", required_argument, NULL, OPT_KEEP_BYTES},
    {"max-body-bytes", required_argument, NULL, OPT_MAX_BODY},
    {"max-runs", required_argument, NULL, OPT_MAX_RUNS},
    {"max-host-connections", required_argument, NULL, OPT_MAX_HOST_CONNS},
    {"max-nodes", required_argument, NULL, OPT_MAX_NODES},
    {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

typedef struct args {
    const char *dag;
    const char *dag_file;
    const char *input;
    int once;
    int check;
    wf_limits limits;
    am_config cfg;
} args;

/* Parses a whole decimal number within [min, max] for flag name. */
static int parse_size(const char *name, const char *text,
                      unsigned long long min, unsigned long long max,
                      unsigned long long *out)
{
    char *end;
    unsigned long long v;

    /* Digits only: strtoull alone would take a sign and blanks. */
    errno = 0;
    v = strtoull(text, &end, 10);
    if (text[strspn(text, "0123456789")] != '\0' || *text == '\0' ||
        *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "astermule: --%s %s: expected a whole number from "
                "%llu to %llu\n", name, text, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

/* A listen address is an IPv4 or IPv6 literal; a bad one is a bad flag,
 * found before the workflow is even read. */
static int check_address(const char *text)
{
    struct in6_addr a6;
    struct in_addr a4;

    if (inet_pton(AF_INET, text, &a4) == 1 ||
        inet_pton(AF_INET6, text, &a6) == 1)
        return 0;
    fprintf(stderr, "astermule: --address %s: expected an IPv4 or IPv6 "
            "address, such as 0.0.0.0 or ::\n", text);
    return -1;
}

/* A target is a path the workflow can be run at: it starts with '/',
 * holds no blank, control character, '?' or '#' (a request's path never
 * does, once its query is split off), and is none of the server's own
 * routes, which take precedence and would leave the workflow unreachable.
 */
static int check_target(const char *t)
{
    static const char *const own[] = {"/healthz", "/readyz", "/metrics",
                                      "/runs"};

    if (t[0] != '/') {
        fprintf(stderr, "astermule: --target %s: must start with '/'\n", t);
        return -1;
    }
    for (size_t k = 0; t[k]; k++) {
        unsigned char c = (unsigned char)t[k];

        if (c <= 0x20 || c == 0x7f || c == '?' || c == '#') {
            fprintf(stderr, "astermule: --target %s: character %zu (byte "
                    "0x%02x) cannot be in a request path; give the path "
                    "alone, without blanks, control characters, query or "
                    "fragment\n", t, k + 1, c);
            return -1;
        }
    }

    int taken = strncmp(t, "/runs/", 6) == 0;

    for (size_t k = 0; k < sizeof(own) / sizeof(own[0]); k++)
        taken |= strcmp(t, own[k]) == 0;
    if (taken) {
        fprintf(stderr, "astermule: --target %s: is a route of the server "
                "itself (/healthz, /readyz, /metrics, /runs, /runs/ID), "
                "which takes precedence, so the workflow could never run "
                "there; choose another path\n", t);
        return -1;
    }
    return 0;
}

static int parse_args(int argc, char **argv, args *a)
{
    unsigned long long v;
    int c;

    wf_limits_default(&a->limits);
    engine_config_default(&a->cfg.engine);
    a->cfg.address = "0.0.0.0";
    a->cfg.port = 8080;
    a->cfg.target = "/";
    a->cfg.max_request_bytes = 16u << 20;
    a->cfg.max_pending_bytes = 256u << 20;
    a->cfg.max_connections = 4096;
    a->cfg.keep_results = 8192;
    a->cfg.connection_timeout_s = 60;
    a->cfg.keep_results_bytes = 64u << 20;

    /* getopt_long_only also takes Go-style single-dash flags (-dag). */
    while ((c = getopt_long_only(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case OPT_DAG: a->dag = optarg; break;
        case OPT_DAG_FILE: a->dag_file = optarg; break;
        case OPT_ADDRESS:
            if (check_address(optarg) < 0)
                return -1;
            a->cfg.address = optarg;
            break;
        case OPT_TARGET:
            if (check_target(optarg) < 0)
                return -1;
            a->cfg.target = optarg;
            break;
        case OPT_PORT:
            if (parse_size("port", optarg, 0, 65535, &v) < 0)
                return -1;
            a->cfg.port = (int)v;
            break;
        case OPT_ONCE: a->once = 1; break;
        case OPT_INPUT: a->input = optarg; break;
        case OPT_CHECK: a->check = 1; break;
        case OPT_MAX_REQUEST:
            if (parse_size("max-request-bytes", optarg, 1, SIZE_MAX, &v) < 0)
                return -1;
            a->cfg.max_request_bytes = (size_t)v;
            break;
        case OPT_MAX_PENDING:
            if (parse_size("max-pending-bytes", optarg, 1, KEEP_BYTES_MAX,
                           &v) < 0)
                return -1;
            a->cfg.max_pending_bytes = (size_t)v;
            break;
        case OPT_MAX_CONNS:
            if (parse_size("max-connections", optarg, 1, 1000000, &v) < 0)
                return -1;
            a->cfg.max_connections = (size_t)v;
            break;
        case OPT_CONN_TIMEOUT:
            if (parse_size("connection-timeout", optarg, 1, 3600, &v) < 0)
                return -1;
            a->cfg.connection_timeout_s = (unsigned)v;
            break;
        case OPT_KEEP_BYTES:
            if (parse_size("keep-results-bytes", optarg, 0, KEEP_BYTES_MAX,
                           &v) < 0)
                return -1;
            a->cfg.keep_results_bytes = (size_t)v;
            break;
        case OPT_MAX_BODY:
            if (parse_size("max-body-bytes", optarg, 1, SIZE_MAX / 2,
                           &v) < 0)
                return -1;
            a->cfg.engine.max_body_bytes = (size_t)v;
            break;
        case OPT_MAX_RUNS:
            if (parse_size("max-runs", optarg, 1, 100000000, &v) < 0)
                return -1;
            a->cfg.engine.max_runs = (size_t)v;
            break;
        case OPT_MAX_HOST_CONNS:
            if (parse_size("max-host-connections", optarg, 0, 1000000,
                           &v) < 0)
                return -1;
            a->cfg.engine.max_host_conns = (long)v;
            break;
        case OPT_MAX_NODES:
            if (parse_size("max-nodes", optarg, 1, 10000000, &v) < 0)
                return -1;
            a->limits.max_nodes = (size_t)v;
            break;
        case OPT_LOG_LEVEL: {
            log_level lvl;

            if (log_level_parse(optarg, &lvl) < 0) {
                fprintf(stderr, "astermule: --log-level %s: expected error, "
                        "warn, info or debug\n", optarg);
                return -1;
            }
            log_set_level(lvl);
            break;
        }
        case OPT_HELP:
            fputs(usage, stdout);
            exit(0);
        default:
            fprintf(stderr, "astermule: see --help for the flags\n");
            return -1;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "astermule: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!a->dag == !a->dag_file) {
        fprintf(stderr, "astermule: give the workflow with exactly one of "
                "--dag or --dag-file\n");
        return -1;
    }
    if (a->input && !a->once) {
        fprintf(stderr, "astermule: --input only applies to --once\n");
        return -1;
    }
    if (a->once && a->check) {
        fprintf(stderr, "astermule: --once and --check exclude each other\n");
        return -1;
    }
    return 0;
}

/* Loads and validates the workflow; prints every problem. */
static wf_workflow *load(const args *a)
{
    wf_problems probs;
    wf_workflow *wf = NULL;
    int rc;

    wf_problems_init(&probs);
    if (a->dag)
        rc = wf_parse(a->dag, strlen(a->dag), &a->limits, &wf, &probs);
    else
        rc = wf_parse_file(a->dag_file, &a->limits, &wf, &probs);

    if (rc != 0) {
        char *text = wf_problems_format(&probs);

        if (a->dag_file)
            fprintf(stderr, "astermule: the workflow in %s is invalid:\n",
                    a->dag_file);
        else
            fprintf(stderr, "astermule: the workflow given with --dag is "
                    "invalid:\n");
        fputs(text ? text : "(out of memory listing the problems)\n",
              stderr);
        free(text);
        wf = NULL;
    } else {
        for (size_t i = 0; i < wf->n_nodes; i++) {
            if (wf->nodes[i].url)
                continue;
            fprintf(stderr, "astermule: node %s has no url: the engine runs "
                    "DAG documents, and an Astro's stars get their URLs "
                    "from the controller\n", wf->nodes[i].name);
            wf_free(wf);
            wf = NULL;
            break;
        }
    }
    wf_problems_free(&probs);
    return wf;
}

typedef struct once_state {
    int done;
    int healthy;
    char *doc;
} once_state;

static void on_once_done(void *ud, char *doc, size_t len, int healthy)
{
    once_state *st = ud;

    st->done = 1;
    st->healthy = healthy;
    st->doc = doc;
}

/* Waits for the run on e, or for SIGTERM or SIGINT (blocked by the
 * caller), which stop it: engine_free() then ends it, every node not
 * done failing with "engine stopped", and its result is still printed,
 * so a script that gives up on a run learns how far it came. */
static void wait_once(engine *e, const once_state *st)
{
    sigset_t sigs;
    int sigfd, slot = -1;

    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sigfd >= 0)
        slot = engine_watch_fd(e, sigfd);
    if (slot < 0)
        log_msg(LOG_WARN, "once", "cannot watch for signals: SIGTERM and "
                "SIGINT will not stop the run");

    while (!st->done) {
        engine_step(e, -1);
        if (slot >= 0 && engine_fd_ready(e, slot)) {
            log_msg(LOG_INFO, "once", "stopping on signal; the run ends "
                    "now");
            break;
        }
    }
    if (sigfd >= 0)
        close(sigfd);
}

static int run_once(const args *a, const wf_workflow *wf)
{
    once_state st = {0};
    char err[256];
    const char *text = a->input ? a->input : "";
    size_t skip = 0, len = jx_input(text, strlen(text), &skip);
    const char *input = len ? text + skip : "";
    engine *e;

    /* Read as strictly as a trigger's body, a byte order mark and
     * blanks alike. */
    if (len && jx_check_object(input, len, "--input", err,
                               sizeof(err)) < 0) {
        fprintf(stderr, "astermule: %s\n", err);
        return EXIT_INVALID;
    }

    e = engine_new(&a->cfg.engine, err, sizeof(err));
    if (!e) {
        fprintf(stderr, "astermule: cannot start the engine: %s\n", err);
        return 1;
    }
    if (engine_submit(e, wf, input, len, on_once_done, &st, NULL, err,
                      sizeof(err)) != 0) {
        fprintf(stderr, "astermule: cannot start the run: %s\n", err);
        engine_free(e);
        return 1;
    }
    wait_once(e, &st);
    engine_free(e);

    if (!st.doc) {
        fprintf(stderr, "astermule: the run produced no result\n");
        return 1;
    }
    printf("%s\n", st.doc);
    free(st.doc);
    return st.healthy ? 0 : 1;
}

/* Client connections and node calls each take a file descriptor: the
 * soft limit is raised to the hard one, and --max-connections lowered,
 * with a warning, to half of what is left, so that node calls keep
 * descriptors of their own. */
static void fit_fd_limit(am_config *cfg)
{
    struct rlimit rl;
    size_t most;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {.rlim_cur = rl.rlim_max,
                              .rlim_max = rl.rlim_max};

        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur / 2 > SIZE_MAX)
        return;
    most = rl.rlim_cur / 2 > 64 ? (size_t)(rl.rlim_cur / 2) - 32 : 16;
    if (cfg->max_connections <= most)
        return;
    log_msg(LOG_WARN, "main", "--max-connections %zu lowered to %zu: the "
            "process may open %llu files (ulimit -n), and node calls need "
            "their share", cfg->max_connections, most,
            (unsigned long long)rl.rlim_cur);
    cfg->max_connections = most;
}

int main(int argc, char **argv)
{
    args a = {0};
    wf_workflow *wf;
    int rc;

    /* Signals arrive through a signalfd in the loop, in both modes; they
     * are blocked from the start, so one that comes while a large
     * workflow is read still stops the process cleanly, once it runs. */
    sigset_t sigs;

    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigprocmask(SIG_BLOCK, &sigs, NULL);

    if (parse_args(argc, argv, &a) < 0)
        return EXIT_INVALID;

    wf = load(&a);
    if (!wf)
        return EXIT_INVALID;

    if (a.check) {
        printf("valid: %zu nodes\n", wf->n_nodes);
        wf_free(wf);
        return 0;
    }

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "astermule: cannot initialise libcurl\n");
        wf_free(wf);
        return 1;
    }

    if (a.once) {
        rc = run_once(&a, wf);
    } else {
        fit_fd_limit(&a.cfg);
        rc = am_serve(&a.cfg, wf);
    }

    wf_free(wf);
    curl_global_cleanup();
    return rc;
}
