/*
 * bench_engine: the engine measured against a hand-written libcurl client
 * making the same calls to the same test services in the same order.
 *
 * For every workflow (diamond, six and ten nodes) and concurrency level
 * (1, 4, 16, 64), three clients keep that many runs in flight for a fixed
 * time, taking turns in rounds (ten for 3 s cells) so that the machine's
 * drift touches them alike:
 *   direct     one thread, one libcurl multi handle on epoll, the
 *              workflow's calls in dependency order, inputs merged with
 *              cJSON as the engine merges them, every connection kept
 *              alive: the floor to compare with;
 *   engine     the astercore engine in this process (engine_submit and
 *              engine_step);
 *   astermule  the real binary serving the workflow, driven over HTTP by
 *              a libcurl load generator on keep-alive connections.
 * Then astermule's memory, idle and with 1,000 runs in flight, and its
 * start-up time to the first answer, the idle memory and start-up set
 * beside bench_floor's (a server on the same libraries doing nothing
 * else: the floor); the time to parse and validate a 10,000-node DAG;
 * and, when valgrind is on PATH, the instructions per run of each client
 * counted by callgrind: direct and engine by running this program with
 * --profile under it, astermule by two starts serving different numbers
 * of runs, whose difference leaves start-up and shutdown out. The report
 * is markdown, printed on stdout and, with --out, written as the
 * "## Engine" section of a benchmarks document.
 *
 * The test services are child processes started from the build's bin
 * directory (found from /proc/self/exe), one per node of the largest
 * workflow, and stopped at the end; astermule and bench_floor come from
 * there too. Every child dies with this process.
 *
 * Memory: a measuring tool, so running out of memory aborts it (the x*
 * helpers): a partial table would mislead more than none.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <valgrind/callgrind.h>

#include "engine.h"
#include "log.h"
#include "wf.h"

#define BE_MAX_NODES 10 /* nodes of the largest workflow */
#define BE_MAX_DEPS 4
#define BE_N_FLOWS 3
#define BE_N_LEVELS 4
#define BE_INFLIGHT_RUNS 1000
#define BE_BIG_NODES 10000
#define BE_BIG_WIDTH 100 /* nodes per layer of the big DAG */
#define BE_BIG_FANIN 3   /* dependencies of a node below the first layer */
/* Runs still in flight this long after a cell ends count as stuck: the
 * services answer in microseconds, so only a hang takes that long. */
#define BE_DRAIN_NS (5 * 1000000000LL)
#define BE_NODE_TIMEOUT_MS 30000L /* as the engine's default */
#define BE_TRIGGER_TIMEOUT_MS 10000L

static const int levels[BE_N_LEVELS] = {1, 4, 16, 64};

typedef enum mode { MODE_DIRECT = 0, MODE_ENGINE, MODE_MULE, N_MODES } mode;

static const char *const mode_names[N_MODES] = {"direct", "engine",
                                                "astermule"};

/* The workflows of the issue; a spec lists nodes in a topological order
 * as "name" or "name<dep,dep". */
static const struct {
    const char *title;
    const char *shape;
    const char *spec;
} flow_specs[BE_N_FLOWS] = {
    {"diamond", "A -> B,C -> D", "A;B<A;C<A;D<B,C"},
    {"six", "n1 -> n2,n3,n4; n5 <- n2,n3; n6 <- n4,n5",
     "n1;n2<n1;n3<n1;n4<n1;n5<n2,n3;n6<n4,n5"},
    {"ten", "s -> p1..p4; q1 <- p1,p2; q2 <- p2,p3; q3 <- p3,p4; "
     "j <- q1,q2,q3; t <- j",
     "s;p1<s;p2<s;p3<s;p4<s;q1<p1,p2;q2<p2,p3;q3<p3,p4;j<q1,q2,q3;t<j"},
};

typedef struct bench_cfg {
    double measure_s;  /* measured time per cell */
    double warm_s;     /* unmeasured time before it */
    int rounds;        /* the measured time is split into these */
    int quick;
    int start_reps;    /* astermule starts timed */
    int parse_reps;    /* parses of the big DAG timed */
    int slow_ms;       /* delay of the slow node in the memory test */
    long cg_runs;      /* runs counted by callgrind, direct and engine */
    long cg_mule_runs[2]; /* astermule's two starts under callgrind */
    const char *out;   /* document to update, or NULL */
    int prof_mode;     /* --profile: the client, or -1 */
    int prof_flow;     /* --profile: the workflow */
    long prof_runs;    /* --profile: runs counted */
    char bindir[4096];
} bench_cfg;

/* ---- allocation and strings --------------------------------------- */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);

    if (!q) {
        fprintf(stderr, "bench_engine: out of memory allocating %zu "
                "bytes\n", n);
        abort();
    }
    return q;
}

static void *xmalloc(size_t n)
{
    return xrealloc(NULL, n);
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = xmalloc(n * size);

    memset(p, 0, n * size);
    return p;
}

static char *xstrdup(const char *s)
{
    size_t n = strlen(s) + 1;

    return memcpy(xmalloc(n), s, n);
}

static char *xasprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0) {
        fprintf(stderr, "bench_engine: out of memory formatting\n");
        abort();
    }
    va_end(ap);
    return s;
}

/* A growing NUL-terminated buffer. */
typedef struct sbuf {
    char *p;
    size_t len;
    size_t cap;
} sbuf;

static void sb_reserve(sbuf *b, size_t more)
{
    size_t cap = b->cap ? b->cap : 256;

    if (b->len + more + 1 <= b->cap)
        return;
    while (cap < b->len + more + 1)
        cap *= 2;
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void sb_add(sbuf *b, const char *s, size_t n)
{
    sb_reserve(b, n);
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_printf(sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    int n;

    va_start(ap, fmt);
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0) {
        sb_reserve(b, (size_t)n);
        vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

static void sb_free(sbuf *b)
{
    free(b->p);
    *b = (sbuf){0};
}

/* libcurl write callback collecting a body into an sbuf. */
static size_t on_sb_write(char *data, size_t size, size_t nmemb, void *ud)
{
    sb_add(ud, data, size * nmemb);
    return size * nmemb;
}

/* ---- clocks and /proc ----------------------------------------------- */

static int64_t clock_ns(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

static int64_t self_cpu_ns(void)
{
    return clock_ns(CLOCK_PROCESS_CPUTIME_ID);
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* utime + stime from /proc/PID/stat, in ns; -1 when unreadable. */
static int64_t proc_stat_cpu_ns(pid_t pid)
{
    char path[64], buf[1024];
    unsigned long long ut, st;
    FILE *f;
    char *p = NULL;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    if (fgets(buf, sizeof(buf), f))
        p = strrchr(buf, ')');
    fclose(f);
    if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                     "%llu %llu", &ut, &st) != 2)
        return -1;
    return (int64_t)((ut + st) * (1000000000ULL /
                                  (unsigned long long)sysconf(_SC_CLK_TCK)));
}

/*
 * CPU time of another process, all threads. The process CPU clock counts
 * the same time as utime + stime in /proc/PID/stat, but in nanoseconds
 * rather than 10 ms ticks, which matters for cells of a few seconds.
 */
static int64_t proc_cpu_ns(pid_t pid)
{
    clockid_t id;

    if (clock_getcpuclockid(pid, &id) == 0) {
        struct timespec ts;

        if (clock_gettime(id, &ts) == 0)
            return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    }
    return proc_stat_cpu_ns(pid);
}

/* A "Vm...:" field of /proc/PID/status in KiB; -1 when unreadable. */
static long proc_status_kib(pid_t pid, const char *field)
{
    char path[64], line[256];
    size_t flen = strlen(field);
    long kib = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, field, flen) == 0) {
            kib = strtol(line + flen, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kib;
}

/*
 * TCP connections this network namespace has opened so far (ActiveOpens
 * in /proc/net/snmp), or -1. Only the benchmark's processes connect
 * while a cell runs, so the growth over a cell tells whether the
 * client under test reuses its connections.
 */
static long long tcp_active_opens(void)
{
    char names[1024], values[1024];
    long long v = -1;
    FILE *f = fopen("/proc/net/snmp", "r");

    if (!f)
        return -1;
    while (fgets(names, sizeof(names), f)) {
        if (strncmp(names, "Tcp:", 4) != 0 ||
            !fgets(values, sizeof(values), f))
            continue;

        char *sn = NULL, *sv = NULL;
        char *n = strtok_r(names, " \n", &sn);
        char *x = strtok_r(values, " \n", &sv);

        while (n && x && strcmp(n, "ActiveOpens") != 0) {
            n = strtok_r(NULL, " \n", &sn);
            x = strtok_r(NULL, " \n", &sv);
        }
        if (n && x)
            v = atoll(x);
        break;
    }
    fclose(f);
    return v;
}

/* ---- samples and slot lists ----------------------------------------- */

typedef struct samples {
    int64_t *v;
    size_t n;
    size_t cap;
} samples;

static void samples_push(samples *s, int64_t x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
    }
    s->v[s->n++] = x;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return (x > y) - (x < y);
}

/* Nearest-rank quantile q of the samples (sorted here); 0 when empty. */
static int64_t samples_rank(samples *s, double q)
{
    size_t k;

    if (s->n == 0)
        return 0;
    qsort(s->v, s->n, sizeof(*s->v), cmp_i64);
    k = (size_t)ceil(q * (double)s->n);
    return s->v[k > 0 ? k - 1 : 0];
}

static void samples_free(samples *s)
{
    free(s->v);
    *s = (samples){0};
}

/* Indices of the free slots of a fixed pool. */
typedef struct freelist {
    size_t *v;
    size_t n;
} freelist;

static void fl_init(freelist *f, size_t n)
{
    f->v = xmalloc(n * sizeof(*f->v));
    for (size_t i = 0; i < n; i++)
        f->v[i] = n - 1 - i;
    f->n = n;
}

static int fl_pop(freelist *f, size_t *out)
{
    if (f->n == 0)
        return -1;
    *out = f->v[--f->n];
    return 0;
}

static void fl_push(freelist *f, size_t i)
{
    f->v[f->n++] = i;
}

static void fl_free(freelist *f)
{
    free(f->v);
    *f = (freelist){0};
}

/* ---- child processes ------------------------------------------------ */

typedef struct child {
    char what[64]; /* "test-service svc3", for messages */
    pid_t pid;
    int out_fd;    /* the child's stdout */
    int port;
} child;

/*
 * Starts argv[0] with its stdout on a pipe. The child gets SIGKILL when
 * this process ends, so an aborted benchmark leaves no services behind.
 */
static int child_start(child *ch, char *const argv[], char *err,
                       size_t errlen)
{
    pid_t parent = getpid();
    int fds[2];

    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "cannot make a pipe for %s: %s", ch->what,
                 strerror(errno));
        return -1;
    }
    ch->pid = fork();
    if (ch->pid < 0) {
        snprintf(err, errlen, "cannot fork %s: %s", ch->what,
                 strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if (ch->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fds[1], STDOUT_FILENO);
        close_range(3, ~0U, 0);
        execv(argv[0], argv);
        _exit(127);
    }
    close(fds[1]);
    ch->out_fd = fds[0];
    ch->port = 0;
    return 0;
}

/* Reads "listening on ADDR:PORT" from the child into ch->port. */
static int child_wait_port(child *ch, int timeout_ms, char *err,
                           size_t errlen)
{
    int64_t end = now_ns() + (int64_t)timeout_ms * 1000000;
    char line[256];
    size_t len = 0;

    while (len < sizeof(line) - 1) {
        struct pollfd p = {.fd = ch->out_fd, .events = POLLIN};
        int left = (int)((end - now_ns()) / 1000000);

        if (left <= 0 || poll(&p, 1, left) <= 0) {
            snprintf(err, errlen, "%s printed no address within %d ms",
                     ch->what, timeout_ms);
            return -1;
        }
        if (read(ch->out_fd, line + len, 1) != 1) {
            snprintf(err, errlen, "%s exited before listening", ch->what);
            return -1;
        }
        if (line[len] == '\n')
            break;
        len++;
    }
    line[len] = '\0';

    char *colon = strrchr(line, ':');

    if (strncmp(line, "listening on ", 13) != 0 || !colon ||
        (ch->port = atoi(colon + 1)) <= 0 || ch->port > 65535) {
        snprintf(err, errlen, "%s printed '%.100s' instead of "
                 "'listening on ADDR:PORT'", ch->what, line);
        return -1;
    }
    return 0;
}

/*
 * Waits up to timeout_ms for a child to end, then SIGKILLs it, saying
 * why_late ("ignored SIGTERM for 5 s"). Returns 0 when it exited with
 * status 0; otherwise says how it ended, followed by when (" on
 * SIGTERM"), and returns -1.
 */
static int child_reap(child *ch, int64_t timeout_ms, const char *why_late,
                      const char *when)
{
    int64_t end = now_ns() + timeout_ms * 1000000;
    int status = 0, reaped = 0;

    while (!reaped) {
        reaped = waitpid(ch->pid, &status, WNOHANG) == ch->pid;
        if (reaped || now_ns() >= end)
            break;
        sleep_us(10000);
    }
    if (!reaped) {
        fprintf(stderr, "bench_engine: %s (pid %d) %s; killing it\n",
                ch->what, (int)ch->pid, why_late);
        kill(ch->pid, SIGKILL);
        waitpid(ch->pid, &status, 0);
    }
    close(ch->out_fd);
    ch->pid = 0;

    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFEXITED(status))
        fprintf(stderr, "bench_engine: %s exited with status %d%s\n",
                ch->what, WEXITSTATUS(status), when);
    else if (WIFSIGNALED(status))
        fprintf(stderr, "bench_engine: %s was ended by signal %d\n",
                ch->what, WTERMSIG(status));
    return -1;
}

/* Stops a child with SIGTERM, SIGKILL after 5 s; as child_reap. */
static int child_stop(child *ch)
{
    if (ch->pid <= 0)
        return 0;
    kill(ch->pid, SIGTERM);
    return child_reap(ch, 5000, "ignored SIGTERM for 5 s", " on SIGTERM");
}

/* Starts astermule serving dag; port 0 lets it pick one, read back. */
static int mule_start(child *ch, const bench_cfg *cfg, const char *dag,
                      int port, int wait_port, char *err, size_t errlen)
{
    char *path = xasprintf("%s/astermule", cfg->bindir);
    char portbuf[16];
    char *argv[] = {path, "--dag", (char *)dag, "--address", "127.0.0.1",
                    "--port", portbuf, "--log-level", "warn", NULL};
    int rc;

    snprintf(ch->what, sizeof(ch->what), "astermule");
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    rc = child_start(ch, argv, err, errlen);
    if (rc == 0 && wait_port)
        rc = child_wait_port(ch, 5000, err, errlen);
    if (rc != 0 && ch->pid > 0)
        child_stop(ch);
    free(path);
    return rc;
}

/*
 * Starts bench_floor listening on port (it cannot pick one itself): a
 * server on astermule's libraries that does nothing else.
 */
static int floor_start(child *ch, const bench_cfg *cfg, int port,
                       int wait_port, char *err, size_t errlen)
{
    char *path = xasprintf("%s/bench_floor", cfg->bindir);
    char portbuf[16];
    char *argv[] = {path, "--port", portbuf, NULL};
    int rc;

    snprintf(ch->what, sizeof(ch->what), "bench_floor");
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    rc = child_start(ch, argv, err, errlen);
    if (rc == 0 && wait_port)
        rc = child_wait_port(ch, 5000, err, errlen);
    if (rc != 0 && ch->pid > 0)
        child_stop(ch);
    free(path);
    return rc;
}

/* ---- workflows ------------------------------------------------------ */

typedef struct flow {
    const char *title;
    const char *shape;
    size_t n;
    char names[BE_MAX_NODES][8];
    size_t n_deps[BE_MAX_NODES];
    size_t deps[BE_MAX_NODES][BE_MAX_DEPS];
    size_t n_succs[BE_MAX_NODES];
    size_t succs[BE_MAX_NODES][BE_MAX_NODES];
    size_t n_exits;
    size_t exits[BE_MAX_NODES];
    char *urls[BE_MAX_NODES]; /* set by flow_bind */
    char *dag;                /* the DAG document, set by flow_bind */
    wf_workflow *wf;          /* dag parsed, set by flow_bind */
} flow;

static long flow_find(const flow *f, const char *name)
{
    for (size_t i = 0; i < f->n; i++) {
        if (strcmp(f->names[i], name) == 0)
            return (long)i;
    }
    return -1;
}

/* Adds "name" or "name<dep,dep" as the next node. */
static int flow_add(flow *f, char *tok, char *err, size_t errlen)
{
    char *deps = strchr(tok, '<'), *save = NULL;
    size_t i = f->n;

    if (deps)
        *deps++ = '\0';
    if (i == BE_MAX_NODES || strlen(tok) >= sizeof(f->names[i])) {
        snprintf(err, errlen, "workflow %s: node %s does not fit",
                 f->title, tok);
        return -1;
    }
    snprintf(f->names[i], sizeof(f->names[i]), "%s", tok);
    f->n++;

    for (char *d = deps ? strtok_r(deps, ",", &save) : NULL; d;
         d = strtok_r(NULL, ",", &save)) {
        long j = flow_find(f, d);

        if (j < 0 || f->n_deps[i] == BE_MAX_DEPS) {
            snprintf(err, errlen, "workflow %s: dependency %s of %s is "
                     "unknown or one too many", f->title, d, tok);
            return -1;
        }
        f->deps[i][f->n_deps[i]++] = (size_t)j;
        f->succs[j][f->n_succs[j]++] = i;
    }
    return 0;
}

static int flow_parse(flow *f, int which, char *err, size_t errlen)
{
    char *copy = xstrdup(flow_specs[which].spec), *save = NULL;
    int rc = 0;

    memset(f, 0, sizeof(*f));
    f->title = flow_specs[which].title;
    f->shape = flow_specs[which].shape;
    for (char *tok = strtok_r(copy, ";", &save); tok && rc == 0;
         tok = strtok_r(NULL, ";", &save))
        rc = flow_add(f, tok, err, errlen);
    free(copy);

    for (size_t i = 0; i < f->n; i++) {
        if (f->n_succs[i] == 0)
            f->exits[f->n_exits++] = i;
    }
    return rc;
}

/*
 * Points node i at the test service on ports[i] and builds the DAG
 * document; node `slow` (if < n) gets query appended to its URL. The
 * document leaves actions to their defaults: GET for entry nodes, POST
 * for the rest, which is what the direct client does too.
 */
static int flow_bind(flow *f, const int *ports, size_t slow,
                     const char *query, char *err, size_t errlen)
{
    cJSON *doc = cJSON_CreateObject();
    cJSON *nodes = cJSON_AddArrayToObject(doc, "nodes");
    wf_problems probs;
    int rc = 0;

    for (size_t i = 0; i < f->n; i++) {
        cJSON *n = cJSON_CreateObject();
        cJSON *deps = cJSON_CreateArray();

        f->urls[i] = xasprintf("http://127.0.0.1:%d/test%s", ports[i],
                               i == slow ? query : "");
        cJSON_AddStringToObject(n, "name", f->names[i]);
        cJSON_AddStringToObject(n, "url", f->urls[i]);
        for (size_t k = 0; k < f->n_deps[i]; k++)
            cJSON_AddItemToArray(deps, cJSON_CreateString(
                                           f->names[f->deps[i][k]]));
        cJSON_AddItemToObject(n, "dependencies", deps);
        cJSON_AddItemToArray(nodes, n);
    }
    f->dag = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    if (!f->dag) {
        fprintf(stderr, "bench_engine: out of memory printing a DAG\n");
        abort();
    }

    wf_problems_init(&probs);
    if (wf_parse(f->dag, strlen(f->dag), NULL, &f->wf, &probs) != 0) {
        char *text = wf_problems_format(&probs);

        snprintf(err, errlen, "wf_parse refused the %s workflow: %s",
                 f->title, text ? text : "(no problems listed)");
        free(text);
        rc = -1;
    }
    wf_problems_free(&probs);
    return rc;
}

static void flow_unbind(flow *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->urls[i]);
        f->urls[i] = NULL;
    }
    free(f->dag);
    f->dag = NULL;
    wf_free(f->wf);
    f->wf = NULL;
}

/* ---- cells: C runs kept in flight for a fixed time ------------------ */

typedef enum phase { PH_WARMUP = 0, PH_MEASURE, PH_DRAIN } phase;

/* What a client offers the cell driver. */
typedef struct mode_ops {
    int (*start)(void *ctx); /* starts one run; 0 or -1 */
    void (*step)(void *ctx, int timeout_ms);
} mode_ops;

/* One client at one concurrency; its totals add up over rounds. */
typedef struct cell {
    const mode_ops *ops;
    void *ctx;
    pid_t server; /* astermule, whose CPU counts as the client's; or 0 */
    phase ph;
    size_t inflight;
    uint64_t budget;   /* runs that may still start */
    uint64_t measured; /* runs ended within the measured windows */
    uint64_t failures; /* unhealthy or refused runs, any phase */
    int stuck;         /* runs outlived a drain */
    int64_t window_ns; /* measured time */
    int64_t cpu_ns;    /* this process's CPU in the windows */
    int64_t srv_ns;    /* the server's CPU in the windows */
    long long opens;   /* TCP connections opened in them; -1: unknown */
    samples lat;       /* ns, healthy runs ended in the windows */
} cell;

typedef struct result {
    int done;
    double med_us;
    double p99_us;
    double rps;
    double cpu_us;     /* per run: the client, or astermule */
    double gen_cpu_us; /* per run: the load generator (astermule only) */
    double conns;      /* TCP connections opened per run */
    uint64_t runs;
    uint64_t failures;
    int stuck; /* runs still in flight after the drain timeout */
} result;

static void cell_start_one(cell *c)
{
    if (c->budget == 0)
        return;
    c->budget--;
    c->inflight++;
    if (c->ops->start(c->ctx) < 0) {
        c->inflight--;
        c->failures++;
    }
}

/* Every client calls this when a run ends; a new one takes its place
 * until the cell drains. */
static void cell_done(cell *c, int64_t start_ns, int ok)
{
    int64_t end = now_ns();

    c->inflight--;
    if (!ok)
        c->failures++;
    if (c->ph == PH_MEASURE) {
        c->measured++;
        if (ok)
            samples_push(&c->lat, end - start_ns);
    }
    if (c->ph != PH_DRAIN)
        cell_start_one(c);
}

static void cell_until(cell *c, int64_t end)
{
    while (now_ns() < end)
        c->ops->step(c->ctx, 5);
}

/*
 * One round: warms up, measures and drains, adding to the cell's totals.
 * CPU is this process's and, when the cell has a server, that process's
 * too (this one is then only the load generator).
 */
static void cell_round(cell *c, int conc, double warm_s, double measure_s)
{
    int64_t t0, cpu0, srv0 = 0, end;
    long long opens0, opens1;

    c->budget = UINT64_MAX;
    c->ph = PH_WARMUP;
    for (int k = 0; k < conc; k++)
        cell_start_one(c);
    cell_until(c, now_ns() + (int64_t)(warm_s * 1e9));

    c->ph = PH_MEASURE;
    if (c->server > 0)
        srv0 = proc_cpu_ns(c->server);
    cpu0 = self_cpu_ns();
    opens0 = tcp_active_opens();
    t0 = now_ns();
    cell_until(c, t0 + (int64_t)(measure_s * 1e9));
    c->window_ns += now_ns() - t0;
    opens1 = tcp_active_opens();
    c->cpu_ns += self_cpu_ns() - cpu0;
    if (c->server > 0)
        c->srv_ns += proc_cpu_ns(c->server) - srv0;
    if (opens0 < 0 || opens1 < 0 || c->opens < 0)
        c->opens = -1;
    else
        c->opens += opens1 - opens0;

    c->ph = PH_DRAIN;
    end = now_ns() + BE_DRAIN_NS;
    while (c->inflight > 0 && now_ns() < end)
        c->ops->step(c->ctx, 5);
    if (c->inflight > 0)
        c->stuck = 1;
}

static void cell_result(cell *c, result *out)
{
    double runs = c->measured ? (double)c->measured : 1;

    out->done = 1;
    out->stuck = c->stuck;
    out->runs = c->measured;
    out->failures = c->failures;
    out->med_us = (double)samples_rank(&c->lat, 0.5) / 1e3;
    out->p99_us = (double)samples_rank(&c->lat, 0.99) / 1e3;
    out->rps = c->window_ns > 0 ?
        (double)c->measured / ((double)c->window_ns / 1e9) : 0;
    out->conns = c->opens < 0 ? -1 : (double)c->opens / runs;
    if (c->server > 0) {
        out->cpu_us = (double)c->srv_ns / 1e3 / runs;
        out->gen_cpu_us = (double)c->cpu_ns / 1e3 / runs;
    } else {
        out->cpu_us = (double)c->cpu_ns / 1e3 / runs;
    }
}

/* ---- mux: a libcurl multi handle driven by epoll -------------------- */

typedef void (*mux_done_fn)(void *ud, CURL *easy, CURLcode res);

typedef struct mux {
    CURLM *multi;
    int epfd;
    int64_t due_ns; /* when libcurl wants its timeout; -1: never */
    mux_done_fn done;
    void *ud;
} mux;

static int on_mux_socket(CURL *easy, curl_socket_t s, int what, void *ud,
                         void *sockp)
{
    mux *m = ud;
    struct epoll_event ev = {.data.fd = s};

    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(m->epfd, EPOLL_CTL_DEL, s, NULL);
        return 0;
    }
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;

    /* sockp marks a socket already in the set; a reused fd number whose
     * old socket was never removed shows up as EEXIST. */
    if (!sockp && epoll_ctl(m->epfd, EPOLL_CTL_ADD, s, &ev) == 0) {
        curl_multi_assign(m->multi, s, m);
        return 0;
    }
    if ((sockp || errno == EEXIST) &&
        epoll_ctl(m->epfd, EPOLL_CTL_MOD, s, &ev) == 0) {
        curl_multi_assign(m->multi, s, m);
        return 0;
    }
    fprintf(stderr, "bench_engine: cannot watch socket %d: %s\n", (int)s,
            strerror(errno));
    return -1;
}

static int on_mux_timer(CURLM *multi, long timeout_ms, void *ud)
{
    mux *m = ud;

    m->due_ns = timeout_ms < 0 ? -1 : now_ns() + timeout_ms * 1000000LL;
    return 0;
}

static int mux_init(mux *m, mux_done_fn done, void *ud, char *err,
                    size_t errlen)
{
    m->due_ns = -1;
    m->done = done;
    m->ud = ud;
    m->epfd = epoll_create1(EPOLL_CLOEXEC);
    m->multi = curl_multi_init();
    if (m->epfd < 0 || !m->multi) {
        snprintf(err, errlen, "cannot create an epoll set or a libcurl "
                 "multi handle: %s", strerror(errno));
        if (m->epfd >= 0)
            close(m->epfd);
        if (m->multi)
            curl_multi_cleanup(m->multi);
        return -1;
    }
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETFUNCTION, on_mux_socket);
    curl_multi_setopt(m->multi, CURLMOPT_SOCKETDATA, m);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERFUNCTION, on_mux_timer);
    curl_multi_setopt(m->multi, CURLMOPT_TIMERDATA, m);
    return 0;
}

/* The owner removes its easy handles first. */
static void mux_free(mux *m)
{
    curl_multi_cleanup(m->multi);
    close(m->epfd);
}

static void mux_reap(mux *m)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(m->multi, &left))) {
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_multi_remove_handle(m->multi, easy);
        m->done(m->ud, easy, res);
    }
}

static void mux_timeout(mux *m)
{
    int running;

    if (m->due_ns < 0 || m->due_ns > now_ns())
        return;
    m->due_ns = -1;
    curl_multi_socket_action(m->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    mux_reap(m);
}

/* Waits at most timeout_ms for sockets or libcurl's timer, then hands
 * every finished transfer to the done callback. */
static void mux_step(mux *m, int timeout_ms)
{
    struct epoll_event evs[128];
    int64_t now = now_ns();
    int wait = timeout_ms, running, n;

    if (m->due_ns >= 0) {
        int64_t left = (m->due_ns - now + 999999) / 1000000;

        if (left < 0)
            left = 0;
        if (wait < 0 || left < wait)
            wait = (int)left;
    }

    n = epoll_wait(m->epfd, evs, 128, wait);
    for (int k = 0; k < n; k++) {
        int flags = 0;

        if (evs[k].events & EPOLLIN)
            flags |= CURL_CSELECT_IN;
        if (evs[k].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (evs[k].events & (EPOLLERR | EPOLLHUP))
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(m->multi, evs[k].data.fd, flags,
                                 &running);
    }
    mux_timeout(m);
    mux_reap(m);

    /* Transfers started by the callbacks ask for an immediate timeout:
     * serve it now rather than after another wait. */
    mux_timeout(m);
}

/* ---- the direct client ---------------------------------------------- */

typedef enum dn_state { DN_WAITING = 0, DN_RUNNING, DN_DONE, DN_DEAD }
    dn_state;

typedef struct dc_call {
    struct dc_run *run;
    size_t node;
    CURL *easy; /* configured once, reused by every run of the slot */
    sbuf out;
    dn_state state;
} dc_call;

typedef struct dc_run {
    struct direct *d;
    size_t slot;
    int64_t start_ns;
    size_t left; /* nodes not settled */
    int failed;
    size_t pending[BE_MAX_NODES];
    char *in[BE_MAX_NODES]; /* merged inputs, freed when the run ends */
    dc_call calls[BE_MAX_NODES];
} dc_run;

typedef struct direct {
    const flow *f;
    cell *cell;
    mux mux;
    struct curl_slist *hdr;
    dc_run *runs;
    size_t n_runs;
    freelist free;
} direct;

static void dc_call_start(dc_run *r, size_t i);

/* Deep-merges src into dst, dst winning every conflict (the earlier
 * dependency wins); src is emptied. */
static void dc_merge_into(cJSON *dst, cJSON *src)
{
    cJSON *item;

    while ((item = src->child)) {
        cJSON_DetachItemViaPointer(src, item);

        cJSON *have = cJSON_GetObjectItemCaseSensitive(dst, item->string);

        if (!have) {
            cJSON_AddItemToObject(dst, item->string, item);
            continue;
        }
        if (cJSON_IsObject(have) && cJSON_IsObject(item))
            dc_merge_into(have, item);
        cJSON_Delete(item);
    }
}

/* Parses and merges the given outputs; NULL when one is not an object. */
static cJSON *dc_merge(const sbuf *const *outs, size_t n)
{
    cJSON *dst = NULL;

    for (size_t k = 0; k < n; k++) {
        cJSON *v;

        if (outs[k]->len == 0)
            continue;
        v = cJSON_ParseWithLength(outs[k]->p, outs[k]->len);
        if (!cJSON_IsObject(v)) {
            cJSON_Delete(v);
            cJSON_Delete(dst);
            return NULL;
        }
        if (!dst) {
            dst = v;
            continue;
        }
        dc_merge_into(dst, v);
        cJSON_Delete(v);
    }
    return dst ? dst : cJSON_CreateObject();
}

/* Sets the request body of node i: its one predecessor's output as it
 * is, or several merged. */
static int dc_input(dc_run *r, size_t i)
{
    const flow *f = r->d->f;
    const sbuf *outs[BE_MAX_DEPS];
    CURL *easy = r->calls[i].easy;
    const char *body;
    size_t len;

    for (size_t k = 0; k < f->n_deps[i]; k++)
        outs[k] = &r->calls[f->deps[i][k]].out;

    if (f->n_deps[i] == 1) {
        body = outs[0]->p ? outs[0]->p : "";
        len = outs[0]->len;
    } else {
        cJSON *m = dc_merge(outs, f->n_deps[i]);

        r->in[i] = m ? cJSON_PrintUnformatted(m) : NULL;
        cJSON_Delete(m);
        if (!r->in[i])
            return -1;
        body = r->in[i];
        len = strlen(body);
    }
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body);
    return 0;
}

/* The run's result: the exit outputs merged under "data", as a caller
 * of the engine would get it, built and then dropped. */
static void dc_result(dc_run *r)
{
    const flow *f = r->d->f;
    const sbuf *outs[BE_MAX_NODES];
    cJSON *doc = cJSON_CreateObject(), *status, *data;
    char *text;

    for (size_t k = 0; k < f->n_exits; k++)
        outs[k] = &r->calls[f->exits[k]].out;
    data = dc_merge(outs, f->n_exits);
    if (!data)
        r->failed = 1;
    status = cJSON_AddObjectToObject(doc, "status");
    cJSON_AddBoolToObject(status, "health", !r->failed);
    cJSON_AddItemToObject(doc, "data", data ? data : cJSON_CreateNull());
    text = cJSON_PrintUnformatted(doc);
    cJSON_Delete(doc);
    free(text);
}

static void dc_finish(dc_run *r)
{
    direct *d = r->d;

    if (!r->failed)
        dc_result(r);
    for (size_t i = 0; i < d->f->n; i++) {
        free(r->in[i]);
        r->in[i] = NULL;
    }
    fl_push(&d->free, r->slot);
    cell_done(d->cell, r->start_ns, !r->failed);
}

static void dc_settle(dc_run *r)
{
    if (r->left == 0)
        dc_finish(r);
}

/* Skips every waiting node downstream of i. */
static void dc_skip(dc_run *r, size_t i)
{
    const flow *f = r->d->f;

    for (size_t k = 0; k < f->n_succs[i]; k++) {
        dc_call *s = &r->calls[f->succs[i][k]];

        if (s->state != DN_WAITING)
            continue;
        s->state = DN_DEAD;
        r->left--;
        dc_skip(r, s->node);
    }
}

static void dc_fail(dc_run *r, size_t i)
{
    r->calls[i].state = DN_DEAD;
    r->failed = 1;
    r->left--;
    dc_skip(r, i);
    dc_settle(r);
}

static void dc_call_start(dc_run *r, size_t i)
{
    dc_call *c = &r->calls[i];

    if (r->d->f->n_deps[i] > 0 && dc_input(r, i) < 0) {
        dc_fail(r, i);
        return;
    }
    c->out.len = 0;
    c->state = DN_RUNNING;
    if (curl_multi_add_handle(r->d->mux.multi, c->easy) != CURLM_OK)
        dc_fail(r, i);
}

static void on_direct_done(void *ud, CURL *easy, CURLcode res)
{
    dc_call *c = NULL;
    long status = 0;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

    dc_run *r = c->run;
    const flow *f = r->d->f;

    if (res != CURLE_OK || status < 200 || status > 299) {
        dc_fail(r, c->node);
        return;
    }
    c->state = DN_DONE;
    for (size_t k = 0; k < f->n_succs[c->node]; k++) {
        size_t s = f->succs[c->node][k];

        if (--r->pending[s] == 0 && r->calls[s].state == DN_WAITING)
            dc_call_start(r, s);
    }

    /* Counted only now, so that a successor failing at once cannot end
     * the run while the loop above still walks it. */
    r->left--;
    dc_settle(r);
}

static int direct_start(void *ctx)
{
    direct *d = ctx;
    const flow *f = d->f;
    size_t slot;
    dc_run *r;

    if (fl_pop(&d->free, &slot) < 0)
        return -1;
    r = &d->runs[slot];
    r->start_ns = now_ns();
    r->failed = 0;
    r->left = f->n + 1; /* the extra one holds the run while it starts */
    for (size_t i = 0; i < f->n; i++) {
        r->pending[i] = f->n_deps[i];
        r->calls[i].state = DN_WAITING;
    }
    for (size_t i = 0; i < f->n; i++) {
        if (f->n_deps[i] == 0)
            dc_call_start(r, i);
    }
    r->left--;
    dc_settle(r);
    return 0;
}

static void direct_step(void *ctx, int timeout_ms)
{
    direct *d = ctx;

    mux_step(&d->mux, timeout_ms);
}

static const mode_ops direct_ops = {direct_start, direct_step};

/* Sets up the easy handle of node i of one run slot: URL, method and
 * headers never change, only the body does. */
static CURL *dc_easy(direct *d, dc_call *c)
{
    CURL *easy = curl_easy_init();

    if (!easy)
        return NULL;
    curl_easy_setopt(easy, CURLOPT_URL, d->f->urls[c->node]);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_sb_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, &c->out);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, BE_NODE_TIMEOUT_MS);
    if (d->f->n_deps[c->node] > 0) {
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, d->hdr);
    }
    return easy;
}

static void direct_free(direct *d)
{
    for (size_t s = 0; s < d->n_runs; s++) {
        for (size_t i = 0; i < d->f->n; i++) {
            dc_call *c = &d->runs[s].calls[i];

            if (c->easy) {
                curl_multi_remove_handle(d->mux.multi, c->easy);
                curl_easy_cleanup(c->easy);
            }
            sb_free(&c->out);
            free(d->runs[s].in[i]);
        }
    }
    mux_free(&d->mux);
    curl_slist_free_all(d->hdr);
    free(d->runs);
    fl_free(&d->free);
}

static int direct_init(direct *d, const flow *f, cell *c, size_t conc,
                       char *err, size_t errlen)
{
    memset(d, 0, sizeof(*d));
    d->f = f;
    d->cell = c;
    if (mux_init(&d->mux, on_direct_done, d, err, errlen) < 0)
        return -1;

    /* libcurl keeps at most 4 idle connections per easy handle in the
     * multi at that moment; with more services than that in a workflow
     * it would close and reopen connections. Room for one connection per
     * node of every run slot keeps them all alive. */
    curl_multi_setopt(d->mux.multi, CURLMOPT_MAXCONNECTS,
                      (long)(conc * f->n));

    /* The same headers as the engine sends with a body. */
    d->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    d->hdr = curl_slist_append(d->hdr, "Expect:");
    d->runs = xcalloc(conc, sizeof(*d->runs));
    d->n_runs = conc;
    fl_init(&d->free, conc);
    for (size_t s = 0; s < conc; s++) {
        dc_run *r = &d->runs[s];

        r->d = d;
        r->slot = s;
        for (size_t i = 0; i < f->n; i++) {
            r->calls[i].run = r;
            r->calls[i].node = i;
            r->calls[i].easy = dc_easy(d, &r->calls[i]);
            if (!r->calls[i].easy) {
                snprintf(err, errlen, "curl_easy_init failed");
                direct_free(d);
                return -1;
            }
        }
    }
    return 0;
}

/* ---- the engine in this process -------------------------------------- */

typedef struct en_slot {
    struct inproc *x;
    size_t idx;
    int64_t start_ns;
} en_slot;

typedef struct inproc {
    engine *e;
    const wf_workflow *wf;
    cell *cell;
    en_slot *slots;
    freelist free;
    int warned;
} inproc;

static void on_inproc_done(void *ud, char *doc, size_t len, int healthy)
{
    en_slot *s = ud;
    inproc *x = s->x;

    free(doc);
    fl_push(&x->free, s->idx);
    cell_done(x->cell, s->start_ns, healthy);
}

static int inproc_start(void *ctx)
{
    inproc *x = ctx;
    char err[256];
    size_t k;

    if (fl_pop(&x->free, &k) < 0)
        return -1;
    x->slots[k].start_ns = now_ns();
    if (engine_submit(x->e, x->wf, NULL, 0, on_inproc_done, &x->slots[k],
                      NULL, err, sizeof(err)) == 0)
        return 0;
    if (!x->warned++)
        fprintf(stderr, "bench_engine: engine_submit refused a run: %s\n",
                err);
    fl_push(&x->free, k);
    return -1;
}

static void inproc_step(void *ctx, int timeout_ms)
{
    inproc *x = ctx;

    engine_step(x->e, timeout_ms);
}

static const mode_ops inproc_ops = {inproc_start, inproc_step};

static int inproc_init(inproc *x, const flow *f, cell *c, size_t conc,
                       char *err, size_t errlen)
{
    memset(x, 0, sizeof(*x));
    x->e = engine_new(NULL, err, errlen);
    if (!x->e)
        return -1;
    x->wf = f->wf;
    x->cell = c;
    x->slots = xcalloc(conc, sizeof(*x->slots));
    for (size_t k = 0; k < conc; k++) {
        x->slots[k].x = x;
        x->slots[k].idx = k;
    }
    fl_init(&x->free, conc);
    return 0;
}

/* engine_free() ends the runs still in flight through their callbacks. */
static void inproc_free(inproc *x)
{
    engine_free(x->e);
    free(x->slots);
    fl_free(&x->free);
}

/* ---- the load generator for astermule ------------------------------- */

typedef struct lg_slot {
    struct loadgen *g;
    size_t idx;
    CURL *easy;
    sbuf body;
    int64_t start_ns;
} lg_slot;

typedef struct loadgen {
    mux mux;
    cell *cell;
    lg_slot *slots;
    size_t n_slots;
    freelist free;
    struct curl_slist *hdr;
    long want_status;
    const char *want_text; /* must appear in the answer */
} loadgen;

static void on_loadgen_done(void *ud, CURL *easy, CURLcode res)
{
    loadgen *g = ud;
    lg_slot *s = NULL;
    long status = 0;
    int ok;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&s);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    ok = res == CURLE_OK && status == g->want_status && s->body.p &&
         strstr(s->body.p, g->want_text) != NULL;
    fl_push(&g->free, s->idx);
    cell_done(g->cell, s->start_ns, ok);
}

static int loadgen_start(void *ctx)
{
    loadgen *g = ctx;
    lg_slot *s;
    size_t k;

    if (fl_pop(&g->free, &k) < 0)
        return -1;
    s = &g->slots[k];
    s->body.len = 0;
    s->start_ns = now_ns();
    if (curl_multi_add_handle(g->mux.multi, s->easy) == CURLM_OK)
        return 0;
    fl_push(&g->free, k);
    return -1;
}

static void loadgen_step(void *ctx, int timeout_ms)
{
    loadgen *g = ctx;

    mux_step(&g->mux, timeout_ms);
}

static const mode_ops loadgen_ops = {loadgen_start, loadgen_step};

static void loadgen_free(loadgen *g)
{
    for (size_t k = 0; k < g->n_slots; k++) {
        if (g->slots[k].easy) {
            curl_multi_remove_handle(g->mux.multi, g->slots[k].easy);
            curl_easy_cleanup(g->slots[k].easy);
        }
        sb_free(&g->slots[k].body);
    }
    mux_free(&g->mux);
    curl_slist_free_all(g->hdr);
    free(g->slots);
    fl_free(&g->free);
}

/*
 * n slots, each one request to url: a GET, or with post a POST of "{}".
 * A run is healthy when the answer has want_status and contains
 * want_text within timeout_ms.
 */
static int loadgen_init(loadgen *g, cell *c, size_t n, const char *url,
                        int post, long want_status, const char *want_text,
                        long timeout_ms, char *err, size_t errlen)
{
    memset(g, 0, sizeof(*g));
    g->cell = c;
    g->want_status = want_status;
    g->want_text = want_text;
    if (mux_init(&g->mux, on_loadgen_done, g, err, errlen) < 0)
        return -1;
    g->hdr = curl_slist_append(NULL, "Content-Type: application/json");
    g->slots = xcalloc(n, sizeof(*g->slots));
    g->n_slots = n;
    fl_init(&g->free, n);
    for (size_t k = 0; k < n; k++) {
        lg_slot *s = &g->slots[k];
        CURL *easy = curl_easy_init();

        s->g = g;
        s->idx = k;
        s->easy = easy;
        if (!easy) {
            snprintf(err, errlen, "curl_easy_init failed");
            loadgen_free(g);
            return -1;
        }
        curl_easy_setopt(easy, CURLOPT_URL, url);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, s);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_sb_write);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, &s->body);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout_ms);
        if (post) {
            curl_easy_setopt(easy, CURLOPT_POSTFIELDS, "{}");
            curl_easy_setopt(easy, CURLOPT_HTTPHEADER, g->hdr);
        }
    }
    return 0;
}

/* ---- the latency and throughput cells ------------------------------- */

/* The healthy result of a run, as astermule prints it. */
static const char healthy_text[] = "\"status\":{\"health\":true}";

/*
 * The three clients of one cell. They live across its rounds, so their
 * connections stay open from one round to the next and only the first
 * round needs a long warm-up.
 */
typedef struct trio {
    cell cells[N_MODES];
    int ready[N_MODES];
    direct d;
    inproc x;
    loadgen g;
} trio;

static void trio_init(trio *t, const flow *f, const child *mule, int conc)
{
    char err[256], url[64];
    cell *c = t->cells;

    memset(t, 0, sizeof(*t));
    if (direct_init(&t->d, f, &c[MODE_DIRECT], (size_t)conc, err,
                    sizeof(err)) == 0) {
        c[MODE_DIRECT] = (cell){.ops = &direct_ops, .ctx = &t->d};
        t->ready[MODE_DIRECT] = 1;
    } else {
        fprintf(stderr, "bench_engine: direct client: %s\n", err);
    }

    if (inproc_init(&t->x, f, &c[MODE_ENGINE], (size_t)conc, err,
                    sizeof(err)) == 0) {
        c[MODE_ENGINE] = (cell){.ops = &inproc_ops, .ctx = &t->x};
        t->ready[MODE_ENGINE] = 1;
    } else {
        fprintf(stderr, "bench_engine: engine_new: %s\n", err);
    }

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", mule->port);
    if (loadgen_init(&t->g, &c[MODE_MULE], (size_t)conc, url, 0, 200,
                     healthy_text, BE_TRIGGER_TIMEOUT_MS, err,
                     sizeof(err)) == 0) {
        c[MODE_MULE] = (cell){.ops = &loadgen_ops, .ctx = &t->g,
                              .server = mule->pid};
        t->ready[MODE_MULE] = 1;
    } else {
        fprintf(stderr, "bench_engine: load generator: %s\n", err);
    }
}

static void trio_free(trio *t)
{
    if (t->ready[MODE_DIRECT])
        direct_free(&t->d);
    if (t->ready[MODE_ENGINE])
        inproc_free(&t->x);
    if (t->ready[MODE_MULE])
        loadgen_free(&t->g);
    for (int m = 0; m < N_MODES; m++)
        samples_free(&t->cells[m].lat);
}

/* Rounds of direct, engine, astermule in turn: a drift of the machine
 * over the cell then touches all three alike. */
static void trio_measure(trio *t, int conc, const bench_cfg *cfg,
                         result *out)
{
    double slice = cfg->measure_s / cfg->rounds;

    for (int r = 0; r < cfg->rounds; r++) {
        double warm = r == 0 ? cfg->warm_s : fmin(0.1, cfg->warm_s);

        for (int m = 0; m < N_MODES; m++) {
            if (t->ready[m] && !t->cells[m].stuck)
                cell_round(&t->cells[m], conc, warm, slice);
        }
    }
    for (int m = 0; m < N_MODES; m++) {
        if (t->ready[m])
            cell_result(&t->cells[m], &out[m]);
    }
}

static void print_cell(const flow *f, int conc, mode m, const result *r)
{
    fprintf(stderr, "  %-7s C=%-2d %-9s median %8.1f us  p99 %8.1f us  "
            "%6.0f runs/s  cpu %6.1f us/run  %.2f conns/run%s\n",
            f->title, conc, mode_names[m], r->med_us, r->p99_us, r->rps,
            r->cpu_us, r->conns,
            r->failures || r->stuck || !r->done ? "  FAILURES" : "");
}

/* Every workflow at every level, the three clients side by side. */
static int run_cells(flow *flows, const bench_cfg *cfg,
                     result res[BE_N_FLOWS][BE_N_LEVELS][N_MODES])
{
    char err[512];

    for (int w = 0; w < BE_N_FLOWS; w++) {
        child mule = {0};

        if (mule_start(&mule, cfg, flows[w].dag, 0, 1, err,
                       sizeof(err)) < 0) {
            fprintf(stderr, "bench_engine: %s\n", err);
            return -1;
        }
        for (int l = 0; l < BE_N_LEVELS; l++) {
            trio t;

            trio_init(&t, &flows[w], &mule, levels[l]);
            trio_measure(&t, levels[l], cfg, res[w][l]);
            trio_free(&t);
            for (int m = 0; m < N_MODES; m++)
                print_cell(&flows[w], levels[l], (mode)m, &res[w][l][m]);
        }
        child_stop(&mule);
    }
    return 0;
}

/* The start of the line after p's, or NULL at the last line. */
static const char *next_line(const char *p)
{
    const char *nl = strchr(p, '\n');

    return nl ? nl + 1 : NULL;
}

/* ---- plain HTTP for probes ------------------------------------------ */

/*
 * GET path from 127.0.0.1:port with HTTP/1.0, so the server closes the
 * connection after answering; the whole answer goes into out when given.
 * Returns the status code, or -errno when the connection failed
 * (-ECONNREFUSED while a server starts), or -EPROTO for a garbled answer.
 */
static int raw_get(int port, const char *path, sbuf *out, int timeout_ms)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    char req[256], buf[4096];
    sbuf local = {0};
    sbuf *b = out ? out : &local;
    int fd, status = -EPROTO, n;
    ssize_t got;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        status = -errno;
        goto out;
    }

    n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                 "Connection: close\r\n\r\n", path);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        status = -errno;
        goto out;
    }
    b->len = 0;
    while ((got = recv(fd, buf, sizeof(buf), 0)) > 0)
        sb_add(b, buf, (size_t)got);
    if (got < 0) {
        status = errno == EAGAIN ? -ETIMEDOUT : -errno;
        goto out;
    }
    if (b->len == 0 || sscanf(b->p, "HTTP/1.%*d %d", &status) != 1)
        status = -EPROTO;

out:
    close(fd);
    sb_free(&local);
    return status;
}

/* A port free right now on 127.0.0.1; 0 on failure. */
static int free_port(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = 0;

    if (fd < 0)
        return 0;
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* A value of astermule's /metrics, or -1. */
static double mule_metric(int port, const char *name)
{
    sbuf b = {0};
    double v = -1;
    size_t nlen = strlen(name);

    if (raw_get(port, "/metrics", &b, 2000) == 200) {
        for (const char *p = b.p; p && *p; p = next_line(p)) {
            if (strncmp(p, name, nlen) == 0 && p[nlen] == ' ') {
                v = strtod(p + nlen + 1, NULL);
                break;
            }
        }
    }
    sb_free(&b);
    return v;
}

/* ---- memory --------------------------------------------------------- */

typedef struct mem_result {
    int ok;
    long rss_start_kib;    /* after start */
    long rss_idle_kib;     /* after one run */
    long anon_idle_kib;    /* its private part (RssAnon) */
    long floor_idle_kib;   /* bench_floor after one request; 0: unknown */
    long floor_anon_kib;
    long anon_inflight_kib;
    long rss_inflight_kib; /* largest sample with the runs in flight */
    long rss_after_kib;    /* once they all ended */
    long hwm_kib;
    double inflight_seen; /* runs in flight per /metrics when sampled */
    double healthy;
    double unhealthy;
    double per_run_bytes;
} mem_result;

/* Runs budget requests through a load generator and waits for them. */
static int fire(int port, const char *path, int post, long want,
                const char *text, size_t par, uint64_t budget,
                int64_t timeout_ns)
{
    cell c = {0};
    loadgen g;
    char err[256], url[128];
    int64_t end = now_ns() + timeout_ns;

    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
    if (loadgen_init(&g, &c, par, url, post, want, text,
                     (long)(timeout_ns / 1000000), err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_engine: load generator: %s\n", err);
        return -1;
    }
    c.ops = &loadgen_ops;
    c.ctx = &g;
    c.ph = PH_MEASURE;
    c.budget = budget;
    for (size_t k = 0; k < par; k++)
        cell_start_one(&c);
    while ((c.inflight > 0 || c.budget > 0) && now_ns() < end)
        loadgen_step(&g, 5);

    int rc = c.failures == 0 && c.inflight == 0 && c.budget == 0 ? 0 : -1;

    if (rc < 0)
        fprintf(stderr, "bench_engine: %s: %llu of %llu requests failed or "
                "did not end\n", path,
                (unsigned long long)(c.failures + c.inflight + c.budget),
                (unsigned long long)(c.measured + c.inflight + c.budget));
    c.ph = PH_DRAIN;
    loadgen_free(&g);
    samples_free(&c.lat);
    return rc;
}

/* Samples astermule's RSS while the burst of slow runs is in flight. */
static void mem_sample(const child *mule, int64_t until, mem_result *m)
{
    m->inflight_seen = mule_metric(mule->port, "astermule_runs_in_flight");
    while (now_ns() < until) {
        long rss = proc_status_kib(mule->pid, "VmRSS:");

        if (rss > m->rss_inflight_kib) {
            m->rss_inflight_kib = rss;
            m->anon_inflight_kib = proc_status_kib(mule->pid, "RssAnon:");
        }
        sleep_us(100000);
    }
}

/*
 * bench_floor's RSS after one request, read as astermule's idle RSS is:
 * what mapping and initialising astermule's libraries costs by itself.
 */
static void bench_memory_floor(const bench_cfg *cfg, mem_result *m)
{
    child fl = {0};
    char err[512];
    int port = free_port();

    if (port == 0 || floor_start(&fl, cfg, port, 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_engine: memory floor: %s\n",
                port ? err : "no free port");
        return;
    }
    if (fire(fl.port, "/healthz", 0, 200, "ok", 1, 1, BE_DRAIN_NS) == 0) {
        sleep_us(100000);
        m->floor_idle_kib = proc_status_kib(fl.pid, "VmRSS:");
        m->floor_anon_kib = proc_status_kib(fl.pid, "RssAnon:");
    }
    child_stop(&fl);
}

/*
 * The floor's idle RSS first; then astermule serving a diamond whose B
 * answers after slow_ms: RSS after start and one run, then with 1,000
 * asynchronous runs in flight (all waiting on B), then after they ended.
 */
static void bench_memory(const int *ports, const bench_cfg *cfg,
                         mem_result *m)
{
    child mule = {0};
    flow f;
    char err[512], query[64];
    int64_t slow_ns = (int64_t)cfg->slow_ms * 1000000, fired, t;

    memset(m, 0, sizeof(*m));
    bench_memory_floor(cfg, m);

    snprintf(query, sizeof(query), "?delay_ms=%d", cfg->slow_ms);
    if (flow_parse(&f, 0, err, sizeof(err)) < 0 ||
        flow_bind(&f, ports, 1, query, err, sizeof(err)) < 0 ||
        mule_start(&mule, cfg, f.dag, 0, 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_engine: memory: %s\n", err);
        goto out;
    }
    m->rss_start_kib = proc_status_kib(mule.pid, "VmRSS:");
    if (fire(mule.port, "/", 0, 200, healthy_text, 1, 1,
             slow_ns + BE_DRAIN_NS) < 0)
        goto out;
    sleep_us(100000);
    m->rss_idle_kib = proc_status_kib(mule.pid, "VmRSS:");
    m->anon_idle_kib = proc_status_kib(mule.pid, "RssAnon:");

    t = now_ns();
    if (fire(mule.port, "/runs?async=1", 1, 202, "\"id\"", 32,
             BE_INFLIGHT_RUNS, slow_ns) < 0)
        goto out;
    fired = now_ns();
    if (fired - t > slow_ns / 2) {
        fprintf(stderr, "bench_engine: memory: firing %d runs took %.0f ms, "
                "too long for B's %d ms delay\n", BE_INFLIGHT_RUNS,
                (double)(fired - t) / 1e6, cfg->slow_ms);
        goto out;
    }

    /* Wait for A to answer and every B call to be open, then sample until
     * shortly before the first B calls answer. */
    sleep_us(200000);
    mem_sample(&mule, t + slow_ns - 300000000, m);

    t = now_ns();
    while (mule_metric(mule.port, "astermule_runs_in_flight") != 0 &&
           now_ns() - t < slow_ns + BE_DRAIN_NS)
        sleep_us(50000);
    m->healthy = mule_metric(mule.port,
                             "astermule_runs_total{health=\"true\"}");
    m->unhealthy = mule_metric(mule.port,
                               "astermule_runs_total{health=\"false\"}");
    m->rss_after_kib = proc_status_kib(mule.pid, "VmRSS:");
    m->hwm_kib = proc_status_kib(mule.pid, "VmHWM:");
    m->per_run_bytes = (double)(m->rss_inflight_kib - m->rss_idle_kib) *
                       1024.0 / BE_INFLIGHT_RUNS;
    m->ok = m->unhealthy == 0 && m->healthy == BE_INFLIGHT_RUNS + 1;

out:
    if (mule.pid > 0 && child_stop(&mule) < 0)
        m->ok = 0;
    flow_unbind(&f);
}

/* ---- start-up ------------------------------------------------------- */

typedef struct start_result {
    int n;
    int failures;
    double healthz_ms;   /* median, exec to the first /healthz answer */
    double healthz_max_ms;
    double first_run_ms; /* median, exec to the first run answered */
    int floor_n;         /* the same for bench_floor */
    int floor_failures;
    double floor_ms;
    double floor_max_ms;
} start_result;

/*
 * Asks /healthz on port until something listens there, for at most 5 s
 * after t0. Returns the answer's status, or -ECONNREFUSED when nothing
 * listened in time.
 */
static int healthz_first(int port, int64_t t0)
{
    int st = -ECONNREFUSED;

    while (now_ns() - t0 < 5000000000LL) {
        st = raw_get(port, "/healthz", NULL, 1000);
        if (st != -ECONNREFUSED)
            break;
        sleep_us(100);
    }
    return st;
}

/* One start: fork/exec, poll /healthz until it answers, then one run. */
static int start_once(const flow *f, const bench_cfg *cfg, int64_t *hz,
                      int64_t *run)
{
    child mule = {0};
    char err[512];
    int port = free_port(), st, rc = -1;
    sbuf b = {0};
    int64_t t0 = now_ns();

    if (port == 0 || mule_start(&mule, cfg, f->dag, port, 0, err,
                                sizeof(err)) < 0) {
        fprintf(stderr, "bench_engine: start-up: %s\n",
                port ? err : "no free port");
        return -1;
    }
    st = healthz_first(port, t0);
    *hz = now_ns() - t0;
    if (st != 200) {
        fprintf(stderr, "bench_engine: start-up: /healthz answered %d\n",
                st);
        goto out;
    }
    st = raw_get(port, "/", &b, 5000);
    *run = now_ns() - t0;
    if (st != 200 || !strstr(b.p, healthy_text)) {
        fprintf(stderr, "bench_engine: start-up: the first run answered "
                "%d: %.200s\n", st, b.p ? b.p : "");
        goto out;
    }
    rc = 0;

out:
    if (child_stop(&mule) < 0)
        rc = -1;
    sb_free(&b);
    return rc;
}

/* One start of bench_floor, timed as start_once times astermule's. */
static int floor_once(const bench_cfg *cfg, int64_t *hz)
{
    child fl = {0};
    char err[512];
    int port = free_port(), st, rc = -1;
    int64_t t0 = now_ns();

    if (port == 0 || floor_start(&fl, cfg, port, 0, err, sizeof(err)) < 0) {
        fprintf(stderr, "bench_engine: start-up floor: %s\n",
                port ? err : "no free port");
        return -1;
    }
    st = healthz_first(port, t0);
    *hz = now_ns() - t0;
    if (st == 200)
        rc = 0;
    else
        fprintf(stderr, "bench_engine: start-up floor: /healthz answered "
                "%d\n", st);
    if (child_stop(&fl) < 0)
        rc = -1;
    return rc;
}

static void bench_startup(const flow *f, const bench_cfg *cfg,
                          start_result *s)
{
    samples hz = {0}, run = {0}, fl = {0};

    memset(s, 0, sizeof(*s));
    for (int k = 0; k < cfg->start_reps; k++) {
        int64_t h = 0, r = 0;

        /* The floor's starts alternate with astermule's, so that both
         * meet the same state of the machine and its page cache. */
        if (floor_once(cfg, &h) < 0)
            s->floor_failures++;
        else
            samples_push(&fl, h);

        if (start_once(f, cfg, &h, &r) < 0) {
            s->failures++;
            continue;
        }
        samples_push(&hz, h);
        samples_push(&run, r);
    }
    s->n = (int)hz.n;
    s->healthz_ms = (double)samples_rank(&hz, 0.5) / 1e6;
    s->healthz_max_ms = (double)samples_rank(&hz, 1.0) / 1e6;
    s->first_run_ms = (double)samples_rank(&run, 0.5) / 1e6;
    s->floor_n = (int)fl.n;
    s->floor_ms = (double)samples_rank(&fl, 0.5) / 1e6;
    s->floor_max_ms = (double)samples_rank(&fl, 1.0) / 1e6;
    samples_free(&hz);
    samples_free(&run);
    samples_free(&fl);
}

/* ---- parse and validate a 10,000-node DAG ---------------------------- */

typedef struct parse_result {
    int ok;
    size_t nodes;
    size_t edges;
    size_t json_bytes;
    size_t yaml_bytes;
    double json_ms; /* median */
    double yaml_ms;
    double json_min_ms;
    double yaml_min_ms;
} parse_result;

/* Dependencies of node k in the layered DAG: BE_BIG_FANIN neighbours in
 * the layer above, none in the first layer. */
static size_t big_deps(size_t k, size_t *deps)
{
    size_t layer = k / BE_BIG_WIDTH, pos = k % BE_BIG_WIDTH;

    if (layer == 0)
        return 0;
    for (size_t j = 0; j < BE_BIG_FANIN; j++)
        deps[j] = (layer - 1) * BE_BIG_WIDTH + (pos + j) % BE_BIG_WIDTH;
    return BE_BIG_FANIN;
}

static void big_json(sbuf *b, size_t n)
{
    size_t deps[BE_BIG_FANIN];

    sb_printf(b, "{\"nodes\":[");
    for (size_t k = 0; k < n; k++) {
        size_t nd = big_deps(k, deps);

        sb_printf(b, "%s{\"name\":\"n%05zu\",\"url\":\"http://127.0.0.1:"
                  "8000/test\",\"dependencies\":[", k ? "," : "", k);
        for (size_t j = 0; j < nd; j++)
            sb_printf(b, "%s\"n%05zu\"", j ? "," : "", deps[j]);
        sb_printf(b, "]}");
    }
    sb_printf(b, "]}\n");
}

static void big_yaml(sbuf *b, size_t n)
{
    size_t deps[BE_BIG_FANIN];

    sb_printf(b, "nodes:\n");
    for (size_t k = 0; k < n; k++) {
        size_t nd = big_deps(k, deps);

        sb_printf(b, "  - name: n%05zu\n    url: http://127.0.0.1:8000/"
                  "test\n", k);
        if (nd == 0)
            continue;
        sb_printf(b, "    dependencies:\n");
        for (size_t j = 0; j < nd; j++)
            sb_printf(b, "      - n%05zu\n", deps[j]);
    }
}

/* Median time of wf_parse over reps; -1 when a parse fails. */
static double time_parse(const sbuf *doc, size_t want_nodes, int reps,
                         const char *form, double *min_ms)
{
    samples s = {0};
    double med = -1;

    for (int k = 0; k < reps; k++) {
        wf_problems probs;
        wf_workflow *wf = NULL;
        int64_t t0 = now_ns();
        int rc;

        wf_problems_init(&probs);
        rc = wf_parse(doc->p, doc->len, NULL, &wf, &probs);
        samples_push(&s, now_ns() - t0);
        if (rc != 0 || wf->n_nodes != want_nodes) {
            char *text = wf_problems_format(&probs);

            fprintf(stderr, "bench_engine: the %zu-node %s DAG was refused: "
                    "%.500s\n", want_nodes, form, text ? text : "");
            free(text);
            wf_free(wf);
            wf_problems_free(&probs);
            goto out;
        }
        wf_free(wf);
        wf_problems_free(&probs);
    }
    med = (double)samples_rank(&s, 0.5) / 1e6;
    *min_ms = (double)samples_rank(&s, 0.0) / 1e6;

out:
    samples_free(&s);
    return med;
}

static void bench_parse(const bench_cfg *cfg, parse_result *p)
{
    sbuf json = {0}, yaml = {0};
    size_t deps[BE_BIG_FANIN];

    memset(p, 0, sizeof(*p));
    p->nodes = BE_BIG_NODES;
    for (size_t k = 0; k < BE_BIG_NODES; k++)
        p->edges += big_deps(k, deps);
    big_json(&json, BE_BIG_NODES);
    big_yaml(&yaml, BE_BIG_NODES);
    p->json_bytes = json.len;
    p->yaml_bytes = yaml.len;
    p->json_ms = time_parse(&json, BE_BIG_NODES, cfg->parse_reps, "JSON",
                            &p->json_min_ms);
    p->yaml_ms = time_parse(&yaml, BE_BIG_NODES, cfg->parse_reps, "YAML",
                            &p->yaml_min_ms);
    p->ok = p->json_ms >= 0 && p->yaml_ms >= 0;
    sb_free(&json);
    sb_free(&yaml);
}

/* ---- instructions per run, counted by callgrind ---------------------- */

/* The CPU target, at most 1.3 times the direct client's, applied to the
 * instructions counted per run. */
#define BE_INSTR_LIMIT 1.3

/* How long a --profile child under callgrind may take: far more than
 * the minute or so 2,000 runs of the ten-node workflow need. */
#define BE_PROFILE_TIMEOUT_MS 600000

typedef struct instr_result {
    int have_valgrind;
    long runs;          /* counted by each --profile child */
    long mule_runs[2];  /* astermule's two starts */
    double per_run[BE_N_FLOWS][N_MODES]; /* instructions; < 0: unknown */
} instr_result;

/* The path of the first executable called name on $PATH, or NULL; the
 * caller frees it. */
static char *path_find(const char *name)
{
    const char *path = getenv("PATH");
    char *copy = xstrdup(path ? path : "/usr/bin:/bin"), *save = NULL;
    char *found = NULL;

    for (char *dir = strtok_r(copy, ":", &save); dir && !found;
         dir = strtok_r(NULL, ":", &save)) {
        char *p = xasprintf("%s/%s", *dir ? dir : ".", name);

        if (access(p, X_OK) == 0)
            found = p;
        else
            free(p);
    }
    free(copy);
    return found;
}

/* Makes an empty file for valgrind's log from the mkstemp template. */
static int cg_log_make(char *tmpl)
{
    int fd = mkstemp(tmpl);

    if (fd < 0) {
        fprintf(stderr, "bench_engine: instructions: cannot create %s: "
                "%s\n", tmpl, strerror(errno));
        return -1;
    }
    close(fd);
    return 0;
}

/* N of the "Collected : N" line callgrind logs as the process ends, or
 * -1. */
static long long cg_collected(const char *log)
{
    char line[512];
    long long n = -1;
    FILE *f = fopen(log, "r");

    while (f && n < 0 && fgets(line, sizeof(line), f)) {
        char *p = strstr(line, "Collected : ");

        if (p)
            n = strtoll(p + 12, NULL, 10);
    }
    if (f)
        fclose(f);
    return n;
}

/* A counted log has served its purpose; one that failed may say why. */
static void cg_log_done(const char *log, const child *ch, long long n)
{
    if (n >= 0) {
        unlink(log);
        return;
    }
    fprintf(stderr, "bench_engine: instructions: %s counted nothing; "
            "valgrind's log is kept in %s\n", ch->what, log);
}

/*
 * Instructions per run of client m (direct or engine) on workflow w:
 * "bench_engine --profile" under callgrind, collecting over its runs
 * only. Returns -1 when valgrind or the runs failed.
 */
static double cg_profile(const bench_cfg *cfg, const char *vg, int m,
                         int w, long runs)
{
    char log[] = "/tmp/bench_engine-cg-XXXXXX", err[512];
    child ch = {0};
    long long n = -1;

    if (cg_log_make(log) < 0)
        return -1;

    char *self = xasprintf("%s/bench_engine", cfg->bindir);
    char *spec = xasprintf("%s:%s:%ld", mode_names[m], flow_specs[w].title,
                           runs);
    char *logarg = xasprintf("--log-file=%s", log);
    char *argv[] = {(char *)vg, "--tool=callgrind", "--collect-atstart=no",
                    "--callgrind-out-file=/dev/null", logarg, self,
                    "--profile", spec, NULL};

    snprintf(ch.what, sizeof(ch.what), "callgrind --profile %s", spec);
    if (child_start(&ch, argv, err, sizeof(err)) < 0)
        fprintf(stderr, "bench_engine: instructions: %s\n", err);
    else if (child_reap(&ch, BE_PROFILE_TIMEOUT_MS, "ran for 10 minutes",
                        "") == 0)
        n = cg_collected(log);
    cg_log_done(log, &ch, n);
    free(self);
    free(spec);
    free(logarg);
    return n < 0 ? -1 : (double)n / (double)runs;
}

/*
 * Instructions of one astermule process under callgrind, from exec to
 * exit, having served runs triggers of f one at a time; -1 on failure.
 */
static long long cg_mule_once(const bench_cfg *cfg, const char *vg,
                              const flow *f, long runs)
{
    char log[] = "/tmp/bench_engine-cg-XXXXXX", err[512];
    child ch = {0};
    long long n = -1;
    int ok = 0;

    if (cg_log_make(log) < 0)
        return -1;

    char *mule = xasprintf("%s/astermule", cfg->bindir);
    char *logarg = xasprintf("--log-file=%s", log);
    char *argv[] = {(char *)vg, "--tool=callgrind",
                    "--callgrind-out-file=/dev/null", logarg, mule, "--dag",
                    f->dag, "--address", "127.0.0.1", "--port", "0",
                    "--log-level", "warn", NULL};

    /* valgrind takes seconds to start a program, not milliseconds. */
    snprintf(ch.what, sizeof(ch.what), "astermule under callgrind, %ld "
             "runs", runs);
    if (child_start(&ch, argv, err, sizeof(err)) < 0 ||
        child_wait_port(&ch, 30000, err, sizeof(err)) < 0)
        fprintf(stderr, "bench_engine: instructions: %s\n", err);
    else
        ok = fire(ch.port, "/", 0, 200, healthy_text, 1, (uint64_t)runs,
                  (60 + runs / 10) * 1000000000LL) == 0;

    /* On SIGTERM astermule ends cleanly and callgrind logs its count. */
    if (child_stop(&ch) == 0 && ok)
        n = cg_collected(log);
    cg_log_done(log, &ch, n);
    free(mule);
    free(logarg);
    return n;
}

/*
 * astermule's instructions per run: two starts serving n[0] and n[1]
 * runs, whose difference leaves out start-up and shutdown.
 */
static double cg_mule(const bench_cfg *cfg, const char *vg, const flow *f,
                      const long n[2])
{
    long long x1 = cg_mule_once(cfg, vg, f, n[0]);
    long long x2 = x1 < 0 ? -1 : cg_mule_once(cfg, vg, f, n[1]);

    if (x1 < 0 || x2 <= x1)
        return -1;
    return (double)(x2 - x1) / (double)(n[1] - n[0]);
}

/* Every client on every workflow; nothing is counted without valgrind.
 * astermule calls the test services of this process, which stay up. */
static void bench_instructions(const flow *flows, const bench_cfg *cfg,
                               instr_result *ir)
{
    char *vg = path_find("valgrind");

    memset(ir, 0, sizeof(*ir));
    ir->runs = cfg->cg_runs;
    ir->mule_runs[0] = cfg->cg_mule_runs[0];
    ir->mule_runs[1] = cfg->cg_mule_runs[1];
    for (int w = 0; w < BE_N_FLOWS; w++) {
        for (int m = 0; m < N_MODES; m++)
            ir->per_run[w][m] = -1;
    }
    if (!vg) {
        fprintf(stderr, "bench_engine: valgrind is not on PATH; "
                "instructions per run are not counted\n");
        return;
    }
    ir->have_valgrind = 1;

    for (int w = 0; w < BE_N_FLOWS; w++) {
        double *v = ir->per_run[w];

        v[MODE_DIRECT] = cg_profile(cfg, vg, MODE_DIRECT, w, ir->runs);
        v[MODE_ENGINE] = cg_profile(cfg, vg, MODE_ENGINE, w, ir->runs);
        v[MODE_MULE] = cg_mule(cfg, vg, &flows[w], ir->mule_runs);
        fprintf(stderr, "  %-7s instructions per run: direct %.0f, engine "
                "%.0f, astermule %.0f\n", flows[w].title, v[MODE_DIRECT],
                v[MODE_ENGINE], v[MODE_MULE]);
    }
    free(vg);
}

/* ---- the report ----------------------------------------------------- */

typedef struct report {
    const bench_cfg *cfg;
    const flow *flows;
    result (*res)[BE_N_LEVELS][N_MODES];
    const mem_result *mem;
    const start_result *start;
    const parse_result *parse;
    const instr_result *instr;
    double load_before; /* 1-minute load average when the run began */
    double elapsed_s;
    char date[64];
} report;

static double ratio(double a, double b)
{
    return b > 0 ? a / b : 0;
}

static void machine_notes(sbuf *md, const report *rp)
{
    char model[256] = "unknown", line[512];
    struct utsname u;
    FILE *f = fopen("/proc/cpuinfo", "r");

    while (f && fgets(line, sizeof(line), f)) {
        char *colon = strchr(line, ':');

        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(model, sizeof(model), "%s", colon + 2);
            model[strcspn(model, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
    if (uname(&u) < 0)
        snprintf(u.release, sizeof(u.release), "unknown");

    sb_printf(md, "Measured %s%s; the whole run took %.0f s.\n\n",
              rp->date, rp->cfg->quick ? " with --quick (short cells, "
              "rough figures)" : "", rp->elapsed_s);
    sb_printf(md, "- Machine: %ld CPUs online (%s), Linux %s %s, libcurl "
              "%s; 1-minute load average %.2f when the run began.\n",
              sysconf(_SC_NPROCESSORS_ONLN), model, u.release, u.machine,
              curl_version_info(CURLVERSION_NOW)->version, rp->load_before);
    sb_printf(md, "- Everything shares those CPUs: the %d test services "
              "(one process per node, thread per connection), the client "
              "or load generator, and the engine or astermule. Figures are "
              "for comparing the three clients with each other, not "
              "absolute capacity.\n", BE_MAX_NODES);
    sb_printf(md, "- Each cell keeps C runs in flight for %.1f s per "
              "client, in %d round%s taking turns (direct, engine, "
              "astermule), so that a drift of the machine touches all "
              "three alike. Every round starts with a warm-up (%.1f s in "
              "the first, at most 0.1 s later: connections stay open "
              "between rounds) and counts the runs that end in its "
              "measured window. Latency is from starting a run (or sending "
              "a trigger) to its full result.\n", rp->cfg->measure_s,
              rp->cfg->rounds, rp->cfg->rounds > 1 ? "s" : "",
              rp->cfg->warm_s);
    sb_printf(md, "- conns/run: TCP connections opened per run during the "
              "measured windows (ActiveOpens of /proc/net/snmp, every "
              "process): 0 when every call reuses a keep-alive "
              "connection. The direct client raises libcurl's idle "
              "connection cache (CURLMOPT_MAXCONNECTS) to one connection "
              "per node and run slot; the engine keeps up to 1,024 idle "
              "connections (engine_config.max_idle_conns).\n");
    sb_printf(md, "- Clients: **direct** is a hand-written libcurl multi "
              "client on epoll (one thread) making the workflow's calls "
              "in dependency order, GET for entry nodes and POST with the "
              "merged JSON body otherwise, and building a small result "
              "with the exit output. **engine** is the astercore engine "
              "in the benchmark's process (engine_submit/engine_step). "
              "**astermule** is the binary serving the workflow "
              "(`--log-level warn`), triggered with `GET /` by a libcurl "
              "load generator; its latency includes that extra HTTP hop, "
              "which the other two do not make.\n");
    sb_printf(md, "- CPU per run: the client process for direct and "
              "engine; astermule's process for astermule (process CPU "
              "clock, the same time as utime+stime in /proc/PID/stat at "
              "ns resolution), with the load generator's own CPU in the "
              "last column. Ratios are to the direct client in the same "
              "row group.\n");
    sb_printf(md, "- Instructions per run: counted by callgrind in the "
              "client's process only, never the test services': for direct "
              "and engine, `bench_engine --profile` collecting over %ld runs "
              "one at a time (after 200 uncounted); for astermule, the "
              "astermule process, its handling of the trigger's HTTP "
              "request included, over two starts serving %ld and %ld runs, "
              "the difference divided by %ld so that start-up and shutdown "
              "cancel out. Unlike the CPU-time columns the count repeats "
              "within a fraction of a percent from one run of the "
              "benchmark to the next, whatever else the machine does; it "
              "weighs every instruction alike and leaves out the kernel's "
              "work in system calls.\n",
              rp->instr->runs, rp->instr->mule_runs[0],
              rp->instr->mule_runs[1],
              rp->instr->mule_runs[1] - rp->instr->mule_runs[0]);
    sb_printf(md, "- bench_floor, a server linked with exactly astermule's "
              "libraries that answers every request \"ok\" and does nothing "
              "else, is the floor of astermule's start-up time and idle "
              "memory: the rest is astermule's own.\n\n");
    sb_printf(md, "Rerun with `bench/run.sh`, or after a build with "
              "`build/bin/bench_engine --out docs/benchmarks.md` "
              "(`--seconds S` per cell, `--quick` for a rough pass).\n\n");
}

static void flow_table(sbuf *md, const report *rp, int w)
{
    const flow *f = &rp->flows[w];

    sb_printf(md, "### %s (%s)\n\n", f->title, f->shape);
    sb_printf(md, "| C | client | median µs | p99 µs | runs/s | CPU µs/run "
              "| median x | p99 x | runs/s x | CPU x | conns/run "
              "| load gen CPU µs/run | failed |\n");
    sb_printf(md, "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:"
              "|---:|---:|\n");
    for (int l = 0; l < BE_N_LEVELS; l++) {
        const result *d = &rp->res[w][l][MODE_DIRECT];

        for (int m = 0; m < N_MODES; m++) {
            const result *r = &rp->res[w][l][m];
            char gen[32] = "-", bad[48];

            if (r->runs == 0) {
                sb_printf(md, "| %d | %s | - | - | 0 | - | - | - | - | - "
                          "| - | - | **%llu%s** |\n", levels[l],
                          mode_names[m], (unsigned long long)r->failures,
                          r->done ? ", no run ended" : ", not run");
                continue;
            }
            if (m == MODE_MULE)
                snprintf(gen, sizeof(gen), "%.1f", r->gen_cpu_us);
            if (!r->done)
                snprintf(bad, sizeof(bad), "**not run**");
            else if (r->failures || r->stuck)
                snprintf(bad, sizeof(bad), "**%llu%s**",
                         (unsigned long long)r->failures,
                         r->stuck ? ", stuck" : "");
            else
                snprintf(bad, sizeof(bad), "0");
            sb_printf(md, "| %d | %s | %.0f | %.0f | %.0f | %.1f | %.2f | "
                      "%.2f | %.2f | %.2f | %.2f | %s | %s |\n", levels[l],
                      mode_names[m], r->med_us, r->p99_us, r->rps,
                      r->cpu_us, ratio(r->med_us, d->med_us),
                      ratio(r->p99_us, d->p99_us), ratio(r->rps, d->rps),
                      ratio(r->cpu_us, d->cpu_us), r->conns, gen, bad);
        }
    }
    sb_printf(md, "\n");
}

/* "%.2f MiB" of kib into buf, or "-" when it was not measured. */
static const char *mib(char *buf, size_t len, long kib)
{
    if (kib <= 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.2f MiB", (double)kib / 1024);
    return buf;
}

/* "%.2f MiB" of a - b into buf, or "-" when either is unknown. */
static const char *mib_minus(char *buf, size_t len, long a, long b)
{
    if (a <= 0 || b <= 0)
        snprintf(buf, len, "-");
    else
        snprintf(buf, len, "%.2f MiB", (double)(a - b) / 1024);
    return buf;
}

static void memory_rows(sbuf *md, const report *rp)
{
    const mem_result *m = rp->mem;
    char a[32], b[32];

    sb_printf(md, "| astermule RSS after start (diamond) | %s |\n",
              mib(a, sizeof(a), m->rss_start_kib));
    sb_printf(md, "| astermule idle RSS after one run | %s |\n",
              mib(a, sizeof(a), m->rss_idle_kib));
    sb_printf(md, "| its private part (RssAnon; the rest is shared "
              "library pages) | %s |\n", mib(a, sizeof(a),
                                              m->anon_idle_kib));
    sb_printf(md, "| bench_floor idle RSS after one request (astermule's "
              "libraries alone) | %s |\n", mib(a, sizeof(a),
                                               m->floor_idle_kib));
    sb_printf(md, "| its private part (RssAnon) | %s |\n",
              mib(a, sizeof(a), m->floor_anon_kib));
    sb_printf(md, "| astermule's own idle RSS: astermule idle - floor "
              "(RssAnon: the same difference) | %s (%s) |\n",
              mib_minus(a, sizeof(a), m->rss_idle_kib, m->floor_idle_kib),
              mib_minus(b, sizeof(b), m->anon_idle_kib, m->floor_anon_kib));
    sb_printf(md, "| RSS with %d diamond runs in flight (B delayed %d ms; "
              "%.0f in flight per /metrics) | %s |\n", BE_INFLIGHT_RUNS,
              rp->cfg->slow_ms, m->inflight_seen,
              mib(a, sizeof(a), m->rss_inflight_kib));
    sb_printf(md, "| its private part (RssAnon) | %s |\n",
              mib(a, sizeof(a), m->anon_inflight_kib));
    if (m->ok)
        sb_printf(md, "| per in-flight run: (in flight - idle) / %d | "
                  "%.1f KiB |\n", BE_INFLIGHT_RUNS, m->per_run_bytes / 1024);
    else
        sb_printf(md, "| per in-flight run | **not measured** |\n");
    sb_printf(md, "| RSS after those runs ended / peak (VmHWM) | %s / %s "
              "|\n", mib(a, sizeof(a), m->rss_after_kib),
              mib(b, sizeof(b), m->hwm_kib));
    sb_printf(md, "| runs of the memory test healthy / unhealthy | %.0f / "
              "%.0f%s |\n", m->healthy, m->unhealthy,
              m->ok ? "" : " **(failed)**");
}

static void other_tables(sbuf *md, const report *rp)
{
    const start_result *s = rp->start;
    const parse_result *p = rp->parse;

    sb_printf(md, "### Memory, start-up, parsing\n\n");
    sb_printf(md, "| measure | value |\n|---|---:|\n");
    memory_rows(md, rp);
    if (s->n > 0) {
        sb_printf(md, "| start-up: exec to first `/healthz` answer, median "
                  "of %d (max) | %.2f ms (%.2f) |\n", s->n, s->healthz_ms,
                  s->healthz_max_ms);
        sb_printf(md, "| start-up: exec to first run answered (diamond), "
                  "median | %.2f ms |\n", s->first_run_ms);
    }
    if (s->floor_n > 0)
        sb_printf(md, "| start-up floor: bench_floor, exec to first "
                  "`/healthz` answer, median of %d (max), interleaved with "
                  "astermule's | %.2f ms (%.2f) |\n", s->floor_n,
                  s->floor_ms, s->floor_max_ms);
    if (s->n > 0 && s->floor_n > 0)
        sb_printf(md, "| astermule's own start-up: astermule - floor, "
                  "medians (astermule / floor) | %.2f ms (%.2fx) |\n",
                  s->healthz_ms - s->floor_ms,
                  ratio(s->healthz_ms, s->floor_ms));
    if (s->failures)
        sb_printf(md, "| start-ups that failed | **%d of %d** |\n",
                  s->failures, s->failures + s->n);
    if (s->floor_failures)
        sb_printf(md, "| bench_floor start-ups that failed | **%d of %d** "
                  "|\n", s->floor_failures, s->floor_failures + s->floor_n);
    if (!p->ok) {
        sb_printf(md, "| parse+validate %zu-node DAG | **failed** |\n\n",
                  p->nodes);
        return;
    }
    sb_printf(md, "| parse+validate %zu-node DAG, JSON (%zu KiB, %zu "
              "edges), median of %d (min) | %.1f ms (%.1f) |\n", p->nodes,
              p->json_bytes / 1024, p->edges, rp->cfg->parse_reps,
              p->json_ms, p->json_min_ms);
    sb_printf(md, "| parse+validate the same DAG as YAML (%zu KiB), median "
              "(min) | %.1f ms (%.1f) |\n\n", p->yaml_bytes / 1024,
              p->yaml_ms, p->yaml_min_ms);
}

/* v rounded, a comma every three digits, into buf; "not measured" when
 * v < 0. */
static const char *count_text(char *buf, size_t len, double v)
{
    char digits[32];
    size_t n, k = 0;

    if (v < 0) {
        snprintf(buf, len, "not measured");
        return buf;
    }
    n = (size_t)snprintf(digits, sizeof(digits), "%.0f", v);
    for (size_t i = 0; i < n && k + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

static void instr_table(sbuf *md, const report *rp)
{
    const instr_result *ir = rp->instr;

    sb_printf(md, "### Instructions per run (callgrind, one run at a "
              "time)\n\n");
    sb_printf(md, "| workflow | direct | engine | astermule | engine x "
              "| astermule x |\n|---|---:|---:|---:|---:|---:|\n");
    for (int w = 0; w < BE_N_FLOWS; w++) {
        const double *v = ir->per_run[w];
        char c[N_MODES][32], x[N_MODES][16];

        for (int m = 0; m < N_MODES; m++) {
            count_text(c[m], sizeof(c[m]), v[m]);
            if (v[m] < 0 || v[MODE_DIRECT] <= 0)
                snprintf(x[m], sizeof(x[m]), "-");
            else
                snprintf(x[m], sizeof(x[m]), "%.2f", v[m] / v[MODE_DIRECT]);
        }
        sb_printf(md, "| %s | %s | %s | %s | %s | %s |\n",
                  rp->flows[w].title, c[MODE_DIRECT], c[MODE_ENGINE],
                  c[MODE_MULE], x[MODE_ENGINE], x[MODE_MULE]);
    }
    if (!ir->have_valgrind)
        sb_printf(md, "\nvalgrind was not on PATH: nothing was counted.\n");
    sb_printf(md, "\n");
}

static int cell_ok(const result *r)
{
    return r->done && r->runs > 0 && r->failures == 0 && !r->stuck;
}

/* A ratio of mode m to direct over the cells at level l (every level when
 * l < 0), for the metric at offset off of a result. */
typedef struct span {
    double lo;
    double hi;
    int valid;  /* cells measured cleanly, with their direct cell */
    int failed; /* cells left out because either side failed */
} span;

static span ratio_span(const report *rp, int m, int l, size_t off)
{
    span sp = {INFINITY, -INFINITY, 0, 0};

    for (int w = 0; w < BE_N_FLOWS; w++) {
        for (int k = 0; k < BE_N_LEVELS; k++) {
            const result *r = &rp->res[w][k][m];
            const result *d = &rp->res[w][k][MODE_DIRECT];

            if (l >= 0 && k != l)
                continue;
            if (!cell_ok(r) || !cell_ok(d)) {
                sp.failed++;
                continue;
            }

            double x = ratio(*(const double *)((const char *)r + off),
                             *(const double *)((const char *)d + off));

            sp.lo = fmin(sp.lo, x);
            sp.hi = fmax(sp.hi, x);
            sp.valid++;
        }
    }
    return sp;
}

/* "1.01x to 1.04x", with the failed cells named, into buf. */
static const char *span_text(char *buf, size_t len, const span *sp)
{
    int n = 0;

    if (sp->valid > 0)
        n = snprintf(buf, len, "%.2fx to %.2fx", sp->lo, sp->hi);
    if (sp->failed > 0 && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, "%s%d cell%s failed",
                 n ? ", " : "", sp->failed, sp->failed > 1 ? "s" : "");
    return buf;
}

/* A target is judged only on clean measurements. */
static const char *verdict(int measured, int ok)
{
    if (!measured)
        return "**not measured**";
    return ok ? "met" : "**not met**";
}

static const char *span_verdict(const span *sp, double limit, int upper)
{
    return verdict(sp->valid > 0 && sp->failed == 0,
                   upper ? sp->hi <= limit : sp->lo >= limit);
}

/* Instructions per run of mode m over those of direct, over the
 * workflows; a workflow either side did not count is a failed one. */
static span instr_span(const instr_result *ir, int m)
{
    span sp = {INFINITY, -INFINITY, 0, 0};

    for (int w = 0; w < BE_N_FLOWS; w++) {
        double d = ir->per_run[w][MODE_DIRECT], v = ir->per_run[w][m];

        if (d <= 0 || v <= 0) {
            sp.failed++;
            continue;
        }
        sp.lo = fmin(sp.lo, v / d);
        sp.hi = fmax(sp.hi, v / d);
        sp.valid++;
    }
    return sp;
}

/* An instruction span as text, one figure when its ends print alike,
 * the workflows not counted named. */
static const char *instr_span_text(char *buf, size_t len, const span *sp)
{
    char lo[16], hi[16];
    int n;

    if (sp->valid == 0) {
        snprintf(buf, len, "not measured");
        return buf;
    }
    snprintf(lo, sizeof(lo), "%.2fx", sp->lo);
    snprintf(hi, sizeof(hi), "%.2fx", sp->hi);
    if (strcmp(lo, hi) == 0)
        n = snprintf(buf, len, "%s", lo);
    else
        n = snprintf(buf, len, "%s to %s", lo, hi);
    if (sp->failed > 0 && n >= 0 && (size_t)n < len)
        snprintf(buf + n, len - (size_t)n, ", %d workflow%s not counted",
                 sp->failed, sp->failed > 1 ? "s" : "");
    return buf;
}

typedef struct ratio_target {
    const char *what;
    int level; /* index into levels, or -1 for every level */
    size_t off;
    double limit;
    int upper; /* 1: at most limit; 0: at least */
} ratio_target;

static const ratio_target ratio_targets[] = {
    {"median latency at C=1 vs direct", 0, offsetof(result, med_us), 1.05,
     1},
    {"throughput at C=16 vs direct", 2, offsetof(result, rps), 0.9, 0},
    {"CPU per run vs direct, every cell", -1, offsetof(result, cpu_us), 1.3,
     1},
};

#define N_RATIO_TARGETS (sizeof(ratio_targets) / sizeof(ratio_targets[0]))

static void targets_table(sbuf *md, const report *rp)
{
    const mem_result *m = rp->mem;
    const start_result *st = rp->start;
    const parse_result *p = rp->parse;
    char buf[96], lib[32];

    sb_printf(md, "### Against the targets\n\n");
    sb_printf(md, "| target | wanted | measured | verdict |\n"
              "|---|---|---|---|\n");
    for (size_t t = 0; t < N_RATIO_TARGETS; t++) {
        const ratio_target *rt = &ratio_targets[t];

        for (int mo = MODE_ENGINE; mo <= MODE_MULE; mo++) {
            span sp = ratio_span(rp, mo, rt->level, rt->off);

            sb_printf(md, "| %s, %s | %s %.2fx | %s | %s |\n", rt->what,
                      mode_names[mo], rt->upper ? "at most" : "at least",
                      rt->limit, span_text(buf, sizeof(buf), &sp),
                      span_verdict(&sp, rt->limit, rt->upper));
        }
    }
    for (int mo = MODE_ENGINE; mo <= MODE_MULE; mo++) {
        span sp = instr_span(rp->instr, mo);

        sb_printf(md, "| CPU per run vs direct, instructions (callgrind), "
                  "%s | at most %.2fx | %s | %s |\n", mode_names[mo],
                  BE_INSTR_LIMIT, instr_span_text(buf, sizeof(buf), &sp),
                  span_verdict(&sp, BE_INSTR_LIMIT, 1));
    }
    sb_printf(md, "| astermule idle RSS | under 4 MiB | %s (libraries "
              "alone: %s) | %s |\n", mib(buf, sizeof(buf),
                                           m->rss_idle_kib),
              m->floor_idle_kib > 0 ? mib(lib, sizeof(lib),
                                          m->floor_idle_kib) : "not measured",
              verdict(m->rss_idle_kib > 0, m->rss_idle_kib < 4096));
    sb_printf(md, "| memory per in-flight diamond run | under 16 KiB | "
              "%.1f KiB | %s |\n", m->per_run_bytes / 1024,
              verdict(m->ok, m->per_run_bytes < 16384));
    if (st->floor_n > 0)
        snprintf(lib, sizeof(lib), "%.2f ms", st->floor_ms);
    else
        snprintf(lib, sizeof(lib), "not measured");
    sb_printf(md, "| start-up to first answer | under 10 ms | %.2f ms "
              "(libraries alone: %s) | %s |\n", st->healthz_ms, lib,
              verdict(st->n > 0 && st->failures == 0, st->healthz_ms < 10));
    sb_printf(md, "| parse+validate 10,000-node DAG | under 100 ms | JSON "
              "%.1f ms, YAML %.1f ms | %s |\n\n", p->json_ms, p->yaml_ms,
              verdict(p->ok, p->json_ms < 100 && p->yaml_ms < 100));
}

static int any_failures(const report *rp)
{
    for (int w = 0; w < BE_N_FLOWS; w++) {
        for (int l = 0; l < BE_N_LEVELS; l++) {
            for (int m = 0; m < N_MODES; m++) {
                if (!cell_ok(&rp->res[w][l][m]))
                    return 1;
            }
        }
    }
    return 0;
}

/* One sentence on a ratio target: the engine and astermule side by side. */
static void reading_ratio(sbuf *md, const report *rp, const ratio_target *rt,
                          const char *lead, const char *tail)
{
    span e = ratio_span(rp, MODE_ENGINE, rt->level, rt->off);
    span a = ratio_span(rp, MODE_MULE, rt->level, rt->off);
    char eb[96], ab[96];

    sb_printf(md, "- %s the engine in process: %s of the direct client "
              "(target %s %.2fx: %s); astermule: %s (%s).%s\n", lead,
              span_text(eb, sizeof(eb), &e), rt->upper ? "at most"
              : "at least", rt->limit, span_verdict(&e, rt->limit,
              rt->upper), span_text(ab, sizeof(ab), &a),
              span_verdict(&a, rt->limit, rt->upper), tail);
}

/* Says whether the engine reused its connections as the direct client
 * did; reconnecting costs a handshake and a service thread per call. */
static void reading_conns(sbuf *md, const report *rp)
{
    double worst = 0, direct_max = 0;
    int ww = 0, wl = 0;

    for (int w = 0; w < BE_N_FLOWS; w++) {
        for (int l = 0; l < BE_N_LEVELS; l++) {
            double e = rp->res[w][l][MODE_ENGINE].conns;

            direct_max = fmax(direct_max, rp->res[w][l][MODE_DIRECT].conns);
            if (e > worst) {
                worst = e;
                ww = w;
                wl = l;
            }
        }
    }
    if (worst < 0.05) {
        sb_printf(md, "- The engine reused its connections as the direct "
                  "client did (at most %.2f new connections per run).\n",
                  worst);
        return;
    }
    sb_printf(md, "- The engine opened new TCP connections while the "
              "direct client (at most %.2f per run) reused its own: up to "
              "%.2f per run (%s, C=%d). Each costs a handshake and, on the "
              "test services, a new thread, in latency and CPU on both "
              "sides.\n", direct_max, worst, rp->flows[ww].title, levels[wl]);
}

/* The instruction counts beside the CPU-time target they stand in for. */
static void reading_instr(sbuf *md, const report *rp)
{
    span e = instr_span(rp->instr, MODE_ENGINE);
    span a = instr_span(rp->instr, MODE_MULE);
    char eb[96], ab[96];

    if (e.valid == 0 && a.valid == 0) {
        sb_printf(md, "- Instructions per run were not counted (%s).\n",
                  rp->instr->have_valgrind ? "every count failed" :
                  "valgrind was not on PATH");
        return;
    }
    sb_printf(md, "- Counted in instructions, one run at a time, the engine "
              "in process executes %s of the direct client's per run "
              "(target at most %.2fx: %s); astermule, its handling of the "
              "trigger's HTTP request included, %s (%s). The counts leave "
              "out the kernel's share and the machine's noise, both of "
              "which the CPU-time columns carry.\n",
              instr_span_text(eb, sizeof(eb), &e), BE_INSTR_LIMIT,
              span_verdict(&e, BE_INSTR_LIMIT, 1),
              instr_span_text(ab, sizeof(ab), &a),
              span_verdict(&a, BE_INSTR_LIMIT, 1));
}

/* Idle memory, astermule's own share beside the floor, and per run. */
static void reading_memory(sbuf *md, const report *rp)
{
    const mem_result *m = rp->mem;
    char buf[32], lib[32], own[32];

    sb_printf(md, "- astermule idles at %s RSS (target under 4 MiB: %s), "
              "of which %.2f MiB is private (RssAnon) and the rest pages "
              "of the shared libraries it maps. ",
              mib(buf, sizeof(buf), m->rss_idle_kib),
              verdict(m->rss_idle_kib > 0, m->rss_idle_kib < 4096),
              (double)m->anon_idle_kib / 1024);
    if (m->floor_idle_kib > 0 && m->rss_idle_kib > 0)
        sb_printf(md, "bench_floor, the same libraries serving nothing, "
                  "idles at %s (%.2f MiB private), which leaves %s to "
                  "astermule itself. ",
                  mib(lib, sizeof(lib), m->floor_idle_kib),
                  (double)m->floor_anon_kib / 1024,
                  mib_minus(own, sizeof(own), m->rss_idle_kib,
                            m->floor_idle_kib));
    else
        sb_printf(md, "bench_floor's idle RSS was not measured. ");
    sb_printf(md, "It holds %.1f KiB more per diamond run in flight "
              "(target under 16 KiB: %s).\n", m->per_run_bytes / 1024,
              verdict(m->ok, m->per_run_bytes < 16384));
}

/* Start-up beside the floor's, and the big DAG's parse time. */
static void reading_startup(sbuf *md, const report *rp)
{
    const start_result *st = rp->start;
    const parse_result *p = rp->parse;

    sb_printf(md, "- It answers `/healthz` %.2f ms after exec (target "
              "under 10 ms: %s)", st->healthz_ms,
              verdict(st->n > 0 && st->failures == 0, st->healthz_ms < 10));
    /* Medians of a few ms differ by noise too: within 5% of the floor
     * there is nothing of astermule's own to tell apart. */
    if (st->n > 0 && st->floor_n > 0 &&
        st->healthz_ms > st->floor_ms * 1.05)
        sb_printf(md, "; bench_floor, which only loads and initialises the "
                  "same libraries, answers after %.2f ms, so %.2f ms of "
                  "the start-up is astermule's own", st->floor_ms,
                  st->healthz_ms - st->floor_ms);
    else if (st->n > 0 && st->floor_n > 0)
        sb_printf(md, "; bench_floor, which only loads and initialises the "
                  "same libraries, answers after %.2f ms: astermule starts "
                  "as fast as its libraries load, within the noise",
                  st->floor_ms);
    sb_printf(md, ". A 10,000-node DAG parses and validates in %.1f ms as "
              "JSON and %.1f ms as YAML (target under 100 ms: %s).\n",
              p->json_ms, p->yaml_ms,
              verdict(p->ok, p->json_ms < 100 && p->yaml_ms < 100));
}

/* The plain-language reading: what the figures say against the targets. */
static void reading(sbuf *md, const report *rp)
{
    sb_printf(md, "### Reading\n\n");
    reading_ratio(md, rp, &ratio_targets[0], "Median latency, one run at a "
                  "time:", " The astermule figure also pays for the "
                  "trigger's own HTTP request and answer and a result "
                  "document listing every node.");
    reading_ratio(md, rp, &ratio_targets[1], "Throughput at 16 runs in "
                  "flight:", " With the services on the same CPUs, "
                  "throughput is bounded by the total CPU spent per run.");
    reading_ratio(md, rp, &ratio_targets[2], "CPU per run, every cell:",
                  "");
    reading_instr(md, rp);
    reading_conns(md, rp);
    reading_memory(md, rp);
    reading_startup(md, rp);
    sb_printf(md, "- %s\n\n", any_failures(rp) ?
              "Some cells had failed or unfinished runs (in bold in the "
              "failed column); they are left out of the verdicts above." :
              "Every run of every cell was healthy.");
}

static void report_build(sbuf *md, const report *rp)
{
    sb_printf(md, "## Engine\n\n");
    machine_notes(md, rp);
    for (int w = 0; w < BE_N_FLOWS; w++)
        flow_table(md, rp, w);
    instr_table(md, rp);
    other_tables(md, rp);
    targets_table(md, rp);
    reading(md, rp);
}

/* ---- the benchmarks document ---------------------------------------- */

/* Start of the line "## <title>" at or after from, or NULL. */
static const char *find_section(const char *doc, const char *from)
{
    for (const char *p = from; p && *p; p = next_line(p)) {
        if ((p == doc || p[-1] == '\n') && strncmp(p, "## ", 3) == 0)
            return p;
    }
    return NULL;
}

static int is_engine_heading(const char *p)
{
    return strncmp(p, "## Engine", 9) == 0 &&
           (p[9] == '\n' || p[9] == ' ' || p[9] == '\0');
}

static int read_file(const char *path, sbuf *out)
{
    char buf[8192];
    size_t n;
    FILE *f = fopen(path, "r");

    if (!f)
        return -1;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        sb_add(out, buf, n);
    fclose(f);
    sb_add(out, "", 0);
    return 0;
}

/*
 * Puts section into the document at path: in place of its "## Engine"
 * section when there is one, appended otherwise; every other "## "
 * section stays as it was. The file is replaced atomically.
 */
static int doc_update(const char *path, const sbuf *section)
{
    sbuf old = {0}, doc = {0};
    char *tmp = xasprintf("%s.tmp", path);
    int rc = -1;
    FILE *f;

    if (read_file(path, &old) < 0) {
        sb_printf(&doc, "# Benchmarks\n\nMeasured figures of Astertower's "
                  "components, one section each; every section says how "
                  "to rerun it.\n\n");
        sb_add(&doc, section->p, section->len);
    } else {
        const char *start = find_section(old.p, old.p);

        while (start && !is_engine_heading(start))
            start = find_section(old.p, start + 1);

        const char *end = start ? find_section(old.p, start + 1) : NULL;
        size_t head = start ? (size_t)(start - old.p) : old.len;

        sb_add(&doc, old.p, head);
        if (head > 0 && old.p[head - 1] != '\n')
            sb_add(&doc, "\n", 1);
        if (!start && head > 0)
            sb_add(&doc, "\n", 1);
        sb_add(&doc, section->p, section->len);
        if (end)
            sb_add(&doc, end, strlen(end));
    }

    f = fopen(tmp, "w");
    if (!f || fwrite(doc.p, 1, doc.len, f) != doc.len || fclose(f) != 0) {
        fprintf(stderr, "bench_engine: cannot write %s: %s\n", tmp,
                strerror(errno));
        goto out;
    }
    f = NULL;
    if (rename(tmp, path) < 0) {
        fprintf(stderr, "bench_engine: cannot rename %s to %s: %s\n", tmp,
                path, strerror(errno));
        goto out;
    }
    rc = 0;

out:
    if (f)
        fclose(f);
    free(tmp);
    sb_free(&old);
    sb_free(&doc);
    return rc;
}

/* ---- set-up and main ------------------------------------------------ */

/* ---- one client alone, for callgrind ----------------------------- */

/* Runs until the cell's budget is spent, one run in flight at a time. */
static void cell_count(cell *c, uint64_t runs)
{
    c->budget = runs;
    c->ph = PH_MEASURE;
    cell_start_one(c);
    while (c->inflight > 0)
        c->ops->step(c->ctx, 5);
}

/*
 * --profile: warms one in-process client up, then runs prof_runs runs of
 * one workflow with callgrind's collection switched on around them only
 * (the requests are no-ops outside valgrind), so that
 * "valgrind --tool=callgrind --collect-atstart=no" counts the
 * instructions of exactly those runs.
 */
static int profile_client(flow *flows, const bench_cfg *cfg)
{
    const flow *f = &flows[cfg->prof_flow];
    child mule = {.pid = 0, .port = 1};
    trio t;
    cell *c;

    trio_init(&t, f, &mule, 1);
    c = &t.cells[cfg->prof_mode];
    if (!t.ready[cfg->prof_mode]) {
        trio_free(&t);
        return -1;
    }
    cell_count(c, 200);
    c->measured = c->failures = 0;

    CALLGRIND_TOGGLE_COLLECT;
    cell_count(c, (uint64_t)cfg->prof_runs);
    CALLGRIND_TOGGLE_COLLECT;

    fprintf(stderr, "bench_engine: profiled %s, %s: %llu runs, %llu "
            "failed\n", mode_names[cfg->prof_mode], f->title,
            (unsigned long long)c->measured,
            (unsigned long long)c->failures);
    int rc = c->failures ? -1 : 0;

    trio_free(&t);
    return rc;
}

static const char usage[] =
    "usage: bench_engine [--seconds S] [--quick] [--out FILE]\n"
    "\n"
    "Measures the engine, in process and as astermule, against a direct\n"
    "libcurl client on the diamond, six and ten node workflows at\n"
    "concurrency 1, 4, 16 and 64; then astermule's memory and start-up\n"
    "beside bench_floor's (its libraries alone), the parse time of a\n"
    "10,000-node DAG and, when valgrind is on PATH, each client's\n"
    "instructions per run counted by callgrind. Prints a markdown report.\n"
    "\n"
    "  --seconds S  measured seconds per cell (default 3, in 10 rounds)\n"
    "  --quick      0.5 s cells, fewer repetitions and fewer runs under\n"
    "               callgrind: a rough pass\n"
    "  --out FILE   also write the report as the '## Engine' section of\n"
    "               FILE (docs/benchmarks.md), keeping other sections\n"
    "  --profile CLIENT:WORKFLOW:RUNS\n"
    "               only run RUNS runs of WORKFLOW (diamond, six, ten)\n"
    "               one at a time with CLIENT (direct or engine), for\n"
    "               valgrind --tool=callgrind --collect-atstart=no\n";

/* CLIENT:WORKFLOW:RUNS of --profile. */
static int parse_profile(const char *arg, bench_cfg *cfg)
{
    char client[16], workflow[16];
    long runs;
    char tail;

    cfg->prof_mode = cfg->prof_flow = -1;
    if (sscanf(arg, "%15[a-z]:%15[a-z]:%ld%c", client, workflow, &runs,
               &tail) != 3 || runs < 1 || runs > 10000000) {
        fprintf(stderr, "bench_engine: --profile %s: expected "
                "CLIENT:WORKFLOW:RUNS, RUNS 1 to 10000000\n", arg);
        return -1;
    }
    for (int m = 0; m < MODE_MULE; m++) {
        if (strcmp(client, mode_names[m]) == 0)
            cfg->prof_mode = m;
    }
    for (int w = 0; w < BE_N_FLOWS; w++) {
        if (strcmp(workflow, flow_specs[w].title) == 0)
            cfg->prof_flow = w;
    }
    if (cfg->prof_mode < 0 || cfg->prof_flow < 0) {
        fprintf(stderr, "bench_engine: --profile %s: the client is direct "
                "or engine, the workflow diamond, six or ten\n", arg);
        return -1;
    }
    cfg->prof_runs = runs;
    return 0;
}

static int parse_args(int argc, char **argv, bench_cfg *cfg)
{
    static const struct option opts[] = {
        {"seconds", required_argument, NULL, 's'},
        {"quick", no_argument, NULL, 'q'},
        {"out", required_argument, NULL, 'o'},
        {"profile", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    double seconds = -1;
    char *end;
    int c;

    cfg->prof_mode = -1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            seconds = strtod(optarg, &end);
            if (*end != '\0' || !(seconds >= 0.1 && seconds <= 600)) {
                fprintf(stderr, "bench_engine: --seconds %s: expected "
                        "0.1 to 600\n", optarg);
                return -1;
            }
            break;
        case 'q': cfg->quick = 1; break;
        case 'o': cfg->out = optarg; break;
        case 'p':
            if (parse_profile(optarg, cfg) < 0)
                return -1;
            break;
        case 'h': fputs(usage, stdout); exit(0);
        default: fputs(usage, stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bench_engine: unexpected argument '%s'\n",
                argv[optind]);
        return -1;
    }

    cfg->measure_s = seconds > 0 ? seconds : cfg->quick ? 0.5 : 3.0;
    cfg->warm_s = fmax(0.1, cfg->measure_s / 10);

    /* Many short rounds spread the machine's drift over the three clients
     * best, but each adds a 0.1 s warm-up: at most ten, of 0.3 s or more. */
    cfg->rounds = cfg->measure_s >= 1.5 ?
        (int)fmin(10, floor(cfg->measure_s / 0.3 + 1e-9)) : 1;
    cfg->start_reps = cfg->quick ? 5 : 20;
    cfg->parse_reps = cfg->quick ? 3 : 10;
    cfg->slow_ms = cfg->quick ? 2000 : 3000;
    cfg->cg_runs = cfg->quick ? 400 : 2000;
    cfg->cg_mule_runs[0] = cfg->quick ? 100 : 200;
    cfg->cg_mule_runs[1] = cfg->quick ? 400 : 1200;
    return 0;
}

/* The directory of this binary, where the programs it starts are. */
static int find_bindir(bench_cfg *cfg)
{
    ssize_t n = readlink("/proc/self/exe", cfg->bindir,
                         sizeof(cfg->bindir) - 1);
    char *slash;

    if (n <= 0) {
        fprintf(stderr, "bench_engine: cannot read /proc/self/exe: %s\n",
                strerror(errno));
        return -1;
    }
    cfg->bindir[n] = '\0';
    slash = strrchr(cfg->bindir, '/');
    if (slash)
        *slash = '\0';

    const char *need[] = {"astermule", "test-service", "bench_floor"};

    for (size_t k = 0; k < sizeof(need) / sizeof(need[0]); k++) {
        char *p = xasprintf("%s/%s", cfg->bindir, need[k]);
        int ok = access(p, X_OK) == 0;

        if (!ok)
            fprintf(stderr, "bench_engine: %s is missing or not executable; "
                    "build it first (cmake --build build --target %s)\n", p,
                    need[k]);
        free(p);
        if (!ok)
            return -1;
    }
    return 0;
}

static int services_start(child *svc, int *ports, const bench_cfg *cfg)
{
    char *path = xasprintf("%s/test-service", cfg->bindir);
    char err[512];
    int rc = 0;

    for (int i = 0; i < BE_MAX_NODES && rc == 0; i++) {
        char name[16];
        char *argv[] = {path, "--port", "0", "--name", name, NULL};

        snprintf(name, sizeof(name), "svc%d", i);
        snprintf(svc[i].what, sizeof(svc[i].what), "test-service %s", name);
        rc = child_start(&svc[i], argv, err, sizeof(err));
        if (rc == 0)
            rc = child_wait_port(&svc[i], 5000, err, sizeof(err));
        if (rc < 0)
            fprintf(stderr, "bench_engine: %s\n", err);
        ports[i] = svc[i].port;
    }
    free(path);
    return rc;
}

static void services_stop(child *svc)
{
    for (int i = 0; i < BE_MAX_NODES; i++)
        child_stop(&svc[i]);
}

/* Children must be able to hold 1,000 runs' connections open. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static double load_average(void)
{
    double v = -1;
    FILE *f = fopen("/proc/loadavg", "r");

    if (f) {
        if (fscanf(f, "%lf", &v) != 1)
            v = -1;
        fclose(f);
    }
    return v;
}

static result cells[BE_N_FLOWS][BE_N_LEVELS][N_MODES];

int main(int argc, char **argv)
{
    bench_cfg cfg = {0};
    child svc[BE_MAX_NODES];
    int ports[BE_MAX_NODES] = {0};
    flow flows[BE_N_FLOWS];
    mem_result mem;
    start_result start;
    parse_result parse;
    instr_result instr;
    report rp = {.cfg = &cfg, .flows = flows, .res = cells, .mem = &mem,
                 .start = &start, .parse = &parse, .instr = &instr};
    sbuf md = {0};
    char err[512];
    int rc = 1, nflows = 0;
    int64_t t0 = now_ns();
    time_t wall = time(NULL);

    memset(svc, 0, sizeof(svc));
    if (parse_args(argc, argv, &cfg) < 0 || find_bindir(&cfg) < 0)
        return 2;
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();
    log_set_level(LOG_WARN);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "bench_engine: cannot initialise libcurl\n");
        return 1;
    }
    rp.load_before = load_average();
    strftime(rp.date, sizeof(rp.date), "%Y-%m-%d %H:%M UTC", gmtime(&wall));

    if (services_start(svc, ports, &cfg) < 0)
        goto out;
    for (; nflows < BE_N_FLOWS; nflows++) {
        if (flow_parse(&flows[nflows], nflows, err, sizeof(err)) < 0 ||
            flow_bind(&flows[nflows], ports, SIZE_MAX, "", err,
                      sizeof(err)) < 0) {
            fprintf(stderr, "bench_engine: %s\n", err);
            nflows++;
            goto out;
        }
    }

    if (cfg.prof_mode >= 0) {
        rc = profile_client(flows, &cfg) < 0;
        goto out;
    }

    fprintf(stderr, "bench_engine: %.1f s cells; services on ports %d..%d\n",
            cfg.measure_s, ports[0], ports[BE_MAX_NODES - 1]);
    if (run_cells(flows, &cfg, cells) < 0)
        goto out;
    fprintf(stderr, "bench_engine: memory with %d runs in flight\n",
            BE_INFLIGHT_RUNS);
    bench_memory(ports, &cfg, &mem);
    fprintf(stderr, "bench_engine: start-up, %d starts\n", cfg.start_reps);
    bench_startup(&flows[0], &cfg, &start);
    fprintf(stderr, "bench_engine: parsing a %d-node DAG\n", BE_BIG_NODES);
    bench_parse(&cfg, &parse);
    fprintf(stderr, "bench_engine: instructions per run under callgrind\n");
    bench_instructions(flows, &cfg, &instr);

    rp.elapsed_s = (double)(now_ns() - t0) / 1e9;
    report_build(&md, &rp);
    fwrite(md.p, 1, md.len, stdout);
    rc = 0;
    if (cfg.out && doc_update(cfg.out, &md) < 0)
        rc = 1;

out:
    services_stop(svc);
    for (int w = 0; w < nflows; w++)
        flow_unbind(&flows[w]);
    sb_free(&md);
    curl_global_cleanup();
    return rc;
}
