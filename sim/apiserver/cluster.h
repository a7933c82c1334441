/*
 * cluster: the simulated cluster inside the fake apiserver.
 *
 * Controller threads that read the store (watches wake them, lists give
 * the state) and write through the store API, so every change they make
 * is validated, versioned and announced exactly like an HTTP request:
 *
 * - a Deployment controller creates and deletes Pods owned by each
 *   Deployment (no ReplicaSet layer) and reports its status;
 * - a kubelet runs the first container of each Pod as a local process
 *   chosen by an image table, on a loopback address of its own, probes
 *   it, restarts it with back-off and writes the Pod status;
 * - a service proxy gives each Service a loopback cluster IP and forwards
 *   clusterIP:port to a Ready Pod behind it, round robin.
 *
 * Every process it starts is stopped when its Pod goes away and when the
 * cluster stops. Logging goes through the hook only.
 */
#ifndef SIMAPI_CLUSTER_H
#define SIMAPI_CLUSTER_H

#include <stddef.h>
#include <sys/types.h>

#include "store.h"

typedef struct cluster cluster;

/* How an image's container becomes a command line. */
typedef enum cluster_image_kind {
    /* program --address <podIP> --port <port> --name <pod>; the port is
       the first containerPort, else 80 */
    CLUSTER_IMAGE_TEST,
    /* program <container args> --address <podIP> */
    CLUSTER_IMAGE_ENGINE,
    /* program <container args> */
    CLUSTER_IMAGE_ARGS,
} cluster_image_kind;

/*
 * One row of the image table. pattern is an fnmatch(3) glob matched
 * against the image name without a leading "docker.io/"; program is a
 * file name in bin_dir, or an absolute path.
 */
typedef struct cluster_image {
    const char *pattern;
    const char *program;
    cluster_image_kind kind;
} cluster_image;

/* Faults read by the kubelet; patterns are fnmatch(3) globs, "" none. */
typedef struct cluster_faults {
    int start_delay_ms;        /* a new Pod's container starts this late */
    char pull_fail[128];       /* matching images fail to pull */
    char crash_loop[128];      /* matching images exit 1 at once */
} cluster_faults;

typedef void (*cluster_faults_fn)(void *ud, cluster_faults *out);

/* Zero means the default for every number. */
typedef struct cluster_config {
    int enabled;               /* read by apisrv_start only */
    const char *bin_dir;       /* where programs are; NULL: the
                                  directory of /proc/self/exe */
    const char *work_dir;      /* per-Pod logs and volumes; NULL: a fresh
                                  temp dir, removed on stop */
    const cluster_image *images; /* checked before the built-in table */
    int nimages;
    int tick_ms;               /* reconcile and probe period; 50 */
    int backoff_ms;            /* first crash-loop back-off; 10000 */
    int backoff_max_ms;        /* back-off ceiling; 300000 */
    int pull_backoff_ms;       /* ErrImagePull -> ImagePullBackOff; 1000 */
    int grace_max_ms;          /* SIGTERM -> SIGKILL ceiling; 2000 */
} cluster_config;

/*
 * Starts the controller threads on st (borrowed; must outlive the
 * cluster). faults may be NULL. Returns 0 and the handle, or -1 with the
 * failed step in err.
 */
int cluster_start(store *st, const cluster_config *cfg,
                  cluster_faults_fn faults, void *faults_ud,
                  store_log_fn log, void *log_ud, cluster **out,
                  char *err, size_t errlen);

/*
 * Stops the threads and the proxies, then every process the cluster
 * started (SIGTERM, SIGKILL after the grace period), reaps them and
 * removes the work dir if the cluster made it. NULL is fine.
 */
void cluster_stop(cluster *c);

/* The process running the Pod's container, or 0 when there is none. */
pid_t cluster_pod_pid(cluster *c, const char *ns, const char *name);

/* The container log of a Pod, as a fresh path (it may not exist yet). */
char *cluster_pod_log_path(cluster *c, const char *ns, const char *name);

#endif
