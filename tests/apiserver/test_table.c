/* Human durations, JSONPath columns and Table rendering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
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
                              "\"<none>\",\"<none>\",\"<none>\","
                              "\"<none>\"]");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(
                            cJSON_GetObjectItem(t, "metadata"),
                            "continue")), "tok");
    cJSON_free(text);
    cJSON_Delete(t);
    cJSON_Delete(items);
}

/* Reads a whole file of tests/apiserver/data as JSON. */
static cJSON *read_data(const char *name)
{
    char path[512], *text;
    FILE *f;
    long len;
    cJSON *j;

    snprintf(path, sizeof(path), "%s/%s", SIMAPI_DATA, name);
    f = fopen(path, "rb");
    if (!f)
        fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    text = calloc(1, (size_t)len + 1);
    assert_int_equal(fread(text, 1, (size_t)len, f), (size_t)len);
    fclose(f);

    j = cJSON_Parse(text);
    free(text);
    if (!j)
        fail_msg("%s is not valid JSON", path);
    return j;
}

/* The index of the column called name, or -1. */
static int column_index(const cJSON *t, const char *name)
{
    const cJSON *defs = cJSON_GetObjectItem(t, "columnDefinitions");

    for (int i = 0; i < cJSON_GetArraySize(defs); i++) {
        const cJSON *d = cJSON_GetArrayItem(defs, i);

        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(d, "name")),
                   name) == 0)
            return i;
    }
    return -1;
}

static const char *cell_text(const cJSON *t, int row, int col)
{
    const cJSON *r = cJSON_GetArrayItem(cJSON_GetObjectItem(t, "rows"), row);

    return cJSON_GetStringValue(
        cJSON_GetArrayItem(cJSON_GetObjectItem(r, "cells"), col));
}

/* Each case of data/pod-status.json: a Pod and the STATUS a real
 * cluster prints for it. */
static void test_pod_status_column(void **state)
{
    cJSON *cases = read_data("pod-status.json");
    const cJSON *c;
    table_spec spec = {"Pod", NULL, 1, TABLE_INCLUDE_NONE, 1735689600};
    int n = 0;

    cJSON_ArrayForEach(c, cases) {
        cJSON *items = cJSON_CreateArray();
        const char *want = cJSON_GetStringValue(
            cJSON_GetObjectItem(c, "status"));
        const char *got;
        cJSON *t;
        int col;

        cJSON_AddItemToArray(items, cJSON_Duplicate(
            cJSON_GetObjectItem(c, "pod"), 1));
        t = table_build(&spec, items, NULL, NULL, -1);
        col = column_index(t, "Status");
        assert_int_equal(col, 2);
        got = cell_text(t, 0, col);
        if (!got || strcmp(got, want) != 0)
            fail_msg("case \"%s\": STATUS %s, want %s",
                     cJSON_GetStringValue(cJSON_GetObjectItem(c, "case")),
                     got ? got : "(none)", want);
        cJSON_Delete(t);
        cJSON_Delete(items);
        n++;
    }
    assert_true(n >= 19);
    cJSON_Delete(cases);
}

/* -o wide shows the priority-1 columns; a real cluster has four. */
static void test_pod_wide_columns(void **state)
{
    static const char *const wide[] = {"IP", "Node", "Nominated Node",
                                       "Readiness Gates"};
    cJSON *items = cJSON_Parse(
        "[{\"metadata\":{\"name\":\"p\"},\"spec\":{\"readinessGates\":["
        "{\"conditionType\":\"example.com/lb\"},"
        "{\"conditionType\":\"example.com/dns\"}]},"
        "\"status\":{\"nominatedNodeName\":\"n2\",\"conditions\":["
        "{\"type\":\"example.com/dns\",\"status\":\"False\"},"
        "{\"type\":\"example.com/lb\",\"status\":\"True\"},"
        "{\"type\":\"Ready\",\"status\":\"True\"}]}},"
        "{\"metadata\":{\"name\":\"q\"}}]");
    table_spec spec = {"Pod", NULL, 1, TABLE_INCLUDE_NONE, 1735689600};
    cJSON *t = table_build(&spec, items, NULL, NULL, -1);
    const cJSON *defs = cJSON_GetObjectItem(t, "columnDefinitions");

    assert_int_equal(cJSON_GetArraySize(defs), 9);
    for (int i = 0; i < 4; i++) {
        int col = column_index(t, wide[i]);

        if (col != 5 + i)
            fail_msg("column %s at %d, want %d", wide[i], col, 5 + i);
        assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(defs, col),
                                             "priority")->valueint, 1);
    }
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(defs, 4),
                                         "priority")->valueint, 0);
    assert_string_equal(cell_text(t, 0, 7), "n2");
    assert_string_equal(cell_text(t, 0, 8), "1/2");
    assert_string_equal(cell_text(t, 1, 7), "<none>");
    assert_string_equal(cell_text(t, 1, 8), "<none>");
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
        cmocka_unit_test(test_pod_status_column),
        cmocka_unit_test(test_pod_wide_columns),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
