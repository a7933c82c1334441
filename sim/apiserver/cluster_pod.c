/*
 * cluster_pod: the kubelet of the simulated cluster.
 *
 * Each Pod gets a loopback address from 127.1.0.0/16 and its first
 * container runs as a local process picked by the image table. The
 * process binds the Pod address, logs to <work>/<ns>_<pod>/<ctr>.log and
 * lives in a process group of its own so that stopping the Pod stops
 * everything it started. Only the reconcile thread calls into this file.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster_int.h"

#define PROBE_MS 100
#define MAX_MOUNTS 16

/* A kubelet keeps a pod's hostname a DNS label: 63 characters at most. */
#define HOSTNAME_MAX 63

extern char **environ;

static const store_ref pods_ref = {"", "v1", "pods", NULL, NULL, NULL};

static const cluster_image default_images[] = {
    {"kasterism/test_*", "test-service", CLUSTER_IMAGE_TEST},
    {"kasterism/astermule*", "astermule", CLUSTER_IMAGE_ENGINE},
    {"astertower/astermule*", "astermule", CLUSTER_IMAGE_ENGINE},
};

typedef struct argvec {
    char **v;
    int n, cap;
} argvec;

typedef struct mount {
    const char *path;          /* mountPath in the container */
    char host[PATH_MAX];       /* where the files were written */
} mount;

static void av_add(argvec *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = realloc(a->v, (size_t)a->cap * sizeof(*a->v));
    }
    a->v[a->n++] = strdup(s);
    a->v[a->n] = NULL;
}

static void av_free(argvec *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
}

static void get_faults(cluster *c, cluster_faults *f)
{
    memset(f, 0, sizeof(*f));
    if (c->faults)
        c->faults(c->faults_ud, f);
}

static int glob_match(const char *pattern, const char *image)
{
    return pattern && *pattern && fnmatch(pattern, image, 0) == 0;
}

static const char *short_image(const char *image)
{
    if (strncmp(image, "docker.io/", 10) == 0)
        return image + 10;
    return image;
}

/* The table row for image, or NULL when it cannot be "pulled". */
static const cluster_image *find_image(cluster *c, const char *image,
                                       const cluster_faults *f)
{
    const char *img = short_image(image);
    size_t nd = sizeof(default_images) / sizeof(default_images[0]);

    if (glob_match(f->pull_fail, img) || glob_match(f->pull_fail, image))
        return NULL;
    for (int i = 0; i < c->cfg.nimages; i++)
        if (glob_match(c->cfg.images[i].pattern, img))
            return &c->cfg.images[i];
    for (size_t i = 0; i < nd; i++)
        if (glob_match(default_images[i].pattern, img))
            return &default_images[i];
    return NULL;
}

static const cJSON *first_container(const cJSON *pod)
{
    const cJSON *ctrs = cluster_get(pod, "spec.containers");

    return cJSON_IsArray(ctrs) ? ctrs->child : NULL;
}

/* ---- Pod bookkeeping ---- */

static kpod *kpod_find(cluster *c, const char *uid)
{
    for (kpod *kp = c->pods; kp; kp = kp->next)
        if (strcmp(kp->uid, uid) == 0)
            return kp;
    return NULL;
}

static kpod *kpod_new(cluster *c, const cJSON *pod, const cJSON *ctr)
{
    kpod *kp = calloc(1, sizeof(*kp));
    const char *name = cluster_str(ctr, "name");
    const char *image = cluster_str(ctr, "image");
    unsigned h;

    if (!kp)
        return NULL;
    kp->ns = strdup(cluster_str(pod, "metadata.namespace"));
    kp->name = strdup(cluster_str(pod, "metadata.name"));
    kp->uid = strdup(cluster_str(pod, "metadata.uid"));
    kp->cname = strdup(name ? name : "main");
    kp->image = strdup(image ? image : "");
    do {
        h = ++c->next_pod_ip & 0xffff;
    } while ((h & 0xff) == 0 || (h & 0xff) == 255);
    snprintf(kp->ip, sizeof(kp->ip), "127.1.%u.%u", h >> 8, h & 0xff);
    if (asprintf(&kp->dir, "%s/%s_%s", c->work_dir, kp->ns, kp->name) < 0)
        kp->dir = NULL;
    if (kp->dir)
        mkdir(kp->dir, 0700);
    cluster_stamp(kp->sched_time);
    memcpy(kp->ready_time, kp->sched_time, sizeof(kp->ready_time));
    kp->state = KP_NEW;

    pthread_mutex_lock(&c->mu);
    kp->next = c->pods;
    c->pods = kp;
    pthread_mutex_unlock(&c->mu);
    cluster_log(c, 3, "cluster: pod %s/%s got IP %s", kp->ns, kp->name,
                kp->ip);
    return kp;
}

static void kpod_free(kpod *kp)
{
    free(kp->ns);
    free(kp->name);
    free(kp->uid);
    free(kp->cname);
    free(kp->image);
    free(kp->dir);
    free(kp);
}

static void set_pid(cluster *c, kpod *kp, pid_t pid)
{
    pthread_mutex_lock(&c->mu);
    kp->pid = pid;
    pthread_mutex_unlock(&c->mu);
}

static void set_ready(kpod *kp, int ready)
{
    if (kp->ready == ready)
        return;
    kp->ready = ready;
    cluster_stamp(kp->ready_time);
}

/* ---- starting a container ---- */

/* Writes one ConfigMap volume's keys as files; 1 when it is missing. */
static int write_config_map(cluster *c, kpod *kp, const cJSON *vol,
                            mount *m)
{
    store_ref ref = {"", "v1", "configmaps", NULL, NULL, NULL};
    store_err err = {0, NULL};
    store_opts o;
    cJSON *cm = NULL;
    const cJSON *kv;

    memset(&o, 0, sizeof(o));
    ref.ns = kp->ns;
    ref.name = cluster_str(vol, "configMap.name");
    if (!ref.name ||
        store_get(c->st, &ref, &o, &cm, &err) >= 300) {
        store_err_clear(&err);
        return 1;
    }
    snprintf(m->host, sizeof(m->host), "%s/vol-%s", kp->dir,
             cluster_str(vol, "name"));
    mkdir(m->host, 0700);
    cJSON_ArrayForEach(kv, cJSON_GetObjectItemCaseSensitive(cm, "data")) {
        char path[PATH_MAX + 256];
        FILE *fp;

        if (!cJSON_IsString(kv) || strchr(kv->string, '/'))
            continue;
        snprintf(path, sizeof(path), "%s/%s", m->host, kv->string);
        fp = fopen(path, "w");
        if (!fp)
            continue;
        fputs(kv->valuestring, fp);
        fclose(fp);
    }
    cJSON_Delete(cm);
    return 0;
}

/* Materialises the container's ConfigMap mounts; 1 when one is missing. */
static int mount_volumes(cluster *c, kpod *kp, const cJSON *pod,
                         const cJSON *ctr, mount *mounts, int *nmounts)
{
    const cJSON *vm, *vol;

    *nmounts = 0;
    cJSON_ArrayForEach(vm, cJSON_GetObjectItemCaseSensitive(ctr,
                                                            "volumeMounts")) {
        const char *vname = cluster_str(vm, "name");
        const char *path = cluster_str(vm, "mountPath");

        if (!vname || !path || *nmounts == MAX_MOUNTS)
            continue;
        cJSON_ArrayForEach(vol, cluster_get(pod, "spec.volumes")) {
            const char *n = cluster_str(vol, "name");

            if (!n || strcmp(n, vname) != 0 ||
                !cluster_get(vol, "configMap"))
                continue;
            if (write_config_map(c, kp, vol, &mounts[*nmounts]) != 0)
                return 1;
            mounts[(*nmounts)++].path = path;
        }
    }
    return 0;
}

static void add_arg(argvec *av, const char *arg, const mount *mounts,
                    int nmounts)
{
    for (int i = 0; i < nmounts; i++) {
        size_t n = strlen(mounts[i].path);

        while (n > 1 && mounts[i].path[n - 1] == '/')
            n--;
        if (strncmp(arg, mounts[i].path, n) == 0 &&
            (arg[n] == '\0' || arg[n] == '/')) {
            char buf[PATH_MAX * 2];

            snprintf(buf, sizeof(buf), "%s%s", mounts[i].host, arg + n);
            av_add(av, buf);
            return;
        }
    }
    av_add(av, arg);
}

/*
 * The hostname a kubelet gives a pod's containers: the pod name, cut to
 * 63 characters when longer, without the '-' and '.' the cut may leave at
 * its end, so it stays a valid name. Pod names of a Deployment with a
 * long name run past that, and the processes must cope like real ones.
 */
static void pod_hostname(const char *pod, char out[HOSTNAME_MAX + 1])
{
    size_t n = strlen(pod);

    if (n > HOSTNAME_MAX) {
        n = HOSTNAME_MAX;
        while (n > 1 && (pod[n - 1] == '-' || pod[n - 1] == '.'))
            n--;
    }
    memcpy(out, pod, n);
    out[n] = '\0';
}

static const char *field_ref(const kpod *kp, const char *path)
{
    if (strcmp(path, "metadata.name") == 0)
        return kp->name;
    if (strcmp(path, "metadata.namespace") == 0)
        return kp->ns;
    if (strcmp(path, "metadata.uid") == 0)
        return kp->uid;
    if (strcmp(path, "status.podIP") == 0)
        return kp->ip;
    if (strcmp(path, "status.hostIP") == 0)
        return "127.0.0.1";
    return "";
}

static void build_env(const kpod *kp, const cJSON *ctr, argvec *env)
{
    const cJSON *e;
    char host[HOSTNAME_MAX + 1];
    char buf[4096];

    av_add(env, "PATH=/usr/local/bin:/usr/bin:/bin");
    pod_hostname(kp->name, host);
    snprintf(buf, sizeof(buf), "HOSTNAME=%s", host);
    av_add(env, buf);
    /* Sanitizer settings follow the apiserver into its children. */
    for (char **p = environ; *p; p++)
        if (strncmp(*p, "ASAN_", 5) == 0 || strncmp(*p, "UBSAN_", 6) == 0 ||
            strncmp(*p, "LSAN_", 5) == 0)
            av_add(env, *p);
    cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(ctr, "env")) {
        const char *name = cluster_str(e, "name");
        const char *val = cluster_str(e, "value");
        const char *fp = cluster_str(e, "valueFrom.fieldRef.fieldPath");

        if (!name)
            continue;
        if (!val && fp)
            val = field_ref(kp, fp);
        snprintf(buf, sizeof(buf), "%s=%s", name, val ? val : "");
        av_add(env, buf);
    }
}

static int port_value(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return v->valueint;
    if (cJSON_IsString(v))
        return atoi(v->valuestring);
    return 0;
}

/* The port the readiness probe checks; 0: ready as soon as started. */
static int probe_port(const cJSON *ctr, const cluster_image *img,
                      const argvec *av, int test_port)
{
    const cJSON *rp = cJSON_GetObjectItemCaseSensitive(ctr,
                                                       "readinessProbe");
    int p = port_value(cluster_get(rp, "httpGet.port"));

    if (p <= 0)
        p = port_value(cluster_get(rp, "tcpSocket.port"));
    if (p > 0)
        return p;
    if (img->kind == CLUSTER_IMAGE_TEST)
        return test_port;
    for (int i = 1; i + 1 < av->n; i++)
        if (strcmp(av->v[i], "--port") == 0)
            return atoi(av->v[i + 1]);
    if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(ctr, "ports")))
        p = port_value(cluster_get(
            cJSON_GetObjectItemCaseSensitive(ctr, "ports")->child,
            "containerPort"));
    if (p > 0)
        return p;
    return img->kind == CLUSTER_IMAGE_ENGINE ? 8080 : 0;
}

static void build_argv(cluster *c, kpod *kp, const cJSON *ctr,
                       const cluster_image *img, const mount *mounts,
                       int nmounts, argvec *av)
{
    const cJSON *ports = cJSON_GetObjectItemCaseSensitive(ctr, "ports");
    const cJSON *a;
    char host[HOSTNAME_MAX + 1];
    char buf[PATH_MAX];
    int port = 80;

    if (img->program[0] == '/')
        snprintf(buf, sizeof(buf), "%s", img->program);
    else
        snprintf(buf, sizeof(buf), "%s/%s", c->bin_dir, img->program);
    av_add(av, buf);
    if (img->kind == CLUSTER_IMAGE_TEST) {
        if (cJSON_IsArray(ports) && ports->child)
            port = port_value(cJSON_GetObjectItemCaseSensitive(
                ports->child, "containerPort"));
        if (port <= 0)
            port = 80;
        snprintf(buf, sizeof(buf), "%d", port);
        av_add(av, "--address");
        av_add(av, kp->ip);
        av_add(av, "--port");
        av_add(av, buf);
        /* test-service answers with its host name, which a real
           container takes from the kubelet. */
        pod_hostname(kp->name, host);
        av_add(av, "--name");
        av_add(av, host);
    } else {
        cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(ctr, "args"))
            if (cJSON_IsString(a))
                add_arg(av, a->valuestring, mounts, nmounts);
        if (img->kind == CLUSTER_IMAGE_ENGINE) {
            av_add(av, "--address");
            av_add(av, kp->ip);
        }
    }
    kp->port = probe_port(ctr, img, av, port);
}

/* In the child: only async-signal-safe calls until exec. */
static void child_exec(int logfd, int crash, char **argv, char **envp)
{
    int devnull = open("/dev/null", O_RDONLY);
    struct sigaction sa;
    sigset_t none;

    /* A container starts with default signal handling, whatever the
       apiserver blocks (SIGTERM in sim-apiserver) or ignores (SIGPIPE). */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    if (devnull >= 0)
        dup2(devnull, 0);
    dup2(logfd, 1);
    dup2(logfd, 2);
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0)
        for (int fd = 3; fd < 4096; fd++)
            close(fd);
    /* A crash is a real program exiting 1, so no leak checker that
       follows forks reports on this copy of the parent. */
    if (crash) {
        char *const f_argv[] = {"false", NULL};

        execve("/bin/false", f_argv, envp);
        _exit(1);
    }
    execve(argv[0], argv, envp);
    _exit(127);
}

/*
 * Starts the container. Returns 0 when the process runs, 1 when it
 * cannot start yet (a ConfigMap is missing), -1 when it cannot start at
 * all (reported like a process that exited with 127).
 */
static int spawn(cluster *c, kpod *kp, const cJSON *pod,
                 const cluster_image *img, const cluster_faults *f)
{
    const cJSON *ctr = first_container(pod);
    mount mounts[MAX_MOUNTS];
    argvec av = {NULL, 0, 0}, env = {NULL, 0, 0};
    char log[PATH_MAX];
    int nmounts, logfd, crash, rc = -1;
    pid_t pid;

    if (mount_volumes(c, kp, pod, ctr, mounts, &nmounts) != 0)
        return 1;
    build_argv(c, kp, ctr, img, mounts, nmounts, &av);
    build_env(kp, ctr, &env);
    crash = glob_match(f->crash_loop, short_image(kp->image));
    snprintf(log, sizeof(log), "%s/%s.log", kp->dir, kp->cname);
    logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        cluster_log(c, 0, "cluster: opening log %s for pod %s/%s failed: "
                    "%s", log, kp->ns, kp->name, strerror(errno));
        goto done;
    }
    if (!crash && access(av.v[0], X_OK) != 0) {
        cluster_log(c, 0, "cluster: program %s for image %s of pod %s/%s "
                    "is not executable: %s", av.v[0], kp->image, kp->ns,
                    kp->name, strerror(errno));
        goto close_log;
    }
    pid = fork();
    if (pid == 0)
        child_exec(logfd, crash, av.v, env.v);
    if (pid < 0) {
        cluster_log(c, 0, "cluster: fork for pod %s/%s failed: %s", kp->ns,
                    kp->name, strerror(errno));
        goto close_log;
    }
    set_pid(c, kp, pid);
    cluster_log(c, 2, "cluster: pod %s/%s runs %s as pid %d on %s:%d",
                kp->ns, kp->name, av.v[0], (int)pid, kp->ip, kp->port);
    rc = 0;
close_log:
    close(logfd);
done:
    av_free(&av);
    av_free(&env);
    return rc;
}

/* ---- probes ---- */

static int connect_to(const char *ip, int port)
{
    struct sockaddr_in sa;
    struct timeval tv = {0, 500 * 1000};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    inet_pton(AF_INET, ip, &sa.sin_addr);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* An httpGet probe: 200-399 passes. */
static int http_probe(int fd, const char *ip, const char *path)
{
    char req[1024], resp[64];
    ssize_t n;
    int code = 0;

    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n"
             "User-Agent: kube-probe/1.32\r\n\r\n", path, ip);
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) < 0)
        return 0;
    n = recv(fd, resp, sizeof(resp) - 1, 0);
    if (n <= 0)
        return 0;
    resp[n] = '\0';
    if (sscanf(resp, "HTTP/%*d.%*d %d", &code) != 1)
        return 0;
    return code >= 200 && code < 400;
}

static int probe(const kpod *kp, const cJSON *pod)
{
    const char *path = cluster_str(first_container(pod),
                                   "readinessProbe.httpGet.path");
    int fd, ok;

    if (kp->port <= 0)
        return 1;
    fd = connect_to(kp->ip, kp->port);
    if (fd < 0)
        return 0;
    ok = path ? http_probe(fd, kp->ip, path) : 1;
    close(fd);
    return ok;
}

/* ---- the state machine ---- */

static void on_exit_status(cluster *c, kpod *kp, const cJSON *pod, int code)
{
    const char *policy = cluster_str(pod, "spec.restartPolicy");
    long long wait;

    memcpy(kp->last_started, kp->started_at, sizeof(kp->last_started));
    cluster_stamp(kp->finished_at);
    kp->exit_code = code;
    set_ready(kp, 0);
    cluster_log(c, 2, "cluster: container %s of pod %s/%s exited with %d",
                kp->cname, kp->ns, kp->name, code);
    if ((policy && strcmp(policy, "Never") == 0) ||
        (policy && strcmp(policy, "OnFailure") == 0 && code == 0)) {
        kp->state = KP_DONE;
        return;
    }
    kp->restarts++;
    wait = (long long)c->cfg.backoff_ms << (kp->restarts > 16
                                                ? 16 : kp->restarts - 1);
    if (wait > c->cfg.backoff_max_ms)
        wait = c->cfg.backoff_max_ms;
    kp->backoff_ms = (int)wait;
    kp->state = KP_BACKOFF;
    kp->due_ms = cluster_now_ms() + wait;
}

static void start(cluster *c, kpod *kp, const cJSON *pod,
                  const cluster_faults *f)
{
    const cluster_image *img = find_image(c, kp->image, f);
    int rc;

    if (!img) {
        kp->state = KP_PULL_ERR;
        kp->due_ms = cluster_now_ms() + c->cfg.pull_backoff_ms;
        return;
    }
    rc = spawn(c, kp, pod, img, f);
    if (rc == 1)
        return;
    cluster_stamp(kp->started_at);
    if (rc < 0) {
        on_exit_status(c, kp, pod, 127);
        return;
    }
    kp->state = KP_RUNNING;
    kp->probe_ms = 0;
}

static void check_running(cluster *c, kpod *kp, const cJSON *pod)
{
    int wst;
    pid_t r = waitpid(kp->pid, &wst, WNOHANG);

    if (r == kp->pid || (r < 0 && errno == ECHILD)) {
        set_pid(c, kp, 0);
        on_exit_status(c, kp, pod, r < 0 ? 255
                       : WIFEXITED(wst) ? WEXITSTATUS(wst)
                                        : 128 + WTERMSIG(wst));
        return;
    }
    if (kp->ready || cluster_now_ms() < kp->probe_ms)
        return;
    kp->probe_ms = cluster_now_ms() + PROBE_MS;
    if (probe(kp, pod)) {
        set_ready(kp, 1);
        cluster_log(c, 3, "cluster: pod %s/%s is ready", kp->ns, kp->name);
    }
}

static void step(cluster *c, kpod *kp, const cJSON *pod)
{
    long long now = cluster_now_ms();
    cluster_faults f;

    get_faults(c, &f);
    switch (kp->state) {
    case KP_NEW:
        if (find_image(c, kp->image, &f) && f.start_delay_ms > 0) {
            kp->state = KP_DELAY;
            kp->due_ms = now + f.start_delay_ms;
            break;
        }
        start(c, kp, pod, &f);
        break;
    case KP_PULL_ERR:
        if (now >= kp->due_ms) {
            kp->state = KP_PULL_BACKOFF;
            kp->due_ms = now + c->cfg.pull_backoff_ms;
        }
        break;
    case KP_PULL_BACKOFF:
        if (now >= kp->due_ms)
            start(c, kp, pod, &f);
        break;
    case KP_DELAY:
    case KP_BACKOFF:
        if (now >= kp->due_ms)
            start(c, kp, pod, &f);
        break;
    case KP_RUNNING:
        check_running(c, kp, pod);
        break;
    case KP_DONE:
        break;
    }
}

/* ---- status ---- */

static cJSON *waiting(const char *reason, const char *msg)
{
    cJSON *st = cJSON_CreateObject();
    cJSON *w = cJSON_AddObjectToObject(st, "waiting");

    cJSON_AddStringToObject(w, "reason", reason);
    if (msg)
        cJSON_AddStringToObject(w, "message", msg);
    return st;
}

static cJSON *terminated(const kpod *kp, const char *started)
{
    cJSON *st = cJSON_CreateObject();
    cJSON *t = cJSON_AddObjectToObject(st, "terminated");

    cJSON_AddNumberToObject(t, "exitCode", kp->exit_code);
    cJSON_AddStringToObject(t, "reason",
                            kp->exit_code == 0 ? "Completed" : "Error");
    cJSON_AddStringToObject(t, "startedAt", started);
    cJSON_AddStringToObject(t, "finishedAt", kp->finished_at);
    return st;
}

static cJSON *container_state(const kpod *kp)
{
    char msg[512];
    cJSON *st;

    switch (kp->state) {
    case KP_PULL_ERR:
        snprintf(msg, sizeof(msg), "failed to pull and unpack image "
                 "\"%s\": not found in the simulated image table",
                 kp->image);
        return waiting("ErrImagePull", msg);
    case KP_PULL_BACKOFF:
        snprintf(msg, sizeof(msg), "Back-off pulling image \"%s\"",
                 kp->image);
        return waiting("ImagePullBackOff", msg);
    case KP_BACKOFF:
        snprintf(msg, sizeof(msg), "back-off %ds restarting failed "
                 "container=%s pod=%s_%s(%s)", (kp->backoff_ms + 999) / 1000,
                 kp->cname, kp->name, kp->ns, kp->uid);
        return waiting("CrashLoopBackOff", msg);
    case KP_RUNNING:
        st = cJSON_CreateObject();
        cJSON_AddStringToObject(cJSON_AddObjectToObject(st, "running"),
                                "startedAt", kp->started_at);
        return st;
    case KP_DONE:
        return terminated(kp, kp->last_started);
    default:
        return waiting("ContainerCreating", NULL);
    }
}

static cJSON *container_status(const kpod *kp)
{
    cJSON *cs = cJSON_CreateObject();
    char id[128];
    int pulled = kp->state != KP_PULL_ERR && kp->state != KP_PULL_BACKOFF &&
                 kp->state != KP_NEW;

    cJSON_AddStringToObject(cs, "name", kp->cname);
    cJSON_AddItemToObject(cs, "state", container_state(kp));
    if (kp->restarts > 0 && kp->state != KP_DONE)
        cJSON_AddItemToObject(cs, "lastState",
                              terminated(kp, kp->last_started));
    else
        cJSON_AddObjectToObject(cs, "lastState");
    cJSON_AddBoolToObject(cs, "ready", kp->ready);
    cJSON_AddNumberToObject(cs, "restartCount", kp->restarts);
    cJSON_AddStringToObject(cs, "image", kp->image);
    snprintf(id, sizeof(id), "sim://%s", short_image(kp->image));
    cJSON_AddStringToObject(cs, "imageID", pulled ? id : "");
    if (kp->state == KP_RUNNING || kp->state == KP_BACKOFF ||
        kp->state == KP_DONE) {
        snprintf(id, sizeof(id), "sim://%.40s/%s/%d", kp->uid, kp->cname,
                 kp->restarts);
        cJSON_AddStringToObject(cs, "containerID", id);
    }
    cJSON_AddBoolToObject(cs, "started", kp->state == KP_RUNNING);
    return cs;
}

static cJSON *pod_condition(const char *type, int ok, const char *when,
                            const kpod *kp)
{
    cJSON *cd = cJSON_CreateObject();
    char msg[256];

    cJSON_AddStringToObject(cd, "type", type);
    cJSON_AddStringToObject(cd, "status", ok ? "True" : "False");
    cJSON_AddStringToObject(cd, "lastTransitionTime", when);
    if (!ok) {
        snprintf(msg, sizeof(msg), "containers with unready status: [%s]",
                 kp->cname);
        cJSON_AddStringToObject(cd, "reason", "ContainersNotReady");
        cJSON_AddStringToObject(cd, "message", msg);
    }
    return cd;
}

static void add_ips(cJSON *st, const char *one, const char *many,
                    const char *ip)
{
    cJSON *arr, *o;

    cJSON_AddStringToObject(st, one, ip);
    arr = cJSON_AddArrayToObject(st, many);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ip", ip);
    cJSON_AddItemToArray(arr, o);
}

static cJSON *pod_status(const kpod *kp)
{
    cJSON *st = cJSON_CreateObject(), *conds, *css;
    const char *phase = "Pending";

    if (kp->state == KP_RUNNING || kp->state == KP_BACKOFF)
        phase = "Running";
    else if (kp->state == KP_DONE)
        phase = kp->exit_code == 0 ? "Succeeded" : "Failed";
    cJSON_AddStringToObject(st, "phase", phase);
    conds = cJSON_AddArrayToObject(st, "conditions");
    cJSON_AddItemToArray(conds, pod_condition("Initialized", 1,
                                              kp->sched_time, kp));
    cJSON_AddItemToArray(conds, pod_condition("Ready", kp->ready,
                                              kp->ready_time, kp));
    cJSON_AddItemToArray(conds, pod_condition("ContainersReady", kp->ready,
                                              kp->ready_time, kp));
    cJSON_AddItemToArray(conds, pod_condition("PodScheduled", 1,
                                              kp->sched_time, kp));
    add_ips(st, "hostIP", "hostIPs", "127.0.0.1");
    add_ips(st, "podIP", "podIPs", kp->ip);
    cJSON_AddStringToObject(st, "startTime", kp->sched_time);
    css = cJSON_AddArrayToObject(st, "containerStatuses");
    cJSON_AddItemToArray(css, container_status(kp));
    cJSON_AddStringToObject(st, "qosClass", "BestEffort");
    return st;
}

/* ---- stopping ---- */

static void stop_process(cluster *c, kpod *kp)
{
    if (kp->stopping)
        return;
    kp->stopping = 1;
    kp->kill_ms = cluster_now_ms() + c->cfg.grace_max_ms;
    if (kp->pid > 0) {
        kill(-kp->pid, SIGTERM);
        kill(kp->pid, SIGTERM);
        cluster_log(c, 2, "cluster: pod %s/%s is gone; stopping pid %d",
                    kp->ns, kp->name, (int)kp->pid);
    }
}

/* Reaps a stopping Pod's process; 1 once it is gone. */
static int reap(cluster *c, kpod *kp)
{
    int wst;
    pid_t r;

    if (kp->pid <= 0)
        return 1;
    r = waitpid(kp->pid, &wst, WNOHANG);
    if (r == kp->pid || (r < 0 && errno == ECHILD)) {
        set_pid(c, kp, 0);
        return 1;
    }
    if (cluster_now_ms() >= kp->kill_ms) {
        kill(-kp->pid, SIGKILL);
        kill(kp->pid, SIGKILL);
    }
    return 0;
}

static int on_remove(const char *path, const struct stat *sb, int flag,
                     struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void unlink_pod(cluster *c, kpod *kp)
{
    pthread_mutex_lock(&c->mu);
    for (kpod **pp = &c->pods; *pp; pp = &(*pp)->next)
        if (*pp == kp) {
            *pp = kp->next;
            break;
        }
    pthread_mutex_unlock(&c->mu);
    if (kp->dir)
        nftw(kp->dir, on_remove, 16, FTW_DEPTH | FTW_PHYS);
    kpod_free(kp);
}

/* ---- the pass ---- */

static void sync_pod(cluster *c, const cJSON *pod)
{
    const char *uid = cluster_str(pod, "metadata.uid");
    const cJSON *ctr = first_container(pod);
    kpod *kp;
    cJSON *st;

    if (!uid || !ctr || !cluster_str(pod, "metadata.name"))
        return;
    kp = kpod_find(c, uid);
    if (!kp) {
        if (cluster_get(pod, "metadata.deletionTimestamp"))
            return;
        kp = kpod_new(c, pod, ctr);
        if (!kp)
            return;
    }
    kp->seen = 1;
    if (cluster_get(pod, "metadata.deletionTimestamp"))
        stop_process(c, kp);
    if (kp->stopping)
        return;
    step(c, kp, pod);
    st = pod_status(kp);
    if (cJSON_Compare(st, cluster_get(pod, "status"), 1))
        cJSON_Delete(st);
    else
        cluster_write_status(c, &pods_ref, pod, st);
}

void cluster_kubelet_sync(cluster *c, const cJSON *pods)
{
    const cJSON *p;
    kpod *kp, *next;

    cJSON_ArrayForEach(p, pods)
        sync_pod(c, p);
    for (kp = c->pods; kp; kp = next) {
        next = kp->next;
        if (!kp->seen)
            stop_process(c, kp);
        kp->seen = 0;
        if (kp->stopping && reap(c, kp))
            unlink_pod(c, kp);
    }
}

void cluster_kubelet_stop_all(cluster *c)
{
    long long deadline = cluster_now_ms() + c->cfg.grace_max_ms;
    int left;

    for (kpod *kp = c->pods; kp; kp = kp->next)
        stop_process(c, kp);
    do {
        left = 0;
        for (kpod *kp = c->pods; kp; kp = kp->next)
            left += !reap(c, kp);
        if (left)
            usleep(10 * 1000);
    } while (left && cluster_now_ms() < deadline + 1000);
    while (c->pods) {
        if (c->pods->pid > 0) {
            kill(-c->pods->pid, SIGKILL);
            waitpid(c->pods->pid, NULL, 0);
        }
        unlink_pod(c, c->pods);
    }
}

pid_t cluster_pod_pid(cluster *c, const char *ns, const char *name)
{
    pid_t pid = 0;

    pthread_mutex_lock(&c->mu);
    for (kpod *kp = c->pods; kp; kp = kp->next)
        if (strcmp(kp->ns, ns) == 0 && strcmp(kp->name, name) == 0 &&
            !kp->stopping)
            pid = kp->pid;
    pthread_mutex_unlock(&c->mu);
    return pid;
}

char *cluster_pod_log_path(cluster *c, const char *ns, const char *name)
{
    char *path = NULL;

    pthread_mutex_lock(&c->mu);
    for (kpod *kp = c->pods; kp; kp = kp->next)
        if (strcmp(kp->ns, ns) == 0 && strcmp(kp->name, name) == 0 &&
            kp->dir && asprintf(&path, "%s/%s.log", kp->dir, kp->cname) < 0)
            path = NULL;
    pthread_mutex_unlock(&c->mu);
    return path;
}
