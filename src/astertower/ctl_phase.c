/*
 * ctl_phase: the phase decision (see ctl_phase.h). One function per
 * phase that can move; each either moves on, fails, asks the engine a
 * question, or says when to look again.
 */
#include "ctl_phase.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const phase_names[CTL_PHASE_COUNT] = {
    "",      "Initialized", "Waited",       "Ready",
    "Success", "Wrong",     "DeployFailed", "EngineFailed",
};

const char *ctl_phase_name(ctl_phase p)
{
    if ((int)p < 0 || p >= CTL_PHASE_COUNT)
        return "";
    return phase_names[p];
}

ctl_phase ctl_phase_parse(const char *s)
{
    if (s == NULL)
        return CTL_PHASE_NONE;
    for (int k = 1; k < CTL_PHASE_COUNT; k++) {
        if (strcmp(s, phase_names[k]) == 0)
            return (ctl_phase)k;
    }
    return CTL_PHASE_NONE;
}

int ctl_phase_final(ctl_phase p)
{
    return p == CTL_PHASE_SUCCESS || p == CTL_PHASE_WRONG ||
           p == CTL_PHASE_DEPLOY_FAILED || p == CTL_PHASE_ENGINE_FAILED;
}

int ctl_phase_failed(ctl_phase p)
{
    return p == CTL_PHASE_WRONG || p == CTL_PHASE_DEPLOY_FAILED ||
           p == CTL_PHASE_ENGINE_FAILED;
}

static void move(ctl_decision *d, ctl_phase to, const char *reason,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Sets the next phase with its reason and message; a final phase
   creates nothing more. */
static void move(ctl_decision *d, ctl_phase to, const char *reason,
                 const char *fmt, ...)
{
    va_list ap;

    d->phase = to;
    d->reason = reason;
    if (ctl_phase_final(to)) {
        d->actions = 0;
        d->requeue_ms = 0;
    }
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof(d->message), fmt, ap);
    va_end(ap);
}

/* Milliseconds until started + timeout, at least 1 s from now. */
static long until_deadline(const ctl_observed *o, long started, long timeout)
{
    long left = started + timeout - o->now;

    return (left > 0 ? left : 1) * 1000;
}

static void decide_new(const ctl_observed *o, ctl_decision *d)
{
    d->actions |= CTL_ACT_CREATE_STARS;
    move(d, CTL_PHASE_INITIALIZED, "ChildrenCreated",
         "created Deployments and Services for %zu stars", o->n_stars);
    d->requeue_ms = o->deploy_timeout_s * 1000;
}

/* The first star that cannot become available, as a DeployFailed. */
static int star_failed(const ctl_observed *o, ctl_decision *d)
{
    for (size_t k = 0; k < o->n_stars; k++) {
        const ctl_star_obs *s = &o->stars[k];

        if (s->foreign) {
            move(d, CTL_PHASE_DEPLOY_FAILED, "NameConflict",
                 "star %s: a Deployment or Service of its name belongs "
                 "to something else", s->name);
            return 1;
        }
        if (s->pod_fail) {
            move(d, CTL_PHASE_DEPLOY_FAILED, s->pod_fail,
                 "star %s: container %s%s%s", s->name, s->pod_fail,
                 s->pod_fail_msg ? ": " : "",
                 s->pod_fail_msg ? s->pod_fail_msg : "");
            return 1;
        }
        if (s->deploy_fail) {
            move(d, CTL_PHASE_DEPLOY_FAILED, s->deploy_fail,
                 "star %s: Deployment reports %s", s->name, s->deploy_fail);
            return 1;
        }
    }
    return 0;
}

/* Names of the stars not yet available, for the timeout message. */
static void list_waiting(const ctl_observed *o, char *buf, size_t len)
{
    size_t used = 0;

    buf[0] = '\0';
    for (size_t k = 0; k < o->n_stars && used + 1 < len; k++) {
        const ctl_star_obs *s = &o->stars[k];
        int n;

        if (s->available && s->cluster_ip && *s->cluster_ip)
            continue;
        n = snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
                     s->name);
        if (n < 0)
            break;
        used += (size_t)n < len - used ? (size_t)n : len - used - 1;
    }
}

static void decide_initialized(const ctl_observed *o, ctl_decision *d)
{
    size_t ready = 0, complete = 0;
    char waiting[256];

    if (star_failed(o, d))
        return;
    for (size_t k = 0; k < o->n_stars; k++) {
        const ctl_star_obs *s = &o->stars[k];

        if (s->has_deploy && s->has_service)
            complete++;
        if (s->available && s->cluster_ip && *s->cluster_ip)
            ready++;
    }
    if (complete < o->n_stars)
        d->actions |= CTL_ACT_CREATE_STARS;

    if (ready == o->n_stars && complete == o->n_stars) {
        d->actions |= CTL_ACT_CREATE_ENGINE;
        move(d, CTL_PHASE_WAITED, "StarsAvailable",
             "%zu stars available, starting the engine", o->n_stars);
        d->requeue_ms = o->engine_timeout_s * 1000;
        return;
    }
    if (o->init_time > 0 && o->now - o->init_time >= o->deploy_timeout_s) {
        list_waiting(o, waiting, sizeof(waiting));
        move(d, CTL_PHASE_DEPLOY_FAILED, "DeployTimeout",
             "%zu of %zu stars available after %lds; not available: %s",
             ready, o->n_stars, o->deploy_timeout_s, waiting);
        return;
    }
    d->requeue_ms = until_deadline(o, o->init_time ? o->init_time : o->now,
                                   o->deploy_timeout_s);
}

/* The engine pod failing for good, as an EngineFailed. */
static int engine_failed(const ctl_observed *o, ctl_decision *d)
{
    if (o->engine_foreign) {
        move(d, CTL_PHASE_ENGINE_FAILED, "NameConflict",
             "the engine's ConfigMap or pod name belongs to something "
             "else");
        return 1;
    }
    if (o->has_pod && o->pod_fail) {
        move(d, CTL_PHASE_ENGINE_FAILED, o->pod_fail,
             "engine pod: container %s%s%s", o->pod_fail,
             o->pod_fail_msg ? ": " : "",
             o->pod_fail_msg ? o->pod_fail_msg : "");
        return 1;
    }
    if (o->has_pod && o->pod_phase &&
        (strcmp(o->pod_phase, "Failed") == 0 ||
         strcmp(o->pod_phase, "Succeeded") == 0)) {
        move(d, CTL_PHASE_ENGINE_FAILED, "EngineExited",
             "engine pod ended in phase %s", o->pod_phase);
        return 1;
    }
    return 0;
}

static int pod_running(const ctl_observed *o)
{
    return o->has_pod && o->pod_phase &&
           strcmp(o->pod_phase, "Running") == 0 && o->pod_ip && *o->pod_ip;
}

static void decide_waited(const ctl_observed *o, ctl_decision *d)
{
    if (engine_failed(o, d))
        return;
    if (!o->has_configmap || !o->has_pod)
        d->actions |= CTL_ACT_CREATE_ENGINE;

    if (pod_running(o) && o->readyz == CTL_PROBE_UNKNOWN) {
        d->need = CTL_NEED_READYZ;
        return;
    }
    if (pod_running(o) && o->readyz == CTL_PROBE_OK) {
        move(d, CTL_PHASE_READY, "EngineReady", "engine pod at %s",
             o->pod_ip);
        d->requeue_ms = CTL_POLL_MS;
        return;
    }
    if (o->waited_time > 0 && o->now - o->waited_time >= o->engine_timeout_s) {
        move(d, CTL_PHASE_ENGINE_FAILED, "EngineTimeout",
             "engine pod not running and ready after %lds (phase %s)",
             o->engine_timeout_s, o->pod_phase ? o->pod_phase : "none");
        return;
    }
    d->requeue_ms = until_deadline(o, o->waited_time ? o->waited_time : o->now,
                                   o->engine_timeout_s);
    if (pod_running(o) && d->requeue_ms > CTL_PROBE_RETRY_MS)
        d->requeue_ms = CTL_PROBE_RETRY_MS;
}

/* The delay before poll number polls + 1 of a running run. */
static long poll_delay(int polls)
{
    long ms = CTL_POLL_FIRST_MS;

    for (int k = 1; k < polls && ms < CTL_POLL_MS; k++)
        ms *= 2;
    return ms < CTL_POLL_MS ? ms : CTL_POLL_MS;
}

static void decide_ready(const ctl_observed *o, ctl_decision *d)
{
    char why[sizeof(d->message)];

    if (!o->has_pod) {
        move(d, CTL_PHASE_WRONG, "EngineUnreachable",
             "the engine pod is gone before the run ended");
        return;
    }
    if (engine_failed(o, d)) {
        memcpy(why, d->message, sizeof(why));
        move(d, CTL_PHASE_WRONG, "EngineUnreachable",
             "the engine failed before the run ended: %s", why);
        return;
    }
    if (o->run == CTL_RUN_UNREACHABLE) {
        if (o->engine_errors >= CTL_ENGINE_ERRORS_MAX) {
            move(d, CTL_PHASE_WRONG, "EngineUnreachable",
                 "the engine at %s did not answer %d times",
                 o->pod_ip ? o->pod_ip : "?", o->engine_errors);
            return;
        }
        d->requeue_ms = CTL_PROBE_RETRY_MS;
        return;
    }
    if (o->run_id == NULL || !*o->run_id || o->run == CTL_RUN_LOST) {
        d->need = CTL_NEED_TRIGGER;
        return;
    }
    switch (o->run) {
    case CTL_RUN_UNKNOWN:
        d->need = CTL_NEED_POLL;
        return;
    case CTL_RUN_RUNNING:
        d->requeue_ms = poll_delay(o->run_polls);
        return;
    case CTL_RUN_DONE:
        if (o->run_healthy)
            move(d, CTL_PHASE_SUCCESS, "RunSucceeded",
                 "run %s healthy", o->run_id);
        else
            move(d, CTL_PHASE_WRONG, "RunFailed", "run %s unhealthy: %s",
                 o->run_id, o->run_error ? o->run_error : "no reason");
        return;
    default:
        d->requeue_ms = CTL_POLL_MS;
        return;
    }
}

void ctl_phase_decide(const ctl_observed *o, ctl_decision *d)
{
    memset(d, 0, sizeof(*d));
    d->phase = o->phase;

    if (ctl_phase_final(o->phase))
        return;
    if (o->invalid) {
        move(d, CTL_PHASE_DEPLOY_FAILED, "InvalidSpec", "%s", o->invalid);
        return;
    }
    switch (o->phase) {
    case CTL_PHASE_NONE:
        decide_new(o, d);
        break;
    case CTL_PHASE_INITIALIZED:
        decide_initialized(o, d);
        break;
    case CTL_PHASE_WAITED:
        decide_waited(o, d);
        break;
    case CTL_PHASE_READY:
        decide_ready(o, d);
        break;
    default:
        break;
    }
}
