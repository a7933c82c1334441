/*
 * ctl_reconcile: the controller's machinery - informers, the handlers
 * that turn child events into Astro keys, the work queue and its
 * workers, per-Astro memory and metrics (see ctl_reconcile.h). The pass
 * itself is in ctl_drive.c.
 */
#define _GNU_SOURCE
#include "ctl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl_children.h"
#include "ctl_names.h"
#include "log.h"

const kube_ref ctl_ref_astros = {CTL_API_GROUP, CTL_API_VERSION, "astros",
                                 NULL, NULL, NULL};
const kube_ref ctl_ref_deploys = {"apps", "v1", "deployments",
                                  NULL, NULL, NULL};
const kube_ref ctl_ref_services = {"", "v1", "services", NULL, NULL, NULL};
const kube_ref ctl_ref_pods = {"", "v1", "pods", NULL, NULL, NULL};
const kube_ref ctl_ref_configmaps = {"", "v1", "configmaps",
                                     NULL, NULL, NULL};

static void enqueue(ctl *c, const char *ns, const char *name)
{
    char key[512];

    if (ns == NULL || name == NULL)
        return;
    snprintf(key, sizeof(key), "%s/%s", ns, name);
    kq_add(c->q, key);
}

static void on_astro(const cJSON *obj, void *ud)
{
    enqueue(ud, kube_obj_ns(obj), kube_obj_name(obj));
}

static void on_astro_update(const cJSON *old_obj, const cJSON *obj, void *ud)
{
    on_astro(obj, ud);
}

/* The name of the Astro that controls obj, from its ownerReference. */
static const char *owner_astro(const cJSON *obj)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(obj, "metadata");
    const cJSON *refs =
        cJSON_GetObjectItemCaseSensitive(meta, "ownerReferences");
    const cJSON *r;

    cJSON_ArrayForEach(r, refs)
    {
        const char *kind = cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(r, "kind"));

        if (kind && strcmp(kind, CTL_KIND) == 0 &&
            cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "controller")))
            return cJSON_GetStringValue(
                cJSON_GetObjectItemCaseSensitive(r, "name"));
    }
    return NULL;
}

/* True when a label value ends in "-" and 8 hex digits (ctl_names.h). */
static int looks_hashed(const char *v)
{
    size_t n = strlen(v);

    if (n < 10 || v[n - 9] != '-')
        return 0;
    for (size_t k = n - 8; k < n; k++) {
        if (strchr("0123456789abcdef", v[k]) == NULL)
            return 0;
    }
    return 1;
}

/*
 * A pod of a star's Deployment is owned by the Deployment, so its Astro
 * comes from the Astro label. A long or odd Astro name was hashed into
 * that label, so then the cached Astros of the namespace are searched.
 */
static void enqueue_by_label(ctl *c, const cJSON *obj)
{
    const char *ns = kube_obj_ns(obj);
    const char *label = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
        cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(obj, "metadata"), "labels"),
        CTL_LABEL_ASTRO));
    cJSON *all, *a;

    if (label == NULL || ns == NULL)
        return;
    enqueue(c, ns, label);
    if (!looks_hashed(label))
        return;
    all = kinf_list(c->astros, ns);
    cJSON_ArrayForEach(a, all)
    {
        char value[CTL_NAME_BUF];

        ctl_label_value(kube_obj_name(a), value);
        if (strcmp(value, label) == 0)
            enqueue(c, ns, kube_obj_name(a));
    }
    cJSON_Delete(all);
}

static void on_child(const cJSON *obj, void *ud)
{
    ctl *c = ud;
    const char *astro = owner_astro(obj);

    if (astro)
        enqueue(c, kube_obj_ns(obj), astro);
    else
        enqueue_by_label(c, obj);
}

static void on_child_update(const cJSON *old_obj, const cJSON *obj, void *ud)
{
    on_child(obj, ud);
}

static int on_key(const char *key, void *ud)
{
    return ctl_reconcile_key(ud, key);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

int ctl_new(kube *k, const ctl_config *cfg, ctl **out, char *err,
            size_t errlen)
{
    kq_config qc = {.base_delay_ms = 50, .max_delay_ms = 30000,
                    .qps = 50, .burst = 200};
    kevent_config ec = {.component = "astertower"};
    ctl *c = calloc(1, sizeof(*c));

    *out = NULL;
    if (c == NULL)
        goto oom;
    c->k = k;
    c->cfg = *cfg;
    c->engine_image = strdup(cfg->engine_image ? cfg->engine_image
                                               : CTL_DEFAULT_ENGINE_IMAGE);
    c->ns = dup_or_null(cfg->ns);
    c->cfg.engine_image = c->engine_image;
    c->cfg.ns = c->ns;
    if (!c->cfg.deploy_timeout_s)
        c->cfg.deploy_timeout_s = CTL_DEFAULT_DEPLOY_TIMEOUT_S;
    if (!c->cfg.engine_timeout_s)
        c->cfg.engine_timeout_s = CTL_DEFAULT_ENGINE_TIMEOUT_S;
    if (!c->cfg.max_result_bytes)
        c->cfg.max_result_bytes = CTL_DEFAULT_MAX_RESULT;
    if (!c->cfg.engine_call_ms)
        c->cfg.engine_call_ms = 2000;
    if (!c->cfg.engine_port)
        c->cfg.engine_port = 8080;
    if (c->cfg.workers <= 0)
        c->cfg.workers = 2;
    ctl_metrics_init(&c->metrics);
    pthread_mutex_init(&c->memo_lock, NULL);

    c->q = kq_new(&qc);
    c->ev = kevent_new(k, &ec);
    if (c->engine_image == NULL || (cfg->ns && c->ns == NULL) ||
        c->q == NULL || c->ev == NULL)
        goto oom;
    *out = c;
    return 0;

oom:
    ctl_free(c);
    snprintf(err, errlen, "out of memory making the controller");
    return -1;
}

/* Makes and starts one informer over ref. */
static int start_one(ctl *c, const kube_ref *ref, const char *selector,
                     const kinf_handlers *h, kinf **out, char *err,
                     size_t errlen)
{
    kinf_config kc = {0};

    kc.group = ref->group;
    kc.version = ref->version;
    kc.resource = ref->resource;
    kc.ns = c->ns;
    kc.label_selector = selector;
    if (kinf_new(c->k, &kc, h, out, err, errlen) < 0)
        return -1;
    if (kinf_start(*out) < 0) {
        snprintf(err, errlen, "cannot start the %s informer", ref->resource);
        return -1;
    }
    return 0;
}

int ctl_start_informers(ctl *c, char *err, size_t errlen)
{
    kinf_handlers ha = {on_astro, on_astro_update, on_astro, c};
    kinf_handlers hc = {on_child, on_child_update, on_child, c};

    if (start_one(c, &ctl_ref_astros, NULL, &ha, &c->astros, err, errlen) ||
        start_one(c, &ctl_ref_deploys, CTL_SELECTOR_MANAGED, &hc,
                  &c->deploys, err, errlen) ||
        start_one(c, &ctl_ref_services, CTL_SELECTOR_MANAGED, &hc,
                  &c->services, err, errlen) ||
        start_one(c, &ctl_ref_pods, CTL_SELECTOR_MANAGED, &hc, &c->pods,
                  err, errlen) ||
        start_one(c, &ctl_ref_configmaps, CTL_SELECTOR_MANAGED, &hc,
                  &c->configmaps, err, errlen))
        return -1;
    return 0;
}

int ctl_synced(ctl *c)
{
    return c->astros && kinf_synced(c->astros) && kinf_synced(c->deploys) &&
           kinf_synced(c->services) && kinf_synced(c->pods) &&
           kinf_synced(c->configmaps);
}

int ctl_wait_synced(ctl *c, long timeout_ms)
{
    kinf *all[5] = {c->astros, c->deploys, c->services, c->pods,
                    c->configmaps};

    for (int k = 0; k < 5; k++) {
        if (all[k] == NULL || !kinf_wait_synced(all[k], timeout_ms))
            return 0;
    }
    return 1;
}

int ctl_start_workers(ctl *c)
{
    cJSON *all, *a;

    if (c->working)
        return 0;
    if (kq_run(c->q, c->cfg.workers, on_key, c) < 0)
        return -1;
    c->working = 1;

    all = kinf_list(c->astros, NULL);
    cJSON_ArrayForEach(a, all)
        enqueue(c, kube_obj_ns(a), kube_obj_name(a));
    cJSON_Delete(all);
    return 0;
}

int ctl_working(ctl *c)
{
    return c->working;
}

char *ctl_metrics_text(ctl *c)
{
    long per_phase[CTL_PHASE_COUNT] = {0};
    cJSON *all = c->astros ? kinf_list(c->astros, NULL) : NULL;
    cJSON *a;
    char *text;

    cJSON_ArrayForEach(a, all)
    {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(a, "status");

        per_phase[ctl_phase_parse(cJSON_GetStringValue(
            cJSON_GetObjectItemCaseSensitive(st, "phase")))]++;
    }
    cJSON_Delete(all);
    text = ctl_metrics_render(&c->metrics, kq_len(c->q), per_phase);
    return text;
}

int ctl_memo_get(ctl *c, const char *key, ctl_memo_field f)
{
    int n = 0;

    pthread_mutex_lock(&c->memo_lock);
    for (ctl_memo *m = c->memos; m; m = m->next) {
        if (strcmp(m->key, key) == 0) {
            n = m->v[f];
            break;
        }
    }
    pthread_mutex_unlock(&c->memo_lock);
    return n;
}

void ctl_memo_set(ctl *c, const char *key, ctl_memo_field f, int n)
{
    ctl_memo *m;

    pthread_mutex_lock(&c->memo_lock);
    for (m = c->memos; m; m = m->next) {
        if (strcmp(m->key, key) == 0)
            break;
    }
    if (m == NULL && n != 0) {
        m = calloc(1, sizeof(*m));
        if (m && (m->key = strdup(key)) != NULL) {
            m->next = c->memos;
            c->memos = m;
        } else {
            free(m);
            m = NULL;
        }
    }
    if (m)
        m->v[f] = n;
    pthread_mutex_unlock(&c->memo_lock);
}

void ctl_memo_drop(ctl *c, const char *key)
{
    pthread_mutex_lock(&c->memo_lock);
    for (ctl_memo **p = &c->memos; *p; p = &(*p)->next) {
        if (strcmp((*p)->key, key) == 0) {
            ctl_memo *m = *p;

            *p = m->next;
            free(m->key);
            free(m);
            break;
        }
    }
    pthread_mutex_unlock(&c->memo_lock);
}

void ctl_stop(ctl *c)
{
    kinf *all[5] = {c->astros, c->deploys, c->services, c->pods,
                    c->configmaps};

    if (c->q)
        kq_shutdown(c->q, 0);
    for (int k = 0; k < 5; k++) {
        if (all[k])
            kinf_stop(all[k]);
    }
}

void ctl_free(ctl *c)
{
    kinf *all[5];

    if (c == NULL)
        return;
    ctl_stop(c);
    all[0] = c->astros;
    all[1] = c->deploys;
    all[2] = c->services;
    all[3] = c->pods;
    all[4] = c->configmaps;
    for (int k = 0; k < 5; k++)
        kinf_free(all[k]);
    kq_free(c->q);
    kevent_free(c->ev);
    while (c->memos) {
        ctl_memo *m = c->memos;

        c->memos = m->next;
        free(m->key);
        free(m);
    }
    pthread_mutex_destroy(&c->memo_lock);
    ctl_metrics_destroy(&c->metrics);
    free(c->engine_image);
    free(c->ns);
    free(c);
}
