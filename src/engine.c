/*
 * engine: the run state machine and the event loop.
 *
 * Threads: everything below engine_submit()/engine_stop() runs on the
 * loop thread. Submissions cross over through a mutex-protected queue and
 * an eventfd that wakes epoll_wait().
 *
 * Memory: a run is one allocation of its state plus one node_run per
 * node. Outputs live until the run ends, because any later node may merge
 * them and the exit nodes' outputs form the result.
 *
 * Requests: an attempt borrows a call, an easy handle already set up for
 * its node's URL, action and timeout, from the pool of that request kind,
 * and gives it back when it ends. Only the body changes between
 * attempts: resetting and setting up a handle for every attempt cost as
 * much as a fifth of the request itself. At most max_idle_calls calls are
 * kept idle over all pools; the multi handle keeps the connections.
 */
#define _GNU_SOURCE
#include "engine.h"

#include <curl/curl.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "jmerge.h"
#include "jw.h"
#include "jx.h"
#include "log.h"

#define SUBSYS "engine"

/* How long after a node's timeout its own deadline ends an attempt that
 * libcurl has not ended. */
#define DEADLINE_GRACE_MS 5

/* Bytes libcurl reads into at a time, per call in flight. */
#define ENGINE_RECV_BUFFER 4096L

/* After this many runs were in flight at once, the first moment with
 * none gives the freed memory back to the system (malloc_trim). */
#define ENGINE_TRIM_AFTER 256

/* How much of a URL a message shows. */
#define URL_SHOWN 200

/* How much of a failed answer's body goes into the node's error. */
#define ERROR_BODY_PREFIX 200

typedef enum node_state {
    NS_WAITING = 0, /* predecessors not all done yet */
    NS_RUNNING,     /* an attempt is in flight */
    NS_BACKOFF,     /* waiting to retry */
    NS_SUCCEEDED,
    NS_FAILED,
    NS_SKIPPED,
} node_state;

static const char *const state_names[] = {
    "waiting", "running", "waiting", "succeeded", "failed", "skipped",
};

struct run;
struct call_pool;

/*
 * An easy handle and what its callbacks write to. Set up once for one
 * kind of request; CURLOPT_PRIVATE, WRITEDATA and ERRORBUFFER point at
 * the call itself, so an attempt only sets run, node and the body.
 */
typedef struct call {
    CURL *easy;
    struct call_pool *pool; /* where it goes back */
    struct run *run;        /* the attempt's, while in the multi */
    size_t node;
    char *body;             /* the answer; passes to the node on success */
    size_t len;
    size_t cap;
    int too_big;
    int cut;                /* a failed answer's start was kept, no more */
    int headers_done;       /* the blank line after the headers came */
    char errbuf[CURL_ERROR_SIZE];
} call;

/* Idle calls for one URL, action and timeout; chained in a hash bucket. */
typedef struct call_pool {
    char *url;
    wf_action action;
    long timeout_ms;
    uint64_t hash;
    call **idle;
    size_t n_idle;
    size_t cap_idle;
    struct call_pool *next;
} call_pool;

typedef struct node_run {
    node_state state;
    size_t pending;   /* predecessors that have not succeeded yet */
    int attempts;
    long http_status; /* of the last attempt; 0 when none answered */
    int64_t start_ns; /* first attempt */
    int64_t end_ns;
    const char *in;   /* request body: the run input, a predecessor's
                         output, or in_owned */
    size_t in_len;
    char *in_owned;
    char *out;        /* answer body of the successful attempt */
    size_t out_len;
    char *error;      /* why it failed or was skipped */
    size_t blame;     /* skipped: the failed node it depends on */
    size_t timer;     /* its timer's heap position + 1; 0: none */
    call *call;
} node_run;

typedef struct run {
    struct engine *e;
    const wf_workflow *wf;
    uint64_t id;
    char *input;
    size_t input_len;
    node_run *nodes;
    size_t unsettled;
    size_t n_failed;
    int64_t start_ns;
    engine_done_fn done;
    void *ud;
    struct run *prev, *next; /* runs in flight */
} run;

/* A run accepted by engine_submit() and not yet started. */
typedef struct submission {
    const wf_workflow *wf;
    char *input;
    size_t input_len;
    engine_done_fn done;
    void *ud;
    uint64_t id;
    struct submission *next;
} submission;

typedef enum timer_kind {
    TK_RETRY = 0, /* a node's backoff is over: start its next attempt */
    TK_DEADLINE,  /* an attempt's timeout, in case libcurl does not act */
} timer_kind;

/* A node's timer; a node has at most one at a time (it is either in
 * backoff or running), and knows its place in the heap. */
typedef struct timer {
    int64_t due_ns;
    run *run;
    size_t node;
    timer_kind kind;
} timer;

struct engine {
    engine_config cfg;
    CURLM *multi;
    int epfd;
    int wakefd;
    int64_t curl_due_ns; /* -1: libcurl wants no timeout */

    struct curl_slist *hdr_body;   /* requests that carry the input */
    struct curl_slist *hdr_nobody; /* GET and DELETE */

    call_pool **pools; /* hash buckets, a power of two of them */
    size_t n_buckets;
    size_t n_pools;
    size_t n_idle; /* calls idle over all pools */

    timer *timers; /* binary min-heap on due_ns */
    size_t n_timers;
    size_t cap_timers;

    run *runs; /* in flight, doubly linked */
    size_t n_runs;
    size_t runs_peak; /* most runs at once since memory was last trimmed */

    int watched[ENGINE_MAX_WATCHED];
    int watched_ready[ENGINE_MAX_WATCHED];
    int n_watched;

    pthread_mutex_t lock; /* guards the fields below */
    submission *queue_head;
    submission *queue_tail;
    size_t queued;
    int stopping;
    int loop_stop;

    uint64_t next_id;
    engine_stats stats; /* updated with atomics, read by any thread */
};

#define STAT_ADD(e, field, n) \
    __atomic_add_fetch(&(e)->stats.field, (n), __ATOMIC_RELAXED)

static int64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static double ms_between(int64_t a, int64_t b)
{
    return (double)(b - a) / 1e6;
}

void engine_config_default(engine_config *cfg)
{
    cfg->max_body_bytes = 8u << 20;
    cfg->max_runs = 100000;
    cfg->backoff_ms = 100;
    cfg->backoff_max_ms = 10000;
    cfg->max_host_conns = 0;
    cfg->max_idle_conns = 1024;
    cfg->max_idle_calls = 256;
}

/* ---- timers ------------------------------------------------------- */

/* Puts timer t at heap position i and tells its node where it is. */
static void heap_set(engine *e, size_t i, timer t)
{
    e->timers[i] = t;
    t.run->nodes[t.node].timer = i + 1;
}

static void sift_up(engine *e, size_t i)
{
    timer t = e->timers[i];

    while (i > 0 && e->timers[(i - 1) / 2].due_ns > t.due_ns) {
        heap_set(e, i, e->timers[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(e, i, t);
}

static void sift_down(engine *e, size_t i)
{
    timer t = e->timers[i];

    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;

        if (l >= e->n_timers)
            break;
        if (r < e->n_timers && e->timers[r].due_ns < e->timers[l].due_ns)
            m = r;
        if (e->timers[m].due_ns >= t.due_ns)
            break;
        heap_set(e, i, e->timers[m]);
        i = m;
    }
    heap_set(e, i, t);
}

static int timer_push(engine *e, int64_t due, run *r, size_t node,
                      timer_kind kind)
{
    if (e->n_timers == e->cap_timers) {
        size_t cap = e->cap_timers ? e->cap_timers * 2 : 64;
        timer *t = realloc(e->timers, cap * sizeof(*t));

        if (!t)
            return -1;
        e->timers = t;
        e->cap_timers = cap;
    }
    e->timers[e->n_timers++] = (timer){due, r, node, kind};
    sift_up(e, e->n_timers - 1);
    return 0;
}

/* Takes node i's timer, if it has one, out of the heap. */
static void timer_cancel(engine *e, run *r, size_t i)
{
    size_t at = r->nodes[i].timer;

    if (at == 0)
        return;
    r->nodes[i].timer = 0;
    at--;
    if (at == --e->n_timers)
        return;

    /* The last timer fills the hole, then finds its place. */
    timer moved = e->timers[e->n_timers];

    heap_set(e, at, moved);
    if (at > 0 && e->timers[(at - 1) / 2].due_ns > moved.due_ns)
        sift_up(e, at);
    else
        sift_down(e, at);
}

static timer timer_pop(engine *e)
{
    timer top = e->timers[0];

    timer_cancel(e, top.run, top.node);
    return top;
}

/* ---- libcurl callbacks ---------------------------------------------- */

static int on_curl_socket(CURL *easy, curl_socket_t s, int what, void *ud,
                          void *socketp)
{
    engine *e = ud;
    struct epoll_event ev = {0};

    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, s, NULL);
        curl_multi_assign(e->multi, s, NULL);
        return 0;
    }

    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    ev.data.fd = s;

    /* socketp marks a socket already in the epoll set. */
    if (socketp) {
        epoll_ctl(e->epfd, EPOLL_CTL_MOD, s, &ev);
    } else if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, s, &ev) == 0) {
        curl_multi_assign(e->multi, s, e);
    } else {
        log_msg(LOG_ERROR, SUBSYS, "cannot watch socket %d: %s", (int)s,
                strerror(errno));
        return -1;
    }
    return 0;
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *ud)
{
    engine *e = ud;

    e->curl_due_ns =
        timeout_ms < 0 ? -1 : now_ns() + (int64_t)timeout_ms * 1000000;
    return 0;
}

/* libcurl hands over an answer's header lines one at a time, the blank
 * line that ends them included. A connection closed before that line
 * cut the answer short, yet libcurl (7.88) reports such a transfer
 * complete, with the status it read: without the blank line the answer
 * is no answer. A status line after a 1xx answer starts over. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
    call *c = ud;
    size_t n = size * nmemb;

    if (n > 0 && n <= 2 && (data[0] == '\r' || data[0] == '\n'))
        c->headers_done = 1;
    else if (n >= 5 && memcmp(data, "HTTP/", 5) == 0)
        c->headers_done = 0;
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    call *c = ud;
    size_t n = size * nmemb;
    size_t limit = c->run->e->cfg.max_body_bytes;
    long status = 0;

    /* A failed answer is only quoted: once its start is in, the rest
     * need not be read, however large. */
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status > 299) {
        limit = ERROR_BODY_PREFIX + 1;
        if (n > limit - c->len) {
            n = limit - c->len;
            c->cut = 1;
        }
    }

    if (n > limit - c->len) {
        c->too_big = 1;
        return 0; /* makes libcurl end the transfer with a write error */
    }

    if (c->len + n + 1 > c->cap) {
        /* Most answers arrive in one piece: the first one is sized to
         * fit, since outputs are kept until the run ends. */
        size_t cap = c->cap ? c->cap * 2 : n + 1;

        while (cap < c->len + n + 1)
            cap *= 2;
        if (cap > limit + 1)
            cap = limit + 1;

        char *b = realloc(c->body, cap);

        if (!b)
            return 0;
        c->body = b;
        c->cap = cap;
    }

    memcpy(c->body + c->len, data, n);
    c->len += n;
    c->body[c->len] = '\0';

    /* Returning less than given ends the transfer with a write error. */
    return c->cut ? 0 : size * nmemb;
}

/* ---- run state ---------------------------------------------------- */

static void node_settled(run *r);
static void node_start(run *r, size_t i);

static char *str_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *str_printf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;

    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

/*
 * The URL as messages show it: a user name and password in it become
 * "***" (results end up in logs, Astro statuses and Events), and past
 * URL_SHOWN bytes it is cut with "...". Returns out.
 */
static const char *url_shown(const char *url, char *out, size_t outlen)
{
    const char *auth = strstr(url, "://");
    const char *at = NULL;
    size_t used = 0;

    if (auth) {
        auth += 3;
        size_t end = strcspn(auth, "/?#");

        at = memchr(auth, '@', end);
    }

    /* scheme:// + *** + from the '@' on, or the whole URL. */
    int n = at ? snprintf(out, outlen, "%.*s***%s", (int)(auth - url), url,
                          at)
               : snprintf(out, outlen, "%s", url);

    used = n < 0 ? 0 : (size_t)n;
    if (used >= outlen && outlen > 4)
        memcpy(out + outlen - 4, "...", 4);
    return out;
}

/*
 * Marks every node downstream of failed node f as skipped. A node below
 * several failed ones names the first of them in declaration order, not
 * the first to fail in time, so that the same failures always read the
 * same. The walk uses an explicit stack: a 10,000-node chain must not
 * exhaust the C stack; a node is pushed only when it changes, at most
 * once per call.
 */
static void skip_downstream(run *r, size_t f)
{
    const wf_workflow *wf = r->wf;
    size_t *stack = malloc(wf->n_nodes * sizeof(*stack));
    size_t top = 0;

    if (!stack) {
        log_msg(LOG_ERROR, SUBSYS, "run %llu: out of memory",
                (unsigned long long)r->id);
        abort();
    }

    stack[top++] = f;
    while (top > 0) {
        const wf_node *n = &wf->nodes[stack[--top]];

        for (size_t k = 0; k < n->n_succs; k++) {
            size_t s = n->succs[k];
            node_run *nr = &r->nodes[s];

            if (nr->state == NS_WAITING) {
                nr->state = NS_SKIPPED;
                r->unsettled--;
            } else if (nr->state != NS_SKIPPED || nr->blame <= f) {
                continue;
            }
            nr->blame = f;
            free(nr->error);
            nr->error = str_printf("skipped: depends on failed node %s",
                                   wf->nodes[f].name);
            stack[top++] = s;
        }
    }
    free(stack);
}

/* Takes ownership of msg (which may be NULL when memory ran out). */
static void node_fail(run *r, size_t i, char *msg)
{
    node_run *nr = &r->nodes[i];

    nr->state = NS_FAILED;
    nr->end_ns = now_ns();
    free(nr->error);
    nr->error = msg;
    r->n_failed++;
    r->unsettled--;

    if (log_enabled(LOG_DEBUG))
        log_msg(LOG_DEBUG, SUBSYS, "run %llu: node %s failed after %d "
                "attempt(s): %s", (unsigned long long)r->id,
                r->wf->nodes[i].name, nr->attempts, msg ? msg : "?");

    skip_downstream(r, i);
    node_settled(r);
}

static void node_succeed(run *r, size_t i)
{
    const wf_node *n = &r->wf->nodes[i];
    node_run *nr = &r->nodes[i];

    nr->state = NS_SUCCEEDED;
    nr->end_ns = now_ns();

    if (log_enabled(LOG_DEBUG))
        log_msg(LOG_DEBUG, SUBSYS, "run %llu: node %s succeeded, HTTP %ld "
                "in %.3f ms, %zu bytes", (unsigned long long)r->id,
                n->name, nr->http_status, ms_between(nr->start_ns,
                nr->end_ns), nr->out_len);

    for (size_t k = 0; k < n->n_succs; k++) {
        node_run *s = &r->nodes[n->succs[k]];

        if (--s->pending == 0 && s->state == NS_WAITING)
            node_start(r, n->succs[k]);
    }

    /* Counted only now: a successor failing at once must not end (and
     * free) the run while this loop still walks it. */
    r->unsettled--;
    node_settled(r);
}

/* Builds the request body of node i from the run input or from its
 * predecessors' outputs. Returns 0, or -1 after failing the node. */
static int node_input(run *r, size_t i)
{
    const wf_node *n = &r->wf->nodes[i];
    node_run *nr = &r->nodes[i];

    if (n->n_deps == 0) {
        nr->in = r->input;
        nr->in_len = r->input_len;
        return 0;
    }

    /* One predecessor passes its body through untouched: no copy. */
    if (n->n_deps == 1) {
        node_run *p = &r->nodes[n->deps[0]];

        nr->in = p->out ? p->out : "";
        nr->in_len = p->out_len;
        return 0;
    }

    jmerge_part small[8] = {{0}};
    jmerge_part *parts = small;
    char err[256];
    size_t bad = (size_t)-1;

    if (n->n_deps > 8) {
        parts = malloc(n->n_deps * sizeof(*parts));
        if (!parts) {
            node_fail(r, i, str_printf("out of memory merging inputs"));
            return -1;
        }
    }
    for (size_t k = 0; k < n->n_deps; k++) {
        node_run *p = &r->nodes[n->deps[k]];

        parts[k].body = p->out ? p->out : "";
        parts[k].len = p->out_len;
    }

    int rc = jmerge_parts(parts, n->n_deps, &nr->in_owned, &nr->in_len, err,
                          sizeof(err), &bad);

    if (parts != small)
        free(parts);
    if (rc != 0) {
        const char *who = bad < n->n_deps ?
            r->wf->nodes[n->deps[bad]].name : "?";

        node_fail(r, i, str_printf("cannot merge the output of predecessor "
                                   "%s: %s", who, err));
        return -1;
    }
    nr->in = nr->in_owned;
    return 0;
}

/* ---- calls and their pools ---------------------------------------- */

static uint64_t pool_hash(const char *url, wf_action action, long timeout)
{
    uint64_t h = 1469598103934665603ULL;

    for (const unsigned char *p = (const unsigned char *)url; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    h ^= (uint64_t)action << 56 ^ (uint64_t)timeout;
    return h * 1099511628211ULL;
}

/* Doubles the bucket array; on failure the chains just grow longer. */
static void pools_grow(engine *e)
{
    size_t n = e->n_buckets ? e->n_buckets * 2 : 64;
    call_pool **b = calloc(n, sizeof(*b));

    if (!b)
        return;
    for (size_t k = 0; k < e->n_buckets; k++) {
        call_pool *p = e->pools[k];

        while (p) {
            call_pool *next = p->next;

            p->next = b[p->hash & (n - 1)];
            b[p->hash & (n - 1)] = p;
            p = next;
        }
    }
    free(e->pools);
    e->pools = b;
    e->n_buckets = n;
}

/* The pool of node n's kind of request, made on first use; NULL when
 * memory ran out. */
static call_pool *pool_find(engine *e, const wf_node *n)
{
    uint64_t h = pool_hash(n->url, n->action, n->timeout_ms);

    if (e->n_pools >= e->n_buckets)
        pools_grow(e);
    if (e->n_buckets == 0)
        return NULL;

    call_pool **head = &e->pools[h & (e->n_buckets - 1)];

    for (call_pool *p = *head; p; p = p->next) {
        if (p->hash == h && p->action == n->action &&
            p->timeout_ms == n->timeout_ms && strcmp(p->url, n->url) == 0)
            return p;
    }

    call_pool *p = calloc(1, sizeof(*p));

    if (!p || !(p->url = strdup(n->url))) {
        free(p);
        return NULL;
    }
    p->action = n->action;
    p->timeout_ms = n->timeout_ms;
    p->hash = h;
    p->next = *head;
    *head = p;
    e->n_pools++;
    return p;
}

/* Sets up a new call for pool p's kind of request. */
static call *call_new(engine *e, call_pool *p)
{
    call *c = calloc(1, sizeof(*c));
    CURL *easy = c ? curl_easy_init() : NULL;

    if (!easy) {
        free(c);
        return NULL;
    }
    c->easy = easy;
    c->pool = p;
    STAT_ADD(e, handles_created, 1);

    curl_easy_setopt(easy, CURLOPT_URL, p->url);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, c);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    /* The receive buffer lives as long as the handle, one per call in
     * flight: libcurl's 16 KiB default made it most of the memory of a
     * run. Answers in a workflow are small JSON documents; a large one
     * only takes more reads. */
    curl_easy_setopt(easy, CURLOPT_BUFFERSIZE, ENGINE_RECV_BUFFER);
    /* Validation already refused other schemes; this is the backstop, and
     * redirects are not followed at all. */
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");

    /* Certificates are checked against the CA bundle alone: with a CA
     * directory set as well (Debian's default) libcurl does not cache the
     * bundle it has read, and every new https connection read all 290
     * certificates again, for 20 to 35 ms, on the loop's one thread. */
    curl_easy_setopt(easy, CURLOPT_CAPATH, NULL);

    switch (p->action) {
    case WF_ACTION_GET:
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, e->hdr_nobody);
        break;
    case WF_ACTION_DELETE:
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, "DELETE");
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, e->hdr_nobody);
        break;
    case WF_ACTION_PUT:
    case WF_ACTION_PATCH:
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST,
                         wf_action_name(p->action));
        /* fall through */
    case WF_ACTION_POST:
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, e->hdr_body);
        break;
    }
    return c;
}

static void call_free(call *c)
{
    curl_easy_cleanup(c->easy);
    free(c->body);
    free(c);
}

/* A call for node n, idle or new; NULL when memory ran out. */
static call *call_get(engine *e, const wf_node *n)
{
    call_pool *p = pool_find(e, n);

    if (!p)
        return NULL;
    if (p->n_idle == 0)
        return call_new(e, p);
    e->n_idle--;
    return p->idle[--p->n_idle];
}

/* Takes back a call whose easy handle has left the multi; its body must
 * have been taken or freed. Past max_idle_calls it is released. */
static void call_put(engine *e, call *c)
{
    call_pool *p = c->pool;

    c->run = NULL;
    c->body = NULL;
    c->len = c->cap = 0;
    c->too_big = 0;
    c->cut = 0;
    c->headers_done = 0;
    if (e->n_idle >= e->cfg.max_idle_calls)
        goto release;
    if (p->n_idle == p->cap_idle) {
        size_t cap = p->cap_idle ? p->cap_idle * 2 : 8;
        call **v = realloc(p->idle, cap * sizeof(*v));

        if (!v)
            goto release;
        p->idle = v;
        p->cap_idle = cap;
    }
    p->idle[p->n_idle++] = c;
    e->n_idle++;
    return;

release:
    call_free(c);
}

static void pools_free(engine *e)
{
    for (size_t k = 0; k < e->n_buckets; k++) {
        call_pool *p = e->pools[k];

        while (p) {
            call_pool *next = p->next;

            for (size_t j = 0; j < p->n_idle; j++)
                call_free(p->idle[j]);
            free(p->idle);
            free(p->url);
            free(p);
            p = next;
        }
    }
    free(e->pools);
    e->pools = NULL;
    e->n_buckets = e->n_pools = e->n_idle = 0;
}

/* Sets up one attempt of node i; the node's input is ready. */
static void attempt_start(run *r, size_t i)
{
    engine *e = r->e;
    const wf_node *n = &r->wf->nodes[i];
    node_run *nr = &r->nodes[i];
    call *c = call_get(e, n);

    if (!c) {
        node_fail(r, i, str_printf("out of memory starting the request"));
        return;
    }

    c->run = r;
    c->node = i;
    c->errbuf[0] = '\0';
    nr->call = c;
    nr->state = NS_RUNNING;
    nr->attempts++;
    if (nr->attempts == 1)
        nr->start_ns = now_ns();
    STAT_ADD(e, calls, 1);

    if (n->action != WF_ACTION_GET && n->action != WF_ACTION_DELETE) {
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, nr->in);
        curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)nr->in_len);
    }

    CURLMcode mc = curl_multi_add_handle(e->multi, c->easy);

    if (mc != CURLM_OK) {
        char shown[URL_SHOWN + 1];

        nr->call = NULL;
        call_put(e, c);
        node_fail(r, i, str_printf("cannot start the request to %s: %s",
                                   url_shown(n->url, shown, sizeof(shown)),
                                   curl_multi_strerror(mc)));
        return;
    }

    /* libcurl does not time out a transfer still waiting for a
     * connection (--max-host-connections): this deadline does, a little
     * after libcurl's own would have fired. Without memory for it only
     * libcurl's timeout remains. */
    timer_push(e, now_ns() + (n->timeout_ms + DEADLINE_GRACE_MS) * 1000000,
               r, i, TK_DEADLINE);
}

static void node_start(run *r, size_t i)
{
    if (node_input(r, i) == 0)
        attempt_start(r, i);
}

/* Copies up to ERROR_BODY_PREFIX bytes of body, control bytes replaced,
 * so an error message stays one printable line. A cut falls between
 * characters: the bytes of one cut in two would become two U+FFFD. */
static void body_prefix(const char *body, size_t len, char *out,
                        size_t outlen)
{
    size_t n = len < ERROR_BODY_PREFIX ? len : ERROR_BODY_PREFIX;
    size_t j = 0;

    for (int back = 0; n < len && back < 3 && n > 0 &&
                       ((unsigned char)body[n] & 0xC0) == 0x80;
         back++)
        n--;

    for (size_t k = 0; k < n && j + 4 < outlen; k++) {
        unsigned char ch = (unsigned char)body[k];

        out[j++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    if (len > n && j + 4 < outlen) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

/* "HTTP 500: <the answer's start>", or "HTTP 500 with an empty body". */
static char *status_message(long status, const char *body, size_t len)
{
    char prefix[ERROR_BODY_PREFIX + 8];

    if (len == 0)
        return str_printf("HTTP %ld with an empty body", status);
    body_prefix(body, len, prefix, sizeof(prefix));
    return str_printf("HTTP %ld: %s", status, prefix);
}

/* Decides what an ended attempt means and moves the node on. */
static void attempt_done(engine *e, call *c, CURLcode res)
{
    run *r = c->run;
    size_t i = c->node;
    const wf_node *n = &r->wf->nodes[i];
    node_run *nr = &r->nodes[i];
    long status = 0, oserr = 0;
    curl_off_t sent_at = 0;
    char *msg = NULL;

    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &oserr);
    curl_easy_getinfo(c->easy, CURLINFO_PRETRANSFER_TIME_T, &sent_at);
    curl_multi_remove_handle(e->multi, c->easy);
    timer_cancel(e, r, i);
    nr->call = NULL;
    nr->http_status = status;

    if (res == CURLE_OK && c->headers_done && status >= 200 &&
        status < 300) {
        nr->out = c->body;
        nr->out_len = c->len;
        call_put(e, c);
        node_succeed(r, i);
        return;
    }

    if (c->cut) {
        msg = status_message(status, c->body, c->len);
    } else if (c->too_big) {
        msg = str_printf("answer body exceeds the limit of %zu bytes",
                         e->cfg.max_body_bytes);
    } else if (res == CURLE_OPERATION_TIMEDOUT) {
        /* Still waiting for a connection to the service, the request
         * never left. */
        msg = str_printf("timed out after %ld ms%s", n->timeout_ms,
                         sent_at == 0 ? " before its request was sent" : "");
    } else if (res != CURLE_OK) {
        char shown[URL_SHOWN + 1];

        /* libcurl's text may not name the system error; add it, so that
         * "connection refused" reads as such. */
        msg = str_printf("%s %s: %s%s%s%s", wf_action_name(n->action),
                         url_shown(n->url, shown, sizeof(shown)),
                         c->errbuf[0] ? c->errbuf : curl_easy_strerror(res),
                         oserr ? " (" : "", oserr ? strerror((int)oserr) : "",
                         oserr ? ")" : "");
    } else if (!c->headers_done) {
        char shown[URL_SHOWN + 1];

        msg = str_printf("%s %s: the connection closed before the answer's "
                         "headers ended (status line: HTTP %ld)",
                         wf_action_name(n->action),
                         url_shown(n->url, shown, sizeof(shown)), status);
    } else {
        msg = status_message(status, c->body, c->len);
    }
    free(c->body);
    call_put(e, c);
    STAT_ADD(e, call_failures, 1);

    if (nr->attempts <= n->retries) {
        long delay = e->cfg.backoff_ms;

        for (int k = 1; k < nr->attempts && delay < e->cfg.backoff_max_ms;
             k++)
            delay *= 2;
        if (delay > e->cfg.backoff_max_ms)
            delay = e->cfg.backoff_max_ms;

        if (log_enabled(LOG_DEBUG))
            log_msg(LOG_DEBUG, SUBSYS, "run %llu: node %s attempt %d "
                    "failed (%s); retrying in %ld ms",
                    (unsigned long long)r->id, n->name, nr->attempts,
                    msg ? msg : "?", delay);

        free(nr->error);
        nr->error = msg;
        nr->state = NS_BACKOFF;
        if (timer_push(e, now_ns() + delay * 1000000, r, i, TK_RETRY) == 0) {
            STAT_ADD(e, retries, 1);
            return;
        }
        msg = str_printf("out of memory scheduling a retry");
    }
    node_fail(r, i, msg);
}

/* ---- results ------------------------------------------------------ */

/* Writes a single exit's body: its JSON text as it is (jx.h checks it),
 * a string when it is not JSON, null when it is empty. Bytes that are
 * not UTF-8 become U+FFFD either way. */
static void put_exit_body(jw *w, const char *body, size_t len)
{
    size_t start, end, k = 0;
    jx_error e;

    while (k < len && strchr(" \t\r\n", body[k]) && body[k])
        k++;
    if (k == len)
        jw_null(w);
    else if (jx_check(body, len, &start, &end, &e) != JX_NONE)
        jw_json_utf8(w, body + start, end - start);
    else
        jw_str(w, body, len);
}

/* Writes the exit nodes' outputs, merged, as the value of "data". Returns
 * NULL, or why they cannot be merged (the caller frees it). */
static char *put_data(jw *w, run *r)
{
    const wf_workflow *wf = r->wf;
    jmerge_part small[8];
    size_t small_who[8];
    jmerge_part *parts = small;
    size_t *who = small_who;
    size_t n = 0;
    char *err = NULL;

    if (wf->n_exits > 8) {
        parts = malloc(wf->n_exits * sizeof(*parts));
        who = malloc(wf->n_exits * sizeof(*who));
        if (!parts || !who) {
            err = str_printf("out of memory merging the exit outputs");
            jw_null(w);
            goto out;
        }
    }

    for (size_t k = 0; k < wf->n_exits; k++) {
        node_run *nr = &r->nodes[wf->exits[k]];

        if (nr->state != NS_SUCCEEDED)
            continue;
        parts[n].body = nr->out ? nr->out : "";
        parts[n].len = nr->out_len;
        who[n++] = wf->exits[k];
    }

    if (n == 0) {
        jw_null(w);
    } else if (n == 1) {
        put_exit_body(w, parts[0].body, parts[0].len);
    } else {
        char *merged = NULL;
        size_t mlen = 0, bad = (size_t)-1;
        char msg[256];

        /* jmerge's text is valid JSON in valid UTF-8: it goes in as it
         * is. */
        if (jmerge_parts(parts, n, &merged, &mlen, msg, sizeof(msg),
                         &bad) == 0) {
            jw_json(w, merged, mlen);
        } else {
            err = str_printf("cannot merge the output of exit node %s: %s",
                             bad < n ? wf->nodes[who[bad]].name : "?", msg);
            jw_null(w);
        }
        free(merged);
    }

out:
    if (parts != small)
        free(parts);
    if (who != small_who)
        free(who);
    return err;
}

static void put_node(jw *w, run *r, size_t i)
{
    node_run *nr = &r->nodes[i];

    jw_key(w, r->wf->nodes[i].name);
    jw_obj_open(w);
    JW_KEY(w, "state");
    jw_strz(w, state_names[nr->state]);
    if (nr->http_status) {
        JW_KEY(w, "httpStatus");
        jw_uint(w, (uint64_t)nr->http_status);
    }
    JW_KEY(w, "attempts");
    jw_uint(w, (uint64_t)nr->attempts);
    if (nr->start_ns) {
        JW_KEY(w, "durationMs");
        jw_ms(w, nr->end_ns - nr->start_ns);
    }
    if (nr->state == NS_SKIPPED) {
        JW_KEY(w, "skippedBecause");
        jw_strz(w, r->wf->nodes[nr->blame].name);
    }
    if (nr->error && nr->state != NS_SUCCEEDED) {
        JW_KEY(w, "error");
        jw_strz(w, nr->error);
    }
    jw_obj_close(w);
}

/*
 * Builds the result document; see engine.h for its shape. Written with
 * jw rather than as a cJSON tree: building and printing the tree was a
 * fifth of the engine's instructions per run. Returns NULL when memory
 * ran out.
 */
static char *result_build(run *r, int64_t end, int *healthy, size_t *len)
{
    const wf_workflow *wf = r->wf;
    size_t first_failed = wf->n_nodes;
    char idbuf[24], *err, *data;
    size_t data_len;
    jw w, dw;

    /* The data first: whether the exits merge decides the health. */
    jw_init(&dw, 0);
    err = put_data(&dw, r);
    data = jw_finish(&dw, &data_len);
    *healthy = r->n_failed == 0 && !err && data;

    jw_init(&w, 256 + data_len + 128 * wf->n_nodes);
    jw_obj_open(&w);
    snprintf(idbuf, sizeof(idbuf), "%llu", (unsigned long long)r->id);
    JW_KEY(&w, "id");
    jw_strz(&w, idbuf);
    JW_KEY(&w, "status");
    jw_obj_open(&w);
    JW_KEY(&w, "health");
    jw_bool(&w, *healthy);
    jw_obj_close(&w);
    JW_KEY(&w, "data");
    if (data)
        jw_json(&w, data, data_len);
    else
        jw_null(&w);
    free(data);

    JW_KEY(&w, "durationMs");
    jw_ms(&w, end - r->start_ns);

    JW_KEY(&w, "failed");
    jw_arr_open(&w);
    for (size_t i = 0; i < wf->n_nodes; i++) {
        if (r->nodes[i].state != NS_FAILED)
            continue;
        jw_strz(&w, wf->nodes[i].name);
        if (first_failed == wf->n_nodes)
            first_failed = i;
    }
    jw_arr_close(&w);

    if (first_failed < wf->n_nodes) {
        const char *why = r->nodes[first_failed].error;
        char *text = str_printf("node %s failed: %s",
                                wf->nodes[first_failed].name,
                                why ? why : "unknown reason");

        JW_KEY(&w, "error");
        jw_strz(&w, text ? text : "node failed");
        free(text);
    } else if (err) {
        JW_KEY(&w, "error");
        jw_strz(&w, err);
    }
    free(err);

    JW_KEY(&w, "nodes");
    jw_obj_open(&w);
    for (size_t i = 0; i < wf->n_nodes; i++)
        put_node(&w, r, i);
    jw_obj_close(&w);
    jw_obj_close(&w);

    char *doc = jw_finish(&w, len);

    if (!doc)
        *healthy = 0;
    return doc;
}

static void run_free(run *r)
{
    for (size_t i = 0; i < r->wf->n_nodes; i++) {
        free(r->nodes[i].in_owned);
        free(r->nodes[i].out);
        free(r->nodes[i].error);
    }
    free(r->nodes);
    free(r->input);
    free(r);
}

static void log_run(run *r, int healthy, double ms)
{
    const wf_workflow *wf = r->wf;
    char names[512];
    size_t used = 0;

    if (healthy) {
        log_msg(LOG_INFO, SUBSYS, "run %llu healthy in %.3f ms, %zu nodes",
                (unsigned long long)r->id, ms, wf->n_nodes);
        return;
    }

    names[0] = '\0';
    for (size_t i = 0; i < wf->n_nodes && used + 4 < sizeof(names); i++) {
        if (r->nodes[i].state != NS_FAILED)
            continue;
        int w = snprintf(names + used, sizeof(names) - used, "%s%s",
                         used ? ", " : "", wf->nodes[i].name);
        if (w < 0)
            break;
        used += (size_t)w;
    }
    log_msg(LOG_INFO, SUBSYS, "run %llu unhealthy in %.3f ms, failed: %s",
            (unsigned long long)r->id, ms, used ? names : "(exit merge)");
}

static void node_settled(run *r)
{
    if (r->unsettled > 0)
        return;

    engine *e = r->e;
    int64_t end = now_ns();
    int healthy;
    size_t len;
    char *doc = result_build(r, end, &healthy, &len);

    log_run(r, healthy, ms_between(r->start_ns, end));
    STAT_ADD(e, runs_inflight, (uint64_t)-1);
    if (healthy)
        STAT_ADD(e, runs_healthy, 1);
    else
        STAT_ADD(e, runs_unhealthy, 1);

    if (r->prev)
        r->prev->next = r->next;
    else
        e->runs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    e->n_runs--;

    engine_done_fn done = r->done;
    void *ud = r->ud;

    run_free(r);
    done(ud, doc, len, healthy);
}

static void run_start(engine *e, submission *s)
{
    const wf_workflow *wf = s->wf;
    run *r = calloc(1, sizeof(*r));
    node_run *nodes = calloc(wf->n_nodes, sizeof(*nodes));

    if (!r || !nodes) {
        static const char oom[] =
            "{\"status\":{\"health\":false},\"error\":\"out of memory\"}";
        char *doc = strdup(oom);

        free(r);
        free(nodes);
        free(s->input);
        STAT_ADD(e, runs_inflight, (uint64_t)-1);
        STAT_ADD(e, runs_unhealthy, 1);
        s->done(s->ud, doc, doc ? strlen(doc) : 0, 0);
        return;
    }

    r->e = e;
    r->wf = wf;
    r->id = s->id;
    r->input = s->input;
    r->input_len = s->input_len;
    r->nodes = nodes;
    r->unsettled = wf->n_nodes;
    r->start_ns = now_ns();
    r->done = s->done;
    r->ud = s->ud;
    r->next = e->runs;
    if (e->runs)
        e->runs->prev = r;
    e->runs = r;
    if (++e->n_runs > e->runs_peak)
        e->runs_peak = e->n_runs;
    STAT_ADD(e, runs_started, 1);

    for (size_t i = 0; i < wf->n_nodes; i++)
        nodes[i].pending = wf->nodes[i].n_deps;

    /* Entry nodes start together. The extra count keeps the run alive
     * while they start, even if every one of them fails at once. */
    r->unsettled++;
    for (size_t i = 0; i < wf->n_nodes; i++) {
        if (wf->nodes[i].n_deps == 0 && nodes[i].state == NS_WAITING)
            node_start(r, i);
    }
    r->unsettled--;
    node_settled(r);
}

/* ---- submissions and the loop ------------------------------------ */

int engine_submit(engine *e, const wf_workflow *wf, const char *input,
                  size_t len, engine_done_fn done, void *ud, uint64_t *id,
                  char *err, size_t errlen)
{
    submission *s = calloc(1, sizeof(*s));

    if (!s) {
        snprintf(err, errlen, "out of memory queueing the run");
        return -1;
    }
    if (len == 0) {
        input = "{}";
        len = 2;
    }
    s->input = malloc(len + 1);
    if (!s->input) {
        free(s);
        snprintf(err, errlen, "out of memory copying the run input");
        return -1;
    }
    memcpy(s->input, input, len);
    s->input[len] = '\0';
    s->input_len = len;
    s->wf = wf;
    s->done = done;
    s->ud = ud;

    pthread_mutex_lock(&e->lock);
    uint64_t inflight =
        __atomic_load_n(&e->stats.runs_inflight, __ATOMIC_RELAXED);
    if (e->stopping || inflight >= e->cfg.max_runs) {
        int stopping = e->stopping;

        pthread_mutex_unlock(&e->lock);
        free(s->input);
        free(s);
        STAT_ADD(e, runs_refused, 1);
        if (stopping)
            snprintf(err, errlen, "the engine is stopping");
        else
            snprintf(err, errlen, "%zu runs are already in flight, the "
                     "limit", e->cfg.max_runs);
        return -1;
    }
    s->id = ++e->next_id;
    if (id)
        *id = s->id;
    STAT_ADD(e, runs_inflight, 1);
    if (e->queue_tail)
        e->queue_tail->next = s;
    else
        e->queue_head = s;
    e->queue_tail = s;
    e->queued++;
    pthread_mutex_unlock(&e->lock);

    uint64_t one = 1;
    ssize_t w = write(e->wakefd, &one, sizeof(one));

    (void)w; /* a full counter already means "wake up" */
    return 0;
}

static void drain_queue(engine *e)
{
    pthread_mutex_lock(&e->lock);
    submission *s = e->queue_head;

    e->queue_head = e->queue_tail = NULL;
    e->queued = 0;
    pthread_mutex_unlock(&e->lock);

    while (s) {
        submission *next = s->next;

        run_start(e, s);
        free(s);
        s = next;
    }
}

static void read_messages(engine *e)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(e->multi, &left))) {
        call *c = NULL;

        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
        if (c)
            attempt_done(e, c, m->data.result);
    }
}

static void fire_timers(engine *e)
{
    int64_t now = now_ns();

    while (e->n_timers > 0 && e->timers[0].due_ns <= now) {
        timer t = timer_pop(e);
        node_run *nr = &t.run->nodes[t.node];

        if (t.kind == TK_RETRY)
            attempt_start(t.run, t.node);
        else if (nr->state == NS_RUNNING && nr->call)
            attempt_done(e, nr->call, CURLE_OPERATION_TIMEDOUT);
    }
}

int engine_watch_fd(engine *e, int fd)
{
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};

    if (e->n_watched == ENGINE_MAX_WATCHED)
        return -1;
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    e->watched[e->n_watched] = fd;
    return e->n_watched++;
}

int engine_fd_ready(engine *e, int slot)
{
    int r = e->watched_ready[slot];

    e->watched_ready[slot] = 0;
    return r;
}

/* Returns 1 when fd is one of the watched ones, noting it ready. */
static int watched_mark(engine *e, int fd)
{
    for (int k = 0; k < e->n_watched; k++) {
        if (e->watched[k] == fd) {
            e->watched_ready[k] = 1;
            return 1;
        }
    }
    return 0;
}

size_t engine_step(engine *e, int timeout_ms)
{
    struct epoll_event evs[64];
    int64_t now = now_ns();
    int64_t due = timeout_ms < 0 ? -1 : now + (int64_t)timeout_ms * 1000000;
    int running;

    if (e->curl_due_ns >= 0 && (due < 0 || e->curl_due_ns < due))
        due = e->curl_due_ns;
    if (e->n_timers > 0 && (due < 0 || e->timers[0].due_ns < due))
        due = e->timers[0].due_ns;

    int wait_ms = -1;

    if (due >= 0)
        wait_ms = due <= now ? 0 : (int)((due - now + 999999) / 1000000);

    int n = epoll_wait(e->epfd, evs, 64, wait_ms);

    for (int k = 0; k < n; k++) {
        if (watched_mark(e, evs[k].data.fd))
            continue;
        if (evs[k].data.fd == e->wakefd) {
            uint64_t v;
            ssize_t r = read(e->wakefd, &v, sizeof(v));

            (void)r;
            drain_queue(e);
            continue;
        }

        int flags = 0;

        if (evs[k].events & EPOLLIN)
            flags |= CURL_CSELECT_IN;
        if (evs[k].events & EPOLLOUT)
            flags |= CURL_CSELECT_OUT;
        if (evs[k].events & (EPOLLERR | EPOLLHUP))
            flags |= CURL_CSELECT_ERR;
        curl_multi_socket_action(e->multi, evs[k].data.fd, flags, &running);
        read_messages(e);
    }

    if (e->curl_due_ns >= 0 && e->curl_due_ns <= now_ns()) {
        e->curl_due_ns = -1;
        curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        read_messages(e);
    }

    fire_timers(e);

    /* Starting nodes may have asked libcurl for an immediate timeout. */
    if (e->curl_due_ns >= 0 && e->curl_due_ns <= now_ns()) {
        e->curl_due_ns = -1;
        curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        read_messages(e);
    }

    /* A burst leaves its memory in malloc's free lists; once it is over,
     * hand it back, so that an edge box gets it for something else. */
    if (e->n_runs == 0 && e->runs_peak >= ENGINE_TRIM_AFTER) {
        e->runs_peak = 0;
        malloc_trim(0);
    }

    return (size_t)__atomic_load_n(&e->stats.runs_inflight,
                                   __ATOMIC_RELAXED);
}

void engine_loop(engine *e)
{
    for (;;) {
        pthread_mutex_lock(&e->lock);
        int stop = e->loop_stop;

        e->loop_stop = 0;
        pthread_mutex_unlock(&e->lock);
        if (stop)
            return;
        engine_step(e, -1);
    }
}

void engine_stop(engine *e)
{
    uint64_t one = 1;

    pthread_mutex_lock(&e->lock);
    e->loop_stop = 1;
    pthread_mutex_unlock(&e->lock);

    ssize_t w = write(e->wakefd, &one, sizeof(one));

    (void)w;
}

void engine_get_stats(const engine *e, engine_stats *out)
{
    const uint64_t *src = (const uint64_t *)&e->stats;
    uint64_t *dst = (uint64_t *)out;

    for (size_t k = 0; k < sizeof(*out) / sizeof(uint64_t); k++)
        dst[k] = __atomic_load_n(&src[k], __ATOMIC_RELAXED);
}

/* ---- set-up and tear-down ----------------------------------------- */

engine *engine_new(const engine_config *cfg, char *err, size_t errlen)
{
    engine *e = calloc(1, sizeof(*e));
    struct epoll_event ev = {.events = EPOLLIN};

    if (!e) {
        snprintf(err, errlen, "out of memory creating the engine");
        return NULL;
    }
    if (cfg)
        e->cfg = *cfg;
    else
        engine_config_default(&e->cfg);
    e->curl_due_ns = -1;
    e->epfd = -1;
    e->wakefd = -1;
    pthread_mutex_init(&e->lock, NULL);

    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0) {
        snprintf(err, errlen, "epoll_create1: %s", strerror(errno));
        goto fail;
    }
    e->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->wakefd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    ev.data.fd = e->wakefd;
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wakefd, &ev) < 0) {
        snprintf(err, errlen, "epoll_ctl on the wake-up fd: %s",
                 strerror(errno));
        goto fail;
    }

    e->multi = curl_multi_init();
    if (!e->multi) {
        snprintf(err, errlen, "curl_multi_init failed");
        goto fail;
    }
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    /* libcurl's default cache holds four connections per transfer in
     * progress: between runs it would close the connections to most
     * nodes and every run would connect again. Keep them. */
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS,
                      e->cfg.max_idle_conns);
    if (e->cfg.max_host_conns > 0)
        curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                          e->cfg.max_host_conns);

    /* "Expect:" stops libcurl from waiting for 100-continue on larger
     * bodies, a round trip no node service needs. */
    e->hdr_body = curl_slist_append(NULL, "Content-Type: application/json");
    if (e->hdr_body)
        e->hdr_body = curl_slist_append(e->hdr_body, "Expect:");
    e->hdr_nobody = curl_slist_append(NULL, "Expect:");
    if (!e->hdr_body || !e->hdr_nobody) {
        snprintf(err, errlen, "out of memory building request headers");
        goto fail;
    }
    return e;

fail:
    engine_free(e);
    return NULL;
}

/* Why node nr did not finish when the engine stopped, keeping what its
 * last attempt said; NULL when memory ran out. */
static char *stopped_reason(const node_run *nr)
{
    curl_off_t sent_at = 0;

    if (nr->state == NS_RUNNING && nr->call)
        curl_easy_getinfo(nr->call->easy, CURLINFO_PRETRANSFER_TIME_T,
                          &sent_at);

    /* A call still waiting for a connection never left. */
    if (nr->state == NS_RUNNING && sent_at == 0)
        return str_printf("the engine stopped before attempt %d's request "
                          "was sent", nr->attempts);
    if (nr->state == NS_RUNNING)
        return str_printf("the engine stopped while attempt %d was in "
                          "flight", nr->attempts);
    if (nr->state == NS_BACKOFF)
        return str_printf("the engine stopped before retrying; attempt %d "
                          "had failed: %s", nr->attempts,
                          nr->error ? nr->error : "unknown reason");
    return str_printf("the engine stopped before the node ran");
}

/*
 * Ends a run the engine is stopping: every unsettled node fails and says
 * where it was. Upstream nodes go first (topological order), so that a
 * node waiting below one in flight is skipped, naming it, rather than
 * failed on its own.
 */
static void run_abort(run *r)
{
    r->unsettled++; /* keeps r valid through the loop */
    for (size_t k = 0; k < r->wf->n_nodes; k++) {
        size_t i = r->wf->order[k];
        node_run *nr = &r->nodes[i];

        if (nr->state != NS_WAITING && nr->state != NS_RUNNING &&
            nr->state != NS_BACKOFF)
            continue;

        char *why = stopped_reason(nr);

        timer_cancel(r->e, r, i);
        if (nr->state == NS_RUNNING && nr->call) {
            curl_multi_remove_handle(r->e->multi, nr->call->easy);
            call_free(nr->call);
            nr->call = NULL;
        }
        node_fail(r, i, why);
    }
    r->unsettled--;
    node_settled(r);
}

void engine_free(engine *e)
{
    if (!e)
        return;

    pthread_mutex_lock(&e->lock);
    e->stopping = 1;
    pthread_mutex_unlock(&e->lock);

    /* Runs still queued or in flight get a result saying why they end. */
    if (e->multi) {
        drain_queue(e);
        while (e->runs)
            run_abort(e->runs);
    }

    pools_free(e);
    free(e->timers);
    if (e->multi)
        curl_multi_cleanup(e->multi);
    curl_slist_free_all(e->hdr_body);
    curl_slist_free_all(e->hdr_nobody);
    if (e->wakefd >= 0)
        close(e->wakefd);
    if (e->epfd >= 0)
        close(e->epfd);
    pthread_mutex_destroy(&e->lock);
    free(e);
}
