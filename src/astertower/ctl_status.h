/*
 * ctl_status: the Astro's status document, built without I/O.
 *
 * Conditions follow metav1.Condition: type, status ("True", "False",
 * "Unknown"), reason, message, lastTransitionTime (whole-second RFC 3339)
 * and observedGeneration; lastTransitionTime moves only when status
 * flips. Each phase sets the conditions of ctl_status_enter():
 *
 *   Initialized   Initialized=True,  Deployed=False (Deploying)
 *   Waited        Deployed=True,     EngineReady=False (EngineStarting)
 *   Ready         EngineReady=True,  Succeeded=Unknown (Running)
 *   Success       Succeeded=True
 *   Wrong         Succeeded=False    (reason: RunFailed, EngineUnreachable)
 *   DeployFailed  Deployed=False     (reason: why)
 *   EngineFailed  EngineReady=False  (reason: why)
 *
 * The clocks the deadlines run on are read back from these conditions,
 * so a restarted controller keeps them.
 *
 * The result of a run is stored whole up to a size limit; past it, a
 * summary (status.health, id, failed, error, nodes, durationMs; data
 * dropped) with resultTruncated true and resultSize the full size.
 *
 * Functions taking a cJSON modify it in place and return 0, or -1 when
 * memory ran out (the document is then still valid, maybe incomplete).
 */
#ifndef ASTER_CTL_STATUS_H
#define ASTER_CTL_STATUS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "ctl_phase.h"

/* Writes t (seconds since the epoch) as "2025-01-01T10:00:00Z". */
void ctl_time_format(long t, char buf[32]);

/* Parses a whole-second or fractional RFC 3339 UTC time; 0 or -1. */
int ctl_time_parse(const char *s, long *out);

/* The condition of type in status, or NULL; borrowed. */
cJSON *ctl_cond_find(const cJSON *status, const char *type);

/*
 * Sets the condition type to (st, reason, message) at time now for
 * generation gen, keeping lastTransitionTime when st is unchanged.
 */
int ctl_cond_set(cJSON *status, const char *type, const char *st,
                 const char *reason, const char *message, long now, long gen);

/*
 * lastTransitionTime of condition type when its status is st, else 0.
 */
long ctl_cond_since(const cJSON *status, const char *type, const char *st);

/* Sets status.phase to p and the conditions of the table above. */
int ctl_status_enter(cJSON *status, ctl_phase p, const char *reason,
                     const char *message, long now, long gen);

/* Replaces (or adds) key in obj with item (consumed, also on failure). */
int ctl_json_put(cJSON *obj, const char *key, cJSON *item);

/*
 * Stores the run result doc (len bytes of JSON text) into status as
 * result, resultTruncated and resultSize, per the rule above with limit
 * max bytes. Returns 0, or -1 when doc is not a JSON object or memory
 * ran out.
 */
int ctl_status_set_result(cJSON *status, const char *doc, size_t len,
                          size_t max);

/*
 * Describes an unhealthy result for the Wrong message: its "error" text,
 * else the failed nodes, into buf.
 */
void ctl_result_why(const cJSON *result, char *buf, size_t len);

/* True when the result says status.health is true. */
int ctl_result_healthy(const cJSON *result);

#endif
