/*
 * ctl_phase: the decision at the heart of a reconcile, without I/O.
 *
 * The reconciler describes what it sees (ctl_observed: the Astro's phase
 * and clocks, each star's Deployment, pods and Service, the engine's
 * ConfigMap and pod, and what the engine said when asked) and
 * ctl_phase_decide() answers with the phase to be in, the children to
 * create, a reason and message for the transition, when to look again,
 * and at most one question to put to the engine first (CTL_NEED_*).
 * The reconciler answers the question, records the answer in the
 * observation and decides again; the decision never changes what it was
 * given.
 *
 * Phases follow docs/semantics.md section 5:
 *   (none) -> Initialized -> Waited -> Ready -> Success | Wrong
 * with DeployFailed from Initialized and EngineFailed from Waited.
 * Success, Wrong, DeployFailed and EngineFailed are final for a
 * generation; a spec change is seen by the reconciler, which then
 * decides from CTL_PHASE_NONE again.
 */
#ifndef ASTER_CTL_PHASE_H
#define ASTER_CTL_PHASE_H

#include <stddef.h>

typedef enum ctl_phase {
    CTL_PHASE_NONE = 0,
    CTL_PHASE_INITIALIZED,
    CTL_PHASE_WAITED,
    CTL_PHASE_READY,
    CTL_PHASE_SUCCESS,
    CTL_PHASE_WRONG,
    CTL_PHASE_DEPLOY_FAILED,
    CTL_PHASE_ENGINE_FAILED,
} ctl_phase;

#define CTL_PHASE_COUNT 8

/* "Initialized", ...; "" for CTL_PHASE_NONE. */
const char *ctl_phase_name(ctl_phase p);

/* Parses a status.phase; unknown or NULL text is CTL_PHASE_NONE. */
ctl_phase ctl_phase_parse(const char *s);

/* True for Success, Wrong, DeployFailed and EngineFailed. */
int ctl_phase_final(ctl_phase p);

/* True for DeployFailed, EngineFailed and Wrong (Warning events). */
int ctl_phase_failed(ctl_phase p);

/* One docker star as seen in the caches; strings borrowed. */
typedef struct ctl_star_obs {
    const char *name;
    int has_deploy;          /* a Deployment of this generation, ours */
    int available;           /* it has an available replica */
    const char *deploy_fail; /* "ProgressDeadlineExceeded" or NULL */
    const char *pod_fail;    /* a pod's container reason that will not
                                heal (ImagePullBackOff, ...) or NULL */
    const char *pod_fail_msg;
    int has_service;         /* a Service of this generation, ours */
    const char *cluster_ip;  /* its clusterIP, or NULL / "" */
    int foreign;             /* a child's name is taken by an object the
                                Astro does not control */
} ctl_star_obs;

/* What the engine said about readiness. */
typedef enum ctl_probe {
    CTL_PROBE_UNKNOWN = 0, /* not asked yet */
    CTL_PROBE_OK,
    CTL_PROBE_FAIL,
} ctl_probe;

/* What the engine said about the run. */
typedef enum ctl_run {
    CTL_RUN_UNKNOWN = 0, /* not asked yet */
    CTL_RUN_RUNNING,     /* 202 */
    CTL_RUN_DONE,        /* 200 with a result */
    CTL_RUN_LOST,        /* 404: the engine does not know the run */
    CTL_RUN_UNREACHABLE, /* no answer, or not one we understand */
} ctl_run;

typedef struct ctl_observed {
    ctl_phase phase;        /* status.phase of this generation */
    const char *invalid;    /* why the spec is unusable, or NULL */
    long now;               /* seconds since the epoch */
    long init_time;         /* Initialized began (0: unknown) */
    long waited_time;       /* Waited began (0: unknown) */
    long deploy_timeout_s;
    long engine_timeout_s;

    const ctl_star_obs *stars;
    size_t n_stars;

    int has_configmap;      /* ours, of this generation */
    int has_pod;            /* the engine pod, ours, of this generation */
    int engine_foreign;     /* the ConfigMap or pod name is taken */
    const char *pod_phase;  /* Pending, Running, Succeeded, Failed */
    const char *pod_ip;
    const char *pod_fail;   /* container waiting/terminated reason that
                               will not heal, or NULL */
    const char *pod_fail_msg;

    ctl_probe readyz;
    const char *run_id;     /* status.astermuleRef.runId or NULL */
    ctl_run run;
    int run_healthy;        /* CTL_RUN_DONE: status.health */
    const char *run_error;  /* CTL_RUN_DONE unhealthy: what failed */
    int engine_errors;      /* engine calls failed in a row */
    int run_polls;          /* polls that found the run still running */
} ctl_observed;

/* Actions the reconciler carries out (bits of ctl_decision.actions). */
#define CTL_ACT_CREATE_STARS 0x1u  /* missing Deployments and Services */
#define CTL_ACT_CREATE_ENGINE 0x2u /* missing ConfigMap and engine pod */

/* A question for the engine, asked before deciding again. */
typedef enum ctl_need {
    CTL_NEED_NOTHING = 0,
    CTL_NEED_READYZ,  /* GET /readyz: fill readyz */
    CTL_NEED_TRIGGER, /* POST /runs?async=1&key=...: fill run_id, run */
    CTL_NEED_POLL,    /* GET /runs/<run_id>: fill run (and the result) */
} ctl_need;

/* Engine calls failing in a row before the run counts as Wrong. */
#define CTL_ENGINE_ERRORS_MAX 3

/* How often a running run is polled: first after CTL_POLL_FIRST_MS,
 * doubling up to CTL_POLL_MS, since most runs end within milliseconds
 * and a long one should not be asked ten times a second. Also how often
 * a not yet ready engine is asked. */
#define CTL_POLL_FIRST_MS 10
#define CTL_POLL_MS 300
#define CTL_PROBE_RETRY_MS 500

typedef struct ctl_decision {
    ctl_phase phase;   /* the phase to be in after this pass */
    unsigned actions;  /* CTL_ACT_* */
    ctl_need need;
    const char *reason; /* CamelCase; set when phase changes */
    char message[512];  /* for the log, the condition and the Event */
    long requeue_ms;    /* look again after this long; 0: on events */
} ctl_decision;

/* Decides from obs (see above). Never fails. */
void ctl_phase_decide(const ctl_observed *obs, ctl_decision *d);

#endif
