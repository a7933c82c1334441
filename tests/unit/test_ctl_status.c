/*
 * Tests for ctl_status: times, conditions (lastTransitionTime moves only
 * on a flip), the conditions each phase sets, and storing results with
 * and without truncation.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "astertower/ctl_phase.c"
#include "astertower/ctl_status.c"

#define T0 1735725600L /* 2025-01-01T10:00:00Z */

static const char *cond_field(const cJSON *st, const char *type,
                              const char *field)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItemCaseSensitive(ctl_cond_find(st, type), field));
}

static void test_time(void **state)
{
    char buf[32];
    long t;

    ctl_time_format(T0, buf);
    assert_string_equal(buf, "2025-01-01T10:00:00Z");
    assert_int_equal(ctl_time_parse(buf, &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(ctl_time_parse("2025-01-01T10:00:00.123456Z", &t), 0);
    assert_int_equal(t, T0);
    assert_int_equal(ctl_time_parse("2025-01-01T10:00:00+02:00", &t), -1);
    assert_int_equal(ctl_time_parse("yesterday", &t), -1);
    assert_int_equal(ctl_time_parse(NULL, &t), -1);
}

static void test_condition_flip_moves_time(void **state)
{
    cJSON *st = cJSON_CreateObject();

    assert_int_equal(
        ctl_cond_set(st, "Deployed", "False", "Deploying", "m", T0, 1), 0);
    assert_string_equal(cond_field(st, "Deployed", "lastTransitionTime"),
                        "2025-01-01T10:00:00Z");

    /* Same status, new reason: the time stays. */
    assert_int_equal(
        ctl_cond_set(st, "Deployed", "False", "Other", "m2", T0 + 60, 2), 0);
    assert_string_equal(cond_field(st, "Deployed", "lastTransitionTime"),
                        "2025-01-01T10:00:00Z");
    assert_string_equal(cond_field(st, "Deployed", "reason"), "Other");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(
                         ctl_cond_find(st, "Deployed"), "observedGeneration")
                         ->valueint,
                     2);

    /* A flip moves it. */
    assert_int_equal(
        ctl_cond_set(st, "Deployed", "True", "Ok", "m3", T0 + 90, 2), 0);
    assert_string_equal(cond_field(st, "Deployed", "lastTransitionTime"),
                        "2025-01-01T10:01:30Z");
    assert_int_equal(ctl_cond_since(st, "Deployed", "True"), T0 + 90);
    assert_int_equal(ctl_cond_since(st, "Deployed", "False"), 0);
    assert_int_equal(ctl_cond_since(st, "Nothing", "True"), 0);
    assert_int_equal(
        cJSON_GetArraySize(cJSON_GetObjectItem(st, "conditions")), 1);
    cJSON_Delete(st);
}

/* Each phase's conditions, as the table in ctl_status.h says. */
static void test_enter_phases(void **state)
{
    cJSON *st = cJSON_CreateObject();

    ctl_status_enter(st, CTL_PHASE_INITIALIZED, "ChildrenCreated", "m", T0,
                     1);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(st, "phase")),
        "Initialized");
    assert_int_equal(ctl_cond_since(st, "Initialized", "True"), T0);
    assert_string_equal(cond_field(st, "Deployed", "status"), "False");

    ctl_status_enter(st, CTL_PHASE_WAITED, "StarsAvailable", "m", T0 + 5, 1);
    assert_int_equal(ctl_cond_since(st, "Deployed", "True"), T0 + 5);
    assert_string_equal(cond_field(st, "EngineReady", "reason"),
                        "EngineStarting");

    ctl_status_enter(st, CTL_PHASE_ENGINE_FAILED, "EngineTimeout", "late",
                     T0 + 9, 1);
    assert_string_equal(
        cJSON_GetStringValue(cJSON_GetObjectItem(st, "phase")),
        "EngineFailed");
    assert_string_equal(cond_field(st, "EngineReady", "status"), "False");
    assert_string_equal(cond_field(st, "EngineReady", "reason"),
                        "EngineTimeout");
    assert_string_equal(cond_field(st, "EngineReady", "message"), "late");
    cJSON_Delete(st);

    st = cJSON_CreateObject();
    ctl_status_enter(st, CTL_PHASE_WRONG, "RunFailed", "node c", T0, 1);
    assert_string_equal(cond_field(st, "Succeeded", "status"), "False");
    assert_string_equal(cond_field(st, "Succeeded", "reason"), "RunFailed");
    ctl_status_enter(st, CTL_PHASE_DEPLOY_FAILED, "ErrImagePull", "x", T0, 1);
    assert_string_equal(cond_field(st, "Deployed", "reason"), "ErrImagePull");
    cJSON_Delete(st);
}

static const char small_result[] =
    "{\"id\":\"1\",\"status\":{\"health\":true},\"data\":{\"name\":\"d\"},"
    "\"nodes\":{\"a\":{\"state\":\"succeeded\"}}}";

static void test_result_whole(void **state)
{
    cJSON *st = cJSON_CreateObject();
    char *text;

    assert_int_equal(ctl_status_set_result(st, small_result,
                                           strlen(small_result), 1024),
                     0);
    text = cJSON_PrintUnformatted(cJSON_GetObjectItem(st, "result"));
    assert_string_equal(text, small_result);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(st, "resultTruncated")));
    assert_int_equal(cJSON_GetObjectItem(st, "resultSize")->valueint,
                     strlen(small_result));
    assert_true(ctl_result_healthy(cJSON_GetObjectItem(st, "result")));
    free(text);
    cJSON_Delete(st);
}

/* A big data field is dropped; what says what happened is kept. */
static void test_result_truncated(void **state)
{
    size_t pad = 100000, len;
    char *doc = malloc(pad + 512);
    cJSON *st = cJSON_CreateObject(), *res;
    char why[256];

    len = (size_t)sprintf(doc,
                          "{\"id\":\"2\",\"status\":{\"health\":false},"
                          "\"failed\":[\"c\"],\"error\":\"node c failed\","
                          "\"nodes\":{\"c\":{\"state\":\"failed\"}},"
                          "\"data\":{\"pad\":\"");
    memset(doc + len, 'x', pad);
    len += pad;
    len += (size_t)sprintf(doc + len, "\"}}");

    assert_int_equal(ctl_status_set_result(st, doc, len, 4096), 0);
    res = cJSON_GetObjectItem(st, "result");
    assert_null(cJSON_GetObjectItem(res, "data"));
    assert_non_null(cJSON_GetObjectItem(res, "nodes"));
    assert_string_equal(cJSON_GetObjectItem(res, "id")->valuestring, "2");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(st, "resultTruncated")));
    assert_int_equal(cJSON_GetObjectItem(st, "resultSize")->valuedouble,
                     (double)len);
    assert_false(ctl_result_healthy(res));
    ctl_result_why(res, why, sizeof(why));
    assert_string_equal(why, "node c failed");
    free(doc);
    cJSON_Delete(st);
}

/* Under a tiny limit even the per-node map goes. */
static void test_result_tiny_limit(void **state)
{
    cJSON *st = cJSON_CreateObject(), *res;
    char *text;

    assert_int_equal(
        ctl_status_set_result(st, small_result, strlen(small_result), 40),
        0);
    res = cJSON_GetObjectItem(st, "result");
    text = cJSON_PrintUnformatted(res);
    assert_string_equal(text, "{\"id\":\"1\",\"status\":{\"health\":true}}");
    free(text);
    cJSON_Delete(st);
}

static void test_result_not_json(void **state)
{
    cJSON *st = cJSON_CreateObject();

    assert_int_equal(ctl_status_set_result(st, "[1]", 3, 100), -1);
    assert_int_equal(ctl_status_set_result(st, "{x", 2, 100), -1);
    assert_null(cJSON_GetObjectItem(st, "result"));
    cJSON_Delete(st);
}

static void test_why_without_error(void **state)
{
    cJSON *r = cJSON_Parse("{\"failed\":[\"b\",\"c\"]}");
    char why[64];

    ctl_result_why(r, why, sizeof(why));
    assert_string_equal(why, "failed nodes: b c");
    cJSON_Delete(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time),
        cmocka_unit_test(test_condition_flip_moves_time),
        cmocka_unit_test(test_enter_phases),
        cmocka_unit_test(test_result_whole),
        cmocka_unit_test(test_result_truncated),
        cmocka_unit_test(test_result_tiny_limit),
        cmocka_unit_test(test_result_not_json),
        cmocka_unit_test(test_why_without_error),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
