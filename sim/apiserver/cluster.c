/*
 * cluster: threads, the Deployment controller and Service cluster IPs.
 * The kubelet is in cluster_pod.c, the service proxy in cluster_proxy.c.
 *
 * The reconcile loop is level-triggered: watches only say "something
 * changed", and each pass lists Deployments, Pods and Services from the
 * store, so a pass always sees its own earlier writes and never needs
 * expectations about objects it created a moment ago.
 */
#include <errno.h>
#include <ftw.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster_int.h"
#include "util.h"

#define DEFAULT_DEADLINE_S 600
#define HASH_ALPHABET "bcdfghjklmnpqrstvwxz2456789"

typedef struct watch_arg {
    cluster *c;
    store_ref ref;
} watch_arg;

static watch_arg watch_args_tmpl[3] = {
    {NULL, {"apps", "v1", "deployments", NULL, NULL, NULL}},
    {NULL, {"", "v1", "pods", NULL, NULL, NULL}},
    {NULL, {"", "v1", "services", NULL, NULL, NULL}},
};

static const store_ref pods_ref = {"", "v1", "pods", NULL, NULL, NULL};
static const store_ref deps_ref = {"apps", "v1", "deployments", NULL, NULL,
                                   NULL};
static const store_ref svcs_ref = {"", "v1", "services", NULL, NULL, NULL};

static const store_opts no_opts;

/* ---- helpers shared with the other cluster files ---- */

void cluster_log(cluster *c, int level, const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (!c->log)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->log(level, msg, c->log_ud);
}

long long cluster_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cluster_stamp(char *buf)
{
    util_rfc3339(time(NULL), buf, 32);
}

const cJSON *cluster_get(const cJSON *o, const char *path)
{
    char part[64];

    while (o && *path) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);

        if (n >= sizeof(part))
            return NULL;
        memcpy(part, path, n);
        part[n] = '\0';
        o = cJSON_GetObjectItemCaseSensitive(o, part);
        path += n + (dot ? 1 : 0);
    }
    return o;
}

const char *cluster_str(const cJSON *o, const char *path)
{
    const cJSON *v = cluster_get(o, path);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

int cluster_pod_ready(const cJSON *pod)
{
    const cJSON *conds = cluster_get(pod, "status.conditions");
    const cJSON *cd;

    cJSON_ArrayForEach(cd, conds) {
        const char *t = cluster_str(cd, "type");

        if (t && strcmp(t, "Ready") == 0)
            return cluster_str(cd, "status") &&
                   strcmp(cluster_str(cd, "status"), "True") == 0;
    }
    return 0;
}

int cluster_write_status(cluster *c, const store_ref *coll,
                         const cJSON *obj, cJSON *status)
{
    store_ref ref = *coll;
    store_err err = {0, NULL};
    cJSON *body = cJSON_Duplicate(obj, 1);
    cJSON *meta = cJSON_GetObjectItemCaseSensitive(body, "metadata");
    cJSON *out = NULL;
    int code;

    ref.ns = cluster_str(obj, "metadata.namespace");
    ref.name = cluster_str(obj, "metadata.name");
    ref.sub = "status";
    cJSON_DeleteItemFromObjectCaseSensitive(meta, "resourceVersion");
    cJSON_DeleteItemFromObjectCaseSensitive(body, "status");
    cJSON_AddItemToObject(body, "status", status);
    code = store_update(c->st, &ref, &no_opts, body, &out, &err);
    cJSON_Delete(out);
    if (code >= 300 && code != 404)
        cluster_log(c, 1, "cluster: writing the status of %s %s/%s "
                    "failed (%d %s); retrying next pass", ref.resource,
                    ref.ns, ref.name, code, store_err_message(&err));
    store_err_clear(&err);
    cJSON_Delete(body);
    return code;
}

static int owned_by(const cJSON *obj, const char *uid)
{
    const cJSON *refs = cluster_get(obj, "metadata.ownerReferences");
    const cJSON *r;

    cJSON_ArrayForEach(r, refs) {
        const char *u = cluster_str(r, "uid");

        if (u && strcmp(u, uid) == 0 &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "controller")))
            return 1;
    }
    return 0;
}

static int json_int(const cJSON *o, const char *path, int dflt)
{
    const cJSON *v = cluster_get(o, path);

    return cJSON_IsNumber(v) ? v->valueint : dflt;
}

/* ---- Deployments ---- */

/* A stable 10-character hash of the Pod template, as a label value. */
static void template_hash(const cJSON *tmpl, char out[16])
{
    char *text = cJSON_PrintUnformatted(tmpl);
    uint64_t h = 1469598103934665603ULL;
    size_t n = sizeof(HASH_ALPHABET) - 1;

    for (const char *p = text ? text : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    free(text);
    for (int i = 0; i < 10; i++) {
        out[i] = HASH_ALPHABET[h % n];
        h /= n;
    }
    out[10] = '\0';
}

static dstate *dstate_get(cluster *c, const char *uid)
{
    dstate *d;

    for (d = c->deps; d; d = d->next)
        if (strcmp(d->uid, uid) == 0)
            return d;
    d = calloc(1, sizeof(*d));
    if (!d)
        return NULL;
    d->uid = strdup(uid);
    d->next = c->deps;
    c->deps = d;
    return d;
}

static void dstate_sweep(cluster *c, int all)
{
    dstate **pp = &c->deps;

    while (*pp) {
        dstate *d = *pp;

        if (!all && d->seen) {
            d->seen = 0;
            pp = &d->next;
            continue;
        }
        *pp = d->next;
        free(d->uid);
        free(d);
    }
}

static void create_pod(cluster *c, const cJSON *dep, const char *hash)
{
    const char *ns = cluster_str(dep, "metadata.namespace");
    const char *dname = cluster_str(dep, "metadata.name");
    const cJSON *tmpl = cluster_get(dep, "spec.template");
    cJSON *pod = cJSON_CreateObject(), *meta, *labels, *refs, *ref;
    cJSON *out = NULL;
    store_ref sref = pods_ref;
    store_err err = {0, NULL};
    char name[300], sfx[6];
    unsigned char rnd[5];
    int code;

    util_random(rnd, sizeof(rnd));
    for (int i = 0; i < 5; i++)
        sfx[i] = HASH_ALPHABET[rnd[i] % (sizeof(HASH_ALPHABET) - 1)];
    sfx[5] = '\0';
    snprintf(name, sizeof(name), "%s-%s-%s", dname, hash, sfx);

    cJSON_AddStringToObject(pod, "apiVersion", "v1");
    cJSON_AddStringToObject(pod, "kind", "Pod");
    meta = cJSON_AddObjectToObject(pod, "metadata");
    cJSON_AddStringToObject(meta, "name", name);
    cJSON_AddStringToObject(meta, "namespace", ns);
    labels = cJSON_Duplicate(cluster_get(tmpl, "metadata.labels"), 1);
    if (!labels)
        labels = cJSON_CreateObject();
    cJSON_AddStringToObject(labels, "pod-template-hash", hash);
    cJSON_AddItemToObject(meta, "labels", labels);
    if (cluster_get(tmpl, "metadata.annotations"))
        cJSON_AddItemToObject(meta, "annotations", cJSON_Duplicate(
            cluster_get(tmpl, "metadata.annotations"), 1));
    refs = cJSON_AddArrayToObject(meta, "ownerReferences");
    ref = cJSON_CreateObject();
    cJSON_AddStringToObject(ref, "apiVersion", "apps/v1");
    cJSON_AddStringToObject(ref, "kind", "Deployment");
    cJSON_AddStringToObject(ref, "name", dname);
    cJSON_AddStringToObject(ref, "uid", cluster_str(dep, "metadata.uid"));
    cJSON_AddBoolToObject(ref, "controller", 1);
    cJSON_AddBoolToObject(ref, "blockOwnerDeletion", 1);
    cJSON_AddItemToArray(refs, ref);
    cJSON_AddItemToObject(pod, "spec", cJSON_Duplicate(
        cluster_get(tmpl, "spec"), 1));

    sref.ns = ns;
    code = store_create(c->st, &sref, &no_opts, pod, &out, &err);
    cJSON_Delete(out);
    if (code >= 300)
        cluster_log(c, 1, "cluster: creating pod %s/%s for deployment %s "
                    "failed (%d %s); retrying next pass", ns, name, dname,
                    code, store_err_message(&err));
    else
        cluster_log(c, 3, "cluster: created pod %s/%s", ns, name);
    store_err_clear(&err);
    cJSON_Delete(pod);
}

static void delete_pod(cluster *c, const cJSON *pod)
{
    store_ref ref = pods_ref;
    store_err err = {0, NULL};
    cJSON *out = NULL;

    ref.ns = cluster_str(pod, "metadata.namespace");
    ref.name = cluster_str(pod, "metadata.name");
    store_delete(c->st, &ref, &no_opts, NULL, &out, &err);
    cJSON_Delete(out);
    store_err_clear(&err);
}

/* maxUnavailable of a rolling update, resolved against replicas. */
static int max_unavailable(const cJSON *dep, int replicas)
{
    const cJSON *v = cluster_get(dep, "spec.strategy.rollingUpdate."
                                 "maxUnavailable");
    const char *type = cluster_str(dep, "spec.strategy.type");

    if (type && strcmp(type, "Recreate") == 0)
        return 0;
    if (cJSON_IsNumber(v))
        return v->valueint;
    if (cJSON_IsString(v))
        return replicas * atoi(v->valuestring) / 100;
    return replicas * 25 / 100;
}

static cJSON *condition(const char *type, const char *status,
                        const char *reason, const char *msg,
                        const char *update, const char *trans)
{
    cJSON *cd = cJSON_CreateObject();

    cJSON_AddStringToObject(cd, "type", type);
    cJSON_AddStringToObject(cd, "status", status);
    if (update)
        cJSON_AddStringToObject(cd, "lastUpdateTime", update);
    cJSON_AddStringToObject(cd, "lastTransitionTime", trans);
    cJSON_AddStringToObject(cd, "reason", reason);
    cJSON_AddStringToObject(cd, "message", msg);
    return cd;
}

static void add_count(cJSON *o, const char *name, int n)
{
    if (n > 0)
        cJSON_AddNumberToObject(o, name, n);
}

typedef struct dcounts {
    int replicas, total, updated, ready;
} dcounts;

/* Moves the Progressing condition on; fills reason and message. */
static const char *progress(cluster *c, dstate *ds, const cJSON *dep,
                            const dcounts *n, const char *rs, char *msg,
                            size_t len)
{
    int deadline = json_int(dep, "spec.progressDeadlineSeconds",
                            DEFAULT_DEADLINE_S);
    long long now = cluster_now_ms();

    if (n->ready > ds->last_ready || n->updated > ds->last_updated)
        ds->progress_ms = now;
    ds->last_ready = n->ready;
    ds->last_updated = n->updated;
    if (n->updated == n->replicas && n->total == n->replicas &&
        n->ready >= n->replicas)
        ds->complete = 1;
    if (ds->complete) {
        snprintf(msg, len, "ReplicaSet \"%s\" has successfully "
                 "progressed.", rs);
        return "NewReplicaSetAvailable";
    }
    if (now - ds->progress_ms > (long long)deadline * 1000) {
        snprintf(msg, len, "ReplicaSet \"%s\" has timed out progressing.",
                 rs);
        return "ProgressDeadlineExceeded";
    }
    snprintf(msg, len, "ReplicaSet \"%s\" is progressing.", rs);
    return "ReplicaSetUpdated";
}

static void write_deploy_status(cluster *c, dstate *ds, const cJSON *dep,
                                const dcounts *n)
{
    cJSON *status = cJSON_CreateObject(), *conds;
    const char *avail, *reason, *pstat;
    char rs[300], msg[400], now[32];

    cluster_stamp(now);
    snprintf(rs, sizeof(rs), "%s-%s", cluster_str(dep, "metadata.name"),
             ds->hash);
    cJSON_AddNumberToObject(status, "observedGeneration",
                            json_int(dep, "metadata.generation", 1));
    add_count(status, "replicas", n->total);
    add_count(status, "updatedReplicas", n->updated);
    add_count(status, "readyReplicas", n->ready);
    add_count(status, "availableReplicas", n->ready);
    add_count(status, "unavailableReplicas", n->replicas - n->ready);

    avail = n->ready >= n->replicas - max_unavailable(dep, n->replicas)
                ? "True" : "False";
    if (strcmp(avail, ds->avail_status) != 0) {
        snprintf(ds->avail_status, sizeof(ds->avail_status), "%s", avail);
        memcpy(ds->avail_time, now, sizeof(now));
    }
    reason = progress(c, ds, dep, n, rs, msg, sizeof(msg));
    pstat = strcmp(reason, "ProgressDeadlineExceeded") == 0 ? "False"
                                                            : "True";
    if (strcmp(reason, ds->prog_reason) != 0) {
        if (!*ds->prog_reason ||
            strcmp(ds->prog_reason, "ProgressDeadlineExceeded") == 0 ||
            strcmp(pstat, "False") == 0)
            memcpy(ds->prog_time, now, sizeof(now));
        snprintf(ds->prog_reason, sizeof(ds->prog_reason), "%s", reason);
        memcpy(ds->prog_update, now, sizeof(now));
    }

    conds = cJSON_AddArrayToObject(status, "conditions");
    cJSON_AddItemToArray(conds, condition(
        "Available", avail,
        *avail == 'T' ? "MinimumReplicasAvailable"
                      : "MinimumReplicasUnavailable",
        *avail == 'T' ? "Deployment has minimum availability."
                      : "Deployment does not have minimum availability.",
        ds->avail_time, ds->avail_time));
    cJSON_AddItemToArray(conds, condition("Progressing", pstat, reason, msg,
                                          ds->prog_update, ds->prog_time));

    if (cJSON_Compare(status, cluster_get(dep, "status"), 1))
        cJSON_Delete(status);
    else
        cluster_write_status(c, &deps_ref, dep, status);
}

/* Scales the current template's Pods and retires old ones. */
static void scale(cluster *c, const cJSON *dep, const cJSON *pods,
                  const char *hash, dcounts *n)
{
    const char *uid = cluster_str(dep, "metadata.uid");
    int cur_ready = 0, excess;
    const cJSON *p;

    cJSON_ArrayForEach(p, pods) {
        const char *h = cluster_str(p, "metadata.labels.pod-template-hash");

        if (!owned_by(p, uid) ||
            cluster_get(p, "metadata.deletionTimestamp"))
            continue;
        n->total++;
        n->ready += cluster_pod_ready(p);
        if (h && strcmp(h, hash) == 0) {
            n->updated++;
            cur_ready += cluster_pod_ready(p);
        }
    }
    for (int i = n->updated; i < n->replicas; i++)
        create_pod(c, dep, hash);

    /* Too many: not-ready Pods go first, then ready ones. */
    excess = n->updated - n->replicas;
    for (int pass = 0; pass < 2 && excess > 0; pass++)
        cJSON_ArrayForEach(p, pods) {
            const char *h = cluster_str(p,
                                        "metadata.labels.pod-template-hash");

            if (excess > 0 && owned_by(p, uid) && h &&
                strcmp(h, hash) == 0 &&
                !cluster_get(p, "metadata.deletionTimestamp") &&
                cluster_pod_ready(p) == pass) {
                delete_pod(c, p);
                excess--;
            }
        }

    /* Old Pods stay until the new template is fully ready. */
    if (cur_ready < n->replicas || n->total == n->updated)
        return;
    cJSON_ArrayForEach(p, pods) {
        const char *h = cluster_str(p, "metadata.labels.pod-template-hash");

        if (owned_by(p, uid) && (!h || strcmp(h, hash) != 0) &&
            !cluster_get(p, "metadata.deletionTimestamp"))
            delete_pod(c, p);
    }
}

static void sync_deployment(cluster *c, const cJSON *dep, const cJSON *pods)
{
    const char *uid = cluster_str(dep, "metadata.uid");
    dcounts n = {0, 0, 0, 0};
    char hash[16];
    dstate *ds;

    if (!uid || cluster_get(dep, "metadata.deletionTimestamp"))
        return;
    ds = dstate_get(c, uid);
    if (!ds)
        return;
    ds->seen = 1;
    template_hash(cluster_get(dep, "spec.template"), hash);
    if (strcmp(ds->hash, hash) != 0) {
        memcpy(ds->hash, hash, sizeof(hash));
        ds->progress_ms = cluster_now_ms();
        ds->complete = 0;
        ds->last_ready = ds->last_updated = 0;
    }
    n.replicas = json_int(dep, "spec.replicas", 1);
    scale(c, dep, pods, hash, &n);
    write_deploy_status(c, ds, dep, &n);
}

/* ---- Services ---- */

static void next_ip(unsigned *counter, int net, char out[16])
{
    unsigned h;

    do {
        h = ++*counter & 0xffff;
    } while ((h & 0xff) == 0 || (h & 0xff) == 255);
    snprintf(out, 16, "127.%d.%u.%u", net, h >> 8, h & 0xff);
}

static const char *assign_cluster_ip(cluster *c, const cJSON *svc,
                                     char ip[16])
{
    store_ref ref = svcs_ref;
    store_err err = {0, NULL};
    cJSON *patch = cJSON_CreateObject(), *spec, *ips, *out = NULL;
    int code;

    next_ip(&c->next_svc_ip, 2, ip);
    spec = cJSON_AddObjectToObject(patch, "spec");
    cJSON_AddStringToObject(spec, "clusterIP", ip);
    ips = cJSON_AddArrayToObject(spec, "clusterIPs");
    cJSON_AddItemToArray(ips, cJSON_CreateString(ip));
    ref.ns = cluster_str(svc, "metadata.namespace");
    ref.name = cluster_str(svc, "metadata.name");
    code = store_patch(c->st, &ref, &no_opts, STORE_PATCH_MERGE, patch,
                       &out, &err);
    cJSON_Delete(out);
    cJSON_Delete(patch);
    if (code >= 300) {
        cluster_log(c, 1, "cluster: assigning cluster IP %s to service "
                    "%s/%s failed (%d %s); retrying next pass", ip, ref.ns,
                    ref.name, code, store_err_message(&err));
        store_err_clear(&err);
        return NULL;
    }
    cluster_log(c, 3, "cluster: service %s/%s has cluster IP %s", ref.ns,
                ref.name, ip);
    return ip;
}

static int selects(const cJSON *sel, const cJSON *pod)
{
    const cJSON *labels = cluster_get(pod, "metadata.labels");
    const cJSON *kv;

    if (!cJSON_IsObject(sel) || !sel->child)
        return 0;
    cJSON_ArrayForEach(kv, sel) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(labels,
                                                          kv->string);

        if (!cJSON_IsString(v) || !cJSON_IsString(kv) ||
            strcmp(v->valuestring, kv->valuestring) != 0)
            return 0;
    }
    return 1;
}

/* The Pod port a Service port's targetPort means, or 0. */
static int target_port(const cJSON *sport, const cJSON *pod)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(sport, "targetPort");
    const cJSON *ctr, *cp;

    if (cJSON_IsNumber(t))
        return t->valueint;
    if (!cJSON_IsString(t))
        return json_int(sport, "port", 0);
    if (atoi(t->valuestring) > 0)
        return atoi(t->valuestring);
    cJSON_ArrayForEach(ctr, cluster_get(pod, "spec.containers"))
        cJSON_ArrayForEach(cp, cJSON_GetObjectItemCaseSensitive(ctr,
                                                                "ports")) {
            const char *nm = cluster_str(cp, "name");

            if (nm && strcmp(nm, t->valuestring) == 0)
                return json_int(cp, "containerPort", 0);
        }
    return 0;
}

static void sync_service_port(cluster *c, const cJSON *svc, int idx,
                              const cJSON *sport, const char *ip,
                              const cJSON *pods)
{
    const char *ns = cluster_str(svc, "metadata.namespace");
    const cJSON *sel = cluster_get(svc, "spec.selector");
    char *eps[64], key[128];
    int n = 0;
    const cJSON *p;

    cJSON_ArrayForEach(p, pods) {
        const char *pip = cluster_str(p, "status.podIP");
        const char *pns = cluster_str(p, "metadata.namespace");
        int port = target_port(sport, p);
        char ep[40];

        if (n == 64 || !pip || !pns || strcmp(pns, ns) != 0 ||
            port <= 0 || !selects(sel, p) || !cluster_pod_ready(p) ||
            cluster_get(p, "metadata.deletionTimestamp"))
            continue;
        snprintf(ep, sizeof(ep), "%s:%d", pip, port);
        eps[n++] = strdup(ep);
    }
    snprintf(key, sizeof(key), "%s/%d", cluster_str(svc, "metadata.uid"),
             idx);
    cluster_proxy_set(c->proxy, key, ip, json_int(sport, "port", 0), eps,
                      n);
    for (int i = 0; i < n; i++)
        free(eps[i]);
}

static void sync_service(cluster *c, const cJSON *svc, const cJSON *pods)
{
    const char *type = cluster_str(svc, "spec.type");
    const char *ip = cluster_str(svc, "spec.clusterIP");
    const cJSON *sport;
    char buf[16];
    int idx = 0;

    if (!cluster_str(svc, "metadata.uid") ||
        (type && strcmp(type, "ExternalName") == 0))
        return;
    if (!ip || !*ip)
        ip = assign_cluster_ip(c, svc, buf);
    if (!ip || strncmp(ip, "127.", 4) != 0)
        return;
    cJSON_ArrayForEach(sport, cluster_get(svc, "spec.ports"))
        sync_service_port(c, svc, idx++, sport, ip, pods);
}

/* ---- the loops ---- */

static cJSON *list_items(cluster *c, const store_ref *ref, cJSON **list)
{
    store_err err = {0, NULL};

    *list = NULL;
    if (store_list(c->st, ref, &no_opts, list, &err) >= 300) {
        store_err_clear(&err);
        return NULL;
    }
    return cJSON_GetObjectItemCaseSensitive(*list, "items");
}

static void reconcile_once(cluster *c)
{
    cJSON *dl, *pl, *sl;
    const cJSON *deps = list_items(c, &deps_ref, &dl);
    const cJSON *pods = list_items(c, &pods_ref, &pl);
    const cJSON *svcs = list_items(c, &svcs_ref, &sl);
    const cJSON *o;

    cluster_kubelet_sync(c, pods);
    cJSON_ArrayForEach(o, deps)
        sync_deployment(c, o, pods);
    dstate_sweep(c, 0);
    cluster_proxy_begin(c->proxy);
    cJSON_ArrayForEach(o, svcs)
        sync_service(c, o, pods);
    cluster_proxy_end(c->proxy);
    cJSON_Delete(dl);
    cJSON_Delete(pl);
    cJSON_Delete(sl);
}

static int stopping(cluster *c)
{
    return __atomic_load_n(&c->stopping, __ATOMIC_SEQ_CST);
}

static void mark_dirty(cluster *c)
{
    pthread_mutex_lock(&c->mu);
    c->dirty = 1;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

/* Watches one resource from now on and turns its events into wakeups. */
static void *watch_main(void *ud)
{
    watch_arg *wa = ud;
    cluster *c = wa->c;

    while (!stopping(c)) {
        store_opts o;
        store_watch *w = NULL;
        store_err err = {0, NULL};
        store_event ev;
        char rv[32];
        int rc;

        memset(&o, 0, sizeof(o));
        snprintf(rv, sizeof(rv), "%llu",
                 (unsigned long long)store_rv(c->st));
        o.resource_version = rv;
        if (store_watch_open(c->st, &wa->ref, &o, &w, &err) >= 300) {
            store_err_clear(&err);
            usleep(100 * 1000);
            continue;
        }
        mark_dirty(c);
        while (!stopping(c) && (rc = store_watch_next(w, 100, &ev)) >= 0) {
            if (rc == 1) {
                cJSON_Delete(ev.object);
                mark_dirty(c);
            }
        }
        store_watch_close(w);
    }
    free(wa);
    return NULL;
}

static void *reconcile_main(void *ud)
{
    cluster *c = ud;

    pthread_mutex_lock(&c->mu);
    while (!c->stopping) {
        if (!c->dirty) {
            struct timespec ts;

            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += (long)c->cfg.tick_ms * 1000000L;
            ts.tv_sec += ts.tv_nsec / 1000000000L;
            ts.tv_nsec %= 1000000000L;
            pthread_cond_timedwait(&c->cv, &c->mu, &ts);
        }
        c->dirty = 0;
        if (c->stopping)
            break;
        pthread_mutex_unlock(&c->mu);
        reconcile_once(c);
        pthread_mutex_lock(&c->mu);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

/* ---- start and stop ---- */

static char *exe_dir(void)
{
    char path[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);

    if (n <= 0)
        return strdup(".");
    path[n] = '\0';
    return strdup(dirname(path));
}

static void apply_defaults(cluster_config *cfg)
{
    if (cfg->tick_ms <= 0)
        cfg->tick_ms = 50;
    if (cfg->backoff_ms <= 0)
        cfg->backoff_ms = 10000;
    if (cfg->backoff_max_ms <= 0)
        cfg->backoff_max_ms = 300000;
    if (cfg->pull_backoff_ms <= 0)
        cfg->pull_backoff_ms = 1000;
    if (cfg->grace_max_ms <= 0)
        cfg->grace_max_ms = 2000;
}

static int on_remove(const char *path, const struct stat *sb, int flag,
                     struct FTW *ftw)
{
    remove(path);
    return 0;
}

static void remove_tree(const char *dir)
{
    nftw(dir, on_remove, 16, FTW_DEPTH | FTW_PHYS);
}

static void free_cluster(cluster *c)
{
    if (c->own_work_dir && c->work_dir)
        remove_tree(c->work_dir);
    free(c->work_dir);
    free(c->bin_dir);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static int make_work_dir(cluster *c, char *err, size_t errlen)
{
    char tmpl[PATH_MAX];
    const char *tmp = getenv("TMPDIR");

    if (c->cfg.work_dir) {
        c->work_dir = strdup(c->cfg.work_dir);
        return 0;
    }
    snprintf(tmpl, sizeof(tmpl), "%s/sim-cluster-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(tmpl)) {
        snprintf(err, errlen, "creating the cluster work dir %s failed: "
                 "%s", tmpl, strerror(errno));
        return -1;
    }
    c->work_dir = strdup(tmpl);
    c->own_work_dir = 1;
    return 0;
}

int cluster_start(store *st, const cluster_config *cfg,
                  cluster_faults_fn faults, void *faults_ud,
                  store_log_fn log, void *log_ud, cluster **out,
                  char *err, size_t errlen)
{
    cluster *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (!c) {
        snprintf(err, errlen, "out of memory starting the cluster");
        return -1;
    }
    c->st = st;
    c->cfg = *cfg;
    apply_defaults(&c->cfg);
    c->faults = faults;
    c->faults_ud = faults_ud;
    c->log = log;
    c->log_ud = log_ud;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    c->bin_dir = cfg->bin_dir ? strdup(cfg->bin_dir) : exe_dir();
    /* Random starting points keep servers on one machine (parallel
       tests) from handing out the same loopback addresses. */
    util_random(&c->next_pod_ip, sizeof(c->next_pod_ip));
    util_random(&c->next_svc_ip, sizeof(c->next_svc_ip));
    if (make_work_dir(c, err, errlen) < 0)
        goto fail;
    c->proxy = cluster_proxy_new(c);
    if (!c->proxy) {
        snprintf(err, errlen, "starting the service proxy failed");
        goto fail;
    }
    for (int i = 0; i < 3; i++) {
        watch_arg *wa = calloc(1, sizeof(*wa));

        *wa = watch_args_tmpl[i];
        wa->c = c;
        if (pthread_create(&c->watchers[i], NULL, watch_main, wa) != 0) {
            free(wa);
            snprintf(err, errlen, "starting a cluster watch thread failed");
            goto fail_threads;
        }
        c->nwatchers++;
    }
    if (pthread_create(&c->reconciler, NULL, reconcile_main, c) != 0) {
        snprintf(err, errlen, "starting the cluster reconciler failed");
        goto fail_threads;
    }
    c->reconciler_started = 1;
    cluster_log(c, 2, "cluster: running programs from %s, work dir %s",
                c->bin_dir, c->work_dir);
    *out = c;
    return 0;

fail_threads:
    cluster_stop(c);
    return -1;
fail:
    free_cluster(c);
    return -1;
}

void cluster_stop(cluster *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->mu);
    __atomic_store_n(&c->stopping, 1, __ATOMIC_SEQ_CST);
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (c->reconciler_started)
        pthread_join(c->reconciler, NULL);
    for (int i = 0; i < c->nwatchers; i++)
        pthread_join(c->watchers[i], NULL);
    cluster_proxy_free(c->proxy);
    cluster_kubelet_stop_all(c);
    dstate_sweep(c, 1);
    free_cluster(c);
}
