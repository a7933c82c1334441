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

/* Per-Astro memory that need not survive a restart. */
typedef struct ctl_memo {
    char *key;
    int engine_errors; /* engine calls failed in a row */
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

/* Engine errors in a row for key: read, set. */
int ctl_memo_errors(ctl *c, const char *key);
void ctl_memo_set_errors(ctl *c, const char *key, int n);
void ctl_memo_drop(ctl *c, const char *key);

#endif
