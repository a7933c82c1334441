/*
 * kevent: records core v1 Events about objects, as kubectl describe and
 * kubectl get events show them (k8s-api.md section 8.2).
 *
 * A new (object, type, reason, message) creates an Event named
 * "<object name>.<16 hex>" in the object's namespace ("default" for
 * cluster-scoped objects) with count 1; the hex is a hash of the object's
 * uid, namespace and name, type, reason and message, so a series keeps
 * its name across retries and restarts. A repeat merge-patches count and
 * lastTimestamp of the Event it created before (and creates a new one if
 * that is gone).
 *
 * Transient failures (no answer, 429, 5xx) are retried with a doubling
 * pause, creates included: a create answered 409 AlreadyExists after an
 * attempt without a clear answer is taken as that attempt's Event, and
 * one answered 409 at once (an Event of the series made by an earlier
 * process) is read and its count bumped. Recording is synchronous and
 * thread-safe; failures are logged and returned, never fatal.
 */
#ifndef ASTER_KEVENT_H
#define ASTER_KEVENT_H

#include <cjson/cJSON.h>

#include "kube.h"

typedef struct kevent kevent;

typedef struct kevent_config {
    const char *component; /* source.component, reportingComponent */
    const char *instance;  /* reportingInstance; NULL: hostname */
    size_t max_cache;      /* remembered series; 0: 4096 */
    int retries;           /* after a transient failure; 0: 4, -1: none */
    long retry_base_ms;    /* first pause, doubling up to 2 s; 0: 100 */
} kevent_config;

#define KEVENT_NORMAL "Normal"
#define KEVENT_WARNING "Warning"

/* Over client k (borrowed). Returns NULL when out of memory. */
kevent *kevent_new(kube *k, const kevent_config *c);

/*
 * Records an Event about obj (borrowed; its apiVersion, kind, metadata
 * name, namespace, uid and resourceVersion are used). type is
 * KEVENT_NORMAL or KEVENT_WARNING. Returns 0, or -1 with e filled.
 */
int kevent_record(kevent *ev, const cJSON *obj, const char *type,
                  const char *reason, const char *message, kube_err *e);

/* printf-style message; same returns. */
int kevent_recordf(kevent *ev, const cJSON *obj, const char *type,
                   const char *reason, kube_err *e, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

void kevent_free(kevent *ev);

#endif
