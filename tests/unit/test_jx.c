/*
 * Tests for jx: texts in, the exact compact text out (numbers and
 * NUL-holding strings byte for byte), or the reason and the byte offset
 * of the first problem.
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

#include "jx.h"

typedef struct jx_case {
    const char *in;
    const char *out;  /* compact text after parsing, or NULL */
    const char *what; /* the start of the reason when refused */
    size_t at;        /* and where */
} jx_case;

/* clang-format off */
static const jx_case cases[] = {
    /* Numbers as written, wherever they are. */
    {"{\"t\":1700000000123456789}", "{\"t\":1700000000123456789}", NULL, 0},
    {"[1e400,-1e-400,0.1,1.50,-0,0e0,2E+3,12345678901234567890123]",
     "[1e400,-1e-400,0.1,1.50,-0,0e0,2E+3,12345678901234567890123]", NULL,
     0},
    {" 42 ", "42", NULL, 0},
    {"{\"a\":[1,{\"b\":[2,true,null,\"3\",{\"c\":4.0}]}],\"d\":5}",
     "{\"a\":[1,{\"b\":[2,true,null,\"3\",{\"c\":4.0}]}],\"d\":5}", NULL, 0},
    /* Strings: cJSON's own reprint, except those holding \u0000. */
    {"{\"s\":\"a\\u0000b\",\"k\":\"\\u00e9\"}",
     "{\"s\":\"a\\u0000b\",\"k\":\"\xc3\xa9\"}", NULL, 0},
    {"[\"\\\\u0000\"]", "[\"\\\\u0000\"]", NULL, 0},
    {"\"x\\u0000\"", "\"x\\u0000\"", NULL, 0},
    /* Keys look like numbers or hold digits: still keys. */
    {"{\"1\":2,\"-3\":\"4\"}", "{\"1\":2,\"-3\":\"4\"}", NULL, 0},
    /* Refused, with where. */
    {"{\"a\\u0000b\":1}", NULL, "an object key holding \\u0000", 1},
    {"[01]", NULL, "a number not in JSON form", 1},
    {"[1.]", NULL, "a number not in JSON form", 1},
    {"[.5]", NULL, "syntax error", 1},
    {"[+1]", NULL, "syntax error", 1},
    {"[1e]", NULL, "a number not in JSON form", 1},
    {"[-]", NULL, "a number not in JSON form", 1},
    {"{\"a\":\"x\ty\"}", NULL, "a raw control character in a string", 7},
    {"{\"a\":1} x", NULL, "unexpected data after the value", 8},
    {"{}{}", NULL, "unexpected data after the value", 2},
    {"", NULL, "syntax error", 0},
    {"{\"a\":}", NULL, "syntax error", 5},
    /* The first problem in the text is the one told. */
    {"hello [01]", NULL, "syntax error", 0},
    {"[01, nope]", NULL, "a number not in JSON form", 1},
};
/* clang-format on */

static void test_cases(void **state)
{
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const jx_case *c = &cases[k];
        jx_error e;
        cJSON *v = jx_parse(c->in, strlen(c->in), &e);

        if (c->out) {
            if (!v)
                fail_msg("'%s': refused: %s at %zu", c->in, e.what, e.at);

            char *text = cJSON_PrintUnformatted(v);

            if (strcmp(text, c->out) != 0)
                fail_msg("'%s': printed '%s', expected '%s'", c->in, text,
                         c->out);
            free(text);
            cJSON_Delete(v);
            continue;
        }
        if (v)
            fail_msg("'%s': accepted, expected '%s'", c->in, c->what);
        if (strncmp(e.what, c->what, strlen(c->what)) != 0 || e.at != c->at)
            fail_msg("'%s': '%s' at %zu, expected '%s' at %zu", c->in,
                     e.what, e.at, c->what, c->at);
    }
}

/* The text need not end with a NUL: only len bytes are read. */
static void test_not_terminated(void **state)
{
    const char buf[] = {'[', '1', '2', ']', '9', '9'};
    jx_error e;
    cJSON *v = jx_parse(buf, 4, &e);

    assert_non_null(v);

    char *text = cJSON_PrintUnformatted(v);

    assert_string_equal(text, "[12]");
    free(text);
    cJSON_Delete(v);

    /* A NUL byte inside the text is not the end of it. */
    v = jx_parse("[1]\0[2]", 7, &e);
    assert_null(v);
    assert_string_equal(e.what, "unexpected data after the value");
    assert_int_equal(e.at, 3);
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 2 + 1);

    assert_non_null(s);
    for (int k = 0; k < depth; k++) {
        s[k] = '[';
        s[depth * 2 - 1 - k] = ']';
    }
    s[depth * 2] = '\0';
    return s;
}

static void test_depth(void **state)
{
    char *ok = nested(JX_MAX_DEPTH);
    char *deep = nested(JX_MAX_DEPTH + 1);
    char *huge = nested(100000);
    jx_error e;
    cJSON *v = jx_parse(ok, strlen(ok), &e);
    char want[64];

    assert_non_null(v);
    cJSON_Delete(v);

    snprintf(want, sizeof(want), "nesting deeper than %d levels",
             JX_MAX_DEPTH);
    assert_null(jx_parse(deep, strlen(deep), &e));
    assert_string_equal(e.what, want);
    assert_int_equal(e.at, JX_MAX_DEPTH);

    assert_null(jx_parse(huge, strlen(huge), &e));
    assert_string_equal(e.what, want);

    free(ok);
    free(deep);
    free(huge);
}

/* Many numbers, more than fit before the scan allocates: all exact. */
static void test_many_tokens(void **state)
{
    size_t cap = 5000 * 24 + 16, len = 0;
    char *in = malloc(cap);
    jx_error e;

    assert_non_null(in);
    in[len++] = '[';
    for (int k = 0; k < 5000; k++)
        len += (size_t)snprintf(in + len, cap - len, "%s%d00000000000000001",
                                k ? "," : "", k + 1);
    in[len++] = ']';
    in[len] = '\0';

    cJSON *v = jx_parse(in, len, &e);

    assert_non_null(v);
    char *text = cJSON_PrintUnformatted(v);

    assert_string_equal(text, in);
    free(text);
    cJSON_Delete(v);
    free(in);
}

static void test_check_object(void **state)
{
    static const struct {
        const char *in;
        const char *why; /* NULL: an object */
    } objs[] = {
        {" {\"a\":[1]} ", NULL},
        {"[1]", "the input is not a JSON object but an array"},
        {"7", "the input is not a JSON object but a number"},
        {"\"x\\u0000\"", "the input is not a JSON object but a string"},
        {"null", "the input is not a JSON object but null"},
        {"{\"a\":01}", "the input is not valid JSON: a number not in JSON "
                       "form at byte 5"},
        {"{", "the input is not valid JSON: syntax error near byte "},
    };
    char why[128];

    for (size_t k = 0; k < sizeof(objs) / sizeof(objs[0]); k++) {
        int rc = jx_check_object(objs[k].in, strlen(objs[k].in),
                                 "the input", why, sizeof(why));

        if (!objs[k].why) {
            assert_int_equal(rc, 0);
            continue;
        }
        assert_int_equal(rc, -1);
        if (strncmp(why, objs[k].why, strlen(objs[k].why)) != 0)
            fail_msg("'%s': '%s', expected '%s'", objs[k].in, why,
                     objs[k].why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_not_terminated),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_many_tokens),
        cmocka_unit_test(test_check_object),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
