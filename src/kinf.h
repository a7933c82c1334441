/*
 * kinf: an informer - a local cache of one resource kept current by
 * list then watch, with callbacks for every change.
 *
 * One thread per informer does, per k8s-api.md section 4.5: list (RV 0,
 * paged), then watch from the list's resourceVersion with bookmarks and
 * a server timeout. A cleanly ended stream is re-watched from the last
 * resourceVersion seen (events or bookmarks). An expired watch (HTTP 410
 * or ERROR 410) relists from the last synced resourceVersion without a
 * limit, and with none if that is expired too. Errors back off
 * exponentially (backoff_ms doubling up to backoff_max_ms, reset after a
 * watch that delivered something).
 *
 * Delivery guarantees: after a relist the differences from the cache
 * become on_add / on_update / on_delete calls, so nothing is missed
 * across a gap; an event whose object's resourceVersion is not newer
 * than the cached one is dropped, and a DELETED for an unknown object
 * too, so nothing is handled twice. Handlers run on the informer thread,
 * one at a time, in order; they must not call kinf_stop() or
 * kinf_free() on their own informer. Objects passed to handlers are
 * borrowed for the call (copy with cJSON_Duplicate to keep).
 *
 * The cache is indexed by namespace/name and by the uid of the
 * controller ownerReference (controller: true). Reads are thread-safe
 * (a read-write lock) and return fresh copies the caller frees.
 */
#ifndef ASTER_KINF_H
#define ASTER_KINF_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "kube.h"

typedef struct kinf kinf;

typedef struct kinf_handlers {
    void (*on_add)(const cJSON *obj, void *ud);
    void (*on_update)(const cJSON *old_obj, const cJSON *new_obj, void *ud);
    /* obj is the last known state (from the event or the cache). */
    void (*on_delete)(const cJSON *obj, void *ud);
    void *ud;
} kinf_handlers;

typedef struct kinf_config {
    const char *group;
    const char *version;
    const char *resource;       /* plural */
    const char *ns;             /* NULL or "": all namespaces */
    const char *label_selector; /* or NULL */
    const char *field_selector; /* or NULL */
    long backoff_ms;            /* 0: 500 */
    long backoff_max_ms;        /* 0: 30000 */
    int watch_timeout_s;        /* 0: random 300..599 like client-go */
    int page_limit;             /* first list; 0: 500 */
} kinf_config;

typedef struct kinf_stats {
    long lists;   /* list calls made, paging excluded */
    long watches; /* watch calls made */
    long expired; /* 410s seen */
    long errors;  /* failed lists and watches (not 410) */
    long events;  /* watch events applied to the cache */
    long dropped; /* stale or duplicate events skipped */
} kinf_stats;

/*
 * Makes an informer over the client k (borrowed; must outlive it). The
 * strings in c are copied. h may be NULL (cache only). Returns 0, or -1
 * with err. Nothing runs until kinf_start().
 */
int kinf_new(kube *k, const kinf_config *c, const kinf_handlers *h,
             kinf **out, char *err, size_t errlen);

/* Starts the informer thread. Returns 0, or -1 (thread not created or
   already started). */
int kinf_start(kinf *inf);

/* True once the first list has been put in the cache. */
int kinf_synced(kinf *inf);

/* Waits for kinf_synced(); timeout_ms < 0 waits forever. Returns 1 when
   synced, 0 on timeout or stop. */
int kinf_wait_synced(kinf *inf, long timeout_ms);

/* A copy of the cached object, or NULL. ns NULL for cluster scope. */
cJSON *kinf_get(kinf *inf, const char *ns, const char *name);

/* A cJSON array copying the cached objects of ns (NULL: all). */
cJSON *kinf_list(kinf *inf, const char *ns);

/* A cJSON array copying the objects whose controller owner has uid. */
cJSON *kinf_by_owner(kinf *inf, const char *uid);

size_t kinf_count(kinf *inf);

/* The last resourceVersion seen into buf ("" before the first list). */
void kinf_last_rv(kinf *inf, char *buf, size_t buflen);

void kinf_get_stats(kinf *inf, kinf_stats *out);

/* Stops the thread (ends its watch within about a second) and joins it.
   No handler runs after it returns. Safe to call twice. */
void kinf_stop(kinf *inf);

/* Stops if running, then frees the cache. */
void kinf_free(kinf *inf);

#endif
