/*
 * ctl_reconcile: the Astro controller.
 *
 * Informers watch Astros and, filtered by the managed-by label, the
 * Deployments, Services, Pods and ConfigMaps the controller makes; any
 * change enqueues the owning Astro (found through its controller
 * ownerReference, else its Astro label) in a rate-limited work queue.
 * Workers run one reconcile per key at a time: it reads the caches,
 * decides with ctl_phase, creates what is missing, talks to the engine,
 * writes the status and records an Event per transition. Deadlines and
 * run polling come back through delayed adds, never through sleeping.
 *
 * Idempotence: children have stable names and carry the Astro's
 * generation, so a restarted controller finds what it made; the run is
 * started with key "<uid>-<generation>" (the engine returns the same run
 * for a key it knows) and its id is kept in status.astermuleRef.runId;
 * the result is written with the final phase in one status write.
 */
#ifndef ASTER_CTL_RECONCILE_H
#define ASTER_CTL_RECONCILE_H

#include <stddef.h>

#include "kube.h"

#define CTL_DEFAULT_ENGINE_IMAGE "kasterism/astermule:latest"
#define CTL_DEFAULT_DEPLOY_TIMEOUT_S 300
#define CTL_DEFAULT_ENGINE_TIMEOUT_S 120
#define CTL_DEFAULT_MAX_RESULT (256 * 1024)

typedef struct ctl_config {
    const char *engine_image; /* NULL: CTL_DEFAULT_ENGINE_IMAGE */
    long deploy_timeout_s;    /* 0: CTL_DEFAULT_DEPLOY_TIMEOUT_S */
    long engine_timeout_s;    /* 0: CTL_DEFAULT_ENGINE_TIMEOUT_S */
    size_t max_result_bytes;  /* 0: CTL_DEFAULT_MAX_RESULT */
    long engine_call_ms;      /* one HTTP call to an engine; 0: 2000 */
    int engine_port;          /* 0: 8080 */
    int workers;              /* 0: 2 */
    const char *ns;           /* one namespace, or NULL for all */
} ctl_config;

typedef struct ctl ctl;

/*
 * Makes the controller over client k (borrowed; must outlive it); the
 * strings in cfg are copied. Returns 0, or -1 with err.
 */
int ctl_new(kube *k, const ctl_config *cfg, ctl **out, char *err,
            size_t errlen);

/* Starts the informers. Returns 0, or -1 with err. */
int ctl_start_informers(ctl *c, char *err, size_t errlen);

/* True once every informer has listed. */
int ctl_synced(ctl *c);

/* Waits for ctl_synced(); 1 when synced, 0 on timeout. */
int ctl_wait_synced(ctl *c, long timeout_ms);

/*
 * Starts the workers (once; later calls do nothing) and enqueues every
 * cached Astro. Returns 0, or -1 when threads cannot be made.
 */
int ctl_start_workers(ctl *c);

/* True after ctl_start_workers() succeeded. */
int ctl_working(ctl *c);

/* The Prometheus text of /metrics, malloc'd; NULL when out of memory. */
char *ctl_metrics_text(ctl *c);

/* Stops workers (finishing the keys in hand) and informers. */
void ctl_stop(ctl *c);

/* Stops if needed and frees. */
void ctl_free(ctl *c);

#endif
