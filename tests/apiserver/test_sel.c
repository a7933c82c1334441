/* Label and field selector cases: selector, object, expected match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "sel.h"

typedef struct label_case {
    const char *selector;
    const char *labels;    /* JSON object or NULL */
    int match;             /* -1: the selector must not parse */
} label_case;

static const label_case label_cases[] = {
    {"", "{\"a\":\"1\"}", 1},
    {"env=prod", "{\"env\":\"prod\"}", 1},
    {"env==prod", "{\"env\":\"dev\"}", 0},
    {"env!=prod", NULL, 1},
    {"env!=prod", "{\"env\":\"prod\"}", 0},
    {"env in (a,b),!legacy,tier!=x", "{\"env\":\"b\",\"tier\":\"y\"}", 1},
    {"env in (a,b),!legacy", "{\"env\":\"b\",\"legacy\":\"\"}", 0},
    {"env notin (a, b)", NULL, 1},
    {"env notin (a,b)", "{\"env\":\"a\"}", 0},
    {"app", "{\"app\":\"\"}", 1},
    {"app", "{}", 0},
    {"example.com/role = web", "{\"example.com/role\":\"web\"}", 1},
    {"env in (a", NULL, -1},
    {"env=a,", NULL, -1},
    {"=a", NULL, -1},
    {"env ~ a", NULL, -1},
};

typedef struct field_case {
    const char *selector;
    const char *object;
    int match;
} field_case;

static const field_case field_cases[] = {
    {"metadata.name=demo", "{\"metadata\":{\"name\":\"demo\"}}", 1},
    {"metadata.name=demo,metadata.namespace!=kube-system",
     "{\"metadata\":{\"name\":\"demo\",\"namespace\":\"kube-system\"}}", 0},
    {"involvedObject.kind=Astro,involvedObject.name=a1",
     "{\"involvedObject\":{\"kind\":\"Astro\",\"name\":\"a1\"}}", 1},
    {"spec.nodeName=", "{\"spec\":{}}", 1},
    {"status.count==3", "{\"status\":{\"count\":3}}", 1},
    {"metadata.name", NULL, -1},
};

static void test_labels(void **state)
{
    for (size_t i = 0; i < sizeof(label_cases) / sizeof(label_cases[0]);
         i++) {
        const label_case *c = &label_cases[i];
        char err[256];
        sel *s = sel_parse_labels(c->selector, err, sizeof(err));
        cJSON *labels = c->labels ? cJSON_Parse(c->labels) : NULL;

        if (c->match < 0) {
            assert_null(s);
            continue;
        }
        assert_non_null(s);
        if (sel_match_labels(s, labels) != c->match)
            fail_msg("label case %zu (%s) gave %d", i, c->selector,
                     !c->match);
        cJSON_Delete(labels);
        sel_free(s);
    }
}

static void test_fields(void **state)
{
    for (size_t i = 0; i < sizeof(field_cases) / sizeof(field_cases[0]);
         i++) {
        const field_case *c = &field_cases[i];
        char err[256];
        sel *s = sel_parse_fields(c->selector, err, sizeof(err));
        cJSON *obj = c->object ? cJSON_Parse(c->object) : NULL;

        if (c->match < 0) {
            assert_null(s);
            continue;
        }
        assert_non_null(s);
        if (sel_match_fields(s, obj) != c->match)
            fail_msg("field case %zu (%s) gave %d", i, c->selector,
                     !c->match);
        cJSON_Delete(obj);
        sel_free(s);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_fields),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
