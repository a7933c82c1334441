/*
 * store: the object store behind the fake apiserver.
 *
 * One store holds every object as cJSON, the resource types (built-ins
 * and those defined by CustomResourceDefinitions), one global
 * resourceVersion counter and a bounded event log. All writes, whether
 * they come from HTTP or from an in-process controller, go through the
 * same functions, so validation, resourceVersion bumps, generation,
 * status/spec separation, finalizers, garbage collection and watch
 * events behave the same for both.
 *
 * Threading: every function may be called from any thread; one mutex
 * guards the store. Watches block on a condition variable.
 *
 * Ownership: request bodies are borrowed; every cJSON handed out through
 * an out parameter is fresh and owned by the caller.
 *
 * Return values: the operation functions return the HTTP status of the
 * outcome (200 or 201 on success). On failure (a code >= 400) err holds
 * a metav1.Status object describing it.
 */
#ifndef SIMAPI_STORE_H
#define SIMAPI_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

typedef struct store store;
typedef struct store_watch store_watch;

typedef void (*store_log_fn)(int level, const char *msg, void *ud);

typedef struct store_config {
    int history;           /* events kept for watch replay; 0: 10000 */
    store_log_fn log;      /* NULL: silent */
    void *log_ud;
} store_config;

/* A failure: the HTTP code and the Status body (owned by the holder). */
typedef struct store_err {
    int code;
    cJSON *status;
} store_err;

/* Where an operation applies. NULL or "" means "not given". */
typedef struct store_ref {
    const char *group;     /* "" for the core group */
    const char *version;
    const char *resource;  /* the plural, as in URLs */
    const char *ns;
    const char *name;      /* NULL for the collection */
    const char *sub;       /* NULL or "status" */
} store_ref;

typedef enum store_patch_type {
    STORE_PATCH_MERGE,     /* application/merge-patch+json */
    STORE_PATCH_JSON,      /* application/json-patch+json */
    STORE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
    STORE_PATCH_APPLY,     /* application/apply-patch+yaml (as JSON) */
} store_patch_type;

/* Query options; zero means "not given" for every field. */
typedef struct store_opts {
    int dry_run;
    const char *field_manager;
    const char *label_selector;
    const char *field_selector;
    long limit;
    const char *cont;
    const char *resource_version;
    const char *propagation;   /* Background, Foreground or Orphan */
    int allow_bookmarks;
    int expired_as_http;       /* watch: answer 410 instead of ERROR */
} store_opts;

typedef struct store_event {
    const char *type;      /* ADDED, MODIFIED, DELETED, BOOKMARK, ERROR */
    cJSON *object;         /* owned by the receiver */
} store_event;

/* Creates a store with the built-in kinds and the usual namespaces. */
store *store_new(const store_config *cfg);

/*
 * Ends every watch (store_watch_next returns -1) and refuses new ones.
 * Call before tearing down whatever serves those watches.
 */
void store_shutdown(store *st);

/* Frees the store; every watch must have been closed first. */
void store_free(store *st);

/* Releases err's Status and clears it. */
void store_err_clear(store_err *err);

/* The message of err's Status, or "" when there is none. */
const char *store_err_message(const store_err *err);

/* The current global resourceVersion. */
uint64_t store_rv(store *st);

/*
 * Drops all watch history: a watch from an older resourceVersion then
 * fails with 410 Expired.
 */
void store_compact(store *st);

/* Sets how many events the log keeps (at least 1). */
void store_set_history(store *st, int history);

int store_create(store *st, const store_ref *ref, const store_opts *o,
                 const cJSON *body, cJSON **out, store_err *err);
int store_get(store *st, const store_ref *ref, const store_opts *o,
              cJSON **out, store_err *err);
int store_list(store *st, const store_ref *ref, const store_opts *o,
               cJSON **out, store_err *err);

/* PUT: a whole object for the main resource or its status. */
int store_update(store *st, const store_ref *ref, const store_opts *o,
                 const cJSON *body, cJSON **out, store_err *err);

/* PATCH; apply patches create missing objects (201). */
int store_patch(store *st, const store_ref *ref, const store_opts *o,
                store_patch_type type, const cJSON *patch, cJSON **out,
                store_err *err);

/*
 * DELETE. opts_body is the DeleteOptions body (may be NULL); its
 * propagationPolicy, preconditions and dryRun are honoured, and
 * o->propagation overrides the policy.
 */
int store_delete(store *st, const store_ref *ref, const store_opts *o,
                 const cJSON *opts_body, cJSON **out, store_err *err);

/* DELETE on a collection: removes every match, answers their list. */
int store_delete_collection(store *st, const store_ref *ref,
                            const store_opts *o, const cJSON *opts_body,
                            cJSON **out, store_err *err);

/*
 * Renders items (an array of objects of ref's resource) as a Table.
 * include: 0 None, 1 Metadata, 2 Object. Fresh object, or NULL when the
 * resource is unknown.
 */
cJSON *store_table(store *st, const store_ref *ref, const cJSON *items,
                   int headers, int include, const char *rv,
                   const char *cont, long remaining);

/*
 * Opens a watch on ref's collection (ref->ns narrows it). With
 * resourceVersion unset or "0" the watch first yields an ADDED for every
 * matching object; with "N" it replays retained events after N. When N is
 * older than the history, the watch yields one ERROR event with a 410
 * Status (or, with o->expired_as_http, the open fails with 410).
 */
int store_watch_open(store *st, const store_ref *ref, const store_opts *o,
                     store_watch **out, store_err *err);

/*
 * Waits up to timeout_ms for the next event. Returns 1 with ev filled, 0
 * on timeout, -1 when the watch has ended (after an ERROR, on shutdown,
 * or when the resource type was removed).
 */
int store_watch_next(store_watch *w, int timeout_ms, store_event *ev);

/* A BOOKMARK event at the watch's current resourceVersion. */
void store_watch_bookmark(store_watch *w, store_event *ev);

/* Makes a blocked store_watch_next return -1; safe from any thread. */
void store_watch_cancel(store_watch *w);

void store_watch_close(store_watch *w);

/*
 * Discovery and OpenAPI documents (fresh objects). which: "api" (the
 * /api list), "apis" (the /apis list), "resources" for group/version,
 * "aggregated-api" / "aggregated-apis" for v2 discovery with apiVersion
 * aggregated_version, "openapi" for the /openapi/v3 root, "openapi-gv"
 * for one group/version document. NULL when group/version is unknown.
 */
cJSON *store_discovery(store *st, const char *which, const char *group,
                       const char *version, const char *agg_version);

/* Whether ref names a known, served resource (1) or not (0). */
int store_has_resource(store *st, const store_ref *ref);

#endif
