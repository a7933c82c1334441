/*
 * wf: workflow documents.
 *
 * One model for both input forms: the engine's DAG document
 * ({"nodes":[{"name","action","url","dependencies"}]}) and the Astro
 * custom resource (apiVersion astertower.kasterism.io/v1alpha1, kind Astro,
 * spec.stars[]). Either form may be written as JSON or YAML.
 *
 * wf_parse() reads, validates and orders a document in one call. Every
 * problem found is collected with the path of the field it concerns
 * ("spec.stars[2].dependencies[0]") and a reason; a document with any
 * problem yields no workflow at all.
 *
 * Ownership: a wf_workflow owns every string and array it points to and is
 * released with wf_free(). A wf_problems owns its items; release it with
 * wf_problems_free(). Nothing here prints or keeps global state, so the
 * engine, the controller and the gateway can all use it from any thread.
 */
#ifndef ASTER_WF_H
#define ASTER_WF_H

#include <stddef.h>

typedef enum wf_form {
    WF_FORM_DAG = 1,   /* the engine's own document: nodes[] */
    WF_FORM_ASTRO = 2, /* the Astro custom resource: spec.stars[] */
} wf_form;

typedef enum wf_action {
    WF_ACTION_GET = 0,
    WF_ACTION_POST,
    WF_ACTION_PUT,
    WF_ACTION_PATCH,
    WF_ACTION_DELETE,
} wf_action;

typedef enum wf_node_type {
    WF_NODE_HTTP = 0, /* a DAG node: calls url */
    WF_NODE_DOCKER,   /* an Astro star run from an image */
    WF_NODE_DEVICE,   /* an Astro star reading an edge device */
    WF_NODE_SCRIPT,   /* an Astro star running a script */
} wf_node_type;

/* Defaults of semantics.md section 3. */
#define WF_DEFAULT_TIMEOUT_MS 30000L

/* The shortest timeout accepted: below it libcurl's own timers decide
 * (a 1 ms timeout fired after about 200 ms), so it would not mean what
 * it says. */
#define WF_MIN_TIMEOUT_MS 10L
#define WF_DEFAULT_RETRIES 0

typedef struct wf_node {
    char *name; /* unique within the workflow; may hold any printable
                   text in the DAG form, a DNS-1123 label in an Astro */
    size_t name_len;
    wf_node_type type;
    wf_action action;  /* explicit, or GET for entry nodes, else POST */
    int action_given;  /* 1 when the document named the action */
    char *url;         /* absolute http(s) URL libcurl accepts; NULL
                          for stars */
    char *image;       /* docker stars; NULL otherwise */
    int port;          /* docker stars: 1-65535; 0 when absent */
    char *target;      /* docker stars: path starting with '/' that
                          makes a URL after http://host:port */
    long timeout_ms;   /* per attempt; WF_DEFAULT_TIMEOUT_MS if absent */
    int retries;       /* extra attempts after a failure */
    size_t *deps;      /* indices of predecessors, in declared order */
    size_t n_deps;
    size_t *succs;     /* indices of successors, in declaration order */
    size_t n_succs;
} wf_node;

typedef struct wf_workflow {
    wf_form form;
    char *name;      /* Astro metadata.name; NULL for a DAG */
    char *namespace; /* Astro metadata.namespace; NULL when absent */
    wf_node *nodes;  /* in declaration order */
    size_t n_nodes;
    size_t *order;   /* a topological order of node indices */
    size_t *exits;   /* nodes without successors, in declaration order */
    size_t n_exits;
} wf_workflow;

/* Limits enforced while parsing; each breach is reported as a problem. */
typedef struct wf_limits {
    size_t max_doc_bytes;  /* size of the document text */
    size_t max_nodes;      /* nodes or stars */
    size_t max_name_bytes; /* DAG node names (Astro names: 63, fixed) */
    size_t max_deps;       /* dependencies of one node */
    long max_timeout_ms;   /* largest per-node timeout accepted */
    int max_retries;       /* largest per-node retries accepted */
    size_t max_url_bytes;  /* a DAG url; a star target gets this less
                              WF_TARGET_ROOM, the room the controller
                              needs for http://host:port before it */
} wf_limits;

/* Bytes of max_url_bytes kept for "http://<address>:<port>" in front of a
 * star target, so the URL the controller builds passes the engine's own
 * max_url_bytes: "http://", a bracketed IPv6 address and ":65535". */
#define WF_TARGET_ROOM 64

/* Fills *lim with the defaults: 16 MiB, 20,000 nodes, 253-byte names,
 * 1,000 dependencies, 1 hour timeouts, 10 retries, 8,192-byte URLs. */
void wf_limits_default(wf_limits *lim);

typedef struct wf_problem {
    char *path;    /* "nodes[1].dependencies[0]"; "" for the document */
    char *message; /* one sentence, no trailing newline */
} wf_problem;

typedef struct wf_problems {
    wf_problem *items;
    size_t n;
    size_t cap;
} wf_problems;

void wf_problems_init(wf_problems *p);
void wf_problems_free(wf_problems *p);

/* Appends a problem; the message is printf-formatted. Returns 0, or -1
 * when memory ran out (the problem is then lost, the list stays valid). */
int wf_problems_add(wf_problems *p, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Renders every problem as "path: message\n" (or "message\n" without a
 * path) into a new string the caller frees; NULL on allocation failure. */
char *wf_problems_format(const wf_problems *p);

/*
 * Parses, validates and orders a document of len bytes (JSON or YAML,
 * DAG or Astro form, detected from the content). lim may be NULL for the
 * defaults.
 *
 * Returns 0 and stores a new workflow in *out, or returns -1, leaves *out
 * NULL and appends every problem found to probs. Syntax errors carry the
 * line and column.
 */
int wf_parse(const char *text, size_t len, const wf_limits *lim,
             wf_workflow **out, wf_problems *probs);

/* Reads the file at path and calls wf_parse(); an unreadable file is
 * reported as a problem naming the path and the system error. */
int wf_parse_file(const char *path, const wf_limits *lim, wf_workflow **out,
                  wf_problems *probs);

void wf_free(wf_workflow *wf);

/* "GET", "POST", ... */
const char *wf_action_name(wf_action a);

/* Parses an action name case-insensitively; returns 0 or -1. */
int wf_action_parse(const char *s, wf_action *out);

/* Index of the node with the given name, or -1. */
long wf_find(const wf_workflow *wf, const char *name);

#endif
