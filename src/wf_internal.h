/*
 * wf_internal: what the files of the wf module share with each other.
 *
 * wf_parse() runs four stages, one file each:
 *   wf_syntax.c  text -> cJSON tree (JSON directly, YAML through events);
 *   wf_tree.c    checks every object of the tree (duplicate keys, NUL in
 *                keys, nesting) whatever the form;
 *   wf_model.c   detects the form and reads each node's fields, with
 *                wf_url.c for urls and targets;
 *   wf_graph.c   resolves names and dependencies, orders the nodes.
 * Every stage reports through one wf_ctx and keeps going after a problem,
 * so the caller gets all of them at once.
 *
 * Nothing here is exported beyond the library; the wf_ prefix only keeps
 * the names out of other modules' way.
 */
#ifndef ASTER_WF_INTERNAL_H
#define ASTER_WF_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "jw.h"
#include "wf.h"

/* At most this many problems are kept per document; a generated file with
 * a million broken dependencies must not cost a million messages. */
#define WF_MAX_PROBLEMS 1000

/* Objects and arrays nested deeper than this are refused. Real documents
 * need about six levels; the bound keeps every walk's recursion short. */
#define WF_MAX_DEPTH 64

/* Longest rendering of a user string inside a message. */
#define WF_QUOTE_MAX 64

/* Room for one quoted user string: WF_QUOTE_MAX characters, each up to
 * six bytes once escaped, plus the ellipsis. */
#define WF_QUOTE_BUF (WF_QUOTE_MAX * 6 + 8)

/* Longest path we build; paths of real documents are far shorter. */
#define WF_PATH_MAX 512

/* ---- string -> index map (open addressing) ---- */

typedef struct wf_map_slot {
    const char *key; /* not owned; NULL marks a free slot */
    size_t len;
    size_t val;
    uint64_t hash;
} wf_map_slot;

typedef struct wf_map {
    wf_map_slot *slots;
    size_t cap; /* a power of two, or 0 */
    size_t n;
    uint64_t seed;
} wf_map;

/* Sizes the map for n keys; returns 0 or -1 on allocation failure. */
int wf_map_init(wf_map *m, size_t n, uint64_t seed);
void wf_map_free(wf_map *m);

/* Returns the slot of key, or NULL. */
const wf_map_slot *wf_map_get(const wf_map *m, const char *key, size_t len);

/* Inserts key unless present. Returns 1 when inserted, 0 when the key was
 * there (*found then holds its value), -1 when the map is full. */
int wf_map_put(wf_map *m, const char *key, size_t len, size_t val,
               size_t *found);

/* A per-parse hash seed, so nobody can pre-compute colliding names. */
uint64_t wf_seed(void);

/* ---- strings that cJSON truncated ---- */

/*
 * cJSON keeps strings NUL-terminated, so "a\u0000b" arrives as "a". The
 * syntax stage records every such string here with its full text so the
 * later stages can refuse it by name instead of reading a shorter value.
 */
typedef struct wf_nul {
    const cJSON *item; /* the value, or the member whose key it is */
    int is_key;
    char *text; /* owned copy: raw JSON token or decoded YAML bytes */
    size_t len;
    int raw_json; /* text is still JSON-escaped */
} wf_nul;

typedef struct wf_nulset {
    wf_nul *items;
    size_t n;
    size_t cap;
    int sorted;
} wf_nulset;

/* ---- string arena owned by a workflow ---- */

typedef struct wf_arena_block wf_arena_block;

typedef struct wf_arena {
    wf_arena_block *head;
} wf_arena;

/* Copies len bytes and a NUL into the arena; NULL on allocation failure. */
char *wf_arena_strndup(wf_arena *a, const char *s, size_t len);
void wf_arena_free(wf_arena *a);

/* ---- the parse ---- */

typedef struct wf_ctx {
    const wf_limits *lim;
    wf_problems *probs;
    size_t n_problems; /* found in this document, kept or not */
    int oom;           /* an allocation failed; the result is refused */
    uint64_t seed;
    wf_nulset nuls;

    /* Set by the model stage for messages and paths. */
    wf_form form;
    const char *list_path; /* "nodes" or "spec.stars" */
    const char *noun;      /* "node" or "star" */
} wf_ctx;

/* Records a problem. Past WF_MAX_PROBLEMS only the count grows. */
void wf_ctx_problem(wf_ctx *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Notes an allocation failure once, as a problem if memory allows. */
void wf_ctx_oom(wf_ctx *c);

/* Adds a truncated string; the text is copied. Returns 0 or -1. */
int wf_nulset_add(wf_ctx *c, const cJSON *item, int is_key, const char *text,
                  size_t len, int raw_json);
const wf_nul *wf_nulset_find(wf_nulset *s, const cJSON *item, int is_key);
void wf_nulset_free(wf_nulset *s);

/*
 * Renders len bytes of s for a message into buf (WF_QUOTE_BUF bytes):
 * control characters, backslashes and broken UTF-8 escaped, at most
 * WF_QUOTE_MAX characters then "...". raw_json leaves backslashes alone
 * because the text is already a JSON token. Returns buf.
 */
const char *wf_quote(char *buf, const char *s, size_t len, int raw_json);

/* Shorthand for NUL-terminated text. */
const char *wf_quotes(char *buf, const char *s);

/* Name of a cJSON item's type for "got a number" messages. */
const char *wf_type_name(const cJSON *item);

/* Stage 1: parses text into *root. Returns 0, or -1 with a problem. */
int wf_syntax_parse(wf_ctx *c, const char *text, size_t len, cJSON **root);

/* Stage 2: duplicate keys, NUL in keys; nesting, should a tree deeper
 * than the syntax stage allows ever reach it. */
void wf_tree_check(wf_ctx *c, const cJSON *root);

/* What the model stage hands to the graph stage for node i. */
typedef struct wf_pending {
    const cJSON *deps; /* the dependencies array, or NULL */
    size_t n_items;    /* its length */
    int named;         /* the node has a usable name */
} wf_pending;

/*
 * The workflow under construction. wf is first so wf_free() can find the
 * rest from the public pointer.
 */
typedef struct wf_owned {
    wf_workflow wf;
    wf_arena arena; /* every string of the workflow */
    size_t *slab;   /* deps, succs, order and exits of every node */
    wf_map names;   /* name -> index, for wf_find() */
} wf_owned;

/* Stage 3: fills o->wf (form, names, nodes and their fields) and one
 * wf_pending per node in *pend (caller frees). Returns 0, or -1 when the
 * document has no list of nodes to go on with. */
int wf_model_build(wf_ctx *c, const cJSON *root, wf_owned *o,
                   wf_pending **pend);

/*
 * Checks a DAG node's url (len bytes, NUL-terminated): at most
 * max_url_bytes, absolute http or https with a host and a valid port,
 * accepted by libcurl's URL parser as a transfer would parse it, with an
 * ASCII host. Returns 0, or -1 after reporting the first problem at path.
 */
int wf_url_check(wf_ctx *c, const char *path, const char *u, size_t len);

/*
 * Checks a docker star's target (len bytes, NUL-terminated): starts with
 * '/', at most max_url_bytes less WF_TARGET_ROOM, no space or control
 * character, and forms a URL libcurl accepts after http://host:port.
 * Returns 0, or -1 after reporting the first problem at path.
 */
int wf_target_check(wf_ctx *c, const char *path, const char *t, size_t len);

/* Stage 4: names, dependencies, successors, order, exits, cycles and the
 * default actions. */
void wf_graph_build(wf_ctx *c, wf_owned *o, const wf_pending *pend);

#endif
