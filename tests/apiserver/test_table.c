/* Human durations, JSONPath columns and Table rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "jpath.h"
#include "table.h"

static void test_durations(void **state)
{
    static const struct {
        long long secs;
        const char *want;
    } cases[] = {
        {-5, "<invalid>"}, {-1, "0s"}, {0, "0s"}, {119, "119s"},
        {120, "2m"}, {125, "2m5s"}, {600, "10m"}, {179 * 60, "179m"},
        {3 * 3600, "3h"}, {3 * 3600 + 60, "3h1m"}, {8 * 3600, "8h"},
        {47 * 3600, "47h"}, {48 * 3600, "2d"}, {49 * 3600, "2d1h"},
        {8 * 86400, "8d"}, {729LL * 86400, "729d"},
        {731LL * 86400, "2y1d"}, {8LL * 365 * 86400, "8y"},
    };
    char buf[32];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        table_duration(cases[i].secs, buf, sizeof(buf));
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("%lld s gave %s, want %s", cases[i].secs, buf,
                     cases[i].want);
    }
}

static void test_jsonpath(void **state)
{
    cJSON *o = cJSON_Parse(
        "{\"status\":{\"conditions\":[{\"type\":\"Init\",\"status\":"
        "\"False\"},{\"type\":\"Ready\",\"status\":\"True\"}],"
        "\"list\":[1,2,3]},\"metadata\":{\"labels\":{\"a.b/c\":\"x\"}}}");

    assert_string_equal(cJSON_GetStringValue(jpath_get(
        o, ".status.conditions[?(@.type==\"Ready\")].status")), "True");
    assert_int_equal(jpath_get(o, "{.status.list[-1]}")->valueint, 3);
    assert_string_equal(cJSON_GetStringValue(jpath_get(
        o, ".metadata.labels['a.b/c']")), "x");
    assert_null(jpath_get(o, ".status.nope.deeper"));
    assert_null(jpath_get(o, ".status.list[7]"));
    cJSON_Delete(o);
}

static void test_crd_table(void **state)
{
    cJSON *cols = cJSON_Parse(
        "[{\"name\":\"Phase\",\"type\":\"string\",\"jsonPath\":"
        "\".status.phase\"},{\"name\":\"NodeNumber\",\"type\":\"integer\","
        "\"jsonPath\":\".status.nodeNumber\"},{\"name\":\"Age\",\"type\":"
        "\"date\",\"jsonPath\":\".metadata.creationTimestamp\"}]");
    cJSON *items = cJSON_Parse(
        "[{\"metadata\":{\"name\":\"a1\",\"namespace\":\"default\","
        "\"creationTimestamp\":\"2025-01-01T00:00:00Z\"},"
        "\"status\":{\"phase\":\"Ready\",\"nodeNumber\":4.7}}]");
    table_spec spec = {"Astro", cols, 1, TABLE_INCLUDE_METADATA,
                       1735689600 + 300};
    cJSON *t = table_build(&spec, items, "7", NULL, -1);
    cJSON *cells = cJSON_GetObjectItem(cJSON_GetArrayItem(
        cJSON_GetObjectItem(t, "rows"), 0), "cells");

    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(
                         t, "columnDefinitions")), 4);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(cells, 0)),
                        "a1");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(cells, 1)),
                        "Ready");
    assert_int_equal(cJSON_GetArrayItem(cells, 2)->valuedouble, 4);
    assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(cells, 3)),
                        "5m");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetObjectItem(cJSON_GetArrayItem(
                                cJSON_GetObjectItem(t, "rows"), 0),
                                "object"), "kind")),
                        "PartialObjectMetadata");
    cJSON_Delete(t);
    cJSON_Delete(items);
    cJSON_Delete(cols);
}

static void test_builtin_table(void **state)
{
    cJSON *items = cJSON_Parse(
        "[{\"metadata\":{\"name\":\"p\",\"creationTimestamp\":"
        "\"2025-01-01T00:00:00Z\"},\"spec\":{\"containers\":[{},{}]},"
        "\"status\":{\"phase\":\"Running\",\"containerStatuses\":["
        "{\"ready\":true,\"restartCount\":2}]}}]");
    table_spec spec = {"Pod", NULL, 1, TABLE_INCLUDE_NONE, 1735689600};
    cJSON *t = table_build(&spec, items, NULL, "tok", 3);
    cJSON *cells = cJSON_GetObjectItem(cJSON_GetArrayItem(
        cJSON_GetObjectItem(t, "rows"), 0), "cells");
    char *text = cJSON_PrintUnformatted(cells);

    assert_string_equal(text, "[\"p\",\"1/2\",\"Running\",2,\"0s\","
                              "\"<none>\",\"<none>\"]");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetObjectItem(t, "metadata"),
                            "continue")), "tok");
    cJSON_free(text);
    cJSON_Delete(t);
    cJSON_Delete(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_jsonpath),
        cmocka_unit_test(test_crd_table),
        cmocka_unit_test(test_builtin_table),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
