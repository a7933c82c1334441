/*
 * kcfg: kubeconfig documents in, resolved settings or errors out.
 * Each test writes its files into a fresh temporary directory.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "kcfg.h"

/* "-----BEGIN CERTIFICATE-----\nCA\n" in base64 and plain. */
#define CA_PEM "-----BEGIN CERTIFICATE-----\nCA\n"
#define CA_B64 "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCkNBCg=="

static char tmpdir[256];

static void put(const char *name, const char *text)
{
    char path[512];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_kcfg.XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    unsetenv("KUBECONFIG");
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    return 0;
}

static kcfg *load_ok(const char *path, const char *ctx)
{
    char full[512], err[512] = "";
    kcfg *c = NULL;

    snprintf(full, sizeof(full), "%s/%s", tmpdir, path);
    if (kcfg_load(full, ctx, &c, err, sizeof(err)) != 0)
        fail_msg("kcfg_load %s: %s", path, err);
    return c;
}

static void load_err(const char *path, const char *ctx, const char *want)
{
    char full[512], err[512] = "";
    kcfg *c = NULL;

    snprintf(full, sizeof(full), "%s/%s", tmpdir, path);
    assert_int_equal(kcfg_load(full, ctx, &c, err, sizeof(err)), -1);
    assert_null(c);
    if (!strstr(err, want))
        fail_msg("error \"%s\" lacks \"%s\"", err, want);
}

static const char *base =
    "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
    "clusters:\n"
    "- name: c1\n  cluster:\n    server: https://127.0.0.1:6443/\n"
    "    certificate-authority-data: " CA_B64 "\n"
    "- name: c2\n  cluster:\n    server: https://10.0.0.2:443\n"
    "    certificate-authority: certs/ca.crt\n"
    "    tls-server-name: kubernetes\n"
    "users:\n"
    "- name: u1\n  user:\n    token: tok-1\n"
    "- name: u2\n  user:\n    client-certificate: certs/c.crt\n"
    "    client-key: certs/c.key\n"
    "contexts:\n"
    "- name: dev\n  context: {cluster: c1, user: u1, namespace: team-a}\n"
    "- name: prod\n  context: {cluster: c2, user: u2}\n";

static void test_data_fields(void **state)
{
    kcfg *c;
    char *tok;

    put("config", base);
    c = load_ok("config", NULL);
    assert_string_equal(c->server, "https://127.0.0.1:6443");
    assert_string_equal(c->ns, "team-a");
    assert_string_equal(c->context, "dev");
    assert_string_equal(c->ca_pem, CA_PEM);
    assert_int_equal(c->ca_len, strlen(CA_PEM));
    assert_null(c->cert_pem);
    tok = kcfg_token(c, 0);
    assert_string_equal(tok, "tok-1");
    free(tok);
    kcfg_free(c);
}

static void test_context_and_relative_paths(void **state)
{
    char dir[512];
    kcfg *c;

    snprintf(dir, sizeof(dir), "%s/certs", tmpdir);
    mkdir(dir, 0700);
    put("certs/ca.crt", "CAFILE");
    put("certs/c.crt", "CERT");
    put("certs/c.key", "KEY");
    put("config", base);

    /* Run from elsewhere: paths resolve against the file's directory. */
    assert_int_equal(chdir("/"), 0);
    c = load_ok("config", "prod");
    assert_string_equal(c->server, "https://10.0.0.2:443");
    assert_string_equal(c->ns, "default");
    assert_string_equal(c->ca_pem, "CAFILE");
    assert_string_equal(c->cert_pem, "CERT");
    assert_string_equal(c->key_pem, "KEY");
    assert_string_equal(c->tls_server_name, "kubernetes");
    assert_null(kcfg_token(c, 0));
    kcfg_free(c);
}

static void test_missing_file_named(void **state)
{
    put("config", base);
    load_err("config", "prod", "certificate-authority");
    load_err("config", "prod", "certs/ca.crt");
    load_err("config", "nope", "context \"nope\" not found");
    load_err("absent", NULL, "No such file");
}

static void test_merge_first_wins(void **state)
{
    char env[1200], err[256];
    kcfg *c = NULL;

    put("a", "current-context: a\n"
             "clusters:\n- name: c1\n  cluster: {server: http://first}\n"
             "contexts:\n- name: a\n  context: {cluster: c1}\n");
    put("b", "current-context: b\n"
             "clusters:\n- name: c1\n  cluster: {server: http://second}\n"
             "- name: c2\n  cluster: {server: http://only-b}\n"
             "contexts:\n- name: b\n  context: {cluster: c2}\n"
             "- name: a\n  context: {cluster: c2}\n");
    snprintf(env, sizeof(env), "%s/missing:%s/a:%s/b", tmpdir, tmpdir,
             tmpdir);
    setenv("KUBECONFIG", env, 1);

    assert_int_equal(kcfg_load(NULL, NULL, &c, err, sizeof(err)), 0);
    assert_string_equal(c->context, "a");
    assert_string_equal(c->server, "http://first");
    kcfg_free(c);

    assert_int_equal(kcfg_load(NULL, "b", &c, err, sizeof(err)), 0);
    assert_string_equal(c->server, "http://only-b");
    kcfg_free(c);
    unsetenv("KUBECONFIG");
}

static void test_refusals(void **state)
{
    put("insecure",
        "current-context: x\n"
        "clusters:\n- name: c\n  cluster:\n    server: https://h\n"
        "    insecure-skip-tls-verify: true\n"
        "    certificate-authority-data: " CA_B64 "\n"
        "contexts:\n- name: x\n  context: {cluster: c}\n");
    load_err("insecure", NULL, "insecure-skip-tls-verify cannot be "
             "combined");

    put("exec",
        "current-context: x\n"
        "clusters:\n- name: c\n  cluster: {server: https://h}\n"
        "users:\n- name: u\n  user:\n    exec:\n      command: aws\n"
        "contexts:\n- name: x\n  context: {cluster: c, user: u}\n");
    load_err("exec", NULL, "user \"u\": exec credential plugins are not "
             "supported");

    put("noserver", "current-context: x\nclusters:\n- name: c\n"
                    "  cluster: {}\ncontexts:\n- name: x\n"
                    "  context: {cluster: c}\n");
    load_err("noserver", NULL, "cluster \"c\": server is not set");

    put("badb64", "current-context: x\nclusters:\n- name: c\n  cluster:\n"
                  "    server: https://h\n"
                  "    certificate-authority-data: '***'\n"
                  "contexts:\n- name: x\n  context: {cluster: c}\n");
    load_err("badb64", NULL, "certificate-authority-data is not valid");
}

static void test_insecure_alone(void **state)
{
    kcfg *c;

    put("config", "current-context: x\nclusters:\n- name: c\n  cluster:\n"
                  "    server: https://h:1\n"
                  "    insecure-skip-tls-verify: true\n"
                  "contexts:\n- name: x\n  context: {cluster: c}\n");
    c = load_ok("config", NULL);
    assert_int_equal(c->insecure, 1);
    assert_null(c->ca_pem);
    kcfg_free(c);
}

static void test_malformed_yaml_line(void **state)
{
    put("bad", "apiVersion: v1\nclusters:\n- name: c\n  cluster: [\n"
               "current-context: x\n  - broken: {\n");
    load_err("bad", NULL, "line ");
    put("list", "- a\n- b\n");
    load_err("list", NULL, "top level is not a mapping");
    put("alias", "a: &x {b: 1}\nc: *x\n");
    load_err("alias", NULL, "aliases are not supported");
}

static void test_token_file_reread(void **state)
{
    char doc[1024];
    kcfg *c;
    char *t;

    put("tok", "first\n");
    snprintf(doc, sizeof(doc),
             "current-context: x\nclusters:\n- name: c\n"
             "  cluster: {server: https://h}\n"
             "users:\n- name: u\n  user: {tokenFile: tok}\n"
             "contexts:\n- name: x\n  context: {cluster: c, user: u}\n");
    put("config", doc);
    c = load_ok("config", NULL);
    t = kcfg_token(c, 0);
    assert_string_equal(t, "first");
    free(t);
    put("tok", "second\n");
    t = kcfg_token(c, 1);
    assert_string_equal(t, "second");
    free(t);
    kcfg_free(c);
}

static void test_incluster(void **state)
{
    char err[256] = "";
    kcfg *c = NULL;
    char *t;

    put("token", "sa-token\n");
    put("ca.crt", "SACA");
    put("namespace", "ops");
    setenv("ASTER_SA_DIR", tmpdir, 1);
    unsetenv("KUBERNETES_SERVICE_HOST");
    assert_int_equal(kcfg_load_incluster(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "not running in a cluster"));

    setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
    setenv("KUBERNETES_SERVICE_PORT", "443", 1);
    assert_int_equal(kcfg_load_incluster(&c, err, sizeof(err)), 0);
    assert_string_equal(c->server, "https://[fd00::1]:443");
    assert_string_equal(c->ns, "ops");
    assert_string_equal(c->ca_pem, "SACA");
    t = kcfg_token(c, 0);
    assert_string_equal(t, "sa-token");
    free(t);
    kcfg_free(c);

    unlink(strcat(strcpy(err, tmpdir), "/ca.crt"));
    assert_int_equal(kcfg_load_incluster(&c, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "ca.crt"));
    unsetenv("KUBERNETES_SERVICE_HOST");
    unsetenv("KUBERNETES_SERVICE_PORT");
    unsetenv("ASTER_SA_DIR");
}

static void test_parse_memory(void **state)
{
    char err[256];
    kcfg *c = NULL;
    const char *doc = "current-context: x\nclusters:\n- name: c\n"
                      "  cluster: {server: 'http://m:8080'}\n"
                      "contexts:\n- name: x\n  context: {cluster: c}\n";

    assert_int_equal(kcfg_parse(doc, strlen(doc), "mem", NULL, NULL, &c,
                                err, sizeof(err)), 0);
    assert_string_equal(c->server, "http://m:8080");
    kcfg_free(c);
    assert_int_equal(kcfg_parse("", 0, "mem", NULL, NULL, &c, err,
                                sizeof(err)), -1);
    assert_non_null(strstr(err, "no current-context"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_data_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(test_context_and_relative_paths,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_file_named, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_merge_first_wins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_insecure_alone, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_malformed_yaml_line, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_token_file_reread, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_incluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_memory, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
