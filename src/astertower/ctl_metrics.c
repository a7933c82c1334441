/*
 * ctl_metrics: counters and their exposition (see ctl_metrics.h).
 */
#define _GNU_SOURCE
#include "ctl_metrics.h"

#include <stdio.h>
#include <stdlib.h>

static const double bounds[CTL_METRICS_BUCKETS] = {
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};

void ctl_metrics_init(ctl_metrics *m)
{
    *m = (ctl_metrics){0};
    pthread_mutex_init(&m->lock, NULL);
}

void ctl_metrics_destroy(ctl_metrics *m)
{
    pthread_mutex_destroy(&m->lock);
}

void ctl_metrics_observe(ctl_metrics *m, double seconds, int failed)
{
    pthread_mutex_lock(&m->lock);
    m->reconciles++;
    if (failed)
        m->errors++;
    m->seconds_sum += seconds;
    for (int k = 0; k < CTL_METRICS_BUCKETS; k++) {
        if (seconds <= bounds[k]) {
            m->buckets[k]++;
            break;
        }
    }
    pthread_mutex_unlock(&m->lock);
}

void ctl_metrics_transition(ctl_metrics *m, ctl_phase p)
{
    if ((int)p < 0 || p >= CTL_PHASE_COUNT)
        return;
    pthread_mutex_lock(&m->lock);
    m->transitions[p]++;
    pthread_mutex_unlock(&m->lock);
}

static const char *shown(int p)
{
    return p == CTL_PHASE_NONE ? "Pending" : ctl_phase_name((ctl_phase)p);
}

/* Writes the histogram; cumulative counts as Prometheus wants them. */
static void put_histogram(FILE *f, const ctl_metrics *m)
{
    unsigned long acc = 0;

    fprintf(f, "# HELP astertower_reconcile_duration_seconds Time one "
               "reconcile took.\n"
               "# TYPE astertower_reconcile_duration_seconds histogram\n");
    for (int k = 0; k < CTL_METRICS_BUCKETS; k++) {
        acc += m->buckets[k];
        fprintf(f,
                "astertower_reconcile_duration_seconds_bucket{le=\"%g\"} "
                "%lu\n",
                bounds[k], acc);
    }
    fprintf(f,
            "astertower_reconcile_duration_seconds_bucket{le=\"+Inf\"} %lu\n"
            "astertower_reconcile_duration_seconds_sum %.6f\n"
            "astertower_reconcile_duration_seconds_count %lu\n",
            m->reconciles, m->seconds_sum, m->reconciles);
}

char *ctl_metrics_render(ctl_metrics *m, size_t queue_depth,
                         const long per_phase[CTL_PHASE_COUNT])
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (f == NULL)
        return NULL;
    pthread_mutex_lock(&m->lock);
    fprintf(f,
            "# HELP astertower_reconciles_total Reconciles run.\n"
            "# TYPE astertower_reconciles_total counter\n"
            "astertower_reconciles_total %lu\n"
            "# HELP astertower_reconcile_errors_total Reconciles that "
            "failed and were retried.\n"
            "# TYPE astertower_reconcile_errors_total counter\n"
            "astertower_reconcile_errors_total %lu\n",
            m->reconciles, m->errors);
    put_histogram(f, m);
    fprintf(f, "# HELP astertower_transitions_total Phase changes, by the "
               "phase entered.\n"
               "# TYPE astertower_transitions_total counter\n");
    for (int p = 1; p < CTL_PHASE_COUNT; p++)
        fprintf(f, "astertower_transitions_total{phase=\"%s\"} %lu\n",
                shown(p), m->transitions[p]);
    pthread_mutex_unlock(&m->lock);

    fprintf(f,
            "# HELP astertower_queue_depth Astros waiting for a worker.\n"
            "# TYPE astertower_queue_depth gauge\n"
            "astertower_queue_depth %zu\n"
            "# HELP astertower_astros Astros known, by phase.\n"
            "# TYPE astertower_astros gauge\n",
            queue_depth);
    for (int p = 0; p < CTL_PHASE_COUNT; p++)
        fprintf(f, "astertower_astros{phase=\"%s\"} %ld\n", shown(p),
                per_phase ? per_phase[p] : 0);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}
