/*
 * kevent: a first Event is created with count 1, a repeat of the same
 * (object, type, reason, message) bumps count on the same Event, a new
 * message starts a new one, and a deleted Event is created anew. Against
 * the sim with injected 500s and 429s every record lands exactly once; a
 * second recorder (a restarted controller) continues the first one's
 * count. Against a scripted fake server: a create whose answer was lost
 * and whose retry meets 409 counts as recorded, a failed count patch is
 * retried, transient failures are given up after the configured retries,
 * and a 4xx is not retried.
 */
#define _GNU_SOURCE
#include <microhttpd.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "apisrv.h"
#include "kevent.h"
#include "log.h"

typedef struct env {
    apisrv *srv;
    kcfg *cfg;
    kube *k;
    char path[64];
} env;

static int setup(void **state)
{
    apisrv_config sc = {0};
    env *v = calloc(1, sizeof(*v));
    char err[512];

    log_set_level(LOG_ERROR);
    if (apisrv_start(&sc, &v->srv, err, sizeof(err)) < 0)
        fail_msg("apisrv_start: %s", err);
    snprintf(v->path, sizeof(v->path), "/tmp/test_kevent.%d.cfg",
             getpid());
    if (apisrv_write_kubeconfig(v->srv, v->path, err, sizeof(err)) < 0 ||
        kcfg_load(v->path, NULL, &v->cfg, err, sizeof(err)) < 0 ||
        kube_new(v->cfg, NULL, &v->k, err, sizeof(err)) < 0)
        fail_msg("client setup: %s", err);
    *state = v;
    return 0;
}

static int teardown(void **state)
{
    env *v = *state;

    kube_free(v->k);
    kcfg_free(v->cfg);
    apisrv_stop(v->srv);
    unlink(v->path);
    free(v);
    return 0;
}

static cJSON *events(env *v)
{
    kube_ref r = {"", "v1", "events", "team", NULL, NULL};
    kube_list_opts o = {NULL, "involvedObject.name=w1", NULL, 0};
    cJSON *list = NULL, *items;
    kube_err e;

    assert_int_equal(kube_list(v->k, &r, &o, &list, &e), 0);
    items = cJSON_DetachItemFromObject(list, "items");
    cJSON_Delete(list);
    return items;
}

static int num(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItem(o, k)->valueint;
}

static const char *str(const cJSON *o, const char *k)
{
    return cJSON_GetObjectItem(o, k)->valuestring;
}

static void test_create_then_repeat(void **state)
{
    env *v = *state;
    kube_ref ns = {"", "v1", "namespaces", NULL, NULL, NULL};
    cJSON *nso = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                             "\"metadata\":{\"name\":\"team\"}}");
    cJSON *obj = cJSON_Parse(
        "{\"apiVersion\":\"example.com/v1\",\"kind\":\"Astro\","
        "\"metadata\":{\"name\":\"w1\",\"namespace\":\"team\","
        "\"uid\":\"u-1\",\"resourceVersion\":\"5\"}}");
    kevent_config c = {.component = "astertower", .instance = "host-a"};
    kevent *ev;
    cJSON *items, *it;
    kube_err e;
    const char *name;

    assert_int_equal(kube_create(v->k, &ns, nso, NULL, &e), 0);
    cJSON_Delete(nso);
    ev = kevent_new(v->k, &c);
    assert_int_equal(kevent_record(ev, obj, KEVENT_NORMAL, "Reconciled",
                                   "created 3 pods", &e), 0);
    items = events(v);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    it = items->child;
    name = kube_obj_name(it);
    assert_int_equal(strncmp(name, "w1.", 3), 0);
    assert_int_equal(strlen(name), 3 + 16);
    assert_int_equal(strspn(name + 3, "0123456789abcdef"), 16);
    assert_int_equal(num(it, "count"), 1);
    assert_string_equal(str(it, "type"), "Normal");
    assert_string_equal(str(it, "reportingComponent"), "astertower");
    assert_string_equal(str(cJSON_GetObjectItem(it, "involvedObject"),
                            "uid"), "u-1");
    assert_string_equal(str(cJSON_GetObjectItem(it, "involvedObject"),
                            "kind"), "Astro");
    cJSON_Delete(items);

    for (int i = 0; i < 3; i++)
        assert_int_equal(kevent_recordf(ev, obj, KEVENT_NORMAL,
                                        "Reconciled", &e, "created %d pods",
                                        3), 0);
    assert_int_equal(kevent_record(ev, obj, KEVENT_WARNING, "Failed",
                                   "image pull", NULL), 0);
    items = events(v);
    assert_int_equal(cJSON_GetArraySize(items), 2);
    cJSON_ArrayForEach(it, items) {
        if (!strcmp(str(it, "reason"), "Reconciled"))
            assert_int_equal(num(it, "count"), 4);
        else
            assert_string_equal(str(it, "type"), "Warning");
    }

    /* The Event was deleted (expired): a repeat creates a new one. */
    cJSON_ArrayForEach(it, items) {
        kube_ref r = {"", "v1", "events", "team", kube_obj_name(it), NULL};

        assert_int_equal(kube_delete(v->k, &r, NULL, NULL, &e), 0);
    }
    cJSON_Delete(items);
    assert_int_equal(kevent_record(ev, obj, KEVENT_NORMAL, "Reconciled",
                                   "created 3 pods", &e), 0);
    items = events(v);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_int_equal(num(items->child, "count"), 1);
    cJSON_Delete(items);

    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(obj, "metadata"),
                               "name");
    assert_int_equal(kevent_record(ev, obj, KEVENT_NORMAL, "X", "y", &e),
                     -1);
    assert_non_null(strstr(e.message, "no name"));
    kevent_free(ev);
    cJSON_Delete(obj);
}

static cJSON *astro_w1(void)
{
    return cJSON_Parse("{\"apiVersion\":\"example.com/v1\","
                       "\"kind\":\"Astro\",\"metadata\":{\"name\":"
                       "\"w1\",\"namespace\":\"team\",\"uid\":\"u-1\"}}");
}

static void make_team(env *v)
{
    kube_ref ns = {"", "v1", "namespaces", NULL, NULL, NULL};
    cJSON *nso = cJSON_Parse("{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
                             "\"metadata\":{\"name\":\"team\"}}");
    kube_err e;

    assert_int_equal(kube_create(v->k, &ns, nso, NULL, &e), 0);
    cJSON_Delete(nso);
}

/*
 * A client that does not retry by itself, so that every injected fault
 * reaches kevent.
 */
static kube *bare_client(env *v)
{
    kube_config kc = {.retries = -1};
    kube *k = NULL;
    char err[256];

    if (kube_new(v->cfg, &kc, &k, err, sizeof(err)) < 0)
        fail_msg("kube_new: %s", err);
    return k;
}

/*
 * 20 series, each recorded twice, under the given fault and a 409 for
 * the first patch of each Event.
 */
static void record_under(env *v, int permille, int code, const char *tag)
{
    kevent_config c = {.retries = 14, .retry_base_ms = 1};
    apisrv_faults f = {.error_permille = permille, .error_code = code,
                       .retry_after = 1, .conflict_first_update = 1};
    apisrv_faults none = {0};
    kube *k = bare_client(v);
    kevent *ev = kevent_new(k, &c);
    cJSON *obj = astro_w1(), *items, *it;
    kube_err e;
    int ours = 0;

    apisrv_set_faults(v->srv, &f);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < 20; i++)
            if (kevent_recordf(ev, obj, KEVENT_NORMAL, "Step", &e,
                               "%s %d", tag, i) < 0)
                fail_msg("%s %d, round %d: %d %s", tag, i, round, e.code,
                         e.message);
    apisrv_set_faults(v->srv, &none);

    items = events(v);
    cJSON_ArrayForEach(it, items) {
        if (strncmp(str(it, "message"), tag, strlen(tag)) != 0)
            continue;
        ours++;
        assert_int_equal(num(it, "count"), 2);
    }
    assert_int_equal(ours, 20);
    cJSON_Delete(items);
    cJSON_Delete(obj);
    kevent_free(ev);
    kube_free(k);
}

static void test_survives_faults(void **state)
{
    env *v = *state;

    make_team(v);
    record_under(v, 300, 500, "five hundred");
    record_under(v, 300, 429, "throttled");
}

/* A restarted recorder finds the Event of the same series by its name. */
static void test_second_recorder_continues(void **state)
{
    env *v = *state;
    cJSON *obj = astro_w1(), *items;
    kevent *a = kevent_new(v->k, NULL), *b = kevent_new(v->k, NULL);
    kube_err e;

    make_team(v);
    for (int i = 0; i < 3; i++)
        assert_int_equal(kevent_record(a, obj, KEVENT_NORMAL, "Reconciled",
                                       "same", &e), 0);
    assert_int_equal(kevent_record(b, obj, KEVENT_NORMAL, "Reconciled",
                                   "same", &e), 0);
    items = events(v);
    assert_int_equal(cJSON_GetArraySize(items), 1);
    assert_int_equal(num(items->child, "count"), 4);
    cJSON_Delete(items);
    kevent_free(a);
    kevent_free(b);
    cJSON_Delete(obj);
}

/* ---- a scripted fake API server ---- */

typedef struct answer {
    int code;
    const char *body;
} answer;

#define FAKE_MAX 16

typedef struct seen {
    char method[8];
    char *url;
    cJSON *body;
} seen;

typedef struct fake {
    struct MHD_Daemon *d;
    pthread_mutex_t mu;
    const answer *script;
    size_t nscript, next;
    seen req[FAKE_MAX];
    size_t nreq;
    char path[64];
    kcfg *cfg;
    kube *k;
} fake;

typedef struct upload {
    char *buf;
    size_t len;
} upload;

static const char already[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
    "\"reason\":\"AlreadyExists\",\"code\":409,\"message\":"
    "\"events already exists\"}";
static const char internal[] =
    "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"status\":\"Failure\","
    "\"reason\":\"InternalError\",\"code\":500,\"message\":\"lost\"}";

/* Keeps the request, then answers with the next scripted answer. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *data,
                                  size_t *size, void **ctx)
{
    fake *f = cls;
    upload *u = *ctx;
    answer a = {200, "{}"};
    struct MHD_Response *resp;
    enum MHD_Result ret;

    (void)version;
    if (u == NULL) {
        *ctx = calloc(1, sizeof(upload));
        return MHD_YES;
    }
    if (*size) {
        u->buf = realloc(u->buf, u->len + *size + 1);
        memcpy(u->buf + u->len, data, *size);
        u->len += *size;
        u->buf[u->len] = '\0';
        *size = 0;
        return MHD_YES;
    }

    pthread_mutex_lock(&f->mu);
    if (f->nreq < FAKE_MAX) {
        seen *s = &f->req[f->nreq++];

        snprintf(s->method, sizeof(s->method), "%s", method);
        s->url = strdup(url);
        s->body = u->buf ? cJSON_Parse(u->buf) : NULL;
    }
    if (f->next < f->nscript)
        a = f->script[f->next++];
    pthread_mutex_unlock(&f->mu);

    resp = MHD_create_response_from_buffer(strlen(a.body), (void *)a.body,
                                           MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(resp, "Content-Type", "application/json");
    ret = MHD_queue_response(conn, (unsigned)a.code, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn,
                         void **ctx, enum MHD_RequestTerminationCode why)
{
    upload *u = *ctx;

    (void)cls;
    (void)conn;
    (void)why;
    if (u) {
        free(u->buf);
        free(u);
    }
    *ctx = NULL;
}

static fake *fake_start(const answer *script, size_t n)
{
    fake *f = calloc(1, sizeof(*f));
    kube_config kc = {.retries = -1};
    const union MHD_DaemonInfo *di;
    char err[256];
    FILE *cf;

    pthread_mutex_init(&f->mu, NULL);
    f->script = script;
    f->nscript = n;
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
                            on_request, f, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, f, MHD_OPTION_END);
    assert_non_null(f->d);
    di = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(f->path, sizeof(f->path), "/tmp/test_kevent.fake.%d.cfg",
             getpid());
    cf = fopen(f->path, "w");
    assert_non_null(cf);
    fprintf(cf, "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n"
            "  cluster:\n    server: http://127.0.0.1:%u\ncontexts:\n"
            "- name: fake\n  context:\n    cluster: fake\n    user: fake\n"
            "current-context: fake\nusers:\n- name: fake\n  user: {}\n",
            (unsigned)di->port);
    fclose(cf);
    if (kcfg_load(f->path, NULL, &f->cfg, err, sizeof(err)) < 0 ||
        kube_new(f->cfg, &kc, &f->k, err, sizeof(err)) < 0)
        fail_msg("fake client: %s", err);
    return f;
}

static void fake_stop(fake *f)
{
    kube_free(f->k);
    kcfg_free(f->cfg);
    MHD_stop_daemon(f->d);
    for (size_t i = 0; i < f->nreq; i++) {
        free(f->req[i].url);
        cJSON_Delete(f->req[i].body);
    }
    pthread_mutex_destroy(&f->mu);
    unlink(f->path);
    free(f);
}

static const char *body_name(const seen *s)
{
    return kube_obj_name(s->body);
}

/*
 * The first POST was acted on but its answer lost (500): the retry meets
 * 409 AlreadyExists for the same name, which is the Event recorded. A
 * repeat then patches count 2 onto that name.
 */
static void test_lost_answer_then_conflict(void **state)
{
    static const answer script[] = {
        {500, internal}, {409, already}, {200, "{}"}};
    kevent_config c = {.retries = 3, .retry_base_ms = 1};
    fake *f = fake_start(script, 3);
    kevent *ev = kevent_new(f->k, &c);
    cJSON *obj = astro_w1();
    char want[320];
    kube_err e;

    (void)state;
    assert_int_equal(kevent_record(ev, obj, KEVENT_NORMAL, "StarsAvailable",
                                   "every star is available", &e), 0);
    assert_int_equal(f->nreq, 2);
    for (int i = 0; i < 2; i++) {
        assert_string_equal(f->req[i].method, "POST");
        assert_string_equal(f->req[i].url, "/api/v1/namespaces/team/events");
    }
    assert_string_equal(body_name(&f->req[0]), body_name(&f->req[1]));

    assert_int_equal(kevent_record(ev, obj, KEVENT_NORMAL, "StarsAvailable",
                                   "every star is available", &e), 0);
    assert_int_equal(f->nreq, 3);
    assert_string_equal(f->req[2].method, "PATCH");
    snprintf(want, sizeof(want), "/api/v1/namespaces/team/events/%s",
             body_name(&f->req[0]));
    assert_string_equal(f->req[2].url, want);
    assert_int_equal(num(f->req[2].body, "count"), 2);

    kevent_free(ev);
    cJSON_Delete(obj);
    fake_stop(f);
}

/* A count patch answered 500 is sent again; the count moves once. */
static void test_patch_retried(void **state)
{
    static const answer script[] = {
        {201, "{}"}, {500, internal}, {200, "{}"}, {200, "{}"}};
    kevent_config c = {.retries = 3, .retry_base_ms = 1};
    fake *f = fake_start(script, 4);
    kevent *ev = kevent_new(f->k, &c);
    cJSON *obj = astro_w1();
    kube_err e;

    (void)state;
    for (int i = 0; i < 3; i++)
        assert_int_equal(kevent_record(ev, obj, KEVENT_NORMAL, "R", "m", &e),
                         0);
    assert_int_equal(f->nreq, 4);
    assert_int_equal(num(f->req[1].body, "count"), 2);
    assert_int_equal(num(f->req[2].body, "count"), 2);
    assert_int_equal(num(f->req[3].body, "count"), 3);

    kevent_free(ev);
    cJSON_Delete(obj);
    fake_stop(f);
}

/* A count patch answered 409 reads the count again and goes on. */
static void test_patch_conflict(void **state)
{
    static const answer script[] = {
        {201, "{}"}, {409, already}, {200, "{\"count\":5}"}, {200, "{}"}};
    kevent_config c = {.retries = 3, .retry_base_ms = 1};
    fake *f = fake_start(script, 4);
    kevent *ev = kevent_new(f->k, &c);
    cJSON *obj = astro_w1();
    kube_err e;

    (void)state;
    for (int i = 0; i < 2; i++)
        assert_int_equal(kevent_record(ev, obj, KEVENT_NORMAL, "R", "m", &e),
                         0);
    assert_int_equal(f->nreq, 4);
    assert_string_equal(f->req[2].method, "GET");
    assert_string_equal(f->req[3].method, "PATCH");
    assert_int_equal(num(f->req[3].body, "count"), 6);

    kevent_free(ev);
    cJSON_Delete(obj);
    fake_stop(f);
}

/* Transient failures end after retries + 1 attempts; a 4xx at once. */
static void test_gives_up(void **state)
{
    static const answer busy[] = {
        {503, internal}, {503, internal}, {503, internal}};
    static const answer refused[] = {{403, "{\"code\":403}"}};
    kevent_config c = {.retries = 2, .retry_base_ms = 1};
    fake *f = fake_start(busy, 3);
    kevent *ev = kevent_new(f->k, &c);
    cJSON *obj = astro_w1();
    kube_err e;

    (void)state;
    assert_int_equal(kevent_record(ev, obj, KEVENT_WARNING, "R", "m", &e),
                     -1);
    assert_int_equal(e.code, 503);
    assert_int_equal(f->nreq, 3);
    kevent_free(ev);
    fake_stop(f);

    f = fake_start(refused, 1);
    ev = kevent_new(f->k, &c);
    assert_int_equal(kevent_record(ev, obj, KEVENT_WARNING, "R", "m", &e),
                     -1);
    assert_int_equal(e.code, 403);
    assert_int_equal(f->nreq, 1);
    kevent_free(ev);
    cJSON_Delete(obj);
    fake_stop(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_then_repeat, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_survives_faults, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_recorder_continues,
                                        setup, teardown),
        cmocka_unit_test(test_lost_answer_then_conflict),
        cmocka_unit_test(test_patch_retried),
        cmocka_unit_test(test_patch_conflict),
        cmocka_unit_test(test_gives_up),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
