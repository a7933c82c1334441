/*
 * klease: leader election with a coordination.k8s.io/v1 Lease, as
 * client-go's leaderelection does it (k8s-api.md section 8.1).
 *
 * A thread tries every retry_period_ms to acquire or renew the Lease:
 * absent, it is created with us as holder; held by another identity, we
 * stay a follower until the record has not changed for
 * lease_duration_ms of *local* time (clock skew does not matter), then
 * take over with a PUT carrying the read resourceVersion (a 409 means
 * another candidate won) and count leaseTransitions up. The leader
 * renews renewTime by the same PUT; if it cannot renew within
 * renew_deadline_ms it steps down. acquireTime and renewTime are
 * MicroTime (6 fractional digits).
 *
 * Callbacks run on the election thread: on_started_leading when we
 * become leader, on_stopped_leading when we stop (lost, deadline passed
 * or klease_stop()), on_new_leader when the observed holder changes
 * (identity borrowed for the call, "" when released).
 */
#ifndef ASTER_KLEASE_H
#define ASTER_KLEASE_H

#include <stddef.h>

#include "kube.h"

typedef struct klease klease;

typedef struct klease_config {
    const char *ns;            /* Lease namespace; NULL: client's */
    const char *name;          /* Lease name */
    const char *identity;      /* NULL: "<hostname>_<random hex>" */
    long lease_duration_ms;    /* 0: 15000 */
    long renew_deadline_ms;    /* 0: 10000 */
    long retry_period_ms;      /* 0: 2000 */
    int no_release;            /* klease_stop() leaves the Lease as it
                                  is instead of releasing it (tests) */
    void (*on_started_leading)(void *ud);
    void (*on_stopped_leading)(void *ud);
    void (*on_new_leader)(const char *identity, void *ud);
    void *ud;
} klease_config;

/*
 * Starts campaigning over client k (borrowed). Strings in c are copied.
 * Returns 0, or -1 with err (bad config, thread not created).
 */
int klease_start(kube *k, const klease_config *c, klease **out, char *err,
                 size_t errlen);

/* True while we hold the Lease. */
int klease_is_leader(klease *l);

/* Our identity; owned by l. */
const char *klease_identity(const klease *l);

/* The holder last observed into buf ("" when none). */
void klease_holder(klease *l, char *buf, size_t buflen);

/*
 * Stops campaigning and joins the thread. A leader releases the Lease
 * (holderIdentity "", leaseDurationSeconds 1) unless no_release, and
 * on_stopped_leading runs. Safe to call twice.
 */
void klease_stop(klease *l);

/* Stops if needed and frees. */
void klease_free(klease *l);

#endif
