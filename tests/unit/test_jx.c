/*
 * Tests for jx: texts in, their type and span out, or the reason and the
 * byte offset of the first problem; the object check's sentences; and
 * jx_skip over every kind of value.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jx.h"

typedef struct jx_case {
    const char *in;
    jx_type type;     /* JX_NONE: refused */
    const char *what; /* the start of the reason when refused */
    size_t at;        /* where, or the value's start when accepted */
} jx_case;

/* clang-format off */
static const jx_case cases[] = {
    /* Accepted: every kind, blanks around, escapes JSON allows. */
    {"{\"t\":1700000000123456789}", JX_OBJECT, NULL, 0},
    {"[1e400,-1e-400,0.1,1.50,-0,0e0,2E+3,12345678901234567890123]",
     JX_ARRAY, NULL, 0},
    {" \t\r\n42 ", JX_NUMBER, NULL, 4},
    {"\"a\\u0000b\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\"", JX_STRING, NULL, 0},
    {"\"\\ud800 and \\udc00 alone\"", JX_STRING, NULL, 0},
    {"\"\xff\xfe bytes past 0x7f as they are\"", JX_STRING, NULL, 0},
    {"true", JX_TRUE, NULL, 0},
    {"false", JX_FALSE, NULL, 0},
    {" null", JX_NULL, NULL, 1},
    {"{\"a\":[1,{\"b\":[2,true,null,\"3\",{\"c\":4.0}]}],\"d\":{}}", JX_OBJECT,
     NULL, 0},
    {"{\"a\\u0000b\":1,\"a\":1,\"a\":2}", JX_OBJECT, NULL, 0},
    {"[ ]", JX_ARRAY, NULL, 0},
    /* Refused, with where. */
    {"", JX_NONE, "no value", 0},
    {" \n", JX_NONE, "no value", 2},
    {"[01]", JX_NONE, "a number not in JSON form", 1},
    {"[1.]", JX_NONE, "a number not in JSON form", 1},
    {"[1e]", JX_NONE, "a number not in JSON form", 1},
    {"[-]", JX_NONE, "a number not in JSON form", 1},
    {"[1.5.2]", JX_NONE, "a number not in JSON form", 1},
    {"[.5]", JX_NONE, "unexpected '.'", 1},
    {"[+1]", JX_NONE, "unexpected '+'", 1},
    {"{\"a\":\"x\ty\"}", JX_NONE, "a raw control character in a string", 7},
    {"\"\\x\"", JX_NONE, "a bad escape in a string", 1},
    {"\"\\u12g4\"", JX_NONE, "a bad \\u escape in a string", 1},
    {"\"abc", JX_NONE, "a string without its closing quote", 0},
    {"{\"a\":1} x", JX_NONE, "unexpected data after the value", 8},
    {"{}{}", JX_NONE, "unexpected data after the value", 2},
    {"{\"a\":}", JX_NONE, "unexpected '}'", 5},
    {"{\"a\" 1}", JX_NONE, "unexpected '1'", 5},
    {"{a:1}", JX_NONE, "an object key that is not a string", 1},
    {"{\"a\":1,}", JX_NONE, "an object key that is not a string", 7},
    {"[1,]", JX_NONE, "unexpected ']'", 3},
    {"[1 2]", JX_NONE, "unexpected '2'", 3},
    {"[1", JX_NONE, "a truncated value", 2},
    {"{\"a\":", JX_NONE, "a truncated value", 5},
    {"nope", JX_NONE, "unexpected text", 0},
    {"\xef\xbb\xbf{}", JX_NONE, "unexpected byte 0xef", 0},
    {"[\"a\"\x01]", JX_NONE, "unexpected byte 0x01", 4},
    /* The first problem in the text is the one told. */
    {"[01, nope]", JX_NONE, "a number not in JSON form", 1},
    {"[nope, 01]", JX_NONE, "unexpected text", 1},
};
/* clang-format on */

static void test_cases(void **state)
{
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const jx_case *c = &cases[k];
        size_t start = 99, end = 99, len = strlen(c->in);
        jx_error e;
        jx_type t = jx_check(c->in, len, &start, &end, &e);

        if (c->type != JX_NONE) {
            if (t != c->type)
                fail_msg("'%s': %s (%s at %zu), expected %s", c->in,
                         jx_type_name(t), e.what, e.at,
                         jx_type_name(c->type));
            assert_int_equal(start, c->at);
            assert_int_equal(jx_skip(c->in, len, start), end);
            continue;
        }
        if (t != JX_NONE)
            fail_msg("'%s': accepted as %s, expected '%s'", c->in,
                     jx_type_name(t), c->what);
        if (strncmp(e.what, c->what, strlen(c->what)) != 0 || e.at != c->at)
            fail_msg("'%s': '%s' at %zu, expected '%s' at %zu", c->in,
                     e.what, e.at, c->what, c->at);
    }
}

/* Only len bytes are read; a NUL inside them is a byte like others. */
static void test_not_terminated(void **state)
{
    const char buf[] = {'[', '1', '2', ']', '9', '9'};
    size_t start, end;
    jx_error e;

    assert_int_equal(jx_check(buf, 4, &start, &end, &e), JX_ARRAY);
    assert_int_equal(end, 4);
    assert_int_equal(jx_check(buf, 2, NULL, NULL, &e), JX_NONE);
    assert_string_equal(e.what, "a truncated value");

    assert_int_equal(jx_check("[1]\0[2]", 7, NULL, NULL, &e), JX_NONE);
    assert_string_equal(e.what, "unexpected data after the value");
    assert_int_equal(e.at, 3);
    assert_int_equal(jx_check("[1\0]", 4, NULL, NULL, &e), JX_NONE);
    assert_string_equal(e.what, "unexpected byte 0x00");
    assert_int_equal(jx_check("\"a\0b\"", 5, NULL, NULL, &e), JX_NONE);
    assert_string_equal(e.what, "a raw control character in a string");
}

static char *nested(int depth, char open, char close)
{
    char *s = malloc((size_t)depth * 2 + 1);

    assert_non_null(s);
    for (int k = 0; k < depth; k++) {
        s[k] = open;
        s[depth * 2 - 1 - k] = close;
    }
    s[depth * 2] = '\0';
    return s;
}

static void test_depth(void **state)
{
    char *ok = nested(JX_MAX_DEPTH, '[', ']');
    char *deep = nested(JX_MAX_DEPTH + 1, '[', ']');
    char *huge = nested(1000000, '[', ']');
    char want[64];
    jx_error e;

    assert_int_equal(jx_check(ok, strlen(ok), NULL, NULL, &e), JX_ARRAY);

    snprintf(want, sizeof(want), "nesting deeper than %d levels",
             JX_MAX_DEPTH);
    assert_int_equal(jx_check(deep, strlen(deep), NULL, NULL, &e), JX_NONE);
    assert_string_equal(e.what, want);
    assert_int_equal(e.at, JX_MAX_DEPTH);

    /* A million levels: refused at the limit, not a stack overflow. */
    assert_int_equal(jx_check(huge, strlen(huge), NULL, NULL, &e), JX_NONE);
    assert_string_equal(e.what, want);

    free(ok);
    free(deep);
    free(huge);
}

/* An 8 MiB array of numbers is checked without a byte of memory more:
 * nothing to free, nothing to leak (valgrind and ASan watch). */
static void test_large(void **state)
{
    size_t n = 8u << 20, len = 0;
    char *in = malloc(n + 2);

    assert_non_null(in);
    in[len++] = '[';
    while (len + 3 < n) {
        in[len++] = '7';
        in[len++] = ',';
    }
    in[len++] = '7';
    in[len++] = ']';

    size_t start, end;
    jx_error e;

    assert_int_equal(jx_check(in, len, &start, &end, &e), JX_ARRAY);
    assert_int_equal(end, len);
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
        {"false", "the input is not a JSON object but a boolean"},
        {"{\"a\":01}", "the input is not valid JSON: a number not in JSON "
                       "form at byte 5"},
        {"{", "the input is not valid JSON: a truncated value at byte 1"},
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
        assert_string_equal(why, objs[k].why);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_not_terminated),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_large),
        cmocka_unit_test(test_check_object),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
