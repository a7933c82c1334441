/*
 * ctl_metrics: the controller's counters and their Prometheus text.
 *
 * Workers call ctl_metrics_observe() once per reconcile and
 * ctl_metrics_transition() once per phase change; the HTTP endpoint
 * renders everything with the gauges it is handed (queue depth, Astros
 * per phase). All functions are thread-safe.
 */
#ifndef ASTER_CTL_METRICS_H
#define ASTER_CTL_METRICS_H

#include <pthread.h>
#include <stddef.h>

#include "ctl_phase.h"

/* Upper bounds (seconds) of the reconcile duration histogram. */
#define CTL_METRICS_BUCKETS 10

typedef struct ctl_metrics {
    pthread_mutex_t lock;
    unsigned long reconciles;
    unsigned long errors;
    unsigned long buckets[CTL_METRICS_BUCKETS]; /* not cumulative */
    double seconds_sum;
    unsigned long transitions[CTL_PHASE_COUNT]; /* by phase entered */
} ctl_metrics;

void ctl_metrics_init(ctl_metrics *m);
void ctl_metrics_destroy(ctl_metrics *m);

/* Counts a reconcile that took seconds; failed when it will be retried. */
void ctl_metrics_observe(ctl_metrics *m, double seconds, int failed);

/* Counts a transition into phase p. */
void ctl_metrics_transition(ctl_metrics *m, ctl_phase p);

/*
 * Renders the Prometheus text exposition (version 0.0.4):
 * astertower_reconciles_total, astertower_reconcile_errors_total,
 * astertower_reconcile_duration_seconds (histogram),
 * astertower_queue_depth, astertower_astros{phase} (per_phase indexed by
 * ctl_phase; CTL_PHASE_NONE is shown as "Pending"),
 * astertower_transitions_total{phase}. Returns a malloc'd string, or
 * NULL when memory ran out.
 */
char *ctl_metrics_render(ctl_metrics *m, size_t queue_depth,
                         const long per_phase[CTL_PHASE_COUNT]);

#endif
