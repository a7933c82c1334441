/*
 * ctl_int: what the controller's files share (not a public contract).
 */
#ifndef ASTER_CTL_INT_H
#define ASTER_CTL_INT_H

#include <pthread.h>

#include "ctl_metrics.h"
#include "ctl_phase.h"
#include "ctl_reconcile.h"
#include "kevent.h"
#include "kinf.h"
#include "kq.h"

#define CTL_LOG "astertower"

/* Per-Astro counters that need not survive a restart. */
typedef enum ctl_memo_field {
    CTL_MEMO_ERRORS = 0, /* engine calls failed in a row */
    CTL_MEMO_POLLS,      /* polls that found the run still running */
    CTL_MEMO_FIELDS,
} ctl_memo_field;

typedef struct ctl_memo {
    char *key;
    int v[CTL_MEMO_FIELDS];
    struct ctl_memo *next;
} ctl_memo;

struct ctl {
    kube *k;
    ctl_config cfg;
    char *engine_image;
    char *ns;

    kinf *astros;
    kinf *deploys;
    kinf *services;
    kinf *pods;
    kinf *configmaps;

    kq *q;
    kevent *ev;
    ctl_metrics metrics;
    int working;

    pthread_mutex_t memo_lock;
    ctl_memo *memos;
};

/* The resources, as kube_ref templates (ns and name left NULL). */
extern const kube_ref ctl_ref_astros;
extern const kube_ref ctl_ref_deploys;
extern const kube_ref ctl_ref_services;
extern const kube_ref ctl_ref_pods;
extern const kube_ref ctl_ref_configmaps;

/* One pass over the Astro ns/name. 0 done, nonzero: retry later. */
int ctl_reconcile_key(ctl *c, const char *key);

/* A counter of key's memo: read (0 when none), set, forget them all. */
int ctl_memo_get(ctl *c, const char *key, ctl_memo_field f);
void ctl_memo_set(ctl *c, const char *key, ctl_memo_field f, int n);
void ctl_memo_drop(ctl *c, const char *key);

#endif
