/*
 * kube: a thread-safe REST client for the Kubernetes API (libcurl).
 *
 * Ownership, once for the module: objects passed in are borrowed; every
 * cJSON handed out through an out pointer is new and the caller frees it
 * with cJSON_Delete(). Out pointers may be NULL when the answer is not
 * wanted.
 *
 * Errors: every call returns 0 on a 2xx answer and -1 otherwise, with the
 * details in a caller-owned kube_err (may be NULL): the HTTP code (0 when
 * no answer came: connection, TLS, timeout, bad input) and the Status
 * reason and message from the server, or the local reason.
 *
 * Requests: each call takes an easy handle from a pool (connections are
 * kept alive per handle), so any thread may call any function at once.
 * GET, LIST, PUT and DELETE are retried on 429 and 5xx (and on
 * connection failure) with the server's Retry-After or exponential
 * backoff, up to kube_config.retries times; POST and PATCH only on 429
 * (the server did not act on them).
 * Bearer tokens are sent only over https, like kubectl; a 401 re-reads a
 * token file once and retries.
 */
#ifndef ASTER_KUBE_H
#define ASTER_KUBE_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "kcfg.h"

typedef struct kube kube;

typedef struct kube_err {
    int code;          /* HTTP status; 0: no answer */
    char reason[64];   /* Status reason ("Conflict", "Expired") or "" */
    char message[512]; /* Status message or the local reason */
} kube_err;

/*
 * What a request addresses. group "" is the core API (/api/v1). ns NULL
 * or "" addresses all namespaces (collections) or cluster-scoped
 * objects; name NULL addresses the collection; sub is a subresource
 * ("status") or NULL. The strings are borrowed for the call.
 */
typedef struct kube_ref {
    const char *group;
    const char *version;
    const char *resource; /* plural: "leases", "astros" */
    const char *ns;
    const char *name;
    const char *sub;
} kube_ref;

typedef struct kube_config {
    long timeout_ms;      /* whole request, not watches; 0: 30000 */
    long connect_ms;      /* 0: 10000 */
    int retries;          /* idempotent verbs; 0: 4, -1: none */
    long retry_base_ms;   /* first backoff; doubles; 0: 200 */
    long retry_max_ms;    /* cap, also on Retry-After; 0: 10000 */
    const char *user_agent; /* NULL: "astertower" */
} kube_config;

/*
 * Makes a client from cfg (borrowed: it must outlive the client) and
 * kc (copied; NULL for defaults). Returns 0, or -1 with err.
 */
int kube_new(kcfg *cfg, const kube_config *kc, kube **out, char *err,
             size_t errlen);

/* Frees the client; no call may be in flight. */
void kube_free(kube *k);

/* The configuration's namespace ("default" when unset); owned by k. */
const char *kube_namespace(const kube *k);

/* The configuration the client was made from. */
kcfg *kube_kcfg(kube *k);

/* True when e says "not found" (404), "conflict" (409), "gone" (410). */
int kube_err_not_found(const kube_err *e);
int kube_err_conflict(const kube_err *e);
int kube_err_expired(const kube_err *e);

/*
 * Builds the URL path of r into buf ("/apis/g/v/namespaces/ns/res/name/
 * sub"), escaping names. Returns 0, or -1 when r lacks version or
 * resource or buf is too small.
 */
int kube_path(const kube_ref *r, char *buf, size_t buflen);

/*
 * Any request: method, a path with query, an optional body and content
 * type (NULL: application/json). The answer, when JSON, goes to *out.
 * Retried per the rules above.
 */
int kube_request(kube *k, const char *method, const char *path,
                 const char *ctype, const char *body, cJSON **out,
                 kube_err *e);

int kube_get(kube *k, const kube_ref *r, cJSON **out, kube_err *e);

typedef struct kube_list_opts {
    const char *label_selector;
    const char *field_selector;
    const char *resource_version; /* NULL: most recent */
    int limit;                    /* page size; 0: 500, -1: no limit */
} kube_list_opts;

/*
 * Lists a collection, following "continue" until done. *out is one List
 * object whose "items" hold every page and whose
 * metadata.resourceVersion is the first page's. o may be NULL.
 */
int kube_list(kube *k, const kube_ref *r, const kube_list_opts *o,
              cJSON **out, kube_err *e);

/* POST to the collection r (r->name ignored). */
int kube_create(kube *k, const kube_ref *r, const cJSON *obj, cJSON **out,
                kube_err *e);

/*
 * PUT obj to r; r->name NULL takes metadata.name of obj. A stale
 * metadata.resourceVersion answers 409 (kube_err_conflict()).
 */
int kube_update(kube *k, const kube_ref *r, const cJSON *obj, cJSON **out,
                kube_err *e);

/* PUT obj to the status subresource of r (r->sub ignored). */
int kube_update_status(kube *k, const kube_ref *r, const cJSON *obj,
                       cJSON **out, kube_err *e);

typedef enum kube_patch_type {
    KUBE_PATCH_MERGE = 0, /* application/merge-patch+json */
    KUBE_PATCH_JSON,      /* application/json-patch+json */
    KUBE_PATCH_STRATEGIC, /* application/strategic-merge-patch+json */
    KUBE_PATCH_APPLY,     /* application/apply-patch+yaml (JSON body) */
} kube_patch_type;

/*
 * PATCH r (set r->sub = "status" for status). field_manager may be NULL
 * except for APPLY (NULL there: "astertower"); force applies to APPLY.
 */
int kube_patch(kube *k, const kube_ref *r, kube_patch_type type,
               const cJSON *patch, const char *field_manager, int force,
               cJSON **out, kube_err *e);

typedef struct kube_delete_opts {
    const char *propagation;      /* "Background", "Foreground",
                                     "Orphan" or NULL */
    const char *uid;              /* precondition, or NULL */
    const char *resource_version; /* precondition, or NULL */
} kube_delete_opts;

/* DELETE r; o may be NULL. *out is the object or a Status. */
int kube_delete(kube *k, const kube_ref *r, const kube_delete_opts *o,
                cJSON **out, kube_err *e);

/* Watch events. */
typedef enum kube_event_type {
    KUBE_ADDED = 0,
    KUBE_MODIFIED,
    KUBE_DELETED,
    KUBE_BOOKMARK,
    KUBE_ERROR,
} kube_event_type;

/* "ADDED" ... "ERROR". */
const char *kube_event_name(kube_event_type t);

/*
 * Called once per event with the event's object (borrowed: valid for
 * the call only; detach or duplicate to keep it). Return 0 to go on,
 * nonzero to end the watch. ERROR events are not passed: they end the
 * watch with their Status in kube_err.
 */
typedef int (*kube_watch_fn)(kube_event_type type, cJSON *obj, void *ud);

typedef struct kube_watch_opts {
    const char *label_selector;
    const char *field_selector;
    const char *resource_version; /* NULL or "0": initial ADDED first */
    int allow_bookmarks;
    int timeout_seconds;          /* server-side; 0: none */
    size_t max_line;              /* one event; 0: 16 MiB */
    const int *cancel;            /* nonzero (read atomically) ends the
                                     watch within about a second */
} kube_watch_opts;

/*
 * Watches the collection r (r->name NULL; use a field selector for one
 * object), calling fn from this thread until the stream ends. Returns 0
 * when the server ended the stream cleanly, fn asked to stop or cancel
 * was set; -1 otherwise. Expiry - an HTTP 410 or an ERROR event with
 * code 410 - gives -1 with e->code 410 (kube_err_expired()). Watches are
 * not retried.
 */
int kube_watch(kube *k, const kube_ref *r, const kube_watch_opts *o,
               kube_watch_fn fn, void *ud, kube_err *e);

/*
 * The watch-stream decoder kube_watch() uses, exposed for tests and the
 * fuzzer: feed it raw body bytes in any split; it calls fn once per
 * complete line (one JSON event), skipping blank lines.
 */
typedef struct kube_wdec kube_wdec;

/* max_line 0: 16 MiB. Returns NULL when out of memory. */
kube_wdec *kube_wdec_new(size_t max_line, kube_watch_fn fn, void *ud);

/*
 * Decodes what data completes. Returns 0 to go on, 1 when fn asked to
 * stop or an ERROR event arrived (its Status is in e), -1 on a bad
 * stream (line over max_line, not JSON, no type or object) with e->code
 * 0 and the reason. After a nonzero return, feeding again returns it.
 */
int kube_wdec_feed(kube_wdec *d, const char *data, size_t len, kube_err *e);

/* Bytes of an incomplete line held back. */
size_t kube_wdec_pending(const kube_wdec *d);

void kube_wdec_free(kube_wdec *d);

/* Helpers over object JSON; return borrowed strings or NULL. */
const char *kube_obj_name(const cJSON *obj);
const char *kube_obj_ns(const cJSON *obj);
const char *kube_obj_uid(const cJSON *obj);
const char *kube_obj_rv(const cJSON *obj);

/*
 * Compares resource versions as unsigned decimal numbers (what every
 * apiserver we talk to uses): <0, 0, >0. Unparsable ones compare as
 * strings.
 */
int kube_rv_cmp(const char *a, const char *b);

#endif
