/*
 * Patch cases: live document, patch, expected result (NULL: the patch
 * must fail).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "patch.h"

typedef struct patch_case {
    const char *live;
    const char *patch;
    const char *want;
} patch_case;

static const patch_case merge_cases[] = {
    {"{\"a\":1,\"b\":{\"c\":2,\"d\":3}}", "{\"b\":{\"c\":null,\"e\":4}}",
     "{\"a\":1,\"b\":{\"d\":3,\"e\":4}}"},
    {"{\"l\":[1,2]}", "{\"l\":[3]}", "{\"l\":[3]}"},
    {"{\"a\":1}", "{\"n\":{\"x\":null,\"y\":1}}",
     "{\"a\":1,\"n\":{\"y\":1}}"},
    {"{\"a\":1}", "[1]", NULL},
};

static const patch_case json_cases[] = {
    {"{\"a\":{\"b\":[1,2]}}",
     "[{\"op\":\"add\",\"path\":\"/a/b/1\",\"value\":9},"
     "{\"op\":\"add\",\"path\":\"/a/b/-\",\"value\":3}]",
     "{\"a\":{\"b\":[1,9,2,3]}}"},
    {"{\"a\":1,\"b\":2}",
     "[{\"op\":\"remove\",\"path\":\"/a\"},"
     "{\"op\":\"replace\",\"path\":\"/b\",\"value\":5}]", "{\"b\":5}"},
    {"{\"a\":{\"x\":1}}",
     "[{\"op\":\"move\",\"from\":\"/a/x\",\"path\":\"/y\"},"
     "{\"op\":\"copy\",\"from\":\"/y\",\"path\":\"/z\"}]",
     "{\"a\":{},\"y\":1,\"z\":1}"},
    {"{\"m/k~\":1}", "[{\"op\":\"test\",\"path\":\"/m~1k~0\",\"value\":1}]",
     "{\"m/k~\":1}"},
    {"{\"a\":1}", "[{\"op\":\"test\",\"path\":\"/a\",\"value\":2}]", NULL},
    {"{\"a\":1}", "[{\"op\":\"replace\",\"path\":\"/nope\",\"value\":2}]",
     NULL},
    {"{\"a\":[1]}", "[{\"op\":\"add\",\"path\":\"/a/5\",\"value\":2}]",
     NULL},
    {"{\"a\":1}", "[{\"op\":\"jump\",\"path\":\"/a\"}]", NULL},
    {"{\"a\":1}", "{}", NULL},
};

static const patch_case smp_cases[] = {
    /* The recorded kubectl patch: container b removed, env of a gone. */
    {"{\"spec\":{\"replicas\":1,\"template\":{\"spec\":{\"containers\":["
     "{\"name\":\"a\",\"image\":\"nginx:1\",\"env\":[{\"name\":\"X\"}]},"
     "{\"name\":\"b\",\"image\":\"busybox\"}]}}}}",
     "{\"spec\":{\"replicas\":2,\"template\":{\"spec\":{"
     "\"$setElementOrder/containers\":[{\"name\":\"a\"}],"
     "\"containers\":[{\"env\":null,\"image\":\"nginx:2\",\"name\":\"a\"},"
     "{\"$patch\":\"delete\",\"name\":\"b\"}]}}}}",
     "{\"spec\":{\"replicas\":2,\"template\":{\"spec\":{\"containers\":["
     "{\"name\":\"a\",\"image\":\"nginx:2\"}]}}}}"},
    {"{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":["
     "{\"containerPort\":80,\"name\":\"http\"}]}]}}",
     "{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":["
     "{\"containerPort\":81}]}]}}",
     "{\"spec\":{\"containers\":[{\"name\":\"a\",\"ports\":["
     "{\"containerPort\":80,\"name\":\"http\"},{\"containerPort\":81}]}]}}"},
    {"{\"metadata\":{\"finalizers\":[\"a\"]}}",
     "{\"metadata\":{\"finalizers\":[\"b\",\"a\"]}}",
     "{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}"},
    {"{\"metadata\":{\"finalizers\":[\"a\",\"b\"]}}",
     "{\"metadata\":{\"$deleteFromPrimitiveList/finalizers\":[\"a\"]}}",
     "{\"metadata\":{\"finalizers\":[\"b\"]}}"},
    {"{\"data\":{\"a\":\"1\",\"b\":\"2\"}}",
     "{\"data\":{\"$patch\":\"replace\",\"c\":\"3\"}}",
     "{\"data\":{\"c\":\"3\"}}"},
    {"{\"s\":{\"type\":\"A\",\"a\":1}}",
     "{\"s\":{\"$retainKeys\":[\"type\",\"b\"],\"type\":\"B\",\"b\":2}}",
     "{\"s\":{\"type\":\"B\",\"b\":2}}"},
    {"{\"tolerations\":[{\"key\":\"a\"}]}", "{\"tolerations\":[{\"key\":"
     "\"b\"}]}", "{\"tolerations\":[{\"key\":\"b\"}]}"},
};

typedef cJSON *(*patch_fn)(const cJSON *, const cJSON *, char *, size_t);

static void run_cases(const patch_case *cases, size_t n, patch_fn fn)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *live = cJSON_Parse(cases[i].live);
        cJSON *p = cJSON_Parse(cases[i].patch);
        cJSON *want = cases[i].want ? cJSON_Parse(cases[i].want) : NULL;
        char err[256] = "";
        cJSON *got;

        assert_non_null(live);
        assert_non_null(p);
        got = fn(live, p, err, sizeof(err));
        if (!want) {
            if (got)
                fail_msg("case %zu should fail", i);
            assert_true(err[0] != '\0');
        } else if (!got || !cJSON_Compare(got, want, 1)) {
            char *text = got ? cJSON_PrintUnformatted(got) : NULL;

            fail_msg("case %zu: got %s (%s)", i, text ? text : "NULL", err);
        }
        cJSON_Delete(got);
        cJSON_Delete(want);
        cJSON_Delete(p);
        cJSON_Delete(live);
    }
}

static void test_merge(void **state)
{
    run_cases(merge_cases, sizeof(merge_cases) / sizeof(merge_cases[0]),
              patch_merge);
}

static void test_json_patch(void **state)
{
    run_cases(json_cases, sizeof(json_cases) / sizeof(json_cases[0]),
              patch_json);
}

static void test_strategic(void **state)
{
    run_cases(smp_cases, sizeof(smp_cases) / sizeof(smp_cases[0]),
              patch_strategic);
}

static void test_apply_upsert(void **state)
{
    cJSON *live = cJSON_Parse("{\"spec\":{\"a\":1,\"l\":[1,2]},\"k\":1}");
    cJSON *fields = cJSON_Parse("{\"spec\":{\"b\":2,\"l\":[3]},\"k\":null}");
    cJSON *want = cJSON_Parse("{\"spec\":{\"a\":1,\"b\":2,\"l\":[3]},"
                              "\"k\":1}");
    cJSON *got = patch_apply(live, fields);

    assert_true(cJSON_Compare(got, want, 1));
    cJSON_Delete(got);
    cJSON_Delete(want);
    cJSON_Delete(fields);
    cJSON_Delete(live);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge),
        cmocka_unit_test(test_json_patch),
        cmocka_unit_test(test_strategic),
        cmocka_unit_test(test_apply_upsert),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
