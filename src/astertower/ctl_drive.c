/*
 * ctl_drive: one reconcile pass over one Astro (see ctl_reconcile.h).
 *
 * A pass reads the Astro and its children from the caches into a
 * ctl_observed, lets ctl_phase decide (asking the engine what the
 * decision needs to know), creates what the decision asks for, and
 * writes the status when it changed. Everything a pass holds lives in
 * one struct pass and is released by pass_free(); cached objects it
 * borrows strings from are kept in p->hold until then.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_children.h"
#include "ctl_engine.h"
#include "ctl_int.h"
#include "ctl_names.h"
#include "ctl_status.h"
#include "log.h"
#include "wf.h"

typedef struct pass {
    ctl *c;
    const char *key;
    char ns[256];
    char name[256];
    cJSON *astro;            /* the Astro as last read or written */
    ctl_owner o;             /* points into astro */
    char label[CTL_NAME_BUF];
    wf_workflow *wf;         /* NULL when the spec is unusable */
    char *invalid;           /* why, or NULL */
    cJSON *status;           /* the status we start from */
    cJSON *hold;             /* cached objects obs borrows from */
    cJSON *pods;             /* cached pods of the namespace, in hold */
    ctl_star_obs *stars;
    ctl_observed obs;
    size_t available;        /* stars with an available Deployment */
    char *run_id;            /* set by a trigger in this pass */
    char *result;            /* a finished run's result document */
    size_t result_len;
    char *refused;           /* a create the server refused, why */
    int refused_engine;      /* ... and it was the engine's */
    int retry;               /* something failed that may pass later */
    char run_error[512];     /* why a finished run was unhealthy */
} pass;

/* Whose a child is, seen from the Astro of this pass. */
typedef enum child_state {
    CHILD_NONE = 0, /* absent */
    CHILD_OURS,     /* ours, of this generation */
    CHILD_STALE,    /* ours, of another generation: being replaced */
    CHILD_FOREIGN,  /* the name is taken by something else */
} child_state;

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
    o = cJSON_GetObjectItemCaseSensitive(o, a);
    if (b)
        o = cJSON_GetObjectItemCaseSensitive(o, b);
    return cJSON_GetStringValue(o);
}

/* "Deployment" for the deployments ref, and so on, for logs. */
static const char *kind_of(const kube_ref *r)
{
    if (r == &ctl_ref_deploys)
        return "Deployment";
    if (r == &ctl_ref_services)
        return "Service";
    if (r == &ctl_ref_configmaps)
        return "ConfigMap";
    if (r == &ctl_ref_pods)
        return "Pod";
    return r->resource;
}

static kube_ref ref_of(const kube_ref *tmpl, const char *ns,
                       const char *name)
{
    kube_ref r = *tmpl;

    r.ns = ns;
    r.name = name;
    return r;
}

/* Keeps obj alive until the pass ends and returns it (NULL stays NULL). */
static cJSON *held(pass *p, cJSON *obj)
{
    if (obj && !cJSON_AddItemToArray(p->hold, obj)) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

static long obj_generation_annotation(const cJSON *obj)
{
    const char *g = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "annotations"),
        CTL_ANN_GENERATION));

    return g ? strtol(g, NULL, 10) : -1;
}

static const char *controller_uid(const cJSON *obj)
{
    const cJSON *refs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "ownerReferences");
    const cJSON *r;

    cJSON_ArrayForEach(r, refs)
    {
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "controller")))
            return str_at(r, "uid", NULL);
    }
    return NULL;
}

static child_state state_of(const pass *p, const cJSON *obj)
{
    const char *uid;

    if (obj == NULL)
        return CHILD_NONE;
    uid = controller_uid(obj);
    if (uid == NULL || strcmp(uid, p->o.uid) != 0)
        return CHILD_FOREIGN;
    if (obj_generation_annotation(obj) != p->o.generation)
        return CHILD_STALE;
    return CHILD_OURS;
}

/* Reasons a container keeps failing that waiting will not cure. */
static int is_fatal_reason(const char *r)
{
    static const char *const fatal[] = {
        "ImagePullBackOff",    "ErrImagePull",
        "CrashLoopBackOff",    "InvalidImageName",
        "ErrImageNeverPull",   "CreateContainerConfigError",
        "CreateContainerError",
    };

    for (size_t k = 0; r && k < sizeof(fatal) / sizeof(fatal[0]); k++) {
        if (strcmp(r, fatal[k]) == 0)
            return 1;
    }
    return 0;
}

/* The first fatal waiting reason of a pod's containers, or NULL. */
static const char *pod_fatal(const cJSON *pod, const char **msg)
{
    const cJSON *cs = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(pod, "status"), "containerStatuses");
    const cJSON *s;

    cJSON_ArrayForEach(s, cs)
    {
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(s, "state"), "waiting");
        const char *r = str_at(w, "reason", NULL);

        if (is_fatal_reason(r)) {
            *msg = str_at(w, "message", NULL);
            return r;
        }
    }
    return NULL;
}

static int has_condition(const cJSON *obj, const char *type,
                         const char *status, const char *reason)
{
    const cJSON *conds = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "status"), "conditions");
    const cJSON *c;

    cJSON_ArrayForEach(c, conds)
    {
        const char *t = str_at(c, "type", NULL);
        const char *s = str_at(c, "status", NULL);
        const char *r = str_at(c, "reason", NULL);

        if (t && strcmp(t, type) == 0 && (!status || (s && !strcmp(s, status)))
            && (!reason || (r && !strcmp(r, reason))))
            return 1;
    }
    return 0;
}

static int deploy_available(const cJSON *d)
{
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(d, "status"), "availableReplicas");

    if (cJSON_IsNumber(n) && n->valuedouble >= 1)
        return 1;
    return has_condition(d, "Available", "True", NULL);
}

/* The fatal reason of a pod of star, searched in the namespace's pods. */
static const char *star_pod_fatal(const pass *p, const char *star,
                                  const char **msg)
{
    const cJSON *pod;

    cJSON_ArrayForEach(pod, p->pods)
    {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(pod, "metadata"), "labels");
        const char *a = str_at(l, CTL_LABEL_ASTRO, NULL);
        const char *s = str_at(l, CTL_LABEL_STAR, NULL);
        const char *r;

        if (!a || !s || strcmp(a, p->label) || strcmp(s, star))
            continue;
        if ((r = pod_fatal(pod, msg)) != NULL)
            return r;
    }
    return NULL;
}

static void observe_star(pass *p, size_t k)
{
    const wf_node *n = &p->wf->nodes[k];
    ctl_star_obs *s = &p->stars[k];
    char name[CTL_NAME_BUF];
    cJSON *d, *svc;
    child_state ds, ss;

    s->name = n->name;
    ctl_name_child(p->o.name, n->name, name);
    d = held(p, kinf_get(p->c->deploys, p->o.ns, name));
    svc = held(p, kinf_get(p->c->services, p->o.ns, name));
    ds = state_of(p, d);
    ss = state_of(p, svc);
    s->foreign = ds == CHILD_FOREIGN || ss == CHILD_FOREIGN;

    if (ds == CHILD_OURS) {
        s->has_deploy = 1;
        s->available = deploy_available(d);
        if (has_condition(d, "Progressing", "False",
                          "ProgressDeadlineExceeded"))
            s->deploy_fail = "ProgressDeadlineExceeded";
        s->pod_fail = star_pod_fatal(p, n->name, &s->pod_fail_msg);
    }
    if (ss == CHILD_OURS) {
        const char *ip = str_at(svc, "spec", "clusterIP");

        s->has_service = 1;
        s->cluster_ip = ip && strcmp(ip, "None") != 0 ? ip : NULL;
    }
    if (s->available)
        p->available++;
}

static void observe_engine(pass *p)
{
    char cm_name[CTL_NAME_BUF], pod_name[CTL_NAME_BUF];
    cJSON *cm, *pod;
    child_state cs, ps;
    ctl_observed *o = &p->obs;

    ctl_name_child(p->o.name, CTL_SUFFIX_DAG, cm_name);
    ctl_name_child(p->o.name, CTL_SUFFIX_ENGINE, pod_name);
    cm = held(p, kinf_get(p->c->configmaps, p->o.ns, cm_name));
    pod = held(p, kinf_get(p->c->pods, p->o.ns, pod_name));
    cs = state_of(p, cm);
    ps = state_of(p, pod);

    o->engine_foreign = cs == CHILD_FOREIGN || ps == CHILD_FOREIGN;
    o->has_configmap = cs == CHILD_OURS;
    o->has_pod = ps == CHILD_OURS;
    if (o->has_pod) {
        o->pod_phase = str_at(pod, "status", "phase");
        o->pod_ip = str_at(pod, "status", "podIP");
        o->pod_fail = pod_fatal(pod, &o->pod_fail_msg);
    }
}

/* Deletes obj (a child of ref's kind) unless it is already gone. */
static int delete_child(pass *p, const kube_ref *tmpl, const cJSON *obj)
{
    kube_ref r = ref_of(tmpl, kube_obj_ns(obj), kube_obj_name(obj));
    kube_delete_opts o = {"Background", kube_obj_uid(obj), NULL};
    kube_err e;

    if (kube_delete(p->c->k, &r, &o, NULL, &e) == 0) {
        log_msg(LOG_INFO, CTL_LOG, "astro %s: deleted %s %s", p->key,
                kind_of(tmpl), r.name);
        return 0;
    }
    if (e.code == 404 || e.code == 409)
        return 0;
    log_msg(LOG_WARN, CTL_LOG, "astro %s: cannot delete %s %s: %s; retrying",
            p->key, kind_of(tmpl), r.name, e.message);
    return -1;
}

/* True when child belongs to the current spec (its star still exists). */
static int wanted(const pass *p, const cJSON *obj)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels");
    const char *star = str_at(l, CTL_LABEL_STAR, NULL);

    if (obj_generation_annotation(obj) != p->o.generation)
        return 0;
    return star == NULL || (p->wf && wf_find(p->wf, star) >= 0);
}

/* Deletes our children of another generation or of removed stars. */
static void sweep(pass *p)
{
    struct {
        kinf *inf;
        const kube_ref *ref;
    } kinds[] = {{p->c->deploys, &ctl_ref_deploys},
                 {p->c->services, &ctl_ref_services},
                 {p->c->configmaps, &ctl_ref_configmaps},
                 {p->c->pods, &ctl_ref_pods}};

    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        cJSON *mine = kinf_by_owner(kinds[k].inf, p->o.uid), *obj;

        cJSON_ArrayForEach(obj, mine)
        {
            if (!wanted(p, obj) && delete_child(p, kinds[k].ref, obj) < 0)
                p->retry = 1;
        }
        cJSON_Delete(mine);
    }
}

/* Reads the spec into p->wf, or says in p->invalid why it cannot run. */
static void read_spec(pass *p)
{
    char *text = cJSON_PrintUnformatted(p->astro);
    wf_problems probs;

    wf_problems_init(&probs);
    if (text && wf_parse(text, strlen(text), NULL, &p->wf, &probs) < 0)
        p->invalid = wf_problems_format(&probs);
    wf_problems_free(&probs);
    free(text);
    if (p->invalid) {
        size_t n = strlen(p->invalid);

        if (n > 0 && p->invalid[n - 1] == '\n')
            p->invalid[n - 1] = '\0';
        return;
    }
    for (size_t k = 0; p->wf && k < p->wf->n_nodes; k++) {
        if (p->wf->nodes[k].type != WF_NODE_DOCKER &&
            asprintf(&p->invalid,
                     "spec.stars[%zu].type: only docker stars are run by "
                     "the controller",
                     k) >= 0)
            return;
    }
}

static void observe(pass *p)
{
    ctl_observed *o = &p->obs;

    o->phase = ctl_phase_parse(str_at(p->status, "phase", NULL));
    o->invalid = p->invalid;
    o->now = (long)time(NULL);
    o->init_time = ctl_cond_since(p->status, "Initialized", "True");
    o->waited_time = ctl_cond_since(p->status, "Deployed", "True");
    o->deploy_timeout_s = p->c->cfg.deploy_timeout_s;
    o->engine_timeout_s = p->c->cfg.engine_timeout_s;
    o->run_id = str_at(p->status, "astermuleRef", "runId");
    o->engine_errors = ctl_memo_get(p->c, p->key, CTL_MEMO_ERRORS);
    o->run_polls = ctl_memo_get(p->c, p->key, CTL_MEMO_POLLS);
    if (p->wf == NULL)
        return;

    p->pods = held(p, kinf_list(p->c->pods, p->o.ns));
    p->stars = calloc(p->wf->n_nodes, sizeof(*p->stars));
    if (p->stars == NULL) {
        p->retry = 1;
        return;
    }
    for (size_t k = 0; k < p->wf->n_nodes; k++)
        observe_star(p, k);
    o->stars = p->stars;
    o->n_stars = p->wf->n_nodes;
    observe_engine(p);
}

static void engine_failed_call(pass *p, const char *what, const char *err)
{
    p->obs.run = CTL_RUN_UNREACHABLE;
    p->obs.engine_errors++;
    ctl_memo_set(p->c, p->key, CTL_MEMO_ERRORS, p->obs.engine_errors);
    log_msg(LOG_WARN, CTL_LOG, "astro %s: engine %s failed (%d in a row): %s",
            p->key, what, p->obs.engine_errors, err);
}

static void answer_trigger(pass *p, const ctl_engine_addr *a)
{
    char key[128], err[512];

    snprintf(key, sizeof(key), "%s-%ld", p->o.uid, p->o.generation);
    free(p->run_id);
    p->run_id = NULL;
    if (ctl_engine_trigger(a, key, &p->run_id, err, sizeof(err)) < 0) {
        engine_failed_call(p, "trigger", err);
        return;
    }
    log_msg(LOG_INFO, CTL_LOG, "astro %s: run %s started with key %s",
            p->key, p->run_id, key);
    p->obs.run_id = p->run_id;
    p->obs.run = CTL_RUN_UNKNOWN;
    p->obs.engine_errors = 0;
    p->obs.run_polls = 0;
    ctl_memo_set(p->c, p->key, CTL_MEMO_ERRORS, 0);
    ctl_memo_set(p->c, p->key, CTL_MEMO_POLLS, 0);
}

static void answer_poll(pass *p, const ctl_engine_addr *a)
{
    char err[512];
    cJSON *res;
    int code;

    free(p->result);
    code = ctl_engine_poll(a, p->obs.run_id, &p->result, &p->result_len, err,
                           sizeof(err));
    if (code == 202 || code == 404 || code == 200) {
        p->obs.engine_errors = 0;
        ctl_memo_set(p->c, p->key, CTL_MEMO_ERRORS, 0);
    }
    switch (code) {
    case 202:
        p->obs.run = CTL_RUN_RUNNING;
        ctl_memo_set(p->c, p->key, CTL_MEMO_POLLS, ++p->obs.run_polls);
        return;
    case 404:
        log_msg(LOG_WARN, CTL_LOG,
                "astro %s: the engine does not know run %s; starting it "
                "again with the same key",
                p->key, p->obs.run_id);
        p->obs.run = CTL_RUN_LOST;
        return;
    case 200:
        res = held(p, cJSON_ParseWithLength(p->result, p->result_len));
        p->obs.run = CTL_RUN_DONE;
        p->obs.run_healthy = ctl_result_healthy(res);
        if (!p->obs.run_healthy) {
            ctl_result_why(res, p->run_error, sizeof(p->run_error));
            p->obs.run_error = p->run_error;
        }
        return;
    default:
        if (code > 0)
            snprintf(err, sizeof(err), "GET /runs/%s: HTTP %d",
                     p->obs.run_id, code);
        engine_failed_call(p, "poll", err);
    }
}

static void ask_engine(pass *p, ctl_need need)
{
    ctl_engine_addr a = {p->obs.pod_ip, p->c->cfg.engine_port,
                         p->c->cfg.engine_call_ms};
    char err[512];

    if (a.ip == NULL) {
        p->obs.run = CTL_RUN_UNREACHABLE;
        return;
    }
    switch (need) {
    case CTL_NEED_READYZ:
        p->obs.readyz = ctl_engine_readyz(&a, err, sizeof(err)) == 0
                            ? CTL_PROBE_OK
                            : CTL_PROBE_FAIL;
        if (p->obs.readyz == CTL_PROBE_FAIL)
            log_msg(LOG_DEBUG, CTL_LOG, "astro %s: engine not ready: %s",
                    p->key, err);
        break;
    case CTL_NEED_TRIGGER:
        answer_trigger(p, &a);
        break;
    case CTL_NEED_POLL:
        answer_poll(p, &a);
        break;
    default:
        break;
    }
}

/*
 * Creates obj (consumed) in ref's collection. An object that already
 * exists is fine: the cache had not caught up. A refusal (4xx other than
 * 409 and 429) is recorded in p->refused; other failures ask for a retry.
 */
static void create(pass *p, const kube_ref *tmpl, cJSON *obj, int engine)
{
    kube_ref r = ref_of(tmpl, p->o.ns, NULL);
    const char *name;
    kube_err e;

    if (obj == NULL) {
        p->retry = 1;
        return;
    }
    name = kube_obj_name(obj);
    if (kube_create(p->c->k, &r, obj, NULL, &e) == 0) {
        log_msg(LOG_INFO, CTL_LOG, "astro %s: created %s %s", p->key,
                kind_of(tmpl), name);
    } else if (e.code == 409) {
        log_msg(LOG_DEBUG, CTL_LOG, "astro %s: %s %s exists already", p->key,
                kind_of(tmpl), name);
    } else if (e.code >= 400 && e.code < 500 && e.code != 429) {
        log_msg(LOG_WARN, CTL_LOG, "astro %s: creating %s %s refused: %s",
                p->key, kind_of(tmpl), name, e.message);
        if (p->refused == NULL &&
            asprintf(&p->refused, "creating %s %s refused: %s",
                     kind_of(tmpl), name, e.message) < 0)
            p->refused = NULL;
        p->refused_engine = engine;
    } else {
        log_msg(LOG_WARN, CTL_LOG,
                "astro %s: cannot create %s %s: %s; retrying", p->key,
                kind_of(tmpl), name, e.message);
        p->retry = 1;
    }
    cJSON_Delete(obj);
}

static void create_stars(pass *p)
{
    const cJSON *secrets = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p->astro, "spec"),
        "imagePullSecrets");

    for (size_t k = 0; k < p->wf->n_nodes && !p->refused; k++) {
        const wf_node *n = &p->wf->nodes[k];

        if (!p->stars[k].has_deploy)
            create(p, &ctl_ref_deploys,
                   ctl_child_deployment(&p->o, n, secrets), 0);
        if (!p->stars[k].has_service && !p->refused)
            create(p, &ctl_ref_services, ctl_child_service(&p->o, n), 0);
    }
}

static void create_engine(pass *p)
{
    const cJSON *secrets = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p->astro, "spec"),
        "imagePullSecrets");
    char cm_name[CTL_NAME_BUF];
    ctl_addr *addrs;
    cJSON *dag;
    char *text;

    ctl_name_child(p->o.name, CTL_SUFFIX_DAG, cm_name);
    if (!p->obs.has_configmap) {
        addrs = calloc(p->wf->n_nodes, sizeof(*addrs));
        for (size_t k = 0; addrs && k < p->wf->n_nodes; k++) {
            addrs[k].ip = p->stars[k].cluster_ip;
            addrs[k].port = p->wf->nodes[k].port;
        }
        dag = addrs ? ctl_dag_build(p->wf, addrs) : NULL;
        text = dag ? cJSON_PrintUnformatted(dag) : NULL;
        if (text)
            create(p, &ctl_ref_configmaps, ctl_child_configmap(&p->o, text),
                   1);
        else
            p->retry = 1;
        free(text);
        cJSON_Delete(dag);
        free(addrs);
    }
    if (!p->obs.has_pod && !p->refused)
        create(p, &ctl_ref_pods,
               ctl_child_engine_pod(&p->o, p->c->cfg.engine_image, cm_name,
                                    secrets),
               1);
}

static void act(pass *p, ctl_decision *d)
{
    if (d->actions & CTL_ACT_CREATE_STARS)
        create_stars(p);
    if ((d->actions & CTL_ACT_CREATE_ENGINE) && !p->refused)
        create_engine(p);
    if (p->refused == NULL)
        return;

    d->phase = p->refused_engine ? CTL_PHASE_ENGINE_FAILED
                                 : CTL_PHASE_DEPLOY_FAILED;
    d->reason = "CreateRefused";
    snprintf(d->message, sizeof(d->message), "%s", p->refused);
    d->requeue_ms = 0;
}

/* status.deploymentRef and serviceRef from the observation. */
static int put_refs(pass *p, cJSON *st)
{
    cJSON *drefs = cJSON_CreateArray(), *srefs = cJSON_CreateArray();
    int rc = 0;

    for (size_t k = 0; p->wf && k < p->wf->n_nodes; k++) {
        const wf_node *n = &p->wf->nodes[k];
        cJSON *dr = cJSON_CreateObject(), *sr = cJSON_CreateObject();
        char name[CTL_NAME_BUF];

        ctl_name_child(p->o.name, n->name, name);
        cJSON_AddItemToArray(drefs, dr);
        cJSON_AddItemToArray(srefs, sr);
        rc |= !cJSON_AddStringToObject(dr, "star", n->name);
        rc |= !cJSON_AddStringToObject(dr, "name", name);
        rc |= !cJSON_AddStringToObject(sr, "star", n->name);
        rc |= !cJSON_AddStringToObject(sr, "name", name);
        if (p->stars[k].cluster_ip)
            rc |= !cJSON_AddStringToObject(sr, "clusterIP",
                                           p->stars[k].cluster_ip);
        rc |= !cJSON_AddNumberToObject(sr, "port", n->port);
    }
    rc |= ctl_json_put(st, "deploymentRef", drefs);
    rc |= ctl_json_put(st, "serviceRef", srefs);
    return rc ? -1 : 0;
}

/* status.astermuleRef, once the engine exists. */
static int put_engine_ref(pass *p, cJSON *st)
{
    cJSON *ref = cJSON_CreateObject();
    const char *run = p->run_id ? p->run_id : p->obs.run_id;
    char pod[CTL_NAME_BUF], cm[CTL_NAME_BUF];
    int rc = 0;

    ctl_name_child(p->o.name, CTL_SUFFIX_ENGINE, pod);
    ctl_name_child(p->o.name, CTL_SUFFIX_DAG, cm);
    rc |= !cJSON_AddStringToObject(ref, "pod", pod);
    rc |= !cJSON_AddStringToObject(ref, "configMap", cm);
    if (p->obs.pod_ip && *p->obs.pod_ip)
        rc |= !cJSON_AddStringToObject(ref, "podIP", p->obs.pod_ip);
    if (run && *run)
        rc |= !cJSON_AddStringToObject(ref, "runId", run);
    rc |= ctl_json_put(st, "astermuleRef", ref);
    return rc ? -1 : 0;
}

/* The stored result of a Wrong run the engine never finished. */
static int put_unreached_result(cJSON *st, const char *why)
{
    cJSON *r = cJSON_CreateObject();
    cJSON *h = cJSON_AddObjectToObject(r, "status");
    int rc = 0;

    rc |= !cJSON_AddBoolToObject(h, "health", 0);
    rc |= !cJSON_AddStringToObject(r, "error", why);
    rc |= ctl_json_put(st, "result", r);
    rc |= ctl_json_put(st, "resultTruncated", cJSON_CreateFalse());
    rc |= ctl_json_put(st, "resultSize", cJSON_CreateNumber(0));
    return rc ? -1 : 0;
}

static int engine_started(ctl_phase ph)
{
    return ph == CTL_PHASE_WAITED || ph == CTL_PHASE_READY ||
           ph == CTL_PHASE_SUCCESS || ph == CTL_PHASE_WRONG ||
           ph == CTL_PHASE_ENGINE_FAILED;
}

/* The status after this pass, from p->status and the decision. */
static cJSON *next_status(pass *p, const ctl_decision *d)
{
    cJSON *st = cJSON_Duplicate(p->status, 1);
    const cJSON *stars = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(p->astro, "spec"), "stars");
    size_t n = p->wf ? p->wf->n_nodes : (size_t)cJSON_GetArraySize(stars);
    int rc = st ? 0 : -1;

    if (st && d->phase != p->obs.phase)
        rc |= ctl_status_enter(st, d->phase, d->reason, d->message,
                               p->obs.now, p->o.generation);
    rc |= ctl_json_put(st, "nodeNumber", cJSON_CreateNumber((double)n));
    rc |= ctl_json_put(st, "readyNodeNumber",
                       cJSON_CreateNumber((double)p->available));
    rc |= ctl_json_put(st, "observedGeneration",
                       cJSON_CreateNumber((double)p->o.generation));
    if (p->wf)
        rc |= put_refs(p, st);
    if (p->wf && engine_started(d->phase))
        rc |= put_engine_ref(p, st);

    if (d->phase == CTL_PHASE_SUCCESS || d->phase == CTL_PHASE_WRONG) {
        if (p->obs.run == CTL_RUN_DONE && p->result)
            rc |= ctl_status_set_result(st, p->result, p->result_len,
                                        p->c->cfg.max_result_bytes);
        else if (d->phase != p->obs.phase)
            rc |= put_unreached_result(st, d->message);
    }
    if (rc) {
        cJSON_Delete(st);
        return NULL;
    }
    return st;
}

/* A copy of astro with status replaced by st (borrowed). */
static cJSON *with_status(const cJSON *astro, const cJSON *st)
{
    cJSON *obj = cJSON_Duplicate(astro, 1);

    if (obj && ctl_json_put(obj, "status", cJSON_Duplicate(st, 1)) < 0) {
        cJSON_Delete(obj);
        return NULL;
    }
    return obj;
}

/* Whether a and b hold the same status (both none counts as same). */
static int same_status(const cJSON *a, const cJSON *b)
{
    const cJSON *sa = cJSON_GetObjectItemCaseSensitive(a, "status");
    const cJSON *sb = cJSON_GetObjectItemCaseSensitive(b, "status");

    if (sa == NULL || sb == NULL)
        return sa == sb;
    return cJSON_Compare(sa, sb, 1);
}

/*
 * Writes st as the Astro's status. A 409 is retried on a fresh read of
 * the Astro when only its metadata moved. When its generation or its
 * status moved, st was decided on a stale copy (the cache lagging behind
 * another pass's write): the pass is repeated instead, so a transition
 * is neither written nor announced twice. Returns 0, or -1 to retry the
 * pass.
 */
static int write_status(pass *p, const cJSON *st)
{
    kube_ref r = ref_of(&ctl_ref_astros, p->o.ns, p->o.name);
    kube_err e = {0};

    for (int tries = 0; tries < 5; tries++) {
        cJSON *obj = with_status(p->astro, st), *out = NULL, *fresh = NULL;
        ctl_owner fo;
        int rc;

        if (obj == NULL)
            return -1;
        rc = kube_update_status(p->c->k, &r, obj, &out, &e);
        cJSON_Delete(obj);
        if (rc == 0) {
            cJSON_Delete(out);
            return 0;
        }
        if (!kube_err_conflict(&e))
            break;
        if (kube_get(p->c->k, &r, &fresh, &e) < 0)
            break;
        if (ctl_owner_from(fresh, &fo) < 0 ||
            fo.generation != p->o.generation ||
            strcmp(fo.uid, p->o.uid) != 0 ||
            !same_status(fresh, p->astro)) {
            cJSON_Delete(fresh);
            log_msg(LOG_INFO, CTL_LOG,
                    "astro %s: changed while writing status; starting "
                    "the pass again", p->key);
            return -1;
        }
        log_msg(LOG_INFO, CTL_LOG,
                "astro %s: status write met a conflict; retrying on a "
                "fresh read (resourceVersion %s)", p->key,
                kube_obj_rv(fresh) ? kube_obj_rv(fresh) : "?");
        held(p, p->astro);
        p->astro = fresh;
        ctl_owner_from(p->astro, &p->o);
    }
    log_msg(LOG_WARN, CTL_LOG, "astro %s: cannot write status: %s; retrying",
            p->key, e.message);
    return -1;
}

static int has_finalizer(const cJSON *astro)
{
    const cJSON *fins = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(astro, "metadata"), "finalizers");
    const cJSON *f;

    cJSON_ArrayForEach(f, fins)
    {
        if (cJSON_IsString(f) && strcmp(f->valuestring, CTL_FINALIZER) == 0)
            return 1;
    }
    return 0;
}

/* {"metadata":{"finalizers":[...],"resourceVersion":rv}}, ours in or out. */
static cJSON *finalizer_patch(const cJSON *astro, int add)
{
    const cJSON *fins = cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(astro, "metadata"), "finalizers");
    cJSON *patch = cJSON_CreateObject();
    cJSON *meta = cJSON_AddObjectToObject(patch, "metadata");
    cJSON *list = cJSON_AddArrayToObject(meta, "finalizers");
    const cJSON *f;
    int rc = list ? 0 : -1;

    cJSON_ArrayForEach(f, fins)
    {
        if (cJSON_IsString(f) && strcmp(f->valuestring, CTL_FINALIZER) != 0)
            rc |= !cJSON_AddItemToArray(list,
                                        cJSON_CreateString(f->valuestring));
    }
    if (add)
        rc |= !cJSON_AddItemToArray(list, cJSON_CreateString(CTL_FINALIZER));
    rc |= !cJSON_AddStringToObject(meta, "resourceVersion",
                                   kube_obj_rv(astro) ? kube_obj_rv(astro)
                                                      : "");
    if (rc) {
        cJSON_Delete(patch);
        return NULL;
    }
    return patch;
}

/*
 * Adds or removes our finalizer with a merge patch that carries the
 * resourceVersion; a 409 is retried on a fresh read. p->astro becomes
 * the patched object. Returns 0 (also when the Astro is gone), or -1.
 */
static int set_finalizer(pass *p, int add)
{
    kube_ref r = ref_of(&ctl_ref_astros, p->o.ns, p->o.name);
    kube_err e = {0};

    for (int tries = 0; tries < 5; tries++) {
        cJSON *patch, *out = NULL;
        int rc;

        if (has_finalizer(p->astro) == add)
            return 0;
        patch = finalizer_patch(p->astro, add);
        if (patch == NULL)
            return -1;
        rc = kube_patch(p->c->k, &r, KUBE_PATCH_MERGE, patch, NULL, 0, &out,
                        &e);
        cJSON_Delete(patch);
        if (rc == 0 || kube_err_conflict(&e)) {
            if (rc != 0 && kube_get(p->c->k, &r, &out, &e) < 0)
                return kube_err_not_found(&e) ? 0 : -1;
            held(p, p->astro);
            p->astro = out;
            if (ctl_owner_from(p->astro, &p->o) < 0)
                return -1;
            continue;
        }
        if (kube_err_not_found(&e))
            return 0;
        break;
    }
    log_msg(LOG_WARN, CTL_LOG, "astro %s: cannot %s the finalizer: %s",
            p->key, add ? "add" : "remove", e.message);
    return -1;
}

/*
 * The Astro is being deleted: delete every child it controls (listed
 * from the server, not the cache, so a child created just before is not
 * missed), then let it go by removing the finalizer.
 */
static int finalize(pass *p)
{
    const kube_ref *kinds[] = {&ctl_ref_pods, &ctl_ref_configmaps,
                               &ctl_ref_services, &ctl_ref_deploys};
    char sel[CTL_NAME_BUF + 128];
    int deleted = 0, failed = 0;

    if (!has_finalizer(p->astro))
        return 0;
    snprintf(sel, sizeof(sel), "%s=%s,%s", CTL_LABEL_ASTRO, p->label,
             CTL_SELECTOR_MANAGED);
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        kube_ref r = ref_of(kinds[k], p->o.ns, NULL);
        kube_list_opts lo = {sel, NULL, NULL, 0};
        cJSON *list = NULL;
        const cJSON *obj;
        kube_err e;

        if (kube_list(p->c->k, &r, &lo, &list, &e) < 0) {
            log_msg(LOG_WARN, CTL_LOG, "astro %s: cannot list %ss: %s",
                    p->key, kind_of(kinds[k]), e.message);
            failed++;
            continue;
        }
        cJSON_ArrayForEach(obj, cJSON_GetObjectItemCaseSensitive(list,
                                                                 "items"))
        {
            const char *uid = controller_uid(obj);

            if (uid == NULL || strcmp(uid, p->o.uid) != 0)
                continue;
            if (delete_child(p, kinds[k], obj) < 0)
                failed++;
            else
                deleted++;
        }
        cJSON_Delete(list);
    }
    if (failed)
        return -1;
    if (set_finalizer(p, 0) < 0)
        return -1;
    log_msg(LOG_INFO, CTL_LOG,
            "astro %s: being deleted; %d children deleted, finalizer "
            "removed", p->key, deleted);
    ctl_memo_drop(p->c, p->key);
    return 0;
}

static const char *shown(ctl_phase ph)
{
    return ph == CTL_PHASE_NONE ? "Pending" : ctl_phase_name(ph);
}

/* Logs a transition and records its Event. */
static void announce(pass *p, const ctl_decision *d)
{
    kube_err e;
    const char *type =
        ctl_phase_failed(d->phase) ? KEVENT_WARNING : KEVENT_NORMAL;

    log_msg(ctl_phase_failed(d->phase) ? LOG_WARN : LOG_INFO, CTL_LOG,
            "astro %s: %s -> %s (%s)", p->key, shown(p->obs.phase),
            shown(d->phase), d->message);
    ctl_metrics_transition(&p->c->metrics, d->phase);
    if (kevent_record(p->c->ev, p->astro, type, d->reason, d->message, &e) <
        0)
        log_msg(LOG_WARN, CTL_LOG, "astro %s: cannot record the %s event: %s",
                p->key, d->reason, e.message);
}

/* Starts from an empty status when the spec is not the one observed. */
static void take_status(pass *p)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(p->astro, "status");
    const cJSON *og = cJSON_GetObjectItemCaseSensitive(st,
                                                       "observedGeneration");
    long seen = cJSON_IsNumber(og) ? (long)og->valuedouble : 0;

    if (seen == p->o.generation && cJSON_IsObject(st)) {
        p->status = cJSON_Duplicate(st, 1);
        return;
    }
    if (seen != 0)
        log_msg(LOG_INFO, CTL_LOG,
                "astro %s: spec changed (generation %ld, was %ld); "
                "starting over", p->key, p->o.generation, seen);
    ctl_memo_drop(p->c, p->key);
    p->status = cJSON_CreateObject();
}

/* Decides, asking the engine what the decision needs, at most 4 times. */
static void decide(pass *p, ctl_decision *d)
{
    ctl_phase_decide(&p->obs, d);
    for (int n = 0; n < 4 && d->need != CTL_NEED_NOTHING &&
                    d->phase == p->obs.phase;
         n++) {
        ask_engine(p, d->need);
        ctl_phase_decide(&p->obs, d);
    }
}

static int drive(pass *p)
{
    ctl_decision d;
    cJSON *next;
    int rc;

    if (set_finalizer(p, 1) < 0)
        return -1;
    take_status(p);
    if (p->status == NULL)
        return -1;
    read_spec(p);
    if (ctl_phase_final(ctl_phase_parse(str_at(p->status, "phase", NULL))))
        return 0;

    sweep(p);
    observe(p);
    if (p->retry)
        return -1;
    decide(p, &d);
    act(p, &d);

    next = next_status(p, &d);
    if (next == NULL)
        return -1;
    rc = 0;
    if (!cJSON_Compare(next, p->status, 1))
        rc = write_status(p, next);
    cJSON_Delete(next);
    if (rc < 0)
        return -1;
    if (d.phase != p->obs.phase)
        announce(p, &d);
    if (d.requeue_ms > 0)
        kq_add_after(p->c->q, p->key, d.requeue_ms);
    return p->retry ? -1 : 0;
}

static void pass_free(pass *p)
{
    cJSON_Delete(p->astro);
    cJSON_Delete(p->status);
    cJSON_Delete(p->hold);
    wf_free(p->wf);
    free(p->invalid);
    free(p->stars);
    free(p->run_id);
    free(p->result);
    free(p->refused);
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t1;

    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) +
           (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

int ctl_reconcile_key(ctl *c, const char *key)
{
    const char *slash = strchr(key, '/');
    struct timespec t0;
    pass p;
    int rc = 0;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    memset(&p, 0, sizeof(p));
    p.c = c;
    p.key = key;
    if (slash == NULL || (size_t)(slash - key) >= sizeof(p.ns) ||
        strlen(slash + 1) >= sizeof(p.name))
        return 0;
    memcpy(p.ns, key, (size_t)(slash - key));
    snprintf(p.name, sizeof(p.name), "%s", slash + 1);

    p.astro = kinf_get(c->astros, p.ns, p.name);
    p.hold = cJSON_CreateArray();
    if (p.astro == NULL || p.hold == NULL) {
        ctl_memo_drop(c, key);
        goto done;
    }
    if (ctl_owner_from(p.astro, &p.o) < 0)
        goto done;
    ctl_label_value(p.o.name, p.label);

    if (cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(p.astro, "metadata"),
            "deletionTimestamp"))
        rc = finalize(&p);
    else
        rc = drive(&p);

done:
    pass_free(&p);
    ctl_metrics_observe(&c->metrics, seconds_since(&t0), rc != 0);
    return rc;
}
