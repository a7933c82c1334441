/*
 * cluster internals shared by cluster.c (threads, Deployments, Services),
 * cluster_pod.c (the kubelet) and cluster_proxy.c (the service proxy).
 *
 * Threads: three watch threads only raise the dirty flag; one reconcile
 * thread owns the Deployment and Pod state; the proxy has its own accept
 * thread and a thread per forwarded connection. c->mu guards the dirty
 * flag and the Pod list's membership and pids (read by cluster_pod_pid).
 */
#ifndef SIMAPI_CLUSTER_INT_H
#define SIMAPI_CLUSTER_INT_H

#include <pthread.h>

#include "cluster.h"

typedef struct cluster_proxy cluster_proxy;

typedef enum kp_state {
    KP_NEW,            /* seen, container not created yet */
    KP_PULL_ERR,       /* waiting: ErrImagePull */
    KP_PULL_BACKOFF,   /* waiting: ImagePullBackOff */
    KP_DELAY,          /* start delayed by the fault */
    KP_RUNNING,        /* process alive */
    KP_BACKOFF,        /* waiting: CrashLoopBackOff */
    KP_DONE,           /* terminated for good (restartPolicy) */
} kp_state;

/* The kubelet's view of one Pod. */
typedef struct kpod {
    char *ns, *name, *uid;
    char *cname, *image;
    char ip[16];
    char *dir;                 /* per-Pod work dir */
    kp_state state;
    pid_t pid;
    int ready;
    int restarts;
    int port;                  /* probed port */
    int exit_code;
    int backoff_ms;            /* current crash-loop back-off */
    int stopping;              /* SIGTERM sent, waiting to reap */
    int seen;                  /* mark for the sweep */
    long long due_ms;          /* next timed transition */
    long long probe_ms;        /* next readiness probe */
    long long kill_ms;         /* SIGKILL deadline while stopping */
    char sched_time[32], ready_time[32], started_at[32];
    char last_started[32], finished_at[32];
    struct kpod *next;
} kpod;

/* Progress bookkeeping of one Deployment. */
typedef struct dstate {
    char *uid;
    char hash[16];
    long long progress_ms;     /* last time it made progress */
    int last_ready, last_updated;
    int complete;
    char avail_status[8], avail_time[32];
    char prog_reason[32], prog_time[32], prog_update[32];
    int seen;
    struct dstate *next;
} dstate;

struct cluster {
    store *st;
    cluster_config cfg;
    char *bin_dir;
    char *work_dir;
    int own_work_dir;
    cluster_faults_fn faults;
    void *faults_ud;
    store_log_fn log;
    void *log_ud;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int dirty;
    int stopping;
    pthread_t watchers[3];
    int nwatchers;
    pthread_t reconciler;
    int reconciler_started;

    kpod *pods;
    dstate *deps;
    unsigned next_pod_ip;      /* host part within 127.1.0.0/16 */
    unsigned next_svc_ip;      /* host part within 127.2.0.0/16 */
    cluster_proxy *proxy;
};

void cluster_log(cluster *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

long long cluster_now_ms(void);

/* RFC3339 time of now into buf (32 bytes). */
void cluster_stamp(char *buf);

/* String member of o at a dotted path, or NULL. */
const char *cluster_str(const cJSON *o, const char *path);

/* Object member at a dotted path, or NULL. */
const cJSON *cluster_get(const cJSON *o, const char *path);

/*
 * Replaces the status of obj (a Deployment or Pod of collection coll)
 * with status (consumed) through the status subresource. Returns the
 * HTTP code; failures other than 404 are logged.
 */
int cluster_write_status(cluster *c, const store_ref *coll,
                         const cJSON *obj, cJSON *status);

/* Whether the Pod's Ready condition is True. */
int cluster_pod_ready(const cJSON *pod);

/*
 * The kubelet: one pass over pods (a list's items array). Starts,
 * probes, restarts and stops processes and writes Pod status.
 */
void cluster_kubelet_sync(cluster *c, const cJSON *pods);

/* Stops every process and frees the kubelet state (threads joined). */
void cluster_kubelet_stop_all(cluster *c);

/* The service proxy. */
cluster_proxy *cluster_proxy_new(cluster *c);
void cluster_proxy_free(cluster_proxy *px);

/* Starts a pass: every route not set again before _end is removed. */
void cluster_proxy_begin(cluster_proxy *px);

/*
 * Routes ip:port to the n endpoints eps ("a.b.c.d:port" strings). With
 * n == 0 nothing listens, so clients get "connection refused".
 */
void cluster_proxy_set(cluster_proxy *px, const char *key, const char *ip,
                       int port, char **eps, int n);
void cluster_proxy_end(cluster_proxy *px);

#endif
