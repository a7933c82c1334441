/*
 * Tests for jw: exact text out for structure, numbers and escapes; any
 * bytes in a string still give valid JSON in valid UTF-8; failures (too
 * deep, closing what is not open) end in NULL, never in a bad document.
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

#include "jw.h"

/* Finishes w and checks its text is exactly want. */
static void expect_text(jw *w, const char *want)
{
    size_t len = 0;
    char *got = jw_finish(w, &len);

    assert_non_null(got);
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    free(got);
}

/* 1 when s (len bytes) is valid UTF-8. */
static int valid_utf8(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    uint32_t cp;

    while (i < len) {
        size_t n = jw_utf8_next(u + i, len - i, &cp);

        if (n == 0)
            return 0;
        i += n;
    }
    return 1;
}

static void test_structure(void **state)
{
    jw w;

    jw_init(&w, 0);
    jw_obj_open(&w);
    JW_KEY(&w, "a");
    jw_uint(&w, 1);
    jw_key(&w, "b");
    jw_arr_open(&w);
    jw_bool(&w, 1);
    jw_bool(&w, 0);
    jw_null(&w);
    jw_arr_open(&w);
    jw_arr_close(&w);
    jw_obj_open(&w);
    jw_obj_close(&w);
    jw_arr_close(&w);
    JW_KEY(&w, "c");
    jw_obj_open(&w);
    JW_KEY(&w, "d");
    jw_json(&w, "{\"x\":[1,2]}", 11);
    JW_KEY(&w, "e");
    jw_strz(&w, "f");
    jw_obj_close(&w);
    jw_obj_close(&w);
    expect_text(&w, "{\"a\":1,\"b\":[true,false,null,[],{}],"
                    "\"c\":{\"d\":{\"x\":[1,2]},\"e\":\"f\"}}");
}

static void test_top_level_values(void **state)
{
    jw w;

    jw_init(&w, 0);
    jw_strz(&w, "");
    expect_text(&w, "\"\"");

    jw_init(&w, 0);
    jw_null(&w);
    expect_text(&w, "null");

    /* Nothing written is the empty text, not a failure. */
    jw_init(&w, 16);
    expect_text(&w, "");
}

static void test_numbers(void **state)
{
    static const struct {
        int64_t ns;
        const char *text;
    } ms[] = {
        {0, "0.000"},
        {-5, "0.000"},
        {499, "0.000"},
        {500, "0.001"},
        {1499, "0.001"},
        {1500, "0.002"},
        {999999, "1.000"},
        {1000000, "1.000"},
        {123456789, "123.457"},
        {30000000000LL, "30000.000"},
    };
    char want[64];
    jw w;

    for (size_t k = 0; k < sizeof(ms) / sizeof(ms[0]); k++) {
        jw_init(&w, 0);
        jw_ms(&w, ms[k].ns);
        expect_text(&w, ms[k].text);
    }

    jw_init(&w, 0);
    jw_arr_open(&w);
    jw_uint(&w, 0);
    jw_uint(&w, 7);
    jw_uint(&w, UINT64_MAX);
    jw_arr_close(&w);
    snprintf(want, sizeof(want), "[0,7,%llu]",
             (unsigned long long)UINT64_MAX);
    expect_text(&w, want);
}

static void test_escapes(void **state)
{
    static const char in[] = "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f"
                             "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
    jw w;

    jw_init(&w, 0);
    jw_str(&w, in, sizeof(in) - 1);
    expect_text(&w, "\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f"
                    "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");

    /* A NUL is a byte like any other: escaped, not the end. */
    jw_init(&w, 0);
    jw_str(&w, "a\0b", 3);
    expect_text(&w, "\"a\\u0000b\"");

    /* Keys are escaped the same way. */
    jw_init(&w, 0);
    jw_obj_open(&w);
    jw_key(&w, "k\"\n");
    jw_uint(&w, 1);
    jw_obj_close(&w);
    expect_text(&w, "{\"k\\\"\\n\":1}");
}

static void test_broken_utf8(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *text;
    } cases[] = {
        /* A lone continuation byte, a byte never in UTF-8. */
        {"a\x80z", 3, "\"a\xef\xbf\xbdz\""},
        {"\xff", 1, "\"\xef\xbf\xbd\""},
        /* A sequence cut short, as a 200-byte prefix of a body can be. */
        {"\xe2\x82", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        /* Overlong "/", a surrogate, past U+10FFFF. */
        {"\xc0\xaf", 2, "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
        {"\xf4\x90\x80\x80", 4,
         "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
    };
    jw w;

    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        jw_init(&w, 0);
        jw_str(&w, cases[k].in, cases[k].len);
        expect_text(&w, cases[k].text);
    }
}

/* Any bytes at all: the document parses, and is valid UTF-8; a string of
 * valid UTF-8 without NUL comes back from cJSON byte for byte. */
static void test_any_bytes_give_valid_json(void **state)
{
    uint64_t x = 88172645463325252ULL;
    char in[300];

    for (int round = 0; round < 3000; round++) {
        size_t len = (size_t)(round % (int)sizeof(in));
        size_t out_len;
        jw w;

        for (size_t k = 0; k < len; k++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            in[k] = (char)(x >> 24);
        }

        jw_init(&w, 0);
        jw_arr_open(&w);
        jw_str(&w, in, len);
        jw_arr_close(&w);

        char *doc = jw_finish(&w, &out_len);
        cJSON *v;

        assert_non_null(doc);
        assert_true(valid_utf8(doc, out_len));
        v = cJSON_ParseWithLength(doc, out_len);
        if (!v)
            fail_msg("round %d: not JSON: %s", round, doc);
        assert_true(cJSON_IsString(cJSON_GetArrayItem(v, 0)));

        if (valid_utf8(in, len) && !memchr(in, 0, len)) {
            const char *back = cJSON_GetArrayItem(v, 0)->valuestring;

            assert_int_equal(strlen(back), len);
            assert_memory_equal(back, in, len);
        }
        cJSON_Delete(v);
        free(doc);
    }
}

static void test_growth(void **state)
{
    size_t n = 200000, len;
    char *big = malloc(n);
    jw w;

    assert_non_null(big);
    memset(big, 'x', n);
    big[n / 2] = '"';

    jw_init(&w, 0);
    jw_str(&w, big, n);

    char *doc = jw_finish(&w, &len);

    assert_non_null(doc);
    assert_int_equal(len, n + 3);
    assert_int_equal(doc[0], '"');
    assert_int_equal(doc[n / 2 + 1], '\\');
    assert_int_equal(doc[len - 1], '"');
    assert_int_equal(doc[len], '\0');
    free(doc);
    free(big);
}

static void test_failures_give_null(void **state)
{
    size_t len = 99;
    jw w;

    /* Deeper than JW_MAX_DEPTH. */
    jw_init(&w, 0);
    for (int k = 0; k <= JW_MAX_DEPTH; k++)
        jw_arr_open(&w);
    assert_true(w.failed);
    jw_uint(&w, 1); /* ignored once failed */
    assert_null(jw_finish(&w, &len));
    assert_int_equal(len, 0);

    /* Exactly JW_MAX_DEPTH is fine. */
    jw_init(&w, 0);
    for (int k = 0; k < JW_MAX_DEPTH; k++)
        jw_arr_open(&w);
    for (int k = 0; k < JW_MAX_DEPTH; k++)
        jw_arr_close(&w);
    assert_false(w.failed);
    jw_free(&w);

    /* Closing what was never opened. */
    jw_init(&w, 0);
    jw_obj_close(&w);
    assert_null(jw_finish(&w, &len));

    /* jw_free on a writer never used, and twice. */
    jw_init(&w, 0);
    jw_free(&w);
    jw_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_structure),
        cmocka_unit_test(test_top_level_values),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_broken_utf8),
        cmocka_unit_test(test_any_bytes_give_valid_json),
        cmocka_unit_test(test_growth),
        cmocka_unit_test(test_failures_give_null),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
